"""One HTTP/2 connection of the load engine: the ``asyncio.Protocol`` around the sans-IO ``h2``
state machine, and the request streams it carries.

``perftui.worker.h2transport.H2Pool`` opens these connections and hands them streams; this module
knows nothing about pools beyond the few callbacks ``_H2Conn`` makes into its pool
(``_has_room``, ``_forget``, ``goaways``). See h2transport's docstring for the error kinds.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from typing import Protocol

from h2.config import H2Configuration
from h2.connection import AllowedStreamIDs, ConnectionInputs, H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, StreamClosedError, StreamIDTooLowError, TooManyStreamsError
from h2.settings import SettingCodes
from h2.stream import StreamInputs
from hyperframe.frame import RstStreamFrame

from perftui.worker import transport as _t
from perftui.worker.h2hpack import CachingDecoder, CachingEncoder
from perftui.worker.transport import Response, TransportError


class H2Pool(Protocol):
    """What a connection needs of the pool that owns it (``h2transport.H2Pool``): declared here so
    that this module does not import the pool's (no import circle)."""

    max_streams: int
    goaways: int
    _conns: set
    _loop: asyncio.AbstractEventLoop

    def _has_room(self, conn: "_H2Conn") -> None: ...

    def _forget(self, conn: "_H2Conn") -> None: ...

_monotonic = time.monotonic
_CONFIG = H2Configuration(
    client_side=True,
    header_encoding=None,  # bytes in, bytes out: Response.headers are bytes, as over HTTP/1.1
    # Validation and normalization walk every header of every frame in Python; perftui builds
    # the request headers itself (lower-case, no connection headers) and does not judge the
    # server's. Measured against nginx h2c: validation on cost ~15 % of the client's CPU.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)
_STREAM_WINDOW = 16 * 1024 * 1024
_CONN_WINDOW = 1 << 30
_ACK_BULK = 16 * 1024 * 1024


_FRAME_HEAD = struct.Struct(">HBBBL")  # 24-bit length as 16 + 8 bits, type, flags, stream id
_SEND_HEADERS = ConnectionInputs.SEND_HEADERS
_STREAM_SEND_HEADERS = StreamInputs.SEND_HEADERS
_STREAM_SEND_END = StreamInputs.SEND_END_STREAM
_ODD = AllowedStreamIDs.ODD


class _LeanH2Connection(H2Connection):
    """``h2``'s connection with two of its paths made cheaper for a client that sends the same
    requests over and over; every state change still goes through h2's connection and stream
    state machines, and everything else is h2's own code.

    - ``send_request`` opens a client stream as ``send_headers`` does (connection input
      SEND_HEADERS, a new ``H2Stream``, its SEND_HEADERS and SEND_END_STREAM inputs, HPACK through
      the connection's encoder) but writes the HEADERS/CONTINUATION frames' 9-byte heads itself
      and skips what this client does not need: header validation and normalization (off in
      ``_CONFIG`` anyway), priority, and the count of open streams, which walks every stream of
      the connection on each request. The count is made only when the streams h2 knows reach
      the server's limit (the pool's own accounting keeps below it), and
      ``forget`` drops finished streams at once instead of on that walk.
    - ``_receive_frame`` is h2's minus its eager ``repr(frame)`` for a trace log nobody reads.

    Why: the ``h2`` state machine was ~75 % of the client's CPU per request once HPACK was
    cached. Measured in-process (open a stream for a GET, feed a HEADERS + DATA answer back,
    20,000 times, best of 5): plain ``H2Connection`` ~50 us per request, this class ~30 us. Against
    nginx h2c, 64 connections x 1 stream, single runs minutes apart: ~12 k -> 17-23 k req/s on a
    core (0.20 -> 0.32 of h2load); bench/README.md has the interleaved, noisier comparison.
    """

    peer_max = 100  # the server's SETTINGS_MAX_CONCURRENT_STREAMS, kept by _H2Conn

    def send_request(self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        streams = self.streams
        if len(streams) >= self.peer_max:
            value = self.open_outbound_streams  # h2's walk: also drops closed streams
            if value + 1 > self.peer_max:
                raise TooManyStreamsError(f"Max outbound streams is {self.peer_max}, {value} open")
        self.state_machine.process_input(_SEND_HEADERS)
        stream = self._begin_new_stream(stream_id, _ODD)
        sm = stream.state_machine
        sm.process_input(_STREAM_SEND_HEADERS)
        block = self.encoder.encode(headers)
        if end_stream:
            sm.process_input(_STREAM_SEND_END)
        for name, value in headers:  # h2 keeps the method: a HEAD response has no body to check
            if name == b":method":
                stream.request_method = value
                break
        size = self.max_outbound_frame_size
        out = self._data_to_send
        n = len(block)
        first = min(n, size)
        flags = (0x4 if first == n else 0) | (0x1 if end_stream else 0)  # END_HEADERS, END_STREAM
        out += _FRAME_HEAD.pack(first >> 8, first & 0xFF, 0x1, flags, stream_id)
        out += block[:first] if first < n else block
        pos = first
        while pos < n:  # CONTINUATION frames, the last with END_HEADERS
            chunk = block[pos:pos + size]
            pos += len(chunk)
            out += _FRAME_HEAD.pack(len(chunk) >> 8, len(chunk) & 0xFF, 0x9, 0x4 if pos >= n else 0, stream_id)
            out += chunk

    def forget(self, stream_id: int) -> None:
        """A stream the caller is done with: drop it from ``streams`` if h2 has closed it (what
        h2's open-stream walk would do later)."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            self._closed_streams[stream_id] = stream.closed_by

    def _receive_frame(self, frame):
        # h2 4.x's _receive_frame without ``logger.trace("Received frame: %s", repr(frame))``
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = e.error_code
                self._prepare_for_sending([f])
                events = e._events
            else:
                raise
        except StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([f])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events


class _Stream:
    """One request in flight on a connection."""

    __slots__ = ("fut", "t_sent", "deadline", "timeout", "status", "headers", "chunks", "body_size",
                 "want_headers", "pending", "sid")

    def __init__(self, fut: asyncio.Future, timeout: float, want_body: bool, want_headers: bool):
        self.fut = fut
        self.timeout = timeout
        self.t_sent = 0.0
        self.deadline = 0.0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] | None = [] if want_headers else None
        self.chunks: list[bytes] | None = [] if want_body else None
        self.body_size = 0
        self.want_headers = want_headers
        self.pending: memoryview | None = None  # request body bytes waiting for send window
        self.sid = 0


class _Unprocessed(TransportError):
    """A graceful GOAWAY said the server never processed this stream: retried once on a fresh
    connection and never reaches the caller."""

class _H2Conn(asyncio.Protocol):
    """One HTTP/2 connection of a pool."""

    __slots__ = ("pool", "transport", "h2", "streams", "limit", "used", "ready", "closed",
                 "draining", "goaway", "http1", "unacked", "flushing", "settled", "got_settings",
                 "last_recv")

    def __init__(self, pool: H2Pool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.h2 = h2 = _LeanH2Connection(config=_CONFIG)
        h2.encoder = CachingEncoder(h2.encoder)
        h2.decoder = CachingDecoder(h2.decoder)
        self.streams: dict[int, _Stream] = {}
        self.limit = pool.max_streams
        self.used = 0  # streams open or promised to a waiter: what ``limit`` bounds
        self.ready = False  # listed in pool._ready (has room)
        self.closed = False
        self.draining = False  # GOAWAY received or stream ids exhausted: no new streams
        self.goaway = False
        self.http1 = False  # ALPN picked HTTP/1.1
        self.unacked = 0  # received bytes of finished streams not yet given back to the window
        self.flushing = False  # a write of what h2 has queued is scheduled
        self.settled: asyncio.Future | None = None  # done at the server's first SETTINGS (or loss)
        self.got_settings = False
        self.last_recv = 0.0

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self.http1 = True
            self.closed = True
            transport.close()
            return
        self.pool._conns.add(self)
        self.settled = self.pool._loop.create_future()
        h2 = self.h2
        h2.initiate_connection()
        h2.update_settings({
            SettingCodes.ENABLE_PUSH: 0,
            SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
            SettingCodes.MAX_CONCURRENT_STREAMS: 0,  # the server opens no streams to us
        })
        h2.increment_flow_control_window(_CONN_WINDOW - 65535)
        transport.write(h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.last_recv = _monotonic()
        h2 = self.h2
        try:
            events = h2.receive_data(data)
        except H2Error as exc:
            self._fail_all(TransportError("protocol", f"invalid HTTP/2 from server: {_t._short(exc)}"))
            return
        streams = self.streams
        for ev in events:
            cls = type(ev)
            if cls is DataReceived:
                n = ev.flow_controlled_length
                st = streams.get(ev.stream_id)
                if st is not None:
                    st.body_size += len(ev.data)
                    if st.chunks is not None:
                        st.chunks.append(ev.data)
                if ev.stream_ended is not None:
                    # The stream is over: its bytes only count against the connection's 1 GiB
                    # window, so they are given back in bulk rather than with one h2 call each.
                    if n:
                        self.unacked += n
                        if self.unacked >= _ACK_BULK:
                            h2.acknowledge_received_data(self.unacked, ev.stream_id)
                            self.unacked = 0
                    self._finish(ev.stream_id)
                elif n:
                    h2.acknowledge_received_data(n, ev.stream_id)
            elif cls is ResponseReceived:
                st = streams.get(ev.stream_id)
                if st is not None:
                    hl = st.headers
                    for name, value in ev.headers:
                        if name == b":status":
                            st.status = int(value)
                        elif hl is not None:
                            hl.append((name, value))
                if ev.stream_ended is not None:
                    self._finish(ev.stream_id)
            elif cls is StreamEnded:
                pass  # handled with the DATA or HEADERS frame that carried END_STREAM
            elif cls is TrailersReceived:
                st = streams.get(ev.stream_id)
                if st is not None and st.headers is not None:
                    st.headers.extend(ev.headers)
                if ev.stream_ended is not None:
                    self._finish(ev.stream_id)
            elif cls is StreamReset:
                st = streams.pop(ev.stream_id, None)
                h2.forget(ev.stream_id)
                if st is not None:
                    self._stream_done()
                    if ev.error_code == ErrorCodes.REFUSED_STREAM:
                        # RFC 9113 8.7: refused before any processing, safe to send again
                        exc: TransportError = _Unprocessed("h2_stream_reset", "stream refused (REFUSED_STREAM)")
                    else:
                        exc = TransportError("h2_stream_reset", f"stream reset by server ({_code(ev.error_code)})")
                    if not st.fut.done():
                        st.fut.set_exception(exc)
            elif cls is WindowUpdated:
                self._send_pending()
            elif cls is RemoteSettingsChanged:
                changed = ev.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
                if changed is not None:
                    h2.peer_max = changed.new_value
                    self.limit = max(1, min(self.pool.max_streams, changed.new_value))
                if self.got_settings:
                    self._update_ready()
                else:  # the first SETTINGS: the pool's _connect hands the connection out
                    self.got_settings = True
                    if not self.settled.done():
                        self.settled.set_result(None)
            elif cls is ConnectionTerminated:
                self._goaway(ev.error_code, ev.last_stream_id)
        out = h2.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(out)

    def eof_received(self) -> bool | None:
        self._forget()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)
        if not self.streams:
            return
        if isinstance(exc, ssl.SSLError):
            err = TransportError("tls", f"TLS error: {_t._short(exc)}")
        elif self.goaway:
            err = TransportError("h2_goaway", "connection closed after GOAWAY before the response ended")
        elif exc is None:
            err = TransportError("reset", "connection closed mid-stream")
        else:
            err = TransportError("reset", "reset by peer")
        self._fail_all(err)

    # ---- requests -----------------------------------------------------------------------

    def start(self, st: _Stream, headers: list[tuple[bytes, bytes]], body: bytes | None,
              deadline: float) -> None:
        """Open a stream for one request (the pool has already counted it in ``used``);
        ``deadline`` 0.0 means "now + timeout" (the request did not wait for a stream)."""
        h2 = self.h2
        try:
            sid = h2.get_next_available_stream_id()
        except H2Error:  # stream ids exhausted (2^31): this connection is done
            self.draining = True
            self._stream_done()
            st.fut.set_exception(_Unprocessed("h2_goaway", "stream ids exhausted"))
            return
        st.sid = sid
        st.t_sent = now = _monotonic()
        st.deadline = deadline or now + st.timeout
        try:
            h2.send_request(sid, headers, not body)
        except H2Error as exc:
            # TooManyStreamsError: the server lowered its limit in SETTINGS we had not yet seen
            self.limit = max(1, len(self.streams))
            self._stream_done()
            st.fut.set_exception(_Unprocessed("protocol", f"cannot open a stream: {_t._short(exc)}"))
            return
        self.streams[sid] = st
        if body:
            st.pending = memoryview(body)
            self._send_body(sid, st)
        if len(self.streams) > 1:
            # Other streams are in flight, so their answers tend to arrive together and their
            # virtual users send again in the same loop iteration: write once for all of them.
            # Measured against nginx h2c, 64 connections: ~5 requests per write with 10 streams
            # each, 42-48 with 100. The client's CPU per request barely moved (45-55 us either
            # way on a busy machine); the server gets fewer, fuller reads.
            if not self.flushing:
                self.flushing = True
                self.pool._loop.call_soon(self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        self.flushing = False
        data = self.h2.data_to_send()
        if not data or self.closed and not self.streams:
            return
        try:
            self.transport.write(data)
        except RuntimeError:
            # uvloop refuses writes once the transport is closing (see transport._Conn.start)
            self._fail_all(_Unprocessed("reset", "connection closed before request"))

    def _send_body(self, sid: int, st: _Stream) -> None:
        h2 = self.h2
        data = st.pending
        while data is not None:
            window = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
            if window <= 0:
                return  # the rest goes when the server opens the window (WindowUpdated)
            chunk, data = data[:window], data[window:]
            last = not len(data)
            h2.send_data(sid, chunk.tobytes(), end_stream=last)
            if last:
                data = None
        st.pending = None

    def _send_pending(self) -> None:
        for sid, st in self.streams.items():
            if st.pending is not None:
                try:
                    self._send_body(sid, st)
                except H2Error:
                    pass  # the stream closed meanwhile; its own event reports it

    def cancel(self, st: _Stream, exc: TransportError) -> None:
        """Give up on a stream (timeout, cancellation): reset it, keep the connection."""
        if self.streams.pop(st.sid, None) is None:
            return
        self._stream_done()
        if not self.closed:
            try:
                self.h2.reset_stream(st.sid, ErrorCodes.CANCEL)
                self.h2.forget(st.sid)
                self.transport.write(self.h2.data_to_send())
            except (H2Error, RuntimeError):
                pass
        if not st.fut.done():
            st.fut.set_exception(exc)

    def _finish(self, sid: int) -> None:
        st = self.streams.pop(sid, None)
        if st is None:
            return
        self.h2.forget(sid)
        chunks = st.chunks
        response = Response(
            st.status,
            st.headers,
            b"".join(chunks) if chunks is not None else None,
            st.body_size,
            st.t_sent,
            _monotonic(),
        )
        self._stream_done()
        if not st.fut.done():
            st.fut.set_result(response)

    # ---- connection state ---------------------------------------------------------------

    def _stream_done(self) -> None:
        self.used -= 1
        if self.draining:
            if not self.streams:
                self._close()
        elif not self.closed:
            self.pool._has_room(self)

    def _update_ready(self) -> None:
        if not self.ready and not self.draining and not self.closed and self.used < self.limit:
            self.pool._has_room(self)

    def _goaway(self, error_code: int, last_stream_id: int | None) -> None:
        self.goaway = True
        self.draining = True
        self.pool.goaways += 1
        self._forget()
        last = last_stream_id if last_stream_id is not None else 0
        graceful = error_code == ErrorCodes.NO_ERROR
        for sid in [s for s in self.streams if s > last or not graceful]:
            st = self.streams.pop(sid)
            self.used -= 1
            if st.fut.done():
                continue
            if sid > last and graceful:
                st.fut.set_exception(_Unprocessed("h2_goaway", "GOAWAY: stream not processed"))
            else:
                st.fut.set_exception(TransportError("h2_goaway", f"GOAWAY from server ({_code(error_code)})"))
        if not self.streams:
            self._close()

    def _forget(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool._forget(self)

    def _close(self) -> None:
        self._forget()
        tr = self.transport
        if tr is not None and not tr.is_closing():
            try:
                self.h2.close_connection()
                tr.write(self.h2.data_to_send())
            except (H2Error, RuntimeError):
                pass
            tr.close()

    def _fail_all(self, exc: TransportError) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)
        streams, self.streams = self.streams, {}
        self.used = 0
        self._forget()
        tr = self.transport
        if tr is not None and not tr.is_closing():
            tr.abort()
        for st in streams.values():
            if not st.fut.done():
                st.fut.set_exception(exc)


def _code(error_code: int) -> str:
    try:
        return ErrorCodes(error_code).name
    except ValueError:
        return f"error code {error_code}"
