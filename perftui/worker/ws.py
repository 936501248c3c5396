"""WebSocket steps: one connection per virtual user per scenario iteration, driven by the
``websockets`` asyncio client. The exception, measured in ``bench/ws_bench.py``: complete
unfragmented text frames, the bulk of a subscription's traffic, are cut from the received bytes
by perftui itself while the library's parser waits between frames (``_FastConnection``); the
library still does the handshake, control frames, fragmented and binary messages, and the close.

A connection has one reader that takes every incoming message, counts it, and hands it to
whichever step is waiting for it (a ``ws_request`` waiting for its correlation id, a
``ws_expect`` waiting for a match); messages nobody is waiting for go into a small buffer, so a
``ws_expect`` right after a ``ws_send`` also sees a reply that arrived before it started waiting.
Round trips are timed from just before the send to the moment the reader saw the reply, not to
when the waiting step got to run again.

What each step records (endpoint, latency, error kinds):

- ``ws_connect``: ``WS connect <url>``; the handshake time (from the iteration's intended start
  when it is the first step of an open-model iteration, like an HTTP request); failures
  ``ws_handshake`` (rejected, with the HTTP status), ``connect_refused``, ``connect_timeout``,
  ``dns``, ``tls``, ``reset``, ``ws_protocol`` (the peer does not speak HTTP/WebSocket).
- ``ws_request``: send -> matched reply round trip; ``ws_timeout``, ``ws_closed``.
- ``ws_expect``: time waited for the matching message; ``ws_timeout``, ``ws_closed``.
- ``ws_send``, ``ws_hold``, ``ws_close``: counted without a latency; ``ws_closed`` when the
  connection was closed under them (the close code is in the error message).

A failure ends the iteration (later steps need the connection), like an HTTP transport failure.

Compiled once per plan into a ``WsAction`` (by ``perftui.worker.scenario.compile_step``, from the
step's type); run by ``run_step``, which sees the scenario runner only as a
``perftui.worker.compiled.StepRunner`` (pools, TLS context, checks and captures, counters).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _ws_open
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
    ProtocolError,
)
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

from perftui import __version__
from perftui.jsonpath import MISSING, compile_path
from perftui.plan import (
    Defaults, WsCloseStep, WsConnectStep, WsExpectStep, WsHoldStep, WsRequestStep, WsSendStep, duration_s,
)
from perftui.template import compile_json, compile_template
from perftui.worker.compiled import CompiledStep, Origin, StepRunner, compile_query, merged_headers
from perftui.worker.stats import WsStats


__all__ = ["BUFFERED_MESSAGES", "WsConnection", "WsError", "WsStats", "ws_url"]

_now = time.monotonic
_decode = msgspec.json.decode

BUFFERED_MESSAGES = 256
"""Messages nobody waited for, kept per connection for a later ``ws_expect`` (oldest dropped)."""
CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the server's close frame when closing normally."""
USER_AGENT = f"perftui/{__version__}"


class WsError(Exception):
    """A WebSocket step failed; ``kind`` is the error kind recorded."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.status = status
        """The HTTP status of a rejected handshake."""

    def __str__(self) -> str:
        return self.message


def ws_url(url: str, target_scheme: str, host_header: str) -> str:
    """An absolute ws:// / wss:// URL for a ``ws_connect`` value: paths go to the target's host
    (wss:// when the target is https://)."""
    if url.startswith(("ws://", "wss://")):
        return url
    if url.startswith(("http://", "https://")):
        return "ws" + url[4:]
    scheme = "wss" if target_scheme == "https" else "ws"
    return f"{scheme}://{host_header}{url if url.startswith('/') else '/' + url}"


def close_description(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection lost without a close frame (code 1006)"
    reason = f" ({rcvd.reason})" if rcvd.reason else ""
    return f"closed by the server with code {rcvd.code}{reason}"


def _as_text(msg: str | bytes) -> str:
    return msg if isinstance(msg, str) else msg.decode("utf-8", "replace")


def _as_json(msg: str | bytes) -> Any:
    """The message as JSON, or MISSING (cheap reject for anything that is not an object/array)."""
    head = msg[:1]
    if head not in ("{", "[", b"{", b"[") and not (msg and (msg.lstrip()[:1] in ("{", "[", b"{", b"["))):
        return MISSING
    try:
        return _decode(msg)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return MISSING


class _Waiter:
    __slots__ = ("fut", "test")

    def __init__(self, test, fut: asyncio.Future):
        self.test = test
        self.fut = fut


_TEXT = Opcode.TEXT
_PARSE = Protocol.parse.__code__
_AT_EOF = StreamReader.at_eof.__code__


def _between_frames(protocol: Protocol) -> bool:
    """The library's parser has read every byte it was given and waits for a frame's first byte
    (not mid-frame with an empty buffer, as after a chunk that ended with a header): it is
    suspended in ``parse()``'s wait for more data, in an open connection, with no fragmented
    message in progress. Read from the generator's own frame, so another version of the library
    that parses differently just never takes the fast path."""
    if protocol.state is not State.OPEN or protocol.current_size is not None:
        return False
    parser = protocol.parser  # the client's parse(), past the handshake, runs Protocol.parse()
    while parser is not None and parser.gi_code is not _PARSE:
        parser = parser.gi_yieldfrom
    waiting = parser.gi_yieldfrom if parser is not None else None
    return waiting is not None and waiting.gi_code is _AT_EOF


class _FastConnection(ClientConnection):
    """``websockets``' client connection with two shortcuts for the common case, complete
    (unfragmented, unmasked) text frames:

    - ``data_received``: while the library's parser waits between frames, the frames at the
      start of the received bytes are cut and decoded here and go straight to ``on_text``; the
      first byte that is anything else (a control frame, a binary or fragmented one, a length
      over 64 KiB, a frame not yet complete, invalid UTF-8) and all after it go to the library,
      which is left exactly where it was, between frames. The library's frame parser (generators,
      a ``Frame`` object, its events list) was ~40 % of the worker's CPU at 100,000 messages/s
      over 10,000 connections (``bench/ws_bench.py``); cutting a frame here costs a few byte
      comparisons.
    - ``process_event``: a text frame the library did parse goes to ``on_text`` too, instead of
      through the message assembler and a wake-up of the task blocked in ``recv()`` (~30 % less
      CPU per message).

    The first fragmented or binary message turns both off for good, so messages are never
    delivered out of order; ``recv()`` still delivers those and reports the close."""

    on_text = None
    between = False
    """The library's parser was seen between frames and has been given nothing since (bytes cut
    here leave it where it was): no need to look again (that look was ~10 % of the worker)."""

    def data_received(self, data: bytes) -> None:
        cb = self.on_text
        if cb is not None and (self.between or _between_frames(self.protocol)):
            self.between = True
            end, pos = len(data), 0
            while pos + 2 <= end:
                if data[pos] != 0x81:  # FIN, no extension bits, text
                    break
                size = data[pos + 1]  # the mask bit set (a server must not mask) is > 127: below
                head = pos + 2
                if size > 125:
                    if size != 126 or head + 2 > end:
                        break
                    size = (data[head] << 8) | data[head + 1]
                    head += 2
                stop = head + size
                if stop > end:
                    break
                try:
                    text = str(data[head:stop], "utf-8")
                except UnicodeDecodeError:
                    break  # the library reports it (ws_protocol)
                try:
                    cb(text)
                except Exception:  # noqa: BLE001 - as in process_event: recv() delivers this one
                    self.on_text = None
                    break
                pos = stop
            if pos == end:
                return
            if pos:
                data = data[pos:]
        self.between = False
        super().data_received(data)

    def process_event(self, event) -> None:
        cb = self.on_text
        if cb is not None and type(event) is Frame:
            if event.opcode is _TEXT and event.fin:
                try:
                    text = str(event.data, "utf-8")
                except UnicodeDecodeError:
                    pass  # the assembler reports it (ws_protocol)
                else:
                    try:
                        cb(text)
                        return
                    except Exception:  # noqa: BLE001 - a bug here must not break the connection:
                        self.on_text = None  # let recv() deliver it, whose errors are reported
            if event.opcode in DATA_OPCODES:
                self.on_text = None
        super().process_event(event)


class WsConnection:
    """An open WebSocket of one iteration, with its reader task."""

    __slots__ = ("buffer", "closing", "done", "lost", "reader", "reported", "stats", "url", "waiters", "ws")

    def __init__(self, ws, stats: WsStats, url: str):
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.stats = stats
        self.url = url
        self.buffer: deque[str | bytes] = deque(maxlen=BUFFERED_MESSAGES)
        self.waiters: list[_Waiter] = []
        self.done: asyncio.Future = loop.create_future()
        self.lost: WsError | None = None
        """Why the connection ended when we did not close it."""
        self.reported = False
        self.closing = False
        stats.opened += 1
        stats.open += 1
        # Take text messages from the shortcut unless some arrived (queued in the assembler)
        # before we got here: then everything goes through recv(), in order.
        assembler = getattr(ws, "recv_messages", None)
        frames = getattr(assembler, "frames", None)
        if isinstance(ws, _FastConnection) and frames is not None and len(frames) == 0:
            ws.on_text = self._message
        self.reader = loop.create_task(self._read())

    def _message(self, msg: str | bytes) -> None:
        """Every received message: count it, hand it to the step waiting for it, or buffer it."""
        self.stats.received += 1
        waiters = self.waiters
        if waiters:
            t = _now()
            for i, w in enumerate(waiters):
                hit = w.test(msg)
                if hit is not None:
                    del waiters[i]
                    if not w.fut.done():
                        w.fut.set_result((msg, hit, t))
                    return
        self.buffer.append(msg)

    async def _read(self) -> None:
        recv = self.ws.recv
        on_message = self._message
        try:
            while True:
                on_message(await recv())
        except ConnectionClosed as exc:
            self._end(WsError("ws_closed", close_description(exc)))
        except (ProtocolError, PayloadTooBig) as exc:
            self._end(WsError("ws_protocol", f"protocol error: {exc}"))
        except asyncio.CancelledError:
            self._end(None)
            raise
        except Exception as exc:  # noqa: BLE001 - anything else ends this connection only
            self._end(WsError("ws_protocol", f"{type(exc).__name__}: {exc}"))

    def _end(self, err: WsError | None) -> None:
        if self.done.done():
            return  # already ended (abort() and the reader may both get here)
        stats = self.stats
        stats.open -= 1
        if err is not None and not self.closing:
            self.lost = err
            stats.closed_by_server += 1
        for w in self.waiters:
            if not w.fut.done():
                w.fut.set_exception(err or WsError("ws_closed", "connection closed"))
        self.waiters.clear()
        if not self.done.done():
            self.done.set_result(None)

    # ---- steps -----------------------------------------------------------------------------

    def check_open(self) -> None:
        if self.lost is not None:
            self.reported = True
            raise self.lost
        if self.done.done() or self.closing:
            raise WsError("ws_closed", "the connection is already closed")

    async def send(self, text: str | bytes) -> None:
        self.check_open()
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            self.reported = True
            raise WsError("ws_closed", close_description(exc)) from None
        self.stats.sent += 1

    def take_buffered(self, test) -> tuple[Any, Any] | None:
        """The oldest buffered message that passes ``test`` (removed), as (message, hit)."""
        for i, msg in enumerate(self.buffer):
            hit = test(msg)
            if hit is not None:
                del self.buffer[i]
                return msg, hit
        return None

    def wait_for(self, test) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(_Waiter(test, fut))
        return fut

    def forget(self, fut: asyncio.Future) -> None:
        self.waiters[:] = [w for w in self.waiters if w.fut is not fut]

    async def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            await self.ws.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            self.abort()
        if not self.reader.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.reader), CLOSE_TIMEOUT)
            except (TimeoutError, Exception):  # noqa: BLE001
                self.reader.cancel()

    def abort(self) -> None:
        """Drop the connection at once (cancelled iterations, worker shutdown)."""
        self.closing = True
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()
        if not self.reader.done():
            self.reader.cancel()
        self._end(None)  # a reader cancelled before it ever ran would not do it


# ---- compiled steps ------------------------------------------------------------------------------


def _needle(value: Any) -> str | None:
    """Text that must appear in a raw reply carrying ``value`` (a cheap filter before decoding)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value and all(c.isalnum() or c in "-_.:" for c in value):
        return value
    return None


class WsAction:
    """The run-time part of a WebSocket step (compiled once per plan)."""

    def __init__(self, step: WsConnectStep | WsSendStep | WsRequestStep | WsExpectStep | WsHoldStep | WsCloseStep,
                 defaults: Defaults, default_origin: Origin) -> None:
        d = defaults
        self.kind = step.kind
        """Decided here, once: ``run_step`` branches on it per message."""
        self.timeout = duration_s(step.timeout) if step.timeout is not msgspec.UNSET else duration_s(d.timeout)
        match step:
            case WsConnectStep():
                self.url = compile_template(step.ws_connect)
                self.scheme = default_origin.scheme
                self.host_header = default_origin.host_header
                self.query = compile_query(step)
                merged = merged_headers(d, step)
                for skip in ("content-type", "content-length", "connection", "upgrade", "host"):
                    merged.pop(skip, None)
                self.headers = [(k, compile_template(v)) for k, v in merged.values()]
                self.subprotocols = list(step.subprotocols) if step.subprotocols is not msgspec.UNSET else None
                self.open_timeout = (duration_s(step.timeout) if step.timeout is not msgspec.UNSET
                                     else duration_s(d.connect_timeout))
                self.tls_verify = d.tls_verify
            case WsSendStep() | WsRequestStep():
                body = step.ws_send if isinstance(step, WsSendStep) else step.ws_request
                if isinstance(body, str):
                    self.text = compile_template(body)
                    self.json = None
                else:
                    self.text = None
                    self.json = compile_json(body)
                self.static = (self.json.static if self.json is not None else self.text.static)
                if isinstance(step, WsRequestStep):
                    match = step.match if step.match is not msgspec.UNSET else "id"
                    self.match_path = compile_path(match) if match.startswith("$") else None
                    self.match_key = None if match.startswith("$") else match
            case WsExpectStep():
                want = step.ws_expect
                if isinstance(want, str):
                    self.contains = compile_template(want)
                    self.fields = None
                else:
                    self.contains = None
                    self.fields = [
                        (compile_path(k) if k.startswith("$") else k, compile_json(v))
                        for k, v in want.items()
                    ]
            case WsHoldStep():
                self.hold = duration_s(step.ws_hold)
            case WsCloseStep():
                pass

    # -- message bodies --

    def render(self, vars: dict) -> str:
        if self.json is not None:
            return self.json.render(vars).decode()
        return self.text.render(vars)

    def connect_url(self, vars: dict) -> str:
        url = ws_url(self.url.render(vars), self.scheme, self.host_header)
        if self.query:
            qs = "&".join(f"{quote(k, safe='')}={quote(t.render(vars), safe='')}" for k, t in self.query)
            url += ("&" if "?" in url else "?") + qs
        return url

    def request_test(self, sent_text: str):
        """A predicate for the reply to ``sent_text``: same value at the correlation field."""
        doc = _decode(sent_text)
        key = self.match_key
        value = (doc.get(key, MISSING) if isinstance(doc, dict) else MISSING) if key is not None \
            else self.match_path.find(doc)
        needle = _needle(value)
        path = self.match_path

        def test(msg):
            if needle is not None and needle not in (msg if isinstance(msg, str) else _as_text(msg)):
                return None
            got = _as_json(msg)
            if got is MISSING:
                return None
            if key is not None:
                found = got.get(key, MISSING) if isinstance(got, dict) else MISSING
            else:
                found = path.find(got)
            return got if found is not MISSING and found == value else None

        return test

    def expect_test(self, vars: dict):
        if self.contains is not None:
            text = self.contains.render(vars)

            def contains(msg):
                return msg if text in _as_text(msg) else None

            return contains
        fields = [(k, _decode(t.render(vars))) for k, t in self.fields]

        def match(msg):
            doc = _as_json(msg)
            if doc is MISSING:
                return None
            for k, expected in fields:
                if isinstance(k, str):
                    got = doc.get(k, MISSING) if isinstance(doc, dict) else MISSING
                else:
                    got = k.find(doc)
                if got is MISSING or got != expected:
                    return None
            return doc

        return match


def classify_connect_error(exc: BaseException, timeout: float) -> WsError:
    """A ``websockets`` / socket exception from opening a connection -> an error kind."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return WsError("ws_handshake", f"handshake rejected: HTTP {status}", status)
    if isinstance(exc, InvalidMessage):
        return WsError("ws_protocol", f"not a WebSocket server: {exc}")
    if isinstance(exc, InvalidHandshake):
        return WsError("ws_handshake", f"handshake failed: {exc}")
    if isinstance(exc, InvalidURI):
        return WsError("ws_protocol", f"invalid WebSocket URL: {exc}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return WsError("connect_timeout", f"no WebSocket handshake within {timeout:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return WsError("connect_refused", "connection refused")
    if isinstance(exc, ssl.SSLError):
        return WsError("tls", f"TLS: {exc}")
    if isinstance(exc, socket.gaierror):
        return WsError("dns", f"DNS: {exc}")
    if isinstance(exc, ConnectionClosed):
        return WsError("ws_closed", close_description(exc))
    if isinstance(exc, OSError):
        return WsError("reset", f"{type(exc).__name__}: {exc.strerror or exc}")
    return WsError("ws_protocol", f"{type(exc).__name__}: {exc}")


async def open_connection(action: WsAction, runner: StepRunner, vars: dict) -> WsConnection:
    url = action.connect_url(vars)
    headers = [(k, t.render(vars)) for k, t in action.headers]
    user_agent = USER_AGENT
    extra = []
    for k, v in headers:
        if k.lower() == "user-agent":
            user_agent = v
        else:
            extra.append((k, v))
    kwargs: dict[str, Any] = {}
    if url.startswith("wss://"):
        kwargs["ssl"] = runner.tls_context()
    try:
        ws = await _ws_open(
            url,
            additional_headers=extra or None,
            subprotocols=action.subprotocols or None,
            compression=None,
            open_timeout=action.open_timeout,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
            user_agent_header=user_agent,
            proxy=None,
            max_size=None,
            max_queue=None,
            create_connection=_FastConnection,
            **kwargs,
        )
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        if not isinstance(exc, Exception):
            raise
        raise classify_connect_error(exc, action.open_timeout) from None
    if action.subprotocols and ws.subprotocol is None:
        ws.transport.abort()
        raise WsError("ws_handshake", f"the server accepted none of the subprotocols {', '.join(action.subprotocols)}")
    return WsConnection(ws, runner.ws_stats, urlsplit(url).path)


# ---- running steps -------------------------------------------------------------------------------


class IterationState:
    """Per-iteration protocol state: the virtual user's open WebSocket, if any."""

    __slots__ = ("ws",)

    def __init__(self) -> None:
        self.ws: WsConnection | None = None

    async def finish(self) -> None:
        """End of the iteration: close a connection the plan left open."""
        conn, self.ws = self.ws, None
        if conn is not None:
            await conn.close()

    def abort(self) -> None:
        conn, self.ws = self.ws, None
        if conn is not None:
            conn.abort()


class _Message:
    """A received message shaped like a ``Response`` for captures and expect checks."""

    __slots__ = ("body", "headers")

    def __init__(self, msg: str | bytes):
        self.body = msg.encode() if isinstance(msg, str) else msg
        self.headers = None


def _us(seconds: float) -> int:
    return int(seconds * 1e6)


async def run_step(runner: StepRunner, step: CompiledStep, it: IterationState, vars: dict, intended: float | None) -> bool:
    """Run one WebSocket step; False ends the iteration."""
    a: WsAction = step.ws
    rec = step.recorder
    kind = a.kind
    started = _now() if intended is None else min(intended, _now())  # early by < 0.5 ms: from the send
    try:
        if kind == "ws_connect":
            if it.ws is not None:  # one connection per virtual user and iteration
                await it.finish()
            t0 = _now()
            try:
                it.ws = await open_connection(a, runner, vars)
            except WsError:
                runner.ws_stats.failed += 1
                raise
            t1 = _now()
            rec.response(101, _us(t1 - started), _us(t1 - t0), 0, None)
            return True
        conn = it.ws
        if conn is None:
            raise WsError("ws_closed", "no open WebSocket connection (the ws_connect step did not run)")
        if kind == "ws_send":
            await conn.send(a.render(vars))
            rec.op(None, 0, None)
            return True
        if kind == "ws_request":
            text = a.render(vars)
            test = a.request_test(text)
            conn.check_open()
            fut = conn.wait_for(test)
            t0 = _now()
            try:
                await conn.send(text)
                async with asyncio.timeout(a.timeout):
                    msg, _doc, t1 = await fut
            except TimeoutError:
                raise WsError("ws_timeout", f"no reply with the same {a.match_key or a.match_path.source}"
                                            f" within {a.timeout:g}s") from None
            finally:
                if not fut.done():
                    fut.cancel()
                    conn.forget(fut)
            return _finish(runner, step, rec, msg, vars, _us(t1 - (started if intended is not None else t0)), _us(t1 - t0))
        if kind == "ws_expect":
            test = a.expect_test(vars)
            t0 = _now()
            hit = conn.take_buffered(test)
            if hit is not None:
                msg, t1 = hit[0], t0
            else:
                conn.check_open()
                fut = conn.wait_for(test)
                try:
                    async with asyncio.timeout(a.timeout):
                        msg, _doc, t1 = await fut
                except TimeoutError:
                    raise WsError("ws_timeout", f"no matching message within {a.timeout:g}s") from None
                finally:
                    if not fut.done():
                        fut.cancel()
                        conn.forget(fut)
            return _finish(runner, step, rec, msg, vars, _us(t1 - started), _us(t1 - t0))
        if kind == "ws_hold":
            conn.check_open()
            try:
                async with asyncio.timeout(a.hold):
                    await asyncio.shield(conn.done)
            except TimeoutError:
                rec.op(None, 0, None)
                return True
            conn.check_open()  # ended under us: raises the close code
            raise WsError("ws_closed", "connection closed during ws_hold")
        if kind == "ws_close":
            lost = conn.lost if not conn.reported else None
            it.ws = None
            await conn.close()
            if lost is not None:
                conn.reported = True
                raise lost
            rec.op(None, 0, None)
            return True
        raise AssertionError(kind)  # pragma: no cover - the loader knows every kind
    except WsError as exc:
        if exc.status is not None:  # a rejected handshake is a response, with its time
            t1 = _now()
            rec.response(exc.status, _us(t1 - started), _us(t1 - t0), 0, exc.kind)
        else:
            rec.failure(exc.kind)
        runner.errors_sample.append(f"{exc.kind}: {step.name}: {exc}")
        return False


def _finish(runner: StepRunner, step: CompiledStep, rec, msg, vars: dict, latency_us: int, service_us: int) -> bool:
    kind = None
    if step.captures or step.json_equals or step.json_exists or step.body_contains is not None:
        failed = runner.check_and_capture(step, _Message(msg), vars)
        if failed:
            kind = "expect_failed"
            runner.errors_sample.append(f"expect_failed: {step.name}: {failed}")
    rec.op(latency_us, service_us, kind, len(msg))
    return True
