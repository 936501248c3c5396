"""The load engine's HTTP/1.1 client: an ``asyncio.Protocol`` per connection, parsing responses
with httptools, and one keep-alive ``HttpPool`` per origin.

This is the hot path of every worker. The scenario runner serializes each request once with
``build_request`` and then calls ``HttpPool.request`` with the ready bytes. Per request the pool
does: pop an idle connection, create one future, write, and on the parser's
``on_body``/``on_message_complete`` callbacks build one ``Response``. Everything else (headers,
body bytes, deadline timers) is opt-in or amortized; see the notes at ``_SWEEP_INTERVAL`` and
``_Conn.start``.

Works on the standard asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import ssl
import time
from collections import deque
from types import SimpleNamespace

import httptools

from perftui import __version__

__all__ = ["HttpPool", "Response", "TransportError", "build_request"]

_monotonic = time.monotonic
_process_time = time.process_time
_HttpResponseParser = httptools.HttpResponseParser
_HttpParserError = httptools.HttpParserError
_HttpParserUpgrade = httptools.HttpParserUpgrade

ERROR_KINDS = frozenset(
    {"connect_refused", "connect_timeout", "timeout", "reset", "dns", "tls", "protocol"}
    | {"h2_stream_reset", "h2_goaway"}  # HTTP/2 only (perftui.worker.h2transport)
)

# Deadlines are enforced by one periodic sweep per pool instead of one TimerHandle per request.
# Measured (64 keep-alive connections, in-process fake server, Python-side cost only): a
# call_at()/cancel() pair per request added 1.3 us/request on uvloop and 1.8 us on asyncio, on
# top of ~2.7 us for the rest of the client, i.e. ~13 % of a whole request at saturation; the
# sweep walks the pool's connections 20 times a second and costs nothing measurable. The price:
# a timeout fires up to one interval late.
_SWEEP_INTERVAL = 0.05

ADAPT_FLOOR = 64
"""An adaptive pool (the open model's default) starts with this many connections and never
shrinks below it. While its process has CPU to spare (under ``ADAPT_CALM`` of a core over each
of the last ``ADAPT_CALM_SWEEPS`` sweeps, ``_SWEEP_INTERVAL`` apart) it opens connections on
demand, up to ``ADAPT_GROWTH`` times as many by the next sweep and ``max_connections`` in all: a
slow target gets what it needs within a few sweeps (64 to 1,024 in 0.2 s). Otherwise it opens
no more, and after a period (``ADAPT_PERIOD``) in which requests waited at every sweep while the
core was busy (``ADAPT_BUSY``) it halves them as a trial (those above the new bound close as
they finish), kept if the next period completes at least ``ADAPT_KEEP`` as many. Why: one worker against
nginx completes 35 k requests a second over 1,024 connections and 56-66 k over 64, closed model
or open, where wrk stays flat (``bench/overload.py``): past the core's capacity more connections
only make each response cost more."""
ADAPT_BUSY = 0.85
ADAPT_CALM = 0.6
ADAPT_CALM_SWEEPS = 3
"""Sweeps in a row under ``ADAPT_CALM`` before the bound may grow: one calm sweep is often not
the worker's own (on a shared or virtual machine a saturated worker is sometimes not scheduled
for a while, and its CPU over those 50 ms reads low); growing ×4 on it opened 256 connections in
the middle of a 2× overload, which then took seconds of halving trials to shed. Three in a row
delay a slow target's growth by 0.1 s."""
ADAPT_GROWTH = 4
ADAPT_PERIOD = 1.0
ADAPT_KEEP = 0.75
ADAPT_HOLD = 10.0
"""After a halving that completed less, the next one waits this many seconds."""
_UNBOUNDED = sys.maxsize


class TransportError(Exception):
    """A request failed below HTTP. ``kind`` is one of ``ERROR_KINDS``; ``str(exc)`` is a short
    human message ("connect refused 127.0.0.1:9", "timeout after 2.0s", "reset by peer")."""

    def __init__(self, kind: str, message: str):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown transport error kind {kind!r}")
        super().__init__(kind, message)  # both in args, so the exception pickles
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


class _StaleConnection(TransportError):
    """A reused keep-alive connection failed before any response byte: the request is retried
    once on a fresh connection and this never reaches the caller."""


class Response:
    """One parsed response. ``headers`` only with ``want_headers``, ``body`` only with
    ``want_body``; ``t_sent``/``t_done`` are ``time.monotonic()`` values."""

    __slots__ = ("status", "headers", "body", "body_size", "t_sent", "t_done")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]] | None,
        body: bytes | None,
        body_size: int,
        t_sent: float,
        t_done: float,
    ):
        self.status = status
        self.headers = headers
        self.body = body
        self.body_size = body_size
        self.t_sent = t_sent
        self.t_done = t_done

    def __repr__(self) -> str:
        return (
            f"<Response {self.status} body_size={self.body_size} "
            f"latency={(self.t_done - self.t_sent) * 1000:.3f}ms>"
        )


_USER_AGENT = f"perftui/{__version__}"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def build_request(
    method: str,
    target: str,
    host: str,
    headers: list[tuple[str, str]],
    body: bytes | None = None,
    *,
    keep_alive: bool = True,
) -> bytes:
    """Serialize a whole HTTP/1.1 request. ``target`` is path+query ("/api?x=1"); ``host`` is the
    Host header value (include ":port" for a non-default port). Adds Host, Content-Length when
    ``body`` is not None (or the method is POST/PUT/PATCH), 'Connection: close' when
    ``keep_alive`` is False, and 'User-Agent: perftui/<version>', each only when ``headers`` has
    no header of that name (case-insensitive; with ``keep_alive=False`` a given Connection header
    is replaced)."""
    method = method.upper()
    for part in (method, target):
        if not part or any(c in part for c in " \r\n"):
            raise ValueError(f"invalid request line part {part!r}")
    names = set()
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if not name or any(c in name for c in ":\r\n \t") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lower = name.lower()
        if lower == "connection" and not keep_alive:
            continue
        names.add(lower)
        lines.append(f"{name}: {value}")
    extra = []
    if "host" not in names:
        extra.append(f"Host: {host}")
    if "user-agent" not in names:
        lines.append(f"User-Agent: {_USER_AGENT}")
    if (body is not None or method in _BODY_METHODS) and not (
        "content-length" in names or "transfer-encoding" in names
    ):
        lines.append(f"Content-Length: {len(body) if body is not None else 0}")
    if not keep_alive:
        lines.append("Connection: close")
    # Host goes first, right after the request line, as clients conventionally send it.
    lines[1:1] = extra
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


# Parser modes. A connection keeps one parser for as long as consecutive requests use the same
# mode; httptools binds its callbacks when a parser is created, so the plain mode's parser has no
# per-header or headers-complete callbacks at all.
_MODE_PLAIN = 0
_MODE_HEAD = 1
_MODE_HEADERS = 2


def request_mode(head: bool, want_headers: bool) -> int:
    """What a connection's parser must do for a request: ``_Conn.start``'s ``mode``."""
    return (_MODE_HEAD if head else _MODE_PLAIN) | (_MODE_HEADERS if want_headers else 0)


def _noop(*_args: object) -> None:
    return None


class _HeadProbe:
    """Re-parses the start of a response cut by EOF to learn whether it was framed (Content-Length
    or chunked, so the EOF truncated it) or delimited by the close (so the EOF completes it).
    Only runs on that rare path, which keeps header callbacks off the hot path."""

    __slots__ = ("framed", "complete")

    def __init__(self) -> None:
        self.framed = False
        self.complete = False

    def on_message_begin(self) -> None:
        self.framed = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (
            name == b"transfer-encoding" and value.rstrip().lower().endswith(b"chunked")
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.complete = True


class _HeaderList:
    """Parser callbacks that collect a response's headers (``_parse_head``)."""

    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


def _parse_head(data: bytes) -> list[tuple[bytes, bytes]]:
    """The headers found in the start of a response (those of a final response if interim
    ones precede it are not told apart: a redirect has none)."""
    probe = _HeaderList()
    try:
        _HttpResponseParser(probe).feed_data(data)
    except (_HttpParserError, _HttpParserUpgrade):
        pass
    return probe.headers


class _Conn(asyncio.Protocol):
    """One connection of a pool. At most one request at a time (no pipelining)."""

    __slots__ = (
        "pool",
        "transport",
        "parser",
        "mode",
        "fut",
        "deadline",
        "timeout",
        "t_sent",
        "first",
        "body_size",
        "chunks",
        "headers",
        "served",
        "closed",
        "after",
    )

    def __init__(self, pool: HttpPool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = _HttpResponseParser(self)
        self.mode = _MODE_PLAIN
        self.fut: asyncio.Future | None = None
        self.deadline = 0.0
        self.timeout = 0.0
        self.t_sent = 0.0
        self.first: bytes | None = None  # first data chunk of the current response
        self.body_size = 0
        self.chunks: list[bytes] | None = None
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.served = False  # has completed a response: a failure before any byte may be stale
        self.closed = False
        self.after = None
        """Called with this connection once the data that completed a response is parsed
        (``perftui.worker.chain``: the next request goes out from here, never from inside the
        parser, where bytes after the response would be read as the next one's)."""

    # ---- request side -------------------------------------------------------------------

    def start(
        self,
        fut: asyncio.Future,
        data: bytes,
        deadline: float,
        timeout: float,
        mode: int,
        want_body: bool,
        want_headers: bool,
    ) -> None:
        """Send one request; ``deadline`` 0.0 means "now + timeout" (saves a clock read)."""
        if mode != self.mode:
            self.parser = self._new_parser(mode)
            self.mode = mode
        self.fut = fut
        self.timeout = timeout
        self.body_size = 0
        self.chunks = [] if want_body else None
        self.headers = [] if want_headers else None
        self.t_sent = now = _monotonic()
        self.deadline = deadline or now + timeout
        try:
            self.transport.write(data)
        except RuntimeError:
            # uvloop refuses writes once the transport is closing, which happens a moment
            # before connection_lost() tells us (asyncio drops the bytes and we learn at EOF).
            self._fail_stale_or("reset", "connection closed before request")

    def _new_parser(self, mode: int) -> httptools.HttpResponseParser:
        if mode == _MODE_PLAIN:
            return _HttpResponseParser(self)
        callbacks = SimpleNamespace(
            on_body=self.on_body,
            on_message_complete=self.on_message_complete,
            on_headers_complete=self._on_headers_complete,
        )
        if mode & _MODE_HEADERS:
            callbacks.on_header = self._on_header
        if mode & _MODE_HEAD:
            # The response to HEAD ends with its headers, whatever Content-Length says; llhttp
            # cannot be told so from Python, so this parser completes the response in
            # on_headers_complete, ignores what follows, and is thrown away afterwards.
            callbacks.on_body = _noop
            callbacks.on_message_complete = _noop
        return _HttpResponseParser(callbacks)

    # ---- parser callbacks ---------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        chunks = self.chunks
        if chunks is not None:
            chunks.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        if status < 200:
            if status != 101:
                return  # interim response (100 Continue, 103 Early Hints): the real one follows
            self._finish(status, False)
            return
        self._finish(status, parser.should_keep_alive())

    def _on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if headers is not None:
            headers.append((name, value))

    def _on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        if status < 200 and status != 101:
            if self.headers:
                self.headers.clear()  # headers of an interim response
            return
        if self.mode & _MODE_HEAD and self.fut is not None:
            self.mode = -1  # this parser now expects a body that never comes: replace it
            self._finish(status, status != 101 and parser.should_keep_alive())

    def _finish(self, status: int, keep: bool) -> None:
        fut = self.fut
        if fut is None:
            # A second response without a request: the server is out of step with us.
            self._close(abort=True)
            return
        self.fut = None
        self.served = True
        chunks = self.chunks
        headers = self.headers
        if headers is None and 300 <= status < 400 and self.first is not None:
            # A redirect's Location without header callbacks on every response (they cost
            # ~1 us/request): re-parse the head, which arrives in the first chunk.
            headers = _parse_head(self.first)
        response = Response(
            status,
            headers,
            b"".join(chunks) if chunks is not None else None,
            self.body_size,
            self.t_sent,
            _monotonic(),
        )
        self.first = None
        pool = self.pool
        pool._done += 1
        if keep and pool._keep_alive and pool._slots <= pool._cap:
            if pool._waiters:
                pool._release(self)
            else:
                pool._idle.append(self)
        else:
            self._close(abort=False)
        fut.set_result(response)

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pool._conns.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            if self.fut is None:
                # Bytes on an idle connection (e.g. a 408 before the server closes): whatever
                # they are, the connection can no longer be trusted with a request.
                self._close(abort=True)
                return
            self.first = data
        try:
            self.parser.feed_data(data)
        except _HttpParserUpgrade:
            self._close(abort=True)  # 101 already completed the request; nothing more to read
        except _HttpParserError as exc:
            self._fail(TransportError("protocol", f"invalid HTTP response: {_parser_error(exc)}"))
        after = self.after
        if after is not None:
            self.after = None
            after(self)

    def eof_received(self) -> bool | None:
        # The server will take no more requests here: out of the pool now, not only once the
        # transport reports connection_lost(), which decides what the EOF meant for a request.
        if not self.closed:
            self.closed = True
            self.pool._forget(self)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.pool._forget(self)
        try:
            self._lost(exc)
        finally:
            # Nothing reads this connection again: without its parser (whose callbacks are
            # this object) and its transport, reference counting frees it at once instead of
            # the collector, which in a worker runs rarely (closed connections piled up until
            # its next collection).
            self.parser = self.transport = None

    def _lost(self, exc: Exception | None) -> None:
        if self.fut is None:
            return
        if exc is None:
            if self.first is None:
                self._fail_stale_or("reset", "connection closed before response")
            elif self._eof_completes_response():
                self._finish(self.parser.get_status_code(), False)
            else:
                self._fail(TransportError("reset", "connection closed mid-response"))
        elif isinstance(exc, ssl.SSLError):
            self._fail(TransportError("tls", f"TLS error: {_short(exc)}"))
        elif self.first is None:
            self._fail_stale_or("reset", "reset by peer")
        else:
            self._fail(TransportError("reset", "reset by peer"))

    def _eof_completes_response(self) -> bool:
        """True when the response in progress is delimited by the close (no Content-Length, not
        chunked): then the EOF is its end, not a truncation."""
        probe = _HeadProbe()
        try:
            _HttpResponseParser(probe).feed_data(self.first)
        except _HttpParserError:
            return False
        if not probe.complete or probe.framed:
            return False
        status = self.parser.get_status_code()
        return status >= 200 and status not in (204, 304)

    # ---- failure and closing ------------------------------------------------------------

    def _fail_stale_or(self, kind: str, message: str) -> None:
        if self.served:
            self._fail(_StaleConnection(kind, message))
        else:
            self._fail(TransportError(kind, message))

    def _fail(self, exc: TransportError) -> None:
        fut = self.fut
        self.fut = None
        self._close(abort=True)
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _close(self, *, abort: bool) -> None:
        if not self.closed:
            self.closed = True
            self.pool._forget(self)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if abort:
                transport.abort()
            else:
                transport.close()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _parser_error(exc: httptools.HttpParserError) -> str:
    context = exc.__context__
    if isinstance(exc, httptools.HttpParserCallbackError) and context is not None:
        return f"{type(context).__name__}: {_short(context)}"
    return _short(exc)


class PoolWaiters:
    """What a connection pool (``HttpPool``, ``h2transport.H2Pool``) does for requests waiting
    for room: a FIFO of ``(deadline, timeout, future)``, each freed place handed to exactly one
    waiter, and one periodic deadline sweep per pool instead of a timer per request. A subclass
    provides ``_waiters``, ``_loop``, ``_sweeper``, ``_in_flight`` and a ``_sweep`` that expires
    its own requests, then calls ``_expire_waiters``."""

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            _, _, fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _start_sweeper(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._sweeper = self._loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _close_waiters(self) -> None:
        """The pool closes: no more sweeps, and every request still waiting fails with "reset"."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            _, _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(TransportError("reset", "pool closed"))

    _unordered = False
    """Some waiter's deadline is earlier than one queued before it (mixed timeouts)."""

    def _add_waiter(self, deadline: float, timeout: float, fut: asyncio.Future) -> None:
        waiters = self._waiters
        if waiters and deadline < waiters[-1][0]:
            self._unordered = True  # a shorter timeout behind a longer one: sweeps scan all
        waiters.append((deadline, timeout, fut))

    def _expire_waiters(self, now: float, waiting_for: str) -> None:
        """Fail the waiters whose deadline passed, then re-arm the sweep while work remains.
        Waiters queue in arrival order, so with one timeout their deadlines are in order too and
        the expired ones are at the front: an overloaded open model keeps thousands waiting, and
        rebuilding that queue every sweep took ~7 % of the worker's samples at 2x overload."""
        waiters = self._waiters
        if waiters and not self._unordered:
            while waiters:
                deadline, timeout, fut = waiters[0]
                if fut.done():
                    waiters.popleft()
                elif deadline <= now:
                    waiters.popleft()
                    fut.set_exception(TransportError("timeout", f"timeout after {timeout:.3g}s ({waiting_for})"))
                else:
                    break
        elif waiters:
            keep: deque[tuple[float, float, asyncio.Future]] = deque()
            last, ordered = 0.0, True
            for deadline, timeout, fut in waiters:
                if fut.done():
                    continue
                if deadline <= now:
                    fut.set_exception(TransportError("timeout", f"timeout after {timeout:.3g}s ({waiting_for})"))
                else:
                    ordered = ordered and deadline >= last
                    last = deadline
                    keep.append((deadline, timeout, fut))
            self._waiters = keep
            self._unordered = not ordered
        if self._in_flight or self._waiters:
            self._sweeper = self._loop.call_later(_SWEEP_INTERVAL, self._sweep)
        else:
            self._sweeper = None


class HttpPool(PoolWaiters):
    """Keep-alive pool for one origin. Idle connections are reused LIFO; new ones are opened on
    demand up to ``max_connections`` (0 = unlimited); past that, requests queue FIFO and each
    freed connection goes to exactly one of them. Not thread-safe; one event loop."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 0,
        keep_alive: bool = True,
    ):
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        if max_connections < 0:
            raise ValueError("max_connections must be >= 0")
        self.scheme = scheme
        self.host = host
        self.port = port
        self._connect_timeout = connect_timeout
        if scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self._ssl = ssl_context if scheme == "https" else None
        self._max = max_connections
        self._cap = max_connections or _UNBOUNDED  # what _acquire checks: _max, or the adaptive bound
        self._adaptive = False
        self._done = 0  # responses completed, for the adaptive bound's periods
        self._period_end = 0.0
        self._period_start = 0.0
        self._done_mark = 0
        self._starved = False
        self._probe_from = 0  # the bound before a halving on trial
        self._rate_before = 0.0
        self._hold_until = 0.0
        self._cpu_mark = self._sweep_mark = 0.0
        self._grow_to = 0  # grow() may raise the bound this far (see _adapt)
        self._busy_sweeps = self._sweeps = 0
        self._calm_sweeps = 0  # sweeps in a row under ADAPT_CALM
        self._keep_alive = keep_alive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Conn] = []
        self._conns: set[_Conn] = set()  # established, not yet closed
        self._slots = 0  # established + connecting: what max_connections limits
        self._waiters: deque[tuple[float, float, asyncio.Future]] = deque()
        self._in_flight = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    @property
    def max_connections(self) -> int:
        return self._max

    @max_connections.setter
    def max_connections(self, value: int) -> None:
        self.set_limit(value)

    backlog: deque | None = None
    """Requests waiting for this pool outside it (the open model's queue of arrivals, when the
    worker holds them back while the pool is full): waiting all the same, for ``_adapt``."""

    @property
    def connection_cap(self) -> int:
        """Connections allowed now: ``max_connections``, or less while an adaptive pool grows."""
        return self._cap if self._cap != _UNBOUNDED else 0

    def set_limit(self, max_connections: int, adaptive: bool = False) -> None:
        """At most ``max_connections`` (0 = unlimited). ``adaptive``: start at ``ADAPT_FLOOR`` and
        grow or shrink within that bound (see there); a later call keeps what it grew to."""
        if max_connections < 0:
            raise ValueError("max_connections must be >= 0")
        old = self._cap
        was = self._adaptive
        self._max = max_connections
        self._adaptive = adaptive = adaptive and ADAPT_FLOOR < max_connections
        if adaptive:
            self._cap = min(max_connections, max(ADAPT_FLOOR, self._slots if was else 0))
            if not was:  # the first sweep measures the CPU from here
                self._cpu_mark, self._sweep_mark = _process_time(), _monotonic()
        else:
            self._cap = max_connections or _UNBOUNDED
        self._grow_to = self._cap  # a fixed bound never grows; an adaptive one from the next sweep
        self._probe_from = 0
        self._hold_until = self._period_end = 0.0
        self._wake_waiters(old)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def enter(self) -> None:
        """A request is in flight (``request``, or a chain sending its own, ``perftui.worker.chain``):
        the deadline sweeps, which stop while nothing is, run again."""
        self._in_flight += 1
        if self._sweeper is None:
            self._start_sweeper()

    async def request(
        self,
        data: bytes,
        *,
        timeout: float,
        head: bool = False,
        want_body: bool = False,
        want_headers: bool = False,
    ) -> Response:
        """Send pre-serialized request bytes, return the parsed response or raise
        ``TransportError``. ``timeout`` is the whole budget, including waiting for a free
        connection and connecting. ``head=True``: the response has no body."""
        mode = request_mode(head, want_headers)
        self.enter()
        try:
            idle = self._idle
            if idle:
                conn = idle.pop()
                deadline = 0.0  # start() takes it from the send time
            else:
                deadline = _monotonic() + timeout
                conn = await self._acquire(deadline, timeout, False)
            retried = False
            while True:
                fut = self._loop.create_future()
                conn.start(fut, data, deadline, timeout, mode, want_body, want_headers)
                try:
                    return await fut
                except _StaleConnection as exc:
                    # The server closed this idle keep-alive connection while our request was
                    # on its way; nothing was processed, so one retry on a fresh one is safe.
                    if retried:
                        raise TransportError(exc.kind, exc.message) from None
                    retried = True
                    deadline = conn.deadline
                    conn = await self._acquire(deadline, timeout, True)
                except asyncio.CancelledError:
                    if conn.fut is fut:
                        conn._fail(TransportError("reset", "cancelled"))
                    raise
                except TransportError:
                    # The future holds the exception, whose traceback holds this frame: without
                    # these references the failed connection and its future are freed when the
                    # caller is done with the exception, not at the next collection.
                    fut = conn = None
                    raise
        finally:
            self._in_flight -= 1

    async def close(self) -> None:
        """Close every connection; pending requests fail with kind "reset"."""
        self._close_waiters()
        for conn in list(self._conns):
            conn._fail(TransportError("reset", "pool closed"))
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run connection_lost

    # ---- connections --------------------------------------------------------------------

    async def _acquire(self, deadline: float, timeout: float, fresh: bool) -> _Conn:
        """A connection for one request: idle (unless ``fresh``), new if under the limit, else
        the next one freed."""
        while True:
            if self._closed:
                raise TransportError("reset", "pool closed")
            if not fresh and self._idle:
                return self._idle.pop()
            if self._slots >= self._cap and fresh and self._idle:
                self._idle[0]._close(abort=True)  # make room for the fresh one: drop the oldest
            if self._slots < self._cap or self.grow():
                return await self._connect(deadline)
            fut = self._loop.create_future()
            self._add_waiter(deadline, timeout, fut)
            try:
                conn = await fut
            except asyncio.CancelledError:
                if not fut.cancelled() and fut.exception() is None:
                    # Handed a connection or a slot just as we were cancelled: pass it on.
                    got = fut.result()
                    if got is not None and not got.closed:
                        self._release(got)
                    else:
                        self._wake_one()
                raise
            if conn is not None and not conn.closed:
                return conn
            # None: a slot was freed, so loop and connect.

    async def _connect(self, deadline: float) -> _Conn:
        loop = self._loop
        remaining = deadline - _monotonic()
        budget = self._connect_timeout
        kind = "connect_timeout"
        if remaining < budget:
            budget, kind = remaining, "timeout"
        self._slots += 1  # held by the connection once made; given back by _forget
        host, port = self.host, self.port
        made: list[_Conn] = []

        def factory() -> _Conn:
            conn = _Conn(self)
            made.append(conn)
            return conn

        try:
            try:
                if budget <= 0:
                    raise TimeoutError
                async with asyncio.timeout(budget):
                    await loop.create_connection(
                        factory,
                        host,
                        port,
                        ssl=self._ssl,
                        server_hostname=host if self._ssl is not None else None,
                    )
            except TimeoutError as exc:
                if exc.errno is not None:  # the kernel's ETIMEDOUT, not our budget
                    kind, message = "connect_timeout", f"connect timed out {host}:{port}"
                elif kind == "timeout":
                    message = f"timeout after {budget:.3g}s (connecting)"
                else:
                    message = f"connect timeout after {budget:.3g}s"
                raise TransportError(kind, message) from None
            except ConnectionRefusedError:
                raise TransportError("connect_refused", f"connect refused {host}:{port}") from None
            except socket.gaierror as exc:
                raise TransportError("dns", f"cannot resolve {host}: {_short(exc)}") from None
            except ssl.SSLError as exc:  # includes certificate verification errors
                raise TransportError("tls", f"TLS handshake failed: {_short(exc)}") from None
            except ConnectionResetError:
                raise TransportError("reset", f"reset while connecting to {host}:{port}") from None
            except OSError as exc:
                # EHOSTUNREACH, EADDRNOTAVAIL (out of local ports), ...: the connection could not
                # be made, which for a report is closest to "refused"; the message says which.
                raise TransportError(
                    "connect_refused", f"connect failed {host}:{port}: {_short(exc)}"
                ) from None
            conn = made[0]
            if conn.closed:  # lost between the handshake and now
                raise TransportError("reset", f"connection to {host}:{port} closed at once")
        except BaseException:
            if made and made[0].transport is not None:  # connection_made ran: _forget frees
                made[0]._close(abort=True)  # the slot, now or already
            else:
                self._slots -= 1
                self._wake_one()
            raise
        return conn

    def _release(self, conn: _Conn) -> None:
        """A connection finished its request and stays open: to one waiter, else to idle."""
        waiters = self._waiters
        while waiters:
            _, _, fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    def _forget(self, conn: _Conn) -> None:
        """A connection closed (or is closing): free its slot for one waiter."""
        if conn in self._conns:
            self._conns.discard(conn)
            self._slots -= 1
            try:
                self._idle.remove(conn)
            except ValueError:
                pass
            self._wake_one()

    # ---- deadlines ----------------------------------------------------------------------

    def _sweep(self) -> None:
        now = _monotonic()
        expired = [c for c in self._conns if c.fut is not None and c.deadline <= now]
        for conn in expired:
            conn._fail(TransportError("timeout", f"timeout after {conn.timeout:.3g}s"))
        if self._adaptive:
            self._adapt(now)
        self._expire_waiters(now, "no free connection")

    def _adapt(self, now: float) -> None:
        """The adaptive bound's share of a sweep (``ADAPT_FLOOR`` says what it does)."""
        cpu = _process_time()
        used = (cpu - self._cpu_mark) / (now - self._sweep_mark) if now > self._sweep_mark else 1.0
        busy = used >= ADAPT_BUSY
        self._cpu_mark, self._sweep_mark = cpu, now
        waiting = bool(self._waiters) or bool(self.backlog)
        # CPU to spare for ADAPT_CALM_SWEEPS sweeps: up to ADAPT_GROWTH times the connections by
        # the next sweep, so one calm moment in a saturated run cannot open them all
        self._calm_sweeps = self._calm_sweeps + 1 if used < ADAPT_CALM else 0
        calm = self._calm_sweeps >= ADAPT_CALM_SWEEPS and not self._probe_from
        self._grow_to = min(self._max, ADAPT_GROWTH * self._cap) if calm else self._cap
        if self._waiters and self._cap < self._grow_to:
            old, self._cap = self._cap, min(self._grow_to, max(self._cap, self._slots) + len(self._waiters))
            self._wake_waiters(old)
        self._starved = self._starved and waiting
        self._busy_sweeps += busy
        self._sweeps += 1
        if now < self._period_end:
            return
        elapsed = now - self._period_start
        rate = (self._done - self._done_mark) / elapsed if elapsed > 0 else 0.0
        starved = self._starved and self._period_end > 0.0  # waited at every sweep of the period
        busy_period = self._busy_sweeps >= 0.8 * self._sweeps
        self._period_start, self._period_end = now, now + ADAPT_PERIOD
        self._done_mark, self._starved, self._busy_sweeps, self._sweeps = self._done, True, 0, 0
        if self._probe_from:
            before, self._probe_from = self._probe_from, 0
            self._grow_to = self._cap
            if starved and rate < self._rate_before * ADAPT_KEEP:  # fewer completed: back up
                halved, self._cap = self._cap, before
                self._hold_until = now + ADAPT_HOLD
                self._wake_waiters(halved)
                return
        open_now = min(self._cap, self._slots)
        if starved and busy_period and open_now > ADAPT_FLOOR and now >= self._hold_until:
            self._probe_from, self._rate_before = self._cap, rate
            self._cap = self._grow_to = max(ADAPT_FLOOR, open_now // 2)

    def grow(self) -> bool:
        """Room for one more connection in an adaptive pool whose process had CPU to spare at the
        last sweep (and no halving on trial): the bound rises by one, as far as that sweep allowed
        (``ADAPT_GROWTH``; never past ``max_connections``)."""
        if self._cap < self._grow_to:
            self._cap += 1
            return True
        return False

    def _wake_waiters(self, old_cap: int) -> None:
        """The bound rose from ``old_cap``: requests waiting may connect now."""
        for _ in range(min(max(0, self._cap - max(old_cap, self._slots)), len(self._waiters))):
            self._wake_one()
