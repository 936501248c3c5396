"""WebSocket, GraphQL and MCP steps against real peers on 127.0.0.1 (a ``websockets`` server, a
strawberry-graphql app, the official MCP SDK's server; see ``tests/protocol_peers.py``) and
against the embedded demo through the CLI, asserting the numbers in the session JSON.

Two layers: the scenario runner in process (exact counts, error kinds, timings), then whole runs
through ``perftui run --headless`` (worker processes, snapshots, the ``protocols`` section).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from perftui.worker.messages import Snapshot
from perftui.worker.rpc import find_response, graphql_errors, sse_data
from perftui.worker.scenario import ScenarioRunner
from perftui.worker.ws import ws_url
from perftui.errors import PlanError
from perftui.plan import endpoint_name, protocol_endpoints
from perftui.planload import load_plan, plan_from_dict, redacted_plan
from perftui.session import PhaseRecord, SessionRecord
from perftui.thresholds import evaluate, parse_threshold
from tests.conftest import ROOT, read_session, run_cli, write_plan
from tests.protocol_peers import WsPeer, graphql_app, mcp_app, serving

# ---- peers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ws_peer():
    peer = WsPeer(tick_ms=20).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def gql_peer():
    with serving(graphql_app()) as server:
        yield server


@pytest.fixture(scope="module")
def mcp_peer():
    with serving(mcp_app()) as server:
        yield server


@pytest.fixture(scope="module")
def mcp_peer_forgetful():
    """An MCP SDK server that drops sessions idle for more than one second."""
    with serving(mcp_app(session_idle_timeout=1.0)) as server:
        yield server


def plan_of(steps: list[dict], target: str = "http://127.0.0.1:9", **extra) -> object:
    data = {"target": target, "phases": [{"duration": "1s", "vus": 1}],
            "scenarios": [{"name": "s", "steps": steps}], **extra}
    return plan_from_dict(data).plan


async def run_iterations(steps: list[dict], target: str, iterations: int = 1, **extra) -> ScenarioRunner:
    """Run ``iterations`` iterations of one virtual user in process; returns the runner (its
    recorders and counters hold what happened)."""
    runner = ScenarioRunner(plan_of(steps, target, **extra), target)
    vars = runner.new_vu()
    for _ in range(iterations):
        await runner.iteration(vars, None)
    await runner.close()
    runner.last_vars = vars
    return runner


def rec(runner: ScenarioRunner, name: str):
    return runner.recorders[name]


# ---- WebSocket, in process -----------------------------------------------------------------------


async def test_ws_request_reply_round_trip(ws_peer):
    """Five request/response pairs matched on a fresh $uuid(): each timed from the send to the
    echo, which the peer delays by 20 ms."""
    runner = await run_iterations([
        {"ws_connect": "/echo?delay_ms=20"},
        *[{"ws_request": {"type": "echo", "id": "{{ $uuid() }}", "n": i}, "name": "WS echo"} for i in range(5)],
    ], ws_peer.http_url)
    echo = rec(runner, "WS echo")
    assert (echo.requests, echo.errors) == (5, 0)
    assert echo.latency.count == 5
    assert 20_000 <= echo.latency.min and echo.latency.max < 200_000  # µs
    connect = rec(runner, "WS connect /echo")  # the query string is not part of the name
    assert connect.status == {101: 1} and connect.latency.count == 1
    extra = runner.take_extra()
    assert extra["ws.messages_sent"] == 5 and extra["ws.messages_received"] == 5
    assert extra["ws.connections_opened"] == 1 and extra["ws.connections_failed"] == 0
    assert extra["ws.open_connections"] == 0  # closed at the end of the iteration
    assert runner.take_extra()["ws.messages_sent"] == 0  # counters are per interval


async def test_ws_correlation_skips_other_messages(ws_peer):
    """While a ws_request waits for its id, ticks and other replies pass by without matching."""
    runner = await run_iterations([
        {"ws_connect": "/pubsub"},
        {"ws_request": {"type": "subscribe", "channel": "ticker", "id": "sub-{{ $vu }}"}, "name": "sub"},
        {"ws_request": {"type": "ping", "id": 42}, "name": "ping", "capture": [{"json": "$.type", "as": "pong"}]},
        {"ws_request": {"type": "ping", "meta": {"corr": "{{ $uuid() }}"}}, "match": "$.meta.corr", "name": "ping2",
         "timeout": "300ms"},
    ], ws_peer.http_url)
    assert rec(runner, "sub").errors == 0 and rec(runner, "ping").errors == 0
    assert runner.last_vars["pong"] == "pong"
    # the pubsub peer does not echo "meta": the reply never matches, so the wait times out
    assert rec(runner, "ping2").error_kinds == {"ws_timeout": 1}


async def test_ws_send_expect_and_hold_count_pushes(ws_peer):
    """subscribe (ws_send) -> the ack arrives before ws_expect starts waiting and is still seen;
    a 1 s hold on a 20 ms ticker counts about 50 pushes."""
    runner = await run_iterations([
        {"ws_connect": "/pubsub"},
        {"ws_send": {"type": "subscribe", "channel": "ticker"}},
        {"think": "100ms"},
        {"ws_expect": {"type": "subscribed", "channel": "ticker"}, "timeout": "1s"},
        {"ws_expect": {"$.type": "tick"}, "timeout": "1s", "capture": [{"json": "$.seq", "as": "seq"}]},
        {"ws_expect": "\"tick\"", "timeout": "1s", "name": "text match"},
        {"ws_hold": "1s"},
        {"ws_close": True},
    ], ws_peer.http_url)
    assert rec(runner, "WS expect subscribed").errors == 0
    assert rec(runner, "WS expect subscribed").latency.max < 50_000  # it was already buffered
    assert isinstance(runner.last_vars["seq"], int)
    assert rec(runner, "text match").errors == 0
    hold = rec(runner, "WS hold")
    assert (hold.requests, hold.errors, hold.latency.count) == (1, 0, 0)  # counted, no latency
    assert rec(runner, "WS close").requests == 1
    extra = runner.take_extra()
    assert 40 <= extra["ws.messages_received"] <= 75, extra
    assert extra["ws.messages_sent"] == 1


async def test_ws_text_messages_take_the_shortcut(ws_peer):
    from perftui.worker import ws

    runner = ScenarioRunner(plan_of([{"ws_connect": "/echo"}], ws_peer.http_url), ws_peer.http_url)
    it = ws.IterationState()
    assert await ws.run_step(runner, runner.scenarios[0].steps[0], it, runner.new_vu(), None)
    assert it.ws.ws.on_text is not None  # complete text frames skip the assembler
    await it.finish()
    assert runner.ws_stats.open == 0


async def test_ws_fragmented_and_binary_messages_keep_their_order(ws_peer):
    """Complete text frames take a shortcut past the library's assembler; a fragmented or
    binary message switches the connection back to recv() without reordering anything."""
    runner = await run_iterations([
        {"ws_connect": "/pubsub"},
        {"ws_request": {"type": "ping", "id": 1}, "name": "before"},
        {"ws_send": {"type": "fragmented"}},
        {"ws_send": {"type": "binary"}},
        {"ws_expect": {"type": "fragmented"}, "timeout": "1s", "capture": [{"json": "$.n", "as": "n"}]},
        {"ws_expect": {"type": "after-fragmented"}, "timeout": "1s"},
        {"ws_expect": "binary", "timeout": "1s", "name": "binary"},
        {"ws_expect": {"type": "after-binary"}, "timeout": "1s"},
        {"ws_request": {"type": "ping", "id": 2}, "name": "after"},
    ], ws_peer.http_url)
    for name, r in runner.recorders.items():
        assert r.errors == 0, (name, r.error_kinds, runner.errors_sample)
    assert runner.last_vars["n"] == 1
    assert runner.take_extra()["ws.messages_received"] == 6


async def test_ws_headers_token_and_subprotocol(ws_peer):
    """A bearer token from a variable goes into the handshake; subprotocols are offered and the
    negotiated one is kept; a wrong token is a handshake rejected with 401."""
    before = len(ws_peer.seen)
    runner = await run_iterations([
        {"ws_connect": "/auth", "headers": {"Authorization": "Bearer {{ token }}"}},
        {"ws_request": {"id": 1, "t": "x"}, "name": "auth echo"},
        {"ws_connect": "/chat", "subprotocols": ["chat.v1", "chat.v0"]},
        {"ws_request": {"id": 2}, "name": "chat echo"},
    ], ws_peer.http_url, variables={"token": "secret"})
    assert rec(runner, "auth echo").errors == 0 and rec(runner, "chat echo").errors == 0
    seen = ws_peer.seen[before:]
    assert seen[0][0] == "/auth" and seen[0][1].get("Authorization") == "Bearer secret"
    assert seen[0][1].get("User-Agent", "").startswith("perftui/")
    assert seen[1][0] == "/chat" and seen[1][2] == "chat.v1"

    bad = await run_iterations([{"ws_connect": "/auth", "headers": {"Authorization": "Bearer nope"}}],
                               ws_peer.http_url)
    connect = rec(bad, "WS connect /auth")
    assert connect.error_kinds == {"ws_handshake": 1} and connect.status == {401: 1}
    assert any("HTTP 401" in e for e in bad.errors_sample)


async def test_ws_handshake_rejected_403(ws_peer):
    runner = await run_iterations([{"ws_connect": "/forbidden"}, {"ws_send": "never sent"}], ws_peer.http_url)
    connect = rec(runner, "WS connect /forbidden")
    assert connect.error_kinds == {"ws_handshake": 1}
    assert connect.status == {403: 1}  # the rejection is a response, with its time
    assert connect.latency.count == 1
    assert "ws_handshake: WS connect /forbidden: handshake rejected: HTTP 403" in runner.errors_sample
    assert rec(runner, "WS send").requests == 0  # the iteration ended there
    extra = runner.take_extra()
    assert (extra["ws.connections_opened"], extra["ws.connections_failed"]) == (0, 1)


async def test_ws_subprotocol_refused_is_handshake_error(ws_peer):
    runner = await run_iterations([{"ws_connect": "/chat", "subprotocols": ["other"]}], ws_peer.http_url)
    assert rec(runner, "WS connect /chat").error_kinds == {"ws_handshake": 1}
    assert rec(runner, "WS connect /chat").status == {400: 1}


async def test_ws_receive_timeout(ws_peer):
    t0 = time.monotonic()
    runner = await run_iterations([
        {"ws_connect": "/silent"},
        {"ws_request": {"id": "{{ $uuid() }}"}, "timeout": "300ms", "name": "no answer"},
        {"ws_send": "not reached"},
    ], ws_peer.http_url)
    elapsed = time.monotonic() - t0
    r = rec(runner, "no answer")
    assert r.error_kinds == {"ws_timeout": 1} and r.latency.count == 0
    assert 0.3 <= elapsed < 8.0  # the 300 ms timeout, not the 30 s default
    assert any("within 0.3s" in e for e in runner.errors_sample)
    assert "WS send" not in runner.recorders or rec(runner, "WS send").requests == 0


async def test_ws_server_closes_with_1011(ws_peer):
    runner = await run_iterations([
        {"ws_connect": "/close1011"},
        {"ws_request": {"id": 1}, "name": "doomed", "timeout": "2s"},
    ], ws_peer.http_url)
    assert rec(runner, "doomed").error_kinds == {"ws_closed": 1}
    assert any("code 1011" in e and "internal error" in e for e in runner.errors_sample), runner.errors_sample
    assert runner.take_extra()["ws.closed_by_server"] == 1


async def test_ws_close_noticed_by_the_next_step(ws_peer):
    """The server closes while the virtual user thinks: the next send reports ws_closed."""
    runner = await run_iterations([
        {"ws_connect": "/close1011"},
        {"ws_send": "x", "think": "300ms"},
        {"ws_send": "y", "name": "second send"},
    ], ws_peer.http_url)
    assert rec(runner, "second send").error_kinds == {"ws_closed": 1}


async def test_ws_hold_ended_by_server(ws_peer):
    runner = await run_iterations([
        {"ws_connect": "/close1011"},
        {"ws_send": "x"},
        {"ws_hold": "5s"},
    ], ws_peer.http_url)
    assert rec(runner, "WS hold").error_kinds == {"ws_closed": 1}


async def test_ws_connect_refused():
    runner = await run_iterations([{"ws_connect": "ws://127.0.0.1:9/x"}], "http://127.0.0.1:9")
    assert rec(runner, "WS connect ws://127.0.0.1:9/x").error_kinds == {"connect_refused": 1}


async def test_ws_one_connection_per_iteration(ws_peer):
    """Three iterations of one virtual user: three connections, each closed when its iteration
    ends (the plan has no ws_close)."""
    before = ws_peer.connections
    runner = await run_iterations([{"ws_connect": "/echo"}, {"ws_request": {"id": "{{ $iteration }}"}}],
                                  ws_peer.http_url, iterations=3)
    extra = runner.take_extra()
    assert extra["ws.connections_opened"] == 3 and extra["ws.open_connections"] == 0
    assert ws_peer.connections - before == 3
    assert rec(runner, "WS request").requests == 3


def test_ws_url_follows_the_target_scheme():
    assert ws_url("/ws", "http", "h:8080") == "ws://h:8080/ws"
    assert ws_url("/ws?x=1", "https", "example.com") == "wss://example.com/ws?x=1"
    assert ws_url("wss://other/ws", "http", "h") == "wss://other/ws"


# ---- GraphQL, in process -------------------------------------------------------------------------


async def test_graphql_against_strawberry(gql_peer):
    runner = await run_iterations([
        {"graphql": "query GetUsers($first: Int) { users(first: $first) { id name } }",
         "variables": {"first": "{{ n }}"}, "capture": [{"json": "$.data.users[2].id", "as": "third"}]},
        {"graphql": "query ($id: ID!) { user(id: $id) { name } }", "variables": {"id": "{{ third }}"},
         "expect": {"json_equals": {"$.data.user.name": "User 3"}}},
        {"graphql": "mutation CreateUser($name: String!) { createUser(name: $name) { email } }",
         "variables": {"name": "Ada"}},
        {"graphql": "{ boom }"},
        {"graphql": "query Broken { users(first: 2) { id nope } }"},
        {"graphql": "query A { users { id } } query B { boom }", "operation": "A"},
    ], gql_peer.url, variables={"n": 3})
    assert runner.last_vars["third"] == "3"
    assert rec(runner, "GraphQL GetUsers").errors == 0
    assert rec(runner, "GraphQL CreateUser").errors == 0
    # anonymous operations are "GraphQL query": the user() query (ok) and { boom } (failed)
    assert rec(runner, "GraphQL query").requests == 2
    assert rec(runner, "GraphQL query").error_kinds == {"graphql_error": 1}
    assert rec(runner, "GraphQL Broken").error_kinds == {"graphql_error": 1}
    assert rec(runner, "GraphQL Broken").status == {200: 1}  # a 200, and still a failure
    assert rec(runner, "GraphQL A").errors == 0  # operationName picked A, B was not run
    assert any("boom: this field always fails" in e for e in runner.errors_sample)


def test_graphql_errors_detection():
    assert graphql_errors(b'{"data":{"a":1}}') is None
    assert graphql_errors(b'{"data":null,"errors":[]}') is None
    assert graphql_errors(b'{"errors":[{"message":"x"},{"message":"y"}]}') == "x (+1 more)"
    assert graphql_errors(b'{"data":{"errors":"a field named errors"}}') is None
    assert graphql_errors(b"not json with \"errors\"") is None


# ---- MCP, in process -----------------------------------------------------------------------------


async def test_mcp_against_the_official_sdk(mcp_peer):
    """initialize once per virtual user, then calls with the session id; SSE answers parsed; an
    unknown tool is an isError result (the SDK's way), an unknown method a JSON-RPC error."""
    steps = [
        {"mcp": "tools/call", "tool": "echo", "arguments": {"text": "hi {{ $vu }}"},
         "capture": [{"json": "$.result.content[0].text", "as": "echoed"}]},
        {"mcp": "tools/call", "tool": "get_time"},
        {"mcp": "tools/call", "tool": "get_user_info", "arguments": {"user_id": "{{ $randomInt(1, 100) }}"},
         "expect": {"body_contains": "@example.com"}},
        {"mcp": "tools/list", "capture": [{"json": "$.result.tools[0].name", "as": "first_tool"}]},
        {"mcp": "resources/list"},
        {"mcp": "tools/call", "tool": "no_such_tool"},
        {"mcp": "bogus/method"},
    ]
    runner = await run_iterations(steps, mcp_peer.url, iterations=3)
    init = rec(runner, "MCP initialize")
    assert (init.requests, init.errors) == (1, 0)  # one session for the virtual user
    for name in ("MCP tools/call:echo", "MCP tools/call:get_time", "MCP tools/call:get_user_info",
                 "MCP tools/list", "MCP resources/list"):
        r = rec(runner, name)
        assert (r.requests, r.errors, r.status) == (3, 0, {200: 3}), (name, r.error_kinds)
    assert rec(runner, "MCP tools/call:no_such_tool").error_kinds == {"mcp_tool_error": 3}
    assert rec(runner, "MCP bogus/method").error_kinds == {"jsonrpc_error": 3}
    assert runner.last_vars["echoed"] == "hi 1"
    assert runner.last_vars["first_tool"] == "echo"
    assert any("jsonrpc_error: MCP bogus/method: -32601" in e for e in runner.errors_sample)
    assert runner.take_extra() == {"mcp.sessions_initialized": 1.0, "mcp.sessions_expired": 0.0}


async def test_mcp_expired_session_is_reopened_once(mcp_peer_forgetful):
    """The server forgets idle sessions after 1 s: the call after a 1.5 s pause gets 404, the
    virtual user initializes again and the retried call succeeds."""
    runner = await run_iterations(
        [{"mcp": "tools/call", "tool": "echo", "arguments": {"text": "x"}, "think": "1.5s"}],
        mcp_peer_forgetful.url, iterations=2)
    echo = rec(runner, "MCP tools/call:echo")
    assert (echo.requests, echo.errors, echo.status) == (2, 0, {200: 2})
    assert rec(runner, "MCP initialize").requests == 2
    assert runner.take_extra() == {"mcp.sessions_initialized": 2.0, "mcp.sessions_expired": 1.0}


async def test_mcp_each_open_model_arrival_is_a_new_client(mcp_peer):
    runner = ScenarioRunner(plan_of([{"mcp": "ping"}], mcp_peer.url), mcp_peer.url)
    await asyncio.gather(*(runner.iteration(runner.new_vu(), time.monotonic()) for _ in range(4)))
    await runner.close()
    assert rec(runner, "MCP initialize").requests == 4 and rec(runner, "MCP ping").errors == 0
    # each arrival's session is ended with DELETE when its iteration is done
    terminate = rec(runner, "MCP terminate")
    assert (terminate.requests, terminate.errors, terminate.status) == (4, 0, {200: 4})


async def test_mcp_against_the_demo_json_answers(demo):
    """The demo answers application/json (not SSE) and reports unknown tools as JSON-RPC errors."""
    runner = await run_iterations([
        {"mcp": "tools/call", "tool": "echo", "arguments": {"text": "j"}},
        {"mcp": "tools/call", "tool": "nope"},
    ], demo.url)
    assert rec(runner, "MCP tools/call:echo").errors == 0
    assert rec(runner, "MCP tools/call:nope").error_kinds == {"jsonrpc_error": 1}


def test_sse_parsing():
    body = (b": comment\r\nevent: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n"
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\n"
            b"data: \"id\":7,\"result\":{}}\n\n"
            b"data:{\"jsonrpc\":\"2.0\",\"id\":8,\"error\":{\"code\":-1,\"message\":\"m\"}}")
    events = sse_data(body)
    assert len(events) == 3 and events[1] == b'{"jsonrpc":"2.0",\n"id":7,"result":{}}'
    headers = [(b"Content-Type", b"text/event-stream; charset=utf-8")]
    assert find_response(headers, body, 7)[0] == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert find_response(headers, body, 8)[0]["error"]["code"] == -1
    assert find_response(headers, body, 9) == (None, b"")
    plain = b'{"jsonrpc":"2.0","id":3,"result":{"ok":true}}'
    assert find_response([(b"content-type", b"application/json")], plain, 3)[1] == plain
    assert find_response(None, plain, 3)[0]["result"] == {"ok": True}  # sniffed without headers


# ---- plans: names, validation --------------------------------------------------------------------


def test_endpoint_names():
    def name(**step):
        return endpoint_name(plan_of([step]).scenarios[0].steps[0])

    assert name(graphql="query GetUsers($first: Int) { users { id } }") == "GraphQL GetUsers"
    assert name(graphql="mutation { x }") == "GraphQL mutation"
    assert name(graphql="{ users { id } }", operation="Q") == "GraphQL Q"
    assert name(mcp="tools/call", tool="echo") == "MCP tools/call:echo"
    assert name(mcp="resources/list") == "MCP resources/list"
    assert name(ws_connect="/ws?token={{ $uuid() }}") == "WS connect /ws"


@pytest.mark.parametrize("steps, expected", [
    ([{"ws_send": "x"}], "ws_send needs a ws_connect step before it"),
    ([{"ws_connect": "/ws"}, {"ws_request": {"type": "ping"}}], 'needs a field "id"'),
    ([{"ws_connect": "/ws"}, {"ws_request": {"a": 1}, "match": "$.b"}], "nothing at $.b"),
    ([{"ws_connect": "http://h/ws"}], 'did you mean "ws://h/ws"'),
    ([{"ws_connect": "/ws", "method": "POST"}], "method does not apply to a ws_connect step"),
    ([{"ws_connect": "/ws"}, {"ws_expect": {"type": "x"}, "expect": {"status": 200}}], "have no status"),
    ([{"ws_connect": "/ws"}, {"ws_hold": "0s"}], "greater than 0"),
    ([{"ws_connect": "/ws", "ws_send": "x"}], "a step does one thing"),
    ([{"mcp": "tools/call"}], 'needs tool = "<tool name>"'),
    ([{"mcp": "initialize"}], "opened automatically"),
    ([{"mcp": "tools/list", "arguments": {}}], 'arguments is for mcp = "tools/call"'),
    ([{"graphql": "{ a }", "variables": {"x": "{{ missing }}"}}], "{{ missing }}"),
    ([{"url": "/x", "variables": {"a": 1}}], "variables belongs to graphql steps"),
    ([{"url": "ws://h/ws"}], "WebSocket URLs go in ws_connect"),
])
def test_protocol_plan_errors(steps, expected):
    with pytest.raises(PlanError) as err:
        plan_of(steps)
    assert expected in str(err.value), str(err.value)


def test_thresholds_can_name_protocol_endpoints():
    plan_of([{"ws_connect": "/ws"}, {"mcp": "ping"}],
            thresholds=["p95{WS connect /ws} < 1s", "p95{MCP initialize} < 1s", "p95{MCP ping} < 1s"])
    with pytest.raises(PlanError, match="no step has the endpoint name"):
        plan_of([{"ws_connect": "/ws"}], thresholds=["p95{WS connect /nope} < 1s"])


# ---- session figures and thresholds --------------------------------------------------------------


def _session_for(plan, runner: ScenarioRunner, seconds: int = 1, gauges: list[float] | None = None) -> SessionRecord:
    """A session record fed with the runner's recorded deltas, as the coordinator would."""
    loaded_dict = msgspec.to_builtins(plan)
    s = SessionRecord(plan_name="t", plan_file=None, plan_dict=loaded_dict, target="x", workers=1,
                      phases=[PhaseRecord(index=0, name="p", kind="closed", target="1 VUs", planned_s=1.0)],
                      roles=protocol_endpoints(plan))
    s.mark_started()
    t0 = s.started_mono
    deltas = [d for d in (r.take_delta() for r in runner.recorders.values()) if d is not None]
    s.ingest(Snapshot(worker=0, seq=0, t=t0 + 0.5, interval=0.5, endpoints=deltas, extra=runner.take_extra()))
    for i in range(seconds):
        s.tick(t0 + 1.0 + i, "p", 0.0, 1)
    return s


async def test_protocol_summary_and_threshold_metrics(ws_peer):
    steps = [{"ws_connect": "/echo?delay_ms=5"},
             *[{"ws_request": {"id": "{{ $uuid() }}"}, "name": "WS echo"} for _ in range(10)]]
    plan = plan_of(steps, ws_peer.http_url)
    runner = ScenarioRunner(plan, ws_peer.http_url)
    vars = runner.new_vu()
    for _ in range(2):
        await runner.iteration(vars, None)
    fail = ScenarioRunner(plan_of([{"ws_connect": "/forbidden"}], ws_peer.http_url), ws_peer.http_url)
    await fail.iteration(fail.new_vu(), None)
    session = _session_for(plan, runner)
    p = session.protocol_summary()
    assert p.ws is not None and p.graphql is None and p.mcp is None
    assert (p.ws.connections_opened, p.ws.messages_sent, p.ws.messages_received) == (2, 20, 20)
    assert p.ws.success_rate == 1.0 and p.ws.rtt_ms.p50 >= 5.0 and p.ws.connect_ms.p95 is not None
    extra = session.protocol_extra()
    assert extra["ws.rtt.p95"] == p.ws.rtt_ms.p95
    assert extra["ws.rtt.p95{WS echo}"] == p.ws.rtt_ms.p95
    assert extra["ws.messages_received"] == 20
    overall, eps = session.summary(), {e.name: e for e in session.endpoint_summaries()}
    for expr, ok in [("ws.rtt.p95 < 1s", True), ("ws.rtt.p50 < 1ms", False), ("ws.success_rate > 99%", True),
                     ("ws.connect.p95 < 5s", True), ("ws.messages_received >= 20", True),
                     ("ws.rtt.p99{WS echo} < 1s", True), ("mcp.p95 < 1s", False)]:
        r = evaluate(parse_threshold(expr), overall, eps, extra)
        assert r.ok is ok, (expr, r)
    assert evaluate(parse_threshold("mcp.p95 < 1s"), overall, eps, extra).detail == "no data"
    # a failed handshake lowers the success rate
    deltas = [d for d in (r.take_delta() for r in fail.recorders.values()) if d is not None]
    session.ingest(Snapshot(worker=1, seq=0, t=session.started_mono + 1.5, interval=0.5, endpoints=[
        msgspec.structs.replace(d, name="WS connect /echo") for d in deltas], extra=fail.take_extra()))
    session.tick(session.started_mono + 2.0, "p", 0.0, 1)
    assert session.protocol_summary().ws.success_rate == pytest.approx(2 / 3)
    assert session.protocol_summary().ws.connections_failed == 1


def test_open_connections_is_a_gauge_not_a_sum():
    """Four snapshots a second from each of two workers: the timeline shows 5 + 7 open
    connections, not the sum of eight samples; the peak is kept."""
    plan = plan_of([{"ws_connect": "/ws"}])
    s = SessionRecord(plan_name="t", plan_file=None, plan_dict=msgspec.to_builtins(plan), target="x", workers=2,
                      phases=[], roles=protocol_endpoints(plan))
    s.mark_started()
    t0 = s.started_mono
    for k in range(4):
        for worker, n in ((0, 5.0), (1, 7.0)):
            s.ingest(Snapshot(worker=worker, seq=k, t=t0 + 0.25 * (k + 1), interval=0.25, endpoints=[],
                              extra={"ws.open_connections": n, "ws.messages_received": 10.0}))
    row = s.tick(t0 + 1.0, "p", 0, 2)
    assert row.extra["ws.open_connections"] == 12
    assert row.extra["ws.messages_received"] == 80
    s.ingest(Snapshot(worker=0, seq=9, t=t0 + 1.5, interval=0.25, endpoints=[], extra={"ws.open_connections": 0.0}))
    row = s.tick(t0 + 2.0, "p", 0, 2)
    assert row.extra["ws.open_connections"] == 7
    assert s.protocol_summary().ws.peak_open_connections == 12
    assert s.protocol_summary().ws.messages_received == 80


def test_http_only_sessions_have_no_protocol_figures():
    plan = plan_of([{"url": "/"}])
    s = SessionRecord(plan_name="t", plan_file=None, plan_dict=msgspec.to_builtins(plan), target="x", workers=1,
                      phases=[], roles=protocol_endpoints(plan))
    assert not s.protocol_summary()
    assert s.protocol_extra() == {}
    assert msgspec.json.decode(msgspec.json.encode(s.protocol_summary())) == {}


def test_checkpoints_carry_the_protocol_roles():
    """The record is given its protocol roles; checkpoints (recovery, attach) carry them, and a
    checkpoint written before they did gets them from its recorded plan."""
    from perftui.journal import Checkpoint, capture, restore

    plan = plan_of([{"ws_connect": "/ws"}, {"ws_request": {"id": 1}, "name": "rt"}])
    roles = protocol_endpoints(plan)
    assert set(roles.values()) >= {"ws.connect", "ws.request"}
    s = SessionRecord(plan_name="t", plan_file=None, plan_dict=msgspec.to_builtins(plan), target="x", workers=1,
                      phases=[], roles=roles)
    cp = msgspec.msgpack.decode(msgspec.msgpack.encode(capture(s, with_timeline=True)), type=Checkpoint)
    assert restore(cp).protocol_roles() == roles
    assert restore(msgspec.structs.replace(cp, roles=None)).protocol_roles() == roles
    assert restore(cp).protocol_summary().ws is not None


# ---- whole runs through the CLI ------------------------------------------------------------------


def _run(plan_path: Path, out: Path, *args: str, ok: bool = True) -> dict:
    r = run_cli("run", str(plan_path), "--headless", "--workers", "1", "--out", str(out), *args, timeout=90)
    if ok:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = read_session(out)
    doc["_stdout"] = r.stdout
    return doc


def test_cli_websocket_peer_connections_messages_and_rtt(tmp_path, ws_peer):
    """40 virtual users, each: connect, subscribe to the 20 ms ticker, a ping round trip, hold
    1 s; for 3 s. The session has the connections, the messages and the round trips."""
    plan = write_plan(tmp_path, f"""
        target = "{ws_peer.http_url}"
        thresholds = ["p95{{WS connect /pubsub}} < 1s", "ws_timeout_count == 0"]
        [[phases]]
        duration = "3s"
        vus = 40
        [[scenarios]]
          [[scenarios.steps]]
          ws_connect = "/pubsub"
          [[scenarios.steps]]
          ws_request = {{ type = "subscribe", channel = "ticker", id = "{{{{ $uuid() }}}}" }}
          name = "WS subscribe"
          [[scenarios.steps]]
          ws_request = {{ type = "ping", id = "{{{{ $uuid() }}}}" }}
          name = "WS ping"
          [[scenarios.steps]]
          ws_hold = "1s"
    """)
    doc = _run(plan, tmp_path / "s.json")
    ws = doc["protocols"]["ws"]
    assert ws["connections_failed"] == 0 and ws["success_rate"] == 1.0
    assert ws["connections_opened"] >= 80  # 40 users x at least 2 iterations in 3 s
    assert ws["peak_open_connections"] == 40
    assert ws["messages_sent"] == 2 * sum(e["requests"] for e in doc["endpoints"] if e["name"] == "WS ping")
    # ~40 connections x 50 ticks/s while holding: well over a thousand pushes
    assert ws["messages_received"] > 2000, ws
    assert ws["received_per_s"] > 600
    for key in ("connect_ms", "rtt_ms"):
        lat = ws[key]
        assert lat["p50"] is not None and 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 1000, (key, lat)
    assert ws["errors"] == 0 and ws["error_kinds"] == {}
    names = {e["name"]: e for e in doc["endpoints"]}
    assert set(names) == {"WS connect /pubsub", "WS subscribe", "WS ping", "WS hold"}
    assert names["WS connect /pubsub"]["status_codes"] == {"101": ws["connections_opened"]}
    mid = [row["extra"] for row in doc["timeline"] if 1.5 <= row["t"] <= 2.5]
    assert mid and all(row["ws.open_connections"] >= 30 for row in mid), mid
    assert all(row["ws.messages_received"] > 500 for row in mid), mid
    out = doc["_stdout"]
    assert "websocket      connections" in out and "round trip" in out
    assert all(t["ok"] for t in doc["thresholds"]), doc["thresholds"]


def test_cli_websocket_peer_error_kinds(tmp_path, ws_peer):
    plan = write_plan(tmp_path, f"""
        target = "{ws_peer.http_url}"
        [[phases]]
        duration = "2s"
        vus = 3
        [[scenarios]]
        name = "rejected"
          [[scenarios.steps]]
          ws_connect = "/forbidden"
          think = "200ms"
        [[scenarios]]
        name = "silent"
          [[scenarios.steps]]
          ws_connect = "/silent"
          [[scenarios.steps]]
          ws_request = {{ id = "{{{{ $uuid() }}}}" }}
          name = "silent request"
          timeout = "200ms"
        [[scenarios]]
        name = "closing"
          [[scenarios.steps]]
          ws_connect = "/close1011"
          [[scenarios.steps]]
          ws_request = {{ id = 1 }}
          name = "closing request"
          think = "100ms"
    """)
    doc = _run(plan, tmp_path / "s.json")
    kinds = doc["summary"]["error_kinds"]
    assert kinds.get("ws_handshake", 0) > 0 and kinds.get("ws_timeout", 0) > 0 and kinds.get("ws_closed", 0) > 0, kinds
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert set(eps["WS connect /forbidden"]["error_kinds"]) == {"ws_handshake"}
    assert set(eps["WS connect /forbidden"]["status_codes"]) == {"403"}
    assert set(eps["silent request"]["error_kinds"]) == {"ws_timeout"}
    assert set(eps["closing request"]["error_kinds"]) == {"ws_closed"}
    ws = doc["protocols"]["ws"]
    assert ws["connections_failed"] == eps["WS connect /forbidden"]["requests"]
    assert 0 < ws["success_rate"] < 1
    assert ws["closed_by_server"] >= eps["closing request"]["errors"]
    assert "ws_handshake" in doc["_stdout"]


def test_cli_graphql_peer(tmp_path, gql_peer):
    plan = write_plan(tmp_path, f"""
        target = "{gql_peer.url}"
        thresholds = ["graphql_error_count > 0"]
        [[phases]]
        duration = "2s"
        arrival_rate = 20
        [[scenarios]]
          [[scenarios.steps]]
          graphql = "query GetUsers($first: Int) {{ users(first: $first) {{ id name }} }}"
          variables = {{ first = "{{{{ $randomInt(1, 20) }}}}" }}
          expect = {{ json_exists = ["$.data.users[0].id"] }}
          [[scenarios.steps]]
          graphql = "query Boom {{ boom }}"
    """)
    doc = _run(plan, tmp_path / "s.json")
    eps = {e["name"]: e for e in doc["endpoints"]}
    n = eps["GraphQL GetUsers"]["requests"]
    assert 36 <= n <= 44 and eps["GraphQL GetUsers"]["errors"] == 0
    assert eps["GraphQL Boom"]["error_kinds"] == {"graphql_error": eps["GraphQL Boom"]["requests"]}
    g = doc["protocols"]["graphql"]
    assert g["requests"] == n + eps["GraphQL Boom"]["requests"]
    assert g["graphql_errors"] == eps["GraphQL Boom"]["requests"] and g["error_rate"] == pytest.approx(0.5, abs=0.05)
    assert g["latency_ms"]["p50"] is not None and g["latency_ms"]["p99"] < 1000
    assert g["operations"] == ["GraphQL GetUsers", "GraphQL Boom"]
    assert "graphql        requests" in doc["_stdout"]


def test_cli_mcp_peer(tmp_path, mcp_peer):
    """Five long-lived MCP clients against the official SDK server for 2 s."""
    plan = write_plan(tmp_path, f"""
        target = "{mcp_peer.url}"
        thresholds = ["p95{{MCP tools/call:echo}} < 1s", "jsonrpc_error_count > 0"]
        [[phases]]
        duration = "2s"
        vus = 5
        [[scenarios]]
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "echo"
          arguments = {{ text = "Load test message {{{{ $randomUUID() }}}}" }}
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "get_user_info"
          arguments = {{ user_id = "{{{{ $randomInt(1, 100) }}}}" }}
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "missing_tool"
          [[scenarios.steps]]
          mcp = "no/such/method"
          think = "50ms"
    """)
    doc = _run(plan, tmp_path / "s.json")
    m = doc["protocols"]["mcp"]
    assert m["sessions_initialized"] == 5 and m["initialize_failed"] == 0  # one per virtual user
    eps = {e["name"]: e for e in doc["endpoints"]}
    calls = eps["MCP tools/call:echo"]["requests"]
    # several calls a session (20+ on a quiet machine; the server shares this process's CPU)
    assert calls >= 10 and eps["MCP tools/call:echo"]["errors"] == 0
    assert eps["MCP tools/call:get_user_info"]["errors"] == 0
    assert eps["MCP tools/call:missing_tool"]["error_kinds"] == {"mcp_tool_error": eps["MCP tools/call:missing_tool"]["requests"]}
    assert eps["MCP no/such/method"]["error_kinds"] == {"jsonrpc_error": eps["MCP no/such/method"]["requests"]}
    assert m["jsonrpc_errors"] == eps["MCP no/such/method"]["requests"]
    assert m["tool_errors"] == eps["MCP tools/call:missing_tool"]["requests"]
    assert m["requests"] == sum(e["requests"] for n, e in eps.items() if n not in ("MCP initialize", "MCP terminate"))
    assert m["initialize_ms"]["p50"] is not None and m["latency_ms"]["p95"] is not None
    assert eps["MCP initialize"]["requests"] == 5
    assert "MCP terminate" not in eps and m["sessions_terminated"] == 0  # closed model: kept to the end
    assert all(t["ok"] for t in doc["thresholds"]), doc["thresholds"]


def test_cli_demo_mixed_protocols(tmp_path):
    """HTTP, WebSocket, GraphQL and MCP steps in weighted scenarios against the demo target."""
    plan = write_plan(tmp_path, """
        target = "demo"
        [[phases]]
        duration = "2s"
        vus = 6
        [[scenarios]]
        name = "http+ws"
          [[scenarios.steps]]
          method = "POST"
          url = "/auth/login"
          json = { username = "loadtest", password = "loadtestpassword" }
          capture = [{ json = "$.tokens.accessToken", as = "token" }]
          [[scenarios.steps]]
          ws_connect = "/ws"
          headers = { Authorization = "Bearer {{ token }}" }
          [[scenarios.steps]]
          ws_request = { type = "echo", id = "{{ $uuid() }}", data = "{{ token }}" }
          [[scenarios.steps]]
          ws_send = { type = "subscribe", channel = "ticker", interval_ms = 50 }
          [[scenarios.steps]]
          ws_expect = { type = "tick" }
          timeout = "1s"
          [[scenarios.steps]]
          ws_hold = "300ms"
        [[scenarios]]
        name = "graphql"
          [[scenarios.steps]]
          graphql = "query GetUsers($first: Int) { users(first: $first) { id } }"
          variables = { first = 3 }
          [[scenarios.steps]]
          graphql = "query Bad { nope }"
          think = "50ms"
        [[scenarios]]
        name = "mcp"
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "echo"
          arguments = { text = "hello" }
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "unknown_tool"
          think = "50ms"
    """)
    doc = _run(plan, tmp_path / "s.json")
    p = doc["protocols"]
    assert set(p) == {"ws", "graphql", "mcp"}
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert eps["POST /auth/login"]["errors"] == 0
    assert eps["WS echo"]["errors"] == 0 and eps["WS expect tick"]["errors"] == 0
    assert p["ws"]["connections_opened"] > 0 and p["ws"]["rtt_ms"]["p50"] is not None
    assert p["ws"]["messages_received"] > p["ws"]["messages_sent"]  # the ticks
    assert eps["GraphQL GetUsers"]["errors"] == 0
    assert eps["GraphQL Bad"]["error_kinds"] == {"graphql_error": eps["GraphQL Bad"]["requests"]}
    assert eps["MCP tools/call:echo"]["errors"] == 0
    # the demo reports unknown tools as JSON-RPC errors (the SDK as isError results)
    assert eps["MCP tools/call:unknown_tool"]["error_kinds"] == {"jsonrpc_error": eps["MCP tools/call:unknown_tool"]["requests"]}
    assert p["mcp"]["sessions_initialized"] >= 1
    assert p["mcp"]["sessions_terminated"] == 0
    kinds = doc["summary"]["error_kinds"]
    assert set(kinds) == {"graphql_error", "jsonrpc_error"}, kinds


@pytest.mark.parametrize("name, section", [("websocket", "ws"), ("graphql", "graphql"), ("mcp", "mcp")])
def test_shipped_protocol_plans_validate_and_run(tmp_path, name, section):
    path = ROOT / "plans" / f"{name}.toml"
    r = run_cli("validate", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    loaded = load_plan(path)
    assert loaded.plan.target == "demo"
    redacted_plan(loaded)  # the session copy works for protocol steps too
    doc = _run(path, tmp_path / "s.json", "--duration", "2s")
    assert doc["end_reason"] == "completed"
    assert all(t["ok"] for t in doc["thresholds"]), doc["thresholds"]
    assert doc["summary"]["requests"] > 10 and doc["summary"]["errors"] == 0, doc["summary"]
    assert section in doc["protocols"]


def test_protocol_thresholds_are_evaluated(tmp_path, demo):
    """ws.*, mcp.* and graphql.* thresholds get real values from the run (not "no data")."""
    from tests.conftest import read_session, run_cli, write_plan

    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        thresholds = ["ws.connect.p95 < 5s", "ws.rtt.p95 < 5s", "ws.success_rate > 99%", "mcp.rps > 0.5",
                      "graphql.error_rate < 1%", "ws.rtt.p50 > 1000s"]
        [[phases]]
        duration = "2s"
        vus = 2
        [[scenarios]]
          [[scenarios.steps]]
          ws_connect = "/ws"
          [[scenarios.steps]]
          ws_request = {{ type = "echo", data = "hi", id = "{{{{ $uuid() }}}}" }}
          [[scenarios.steps]]
          ws_close = true
          [[scenarios.steps]]
          mcp = "tools/call"
          tool = "echo"
          arguments = {{ text = "x" }}
          [[scenarios.steps]]
          graphql = "query Users {{ users(first: 2) {{ id }} }}"
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--out", str(out))
    assert r.returncode == 1, r.stdout + r.stderr  # the last threshold is meant to fail
    results = {t["expr"]: t for t in read_session(out)["thresholds"]}
    for expr in ("ws.connect.p95 < 5s", "ws.rtt.p95 < 5s", "ws.success_rate > 99%", "mcp.rps > 0.5",
                 "graphql.error_rate < 1%"):
        assert results[expr]["ok"] is True and results[expr]["value"] is not None, results[expr]
    assert results["ws.rtt.p50 > 1000s"]["ok"] is False and results["ws.rtt.p50 > 1000s"]["value"] is not None
