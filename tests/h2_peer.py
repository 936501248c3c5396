"""A small cleartext HTTP/2 server (h2c, prior knowledge) that misbehaves on purpose, for
tests/test_http2.py. Built on the ``h2`` library over asyncio, in a thread of the test process.

Paths:
  /ok      200 "ok"; after every ``goaway_every``-th answer on a connection, a graceful GOAWAY
           (NO_ERROR, last stream = that one) and the connection is closed
  /reset   RST_STREAM (INTERNAL_ERROR) instead of an answer
  /goaway  GOAWAY (ENHANCE_YOUR_CALM) that leaves this stream unprocessed, then close
  /hang    never answered

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
from h2.events import DataReceived, RequestReceived
from h2.exceptions import H2Error


class _Server(asyncio.Protocol):
    def __init__(self, peer: "H2Peer"):
        self.peer = peer
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.transport: asyncio.Transport | None = None
        self.answered = 0
        self.gone = False  # GOAWAY sent: later streams are ignored

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer.counts["connections"] += 1
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        counts = self.peer.counts
        try:
            events = self.h2.receive_data(data)
        except H2Error:
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, DataReceived):
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if not isinstance(ev, RequestReceived):
                continue
            sid = ev.stream_id
            if self.gone:
                counts["ignored_after_goaway"] += 1
                continue
            path = dict(ev.headers)[b":path"]
            if path == b"/reset":
                counts["reset"] += 1
                self.h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            elif path == b"/goaway":
                counts["goaway_error"] += 1
                self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=max(0, sid - 2))
                self.gone = True
            elif path == b"/hang":
                counts["hang"] += 1
            else:
                counts["ok"] += 1
                self.h2.send_headers(sid, [(b":status", b"200"), (b"content-length", b"2")])
                self.h2.send_data(sid, b"ok", end_stream=True)
                self.answered += 1
                if self.answered % self.peer.goaway_every == 0:
                    counts["goaway_graceful"] += 1
                    self.h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=sid)
                    self.gone = True
        self.transport.write(self.h2.data_to_send())
        if self.gone:
            self.transport.close()  # after the buffered frames are written


class H2Peer:
    """``with H2Peer(goaway_every=20) as peer: peer.url("/ok")``; ``peer.counts`` afterwards."""

    def __init__(self, *, goaway_every: int = 20):
        self.goaway_every = goaway_every
        self.counts: Counter[str] = Counter()
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
