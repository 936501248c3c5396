"""A small cleartext HTTP/2 server (h2c, prior knowledge) that misbehaves on purpose, for
tests/test_http2.py. Built on the ``h2`` library over asyncio, in a thread of the test process.

Paths:
  /ok      200 "ok"; after every ``goaway_every``-th answer on a connection, a graceful GOAWAY
           (NO_ERROR, last stream = that one) and the connection is closed
  /reset   RST_STREAM (INTERNAL_ERROR) instead of an answer
  /goaway  GOAWAY (ENHANCE_YOUR_CALM) that leaves this stream unprocessed, then close
  /hang    never answered
  /echo    200 with the length of the request body, once the body has ended
  /big?N   200 with N bytes (sent within the client's flow-control windows)
  /frames  200 "0123456789" x 20 in 20 DATA frames of 10 bytes, then trailers (x-trailer: yes)
  /padded  a 103 Early Hints first; then HEADERS with PADDED and PRIORITY flags, DATA frames
           with padding, the body "padded body"
  /cont    200 with a 40,000-byte header x-big: its block goes as HEADERS + CONTINUATION
  /hdr     200 with the length of the request's x-big header (send one over 16 KiB to have the
           client split its header block into HEADERS + CONTINUATION)
  /ping    a PING before the answer (200 "ok"); ``counts["ping_acks"]`` counts the client's ACKs
  /slow    200 "ok" after 50 ms; ``counts["max_open"]`` is the most streams open at once
  /oversize  a frame larger than the client's SETTINGS_MAX_FRAME_SIZE (a protocol error)

``initial_window`` and ``max_concurrent`` are the server's SETTINGS_INITIAL_WINDOW_SIZE and
SETTINGS_MAX_CONCURRENT_STREAMS; ``counts["goaway_received"]`` counts the client's GOAWAYs, by
error code in ``goaway_codes``.

``counts`` is the server's side of the accounting: requests answered per path, resets and
GOAWAYs sent, connections accepted, and streams ignored because they came after a GOAWAY.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingAckReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes
from hyperframe.frame import Frame


class _Server(asyncio.Protocol):
    def __init__(self, peer: "H2Peer"):
        self.peer = peer
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.transport: asyncio.Transport | None = None
        self.answered = 0
        self.gone = False  # GOAWAY sent: later streams are ignored
        self.bodies: dict[int, int] = {}  # /echo streams: request body bytes so far
        self.outq: dict[int, list] = {}  # stream -> [bytes still to send, pad length, trailers]
        self.open: set[int] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer.counts["connections"] += 1
        self.h2.initiate_connection()
        settings = {}
        if self.peer.initial_window is not None:
            settings[SettingCodes.INITIAL_WINDOW_SIZE] = self.peer.initial_window
        if self.peer.max_concurrent is not None:
            settings[SettingCodes.MAX_CONCURRENT_STREAMS] = self.peer.max_concurrent
        if settings:
            self.h2.update_settings(settings)
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        counts = self.peer.counts
        try:
            events = self.h2.receive_data(data)
        except H2Error:
            counts["server_protocol_errors"] += 1
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, DataReceived):
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id in self.bodies:
                    self.bodies[ev.stream_id] += len(ev.data)
            elif isinstance(ev, StreamEnded) and ev.stream_id in self.bodies:
                n = self.bodies.pop(ev.stream_id)
                counts["echo"] += 1
                self._answer(ev.stream_id, str(n).encode())
            elif isinstance(ev, WindowUpdated):
                self._pump()
            elif isinstance(ev, PingAckReceived):
                counts["ping_acks"] += 1
            elif isinstance(ev, StreamReset):
                self.open.discard(ev.stream_id)
                self.outq.pop(ev.stream_id, None)
                counts["reset_by_client"] += 1
            elif isinstance(ev, ConnectionTerminated):
                counts["goaway_received"] += 1
                self.peer.goaway_codes[ev.error_code] += 1
            if not isinstance(ev, RequestReceived):
                continue
            sid = ev.stream_id
            if self.gone:
                counts["ignored_after_goaway"] += 1
                continue
            self.open.add(sid)
            counts["max_open"] = max(counts["max_open"], len(self.open))
            path = dict(ev.headers)[b":path"]
            if path == b"/reset":
                counts["reset"] += 1
                self.h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
                self.open.discard(sid)
            elif path == b"/goaway":
                counts["goaway_error"] += 1
                self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=max(0, sid - 2))
                self.gone = True
            elif path == b"/hang":
                counts["hang"] += 1
            elif path == b"/echo":
                self.bodies[sid] = 0
                if ev.stream_ended is not None:  # no body at all
                    self.bodies.pop(sid)
                    self._answer(sid, b"0")
            elif path.startswith(b"/big?"):
                counts["big"] += 1
                self._answer(sid, b"x" * int(path[5:]))
            elif path == b"/frames":
                counts["frames"] += 1
                self.h2.send_headers(sid, [(b":status", b"200")])
                for _ in range(20):
                    self.h2.send_data(sid, b"0123456789")
                self.h2.send_headers(sid, [(b"x-trailer", b"yes")], end_stream=True)
                self.open.discard(sid)
            elif path == b"/padded":
                counts["padded"] += 1
                self.h2.send_headers(sid, [(b":status", b"103"), (b"link", b"</a.css>; rel=preload")])
                self.transport.write(self.h2.data_to_send())
                self.h2.send_headers(sid, [(b":status", b"200"), (b"x-padded", b"yes")])
                self.transport.write(_padded_headers(self.h2.data_to_send(), 17))
                self.outq[sid] = [b"padded body", 5, None]
                self._pump()
            elif path == b"/cont":
                counts["cont"] += 1
                self.h2.send_headers(sid, [(b":status", b"200"), (b"x-big", b"v" * 40000)], end_stream=True)
                self.open.discard(sid)
            elif path == b"/hdr":
                counts["hdr"] += 1
                self._answer(sid, str(len(dict(ev.headers).get(b"x-big", b""))).encode())
            elif path == b"/ping":
                counts["ping"] += 1
                self.h2.ping(b"perftui!")
                self._answer(sid, b"ok")
            elif path == b"/slow":
                asyncio.get_running_loop().call_later(0.05, self._slow, sid)
            elif path == b"/oversize":
                counts["oversize"] += 1
                self.transport.write(self.h2.data_to_send())
                # DATA of 20,000 bytes: over the 16,384 the client allows (no SETTINGS_MAX_FRAME_SIZE)
                self.transport.write(b"\x00\x4e\x20\x00\x00" + sid.to_bytes(4, "big") + b"x" * 20000)
            else:
                counts["ok"] += 1
                self.h2.send_headers(sid, [(b":status", b"200"), (b"content-length", b"2")])
                self.h2.send_data(sid, b"ok", end_stream=True)
                self.open.discard(sid)
                self.answered += 1
                if self.answered % self.peer.goaway_every == 0:
                    counts["goaway_graceful"] += 1
                    self.h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=sid)
                    self.gone = True
        self.transport.write(self.h2.data_to_send())
        if self.gone:
            self.transport.close()  # after the buffered frames are written

    def _answer(self, sid: int, body: bytes) -> None:
        self.h2.send_headers(sid, [(b":status", b"200"), (b"content-length", str(len(body)).encode())])
        self.outq[sid] = [body, 0, None]
        self._pump()

    def _slow(self, sid: int) -> None:
        if self.transport.is_closing() or sid not in self.open:
            return
        self.peer.counts["slow"] += 1
        self._answer(sid, b"ok")
        self.transport.write(self.h2.data_to_send())

    def _pump(self) -> None:
        """Send queued bodies as far as the client's windows allow."""
        for sid, item in list(self.outq.items()):
            body, pad, _ = item
            while body:
                room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
                n = min(len(body), room - (pad + 1 if pad else 0), 4 if pad else len(body))
                if n <= 0:
                    break
                self.h2.send_data(sid, body[:n], pad_length=pad or None)
                body = body[n:]
            item[0] = body
            if not body:
                self.h2.end_stream(sid)
                del self.outq[sid]
                self.open.discard(sid)


def _padded_headers(data: bytes, pad: int) -> bytes:
    """h2's HEADERS frame re-serialized with ``pad`` bytes of padding and priority fields (h2
    lets a server send neither)."""
    frame, length = Frame.parse_frame_header(memoryview(data[:9]))
    assert frame.type == 0x1 and length == len(data) - 9
    frame.parse_body(memoryview(data[9:]))
    frame.flags.add("PADDED")
    frame.pad_length = pad
    frame.flags.add("PRIORITY")
    frame.depends_on, frame.stream_weight, frame.exclusive = 0, 200, False
    return frame.serialize()


class H2Peer:
    """``with H2Peer(goaway_every=20) as peer: peer.url("/ok")``; ``peer.counts`` afterwards."""

    def __init__(self, *, goaway_every: int = 20, initial_window: int | None = None,
                 max_concurrent: int | None = None):
        self.goaway_every = goaway_every
        self.initial_window = initial_window
        self.max_concurrent = max_concurrent
        self.counts: Counter[str] = Counter()
        self.goaway_codes: Counter[int] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "H2Peer":
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Server(self), "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("h2 test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
