"""Workers beyond this machine: Ray actors on the nodes of a Ray cluster (``--cluster``).

The coordinator, the dashboard, the journal and the session stay in the ``perftui`` process; each
worker is a ``perftui.run.ray_workers.WorkerHost`` actor on some node of the cluster, running the
same worker process as on one machine. ``RayWorker`` gives the coordinator the same handle as a
local worker process (``send``, ``reports``, ``kill``, ...), so the coordinator does not care
where a worker runs.

- Placement: by default one worker per CPU of every live node; workers are spread over the nodes
  in turn (``place``), each pinned to its node (Ray's node affinity).
- Clocks: every command's times are in the coordinator's ``time.monotonic()``. At start each
  actor's clock is read over a few round trips and the offset of the best (shortest) one kept;
  ``SetLoad`` (and ``Stop``) times are shifted into the node's clock on the way out and
  snapshot times back on the way in, so a node whose clock reads differently still runs the
  common schedule. Such an estimate is only good to half its round trip, and a Ray call's way
  out (a task scheduled on the actor) is slower than its way back, so it leans late; a node
  whose schedule runs late has its last arrivals overtaken by the run's stop (counted dropped,
  ``Stop.at``). A node on this machine's own kernel (same boot id) shares its monotonic clock, so
  when zero lies within the estimate's bounds the offset is exactly zero.
- Liveness: a worker's reports are fetched by long polls (``POLL_WAIT``); a worker that has not
  answered for ``LOST_AFTER`` seconds past that, or whose actor Ray reports dead, is lost. The
  coordinator then re-shares its load among the survivors (see ``Coordinator._apply_load``).

Ray is an optional dependency (the ``cluster`` extra): nothing here imports it until a run asks
for a cluster.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from perftui.errors import UserError
from perftui.worker.messages import FrameReader, SetLoad, Snapshot, Stop, encode_frame, report_decoder

EXTRA = "pip install 'perftui[cluster]'"
POLL_WAIT = 0.5
"""A poll returns as soon as the worker has written something, else after this many seconds."""
LOST_AFTER = 1.5
"""A worker whose poll has not come back this long after ``POLL_WAIT`` is taken for lost."""
START_TIMEOUT = 120.0
"""Seconds for Ray to place and start every worker actor."""

_address: str | None = None


def use(address: str | None) -> None:
    """The cluster the next runs of this process use (``--cluster``); None: local workers."""
    global _address
    _address = address


def current() -> str | None:
    return _address


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--cluster needs Ray, which is not installed here: {EXTRA}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--cluster {address}: expected ray://HOST:PORT (Ray Client, port 10001 by default), "
                        "HOST:PORT (the head's GCS port, 6379 by default, from a node of the cluster) or auto")
    return host.strip("[]"), int(port)


def _auto_address() -> str:
    """The cluster this machine belongs to, as Ray finds it for ``auto``: ``$RAY_ADDRESS``, else
    the address ``ray start`` left in Ray's temporary directory."""
    env = os.environ.get("RAY_ADDRESS", "")
    if env and env != "auto":
        return env
    path = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    if not text:
        raise UserError("--cluster auto: this machine is not part of a Ray cluster (run 'ray start --head' or "
                        "'ray start --address=HEAD:6379' here first, or give --cluster ray://HEAD:10001)")
    return text


def check(address: str) -> None:
    """Fail early (exit 2) when Ray is missing or the address is malformed or does not answer."""
    _ray()
    where = _auto_address() if address == "auto" else address
    host, port = _host_port(where.removeprefix("ray://"))
    try:
        with socket.create_connection((host, port), timeout=5.0):
            pass
    except OSError as exc:
        raise UserError(f"--cluster {address}: cannot reach {host}:{port}: {exc.strerror or exc} "
                        "(is the Ray head running, and the port open in its firewall? see docs/cluster.md)") from None


def connect(address: str):
    """Connect this process to the cluster once (``ray.init``); returns the ``ray`` module."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    check(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user needs one message
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1]}"  # Ray may send a whole traceback
        raise UserError(f"--cluster {address}: cannot connect to the Ray cluster: {why}") from None
    return ray


@dataclass
class NodeInfo:
    node_id: str
    ip: str
    cpus: float
    label: str = ""
    """How the dashboard and the session name the node: its address, with the start of its Ray
    node id when several nodes share the address (nodes in containers, a test cluster)."""


def live_nodes(ray) -> list[NodeInfo]:
    nodes = []
    for n in ray.nodes():
        if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0:
            nodes.append(NodeInfo(n["NodeID"], n.get("NodeManagerAddress", "?"), float(n["Resources"]["CPU"])))
    nodes.sort(key=lambda n: (n.ip, n.node_id))
    for n in nodes:
        shared = sum(1 for m in nodes if m.ip == n.ip) > 1
        n.label = f"{n.ip}/{n.node_id[:6]}" if shared else n.ip
    return nodes


def default_workers(address: str) -> int:
    """One worker per CPU of the cluster's live nodes."""
    ray = connect(address)
    return max(1, int(sum(n.cpus for n in live_nodes(ray))))


def place(nodes: list[NodeInfo], count: int) -> list[int]:
    """Which node (index into ``nodes``) each of ``count`` workers goes to: in turn over the nodes,
    skipping a node once it has a worker per CPU while others still have room."""
    placed = [0] * len(nodes)
    out = []
    i = 0
    for _ in range(count):
        room = [j for j in range(len(nodes)) if placed[j] < nodes[j].cpus]
        if room:
            while placed[i % len(nodes)] >= nodes[i % len(nodes)].cpus:
                i += 1
        j = i % len(nodes)
        out.append(j)
        placed[j] += 1
        i += 1
    return out


class RayWorker:
    """A worker hosted by a Ray actor, with the interface of a local ``WorkerHandle``."""

    local = False

    def __init__(self, index: int, actor, node: NodeInfo, ray):
        self.index = index
        self.actor = actor
        self.node = node.label
        self.node_id = node.node_id
        self.ray = ray
        self.alive = True
        self.said_bye = False
        self.reader_task: asyncio.Task | None = None
        self.stderr_task = None
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.pid = 0
        self.offset = 0.0
        """Node clock minus coordinator clock (seconds)."""
        self.returncode: int | None = None
        self.lost = ""
        """Why the worker was given up for lost ("" while it is not)."""
        self._seq = 0

    async def _call(self, method, *args, timeout: float):
        ref = method.remote(*args)
        return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout=timeout)

    async def begin(self) -> None:
        from perftui.run.ray_workers import boot_id

        info = await self._call(self.actor.start, timeout=START_TIMEOUT)
        self.pid = info["pid"]
        best = None
        for _ in range(CLOCK_READS):
            t0 = time.monotonic()
            remote, boot = await self._call(self.actor.clock, timeout=30.0)
            t1 = time.monotonic()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, remote - (t0 + t1) / 2)
        self.offset = clock_offset(best[1], best[0], boot == boot_id() != "")

    def send(self, msg) -> None:
        if not self.alive:
            return
        if isinstance(msg, SetLoad):
            msg = msgspec.structs.replace(msg, start=msg.start + self.offset,
                                          clock_origin=msg.clock_origin + self.offset if msg.clock_origin else 0.0)
        elif isinstance(msg, Stop) and msg.at:
            msg = msgspec.structs.replace(msg, at=msg.at + self.offset)
        try:
            self.actor.send.remote(self._seq, encode_frame(msg))
        except Exception:  # noqa: BLE001 - the actor is gone: the poll loop finds out and says so
            self.alive = False
        self._seq += 1

    async def reports(self) -> AsyncIterator:
        """The worker's reports, decoded (snapshot times in the coordinator's clock), until it
        exits or is lost."""
        frames = FrameReader()
        offset = self.offset
        ray = self.ray
        unavailable = getattr(ray.exceptions, "ActorUnavailableError", ())
        last_ok = time.monotonic()
        while True:
            try:
                data, code, tail = await self._poll()
            except asyncio.TimeoutError:
                self.lost = f"no answer from its node for {POLL_WAIT + LOST_AFTER:g} s"
                break
            except unavailable as exc:  # Ray's word for "maybe only a blip": ask again, a while
                if time.monotonic() - last_ok < LOST_AFTER:
                    await asyncio.sleep(0.2)
                    continue
                self.lost = _short(exc)
                break
            except ray.exceptions.RayError as exc:
                self.lost = _short(exc)
                break
            last_ok = time.monotonic()
            for frame in frames.feed(data):
                msg = report_decoder.decode(frame)
                if isinstance(msg, Snapshot):
                    msg.t -= offset
                yield msg
            if code is not None:
                self.returncode = code
                self.stderr_tail.extend(tail)
                break
        self.alive = False

    async def _poll(self):
        """One long poll. Its deadline counts only time our own event loop was free to notice the
        answer: a loop held up (a busy machine, a slow dashboard frame) gets the wait again."""
        fut = asyncio.wrap_future(self.actor.poll.remote(POLL_WAIT).future())
        limit = POLL_WAIT + LOST_AFTER
        for _ in range(2):
            t0 = time.monotonic()
            done, _ = await asyncio.wait({fut}, timeout=limit)
            if done:
                return fut.result()
            if time.monotonic() - t0 < limit + 0.5:  # on time: the node is silent
                break
        fut.cancel()
        raise asyncio.TimeoutError

    async def closed(self) -> None:
        if self.lost:
            self.kill()

    def exit_text(self) -> str:
        if self.lost:
            return f"lost: {self.lost}"
        return f"exit code {self.returncode}"

    def finished(self) -> bool:
        return self.returncode is not None or bool(self.lost)

    def kill(self) -> None:
        try:
            self.ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone with its node
            pass


def _short(exc: Exception) -> str:
    """Ray's exception in a few words: its kind and what follows "is unavailable:"/"died:"."""
    text = " ".join(str(exc).split())
    for cut in ("is unavailable: ", "died: ", "error: "):
        if cut in text:
            text = text.split(cut, 1)[1]
            break
    return f"{type(exc).__name__}: {text[:100]}" if text else type(exc).__name__


CLOCK_READS = 8
"""Round trips to a node's clock at start; the shortest one's offset is kept."""


def clock_offset(estimate: float, round_trip: float, same_kernel: bool) -> float:
    """A node's clock minus ours, from a reading taken ``round_trip`` seconds apart around it:
    the estimate, or exactly zero for a node on our own kernel when zero is within the estimate's
    error (half the round trip)."""
    if same_kernel and abs(estimate) <= round_trip / 2:
        return 0.0
    return estimate


class RayCluster:
    """The cluster one coordinator's workers run on."""

    def __init__(self, address: str):
        self.address = address
        self.ray = connect(address)
        self.nodes: list[NodeInfo] = []

    def default_workers(self) -> int:
        return max(1, int(sum(n.cpus for n in live_nodes(self.ray))))

    async def start_workers(self, count: int) -> list[RayWorker]:
        """Place ``count`` worker actors over the live nodes and start their worker processes."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from perftui.run.ray_workers import actor_class

        ray = self.ray
        self.nodes = nodes = live_nodes(ray)
        if not nodes:
            raise UserError(f"--cluster {self.address}: the Ray cluster has no live node with a CPU")
        where = place(nodes, count)
        per_node = [where.count(j) for j in range(len(nodes))]
        workers = []
        for i, j in enumerate(where):
            node = nodes[j]
            cpus = math.floor(min(1.0, node.cpus / per_node[j]) * 1e4) / 1e4  # never more than the node has
            actor = actor_class(cpus).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                name=None).remote()
            workers.append(RayWorker(i, actor, node, ray))
        try:
            await asyncio.gather(*(w.begin() for w in workers))
        except BaseException as exc:
            for w in workers:
                w.kill()
            if isinstance(exc, asyncio.TimeoutError):
                raise RuntimeError(f"the Ray cluster did not start {count} worker(s) within {START_TIMEOUT:g} s "
                                   "(is perftui[cluster] installed on every node?)") from None
            if isinstance(exc, ray.exceptions.RayError):
                raise RuntimeError(f"a worker could not start on the Ray cluster: {_short(exc)} "
                                   "(is perftui[cluster] installed on every node, same version?)") from None
            raise
        return workers


def clock_note(workers) -> str:
    """The cluster event's word on the nodes' clocks: each node whose clock was found to read
    differently from ours, with the offset applied; nothing when they all share ours."""
    offsets = {}
    for w in workers:
        if w.offset:
            offsets.setdefault(w.node, w.offset)
    if not offsets:
        return ""
    return "; clock offset " + ", ".join(f"{n} {o * 1e3:+.1f} ms" for n, o in offsets.items())


def node_lost_event(workers: list, lost) -> str | None:
    """The session event when ``lost`` was the last live worker of its node and its node stopped
    answering; None otherwise."""
    node = getattr(lost, "node", "")
    if not node or not getattr(lost, "lost", "") or any(w.alive for w in workers if getattr(w, "node", "") == node):
        return None  # (a worker process that exited on a live node is a worker's death, not a node's)
    mine = [w for w in workers if getattr(w, "node", "") == node]
    alive = [w for w in workers if w.alive]
    nodes_left = len({w.node for w in alive})
    return (f"node {node} lost with its {len(mine)} worker(s); its share re-shared over "
            f"{len(alive)} worker(s) on {nodes_left} node(s)" if alive else
            f"node {node} lost with its {len(mine)} worker(s); no worker left")


def node_lines(nodes) -> list[str]:
    """The summary's lines for a cluster run: each node's workers, share of the work and health
    (``GeneratorState.nodes``); none for a run on this machine."""
    if not nodes:
        return []
    out = [f"{'node':<24} {'workers':>8} {'iterations':>11} {'requests':>10} {'late':>7} {'cpu %':>6} {'loop lag':>9}"]
    for n in nodes:
        health = f"{n.cpu_percent:>6.0f} {n.loop_lag_ms:>7.1f}ms" if n.workers_alive else f"{'lost':>16}"
        out.append(f"{n.node[:24]:<24} {n.workers_alive:>4}/{n.workers:<3} {n.iterations:>11,} {n.requests:>10,} "
                   f"{n.late_starts:>7,} {health}")
    return ["", *out]


def loopback_warning(target: str, labels: list[str]) -> str | None:
    """A warning when the target is this machine's loopback but some node is another machine:
    there, 127.0.0.1 is that node itself (``target = "demo"`` starts the demo here, on loopback)."""
    from urllib.parse import urlsplit

    import psutil

    host = (urlsplit(target).hostname or "").lower()
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        return None
    here = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    away = sorted({label.split("/")[0] for label in labels} - here)
    if not away:
        return None
    return (f"the target {target} is this machine's loopback, but node(s) {', '.join(away)} are other machines: "
            "their requests go to themselves; give a target every node can reach (perftui demo --host 0.0.0.0)")
