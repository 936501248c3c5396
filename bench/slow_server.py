"""A server that answers every request after exactly ``--delay`` (20 ms by default): the tail
benchmark's target (``bench/tail.py``). Keep-alive; fixed 2-byte body; GET only.

Default: one thread, ``select`` over every connection; a request's deadline is taken when it is
read; the loop waits until 1 ms before the next deadline, then polls, so every answer leaves
within ~0.2 ms of 20 ms whatever the phase of its arrival (the poll costs the server's core up to
a fifth of its time at 200/s: it has one to itself). An event-loop timer is not exact enough
for this: uvloop's (``--loop``, the server used before) ticks in whole milliseconds and fires up
to ~1.5 ms late depending on when in the millisecond the request came, which spreads a client's
tail by the server's own clock, and differently for a closed-loop client (which sends right after
the server's timer fired, always at the same phase) than for an open-model one (any phase).
``python bench/slow_server.py --port 8099``.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import select
import socket
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
MARGIN = 0.001
"""Wait in ``select`` until this long before the next deadline, then poll (timed waits on this
machine overshoot by 0.2 ms at the median and 1.7 ms at p99)."""


def serve_select(port: int, delay: float) -> None:
    """One thread, ``select`` (microsecond timeouts, unlike epoll's milliseconds) over every
    connection and a heap of deadlines."""
    clock = time.perf_counter
    lsock = socket.create_server(("127.0.0.1", port), backlog=4096)
    lsock.setblocking(False)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    conns: dict[socket.socket, bytes] = {}
    due: list[tuple[float, int, socket.socket]] = []
    seq = 0
    while True:
        timeout = None
        if due:
            timeout = max(0.0, due[0][0] - MARGIN - clock())
        readable, _, _ = select.select([lsock, *conns], [], [], timeout)
        now = clock()
        for s in readable:
            if s is lsock:
                try:
                    c, _ = lsock.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[c] = b""
                continue
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                conns.pop(s, None)
                s.close()
                continue
            buf = conns[s] + data
            while (end := buf.find(b"\r\n\r\n")) >= 0:
                buf = buf[end + 4:]
                seq += 1
                heapq.heappush(due, (now + delay, seq, s))
            conns[s] = buf
        # Within MARGIN of the next deadline the loop polls (select with no wait) instead of
        # sleeping: a timed wait overshoots by 0.2-1.7 ms here, and requests that come in
        # meanwhile are still read at once (a request's 20 ms start when it is read).
        while due and due[0][0] <= clock():
            _, _, s = heapq.heappop(due)
            if s in conns:
                try:
                    s.send(RESPONSE)
                except OSError:
                    conns.pop(s, None)
                    s.close()


class Slow(asyncio.Protocol):
    """``--loop``: uvloop, a ``call_later`` per request (millisecond timer)."""

    delay = 0.02

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data
        loop = asyncio.get_running_loop()
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            buf = buf[end + 4:]  # GET only: no request bodies
            loop.call_later(self.delay, self._answer)
        self.buf = buf

    def _answer(self):
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


async def serve_loop(port: int, delay: float) -> None:
    Slow.delay = delay
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Slow, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--delay", type=float, default=0.02, help="seconds before each answer")
    ap.add_argument("--loop", action="store_true", help="uvloop and call_later (millisecond timer) instead of select and a spin")
    a = ap.parse_args()
    try:
        if a.loop:
            import uvloop
            uvloop.run(serve_loop(a.port, a.delay))
        else:
            serve_select(a.port, a.delay)
    except KeyboardInterrupt:
        sys.exit(0)
