"""Servers the monitoring tests poll, all on 127.0.0.1.

- ``FlappingPeer``: a small ``http.server`` in a thread with ``/`` (a tiny 200), ``/health``
  (JSON) and ``/metrics`` (Prometheus text from its own prometheus-client registry). ``down()``
  closes the listening socket, ``up()`` binds the same port again: a target that goes away and
  comes back mid-run.
- ``LeakyPeer``: this file run as a subprocess (``python tests/exporter_peers.py leak PORT``):
  every ``GET /leak`` keeps 256 KiB forever, so its RSS climbs with load (a memory leak).
- ``NodeExporter``: Debian's ``prometheus-node-exporter`` (installed by tests/setup.sh) on a free
  port, with only the collectors that work in a container: cpu, meminfo, loadavg, netdev
  (loopback included, so its byte counters move with the test's own load).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve()
LEAK_BYTES = 256 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.server.peer.connections.add(self.connection)

    def finish(self) -> None:
        self.server.peer.connections.discard(self.connection)
        super().finish()

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        peer = self.server.peer
        path = self.path.split("?", 1)[0]
        if peer.requests is not None:
            peer.requests.labels(path).inc()
        if path == "/health":
            self._send(200, json.dumps({"status": "ok", "checks": {"disk": {"status": "up"}}}).encode(),
                       "application/json")
        elif path == "/metrics":
            from prometheus_client.exposition import generate_latest

            self._send(200, generate_latest(peer.registry), "text/plain; version=0.0.4")
        elif path == "/leak":
            peer.hoard.append(bytearray(os.urandom(16)) * (LEAK_BYTES // 16))
            self._send(200, b"kept", "text/plain")
        else:
            self._send(200, b"ok", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, peer: FlappingPeer):
        self.peer = peer
        super().__init__(("127.0.0.1", port), _Handler)


class FlappingPeer:
    """``with FlappingPeer() as p: ...; p.down(); ...; p.up()`` (same port throughout)."""

    def __init__(self, port: int = 0) -> None:
        from prometheus_client import CollectorRegistry, Counter

        self.port = port or free_port()
        self.registry = CollectorRegistry()
        self.requests = Counter("peer_requests", "Requests by path.", ("path",), registry=self.registry)
        self.hoard: list[bytearray] = []
        self.connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        for _ in range(50):  # the old socket may take a moment to be released
            try:
                self._server = _Server(self.port, self)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"could not bind 127.0.0.1:{self.port} again")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for conn in list(self.connections):  # a dead server drops its keep-alive connections too
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> FlappingPeer:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()


class LeakyPeer:
    """The leaking server in a subprocess of its own (so psutil sees a separate process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LeakyPeer:
        self.proc = subprocess.Popen([sys.executable, str(HERE), "leak", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_listening(self.port):
            self.__exit__()
            raise RuntimeError("leaky peer did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def node_exporter_binary() -> str | None:
    for name in ("prometheus-node-exporter", "node_exporter"):
        found = shutil.which(name)
        if found:
            return found
    return None


class NodeExporter:
    COLLECTORS = ("cpu", "meminfo", "loadavg", "netdev")

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NodeExporter:
        binary = node_exporter_binary()
        if binary is None:
            raise RuntimeError("prometheus-node-exporter is not installed (tests/setup.sh installs it)")
        for _ in range(5):  # the free port can be taken between probing and binding
            self.port = free_port()
            cmd = [binary, f"--web.listen-address=127.0.0.1:{self.port}", "--collector.disable-defaults",
                   *(f"--collector.{c}" for c in self.COLLECTORS),
                   "--collector.netdev.device-include=^lo$", "--collector.netdev.device-exclude="]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
            if wait_listening(self.port, timeout=5):
                return self
            self.__exit__()
        raise RuntimeError("prometheus-node-exporter did not start: " + self.log())

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-2000:]

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve_leaky(port: int) -> None:
    peer = FlappingPeer(port)
    peer.up()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "leak":
        _serve_leaky(int(sys.argv[2]))
    else:
        sys.exit("usage: python tests/exporter_peers.py leak PORT")
