"""Detach and re-attach: a running session's control channel, and the viewer's side of it.

A detached run (``perftui run PLAN --detach``) is a headless run in the background that also
serves a Unix socket (user-only permissions, in a user-only directory). An attached dashboard
gets, in order: a ``Welcome`` carrying a full ``journal.Checkpoint`` (with the timeline), then the
very same worker snapshots, second ticks and events the background coordinator applies to its own
session. The viewer applies them to a replica ``SessionRecord`` (``RemoteCoordinator.session``),
so it shows exactly what a local dashboard would. The run's phase clock travels as its
``ClockState`` (in every tick and after every control action); the viewer's
``RemoteCoordinator.phase_clock`` is a ``perftui.run.clock.PhaseClock`` replica loaded from it,
so phase, elapsed time and targets are computed by the same code as the run's. Control actions
travel back as ``Control`` frames, ``+``/``-`` as ``scale_load`` (a ramp scales both its ends, as
on a local dashboard). Any number of viewers may attach; closing a viewer (or losing its SSH link)
only detaches.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct

from perftui.run.clock import ClockState, ClockView, PhaseClock, plan_specs
from perftui.run.coordinator import Coordinator
from perftui.worker.messages import FrameReader, Snapshot
from perftui.journal import Checkpoint, capture, restore
from perftui.monitor.model import Sample
from perftui.monitor.state import MonitorWire
from perftui.plan import Plan
from perftui.session import Event, SessionObserver, TimelineRow


class CoordState(Struct, kw_only=True):
    """The run's state as a viewer needs it: the phase clock's whole state (the viewer's replica
    clock answers from it), the workers alive, the threshold results."""

    clock: ClockState
    workers_alive: int
    thresholds: list[Any] = []
    slos: list[Any] = []
    find_limit: Any = None
    """A breaking-point search's steps and result (``session.find_limit``), as builtins."""
    worker_nodes: dict[int, str] = {}
    """--cluster: worker -> node, the workers lost, each node's totals (``SessionRecord``'s)."""
    lost_workers: list[int] = []
    node_totals: dict[str, list[int]] = {}


class Welcome(Struct, tag="welcome", kw_only=True):
    checkpoint: bytes
    plan: bytes
    state: CoordState
    monitor: MonitorWire | None = None
    """The session's ``MonitorState`` in full (health since when, series seen, trends so far);
    None when the run is not monitored."""


class MonitorMsg(Struct, tag="monitor"):
    sample: Sample


class SnapMsg(Struct, tag="snap"):
    snap: Snapshot


class TickMsg(Struct, tag="tick", kw_only=True):
    now: float
    phase: str
    target_rps: float
    target_vus: int
    final: bool
    state: CoordState
    asked: float = 0.0


class EventMsg(Struct, tag="event"):
    event: Event


class StateMsg(Struct, tag="state"):
    state: CoordState


class Done(Struct, tag="done", kw_only=True):
    end_reason: str
    partial: bool
    session_file: str | None


class Control(Struct, tag="control", kw_only=True):
    """A viewer's control action: a coordinator method (``pause``, ``next_phase``, ...) and its
    argument (``set_rate``/``set_vus`` a value, ``scale_load`` a factor, ``annotate`` a text)."""

    action: str
    value: float | str | None = None


ServerMsg = Welcome | SnapMsg | TickMsg | EventMsg | StateMsg | Done | MonitorMsg
_enc = msgspec.msgpack.Encoder()
_server_dec = msgspec.msgpack.Decoder(ServerMsg)
_client_dec = msgspec.msgpack.Decoder(Control)
_LEN = 4


def _frame(msg) -> bytes:
    body = _enc.encode(msg)
    return len(body).to_bytes(_LEN, "big") + body


SOCKET_DIR_MAX = 70
"""Longest control socket directory: ``<dir>/<session id>.sock`` must fit AF_UNIX's ~107 bytes."""


def socket_dir() -> Path:
    """A user-only directory for control sockets (short paths: AF_UNIX allows ~100 bytes):
    ``$XDG_RUNTIME_DIR/perftui`` when that is set (systemd makes it per user, 0700), else
    ``perftui-<uid>`` in the temp directory; ``/tmp/perftui-<uid>`` when either is too long.
    Whatever it is, it must be a real directory that this user owns and nobody else can enter:
    another local user could have created it first (to read or hijack the sockets), and that is
    refused with a ``UserError`` (exit 2)."""
    import stat
    import tempfile

    from perftui.errors import UserError

    base = os.environ.get("XDG_RUNTIME_DIR")
    d = Path(base) / "perftui" if base else Path(tempfile.gettempdir()) / f"perftui-{os.getuid()}"
    if len(os.fsencode(d)) > SOCKET_DIR_MAX:
        d = Path("/tmp") / f"perftui-{os.getuid()}"  # the socket's whole path must fit sun_path
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(d)
    except OSError as exc:
        raise UserError(f"control socket directory {d}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"control socket directory {d} is not a directory (a symlink or a file); remove it, "
                        "or set XDG_RUNTIME_DIR to a directory of your own")
    if st.st_uid != os.getuid():
        raise UserError(f"control socket directory {d} belongs to another user (uid {st.st_uid}), who could "
                        "reach the runs you detach; remove it, or set XDG_RUNTIME_DIR to a directory of your own")
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(d, 0o700)  # ours, too open: close it
        except OSError as exc:
            raise UserError(f"control socket directory {d}: cannot make it user-only: {exc.strerror}") from None
    return d


def coord_state(c: Coordinator) -> CoordState:
    return CoordState(clock=c.phase_clock.s, workers_alive=sum(1 for w in c.workers if w.alive),
                      thresholds=[msgspec.to_builtins(r) for r in c.session.threshold_results],
                      slos=[msgspec.to_builtins(r) for r in c.session.slo_results],
                      find_limit=msgspec.to_builtins(c.session.find_limit) if c.session.find_limit is not None else None,
                      worker_nodes=c.session.worker_nodes, lost_workers=sorted(c.session.lost_workers),
                      node_totals=c.session.node_totals)


class ControlServer(SessionObserver):
    """Serves one coordinator's session to attached viewers (a session observer)."""

    def __init__(self, coord: Coordinator, path: Path):
        self.coord = coord
        self.path = path
        self.clients: set[asyncio.StreamWriter] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path.exists():
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.coord.session.add_observer(self)

    async def close(self) -> None:
        done = Done(end_reason=self.coord.session.end_reason, partial=self.coord.session.partial,
                    session_file=str(self.coord.session_file) if self.coord.session_file else None)
        self._broadcast(done)
        for w in list(self.clients):
            try:
                await asyncio.wait_for(w.drain(), 1.0)
            except (asyncio.TimeoutError, ConnectionError):
                pass
            w.close()
        if self.server is not None:
            self.server.close()
        self.coord.session.remove_observer(self)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _broadcast(self, msg) -> None:
        if not self.clients:
            return
        data = _frame(msg)
        for w in list(self.clients):
            if w.is_closing():
                self.clients.discard(w)
                continue
            # a viewer that cannot keep up (a frozen SSH link) is dropped, never waited for
            if w.transport.get_write_buffer_size() > 8 * 2**20:
                w.close()
                self.clients.discard(w)
                continue
            w.write(data)

    # session observer hooks
    def on_ingest(self, snap: Snapshot) -> None:
        self._broadcast(SnapMsg(snap))

    def on_tick(self, now: float, phase: str, target_rps: float, target_vus: int, final: bool,
                row: TimelineRow) -> None:
        self._broadcast(TickMsg(now=now, phase=phase, target_rps=target_rps, target_vus=target_vus, final=final,
                                state=coord_state(self.coord), asked=row.asked))

    def on_event(self, ev: Event) -> None:
        self._broadcast(EventMsg(ev))

    def on_monitor(self, sample: Sample) -> None:
        self._broadcast(MonitorMsg(sample))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = self.coord
        cp = capture(c.session, with_timeline=True)
        mon = c.session.monitor
        writer.write(_frame(Welcome(checkpoint=_enc.encode(cp), plan=_enc.encode(c.plan), state=coord_state(c),
                                    monitor=mon.wire() if mon.enabled else None)))
        self.clients.add(writer)
        frames = FrameReader()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for f in frames.feed(data):
                    try:
                        await self._apply(_client_dec.decode(f))
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        continue
                    self._broadcast(StateMsg(coord_state(c)))
        except ConnectionError:
            pass
        finally:
            self.clients.discard(writer)
            writer.close()

    async def _apply(self, msg: Control) -> None:
        c = self.coord
        a, v = msg.action, msg.value
        if a in ("pause", "resume", "toggle_pause", "next_phase", "prev_phase"):
            getattr(c, a)()
        elif a == "set_rate" and isinstance(v, (int, float)):
            c.set_rate(float(v))
        elif a == "set_vus" and isinstance(v, (int, float)):
            c.set_vus(int(v))
        elif a == "scale_load" and isinstance(v, (int, float)) and 0 < v < 100:
            c.scale_load(float(v))
        elif a == "annotate" and isinstance(v, str):
            c.annotate(v[:200])
        elif a == "stop":
            asyncio.ensure_future(c.stop(str(v) if v else "stopped by user (attached viewer)"))
        elif a == "start":
            await c.start()


class RemoteCoordinator(ClockView):
    """The Coordinator surface the dashboard uses, for a session running elsewhere. Its
    ``phase_clock`` is a replica of the run's, kept in step by the state every tick and control
    answer carries; control calls go to the run as ``Control`` frames."""

    remote = True

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.finished = asyncio.Event()
        self.session = None
        self.plan: Plan | None = None
        self.phase_clock = PhaseClock([])
        self._state: CoordState | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.session_file: str | None = None
        self.detached = False

    async def connect(self, timeout: float = 5.0) -> None:
        reader, self._writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path), timeout)
        self._frames = FrameReader()
        welcome = None
        while welcome is None:
            data = await asyncio.wait_for(reader.read(1 << 20), timeout)
            if not data:
                raise ConnectionError("the session closed the connection")
            frames = self._frames.feed(data)
            for i, f in enumerate(frames):
                msg = _server_dec.decode(f)
                if isinstance(msg, Welcome):
                    welcome = msg
                    self._accept_welcome(msg)
                    for rest in frames[i + 1:]:
                        self._apply(_server_dec.decode(rest))
                    break
        self._task = asyncio.ensure_future(self._pump(reader))

    def _accept_welcome(self, w: Welcome) -> None:
        self.plan = msgspec.msgpack.decode(w.plan, type=Plan)
        self.phase_clock = PhaseClock(plan_specs(self.plan))
        self.session = restore(msgspec.msgpack.decode(w.checkpoint, type=Checkpoint))
        if w.monitor is not None:
            self.session.monitor.load_wire(w.monitor)
        self._set_state(w.state)

    def _set_state(self, st: CoordState) -> None:
        from perftui.thresholds import ThresholdResult

        self._state = st
        self.phase_clock.load(st.clock)
        if self.session is not None:
            self.session.threshold_results = [msgspec.convert(r, ThresholdResult) for r in st.thresholds]
            from perftui.slo import SloResult

            self.session.slo_results = [msgspec.convert(r, SloResult) for r in st.slos]
            self.session.generator.workers_alive = st.workers_alive
            if st.find_limit is not None:
                from perftui.session.limit import FindLimitDocument

                self.session.find_limit = msgspec.convert(st.find_limit, FindLimitDocument)
            if st.worker_nodes:
                self.session.worker_nodes = dict(st.worker_nodes)
                self.session.lost_workers = set(st.lost_workers)
                self.session.node_totals = {k: list(v) for k, v in st.node_totals.items()}

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                for f in self._frames.feed(data):
                    self._apply(_server_dec.decode(f))
        except ConnectionError:
            pass
        finally:
            if self._state is not None and self.state != "finished" and not self.detached:
                self.session.end_reason = self.session.end_reason or "connection to the session lost"
            self.finished.set()
            if self.session is not None:
                self.session.interval_closed(self.state)

    def _apply(self, msg) -> None:
        s = self.session
        if isinstance(msg, SnapMsg):
            s.ingest(msg.snap)
        elif isinstance(msg, TickMsg):
            self._set_state(msg.state)
            s.tick(msg.now, msg.phase, msg.target_rps, msg.target_vus, final=msg.final, asked=msg.asked)
            s.interval_closed(self.state)  # the run's verdicts came with the tick (_set_state)
        elif isinstance(msg, EventMsg):
            s.add_event(msg.event)
        elif isinstance(msg, MonitorMsg):
            s.monitor.apply(msg.sample)
        elif isinstance(msg, StateMsg):
            self._set_state(msg.state)
        elif isinstance(msg, Done):
            self.phase_clock.finish()
            s.end_reason, s.partial = msg.end_reason, msg.partial
            s.ended_wall = time.time()
            self.session_file = msg.session_file

    # ---- the Coordinator surface --------------------------------------------------------

    @property
    def worker_count(self) -> int:
        return self.session.workers if self.session else 0

    @property
    def target(self) -> str:
        return self.session.target if self.session else ""

    def _send(self, action: str, value=None) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(_frame(Control(action=action, value=value)))

    async def start(self) -> None:
        self._send("start")

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def toggle_pause(self) -> None:
        self._send("toggle_pause")

    def next_phase(self) -> None:
        self._send("next_phase")

    def prev_phase(self) -> None:
        self._send("prev_phase")

    def set_rate(self, rate: float) -> float | None:
        spec = self.current
        if spec is None or spec.kind != "open":
            return None
        self._send("set_rate", max(0.1, float(rate)))
        return max(0.1, float(rate))

    def set_vus(self, vus: int) -> float | None:
        spec = self.current
        if spec is None or spec.kind != "closed":
            return None
        self._send("set_vus", max(1, int(vus)))
        return float(max(1, int(vus)))

    def scale_load(self, factor: float) -> float | None:
        """As the run's own ``scale_load`` (a ramp keeps its shape, both ends scaled): the
        replica applies it at once, the run does the same and its next state confirms it."""
        change = self.phase_clock.scale_by(factor)
        if change is None:
            return None
        self._send("scale_load", float(factor))
        return change.value

    def annotate(self, text: str) -> None:
        self._send("annotate", text)

    async def stop(self, reason: str = "stopped by user (attached viewer)", **_: Any) -> None:
        self._send("stop", reason)
        try:
            await asyncio.wait_for(self.finished.wait(), 10)
        except asyncio.TimeoutError:
            pass

    def kill_workers(self) -> None:
        """Not ours to kill: a viewer never ends a detached run by going away."""

    async def detach(self) -> None:
        self.detached = True
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
