"""A target of known capacity for the breaking-point tests, on 127.0.0.1.

``CapacityPeer(concurrency=C, hold=T)`` serves HTTP/1.1 (keep-alive) from its own thread and
event loop: at most C requests are served at once, each held for T seconds, so it completes at
most C / T requests per second. Offered more, requests queue inside it and their latency grows
without bound, as a saturated server's does. ``GET /health`` answers at once (outside the limit).
``process=True`` serves from a child process instead, so that a busy test process (a dashboard
rendering beside it) cannot hold its answers; its counters then stay in the child.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path


class CapacityPeer:
    def __init__(self, concurrency: int = 4, hold: float = 0.02, process: bool = False):
        self.process = process
        self._child: subprocess.Popen | None = None
        self.concurrency = concurrency
        self.hold = hold
        self.port = 0
        self.served = 0
        self.most_waiting = 0
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def capacity(self) -> float:
        """Requests per second it can complete."""
        return self.concurrency / self.hold

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CapacityPeer:
        if self.process:
            self._child = subprocess.Popen([sys.executable, __file__, str(self.concurrency), str(self.hold)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           cwd=Path(__file__).resolve().parent.parent)
            line = self._child.stdout.readline()
            if not line.strip().isdigit():
                self._child.kill()
                raise RuntimeError(f"capacity peer did not start: {line!r}")
            self.port = int(line)
            return self
        self._thread = threading.Thread(target=self._run, name="capacity-peer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("capacity peer did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._child is not None:
            self._child.stdin.close()  # the child stops when its stdin closes
            try:
                self._child.wait(10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            return
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._limit = asyncio.Semaphore(self.concurrency)
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shutdown(self) -> None:
        assert self._server is not None and self._loop is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_later(0.2, self._loop.stop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                if head.split(b" ", 2)[1] == b"/health":
                    body = b'{"status":"ok"}'
                else:
                    self._waiting += 1
                    self.most_waiting = max(self.most_waiting, self._waiting)
                    async with self._limit:
                        self._waiting -= 1
                        end = time.monotonic() + self.hold
                        await asyncio.sleep(self.hold)
                        while time.monotonic() < end:  # never hand the slot back early
                            await asyncio.sleep(end - time.monotonic())
                    self.served += 1
                    body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, asyncio.CancelledError, IndexError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


if __name__ == "__main__":  # CapacityPeer(process=True): serve until stdin closes
    with CapacityPeer(int(sys.argv[1]), float(sys.argv[2])) as peer:
        print(peer.port, flush=True)
        sys.stdin.read()
