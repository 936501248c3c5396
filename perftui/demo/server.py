"""The perftui demo target: a Starlette app served by uvicorn (uvloop + httptools).

Endpoints. *Health and metrics* (never delayed or failed): ``GET /health`` ->
``{"status":"ok"}``; ``GET /health/detailed`` -> per-dependency checks and uptime, 503 while
degraded (during a stall or with an error rate above 0.5); ``GET /metrics`` -> Prometheus
text (process metrics plus ``demo_http_requests_total{method,route,status}``,
``demo_http_request_duration_seconds``, ``demo_http_requests_in_flight``,
``demo_ws_connections``, ``demo_ws_messages_total{direction}``, ``demo_mcp_sessions``);
``GET /metrics/json`` -> the same numbers as JSON. *Auth*: ``POST /auth/sign-in``
(``{"email","password"}``, password ``TestPassword123!``; ``admin@example.com`` gets the
admin role) and ``POST /auth/login`` (``{"username","password"}``, password
``loadtestpassword``; answers ``tokens.accessToken``) issue HMAC-signed bearer tokens.
*API*: ``GET /api/profile`` (bearer), ``GET /api/users?limit=&offset=``,
``GET /api/users/{id}`` (1..1000), ``POST /api/users`` (201), ``GET /api/bounties?limit=&status=``,
``GET /api/bounties/{id}`` (1..500), ``GET /wallet/balance``, ``GET /wallet/transactions``,
``GET /notifications``, ``GET /notifications/unread-count`` (bearer; 401 without),
``GET /admin/metrics`` and ``GET /admin/analytics/metrics`` (401 without a token, 403 for a
non-admin). *Protocols*: ``POST /graphql`` (graphql-core: ``users``, ``user``, ``bounties``,
``bounty``, mutation ``createBounty``), ``POST /mcp`` / ``/mcp/sse`` and ``DELETE /mcp``
(MCP Streamable HTTP subset: ``initialize``, ``ping``, ``tools/list``, ``tools/call`` with
``echo``, ``get_time``, ``get_user_info``), ``WS /ws`` (ping/pong, echo, pub/sub, ticker).
*Test helpers*: ``GET /delay/{ms}``, ``GET /status/{code}``, ``GET /bytes/{n}`` (up to 16 MiB),
``POST /echo``; ``GET|POST /_demo/config`` (``{"latency":"20ms","error_rate":0.1}``) and
``POST /_demo/stall`` (``{"seconds":1.0}``) change behaviour at runtime. Everything under
``/api``, ``/auth``, ``/wallet``, ``/notifications``, ``/admin``, ``/graphql`` and ``/mcp``
is "loaded": it waits out any stall, sleeps for one latency sample, then fails with 500
``{"error":"injected failure"}`` with probability ``error_rate``.
"""

from __future__ import annotations

import functools
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from perftui.demo import data, mcp_api
from perftui.demo.graphql_api import GraphQLService, parse_request
from perftui.demo.latency import Latency
from perftui.demo.metrics import CONTENT_TYPE, DemoMetrics, MetricsMiddleware
from perftui.demo.responses import JSON, decode, encode, error, json, raw_json
from perftui.demo.state import DemoState
from perftui.demo.ws_api import WebSocketHub

__all__ = ["create_app", "serve", "READY_PREFIX", "MAX_BYTES"]

READY_PREFIX = "perftui demo target listening on "
MAX_BYTES = 16 * 1024 * 1024
MAX_DELAY_MS = 600_000
MAX_STALL_S = 3600.0

Endpoint = Callable[[Request], Awaitable[Response]]

_HEALTH_OK = encode({"status": "ok"})
_INJECTED = encode({"error": "injected failure"})
_UNAUTHORIZED = encode({"error": "unauthorized"})
_FORBIDDEN = encode({"error": "forbidden: admin role required"})
_BYTES_BLOCK = random.Random(1234).randbytes(1 << 16)


def _unauthorized() -> Response:
    return Response(_UNAUTHORIZED, 401, {"WWW-Authenticate": "Bearer"}, media_type=JSON)


async def _credentials(request: Request, name_key: str) -> tuple[str, str] | Response:
    """(name, password) from a JSON body, or the 400 answer saying what is wrong with it."""
    try:
        body = await _json_body(request)
    except ValueError:
        return error("request body must be JSON", 400)
    if not isinstance(body, dict):
        return error("request body must be a JSON object", 400)
    name, password = body.get(name_key), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name.strip():
        return error(f"{name_key} and password are required", 400)
    return name, password


async def _json_body(request: Request) -> Any:
    """The decoded JSON body, or raises ``ValueError``."""
    return decode(await request.body())


class DemoApp:
    """Holds state and the endpoint closures; :func:`create_app` wires it into Starlette."""

    def __init__(self, latency: str | Latency, error_rate: float) -> None:
        self.state = DemoState(latency, error_rate)
        self.metrics = DemoMetrics()
        self.metrics.mcp_sessions.set_function(lambda: len(self.state.mcp_sessions))
        self.tokens = data.TokenSigner()
        self.graphql = GraphQLService()
        self.ws = WebSocketHub(self.metrics)
        self.rng = random.Random()

    # -- plumbing -----------------------------------------------------------------------
    def loaded(self, endpoint: Endpoint) -> Endpoint:
        """Wrap an endpoint with the stall / latency / injected-failure behaviour."""
        state = self.state

        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            if state.stall_until or not state.latency.is_zero or state.error_rate > 0.0:
                if await state.apply_load():
                    return Response(_INJECTED, 500, media_type=JSON)
            return await endpoint(request)

        return wrapper

    def user(self, request: Request) -> dict[str, Any] | None:
        return self.tokens.from_header(request.headers.get("authorization"))

    # -- health & metrics -----------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return raw_json(_HEALTH_OK)

    async def health_detailed(self, request: Request) -> Response:
        state = self.state
        degraded = state.degraded()
        rng = self.rng
        checks = {
            "database": {"status": "degraded" if degraded else "up", "latency_ms": round(rng.uniform(0.3, 2.5), 3)},
            "cache": {"status": "up", "latency_ms": round(rng.uniform(0.05, 0.5), 3)},
            "queue": {"status": "up", "latency_ms": round(rng.uniform(0.1, 1.0), 3), "depth": rng.randint(0, 25)},
        }
        body = {
            "status": "degraded" if degraded else "ok",
            "checks": checks,
            "uptime_s": round(state.uptime(), 3),
            "version": mcp_api.SERVER_INFO["version"],
        }
        if degraded:
            body["reasons"] = [
                r
                for r, on in (("stall", state.stall_remaining() > 0), ("error_rate", state.error_rate > 0.5))
                if on
            ]
        return json(body, 503 if degraded else 200)

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.text(), media_type=CONTENT_TYPE)

    async def metrics_json(self, request: Request) -> Response:
        return json(self.metrics.snapshot({"uptime_s": round(self.state.uptime(), 3)}))

    # -- auth -----------------------------------------------------------------------------
    async def sign_in(self, request: Request) -> Response:
        creds = await _credentials(request, "email")
        if isinstance(creds, Response):
            return creds
        email, password = creds
        if password != data.SIGN_IN_PASSWORD:
            return error("invalid credentials", 401)
        user = data.user_for_email(email)
        token = self.tokens.issue(user)
        return json({"token": token, "user": {"id": user["id"], "email": user["email"], "name": user["name"], "role": user["role"]}})

    async def login(self, request: Request) -> Response:
        creds = await _credentials(request, "username")
        if isinstance(creds, Response):
            return creds
        username, password = creds
        if password != data.LOGIN_PASSWORD:
            return error("invalid credentials", 401)
        user = data.user_for_username(username)
        return json(
            {
                "tokens": {
                    "accessToken": self.tokens.issue(user),
                    "refreshToken": self.tokens.issue(user, kind="refresh"),
                    "expiresIn": data.TOKEN_TTL_S,
                    "tokenType": "Bearer",
                },
                "user": {"id": user["id"], "username": user["username"], "email": user["email"], "role": user["role"]},
            }
        )

    # -- API --------------------------------------------------------------------------------
    async def profile(self, request: Request) -> Response:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        return json({"id": claims["sub"], "email": claims["email"], "name": claims.get("name", ""), "role": claims.get("role", "user")})

    async def list_users(self, request: Request) -> Response:
        q = request.query_params
        limit = data.query_int(q.get("limit"), 20, 0, 100)
        offset = data.query_int(q.get("offset"), 0, 0, data.N_USERS)
        items = data.USERS[offset : offset + limit]
        return json({"items": items, "users": items, "total": data.N_USERS, "limit": limit, "offset": offset})

    async def get_user(self, request: Request) -> Response:
        uid = data.parse_id(request.path_params["id"], data.N_USERS)
        if uid is None:
            return error("user not found", 404)
        return raw_json(data.USER_JSON[uid - 1])

    async def create_user(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return error("request body must be JSON", 400)
        if not isinstance(body, dict):
            return error("request body must be a JSON object", 400)
        state = self.state
        uid = state.next_user_id
        state.next_user_id += 1
        return json({**body, "id": uid, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, 201)

    async def list_bounties(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("status")
        pool = data.BOUNTIES if not status else data.BOUNTIES_BY_STATUS.get(status, [])
        limit = data.query_int(q.get("limit"), 20, 0, 100)
        offset = data.query_int(q.get("offset"), 0, 0, len(pool))
        items = pool[offset : offset + limit]
        return json({"items": items, "bounties": items, "total": len(pool), "limit": limit, "offset": offset})

    async def get_bounty(self, request: Request) -> Response:
        bid = data.parse_id(request.path_params["id"], data.N_BOUNTIES)
        if bid is None:
            return error("bounty not found", 404)
        return raw_json(data.BOUNTY_JSON[bid - 1])

    async def wallet_balance(self, request: Request) -> Response:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        uid = int(claims["sub"])
        return json({"user_id": uid, "balance": round(1000 + (uid * 7919) % 50_000 / 100, 2), "currency": "USD", "pending": round((uid * 31) % 2_000 / 100, 2)})

    async def wallet_transactions(self, request: Request) -> Response:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        uid = int(claims["sub"])
        limit = data.query_int(request.query_params.get("limit"), 20, 0, 100)
        items = [
            {
                "id": uid * 1000 + i,
                "type": "credit" if (uid + i) % 3 else "debit",
                "amount": round(((uid + 1) * (i + 3) * 37) % 10_000 / 100, 2),
                "currency": "USD",
                "created_at": f"2025-{1 + i % 12:02d}-{1 + (i * 3) % 28:02d}T10:00:00Z",
            }
            for i in range(limit)
        ]
        return json({"items": items, "transactions": items, "total": limit})

    async def notifications(self, request: Request) -> Response:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        uid = int(claims["sub"])
        limit = data.query_int(request.query_params.get("limit"), 20, 0, 100)
        items = [
            {"id": uid * 100 + i, "title": f"Bounty #{1 + (uid + i) % data.N_BOUNTIES} was updated", "read": (uid + i) % 4 != 0}
            for i in range(limit)
        ]
        return json({"items": items, "notifications": items, "total": limit})

    async def unread_count(self, request: Request) -> Response:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        return json({"count": int(claims["sub"]) % 7, "unread": int(claims["sub"]) % 7})

    def _admin(self, request: Request) -> Response | None:
        claims = self.user(request)
        if claims is None:
            return _unauthorized()
        if claims.get("role") != "admin":
            return Response(_FORBIDDEN, 403, media_type=JSON)
        return None

    async def admin_metrics(self, request: Request) -> Response:
        denied = self._admin(request)
        if denied is not None:
            return denied
        snap = self.metrics.snapshot()
        return json({"requests_total": snap["requests_total"], "in_flight": snap["in_flight"], "ws_connections": snap["ws_connections"], "users": data.N_USERS, "bounties": data.N_BOUNTIES, "uptime_s": round(self.state.uptime(), 3)})

    async def admin_analytics(self, request: Request) -> Response:
        denied = self._admin(request)
        if denied is not None:
            return denied
        by_status = {s: len(v) for s, v in data.BOUNTIES_BY_STATUS.items()}
        return json({"daily_active_users": 412, "signups_7d": 58, "bounties_by_status": by_status, "total_rewards": sum(b["reward"] for b in data.BOUNTIES)})

    # -- protocols --------------------------------------------------------------------------
    async def graphql_endpoint(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return json({"errors": [{"message": "request body must be JSON"}]}, 400)
        parsed = parse_request(body)
        if isinstance(parsed, str):
            return json({"errors": [{"message": parsed}]}, 400)
        return json(await self.graphql.run(*parsed))

    async def mcp(self, request: Request) -> Response:
        return await mcp_api.handle(request, self.state)

    async def mcp_delete(self, request: Request) -> Response:
        return await mcp_api.handle_delete(request, self.state)

    async def mcp_get(self, request: Request) -> Response:
        # A server-initiated SSE stream is optional in Streamable HTTP; we do not offer one.
        return Response(status_code=405, headers={"Allow": "POST, DELETE"})

    # -- test helpers -----------------------------------------------------------------------
    async def delay(self, request: Request) -> Response:
        try:
            ms = float(request.path_params["ms"])
        except ValueError:
            return error("delay must be a number of milliseconds", 400)
        if not 0 <= ms <= MAX_DELAY_MS:
            return error(f"delay must be between 0 and {MAX_DELAY_MS} ms", 400)
        if ms > 0:
            await self.state.sleep(ms / 1000)
        return json({"delayed_ms": ms})

    async def status(self, request: Request) -> Response:
        text = request.path_params["code"]
        if not (text.isascii() and text.isdigit()) or not 200 <= int(text) <= 599:
            return error("status must be an integer between 200 and 599", 400)
        code = int(text)
        if code in (204, 304):
            return Response(status_code=code)
        return json({"status": code}, code)

    async def bytes_(self, request: Request) -> Response:
        text = request.path_params["n"]
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_BYTES:
            return error(f"n must be an integer between 0 and {MAX_BYTES}", 400)
        n = int(text)
        block = _BYTES_BLOCK
        body = block[:n] if n <= len(block) else (block * (n // len(block) + 1))[:n]
        return Response(body, media_type="application/octet-stream")

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        return Response(body, media_type=request.headers.get("content-type", "application/octet-stream"))

    async def demo_config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await _json_body(request)
            except ValueError:
                return error("request body must be JSON", 400)
            if not isinstance(body, dict):
                return error("request body must be a JSON object", 400)
            unknown = set(body) - {"latency", "error_rate"}
            if unknown:
                return error(f"unknown config keys: {sorted(unknown)}; expected latency, error_rate", 400)
            try:
                self.state.configure(body.get("latency"), body.get("error_rate"))
            except ValueError as exc:
                return error(str(exc), 400)
        return json(self.state.config_dict())

    async def demo_stall(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError:
            body = {}
        seconds = body.get("seconds", 1.0) if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_STALL_S:
            return error(f"seconds must be a number between 0 and {MAX_STALL_S:g}", 400)
        remaining = self.state.stall(float(seconds))
        return json({"stalled": remaining > 0, "seconds": seconds, "stall_remaining_s": round(remaining, 3)})

    # -- routing ------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        L = self.loaded
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/health/detailed", self.health_detailed, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
            Route("/metrics/json", self.metrics_json, methods=["GET"]),
            Route("/auth/sign-in", L(self.sign_in), methods=["POST"]),
            Route("/auth/login", L(self.login), methods=["POST"]),
            Route("/api/profile", L(self.profile), methods=["GET"]),
            Route("/api/users", L(self.list_users), methods=["GET"]),
            Route("/api/users", L(self.create_user), methods=["POST"]),
            Route("/api/users/{id}", L(self.get_user), methods=["GET"]),
            Route("/api/bounties", L(self.list_bounties), methods=["GET"]),
            Route("/api/bounties/{id}", L(self.get_bounty), methods=["GET"]),
            Route("/wallet/balance", L(self.wallet_balance), methods=["GET"]),
            Route("/wallet/transactions", L(self.wallet_transactions), methods=["GET"]),
            Route("/notifications", L(self.notifications), methods=["GET"]),
            Route("/notifications/unread-count", L(self.unread_count), methods=["GET"]),
            Route("/admin/metrics", L(self.admin_metrics), methods=["GET"]),
            Route("/admin/analytics/metrics", L(self.admin_analytics), methods=["GET"]),
            Route("/graphql", L(self.graphql_endpoint), methods=["POST"]),
            Route("/mcp", L(self.mcp), methods=["POST"]),
            Route("/mcp/sse", L(self.mcp), methods=["POST"]),
            Route("/mcp", L(self.mcp_delete), methods=["DELETE"]),
            Route("/mcp", self.mcp_get, methods=["GET"]),
            WebSocketRoute("/ws", self.ws.endpoint),
            Route("/delay/{ms}", self.delay, methods=["GET"]),
            Route("/status/{code}", self.status, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Route("/bytes/{n}", self.bytes_, methods=["GET"]),
            Route("/echo", self.echo, methods=["POST", "PUT", "PATCH"]),
            Route("/_demo/config", self.demo_config, methods=["GET", "POST"]),
            Route("/_demo/stall", self.demo_stall, methods=["POST"]),
        ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    return Response(encode({"error": message}), exc.status_code, headers=exc.headers, media_type=JSON)


def create_app(latency: str = "0ms", error_rate: float = 0.0) -> Starlette:
    """Build the demo Starlette app (raises ``ValueError`` for a bad latency or error rate).

    The :class:`DemoApp` holding its state, metrics and config is ``app.state.demo``.
    """
    demo = DemoApp(latency, error_rate)
    app = Starlette(
        routes=demo.routes(),
        middleware=[Middleware(MetricsMiddleware, metrics=demo.metrics)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.demo = demo
    return app


def _bind(host: str, port: int) -> socket.socket:
    """Create, bind and listen on a TCP socket ourselves, so ``port=0`` can be reported."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    latency: str = "0ms",
    error_rate: float = 0.0,
    *,
    ready: TextIO | None = None,
) -> None:
    """Run the demo target in the foreground until SIGINT/SIGTERM, then return normally.

    Once it accepts connections it prints ``perftui demo target listening on URL`` to
    ``ready`` (stdout by default) and flushes. Must run in the main thread.
    """
    import signal

    import uvicorn

    out = ready if ready is not None else sys.stdout
    app = create_app(latency, error_rate)  # validates before we bind anything
    sock = _bind(host, port)
    url = url_for(sock)

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
        backlog=2048,
    )

    state: DemoState = app.state.demo.state

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                out.write(f"{READY_PREFIX}{url}\n")
                out.flush()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            state.begin_shutdown()  # release stalled/delayed requests instead of cancelling them
            await super().shutdown(sockets=sockets)

    server = _Server(config)

    # uvicorn restores the handlers it found and re-raises the signal it caught once it has
    # shut down; installing these first turns that into a clean return (exit status 0).
    def _on_signal(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
