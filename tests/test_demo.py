"""Tests for the embedded demo target (perftui.demo), against real server processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect as ws_connect

from perftui.demo import DemoProcess, launch, parse_latency

READY = re.compile(r"^perftui demo target listening on http://127\.0\.0\.1:(\d+)\n$")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    """The shared, well-behaved demo target (tests must not change its config)."""
    with launch() as proc:
        yield proc


@pytest.fixture(scope="module")
def faulty():
    """A demo target started with 50ms latency and every loaded request failing."""
    with launch(latency="50ms", error_rate=1.0) as proc:
        yield proc


@pytest.fixture(scope="module")
def scratch():
    """A demo target whose runtime config the tests may change."""
    with launch() as proc:
        yield proc


@pytest.fixture
async def client(demo):
    async with httpx.AsyncClient(base_url=demo.url, timeout=10) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, email: str = "alice@example.com") -> str:
    r = await client.post("/auth/sign-in", json={"email": email, "password": "TestPassword123!"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def ws_url(proc: DemoProcess) -> str:
    return proc.url.replace("http://", "ws://") + "/ws"


# -- process, CLI, latency specs -------------------------------------------------------------


def _start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "perftui.demo", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_ready_line_port0_and_clean_exit_on_signal(sig):
    proc = _start_cli()
    try:
        line = proc.stdout.readline()
        m = READY.match(line)
        assert m, f"unexpected ready line {line!r}"
        port = int(m.group(1))
        assert port > 0
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json() == {"status": "ok"}
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        rest, err = proc.communicate(timeout=5)
        assert rest == ""  # exactly one line on stdout
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "flags, needle",
    [(["--latency", "bogus"], "latency"), (["--error-rate", "2"], "error"), (["--port", "x"], "port")],
)
def test_cli_bad_flags_exit_2(flags, needle):
    r = subprocess.run(
        [sys.executable, "-m", "perftui.demo", *flags], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert needle in r.stderr
    assert r.stdout == ""


def test_launch_reports_url_port_pid_and_stops(demo):
    assert demo.url == f"http://127.0.0.1:{demo.port}"
    assert demo.port > 0 and demo.pid > 0 and demo.running()
    with launch() as other:
        assert other.port != demo.port
        assert httpx.get(other.url + "/health", timeout=5).status_code == 200
    assert other.returncode == 0
    assert other.stop() == 0  # idempotent
    with pytest.raises(httpx.TransportError):
        httpx.get(other.url + "/health", timeout=2)


def test_demo_dropped_without_stop_is_stopped_at_exit():
    code = "from perftui.demo import launch; print(launch().pid)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_launch_validates_arguments():
    with pytest.raises(ValueError, match="latency"):
        launch(latency="soon")
    with pytest.raises(ValueError, match="error rate"):
        launch(error_rate=1.5)


def test_launch_failure_raises_runtime_error_with_stderr():
    with pytest.raises(RuntimeError, match="cannot listen"):
        launch(host="256.0.0.1")


def test_parse_latency_specs():
    assert parse_latency("0ms").sample() == 0.0
    assert parse_latency("20ms").sample() == pytest.approx(0.020)
    u = [parse_latency("uniform:5ms:50ms").sample() for _ in range(500)]
    assert min(u) >= 0.005 and max(u) <= 0.050 and max(u) - min(u) > 0.02
    n = [parse_latency("normal:1ms:50ms").sample() for _ in range(500)]
    assert min(n) == 0.0  # clamped, and with sd >> mean some samples clamp
    e = [parse_latency("exp:20ms").sample() for _ in range(4000)]
    assert 0.015 < sum(e) / len(e) < 0.025 and min(e) >= 0
    ln = sorted(parse_latency("lognormal:20ms:0.5").sample() for _ in range(4001))
    assert 0.016 < ln[2000] < 0.024  # median
    for bad in ["", "soon", "-5ms", "uniform:50ms:5ms", "uniform:5ms", "exp", "lognormal:20ms:x", "zipf:1ms"]:
        with pytest.raises(ValueError, match="latency"):
            parse_latency(bad)


# -- health & metrics ----------------------------------------------------------------------


async def test_health(client):
    r = await client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/health/detailed")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "queue"}
    assert all(c["status"] == "up" and c["latency_ms"] >= 0 for c in body["checks"].values())
    assert body["uptime_s"] > 0


async def test_metrics_text_moves_with_load(client):
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    before = scrape(r.text)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        assert (name, frozenset()) in before
    for name in ("demo_http_requests_in_flight", "demo_ws_connections", "demo_mcp_sessions"):
        assert (name, frozenset()) in before
    key = ("demo_http_requests_total", frozenset({"method": "GET", "route": "/api/users/{id}", "status": "200"}.items()))
    for i in range(1, 6):
        assert (await client.get(f"/api/users/{i}")).status_code == 200
    after = scrape((await client.get("/metrics")).text)
    assert after[key] - before.get(key, 0.0) == 5
    hist = ("demo_http_request_duration_seconds_count", frozenset({"route": "/api/users/{id}"}.items()))
    assert after[hist] - before.get(hist, 0.0) == 5
    # the in-flight gauge counts the scrape itself
    assert after[("demo_http_requests_in_flight", frozenset())] >= 1


async def test_metrics_json(client):
    first = (await client.get("/metrics/json")).json()
    await client.get("/api/bounties/1")
    await client.get("/api/bounties/999")
    second = (await client.get("/metrics/json")).json()
    assert second["requests_total"] >= first["requests_total"] + 3
    route = second["routes"]["/api/bounties/{id}"]
    old = first["routes"].get("/api/bounties/{id}", {"count": 0, "client_errors": 0})
    assert route["count"] - old["count"] == 2
    assert route["client_errors"] - old["client_errors"] == 1
    assert second["process"]["rss_bytes"] > 1_000_000
    assert second["process"]["open_fds"] > 0
    assert "cpu_seconds" in second["process"]
    assert second["in_flight"] >= 1


# -- auth and API ----------------------------------------------------------------------------


async def test_sign_in_profile_and_roles(client):
    token = await sign_in(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.get("/api/profile", headers=auth)
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    assert (await client.get("/api/profile")).status_code == 401
    assert (await client.get("/api/profile", headers={"Authorization": "Bearer " + token[:-3] + "AAA"})).status_code == 401
    r = await client.post("/auth/sign-in", json={"email": "alice@example.com", "password": "nope"})
    assert r.status_code == 401 and r.json() == {"error": "invalid credentials"}
    assert (await client.post("/auth/sign-in", content=b"{not json")).status_code == 400
    assert (await client.post("/auth/sign-in", json={"email": "a@b.c"})).status_code == 400

    for path in ("/wallet/balance", "/wallet/transactions", "/notifications", "/notifications/unread-count"):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers=auth)).status_code == 200, path

    for path in ("/admin/metrics", "/admin/analytics/metrics"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=auth)).status_code == 403
    admin = {"Authorization": f"Bearer {await sign_in(client, 'admin@example.com')}"}
    r = await client.get("/admin/metrics", headers=admin)
    assert r.status_code == 200 and r.json()["requests_total"] > 0
    assert (await client.get("/admin/analytics/metrics", headers=admin)).status_code == 200


async def test_login_access_token(client):
    r = await client.post("/auth/login", json={"username": "loadtester", "password": "loadtestpassword"})
    assert r.status_code == 200
    access = r.json()["tokens"]["accessToken"]
    r = await client.get("/wallet/balance", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200 and "balance" in r.json()
    r = await client.post("/auth/login", json={"username": "loadtester", "password": "wrong"})
    assert r.status_code == 401


async def test_users(client):
    r = await client.get("/api/users", params={"limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert [u["id"] for u in body["items"]] == [1, 2, 3, 4, 5] and body["total"] == 1000
    assert (await client.get("/api/users/1000")).json()["id"] == 1000
    assert (await client.get("/api/users/1")).json() == (await client.get("/api/users/1")).json()
    for bad in ("0", "1001", "abc"):
        assert (await client.get(f"/api/users/{bad}")).status_code == 404
    r = await client.post("/api/users", json={"name": "New Person", "email": "new@example.com"})
    assert r.status_code == 201
    created = r.json()
    assert created["name"] == "New Person" and isinstance(created["id"], int) and created["id"] > 1000


async def test_bounties(client):
    assert (await client.get("/api/bounties/1")).status_code == 200
    assert (await client.get("/api/bounties/500")).json()["id"] == 500
    for bad in ("0", "501", "x7Zq2", "-1"):
        assert (await client.get(f"/api/bounties/{bad}")).status_code == 404, bad
    r = await client.get("/api/bounties", params={"limit": 20, "status": "open"})
    items = r.json()["items"]
    assert len(items) == 20 and all(b["status"] == "open" for b in items)
    assert len((await client.get("/api/bounties", params={"limit": 3})).json()["items"]) == 3


async def test_unknown_route_is_json_404(client):
    r = await client.get("/no/such/thing")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


async def test_helpers(client):
    t0 = time.perf_counter()
    r = await client.get("/delay/100")
    assert r.status_code == 200 and time.perf_counter() - t0 >= 0.1
    assert (await client.get("/status/418")).status_code == 418
    assert (await client.get("/status/204")).status_code == 204
    assert (await client.get("/status/42")).status_code == 400
    r = await client.get("/bytes/100000")
    assert r.status_code == 200 and len(r.content) == 100_000
    assert (await client.get(f"/bytes/{16 * 1024 * 1024 + 1}")).status_code == 400
    r = await client.post("/echo", content=b"hello \x00 world", headers={"Content-Type": "application/x-demo"})
    assert r.content == b"hello \x00 world" and r.headers["content-type"] == "application/x-demo"


# -- injected latency, errors, stalls, runtime config -------------------------------------------


async def test_latency_and_error_rate_from_launch(faulty):
    async with httpx.AsyncClient(base_url=faulty.url, timeout=10) as c:
        for _ in range(3):
            t0 = time.perf_counter()
            r = await c.get("/api/users/1")
            assert time.perf_counter() - t0 >= 0.050
            assert r.status_code == 500 and r.json() == {"error": "injected failure"}
        assert (await c.post("/graphql", json={"query": "{ users { id } }"})).status_code == 500
        took = []
        for _ in range(5):  # never delayed or failed: the fastest of five beats the 50 ms delay
            t0 = time.perf_counter()
            assert (await c.get("/health")).status_code == 200
            took.append(time.perf_counter() - t0)
        assert min(took) < 0.050, took
        assert (await c.get("/metrics")).status_code == 200
        r = await c.get("/health/detailed")  # error_rate > 0.5 -> degraded
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        cfg = (await c.get("/_demo/config")).json()
        assert cfg["latency"] == "50ms" and cfg["error_rate"] == 1.0


async def test_runtime_config(scratch):
    async with httpx.AsyncClient(base_url=scratch.url, timeout=10) as c:
        try:
            r = await c.post("/_demo/config", json={"error_rate": 1.0, "latency": "30ms"})
            assert r.status_code == 200 and r.json()["error_rate"] == 1.0
            t0 = time.perf_counter()
            assert (await c.get("/api/bounties/1")).status_code == 500
            assert time.perf_counter() - t0 >= 0.030
            assert (await c.post("/_demo/config", json={"latency": "later"})).status_code == 400
            assert (await c.post("/_demo/config", json={"error_rate": -1})).status_code == 400
            assert (await c.get("/_demo/config")).json()["latency"] == "30ms"  # bad updates change nothing
        finally:
            await c.post("/_demo/config", json={"error_rate": 0.0, "latency": "0ms"})
        assert (await c.get("/api/bounties/1")).status_code == 200


async def test_stall(scratch):
    async with httpx.AsyncClient(base_url=scratch.url, timeout=10) as c:
        r = await c.post("/_demo/stall", json={"seconds": 2.0})
        assert r.status_code == 200
        t0 = time.perf_counter()
        # requests arriving during the stall all finish together, when it ends
        results = await asyncio.gather(c.get("/api/users/1"), c.get("/api/bounties/2"), c.get("/health"))
        assert [x.status_code for x in results] == [200, 200, 200]
        health_elapsed = results[2].elapsed.total_seconds()
        assert health_elapsed < 1.5  # /health is never stalled (the others wait 2 s)
        assert time.perf_counter() - t0 >= 1.8
        t1 = time.perf_counter()
        assert (await c.get("/api/users/2")).status_code == 200
        assert time.perf_counter() - t1 < 1.5  # the stall is over
        assert (await c.post("/_demo/stall", json={"seconds": "long"})).status_code == 400


async def test_stop_during_stall_releases_requests_and_exits_0():
    proc = launch()
    async with httpx.AsyncClient(base_url=proc.url, timeout=10) as c:
        await c.post("/_demo/stall", json={"seconds": 60})
        pending = asyncio.create_task(c.get("/api/users/1"))
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        assert await asyncio.to_thread(proc.stop) == 0
        assert time.perf_counter() - t0 < 4.5  # no waiting out the stall or the 5 s grace timeout
        assert (await pending).status_code == 200
    assert "Traceback" not in proc.stderr_text()


async def test_stall_degrades_detailed_health(scratch):
    async with httpx.AsyncClient(base_url=scratch.url, timeout=10) as c:
        await c.post("/_demo/stall", json={"seconds": 0.3})
        assert (await c.get("/health/detailed")).status_code == 503
        await asyncio.sleep(0.35)
        assert (await c.get("/health/detailed")).status_code == 200


# -- GraphQL ----------------------------------------------------------------------------------


async def test_graphql(client):
    q = "query Q($id: ID!) { user(id: $id) { id email } bounties(status: \"open\", limit: 2) { id status owner { id } } }"
    r = await client.post("/graphql", json={"query": q, "variables": {"id": "7"}, "operationName": "Q"})
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["user"] == {"id": "7", "email": "user7@example.com"}
    assert len(data["bounties"]) == 2 and {b["status"] for b in data["bounties"]} == {"open"}
    r = await client.post("/graphql", json={"query": "{ users(first: 3) { name } }"})
    assert len(r.json()["data"]["users"]) == 3
    r = await client.post("/graphql", json={"query": 'mutation { createBounty(title: "Load test me") { id title status } }'})
    assert r.json()["data"]["createBounty"]["title"] == "Load test me"

    r = await client.post("/graphql", json={"query": "{ doesNotExist }"})
    assert r.status_code == 200 and "data" not in r.json()
    assert "doesNotExist" in r.json()["errors"][0]["message"]
    r = await client.post("/graphql", json={"query": "{ users( "})
    assert r.status_code == 200 and "Syntax Error" in r.json()["errors"][0]["message"]
    assert (await client.post("/graphql", content=b"query {")).status_code == 400
    assert (await client.post("/graphql", json={"variables": {}})).status_code == 400


# -- MCP --------------------------------------------------------------------------------------


def _rpc(method: str, id_: int | None = 1, **params) -> dict:
    msg = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params:
        msg["params"] = params
    return msg


async def test_mcp_session_flow(client):
    accept = {"Accept": "application/json, text/event-stream"}
    r = await client.post(
        "/mcp", headers=accept, json=_rpc("initialize", protocolVersion="2025-03-26", capabilities={}, clientInfo={"name": "t", "version": "1"})
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    result = r.json()["result"]
    assert result["protocolVersion"] == "2025-03-26"  # echoes the client's version
    assert result["serverInfo"]["name"] == "perftui-demo" and "tools" in result["capabilities"]
    sid = r.headers["mcp-session-id"]
    h = {**accept, "Mcp-Session-Id": sid}

    r = await client.post("/mcp", headers=h, json=_rpc("notifications/initialized", id_=None))
    assert r.status_code == 202 and r.content == b""
    r = await client.post("/mcp", headers=h, json=_rpc("tools/list", 2))
    assert {t["name"] for t in r.json()["result"]["tools"]} == {"echo", "get_time", "get_user_info"}
    r = await client.post("/mcp", headers=h, json=_rpc("tools/call", 3, name="echo", arguments={"text": "hi there"}))
    assert r.json() == {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "hi there"}], "isError": False}}
    r = await client.post("/mcp", headers=h, json=_rpc("tools/call", 4, name="get_user_info", arguments={"user_id": 5}))
    assert json.loads(r.json()["result"]["content"][0]["text"])["id"] == 5
    assert (await client.post("/mcp", headers=h, json=_rpc("ping", 5))).json()["result"] == {}
    r = await client.post("/mcp", headers=h, json=_rpc("tools/call", 6, name="nope", arguments={}))
    assert r.json()["error"]["code"] == -32602
    assert (await client.post("/mcp", headers=h, json=_rpc("resources/list", 7))).json()["error"]["code"] == -32601
    r = await client.post("/mcp", headers=h, content=b"{oops")
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700

    sessions = scrape((await client.get("/metrics")).text)[("demo_mcp_sessions", frozenset())]
    assert sessions >= 1
    assert (await client.request("DELETE", "/mcp", headers=h)).status_code == 200
    assert (await client.post("/mcp", headers=h, json=_rpc("ping", 8))).status_code == 404  # session gone
    after = scrape((await client.get("/metrics")).text)[("demo_mcp_sessions", frozenset())]
    assert after == sessions - 1


async def test_mcp_missing_session_is_400(client):
    r = await client.post("/mcp", json=_rpc("tools/list"))
    assert r.status_code == 400
    body = r.json()
    assert body["jsonrpc"] == "2.0" and "error" in body


def _sse_events(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        assert lines["event"] == "message"
        events.append(json.loads(lines["data"]))
    return events


async def test_mcp_sse_variants(client):
    r = await client.post("/mcp", headers={"Accept": "text/event-stream"}, json=_rpc("initialize"))
    assert r.headers["content-type"].startswith("text/event-stream")
    (event,) = _sse_events(r.text)
    assert event["result"]["protocolVersion"] == "2025-06-18"
    sid = r.headers["mcp-session-id"]
    r = await client.post("/mcp/sse", headers={"Mcp-Session-Id": sid}, json=_rpc("tools/call", 2, name="echo", arguments={"text": "sse"}))
    assert r.headers["content-type"].startswith("text/event-stream")
    (event,) = _sse_events(r.text)
    assert event["id"] == 2 and event["result"]["content"][0]["text"] == "sse"


async def test_mcp_official_client(demo):
    """The reference MCP SDK client can talk to the demo over Streamable HTTP."""
    mcp_client = pytest.importorskip("mcp.client.streamable_http")
    from mcp import ClientSession

    async with mcp_client.streamable_http_client(demo.url + "/mcp") as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            tools = await session.list_tools()
            assert {t.name for t in tools.tools} == {"echo", "get_time", "get_user_info"}
            result = await session.call_tool("echo", {"text": "from the sdk"})
            assert result.content[0].text == "from the sdk"


# -- WebSocket --------------------------------------------------------------------------------


async def _recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_ws_echo_ping_and_verbatim(demo):
    async with ws_connect(ws_url(demo)) as ws:
        await ws.send(json.dumps({"type": "echo", "id": "abc-1", "data": {"n": [1, 2, 3]}}))
        assert await _recv(ws) == {"type": "echo", "data": {"n": [1, 2, 3]}, "id": "abc-1"}
        await ws.send(json.dumps({"type": "ping", "id": 7}))
        reply = await _recv(ws)
        assert reply["type"] == "pong" and reply["id"] == 7
        await ws.send("plain text, not json")
        assert await asyncio.wait_for(ws.recv(), 5) == "plain text, not json"
        await ws.send(json.dumps({"type": "bogus", "id": 9}))
        reply = await _recv(ws)
        assert reply["type"] == "error" and reply["id"] == 9


async def test_ws_pubsub_between_two_sockets(demo):
    async with ws_connect(ws_url(demo)) as sub, ws_connect(ws_url(demo)) as pub:
        await sub.send(json.dumps({"type": "subscribe", "channel": "room-1", "id": 1}))
        assert await _recv(sub) == {"type": "subscribed", "channel": "room-1", "id": 1}
        await pub.send(json.dumps({"type": "publish", "channel": "room-1", "data": {"hello": "world"}, "id": 2}))
        ack = await _recv(pub)
        assert ack["type"] == "published" and ack["receivers"] == 1 and ack["id"] == 2
        assert await _recv(sub) == {"type": "message", "channel": "room-1", "data": {"hello": "world"}}
        await pub.send(json.dumps({"type": "broadcast", "channel": "empty-room", "data": 1}))
        assert (await _recv(pub))["receivers"] == 0


async def test_ws_ticker(demo):
    async with ws_connect(ws_url(demo) + "?token=anything") as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "ticker", "interval_ms": 20}))
        assert (await _recv(ws))["type"] == "subscribed"
        t0 = time.perf_counter()
        ticks = [await _recv(ws) for _ in range(5)]
        assert [t["type"] for t in ticks] == ["tick"] * 5
        assert [t["seq"] for t in ticks] == [1, 2, 3, 4, 5]
        assert all(isinstance(t["ts"], float) for t in ticks)
        assert time.perf_counter() - t0 >= 0.06  # paced, not a burst


async def test_ws_metrics(demo):
    async with httpx.AsyncClient(base_url=demo.url, timeout=10) as c:
        before = (await c.get("/metrics/json")).json()
        async with ws_connect(ws_url(demo)) as ws:
            for i in range(3):
                await ws.send(json.dumps({"type": "ping", "id": i}))
                await _recv(ws)
            during = (await c.get("/metrics/json")).json()
            assert during["ws_connections"] == before["ws_connections"] + 1
        assert during["ws_messages"]["in"] - before["ws_messages"]["in"] == 3
        assert during["ws_messages"]["out"] - before["ws_messages"]["out"] == 3
        text = scrape((await c.get("/metrics")).text)
        assert text[("demo_ws_messages_total", frozenset({"direction": "in"}.items()))] >= 3


# -- in-process app -----------------------------------------------------------------------------


async def test_create_app_in_process():
    from perftui.demo import create_app

    app = create_app(latency="0ms", error_rate=0.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as c:
        assert (await c.get("/health")).json() == {"status": "ok"}
        assert (await c.get("/api/users/1")).json()["id"] == 1
        assert (await c.get("/metrics/json")).json()["routes"]["/api/users/{id}"]["count"] == 1
    with pytest.raises(ValueError):
        create_app(latency="whenever")
    with pytest.raises(ValueError):
        create_app(error_rate=-0.5)
