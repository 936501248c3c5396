"""A real Ray cluster of two nodes on 127.0.0.1, for the cluster tests and the benchmark.

Each node is one ``ray start --block`` process in its own process group, with its own temporary
directory and ports picked free, so it never meets another Ray on the machine; ``stop_node``
ends a node's whole group (SIGTERM, then SIGKILL), so nothing of it is left behind whatever the
test did. ``ray stop`` is never used: it would end every Ray of the machine, not only ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

OBJECT_STORE = 80 * 2**20
"""Bytes of object store per node: perftui moves only small messages through Ray."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    found = shutil.which("ray")
    if found:
        return found
    return str(Path(sys.executable).with_name("ray"))


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class LocalRayCluster:
    temp_dir: Path
    gcs_port: int
    client_port: int
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def _start(self, name: str, args: list[str]) -> Node:
        log = self.temp_dir / f"{name}.log"
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", GRPC_ENABLE_FORK_SUPPORT="0")
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--resources={{\"{name}\": 1}}",
                  f"--object-store-memory={OBJECT_STORE}", "--disable-usage-stats", "--block",
                  f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                  f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
                  f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"]
        with open(log, "wb") as out:
            proc = subprocess.Popen([_ray_bin(), "start", *args, *common], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        node = Node(name, proc, log)
        self.nodes[name] = node
        return node

    def start_head(self, name: str = "nodeA") -> Node:
        return self._start(name, ["--head", f"--port={self.gcs_port}", f"--ray-client-server-port={self.client_port}",
                                  "--include-dashboard=false", f"--temp-dir={self.temp_dir}"])

    def add_node(self, name: str = "nodeB") -> Node:
        return self._start(name, [f"--address={self.gcs_address}"])

    def wait_nodes(self, count: int, timeout: float = 90.0) -> None:
        """Until ``count`` nodes are alive in the cluster (asked through the head's GCS)."""
        deadline = time.monotonic() + timeout
        probe = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False);"
                 "print(sum(1 for n in ray.nodes() if n['Alive']))")
        last = ""
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if not node.alive():
                    raise RuntimeError(f"ray node {node.name} exited: {node.log.read_text(errors='replace')[-2000:]}")
            r = subprocess.run([sys.executable, "-c", probe, self.gcs_address], capture_output=True, text=True,
                               timeout=60, env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
            last = r.stdout.strip() + r.stderr[-500:]
            if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise RuntimeError(f"ray cluster did not reach {count} nodes: {last}")

    def stop_node(self, name: str, timeout: float = 3.0) -> None:
        node = self.nodes[name]
        pgid = node.proc.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.1)
            if not _group_alive(pgid):
                break
        try:
            node.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def kill_node(self, name: str) -> None:
        """A node lost at once (its machine gone): every process of it killed with SIGKILL."""
        node = self.nodes[name]
        try:
            os.killpg(node.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.proc.wait(timeout=10)

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):
            self.stop_node(name)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count)."""
    return bool(group_pids(pgid))


def group_pids(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.append(int(entry))
    return out


def new_cluster() -> LocalRayCluster:
    # short: Ray puts unix sockets under it, and their paths are limited to ~107 bytes
    temp = Path(tempfile.mkdtemp(prefix="ptray", dir="/tmp"))
    return LocalRayCluster(temp_dir=temp, gcs_port=free_port(), client_port=free_port())
