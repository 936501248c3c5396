"""perftui.worker.transport against real peers on 127.0.0.1, with httpx as the reference client.

Every test runs on the standard asyncio loop and on uvloop (the engine uses uvloop when it can).
Peers: ``RawPeer`` (exact bytes, server-side counts) from tests/http_peers.py and a real nginx
from tests/nginx_peer.py.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import time

import httpx
import pytest
import uvloop
from http_peers import (
    CLOSE,
    HANG,
    RESET,
    RawPeer,
    Sleep,
    free_port,
    full_backlog_listener,
    response,
    tls_contexts,
)
from nginx_peer import MB_BODY, SMALL_BODY, NginxPeer, nginx_binary

from perftui import __version__
from perftui.worker.transport import HttpPool, Response, TransportError, build_request

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def both_loops(fn):
    """Turn ``async def test_x(...)`` into a sync test run once per event loop; sync fixtures
    still work. Each run is bounded to 10 s."""
    signature = inspect.signature(fn)
    params = [inspect.Parameter("loop_kind", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += signature.parameters.values()

    def test(loop_kind, **kwargs):
        async def bounded():
            await asyncio.wait_for(fn(**kwargs), 10)

        with asyncio.Runner(loop_factory=LOOPS[loop_kind]) as runner:
            runner.run(bounded())

    test.__name__ = fn.__name__
    test.__qualname__ = fn.__qualname__
    test.__doc__ = fn.__doc__
    test.__signature__ = signature.replace(parameters=params)
    return pytest.mark.parametrize("loop_kind", list(LOOPS))(test)


def req(path: str, port: int, method: str = "GET", headers=(), body=None, **kw) -> bytes:
    return build_request(method, path, f"127.0.0.1:{port}", list(headers), body, **kw)


async def get(pool: HttpPool, path: str = "/", *, timeout: float = 2.0, **kw) -> Response:
    method = "HEAD" if kw.get("head") else "GET"
    return await pool.request(req(path, pool.port, method), timeout=timeout, **kw)


def without_date(headers):
    return [(k, v) for k, v in headers if k.lower() != b"date"]


async def compare_with_httpx(
    port: int, path: str, *, method: str = "GET", scheme="http", ssl_ctx=None
):
    """One request with perftui and one with httpx on the same peer: same status, headers (Date
    aside), body and body size. Returns perftui's response."""
    pool = HttpPool(scheme, "127.0.0.1", port, ssl_context=ssl_ctx)
    try:
        ours = await pool.request(
            req(path, port, method),
            timeout=5,
            head=method == "HEAD",
            want_body=True,
            want_headers=True,
        )
    finally:
        await pool.close()
    async with httpx.AsyncClient(verify=ssl_ctx if ssl_ctx else True) as client:
        ref = await client.request(method, f"{scheme}://127.0.0.1:{port}{path}")
        raw = (
            b"".join([chunk async for chunk in ref.aiter_raw()])
            if not ref.is_closed
            else ref.content
        )
    assert ours.status == ref.status_code
    assert without_date(ours.headers) == without_date(ref.headers.raw)
    assert ours.body == raw
    assert ours.body_size == len(raw)
    assert ours.t_sent <= ours.t_done
    return ours


# ---- build_request ------------------------------------------------------------------------


def test_build_request_defaults():
    data = build_request("get", "/a?x=1", "example.test:8080", [("Accept", "*/*")])
    assert data == (
        b"GET /a?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nAccept: */*\r\n"
        b"User-Agent: perftui/" + __version__.encode() + b"\r\n\r\n"
    )


def test_build_request_respects_given_headers_case_insensitively():
    data = build_request("GET", "/", "h", [("hOsT", "other"), ("user-AGENT", "me")])
    assert data == b"GET / HTTP/1.1\r\nhOsT: other\r\nuser-AGENT: me\r\n\r\n"


def test_build_request_body_and_content_length():
    assert b"Content-Length: 0\r\n" in build_request("POST", "/", "h", [])
    assert b"Content-Length: 0\r\n" in build_request("put", "/", "h", [])
    assert b"Content-Length" not in build_request("GET", "/", "h", [])
    data = build_request("GET", "/", "h", [], b"{}")
    assert data.endswith(b"Content-Length: 2\r\n\r\n{}")
    given = build_request("POST", "/", "h", [("content-length", "2")], b"{}")
    assert given.count(b"ength") == 1


def test_build_request_connection_close():
    data = build_request("GET", "/", "h", [("Connection", "keep-alive")], keep_alive=False)
    assert b"keep-alive" not in data
    assert data.endswith(b"Connection: close\r\n\r\n")


def test_build_request_rejects_injection():
    with pytest.raises(ValueError):
        build_request("GET", "/", "h", [("X", "a\r\nEvil: 1")])
    with pytest.raises(ValueError):
        build_request("GET", "/a b", "h", [])


def test_transport_error_kinds_and_pickling():
    exc = TransportError("timeout", "timeout after 2.0s")
    assert exc.kind == "timeout" and str(exc) == "timeout after 2.0s"
    again = pickle.loads(pickle.dumps(exc))
    assert again.kind == "timeout" and str(again) == "timeout after 2.0s"
    with pytest.raises(ValueError):
        TransportError("weird", "x")


# ---- response framing, compared with httpx -------------------------------------------------


@both_loops
async def test_content_length_like_httpx():
    body = b"hello world"
    async with RawPeer(
        lambda r: [response(200, body, [("X-A", "1"), ("Content-Type", "text/plain")])]
    ) as peer:
        ours = await compare_with_httpx(peer.port, "/cl")
    assert ours.body == body and ours.headers[0] == (b"X-A", b"1")


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n"
    b"5;ext=1\r\nhello\r\n"
    b'6;name="quoted value"\r\n world\r\n'
    b"0;last\r\nX-Trailer: t\r\n\r\n"
)


@both_loops
async def test_chunked_with_extensions_and_trailers_like_httpx():
    async with RawPeer(lambda r: [CHUNKED]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        ours = await get(pool, "/", want_body=True)
        assert (ours.status, ours.body, ours.body_size) == (200, b"hello world", 11)
        again = await get(pool, "/")  # the trailer was consumed: the connection is still in step
        assert again.body_size == 11 and peer.connections == 1 and peer.requests_on(0) == 2
        await pool.close()
        async with httpx.AsyncClient() as client:
            ref = await client.get(f"http://127.0.0.1:{peer.port}/")
        assert ref.content == ours.body


@both_loops
async def test_closed_connections_are_freed_without_the_collector():
    """30 requests, each on a connection the server closes (and 10 it resets): with the garbage
    collector off, no closed connection stays in memory (a worker collects rarely, and closed
    connections used to wait for it in reference cycles with their parser and transport)."""
    import gc

    from perftui.worker.transport import _Conn

    gc.collect()
    gc.disable()
    try:
        async with RawPeer(lambda r: [response(200, b"ok", [("Connection", "close")]), CLOSE] if r.target != "/reset" else [RESET]) as peer:
            pool = HttpPool("http", "127.0.0.1", peer.port)
            for _ in range(30):
                assert (await get(pool, "/")).status == 200
            for _ in range(10):
                with pytest.raises(TransportError):
                    await get(pool, "/reset")
            await asyncio.sleep(0.05)  # the last connection_lost callbacks
            alive = sum(1 for o in gc.get_objects() if type(o) is _Conn)
            await pool.close()
        assert peer.connections == 40
        assert alive == 0, alive
    finally:
        gc.enable()


@both_loops
async def test_keep_alive_reuses_one_connection():
    async with RawPeer(lambda r: [response(200, b"ok")]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        for _ in range(20):
            r = await get(pool, "/")
            assert r.status == 200 and r.body is None and r.headers is None and r.body_size == 2
        assert peer.connections == 1 and peer.requests_on(0) == 20
        assert pool.open_connections == 1 and pool.in_flight == 0
        await pool.close()
        assert pool.open_connections == 0
    async with RawPeer(lambda r: [response(200, b"ok")]) as ref_peer:
        async with httpx.AsyncClient() as client:
            for _ in range(20):
                await client.get(f"http://127.0.0.1:{ref_peer.port}/")
        assert ref_peer.connections == 1  # httpx agrees: nothing in the responses forbids reuse


@both_loops
async def test_connection_close_response_closes_and_next_request_reconnects():
    async with RawPeer(lambda r: [response(200, b"bye", [("Connection", "close")]), CLOSE]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        ours = await get(pool, "/", want_body=True)
        assert ours.body == b"bye"
        assert pool.open_connections == 0
        assert (await get(pool, "/")).status == 200
        assert peer.connections == 2
        await pool.close()
        await compare_with_httpx(peer.port, "/")


@both_loops
async def test_body_read_until_close_like_httpx():
    def script(r):
        return [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
            b"part one, ",
            Sleep(0.01),
            b"part two",
            CLOSE,
        ]

    async with RawPeer(script) as peer:
        ours = await compare_with_httpx(peer.port, "/")
        assert ours.body == b"part one, part two"
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        assert pool.open_connections == 0  # a body ended by EOF ends the connection too
        await pool.close()


@both_loops
async def test_http10_response_until_close():
    async with RawPeer(lambda r: [b"HTTP/1.0 200 OK\r\n\r\nold school", CLOSE]) as peer:
        await compare_with_httpx(peer.port, "/")


@both_loops
async def test_head_ignores_content_length_and_keeps_connection():
    script = lambda r: [  # noqa: E731
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        if r.method == "HEAD"
        else response(200, b"full")
    ]
    async with RawPeer(script) as peer:
        ours = await compare_with_httpx(peer.port, "/", method="HEAD")
        assert ours.body_size == 0 and ours.body == b""
        pool = HttpPool("http", "127.0.0.1", peer.port)
        for _ in range(3):
            head = await get(pool, "/", head=True, want_headers=True)
            assert head.status == 200 and head.body_size == 0
            assert (b"Content-Length", b"1000") in head.headers
            full = await get(pool, "/", want_body=True)
            assert full.body == b"full"
        assert peer.requests_on(peer.connections - 1) == 6  # all on the pool's one connection
        assert pool.open_connections == 1
        await pool.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",  # length of the resource
    ],
    ids=["204", "304", "304-with-length"],
)
@both_loops
async def test_no_body_statuses_like_httpx(raw):
    async with RawPeer(lambda r: [raw]) as peer:
        ours = await compare_with_httpx(peer.port, "/")
        assert ours.body_size == 0
        pool = HttpPool("http", "127.0.0.1", peer.port)
        for _ in range(3):
            assert (await get(pool)).body_size == 0
        assert pool.open_connections == 1 and peer.requests_on(peer.connections - 1) == 3
        await pool.close()


@both_loops
async def test_interim_100_continue_is_skipped():
    final = response(201, b"made", [("X-Final", "yes")])
    async with RawPeer(lambda r: [b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n", final]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        r = await pool.request(
            req("/", peer.port, "POST", body=b"x"), timeout=2, want_body=True, want_headers=True
        )
        assert (r.status, r.body) == (201, b"made")
        assert r.headers == [(b"X-Final", b"yes"), (b"Content-Length", b"4")]
        assert (await get(pool)).status == 201 and peer.connections == 1
        await pool.close()


@both_loops
async def test_one_megabyte_bodies_like_httpx():
    big = bytes(range(256)) * 4096

    def script(r):
        if r.target == "/chunked":
            pieces = [big[i : i + 100_000] for i in range(0, len(big), 100_000)]
            out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
            out += [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
            return out + [b"0\r\n\r\n"]
        return [response(200, big)]

    async with RawPeer(script) as peer:
        for path in ("/cl", "/chunked"):
            ours = await compare_with_httpx(peer.port, path)
            assert ours.body == big and ours.body_size == len(big)
        pool = HttpPool("http", "127.0.0.1", peer.port)
        r = await get(pool, "/cl")
        assert r.body is None and r.body_size == len(big)  # read and counted, not kept
        await pool.close()


@both_loops
async def test_response_split_into_tiny_writes():
    raw = response(200, b"0123456789", [("X-Long", "v" * 50)])

    def script(r):
        steps = []
        for i in range(0, len(raw), 7):
            steps += [raw[i : i + 7], Sleep(0.001)]
        return steps

    async with RawPeer(script) as peer:
        ours = await compare_with_httpx(peer.port, "/")
        assert ours.body == b"0123456789"


@both_loops
async def test_request_bytes_reach_the_server_unchanged():
    async with RawPeer(lambda r: [response(200, r.body)]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        data = req("/submit?x=1", peer.port, "POST", [("X-Id", "7")], b'{"a": 1}')
        r = await pool.request(data, timeout=2, want_body=True)
        assert r.body == b'{"a": 1}'
        seen = peer.requests[0]
        assert (seen.method, seen.target, seen.header("x-id")) == ("POST", "/submit?x=1", "7")
        assert seen.header("host") == f"127.0.0.1:{peer.port}"
        assert seen.header("user-agent") == f"perftui/{__version__}"
        await pool.close()


@both_loops
async def test_switching_protocols_ends_the_connection():
    raw = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x00"
    )
    async with RawPeer(lambda r: [raw]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        r = await get(pool)
        assert r.status == 101 and r.body_size == 0
        await asyncio.sleep(0.01)
        assert pool.open_connections == 0  # never reused for HTTP after an upgrade
        await pool.close()


@both_loops
async def test_bytes_on_an_idle_connection_drop_it():
    async with RawPeer(
        lambda r: [response(200, b"ok"), Sleep(0.01), b"HTTP/1.1 408 Request Timeout\r\n\r\n"]
    ) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0
        r = await get(pool, want_body=True)
        assert (r.status, r.body) == (200, b"ok") and peer.connections == 2
        await pool.close()


@both_loops
async def test_unrequested_second_response_closes_the_connection():
    async with RawPeer(lambda r: [response(200, b"a") + response(200, b"b")]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        r = await get(pool, want_body=True)
        assert r.body == b"a"
        assert pool.open_connections == 0
        assert (await get(pool, want_body=True)).body == b"a"
        await pool.close()


# ---- errors ---------------------------------------------------------------------------------


async def expect_error(
    pool: HttpPool, kind: str, path: str = "/", timeout: float = 2.0
) -> TransportError:
    with pytest.raises(TransportError) as info:
        await get(pool, path, timeout=timeout)
    assert info.value.kind == kind, str(info.value)
    assert pool.in_flight == 0
    return info.value


@both_loops
async def test_refused():
    port = free_port()
    pool = HttpPool("http", "127.0.0.1", port)
    exc = await expect_error(pool, "connect_refused")
    assert str(exc) == f"connect refused 127.0.0.1:{port}"
    assert pool.open_connections == 0
    await pool.close()


@both_loops
async def test_server_that_never_answers_times_out():
    async with RawPeer(lambda r: [HANG]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        t0 = time.monotonic()
        exc = await expect_error(pool, "timeout", timeout=0.3)
        elapsed = time.monotonic() - t0
        assert 0.3 <= elapsed < 5.0, elapsed  # one sweep interval late on a quiet machine; never the 30 s default
        assert str(exc) == "timeout after 0.3s"
        assert pool.open_connections == 0  # a timed-out connection is not reused
        await pool.close()


@both_loops
async def test_body_that_stalls_times_out():
    stall = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
    async with RawPeer(lambda r: [stall, HANG]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await expect_error(pool, "timeout", timeout=0.2)
        assert pool.open_connections == 0
        await pool.close()


@both_loops
async def test_reset_mid_response():
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
    async with RawPeer(lambda r: [partial, Sleep(0.02), RESET]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        exc = await expect_error(pool, "reset")
        assert "reset" in str(exc)
        await pool.close()


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\na\r\n0123",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=["length", "length-close", "chunked-close", "in-headers"],
)
@both_loops
async def test_eof_mid_response_is_reset(partial):
    async with RawPeer(lambda r: [partial, CLOSE]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        exc = await expect_error(pool, "reset")
        assert str(exc) == "connection closed mid-response"
        assert peer.connections == 1  # a first request on a fresh connection is never retried
        await pool.close()


@both_loops
async def test_garbage_is_protocol_error():
    async with RawPeer(lambda r: [b"SSH-2.0-OpenSSH_9.2\r\n\r\nnonsense"]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        exc = await expect_error(pool, "protocol")
        assert str(exc).startswith("invalid HTTP response")
        assert pool.open_connections == 0
        await pool.close()


@both_loops
async def test_tls_handshake_against_plain_tcp_server():
    _, client_ctx = tls_contexts()
    greeting = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    async with RawPeer(lambda r: [], greeting=greeting, read_requests=False) as peer:
        pool = HttpPool("https", "127.0.0.1", peer.port, ssl_context=client_ctx)
        exc = await expect_error(pool, "tls")
        assert str(exc).startswith("TLS handshake failed")
        await pool.close()


@both_loops
async def test_tls_untrusted_certificate():
    server_ctx, _ = tls_contexts()
    async with RawPeer(lambda r: [response(200, b"ok")], ssl_context=server_ctx) as peer:
        pool = HttpPool("https", "127.0.0.1", peer.port)  # default trust store: no test CA
        exc = await expect_error(pool, "tls")
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower()
        await pool.close()


@both_loops
async def test_unresolvable_host_is_dns():
    pool = HttpPool("http", "nonexistent.invalid", 80)
    exc = await expect_error(pool, "dns", timeout=5)
    assert "nonexistent.invalid" in str(exc)
    await pool.close()


@both_loops
async def test_connect_timeout_on_full_backlog():
    with full_backlog_listener() as port:
        pool = HttpPool("http", "127.0.0.1", port, connect_timeout=0.2)
        t0 = time.monotonic()
        exc = await expect_error(pool, "connect_timeout", timeout=2.0)
        assert 0.19 <= time.monotonic() - t0 < 5.0  # uvloop rounds timers to whole ms; generous for a busy machine
        assert str(exc) == "connect timeout after 0.2s"
        # The total budget is the tighter one: then it is a plain timeout.
        pool2 = HttpPool("http", "127.0.0.1", port, connect_timeout=5.0)
        await expect_error(pool2, "timeout", timeout=0.2)
        await pool.close()
        await pool2.close()


# ---- stale keep-alive connections -----------------------------------------------------------


@both_loops
async def test_idle_connection_closed_by_server_is_not_used():
    async with RawPeer(lambda r: [response(200, b"ok"), CLOSE]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert pool.open_connections == 0
        assert (await get(pool)).status == 200
        assert peer.connections == 2
        await pool.close()


@pytest.mark.parametrize("how", [CLOSE, RESET])
@both_loops
async def test_stale_connection_is_retried_once_on_a_fresh_one(how):
    def script(r):
        if r.conn_id == 0 and r.index == 1:
            return [how]  # closed "while idle": our request crossed the server's close
        return [response(200, b"ok")]

    async with RawPeer(script) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        r = await get(pool, want_body=True)
        assert r.body == b"ok"
        assert peer.connections == 2 and len(peer.requests) == 3
        assert pool.open_connections == 1
        await pool.close()


@both_loops
async def test_idle_connection_closing_under_our_feet_is_retried():
    # The transport is already closing but connection_lost() has not run yet: uvloop refuses
    # the write, asyncio drops it; either way the request goes out on a fresh connection.
    async with RawPeer(lambda r: [response(200, b"ok")]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        pool._idle[-1].transport.close()
        r = await get(pool, want_body=True)
        assert r.body == b"ok" and peer.connections == 2
        await pool.close()


@both_loops
async def test_no_retry_once_response_bytes_arrived():
    def script(r):
        if r.index == 1:
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01", CLOSE]
        return [response(200, b"ok")]

    async with RawPeer(script) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        await expect_error(pool, "reset")
        assert peer.connections == 1 and len(peer.requests) == 2
        await pool.close()


@both_loops
async def test_retry_happens_only_once():
    def script(r):
        return [response(200, b"ok")] if r.index == 0 and r.conn_id == 0 else [CLOSE]

    async with RawPeer(script) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        await get(pool)
        exc = await expect_error(pool, "reset")
        assert str(exc) == "connection closed before response"
        assert peer.connections == 2 and len(peer.requests) == 3
        await pool.close()


# ---- pool -----------------------------------------------------------------------------------


@both_loops
async def test_max_connections_bounds_the_pool():
    async with RawPeer(lambda r: [Sleep(0.01), response(200, b"ok")]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port, max_connections=2)
        seen_in_flight = []

        async def one():
            r = await get(pool)
            seen_in_flight.append(pool.in_flight)
            assert pool.open_connections <= 2
            return r.status

        statuses = await asyncio.gather(*(one() for _ in range(10)))
        assert statuses == [200] * 10
        assert peer.connections == 2 and peer.max_open == 2 and len(peer.requests) == 10
        assert max(seen_in_flight) >= 2 and pool.in_flight == 0
        await pool.close()


@both_loops
async def test_waiting_for_a_connection_counts_against_the_timeout():
    async with RawPeer(lambda r: [HANG]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port, max_connections=1)
        first = asyncio.create_task(get(pool, timeout=30.0))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        exc = await expect_error_soon(pool, timeout=0.2)
        assert exc.kind == "timeout" and time.monotonic() - t0 < 5.0  # not the first one's 30 s
        assert pool.in_flight == 1  # the first one is still waiting for its answer
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert pool.in_flight == 0 and pool.open_connections == 0
        await pool.close()


@both_loops
async def test_waiters_time_out_in_deadline_order_also_with_mixed_timeouts():
    """Waiters queue in arrival order; with one timeout their deadlines are in order and a sweep
    expires them from the front. A shorter timeout queued behind longer ones must still expire
    on time, and the longer ones must not expire with it."""
    async with RawPeer(lambda r: [HANG]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port, max_connections=1)
        holder = asyncio.create_task(get(pool, timeout=30.0))
        await asyncio.sleep(0.05)
        same = [asyncio.create_task(get(pool, timeout=0.2)) for _ in range(3)]  # in order
        await asyncio.sleep(0)
        long = [asyncio.create_task(get(pool, timeout=30.0)) for _ in range(2)]
        await asyncio.sleep(0)
        t0 = time.monotonic()
        short = asyncio.create_task(get(pool, timeout=0.3))  # behind two 30 s waiters
        done, _ = await asyncio.wait([*same, short], timeout=10.0)
        assert len(done) == 4 and time.monotonic() - t0 < 8.0
        for t in [*same, short]:
            assert isinstance(t.exception(), TransportError) and t.exception().kind == "timeout"
            assert "no free connection" in str(t.exception())
        assert not any(t.done() for t in long)  # still waiting for their 30 s
        for t in [holder, *long]:
            t.cancel()
        await asyncio.gather(holder, *long, return_exceptions=True)
        assert pool.in_flight == 0
        await pool.close()


async def expect_error_soon(pool: HttpPool, timeout: float) -> TransportError:
    with pytest.raises(TransportError) as info:
        await get(pool, timeout=timeout)
    return info.value


@both_loops
async def test_freed_connection_goes_to_waiters_in_order():
    order = []
    async with RawPeer(lambda r: [Sleep(0.01), response(200, r.target.encode())]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port, max_connections=1)

        async def one(i):
            r = await pool.request(req(f"/{i}", peer.port), timeout=2, want_body=True)
            order.append(r.body)

        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0)  # queue them in a known order
        await asyncio.gather(*tasks)
        assert order == [f"/{i}".encode() for i in range(5)]
        assert peer.connections == 1
        await pool.close()


@both_loops
async def test_cancelled_request_drops_its_connection():
    def script(r):
        return [HANG] if r.target == "/hang" else [response(200, b"ok")]

    async with RawPeer(script) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port)
        task = asyncio.create_task(get(pool, "/hang"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.open_connections == 0 and pool.in_flight == 0
        assert (await get(pool, "/")).status == 200
        await pool.close()


@both_loops
async def test_keep_alive_false_closes_after_each_response():
    async with RawPeer(lambda r: [response(200, b"ok")]) as peer:
        pool = HttpPool("http", "127.0.0.1", peer.port, keep_alive=False)
        for _ in range(3):
            data = req("/", peer.port, keep_alive=False)
            assert (await pool.request(data, timeout=2)).status == 200
        assert pool.open_connections == 0 and peer.connections == 3
        assert peer.requests[0].header("connection") == "close"
        await pool.close()


# ---- TLS ------------------------------------------------------------------------------------


@both_loops
async def test_https_with_keep_alive_like_httpx():
    server_ctx, client_ctx = tls_contexts()
    async with RawPeer(
        lambda r: [response(200, b"secret", [("X-Tls", "yes")])], ssl_context=server_ctx
    ) as peer:
        pool = HttpPool("https", "127.0.0.1", peer.port, ssl_context=client_ctx)
        for _ in range(5):
            r = await get(pool, want_body=True)
            assert (r.status, r.body) == (200, b"secret")
        assert peer.connections == 1 and peer.requests_on(0) == 5
        await pool.close()
        await compare_with_httpx(peer.port, "/", scheme="https", ssl_ctx=client_ctx)


# ---- nginx ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx():
    if nginx_binary() is None:
        pytest.skip("nginx binary not installed (apt-get install -y nginx)")
    with NginxPeer(keepalive_requests=1000) as peer:
        yield peer


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/small.txt"),
        ("GET", "/1mb.bin"),
        ("GET", "/chunked/index.html"),
        ("GET", "/close/small.txt"),
        ("GET", "/status/204"),
        ("GET", "/status/304"),
        ("GET", "/status/404"),
        ("GET", "/status/301"),
        ("GET", "/headers"),
        ("HEAD", "/1mb.bin"),
        ("HEAD", "/status/204"),
    ],
)
@both_loops
async def test_nginx_like_httpx(nginx, method, path):
    ours = await compare_with_httpx(nginx.port, path, method=method)
    if path == "/1mb.bin" and method == "GET":
        assert ours.body == MB_BODY
    if path == "/small.txt":
        assert ours.body == SMALL_BODY


@both_loops
async def test_nginx_keep_alive_server_side(nginx):
    pool = HttpPool("http", "127.0.0.1", nginx.port)
    seen = [(await get(pool, "/conn", want_body=True)).body.split() for _ in range(10)]
    assert len({serial for serial, _ in seen}) == 1
    assert [int(n) for _, n in seen] == list(range(1, 11))
    head = await get(pool, "/1mb.bin", head=True)
    assert head.body_size == 0
    after = (await get(pool, "/conn", want_body=True)).body.split()
    assert after == [seen[0][0], b"12"]  # HEAD left the connection in step
    await get(pool, "/close/small.txt")
    assert pool.open_connections == 0
    await pool.close()


@both_loops
async def test_nginx_max_connections(nginx):
    pool = HttpPool("http", "127.0.0.1", nginx.port, max_connections=2)
    bodies = await asyncio.gather(*(get(pool, "/conn", want_body=True) for _ in range(10)))
    serials = {b.body.split()[0] for b in bodies}
    assert len(serials) <= 2 and pool.open_connections <= 2
    await pool.close()
