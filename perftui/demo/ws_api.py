"""``WS /ws``: a small JSON message protocol for WebSocket load tests.

Text frames holding a JSON object are handled by ``type``; every reply to a message that
carried an ``"id"`` carries the same ``"id"``:

* ``{"type":"ping"}`` -> ``{"type":"pong"}``
* ``{"type":"echo","data":...}`` -> ``{"type":"echo","data":...}``
* ``{"type":"subscribe","channel":"c"}`` -> ``{"type":"subscribed","channel":"c"}``; the
  socket then receives ``{"type":"message","channel":"c","data":...}`` for every publish.
  ``channel: "ticker"`` (with ``interval_ms``, default 1000) makes the server push
  ``{"type":"tick","seq":n,"ts":...}`` every interval until the socket closes.
* ``{"type":"unsubscribe","channel":"c"}`` -> ``{"type":"unsubscribed","channel":"c"}``
* ``{"type":"publish"|"broadcast","channel":"c","data":...}`` fans out to the channel's
  subscribers and acks the sender with ``{"type":"published","channel":"c","receivers":n}``.

A JSON object without ``type`` is echoed back as is; non-JSON text (and binary frames) are
echoed back verbatim. A ``?token=`` query or ``Authorization`` header is accepted, never
required. Fan-out goes through a bounded per-socket queue, so one slow subscriber cannot
stall a publisher (its oldest pending messages are dropped instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from perftui.demo.metrics import DemoMetrics
from perftui.demo.responses import DecodeError, encode

_decode = msgspec.json.decode

TICKER = "ticker"
MIN_INTERVAL_MS = 5
MAX_INTERVAL_MS = 60_000
QUEUE_LIMIT = 1024


class _Conn:
    __slots__ = ("ws", "metrics", "lock", "queue", "writer", "ticker", "channels", "dropped")

    def __init__(self, ws: WebSocket, metrics: DemoMetrics) -> None:
        self.ws = ws
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.queue: asyncio.Queue[str] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.ticker: asyncio.Task[None] | None = None
        self.channels: set[str] = set()
        self.dropped = 0

    async def send(self, text: str) -> None:
        async with self.lock:
            await self.ws.send_text(text)
        self.metrics.ws_out.inc()

    def push(self, text: str) -> None:
        """Queue a fan-out message without waiting (drop the oldest when full)."""
        if self.queue is None:
            self.queue = asyncio.Queue(QUEUE_LIMIT)
            self.writer = asyncio.create_task(self._write_loop())
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(text)

    async def _write_loop(self) -> None:
        assert self.queue is not None
        with contextlib.suppress(Exception):
            while True:
                await self.send(await self.queue.get())

    async def _tick_loop(self, interval: float) -> None:
        seq = 0
        next_at = time.monotonic()
        with contextlib.suppress(Exception):
            while True:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:  # fell behind (slow client): skip missed ticks rather than burst
                    next_at = time.monotonic()
                seq += 1
                await self.send(encode({"type": "tick", "seq": seq, "ts": time.time()}).decode())

    def start_ticker(self, interval_ms: float) -> None:
        self.stop_ticker()
        self.ticker = asyncio.create_task(self._tick_loop(interval_ms / 1000.0))

    def stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None

    def close(self) -> None:
        self.stop_ticker()
        if self.writer is not None:
            self.writer.cancel()
            self.writer = None


class WebSocketHub:
    def __init__(self, metrics: DemoMetrics) -> None:
        self.metrics = metrics
        self.channels: dict[str, set[_Conn]] = {}

    def publish(self, channel: str, data: Any) -> int:
        subscribers = self.channels.get(channel)
        if not subscribers:
            return 0
        text = encode({"type": "message", "channel": channel, "data": data}).decode()
        for conn in subscribers:
            conn.push(text)
        return len(subscribers)

    def _unsubscribe(self, conn: _Conn, channel: str) -> None:
        conn.channels.discard(channel)
        subscribers = self.channels.get(channel)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self.channels[channel]

    async def _handle(self, conn: _Conn, msg: dict[str, Any]) -> dict[str, Any] | None:
        kind = msg.get("type")
        if kind == "ping":
            return {"type": "pong", "ts": time.time()}
        if kind == "echo":
            return {"type": "echo", "data": msg.get("data")}
        if kind in ("publish", "broadcast"):
            channel = msg.get("channel")
            if not isinstance(channel, str) or not channel:
                return {"type": "error", "error": f"{kind} needs a 'channel' string"}
            receivers = self.publish(channel, msg.get("data"))
            return {"type": "published", "channel": channel, "receivers": receivers}
        if kind == "subscribe":
            channel = msg.get("channel")
            if not isinstance(channel, str) or not channel:
                return {"type": "error", "error": "subscribe needs a 'channel' string"}
            if channel == TICKER:
                interval = msg.get("interval_ms", 1000)
                if isinstance(interval, bool) or not isinstance(interval, (int, float)):
                    return {"type": "error", "error": "interval_ms must be a number"}
                interval = max(MIN_INTERVAL_MS, min(MAX_INTERVAL_MS, interval))
                conn.start_ticker(interval)
                return {"type": "subscribed", "channel": channel, "interval_ms": interval}
            conn.channels.add(channel)
            self.channels.setdefault(channel, set()).add(conn)
            return {"type": "subscribed", "channel": channel}
        if kind == "unsubscribe":
            channel = msg.get("channel")
            if channel == TICKER:
                conn.stop_ticker()
            elif isinstance(channel, str):
                self._unsubscribe(conn, channel)
            return {"type": "unsubscribed", "channel": channel}
        if kind is None:
            return msg  # no type: echo the object back as is
        return {"type": "error", "error": f"unknown message type {kind!r}"}

    async def endpoint(self, websocket: WebSocket) -> None:
        metrics = self.metrics
        await websocket.accept()
        conn = _Conn(websocket, metrics)
        metrics.ws_connections_now += 1
        ws_in = metrics.ws_in
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                ws_in.inc()
                text = message.get("text")
                if text is None:
                    payload = message.get("bytes")
                    if payload is not None:
                        async with conn.lock:
                            await websocket.send_bytes(payload)
                        metrics.ws_out.inc()
                    continue
                try:
                    msg = _decode(text)
                except DecodeError:
                    msg = None
                if not isinstance(msg, dict):
                    await conn.send(text)
                    continue
                reply = await self._handle(conn, msg)
                if reply is None:
                    continue
                if "id" in msg and reply is not msg:
                    reply["id"] = msg["id"]
                await conn.send(encode(reply).decode())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            metrics.ws_connections_now -= 1
            for channel in list(conn.channels):
                self._unsubscribe(conn, channel)
            conn.close()
