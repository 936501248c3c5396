"""Real protocol peers for the protocol tests and the WebSocket bench, on 127.0.0.1 free ports.

- ``WsPeer``: a ``websockets`` (asyncio) server. Paths: ``/echo`` (every message back as is;
  ``?delay_ms=N`` waits first), ``/pubsub`` (subscribe / publish / a shared ``ticker`` channel
  broadcast every ``tick_ms``; ``fragmented`` and ``binary`` answer with such a message first), ``/forbidden`` (handshake rejected with 403), ``/auth`` (401
  without ``Authorization: Bearer secret``), ``/close1011`` (closes with code 1011 after the first
  message), ``/silent`` (never answers), ``/chat`` (speaks only subprotocol ``chat.v1``).
- ``graphql_app()``: a strawberry-graphql schema (users, user, boom, createUser) at ``/graphql``.
- ``mcp_app()``: an MCP server built with the official SDK (``MCPServer``) exposing ``echo``,
  ``get_time`` and ``get_user_info`` over Streamable HTTP at ``/mcp``.
- ``UvicornThread``: serves an ASGI app in a background thread.

``python -m tests.protocol_peers ws --port N --tick-ms M`` runs the WebSocket peer in the
foreground (the bench pins it to its own core).
"""


import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed, NegotiationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- WebSocket ---------------------------------------------------------------------------------


class WsPeer:
    """The WebSocket peer; ``start()`` runs it in a thread with its own event loop (or ``serve``
    in the foreground). ``seen`` keeps (path, headers, subprotocol) of every accepted handshake."""

    def __init__(self, port: int = 0, tick_ms: float = 20.0):
        self.port = port or free_port()
        self.tick_ms = tick_ms
        self.channels: dict[str, set] = {}
        self.seen: list[tuple[str, dict[str, str], str | None]] = []
        self.connections = 0
        self.messages_in = 0
        self.ticks = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- handshake --

    def _process_request(self, connection, request):
        path = urlsplit(request.path).path
        if path == "/forbidden":
            return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        if path == "/auth" and request.headers.get("Authorization") != "Bearer secret":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if path not in ("/echo", "/pubsub", "/close1011", "/silent", "/chat", "/auth"):
            return connection.respond(HTTPStatus.NOT_FOUND, "no such path\n")
        return None

    @staticmethod
    def _select_subprotocol(connection, subprotocols):
        if urlsplit(connection.request.path).path == "/chat":
            if "chat.v1" in subprotocols:
                return "chat.v1"
            raise NegotiationError("/chat speaks only chat.v1")  # the handshake fails with 400
        return None

    # -- connections --

    async def _handler(self, ws) -> None:
        self.connections += 1
        parts = urlsplit(ws.request.path)
        path = parts.path
        self.seen.append((path, dict(ws.request.headers.raw_items()), ws.subprotocol))
        try:
            if path in ("/echo", "/auth", "/chat"):
                delay = float(parse_qs(parts.query).get("delay_ms", ["0"])[0]) / 1000
                async for msg in ws:
                    self.messages_in += 1
                    if delay:
                        await asyncio.sleep(delay)
                    await ws.send(msg)
            elif path == "/pubsub":
                await self._pubsub(ws)
            elif path == "/close1011":
                async for _msg in ws:
                    self.messages_in += 1
                    await ws.close(1011, "internal error")
                    return
            elif path == "/silent":
                async for _msg in ws:
                    self.messages_in += 1
        except ConnectionClosed:
            pass
        finally:
            for subs in self.channels.values():
                subs.discard(ws)

    async def _pubsub(self, ws) -> None:
        async for raw in ws:
            self.messages_in += 1
            try:
                msg = json.loads(raw)
            except ValueError:
                await ws.send(json.dumps({"type": "error", "error": "not JSON"}))
                continue
            kind = msg.get("type")
            reply: dict = {"type": "error", "error": f"unknown type {kind!r}"}
            if kind == "subscribe":
                self.channels.setdefault(msg.get("channel", ""), set()).add(ws)
                reply = {"type": "subscribed", "channel": msg.get("channel")}
            elif kind == "unsubscribe":
                self.channels.get(msg.get("channel", ""), set()).discard(ws)
                reply = {"type": "unsubscribed", "channel": msg.get("channel")}
            elif kind == "publish":
                subs = self.channels.get(msg.get("channel", ""), set())
                broadcast(subs, json.dumps({"type": "message", "channel": msg.get("channel"), "data": msg.get("data")}))
                reply = {"type": "published", "receivers": len(subs)}
            elif kind == "ping":
                reply = {"type": "pong"}
            elif kind == "fragmented":  # one text message in three frames, then a normal one
                await ws.send(iter(['{"type": "frag', 'mented", "n"', ": 1}"]))
                reply = {"type": "after-fragmented"}
            elif kind == "binary":
                await ws.send(b"\x00\x01binary")
                reply = {"type": "after-binary"}
            if "id" in msg:
                reply["id"] = msg["id"]
            await ws.send(json.dumps(reply))

    async def _ticker(self) -> None:
        interval = self.tick_ms / 1000
        next_at = time.monotonic()
        seq = 0
        while True:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()
            subs = self.channels.get("ticker")
            if subs:
                seq += 1
                self.ticks += len(subs)
                broadcast(subs, json.dumps({"type": "tick", "seq": seq, "ts": time.time()}))

    async def serve(self, stop: asyncio.Future | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop if stop is not None else self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", self.port, process_request=self._process_request,
                         select_subprotocol=self._select_subprotocol, subprotocols=["chat.v1"],
                         compression=None, ping_interval=None, max_queue=None, logger=_QUIET):
            ticker = asyncio.ensure_future(self._ticker())
            self._ready.set()
            try:
                await self._stop
            finally:
                ticker.cancel()

    def start(self) -> "WsPeer":
        def run():
            asyncio.run(self.serve())

        self._thread = threading.Thread(target=run, name="ws-peer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket peer did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        if self._thread is not None:
            self._thread.join(5)


_QUIET = logging.getLogger("tests.protocol_peers.ws")
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False


# ---- ASGI peers (GraphQL, MCP) --------------------------------------------------------------------


class UvicornThread:
    """Serve an ASGI app with uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, app, port: int = 0):
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "UvicornThread":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


USERS = [{"id": str(i), "name": f"User {i}", "email": f"user{i}@example.com"} for i in range(1, 101)]


def graphql_app():
    """strawberry-graphql at /graphql: ``users(first)``, ``user(id)``, ``boom`` (always an error),
    mutation ``createUser(name)``."""
    import strawberry
    from starlette.applications import Starlette
    from starlette.routing import Route
    from strawberry.asgi import GraphQL

    @strawberry.type
    class User:
        id: strawberry.ID
        name: str
        email: str

    @strawberry.type
    class Query:
        @strawberry.field
        def users(self, first: int = 10) -> list[User]:
            return [User(**u) for u in USERS[: max(0, min(first, 100))]]

        @strawberry.field
        def user(self, id: strawberry.ID) -> User | None:
            n = int(id) if str(id).isdigit() else 0
            return User(**USERS[n - 1]) if 1 <= n <= len(USERS) else None

        @strawberry.field
        def boom(self) -> str:
            raise ValueError("boom: this field always fails")

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def create_user(self, name: str) -> User:
            return User(id=strawberry.ID("101"), name=name, email=f"{name.lower()}@example.com")

    schema = strawberry.Schema(query=Query, mutation=Mutation)
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    return Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])])


def mcp_app(session_idle_timeout: float | None = 1800):
    """The official MCP SDK's ``MCPServer`` with tools echo, get_time, get_user_info, served as
    Streamable HTTP at /mcp."""
    from mcp.server.mcpserver import MCPServer

    for name in ("mcp", "mcp.server", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server = MCPServer("perftui-test-peer", instructions="tools: echo, get_time, get_user_info")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def get_time() -> str:
        """The server's UTC time, ISO 8601."""
        return dt.datetime.now(dt.UTC).isoformat()

    @server.tool()
    def get_user_info(user_id: int) -> dict:
        """A user by id (1..100)."""
        if not 1 <= user_id <= len(USERS):
            raise ValueError(f"user {user_id} not found")
        return USERS[user_id - 1]

    return server.streamable_http_app(session_idle_timeout=session_idle_timeout)


@contextlib.contextmanager
def serving(app):
    server = UvicornThread(app).start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", choices=["ws"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tick-ms", type=float, default=100.0)
    args = ap.parse_args()
    peer = WsPeer(args.port, tick_ms=args.tick_ms)

    async def run() -> None:
        import signal

        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await peer.serve(stop)
        # what was sent, for the bench to compare with what perftui received
        print(json.dumps({"ticks_sent": peer.ticks, "connections": peer.connections,
                          "messages_in": peer.messages_in}), flush=True)

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:  # pragma: no cover
        asyncio.run(run())


if __name__ == "__main__":
    main()
