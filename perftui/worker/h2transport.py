"""The load engine's HTTP/2 client: an ``asyncio.Protocol`` per connection, many concurrent
streams per connection, one ``H2Pool`` per origin.

The connections themselves (a small hand-written client framing layer, HPACK through ``hpack``;
its docstring says why not the ``h2`` library) are in ``perftui.worker.h2conn``.
Used by the scenario runner (``perftui.worker.scenario``) for HTTP and GraphQL steps of plans
with ``[defaults] http2 = true``; ``H2Client`` (one per worker) renders a step's request and
picks the pool. ``https://`` origins negotiate ``h2`` with ALPN; a server that picks
``http/1.1`` gets HTTP/1.1 through ``transport.HttpPool`` instead, and the endpoint's protocol
says so. ``http://`` origins speak cleartext HTTP/2 with prior knowledge (h2c).

A pool opens connections on demand. A connection carries at most ``max_streams`` concurrent
streams (``[defaults] h2_streams``), lowered to the server's ``SETTINGS_MAX_CONCURRENT_STREAMS``;
a request that finds every connection full opens another one, or waits for a connection that is
already being opened and has room. Receive windows are large (16 MiB per stream, 1 GiB for the
connection) so flow control never throttles a load test's downloads.

Same contract as ``transport.HttpPool``: ``request`` returns a ``transport.Response`` (``t_sent``
is when the stream's HEADERS were written) or raises ``transport.TransportError`` with the same
kinds ("protocol" also for a server that breaks HTTP/2: the connection ends with a GOAWAY
carrying the matching error code), plus two of its own:

- ``h2_stream_reset``: the server reset the stream (RST_STREAM) before the response ended.
- ``h2_goaway``: the server shut the connection down with GOAWAY and an error code, or closed it
  after GOAWAY before the stream's response ended. Streams a graceful GOAWAY (NO_ERROR) left
  unprocessed are retried once on a new connection, as HTTP/1.1 retries a request that met a
  closed keep-alive connection; a second such GOAWAY counts.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque

from perftui.worker import transport as _t
from perftui.worker.h2conn import _H2Conn, _Stream, _Unprocessed
from perftui.worker.transport import HttpPool, PoolWaiters, Response, TransportError, build_request

__all__ = ["H2Client", "H2Pool", "H2_ERROR_KINDS"]

_monotonic = time.monotonic

H2_ERROR_KINDS = frozenset({"h2_stream_reset", "h2_goaway"})
assert H2_ERROR_KINDS <= _t.ERROR_KINDS

_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "te"}
)
_USER_AGENT = f"perftui/{_t.__version__}".encode()


def h2_headers(
    method: str, scheme: str, authority: str, target: str, headers: list[tuple[str, str]],
    body: bytes | None,
) -> list[tuple[bytes, bytes]]:
    """The header list of one HTTP/2 request: pseudo-headers first, names lower-cased, HTTP/1.1
    connection headers dropped (a given Host becomes ``:authority``), ``user-agent`` and
    ``content-length`` added as ``build_request`` adds them for HTTP/1.1."""
    out: list[tuple[bytes, bytes]] = []
    names = set()
    for name, value in headers:
        lower = name.lower()
        if lower in _CONNECTION_HEADERS:
            if lower == "host":
                authority = value
            continue
        if not name or any(c in name for c in ":\r\n \t") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {name!r}: {value!r}")
        names.add(lower)
        out.append((lower.encode("latin-1"), value.encode("latin-1")))
    if "user-agent" not in names:
        out.append((b"user-agent", _USER_AGENT))
    if (body is not None or method in ("POST", "PUT", "PATCH")) and "content-length" not in names:
        out.append((b"content-length", str(len(body) if body is not None else 0).encode()))
    return [
        (b":method", method.encode()),
        (b":scheme", scheme.encode()),
        (b":authority", authority.encode("latin-1")),
        (b":path", target.encode("latin-1")),
        *out,
    ]


class _UseHttp1(Exception):
    """ALPN chose HTTP/1.1: the pool now sends through its HTTP/1.1 pool."""


class H2Pool(PoolWaiters):
    """HTTP/2 connections to one origin. Not thread-safe; one event loop."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_streams: int = 100,
    ):
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        if max_streams < 1:
            raise ValueError("max_streams must be >= 1")
        self.scheme = scheme
        self.host = host
        self.port = port
        self.max_streams = max_streams
        self._connect_timeout = connect_timeout
        if scheme == "https":
            if ssl_context is None:
                ssl_context = ssl.create_default_context()
            ssl_context.set_alpn_protocols(["h2", "http/1.1"])
        self._ssl = ssl_context if scheme == "https" else None
        self.protocol = "h2" if scheme == "https" else "h2c"
        """What the origin speaks: "h2", "h2c", or "http/1.1" once ALPN chose it."""
        self.http1: HttpPool | None = None
        self.goaways = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: set[_H2Conn] = set()
        self._ready: list[_H2Conn] = []  # connections with room for a stream, most recent last
        self._connecting = 0
        self._waiters: deque[tuple[float, float, asyncio.Future]] = deque()
        self._in_flight = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._conns) + (self.http1.open_connections if self.http1 is not None else 0)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def request(
        self,
        method: str,
        target: str,
        authority: str,
        headers: list[tuple[bytes, bytes]] | None,
        body: bytes | None,
        *,
        timeout: float,
        want_body: bool = False,
        want_headers: bool = False,
        plain_headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """One request. ``headers`` is the HTTP/2 header list (``h2_headers``), or None to build
        it from ``plain_headers``; those also serve when the origin fell back to HTTP/1.1.
        ``timeout`` covers waiting for a stream, connecting and the whole response."""
        if self.http1 is not None:
            return await self._request_http1(method, target, authority, headers, body, timeout,
                                             want_body, want_headers, plain_headers)
        if self._sweeper is None:
            self._start_sweeper()
        if headers is None:
            headers = h2_headers(method, self.scheme, authority, target, plain_headers or [], body)
        self._in_flight += 1
        try:
            retried = False
            deadline = 0.0
            while True:
                conn = self._take()
                if conn is None:
                    if not deadline:
                        deadline = _monotonic() + timeout
                    try:
                        conn = await self._acquire(deadline, timeout)
                    except _UseHttp1:
                        break
                st = _Stream(self._loop.create_future(), timeout, want_body, want_headers)
                conn.start(st, headers, body, deadline)
                try:
                    return await st.fut
                except _Unprocessed as exc:
                    if retried:
                        raise TransportError(exc.kind, exc.message) from None
                    retried = True
                    deadline = st.deadline or deadline
                except asyncio.CancelledError:
                    conn.cancel(st, TransportError("reset", "cancelled"))
                    raise
        finally:
            self._in_flight -= 1
        return await self._request_http1(method, target, authority, headers, body, timeout,
                                         want_body, want_headers, plain_headers)

    async def close(self) -> None:
        """Close every connection; pending requests fail with kind "reset"."""
        self._close_waiters()
        for conn in list(self._conns):
            conn._fail_all(TransportError("reset", "pool closed"))
        self._ready.clear()
        if self.http1 is not None:
            await self.http1.close()
        await asyncio.sleep(0)

    # ---- HTTP/1.1 after ALPN ------------------------------------------------------------

    async def _request_http1(self, method, target, authority, headers, body, timeout, want_body,
                             want_headers, plain_headers) -> Response:
        if plain_headers is None:  # rebuild HTTP/1.1 headers from the HTTP/2 list
            plain_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                             for k, v in headers or () if not k.startswith(b":")]
        data = build_request(method, target, authority, plain_headers, body)
        return await self.http1.request(data, timeout=timeout, head=method == "HEAD",
                                        want_body=want_body, want_headers=want_headers)

    def _switch_to_http1(self) -> None:
        if self.http1 is None:
            ctx = self._ssl
            # A fresh context without ALPN: the origin has just said it speaks HTTP/1.1.
            plain = ssl.create_default_context()
            plain.check_hostname = ctx.check_hostname
            plain.verify_mode = ctx.verify_mode
            self.http1 = HttpPool("https", self.host, self.port, connect_timeout=self._connect_timeout,
                                  ssl_context=plain)
            self.protocol = "http/1.1"
        while self._waiters:
            _, _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(_UseHttp1())

    # ---- connections --------------------------------------------------------------------

    def _take(self) -> _H2Conn | None:
        """A connection with room for one more stream, counted as used; None if there is none."""
        ready = self._ready
        while ready:
            conn = ready[-1]
            if conn.closed or conn.draining or conn.used >= conn.limit:
                ready.pop()
                conn.ready = False
                continue
            conn.used += 1
            if conn.used >= conn.limit:
                ready.pop()
                conn.ready = False
            return conn
        return None

    def _has_room(self, conn: _H2Conn) -> None:
        """A connection got room (new, a stream ended, a larger limit): to waiters, then ready."""
        waiters = self._waiters
        while waiters and conn.used < conn.limit:
            _, _, fut = waiters.popleft()
            if not fut.done():
                conn.used += 1
                fut.set_result(conn)
        if conn.used < conn.limit and not conn.ready:
            conn.ready = True
            self._ready.append(conn)

    async def _acquire(self, deadline: float, timeout: float) -> _H2Conn:
        """Room on a connection: wait for one being opened if it will have room, else open one."""
        while True:
            if self._closed:
                raise TransportError("reset", "pool closed")
            if self.http1 is not None:
                raise _UseHttp1()
            conn = self._take()
            if conn is not None:
                return conn
            # A connection being opened has room for max_streams - 1 more (its opener takes one).
            if self._connecting * (self.max_streams - 1) > len(self._waiters):
                fut = self._loop.create_future()
                self._add_waiter(deadline, timeout, fut)
                try:
                    conn = await fut
                except asyncio.CancelledError:
                    if not fut.cancelled() and fut.exception() is None:
                        got = fut.result()
                        got.used -= 1
                        got._update_ready()
                    raise
                if conn is not None and not conn.closed:
                    return conn
                continue  # None: the connection we waited for failed; try again
            conn = await self._connect(deadline)  # counts this request's stream on it
            if conn.used < conn.limit:
                self._has_room(conn)
            return conn

    async def _connect(self, deadline: float) -> _H2Conn:
        loop = self._loop
        remaining = deadline - _monotonic()
        budget = self._connect_timeout
        kind = "connect_timeout"
        if remaining < budget:
            budget, kind = remaining, "timeout"
        host, port = self.host, self.port
        made: list[_H2Conn] = []

        def factory() -> _H2Conn:
            conn = _H2Conn(self)
            made.append(conn)
            return conn

        self._connecting += 1
        try:
            try:
                if budget <= 0:
                    raise TimeoutError
                async with asyncio.timeout(budget):
                    await loop.create_connection(
                        factory, host, port, ssl=self._ssl,
                        server_hostname=host if self._ssl is not None else None,
                    )
                    # No stream before the server's SETTINGS: they carry its stream limit
                    # (nginx: 128), which a burst of virtual users would otherwise overrun.
                    if made[0].settled is not None:
                        await made[0].settled
            except TimeoutError as exc:
                if exc.errno is not None:
                    kind, message = "connect_timeout", f"connect timed out {host}:{port}"
                elif kind == "timeout":
                    message = f"timeout after {budget:.3g}s (connecting)"
                else:
                    message = f"connect timeout after {budget:.3g}s"
                raise TransportError(kind, message) from None
            except ConnectionRefusedError:
                raise TransportError("connect_refused", f"connect refused {host}:{port}") from None
            except socket.gaierror as exc:
                raise TransportError("dns", f"cannot resolve {host}: {_t._short(exc)}") from None
            except ssl.SSLError as exc:
                raise TransportError("tls", f"TLS handshake failed: {_t._short(exc)}") from None
            except ConnectionResetError:
                raise TransportError("reset", f"reset while connecting to {host}:{port}") from None
            except OSError as exc:
                raise TransportError("connect_refused", f"connect failed {host}:{port}: {_t._short(exc)}") from None
            conn = made[0]
            if conn.http1:
                self._switch_to_http1()
                raise _UseHttp1()
            if conn.closed:
                if not conn.got_settings:
                    what = "HTTP/2 with prior knowledge (h2c)" if self._ssl is None else "HTTP/2"
                    raise TransportError("protocol", f"{host}:{port} closed the connection without "
                                                     f"HTTP/2 SETTINGS: does it speak {what}?")
                raise TransportError("reset", f"connection to {host}:{port} closed at once")
        except BaseException:
            if made and made[0].transport is not None and not made[0].http1:
                made[0]._fail_all(TransportError("reset", "connect failed"))
            self._connecting -= 1
            self._wake_one()  # a waiter counted on this connection: it tries for itself
            raise
        self._connecting -= 1
        return conn

    def _forget(self, conn: _H2Conn) -> None:
        self._conns.discard(conn)
        if conn.ready:
            conn.ready = False
            try:
                self._ready.remove(conn)
            except ValueError:
                pass

    # ---- deadlines ----------------------------------------------------------------------

    def _sweep(self) -> None:
        now = _monotonic()
        for conn in list(self._conns):
            expired = [st for st in conn.streams.values() if st.deadline <= now]
            for st in expired:
                if conn.last_recv < st.t_sent:
                    # Not a byte from the server since this stream was sent: the connection may
                    # be dead. No new streams on it; it closes when its last stream ends.
                    conn.draining = True
                conn.cancel(st, TransportError("timeout", f"timeout after {st.timeout:.3g}s"))
        self._expire_waiters(now, "no free stream")


class H2Client:
    """One per worker: HTTP/2 pools by origin, and the rendering of a step's request for them
    (a static step's header list is built once)."""

    def __init__(self, *, connect_timeout: float, tls_verify: bool, max_streams: int, notes=None):
        self.notes = notes
        """Where to say that an origin answered ALPN with HTTP/1.1 (the runner's errors sample)."""
        self.connect_timeout = connect_timeout
        self.tls_verify = tls_verify
        self.max_streams = max_streams
        self.pools: dict[tuple[str, str, int], H2Pool] = {}

    def pool_for(self, origin) -> H2Pool:
        key = (origin.scheme, origin.host, origin.port)
        pool = self.pools.get(key)
        if pool is None:
            ctx = None
            if origin.scheme == "https":  # its own context: ALPN offers h2 on it
                ctx = ssl.create_default_context()
                if not self.tls_verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
            pool = self.pools[key] = H2Pool(origin.scheme, origin.host, origin.port,
                                            connect_timeout=self.connect_timeout, ssl_context=ctx,
                                            max_streams=self.max_streams)
        return pool

    @property
    def open_connections(self) -> int:
        return sum(p.open_connections for p in self.pools.values())

    async def request(self, step, vars: dict) -> Response:
        """Send a step's request (``scenario.CompiledStep``) and record the origin's protocol on
        the step's endpoint."""
        pool = step.h2_pool
        if pool is None:
            pool = step.h2_pool = self.pool_for(step.origin)
        headers = step.h2_static
        if headers is not None:
            resp = await pool.request(step.method, step.h2_target, step.origin.host_header, headers, step.h2_body,
                                      timeout=step.timeout, want_body=step.want_body,
                                      want_headers=step.want_headers, plain_headers=step.h2_plain)
        else:
            target, plain, body = step.render(vars)
            origin = step.origin
            headers = h2_headers(step.method, origin.scheme, origin.host_header, target, plain, body)
            resp = await pool.request(step.method, target, origin.host_header, headers, body,
                                      timeout=step.timeout, want_body=step.want_body,
                                      want_headers=step.want_headers, plain_headers=plain)
        if step.recorder.protocol is not pool.protocol:
            step.recorder.protocol = pool.protocol
            if pool.http1 is not None and self.notes is not None:
                self.notes.append(f"http2: {pool.scheme}://{pool.host}:{pool.port} chose http/1.1 in ALPN; "
                                  f"{step.name} goes over HTTP/1.1")
        return resp

    async def redirect(self, step, vars: dict, status: int, origin, target: str) -> Response:
        """The request after a redirect, by the same rule as HTTP/1.1 (``CompiledStep.redirected``)."""
        method, plain, body = step.redirected(vars, status, origin)
        pool = self.pool_for(origin)
        headers = h2_headers(method, origin.scheme, origin.host_header, target, plain, body)
        return await pool.request(method, target, origin.host_header, headers, body, timeout=step.timeout,
                                  want_body=step.want_body, want_headers=True, plain_headers=plain)

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()


def prepare_step(step) -> None:
    """Give an HTTP/2 step (``scenario.CompiledStep``) its slots; a fully static request gets its
    header list built once."""
    step.h2_pool = None
    step.h2_static = None
    if step.static_request is not None:
        target, plain, body = step.render({})
        o = step.origin
        step.h2_target = target
        step.h2_plain = plain
        step.h2_body = body
        step.h2_static = h2_headers(step.method, o.scheme, o.host_header, target, plain, body)
