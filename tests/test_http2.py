"""HTTP/2 when a plan asks for it (``[defaults] http2 = true``), through perftui's own HTTP/2
engine (``perftui.worker.h2transport``): against a real nginx over h2c and over TLS with ALPN
(and one that only offers HTTP/1.1), and against a small h2 server (tests/h2_peer.py) that
resets streams, sends GOAWAY and the framing edges perftui's own frame parser must handle.
Requests really arrive as HTTP/2; failures keep perftui's error kinds plus ``h2_stream_reset``
and ``h2_goaway``; the session says which protocol each endpoint used; the client's counts match
the server's."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import free_port, read_session, run_cli, write_plan
from tests.h2_peer import H2Peer
from tests.nginx_peer import NginxPeer, nginx_binary

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (tests/setup.sh installs it)")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    c, k = d / "cert.pem", d / "key.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(c))
    issued.private_key_pem.write_to_path(str(k))
    return str(c), str(k)


def _run(tmp_path, plan_text: str) -> dict:
    plan = write_plan(tmp_path, plan_text)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--workers", "1", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    return read_session(out)


@needs_nginx
def test_http2_requests_reach_nginx_as_h2c(tmp_path):
    with NginxPeer(http2=True) as nginx:
        s = _run(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            h2_streams = 4
            [[phases]]
            duration = "2s"
            arrival_rate = 25
            [[scenarios]]
            steps = [
              {{ url = "/proto", expect = {{ status = 200, body_contains = "HTTP/2.0" }} }},
              {{ url = "/status/404", expect = {{ status = 404 }} }},
              {{ url = "/status/503", name = "503" }},
              {{ url = "/redirect", name = "redirect", expect = {{ body_contains = "HTTP/2.0" }} }},
              {{ url = "/headers", capture = [{{ header = "X-Perftui-A", as = "a" }}] }},
              {{ url = "/proto", name = "captured", if = "a", method = "POST", json = {{ a = "{{{{a}}}}" }}, expect = {{ status = 200 }} }},
            ]
        """)
    eps = {e["name"]: e for e in s["endpoints"]}
    proto = eps["GET /proto"]
    assert proto["requests"] >= 10 and proto["errors"] == 0  # body_contains "HTTP/2.0" held every time
    assert eps["GET /status/404"]["errors"] == 0
    assert eps["503"]["error_kinds"] == {"http_5xx": eps["503"]["requests"]}
    # the 302 was followed over HTTP/2 and the final answer recorded
    assert eps["redirect"]["errors"] == 0 and eps["redirect"]["status_codes"] == {"200": eps["redirect"]["requests"]}
    # a header capture (HTTP/2 names are lower-case) guards the POST step: it ran every time
    assert eps["captured"]["requests"] == eps["GET /headers"]["requests"] >= 10
    assert eps["captured"]["errors"] == 0
    assert {e["protocol"] for e in s["endpoints"]} == {"h2c"}


@needs_nginx
def test_http2_over_tls_negotiates_h2_with_alpn(tmp_path, cert):
    with NginxPeer(http2=True, tls=cert) as nginx:
        s = _run(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            tls_verify = false
            [[phases]]
            duration = "2s"
            vus = 4
            [[scenarios]]
            steps = [{{ url = "/proto", expect = {{ status = 200, body_contains = "HTTP/2.0" }} }}]
        """)
    ep = s["endpoints"][0]
    assert ep["requests"] >= 20 and ep["errors"] == 0
    assert ep["protocol"] == "h2"


@needs_nginx
def test_http2_falls_back_to_http11_when_alpn_picks_it(tmp_path, cert):
    with NginxPeer(http2=False, tls=cert) as nginx:
        s = _run(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            tls_verify = false
            [[phases]]
            duration = "1s"
            vus = 2
            [[scenarios]]
            steps = [{{ url = "/proto", expect = {{ status = 200, body_contains = "HTTP/1.1" }} }}]
        """)
    ep = s["endpoints"][0]
    assert ep["requests"] >= 10 and ep["errors"] == 0
    assert ep["protocol"] == "http/1.1"


@needs_nginx
def test_http2_tls_verification_failure_is_tls(tmp_path, cert):
    with NginxPeer(http2=True, tls=cert) as nginx:
        s = _run(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            [[phases]]
            duration = "1s"
            arrival_rate = 10
            [[scenarios]]
            steps = [{{ url = "/proto" }}]
        """)
    summary = s["summary"]
    assert summary["requests"] >= 9 and summary["error_kinds"] == {"tls": summary["requests"]}


@needs_nginx
def test_h2c_to_a_server_without_http2_says_so(tmp_path):
    with NginxPeer() as nginx:  # HTTP/1.1 only
        s = _run(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            [[phases]]
            duration = "1s"
            arrival_rate = 10
            [[scenarios]]
            steps = [{{ url = "/proto" }}]
        """)
        message = asyncio.run(_h2c_error(nginx.port))
    summary = s["summary"]
    assert summary["requests"] >= 9 and summary["error_kinds"] == {"protocol": summary["requests"]}
    assert "h2c" in message  # the message on the dashboard's error list says what to check


async def _h2c_error(port: int) -> str:
    from perftui.worker.h2transport import H2Pool
    from perftui.worker.transport import TransportError

    pool = H2Pool("http", "127.0.0.1", port)
    try:
        await pool.request("GET", "/proto", f"127.0.0.1:{port}", None, None, timeout=5, plain_headers=[])
    except TransportError as exc:
        assert exc.kind == "protocol"
        return str(exc)
    finally:
        await pool.close()
    raise AssertionError("an HTTP/1.1-only server answered over h2c")


def test_h2_streams_out_of_range_is_a_plan_error(tmp_path):
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [defaults]
        http2 = true
        h2_streams = 0
        [[phases]]
        duration = "1s"
        vus = 1
        [[scenarios]]
        steps = [{ url = "/" }]
    """)
    r = run_cli("run", str(plan), "--headless")
    assert r.returncode == 2
    assert "h2_streams" in r.stderr and "from 1 to 10000" in r.stderr and "Traceback" not in r.stderr


def test_http2_failures_are_classified(tmp_path):
    dead = free_port()
    s = _run(tmp_path, f"""
        target = "http://127.0.0.1:{dead}"
        [defaults]
        http2 = true
        [[phases]]
        duration = "1s"
        arrival_rate = 10
        [[scenarios]]
        steps = [{{ url = "/" }}]
    """)
    summary = s["summary"]
    assert summary["error_kinds"] == {"connect_refused": summary["requests"]} and summary["requests"] >= 9


def test_stream_resets_goaway_and_timeouts_are_counted_and_the_run_goes_on(tmp_path):
    # One stream per connection, so each GOAWAY concerns exactly one request.
    with H2Peer(goaway_every=7) as peer:
        s = _run(tmp_path, f"""
            target = "{peer.url()}"
            [defaults]
            http2 = true
            h2_streams = 1
            timeout = "300ms"
            [[phases]]
            duration = "2s"
            vus = 4
            [[scenarios]]
            name = "ok"
            weight = 10
            steps = [{{ url = "/ok" }}]
            [[scenarios]]
            name = "reset"
            weight = 1
            steps = [{{ url = "/reset" }}]
            [[scenarios]]
            name = "goaway"
            weight = 1
            steps = [{{ url = "/goaway" }}]
            [[scenarios]]
            name = "hang"
            weight = 1
            steps = [{{ url = "/hang" }}]
        """)
    counts = peer.counts
    eps = {e["name"]: e for e in s["endpoints"]}
    ok, reset, goaway, hang = eps["GET /ok"], eps["GET /reset"], eps["GET /goaway"], eps["GET /hang"]
    assert ok["errors"] == 0 and ok["status_codes"] == {"200": counts["ok"]} and counts["ok"] >= 50
    assert reset["error_kinds"] == {"h2_stream_reset": counts["reset"]} and counts["reset"] >= 1
    assert goaway["error_kinds"] == {"h2_goaway": counts["goaway_error"]} and counts["goaway_error"] >= 1
    assert hang["error_kinds"] == {"timeout": counts["hang"]} and counts["hang"] >= 1
    assert counts["reset_by_client"] == counts["hang"]  # a timed-out stream is reset (CANCEL)
    # graceful GOAWAYs every 7 answers: perftui reconnected and carried on
    assert counts["goaway_graceful"] >= 5 and counts["connections"] > counts["goaway_graceful"]
    assert counts["ignored_after_goaway"] == 0  # one stream per connection: nothing was in flight
    assert s["summary"]["requests"] == counts["ok"] + counts["reset"] + counts["goaway_error"] + counts["hang"]
    assert ok["protocol"] == "h2c"


def test_open_model_over_many_streams_matches_the_server(tmp_path):
    # Many streams per connection and graceful GOAWAYs mid-run: streams the server never
    # processed are sent again, so the client's count of answers is the server's.
    with H2Peer(goaway_every=25) as peer:
        s = _run(tmp_path, f"""
            target = "{peer.url()}"
            [defaults]
            http2 = true
            h2_streams = 16
            [[phases]]
            duration = "2s"
            arrival_rate = 100
            [[scenarios]]
            steps = [{{ url = "/ok" }}]
        """)
    counts = peer.counts
    summary = s["summary"]
    assert summary["status_codes"].get("200", 0) == counts["ok"]
    assert 170 <= summary["requests"] <= 210  # 100/s for 2 s, each arrival once (the edges of the schedule may add one or two)
    assert summary["error_kinds"].get("h2_goaway", 0) <= 2  # only a stream refused twice counts
    assert counts["goaway_graceful"] >= 6
    # open model: latency from the schedule, service time from the send; never less
    assert summary["latency_ms"]["p50"] >= summary["service_time_ms"]["p50"]
    assert summary["latency_ms"]["max"] < 5000 and summary["late_starts"] <= summary["requests"]


def test_endpoint_tables_mark_http2_endpoints():
    from perftui.ui.widgets.endpoints import endpoint_label

    plain = endpoint_label("GET /users", "http/1.1", 30)
    assert plain.plain == "GET /users" and not plain.spans  # the unmarked default
    assert endpoint_label("GET /users", "h2", 30).plain == "GET /users h2"
    short = endpoint_label("GET /a/very/long/path/name", "h2c", 16)
    assert short.plain.endswith("… h2c") and len(short.plain) == 16


def test_hpack_caches_decode_and_encode_like_hpack_itself():
    # The engine's HPACK caches (h2transport) must agree with plain hpack on a stream of header
    # blocks that index, reference the dynamic table, repeat, and evict.
    from hpack import Decoder, Encoder

    from perftui.worker.h2hpack import CachingDecoder as _CachingDecoder, CachingEncoder as _CachingEncoder

    _CachingDecoder._shared.clear()

    def nginx_like(i: int) -> bytes:
        # a fresh encoder: literals with incremental indexing and no reference to the dynamic
        # table, as nginx sends response headers
        return Encoder().encode([(b":status", b"200"), (b"server", b"nginx"),
                                 (b"date", f"second {i // 7}".encode()), (b"x-n", str(i % 5).encode())])

    newest, second = bytes([0x80 | 62]), bytes([0x80 | 63])  # indexed: dynamic entries 1 and 2
    blocks = []
    for i in range(300):
        blocks += [nginx_like(i), newest, second]
    plain, cached = Decoder(), _CachingDecoder(Decoder())
    plain.header_table_size = cached.header_table_size = 200  # small: entries get evicted
    for block in blocks:
        assert cached.decode(block, raw=True) == plain.decode(block, raw=True)
    assert len(_CachingDecoder._shared) >= 5  # the nginx-like blocks were served from the cache
    assert list(cached.header_table.dynamic_entries) == list(plain.header_table.dynamic_entries)
    for size in (40, 30):  # some entries too big for the table (40), every entry too big (30)
        plain, cached = Decoder(), _CachingDecoder(Decoder())
        plain.header_table_size = cached.header_table_size = size
        for i in range(60):
            block = nginx_like(i)
            assert cached.decode(block, raw=True) == plain.decode(block, raw=True)
            assert list(cached.header_table.dynamic_entries) == list(plain.header_table.dynamic_entries)
            assert cached.header_table._current_size == plain.header_table._current_size

    plain_enc, cached_enc = Encoder(), _CachingEncoder(Encoder())
    lists = [[(b":method", b"GET"), (b":path", f"/p{i % 3}".encode()), (b"user-agent", b"perftui")]
             for i in range(50)]
    for headers in lists:
        assert cached_enc.encode(headers) == plain_enc.encode(headers)


async def _pool_requests(port: int, requests: list[tuple], *, max_streams: int = 100,
                         timeout: float = 10) -> tuple[list, int]:
    """Send ``requests`` (method, path, body[, headers]) at once through one H2Pool; the responses or
    TransportErrors in order, and the pool's GOAWAY count."""
    from perftui.worker.h2transport import H2Pool
    from perftui.worker.transport import TransportError

    pool = H2Pool("http", "127.0.0.1", port, max_streams=max_streams)
    authority = f"127.0.0.1:{port}"

    async def one(method, path, body, headers=()):
        try:
            return await pool.request(method, path, authority, None, body, timeout=timeout, want_body=True,
                                      want_headers=True, plain_headers=list(headers))
        except TransportError as exc:
            return exc

    try:
        return list(await asyncio.gather(*(one(*r) for r in requests))), pool.goaways
    finally:
        await pool.close()


def test_framing_edges_against_an_h2_server():
    # perftui's own HTTP/2 framing (h2conn) against the h2 library's server side: response headers
    # split over CONTINUATION, padded and prioritized HEADERS after a 103, padded DATA, many
    # small DATA frames with trailers, a PING to answer, a download larger than the stream's
    # 16 MiB receive window, request bodies through a 7-byte send window, and a request header
    # block larger than the server's 16 KiB frames.
    body = bytes(range(256)) * 40  # 10,240 bytes: ~1,500 DATA frames through the tiny window
    with H2Peer(initial_window=7) as peer:
        results, goaways = asyncio.run(_pool_requests(peer.port, [
            ("GET", "/cont", None),
            ("GET", "/padded", None),
            ("GET", "/frames", None),
            ("GET", "/ping", None),
            ("GET", f"/big?{17 * 1024 * 1024}", None),
            ("POST", "/echo", body),
            ("POST", "/echo", b"abc"),
            ("POST", "/echo", b""),
            ("GET", "/hdr", None, [("X-Big", "w" * 40000)]),  # our block goes as HEADERS + CONTINUATION
        ], max_streams=4, timeout=30))
    counts = peer.counts
    for r in results:
        assert not isinstance(r, Exception), r
    cont, padded, frames, ping, big, echo, echo_small, echo_empty, hdr = results
    headers = dict(cont.headers)
    assert cont.status == 200 and headers[b"x-big"] == b"v" * 40000 and cont.body == b""
    assert padded.status == 200 and padded.body == b"padded body" and dict(padded.headers)[b"x-padded"] == b"yes"
    assert b"link" not in dict(padded.headers)  # the 103's headers are not the response's
    assert frames.body == b"0123456789" * 20 and frames.body_size == 200
    assert (b"x-trailer", b"yes") in [tuple(h) for h in frames.headers]
    assert ping.body == b"ok" and counts["ping_acks"] == 1
    assert big.body_size == 17 * 1024 * 1024 and big.body == b"x" * big.body_size
    assert echo.body == str(len(body)).encode() and echo_small.body == b"3" and echo_empty.body == b"0"
    assert hdr.body == b"40000"
    assert counts["server_protocol_errors"] == 0 and goaways == 0
    assert counts["connections"] == 3  # 9 requests, 4 streams per connection


def test_the_servers_stream_limit_is_respected():
    # The server allows 3 concurrent streams; the plan asks for 10 per connection and 30 requests
    # at once: none is refused, and the server never sees more than 3 open on a connection.
    with H2Peer(max_concurrent=3) as peer:
        results, _ = asyncio.run(_pool_requests(peer.port, [("GET", "/slow", None)] * 30, max_streams=10))
    assert all(not isinstance(r, Exception) and r.body == b"ok" for r in results), results
    assert peer.counts["slow"] == 30 and peer.counts["max_open"] == 3
    assert peer.counts["server_protocol_errors"] == 0


def test_a_frame_too_large_is_a_protocol_error_with_goaway():
    with H2Peer() as peer:
        results, _ = asyncio.run(_pool_requests(peer.port, [("GET", "/oversize", None)]))
        deadline = time.monotonic() + 10
        while not peer.goaway_codes and time.monotonic() < deadline:
            time.sleep(0.01)
    (r,) = results
    assert r.kind == "protocol" and "16384" in r.message
    assert peer.goaway_codes == {6: 1}  # FRAME_SIZE_ERROR


def test_resets_among_streams_in_flight_and_an_error_goaway():
    # RST_STREAM for some of the streams in flight on one connection: those requests get their own
    # kind and the others complete; then a GOAWAY with an error code is h2_goaway and names it.
    with H2Peer(goaway_every=1000) as peer:
        results, goaways = asyncio.run(_pool_requests(
            peer.port, [("GET", "/slow", None)] * 4 + [("GET", "/reset", None)] * 2 + [("GET", "/ok", None)] * 4,
            max_streams=20))
        later, _ = asyncio.run(_pool_requests(peer.port, [("GET", "/goaway", None)]))
    kinds = [getattr(r, "kind", r.status if hasattr(r, "status") else r) for r in results]
    assert kinds == [200] * 4 + ["h2_stream_reset"] * 2 + [200] * 4
    assert later[0].kind == "h2_goaway" and "ENHANCE_YOUR_CALM" in later[0].message
    assert peer.counts["reset_by_client"] == 0 and goaways == 0
