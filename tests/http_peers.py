"""Small HTTP peers for transport tests, all on 127.0.0.1 and stopping with their test.

``RawPeer`` is an asyncio server that answers each request with exactly the bytes a test
chooses, and can also hang, close or reset at any point, while counting connections and
requests server-side. ``full_backlog_listener`` gives an address whose connects hang (for
connect timeouts without leaving loopback). ``tls_contexts`` makes a throwaway CA with trustme.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

# Steps a script can return besides bytes to write.
CLOSE = "close"  # close the connection gracefully (FIN) after what was written
RESET = "reset"  # abort with SO_LINGER 0: the client sees ECONNRESET
HANG = "hang"  # write nothing more and keep the connection open until the peer stops


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass
class PeerRequest:
    conn_id: int  # 0, 1, ... in order of accepted connections
    index: int  # 0, 1, ... requests seen on this connection
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


Step = bytes | str | Sleep
Script = Callable[[PeerRequest], Sequence[Step]]


def response(
    status: int = 200,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    *,
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    """Bytes of a simple response; ``length=False`` leaves Content-Length out."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RawPeer:
    """``async with RawPeer(script) as peer:`` serves on ``peer.port`` until the block ends."""

    script: Script
    ssl_context: ssl.SSLContext | None = None
    greeting: bytes | None = None  # written as soon as a connection is accepted
    read_requests: bool = True  # False: never read, never answer
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    requests: list[PeerRequest] = field(default_factory=list)
    port: int = 0
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _stopping: asyncio.Event | None = None

    async def __aenter__(self) -> RawPeer:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._stopping is not None
        self._server.close()
        self._stopping.set()  # ends HANG steps and never-reading connections
        for writer in list(self._writers):
            writer.transport.abort()  # ends handlers blocked in reads or sleeps soon after
        if self._tasks:
            # Handlers end by themselves; cancelling them would make asyncio's stream callback
            # log the CancelledError on Python 3.11.
            _, pending = await asyncio.wait(set(self._tasks), timeout=2)
            for task in pending:
                task.cancel()
        await self._server.wait_closed()

    def requests_on(self, conn_id: int) -> int:
        return sum(1 for r in self.requests if r.conn_id == conn_id)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        conn_id = self.connections
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            if self.greeting is not None:
                writer.write(self.greeting)
                await writer.drain()
            if not self.read_requests:
                await self._stopping.wait()
                return
            index = 0
            while True:
                request = await _read_request(reader, conn_id, index)
                if request is None:
                    return
                self.requests.append(request)
                index += 1
                for step in self.script(request):
                    if isinstance(step, bytes):
                        writer.write(step)
                        await writer.drain()
                    elif isinstance(step, Sleep):
                        await asyncio.sleep(step.seconds)
                        if writer.transport.is_closing():
                            return
                    elif step == CLOSE:
                        return
                    elif step == RESET:
                        _reset(writer)
                        return
                    elif step == HANG:
                        await self._stopping.wait()
                        return
                    else:
                        raise ValueError(f"unknown step {step!r}")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(
    reader: asyncio.StreamReader, conn_id: int, index: int
) -> PeerRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed between requests
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    request = PeerRequest(conn_id, index, method, target, headers, b"")
    length = request.header("content-length")
    if length:
        request.body = await reader.readexactly(int(length))
    return request


@contextlib.contextmanager
def full_backlog_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose listen queue is full, so a new connect hangs in SYN
    retransmission: the kernel drops SYNs for a listener whose accept queue is full."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):  # backlog 0 queues one; a couple more to be sure it is full
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def tls_contexts(hostname: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for a throwaway CA and a certificate for ``hostname`` and
    localhost; the client trusts only that CA."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(hostname, "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
