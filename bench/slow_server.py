"""A server that answers every request after exactly ``--delay`` (20 ms by default): the tail
benchmark's target (``bench/tail.py``). uvloop, an ``asyncio.Protocol`` per connection and a
``call_later`` per request, so the server adds no tail of its own beyond the loop's timer
resolution. Keep-alive; fixed 2-byte body. ``python bench/slow_server.py --port 8099``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Slow(asyncio.Protocol):
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


async def main(port: int, delay: float) -> None:
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
    a = ap.parse_args()
    try:
        uvloop.run(main(a.port, a.delay))
    except KeyboardInterrupt:
        sys.exit(0)
