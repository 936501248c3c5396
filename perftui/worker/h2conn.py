"""One HTTP/2 connection of the load engine: a small client-side framing layer (RFC 9113) as an
``asyncio.Protocol``, and the request streams it carries.

Why hand-written and not the ``h2`` library: the project prefers well-kept libraries, except where
a measurement in bench/ shows the library is the bottleneck, and here it did. Around ``h2`` (with
its HPACK cached and two of its paths trimmed) a request cost the worker ~64 us of CPU against
nginx h2c (64 connections x 1 stream), of which 30+ us were ``h2``'s frame objects (hyperframe),
its Enum-keyed connection and stream state machines and its event objects; h2load spends 14-17 us
per request, and perftui reached 0.22-0.38x its request rate (bench/README.md, "HTTP/2: perftui
vs h2load"). What a load-testing client needs of HTTP/2 is a small part of it: it opens streams
with one HEADERS frame (rarely a body), never accepts pushed or server-opened streams, ignores
priority, and mostly reads HEADERS + DATA answers. So this module parses the frames straight from
the byte stream and keeps the client's state in plain ints and dicts; HPACK stays with the
``hpack`` library (through the caches in ``h2hpack``). The ``h2`` library serves the tests' own
servers (tests/h2_peer.py), which exercise the edges: CONTINUATION, padding, priority, tiny
windows, PING, RST_STREAM, GOAWAY. Measured in-process, the pool alone against nginx h2c
(bench/README.md): 85-93 -> 28-32 us of CPU per request on a loaded machine, 41-44 -> 15-17 us
(user time 31-33 -> 7-9 us) on a quieter one; with the whole process tree, 0.30-0.69 -> 0.67-1.2x
h2load's request rate.

What it does:
- sends the preface, SETTINGS (no push, 16 MiB stream windows, no server-opened streams) and a
  connection WINDOW_UPDATE to 1 GiB; applies the server's SETTINGS (header table size, concurrent
  streams, initial window, max frame size, header list size) and acknowledges them;
- sends request HEADERS (+ CONTINUATION beyond the server's max frame size) and bodies within the
  connection's and the stream's send windows (the rest waits for WINDOW_UPDATE);
- reads HEADERS/CONTINUATION (padding and priority fields skipped, 1xx answers skipped, trailers
  kept), DATA (padding counted against the windows), WINDOW_UPDATE, PING (answered), SETTINGS,
  RST_STREAM, GOAWAY; PRIORITY and unknown frame types are ignored;
- gives received bytes back to the server in bulk (16 MiB for the connection, half the stream
  window for a long download);
- treats anything else (a frame too large, PUSH_PROMISE, a stream it never opened, bad HPACK,
  a window overflow, ...) as a connection error: GOAWAY with the RFC's code, and every stream
  fails with kind "protocol".

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

from hpack import Decoder, Encoder
from hpack.exceptions import HPACKError

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

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEAD = struct.Struct(">HBBBL")  # 24-bit length as 16 + 8 bits, type, flags, stream id
_U32 = struct.Struct(">L")
_U32X2 = struct.Struct(">LL")
_SETTING = struct.Struct(">HL")

# frame types
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY, \
    _WINDOW_UPDATE, _CONTINUATION = range(10)
# flags
_END_STREAM = _ACK = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY_FLAG = 0x20
# error codes (RFC 9113 section 7), by value
_CODES = ("NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
          "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
          "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED")
_NO_ERROR, _PROTOCOL_ERROR, _FLOW_CONTROL_ERROR, _FRAME_SIZE_ERROR = 0, 1, 3, 6
_REFUSED_STREAM, _CANCEL, _COMPRESSION_ERROR = 7, 8, 9

_MAX_WINDOW = 2**31 - 1
_MAX_STREAM_ID = 2**31 - 1
_MAX_FRAME_IN = 16384  # we announce no SETTINGS_MAX_FRAME_SIZE: the default is ours
_HEADER_LIST_SIZE = 65536  # announced; hpack's decoder refuses larger lists
_STREAM_WINDOW = 16 * 1024 * 1024
_STREAM_ACK = _STREAM_WINDOW // 2  # a stream's bytes given back once it has taken half its window
_CONN_WINDOW = 1 << 30
_ACK_BULK = 16 * 1024 * 1024  # the connection's bytes given back in bulk

_SETTINGS_FRAME = (
    _HEAD.pack(0, 4 * 6, _SETTINGS, 0, 0)
    + _SETTING.pack(0x2, 0)  # ENABLE_PUSH
    + _SETTING.pack(0x3, 0)  # MAX_CONCURRENT_STREAMS: the server opens no streams to us
    + _SETTING.pack(0x4, _STREAM_WINDOW)  # INITIAL_WINDOW_SIZE
    + _SETTING.pack(0x6, _HEADER_LIST_SIZE)  # MAX_HEADER_LIST_SIZE
)
_OPENING = (_PREFACE + _SETTINGS_FRAME
            + _HEAD.pack(0, 4, _WINDOW_UPDATE, 0, 0) + _U32.pack(_CONN_WINDOW - 65535))
_SETTINGS_ACK = _HEAD.pack(0, 0, _SETTINGS, _ACK, 0)


def _window_update(sid: int, n: int) -> bytes:
    return _HEAD.pack(0, 4, _WINDOW_UPDATE, 0, sid) + _U32.pack(n)


def _rst_stream(sid: int, code: int) -> bytes:
    return _HEAD.pack(0, 4, _RST_STREAM, 0, sid) + _U32.pack(code)


def _goaway_frame(code: int) -> bytes:
    return _HEAD.pack(0, 8, _GOAWAY, 0, 0) + _U32X2.pack(0, code)  # last stream: we accepted none


class _ConnectionError(Exception):
    """The server broke the protocol: the connection ends with GOAWAY(code)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class _Stream:
    """One request in flight on a connection."""

    __slots__ = ("fut", "t_sent", "deadline", "timeout", "status", "headers", "chunks", "body_size",
                 "want_headers", "pending", "sid", "send_window", "recv", "head")

    def __init__(self, fut: asyncio.Future, timeout: float, want_body: bool, want_headers: bool):
        self.fut = fut
        self.timeout = timeout
        self.t_sent = 0.0
        self.deadline = 0.0
        self.status = 0  # 0 until the final (non-1xx) response headers
        self.headers: list[tuple[bytes, bytes]] | None = [] if want_headers else None
        self.chunks: list[bytes] | None = [] if want_body else None
        self.body_size = 0
        self.want_headers = want_headers
        self.pending: memoryview | None = None  # request body bytes waiting for send window
        self.sid = 0
        self.send_window = 0
        self.recv = 0  # bytes received since the stream's window was last given back


class _Unprocessed(TransportError):
    """A graceful GOAWAY said the server never processed this stream: retried once on a fresh
    connection and never reaches the caller."""


class _H2Conn(asyncio.Protocol):
    """One HTTP/2 connection of a pool."""

    __slots__ = ("pool", "transport", "streams", "limit", "used", "ready", "closed", "draining",
                 "goaway", "http1", "unacked", "flushing", "settled", "got_settings", "last_recv",
                 "out", "rest", "encoder", "decoder", "next_sid", "peer_max", "peer_window",
                 "max_frame", "peer_header_list", "send_window", "recv_window", "cont_sid",
                 "cont_block", "cont_end", "blocked")

    def __init__(self, pool: H2Pool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.limit = pool.max_streams
        self.used = 0  # streams open or promised to a waiter: what ``limit`` bounds
        self.ready = False  # listed in pool._ready (has room)
        self.closed = False
        self.draining = False  # GOAWAY received or stream ids exhausted: no new streams
        self.goaway = False
        self.http1 = False  # ALPN picked HTTP/1.1
        self.flushing = False  # a write of ``out`` is scheduled
        self.settled: asyncio.Future | None = None  # done at the server's first SETTINGS (or loss)
        self.got_settings = False
        self.last_recv = 0.0
        self.out = bytearray()  # frames to write
        self.rest = b""  # the start of a frame not yet received in full
        self.encoder = CachingEncoder(Encoder())
        self.decoder = CachingDecoder(Decoder())
        self.next_sid = 1
        # the server's settings (RFC 9113 defaults until its SETTINGS arrive)
        self.peer_max = 2**31  # SETTINGS_MAX_CONCURRENT_STREAMS: unlimited
        self.peer_window = 65535  # SETTINGS_INITIAL_WINDOW_SIZE: a new stream's send window
        self.max_frame = 16384  # SETTINGS_MAX_FRAME_SIZE
        self.peer_header_list = 0  # SETTINGS_MAX_HEADER_LIST_SIZE, 0 while not announced
        self.send_window = 65535  # the connection's send window
        self.recv_window = _CONN_WINDOW  # what the server may still send on the connection
        self.unacked = 0  # received bytes not yet given back to the connection's window
        self.cont_sid = 0  # a header block awaiting CONTINUATION on this stream
        self.cont_block: list[bytes] = []
        self.cont_end = False
        self.blocked: dict[int, _Stream] = {}  # streams whose request body waits for a window

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
        transport.write(_OPENING)

    def data_received(self, data: bytes) -> None:
        self.last_recv = _monotonic()
        if self.rest:
            data = self.rest + data
        try:
            self.rest = self._frames(data)
        except _ConnectionError as exc:
            self.rest = b""
            self._connection_error(exc.code, str(exc))
            return
        out = self.out
        if out and not self.flushing:
            self._flush()

    def _frames(self, data: bytes) -> bytes:
        """Handle the complete frames at the start of ``data``; return the incomplete rest."""
        streams = self.streams
        out = self.out
        unpack = _HEAD.unpack_from
        end = len(data)
        pos = 0
        window_opened = False
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(data, pos)
            length = hi << 8 | lo
            if length > _MAX_FRAME_IN:
                raise _ConnectionError(_FRAME_SIZE_ERROR, f"a frame of {length} bytes (the limit is {_MAX_FRAME_IN})")
            p = pos + 9
            stop = p + length
            if stop > end:
                break
            pos = stop
            sid &= _MAX_STREAM_ID
            if self.cont_sid and (ftype != _CONTINUATION or sid != self.cont_sid):
                raise _ConnectionError(_PROTOCOL_ERROR, "a header block was interrupted before its END_HEADERS")
            if not self.got_settings and (ftype != _SETTINGS or flags & _ACK):
                raise _ConnectionError(_PROTOCOL_ERROR, "the server's first frame was not SETTINGS")

            if ftype == _DATA:
                if not sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "DATA on stream 0")
                if flags & _PADDED:
                    if not length or data[p] >= length:
                        raise _ConnectionError(_PROTOCOL_ERROR, "DATA padding longer than the frame")
                    b0, b1 = p + 1, stop - data[p]
                else:
                    b0, b1 = p, stop
                # the whole frame, padding included, counts against both windows
                self.recv_window -= length
                if self.recv_window < 0:
                    raise _ConnectionError(_FLOW_CONTROL_ERROR, "the server overran the connection's window")
                self.unacked += length
                if self.unacked >= _ACK_BULK:
                    out += _window_update(0, self.unacked)
                    self.recv_window += self.unacked
                    self.unacked = 0
                st = streams.get(sid)
                if st is None:
                    self._check_known(sid, "DATA")
                    continue  # a stream already finished or cancelled
                if not st.status:
                    raise _ConnectionError(_PROTOCOL_ERROR, f"DATA before response headers on stream {sid}")
                if b1 > b0:
                    st.body_size += b1 - b0
                    if st.chunks is not None:  # copied only when the step keeps the body
                        st.chunks.append(data[b0:b1])
                if flags & _END_STREAM:
                    self._finish(sid)
                else:
                    recv = st.recv + length
                    if recv > _STREAM_WINDOW:
                        raise _ConnectionError(_FLOW_CONTROL_ERROR, f"the server overran stream {sid}'s window")
                    if recv >= _STREAM_ACK:
                        out += _window_update(sid, recv)
                        recv = 0
                    st.recv = recv

            elif ftype == _HEADERS:
                if not sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "HEADERS on stream 0")
                stop_block = stop
                if flags & _PADDED:
                    if not length:
                        raise _ConnectionError(_PROTOCOL_ERROR, "HEADERS padding longer than the frame")
                    stop_block -= data[p]
                    p += 1
                if flags & _PRIORITY_FLAG:
                    p += 5
                if p > stop_block:
                    raise _ConnectionError(_PROTOCOL_ERROR, "HEADERS padding longer than the frame")
                if flags & _END_HEADERS:
                    self._headers(sid, data[p:stop_block], flags & _END_STREAM)
                else:
                    self.cont_sid = sid
                    self.cont_block = [data[p:stop_block]]
                    self.cont_end = bool(flags & _END_STREAM)

            elif ftype == _CONTINUATION:
                if not self.cont_sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "CONTINUATION without HEADERS")
                self.cont_block.append(data[p:stop])
                if flags & _END_HEADERS:
                    self.cont_sid = 0
                    block, self.cont_block = b"".join(self.cont_block), []
                    self._headers(sid, block, self.cont_end)

            elif ftype == _WINDOW_UPDATE:
                if length != 4:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "WINDOW_UPDATE of a wrong size")
                n = _U32.unpack_from(data, p)[0] & _MAX_WINDOW
                if not n:
                    raise _ConnectionError(_PROTOCOL_ERROR, f"WINDOW_UPDATE of 0 on stream {sid}")
                if not sid:
                    self.send_window += n
                    if self.send_window > _MAX_WINDOW:
                        raise _ConnectionError(_FLOW_CONTROL_ERROR, "the connection's send window overflowed")
                else:
                    st = streams.get(sid)
                    if st is None:
                        self._check_known(sid, "WINDOW_UPDATE")
                        continue
                    st.send_window += n
                    if st.send_window > _MAX_WINDOW:
                        raise _ConnectionError(_FLOW_CONTROL_ERROR, f"stream {sid}'s send window overflowed")
                window_opened = True

            elif ftype == _SETTINGS:
                if sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "SETTINGS on a stream")
                if flags & _ACK:
                    if length:
                        raise _ConnectionError(_FRAME_SIZE_ERROR, "SETTINGS acknowledgement with a payload")
                    continue
                if length % 6:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "SETTINGS of a wrong size")
                window_opened |= self._settings(data, p, stop)
                out += _SETTINGS_ACK
                if self.got_settings:
                    self._update_ready()
                else:  # the first SETTINGS: the pool's _connect hands the connection out
                    self.got_settings = True
                    # Count the stream of the request that opened the connection now, before
                    # later SETTINGS in this same read can give all the room to waiters.
                    self.used += 1
                    if not self.settled.done():
                        self.settled.set_result(None)

            elif ftype == _PING:
                if length != 8:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "PING of a wrong size")
                if sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "PING on a stream")
                if not flags & _ACK:
                    out += _HEAD.pack(0, 8, _PING, _ACK, 0)
                    out += data[p:stop]

            elif ftype == _RST_STREAM:
                if length != 4:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "RST_STREAM of a wrong size")
                if not sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "RST_STREAM on stream 0")
                st = streams.pop(sid, None)
                if st is None:
                    self._check_known(sid, "RST_STREAM")
                    continue
                code = _U32.unpack_from(data, p)[0]
                self._stream_done()
                if code == _REFUSED_STREAM:
                    # RFC 9113 8.7: refused before any processing, safe to send again
                    exc: TransportError = _Unprocessed("h2_stream_reset", "stream refused (REFUSED_STREAM)")
                else:
                    exc = TransportError("h2_stream_reset", f"stream reset by server ({_code(code)})")
                if not st.fut.done():
                    st.fut.set_exception(exc)

            elif ftype == _GOAWAY:
                if sid:
                    raise _ConnectionError(_PROTOCOL_ERROR, "GOAWAY on a stream")
                if length < 8:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "GOAWAY of a wrong size")
                last, code = _U32X2.unpack_from(data, p)
                self._goaway(code, last & _MAX_STREAM_ID)

            elif ftype == _PUSH_PROMISE:
                raise _ConnectionError(_PROTOCOL_ERROR, "PUSH_PROMISE although push is disabled")

            elif ftype == _PRIORITY:
                if length != 5:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "PRIORITY of a wrong size")
            # frames of unknown types are ignored (RFC 9113 5.5)
        if window_opened and self.blocked:
            self._send_pending()
        return data[pos:] if pos < end else b""

    def _check_known(self, sid: int, what: str) -> None:
        """A frame for a stream not in flight: fine if we opened it once (it has finished or
        was cancelled), a connection error if it was never opened."""
        if not sid & 1 or sid >= self.next_sid:
            raise _ConnectionError(_PROTOCOL_ERROR, f"{what} on stream {sid}, which was never opened")

    def _headers(self, sid: int, block: bytes, end_stream: int) -> None:
        try:  # always decoded: the HPACK table must follow every block, even a finished stream's
            headers = self.decoder.decode(block, raw=True)
        except HPACKError as exc:
            raise _ConnectionError(_COMPRESSION_ERROR, f"bad header block: {_t._short(exc)}") from None
        st = self.streams.get(sid)
        if st is None:
            self._check_known(sid, "HEADERS")
            return
        if st.status:  # trailers
            if not end_stream:
                raise _ConnectionError(_PROTOCOL_ERROR, f"trailers without END_STREAM on stream {sid}")
            if st.headers is not None:
                st.headers.extend(headers)
        else:
            status = 0
            for name, value in headers:
                if name == b":status":
                    try:
                        status = int(value)
                    except ValueError:
                        status = 0
                    break
            if not 100 <= status <= 999:
                raise _ConnectionError(_PROTOCOL_ERROR, f"response without a valid :status on stream {sid}")
            if status < 200:  # informational (100, 103): the final answer follows
                if end_stream:
                    raise _ConnectionError(_PROTOCOL_ERROR, f"a {status} response ended stream {sid}")
                return
            st.status = status
            hl = st.headers
            if hl is not None:
                hl.extend(h for h in headers if h[0] != b":status")
        if end_stream:
            self._finish(sid)

    def _settings(self, data: bytes, p: int, stop: int) -> bool:
        """Apply the server's SETTINGS; True if stream send windows grew."""
        grew = False
        for i in range(p, stop, 6):
            ident, value = _SETTING.unpack_from(data, i)
            if ident == 0x1:  # HEADER_TABLE_SIZE: our encoder's dynamic table
                self.encoder.header_table_size = value
            elif ident == 0x2:  # ENABLE_PUSH
                if value > 1:
                    raise _ConnectionError(_PROTOCOL_ERROR, f"SETTINGS_ENABLE_PUSH of {value}")
            elif ident == 0x3:  # MAX_CONCURRENT_STREAMS
                self.peer_max = value
                self.limit = max(1, min(self.pool.max_streams, value))
            elif ident == 0x4:  # INITIAL_WINDOW_SIZE: moves every open stream's send window
                if value > _MAX_WINDOW:
                    raise _ConnectionError(_FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE of {value}")
                delta = value - self.peer_window
                self.peer_window = value
                for st in self.streams.values():
                    st.send_window += delta
                    if st.send_window > _MAX_WINDOW:
                        raise _ConnectionError(_FLOW_CONTROL_ERROR, "a stream's send window overflowed")
                grew |= delta > 0
            elif ident == 0x5:  # MAX_FRAME_SIZE
                if not 16384 <= value <= 2**24 - 1:
                    raise _ConnectionError(_PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE of {value}")
                self.max_frame = value
            elif ident == 0x6:  # MAX_HEADER_LIST_SIZE
                self.peer_header_list = value
            # unknown settings are ignored (RFC 9113 6.5.2)
        return grew

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
        sid = self.next_sid
        if sid > _MAX_STREAM_ID:  # stream ids exhausted (2^31): this connection is done
            self.draining = True
            self._stream_done()
            st.fut.set_exception(_Unprocessed("h2_goaway", "stream ids exhausted"))
            return
        streams = self.streams
        if len(streams) >= self.peer_max:
            # the server lowered its limit in SETTINGS that arrived after the pool counted
            self.limit = max(1, len(streams))
            self._stream_done()
            st.fut.set_exception(_Unprocessed(
                "protocol", f"cannot open a stream: the server allows {self.peer_max} at a time"))
            return
        if self.peer_header_list and sum(32 + len(n) + len(v) for n, v in headers) > self.peer_header_list:
            self._stream_done()
            st.fut.set_exception(TransportError(
                "protocol", f"request headers exceed the server's SETTINGS_MAX_HEADER_LIST_SIZE "
                            f"({self.peer_header_list})"))
            return
        self.next_sid = sid + 2
        st.sid = sid
        st.t_sent = now = _monotonic()
        st.deadline = deadline or now + st.timeout
        st.send_window = self.peer_window
        block = self.encoder.encode(headers)
        out = self.out
        n = len(block)
        size = self.max_frame
        if n <= size:
            out += _HEAD.pack(n >> 8, n & 0xFF, _HEADERS, _END_HEADERS if body else _END_HEADERS | _END_STREAM, sid)
            out += block
        else:  # HEADERS, then CONTINUATION frames, the last with END_HEADERS
            out += _HEAD.pack(size >> 8, size & 0xFF, _HEADERS, 0 if body else _END_STREAM, sid)
            out += block[:size]
            pos = size
            while pos < n:
                chunk = block[pos:pos + size]
                pos += len(chunk)
                out += _HEAD.pack(len(chunk) >> 8, len(chunk) & 0xFF, _CONTINUATION,
                                  _END_HEADERS if pos >= n else 0, sid)
                out += chunk
        streams[sid] = st
        if body:
            st.pending = memoryview(body)
            self._send_body(st)
        if len(streams) > 1:
            # Other streams are in flight, so their answers tend to arrive together and their
            # virtual users send again in the same loop iteration: write once for all of them.
            # Measured against nginx h2c, 64 connections: ~5 requests per write with 10 streams
            # each, 42-48 with 100; the server gets fewer, fuller reads.
            if not self.flushing:
                self.flushing = True
                self.pool._loop.call_soon(self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        self.flushing = False
        out = self.out
        if not out:
            return
        if self.closed and not self.streams:
            out.clear()
            return
        data = bytes(out)
        out.clear()
        tr = self.transport
        if tr.is_closing():
            return
        try:
            tr.write(data)
        except RuntimeError:
            # uvloop refuses writes once the transport is closing (see transport._Conn.start)
            self._fail_all(_Unprocessed("reset", "connection closed before request"))

    def _send_body(self, st: _Stream) -> None:
        """As much of the stream's request body as the windows allow, in DATA frames."""
        data = st.pending
        out = self.out
        sid = st.sid
        while True:
            n = min(len(data), st.send_window, self.send_window, self.max_frame)
            if n <= 0 and len(data):
                st.pending = data
                self.blocked[sid] = st
                return  # the rest goes when the server opens a window (WINDOW_UPDATE, SETTINGS)
            last = n == len(data)
            out += _HEAD.pack(n >> 8, n & 0xFF, _DATA, _END_STREAM if last else 0, sid)
            out += data[:n]
            st.send_window -= n
            self.send_window -= n
            if last:
                st.pending = None
                self.blocked.pop(sid, None)
                return
            data = data[n:]

    def _send_pending(self) -> None:
        streams = self.streams
        for sid, st in list(self.blocked.items()):
            if streams.get(sid) is not st:  # finished, reset or cancelled meanwhile
                del self.blocked[sid]
            elif self.send_window > 0:
                self._send_body(st)

    def cancel(self, st: _Stream, exc: TransportError) -> None:
        """Give up on a stream (timeout, cancellation): reset it, keep the connection."""
        if self.streams.pop(st.sid, None) is None:
            return
        tr = self.transport
        if tr is not None and not tr.is_closing():  # before _stream_done, which may close
            self.out += _rst_stream(st.sid, _CANCEL)
            if not self.flushing:
                self._flush()
        self._stream_done()
        if not st.fut.done():
            st.fut.set_exception(exc)

    def _finish(self, sid: int) -> None:
        st = self.streams.pop(sid)
        chunks = st.chunks
        response = Response(
            st.status,
            st.headers,
            b"".join(chunks) if chunks is not None else None,
            st.body_size,
            st.t_sent,
            _monotonic(),
        )
        if st.pending is not None:  # the server answered before the whole body was sent
            self.out += _rst_stream(sid, _NO_ERROR)
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

    def _goaway(self, error_code: int, last: int) -> None:
        self.goaway = True
        self.draining = True
        self.pool.goaways += 1
        self._forget()
        graceful = error_code == _NO_ERROR
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
            self.out += _goaway_frame(_NO_ERROR)
            data = bytes(self.out)
            self.out.clear()
            try:
                tr.write(data)
            except RuntimeError:
                pass
            tr.close()

    def _connection_error(self, code: int, message: str) -> None:
        tr = self.transport
        if tr is not None and not tr.is_closing():
            try:
                tr.write(_goaway_frame(code))
            except RuntimeError:
                pass
        self._fail_all(TransportError("protocol", f"invalid HTTP/2 from server: {message}"))

    def _fail_all(self, exc: TransportError) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)
        streams, self.streams = self.streams, {}
        self.used = 0
        self.out.clear()
        self._forget()
        tr = self.transport
        if tr is not None and not tr.is_closing():
            tr.abort()
        for st in streams.values():
            if not st.fut.done():
                st.fut.set_exception(exc)


def _code(error_code: int) -> str:
    if 0 <= error_code < len(_CODES):
        return _CODES[error_code]
    return f"error code {error_code}"
