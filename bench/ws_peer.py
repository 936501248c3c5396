"""A WebSocket ticker server fast enough to load perftui's WebSocket client at 10,000 connections.

Used by ``bench/ws_bench.py --peer fast``. The tests' peer (``tests.protocol_peers ws``, a
``websockets`` server) held 7,345 of 10,000 connections and pushed 31.5 k messages/s on its
core: per connection it runs a handler coroutine and, per message, a frame encoder. This one is
an ``asyncio.Protocol`` on uvloop that speaks only what the bench needs: the RFC 6455 handshake,
masked client frames (text/binary, ping -> pong, close), ``{"type": "subscribe", "channel":
"ticker", "id": ...}`` answered with ``{"type": "subscribed", ..., "id": ...}`` like the tests'
peer, and every ``--tick-ms`` one ``{"type": "tick", ...}`` text frame built once and written as
the same bytes to every subscriber (server frames are not masked), so a message costs one
``transport.write``. ``--reuse-port`` lets several processes share the port (SO_REUSEPORT; the
kernel spreads the connections), each with its own ticker.

On SIGTERM it prints ``{"ticks_sent", "connections", "messages_in"}`` as one JSON line.

    python bench/ws_peer.py --port 9001 --tick-ms 100 [--reuse-port]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUBS: set["Conn"] = set()
STATS = {"ticks_sent": 0, "connections": 0, "messages_in": 0}


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def unmask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        SUBS.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            key = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            if key is None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.upgraded = True
            STATS["connections"] += 1
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            masked = b1 & 0x80
            if len(buf) < pos + (4 if masked else 0) + n:
                break
            if masked:
                key = buf[pos:pos + 4]
                pos += 4
                payload = unmask(buf[pos:pos + n], key)
            else:
                payload = buf[pos:pos + n]
            buf = buf[pos + n:]
            self._message(b0 & 0x0F, payload)
        self.buf = buf

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == 8:  # close: echo it and hang up
            self.transport.write(frame(payload[:2], 8))
            self.transport.close()
            return
        if opcode == 9:
            self.transport.write(frame(payload, 10))
            return
        if opcode not in (1, 2):
            return
        STATS["messages_in"] += 1
        try:
            msg = json.loads(payload)
        except ValueError:
            msg = {}
        reply: dict = {"type": "echo"}
        if isinstance(msg, dict):
            if msg.get("type") == "subscribe":
                SUBS.add(self)
                reply = {"type": "subscribed", "channel": msg.get("channel")}
            if "id" in msg:
                reply["id"] = msg["id"]
        self.transport.write(frame(json.dumps(reply).encode()))


async def ticker(tick_ms: float) -> None:
    interval = tick_ms / 1000
    next_at = time.monotonic()
    seq = 0
    while True:
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_at = time.monotonic()
        if SUBS:
            seq += 1
            data = frame(json.dumps({"type": "tick", "seq": seq, "ts": time.time()}).encode())
            for c in SUBS:
                c.transport.write(data)
            STATS["ticks_sent"] += len(SUBS)


async def main_async(args) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    server = await loop.create_server(Conn, sock=sock, backlog=8192)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    tick = asyncio.ensure_future(ticker(args.tick_ms))
    await stop
    tick.cancel()
    server.close()
    print(json.dumps(STATS), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tick-ms", type=float, default=100.0)
    ap.add_argument("--reuse-port", action="store_true")
    args = ap.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
