"""Target faults: each is counted under its error kind, the open-model schedule keeps going
(every arrival still starts on time), and the worker's memory stays bounded.

The faulty targets are real servers on 127.0.0.1 in the test's own event loop (RawPeer writes
exactly the bytes a test scripts); the load comes from the real coordinator and worker process."""

from __future__ import annotations

import asyncio


from perftui.run.coordinator import Coordinator
from perftui.planload import plan_from_dict
from tests.http_peers import CLOSE, HANG, RESET, RawPeer, Sleep, response, tls_contexts

RATE = 20
SECONDS = 3


def _plan(url: str, *, timeout: str = "5s", path: str = "/x", extra_defaults: dict | None = None,
          seconds: int = SECONDS):
    # Timeouts far above a loopback answer, even on a machine with both cores busy (the peers run
    # in this process): a fault must show as its own kind, not as a timeout; the tests of
    # timeouts set their own.
    defaults = {"timeout": timeout, "connect_timeout": "5s", **(extra_defaults or {})}
    return plan_from_dict({
        "target": url, "defaults": defaults,
        "phases": [{"name": "faulty", "duration": f"{seconds}s", "arrival_rate": RATE}],
        "scenarios": [{"steps": [{"url": path, "name": "fault"}]}],
    })


async def _run(loaded, target: str, during=None):
    coord = Coordinator(loaded, target, workers=1)
    await coord.start()
    if during is not None:
        await during(coord)
    await asyncio.wait_for(coord.finished.wait(), 90)
    s = coord.session
    ep = {e.name: e for e in s.endpoint_summaries()}.get("fault")
    return s, ep, s.iterations


def _schedule_kept(started: float) -> None:
    # the scheduled arrivals started, whatever the target did (the open model never waits for
    # it); never more than scheduled, and on a machine with both cores busy a few may still be
    # late when the phase ends
    assert RATE * SECONDS * 0.75 <= started <= RATE * SECONDS + 3, started


ENOUGH = RATE * SECONDS // 2
"""Requests that must have completed: half the schedule (all of it on a quiet machine)."""


async def test_reset_mid_response():
    async with RawPeer(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", RESET]) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url), url)
    assert ep.error_kinds == {"reset": ep.requests} and ep.requests >= ENOUGH
    _schedule_kept(started)


async def test_accepts_and_never_answers():
    async with RawPeer(lambda r: [HANG]) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, timeout="300ms"), url)
    assert ep.error_kinds == {"timeout": ep.requests} and ep.requests >= ENOUGH
    _schedule_kept(started)
    assert s.generator.open_connections <= RATE  # timed-out connections are closed, not leaked


async def test_slow_drip_body_times_out():
    drip = [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"] + [x for _ in range(50) for x in (b"x", Sleep(0.05))]
    async with RawPeer(lambda r: drip) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, timeout="1s"), url)
    assert ep.error_kinds == {"timeout": ep.requests}
    _schedule_kept(started)


async def test_garbage_instead_of_http():
    async with RawPeer(lambda r: [b"\x16\x03\x01 this is not HTTP at all\r\n\r\n", CLOSE]) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url), url)
    assert ep.error_kinds == {"protocol": ep.requests} and ep.requests >= ENOUGH
    _schedule_kept(started)


async def test_ten_megabyte_body_keeps_memory_bounded():
    body = b"z" * (10 * 2**20)
    async with RawPeer(lambda r: [response(200, body)]) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, timeout="5s"), url)
    assert ep.errors == 0 and ep.requests >= ENOUGH
    assert ep.bytes_received == ep.requests * len(body)
    # bodies are counted, not kept: the worker stays far below one body per request
    assert max(r.rss_mb for r in s.timeline) < 150, [r.rss_mb for r in s.timeline]


async def test_tls_handshake_failure_untrusted_certificate():
    server_ctx, _ = tls_contexts()  # signed by a throwaway CA the client does not trust
    async with RawPeer(lambda r: [response(200, b"secure")], ssl_context=server_ctx) as peer:
        url = f"https://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url), url)
    assert ep.error_kinds == {"tls": ep.requests} and ep.requests >= ENOUGH
    _schedule_kept(started)


async def test_tls_handshake_failure_plain_http_server():
    async with RawPeer(lambda r: [], greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n", read_requests=False) as peer:
        url = f"https://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url), url)
    assert ep.error_kinds == {"tls": ep.requests}


async def test_https_works_with_tls_verify_off():
    server_ctx, _ = tls_contexts()
    async with RawPeer(lambda r: [response(200, b"secure")], ssl_context=server_ctx) as peer:
        url = f"https://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, extra_defaults={"tls_verify": False}), url)
    assert ep.errors == 0 and ep.status_codes == {"200": ep.requests}


async def test_target_killed_mid_run_and_restarted():
    from perftui.demo import launch
    from tests.conftest import free_port

    port = free_port()
    demo = await asyncio.to_thread(launch, port=port)
    url = demo.url
    restarted = []

    async def chaos(coord):
        await asyncio.sleep(1.0)
        await asyncio.to_thread(demo.stop, 2)
        await asyncio.sleep(0.7)
        restarted.append(await asyncio.to_thread(launch, port=port))

    try:
        s, ep, started = await _run(_plan(url, path="/health", seconds=5), url, during=chaos)
    finally:
        for d in restarted:
            d.stop()
    kinds = ep.error_kinds
    assert kinds.get("connect_refused", 0) >= 5, kinds  # while it was down
    assert set(kinds) <= {"connect_refused", "reset"}, kinds
    ok = ep.status_codes.get("200", 0)
    assert ok >= 5, ep.status_codes  # before the kill and after the restart (~60 on a quiet machine)
    assert s.timeline[-2].errors == 0 and s.timeline[-2].requests >= RATE // 2  # recovered
    assert RATE * 5 * 0.75 <= started <= RATE * 5 + 3


def _redirecting(r):
    # /loop/N -> /loop/N+1 forever; /hop/N -> ... -> /done after N hops; /away -> another origin
    if r.target.startswith("/loop/"):
        n = int(r.target.rsplit("/", 1)[1])
        return [response(302, b"", [("Location", f"/loop/{n + 1}")])]
    if r.target.startswith("/hop/"):
        n = int(r.target.rsplit("/", 1)[1])
        return [response(303 if r.method == "POST" else 301, b"", [("Location", f"/hop/{n - 1}" if n > 1 else "/done")])]
    if r.target == "/done":
        return [response(200, f"{r.method} done".encode())]
    return [response(404, b"")]


async def test_redirect_loop():
    async with RawPeer(_redirecting) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, path="/loop/0"), url)
    assert ep.error_kinds == {"redirect_loop": ep.requests} and ep.requests >= ENOUGH
    assert ep.status_codes == {"302": ep.requests}
    # each request went through the limit of 10 redirects, then stopped
    assert len(peer.requests) == ep.requests * 11
    _schedule_kept(started)


async def test_redirects_are_followed_and_post_becomes_get():
    async with RawPeer(_redirecting) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        loaded = plan_from_dict({
            "target": url, "phases": [{"duration": "1s", "arrival_rate": 5}],
            "scenarios": [{"steps": [{"url": "/hop/3", "method": "POST", "json": {"a": 1}, "name": "fault",
                                      "expect": {"status": 200, "body_contains": "GET done"}}]}],
        })
        s, ep, started = await _run(loaded, url)
    assert ep.errors == 0 and ep.status_codes == {"200": ep.requests}
    assert [r.method for r in peer.requests[:4]] == ["POST", "GET", "GET", "GET"]


async def test_redirects_not_followed_when_turned_off():
    async with RawPeer(_redirecting) as peer:
        url = f"http://127.0.0.1:{peer.port}"
        s, ep, started = await _run(_plan(url, path="/loop/0", extra_defaults={"follow_redirects": False}), url)
    assert ep.errors == 0 and ep.status_codes == {"302": ep.requests}
    assert len(peer.requests) == ep.requests
