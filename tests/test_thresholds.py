"""Threshold grammar, units, evaluation and formatting (perftui.thresholds)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perftui.summary import ERROR_KINDS, LatencySummary, StatsSummary
from perftui.thresholds import (
    METRICS,
    Threshold,
    ThresholdResult,
    evaluate,
    format_value,
    metric_kind,
    parse_threshold,
)


def th(expr: str) -> Threshold:
    return parse_threshold(expr)


# ---- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, metric, endpoint, op, value",
    [
        ("p95 < 200ms", "p95", None, "<", 200.0),
        ("p95<200", "p95", None, "<", 200.0),
        ("  P95   <=   0.2s  ", "p95", None, "<=", 200.0),
        ("p99 < 1500us", "p99", None, "<", 1.5),
        ("p99 < 1500µs", "p99", None, "<", 1.5),
        ("p(95) < 200", "p95", None, "<", 200.0),
        ("p(99.9) < 1s", "p999", None, "<", 1000.0),
        ("p99.9 < 1s", "p999", None, "<", 1000.0),
        ("avg < 100ms", "mean", None, "<", 100.0),
        ("med < 50", "p50", None, "<", 50.0),
        ("min >= 0", "min", None, ">=", 0.0),
        ("max < 2s", "max", None, "<", 2000.0),
        ("p90 < 1e2", "p90", None, "<", 100.0),
        ("service.p95 < 150ms", "service.p95", None, "<", 150.0),
        ("service.p(99) < 1s", "service.p99", None, "<", 1000.0),
        ("rps > 100", "rps", None, ">", 100.0),
        ("rps >= 1234/s", "rps", None, ">=", 1234.0),
        ("requests > 1000", "requests", None, ">", 1000.0),
        ("errors == 0", "errors", None, "==", 0.0),
        ("error_rate < 1%", "error_rate", None, "<", 0.01),
        ("error_rate < 0.01", "error_rate", None, "<", 0.01),
        ("error_rate <= 1.0", "error_rate", None, "<=", 1.0),
        ("success_rate > 99.5%", "success_rate", None, ">", 0.995),
        ("http_4xx_rate < 1%", "http_4xx_rate", None, "<", 0.01),
        ("http_5xx_rate < 0.1%", "http_5xx_rate", None, "<", 0.001),
        ("timeout_rate < 0.5%", "timeout_rate", None, "<", 0.005),
        ("timeout_count < 10", "timeout_count", None, "<", 10.0),
        ("dropped == 0", "dropped", None, "==", 0.0),
        ("late_starts < 100", "late_starts", None, "<", 100.0),
        ("p99{GET /api/users} < 500ms", "p99", "GET /api/users", "<", 500.0),
        ("p95{ GET /api/users } < 500ms", "p95", "GET /api/users", "<", 500.0),
        ("p95{GET /api/bounties/{{ id }}} < 300ms", "p95", "GET /api/bounties/{{ id }}", "<", 300.0),
        ("p95{GET /api/bounties/{id}}<300", "p95", "GET /api/bounties/{id}", "<", 300.0),
        ("error_rate{POST /auth/sign-in} < 5%", "error_rate", "POST /auth/sign-in", "<", 0.05),
        ("p95{a < b} < 3", "p95", "a < b", "<", 3.0),
        ("ws.connect.p95 < 50ms", "ws.connect.p95", None, "<", 50.0),
        ("ws.rtt.p(95) < 0.1s", "ws.rtt.p95", None, "<", 100.0),
        ("ws.success_rate > 95%", "ws.success_rate", None, ">", 0.95),
        ("mcp.rps > 100/s", "mcp.rps", None, ">", 100.0),
        ("graphql.errors < 50", "graphql.errors", None, "<", 50.0),
    ],
)
def test_parse(expr, metric, endpoint, op, value):
    t = th(expr)
    assert (t.expr, t.metric, t.endpoint, t.op) == (expr, metric, endpoint, op)
    assert t.value == pytest.approx(value)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty threshold"),
        ("   ", "empty threshold"),
        ("p95 200ms", "has no comparison operator"),
        ("p95 <", "expected a number after the operator"),
        ("p95 < fast", "expected a number after the operator"),
        ("< 200", "missing metric name"),
        ("p95 << 200", "malformed operator"),
        ("p95 => 200", "did you mean '>='?"),
        ("p95 =< 200", "did you mean '<='?"),
        ("p95 = 200", "did you mean '=='?"),
        ("p95 != 200", "operator '!=' is not supported"),
        ("p75 < 300", "percentiles available: p50 p90 p95 p99 p999"),
        ("p(75) < 300", "percentiles available"),
        ("latency < 300", "unknown metric 'latency'"),
        ("eror_rate < 1%", "did you mean error_rate"),
        ("error rate < 1%", "did you mean 'error_rate'?"),
        ("Error-Rate < 1%", "did you mean 'error_rate'?"),
        ("p95 < 3%", "p95 is a latency; use ms, s or us"),
        ("p95 < 3m", "p95 is a latency"),
        ("error_rate < 5", "write 5% for a percentage or 0.05 as a fraction"),
        ("error_rate < 1", "a bare 1 is ambiguous"),
        ("error_rate < 150%", "between 0% and 100%"),
        ("error_rate < 1ms", "error_rate is a rate; use % or a fraction"),
        ("rps > 5ms", "requests per second"),
        ("requests > 5/s", "requests is a count"),
        ("dropped < 1%", "dropped is a count"),
        ("p95{GET /a < 3", "no '}' closes it"),
        ("p95{} < 3", "empty endpoint name"),
        ("p95{GET /a} 3", "expected OP VALUE after the endpoint name"),
        ("p95{GET /a} < 3 extra", "p95 is a latency; use ms, s or us (a bare number means ms), not 'extra'"),
        ("{GET /a} < 3", "missing metric name"),
        ("ws. < 3", "incomplete metric name"),
        ("ws..p95 < 3", "incomplete metric name"),
        ("p95 < 1e999", "finite"),
        ("p95$ < 3", "may only contain a-z 0-9 _ . ( )"),
    ],
)
def test_parse_errors(expr, message):
    with pytest.raises(ValueError) as info:
        parse_threshold(expr)
    assert message in str(info.value)


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="threshold must be a string"):
        parse_threshold(5)  # type: ignore[arg-type]


def test_every_error_kind_has_rate_and_count():
    for kind in ERROR_KINDS:
        assert METRICS[f"{kind}_rate"][0] == "rate" and METRICS[f"{kind}_count"][0] == "count"
        assert th(f"{kind}_rate < 1%").metric == f"{kind}_rate"


def test_metric_kinds():
    assert metric_kind("p95") == metric_kind("service.max") == metric_kind("ws.rtt.p95") == "latency"
    assert metric_kind("error_rate") == metric_kind("ws.success_rate") == "rate"
    assert metric_kind("rps") == metric_kind("mcp.rps") == "rps"
    assert metric_kind("requests") == metric_kind("ws.messages") == "count"


def test_threshold_is_a_struct_that_round_trips():
    t = th("p95{GET /x} < 1s")
    assert msgspec.json.decode(msgspec.json.encode(t), type=Threshold) == t


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="pP0123456789.(){}<>=!% msuGET/_aerolx$-", max_size=25))
def test_fuzz_parse_only_raises_value_error(expr):
    try:
        t = parse_threshold(expr)
    except ValueError:
        return
    assert t.op in ("<", "<=", ">", ">=", "==")
    evaluate(t, summary(), {})


# ---- evaluation ----------------------------------------------------------------------------


def summary(**over) -> StatsSummary:
    base = dict(
        requests=1000,
        errors=10,
        rps=250.0,
        error_rate=0.01,
        duration_s=4.0,
        latency_ms=LatencySummary(min=1, mean=40, p50=30, p90=80, p95=120, p99=300, p999=900, max=1200),
        service_time_ms=LatencySummary(min=1, mean=20, p50=15, p90=40, p95=60, p99=150, p999=400, max=1000),
        status_codes={"200": 990, "500": 6, "404": 4},
        error_kinds={"http_5xx": 6, "http_4xx": 4},
        late_starts=7,
        dropped=0,
    )
    base.update(over)
    return StatsSummary(**base)


@pytest.mark.parametrize(
    "expr, ok, value",
    [
        ("p95 < 200ms", True, 120.0),
        ("p95 < 100ms", False, 120.0),
        ("p99 <= 300", True, 300.0),
        ("p(99.9) < 1s", True, 900.0),
        ("max < 1s", False, 1200.0),
        ("min >= 1", True, 1.0),
        ("avg < 50", True, 40.0),
        ("med == 30", True, 30.0),
        ("service.p95 < 100ms", True, 60.0),
        ("service.p99 > 1s", False, 150.0),
        ("rps > 200", True, 250.0),
        ("rps >= 300/s", False, 250.0),
        ("requests >= 1000", True, 1000.0),
        ("errors < 10", False, 10.0),
        ("error_rate < 2%", True, 0.01),
        ("error_rate < 1%", False, 0.01),
        ("error_rate <= 1%", True, 0.01),
        ("success_rate > 98%", True, 0.99),
        ("http_5xx_rate < 0.5%", False, 0.006),
        ("http_4xx_rate < 0.5%", True, 0.004),
        ("timeout_rate == 0", True, 0.0),
        ("http_5xx_count == 6", True, 6.0),
        ("reset_count > 0", False, 0.0),
        ("dropped == 0", True, 0.0),
        ("late_starts < 5", False, 7.0),
    ],
)
def test_evaluate_overall(expr, ok, value):
    r = evaluate(th(expr), summary(), {})
    assert isinstance(r, ThresholdResult) and r.expr == expr
    assert r.ok is ok and r.value == pytest.approx(value)
    assert r.detail and r.detail != "no data"


def test_evaluate_endpoint():
    endpoints = {"GET /api/bounties/{{ id }}": summary(latency_ms=LatencySummary(p95=350.0), errors=0, error_kinds={})}
    r = evaluate(th("p95{GET /api/bounties/{{ id }}} < 300ms"), summary(), endpoints)
    assert (r.ok, r.value) == (False, 350.0)
    assert r.detail == "350ms, expected < 300ms"
    assert evaluate(th("error_rate{GET /api/bounties/{{ id }}} == 0"), summary(), endpoints).ok


@pytest.mark.parametrize(
    "expr, overall, endpoints, extra",
    [
        ("p95{GET /nope} < 1s", summary(), {}, {}),  # unknown endpoint
        ("p95 < 1s", StatsSummary(), {}, {}),  # no requests: no latency
        ("error_rate < 1%", StatsSummary(), {}, {}),  # a rate of nothing is not 0%
        ("success_rate > 99%", StatsSummary(), {}, {}),
        ("ws.rtt.p95 < 10ms", summary(), {}, {}),  # nobody reported the protocol metric
        ("ws.rtt.p95 < 10ms", summary(), {}, {"ws.rtt.p95": float("nan")}),
    ],
)
def test_no_data_fails(expr, overall, endpoints, extra):
    r = evaluate(th(expr), overall, endpoints, extra)
    assert (r.ok, r.value, r.detail) == (False, None, "no data")


def test_counts_and_rps_with_no_requests_are_zero_not_missing():
    empty = StatsSummary(duration_s=10.0)
    assert evaluate(th("requests == 0"), empty, {}).ok
    assert evaluate(th("errors == 0"), empty, {}).ok
    assert evaluate(th("dropped == 0"), empty, {}).ok
    r = evaluate(th("rps > 1"), empty, {})
    assert (r.ok, r.value) == (False, 0.0)


def test_protocol_metrics_come_from_extra():
    extra = {"ws.connect.p95": 42.0, "mcp.rps": 120.0, "ws.success_rate": 0.97, "ws.rtt.p95{chat}": 9.0}
    assert evaluate(th("ws.connect.p95 < 50ms"), summary(), {}, extra).ok
    assert evaluate(th("mcp.rps > 100"), summary(), {}, extra).value == 120.0
    assert not evaluate(th("ws.success_rate > 99%"), summary(), {}, extra).ok
    assert evaluate(th("ws.rtt.p95{chat} < 10ms"), summary(), {}, extra).ok


def test_result_round_trips():
    r = evaluate(th("p95 < 200ms"), summary(), {})
    assert msgspec.json.decode(msgspec.json.encode(r), type=ThresholdResult) == r


# ---- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, value, text",
    [
        ("p95 < 1s", 183.0, "183ms"),
        ("p95 < 1s", 12.34, "12.3ms"),
        ("p95 < 1s", 0.42, "0.42ms"),
        ("p95 < 1s", 1250.0, "1.25s"),
        ("error_rate < 1%", 0.0042, "0.42%"),
        ("error_rate < 1%", 0.0, "0.00%"),
        ("error_rate < 1%", 0.000012, "0.0012%"),
        ("success_rate > 99%", 1.0, "100.00%"),
        ("rps > 1", 1234.4, "1234/s"),
        ("rps > 1", 12.34, "12.3/s"),
        ("requests > 1", 17.0, "17"),
        ("dropped == 0", 0.0, "0"),
        ("ws.rtt.p95 < 1", 5.0, "5.00ms"),
        ("p95 < 1s", None, "no data"),
    ],
)
def test_format_value(expr, value, text):
    assert format_value(th(expr), value) == text


def test_detail_reads_naturally():
    assert evaluate(th("p95 < 200ms"), summary(), {}).detail == "120ms < 200ms"
    assert evaluate(th("error_rate < 0.5%"), summary(), {}).detail == "1.00%, expected < 0.50%"


def test_a_growing_count_is_pending_until_its_verdict_cannot_change():
    from perftui.thresholds import ThresholdResult, pending_detail, settled

    def judge(expr: str, value: float) -> tuple[bool, bool]:
        th = parse_threshold(expr)
        ok = {">": value > th.value, ">=": value >= th.value, "<": value < th.value,
              "<=": value <= th.value, "==": value == th.value}[th.op]
        return ok, settled(th, ThresholdResult(expr=expr, ok=ok, value=value))

    assert judge("requests > 1000", 412) == (False, False)  # may still get there
    assert judge("requests > 1000", 1001) == (True, True)  # counts never go back
    assert judge("errors < 10", 3) == (True, False)  # may still fail
    assert judge("errors < 10", 12) == (False, True)
    assert judge("ws.messages_received >= 5", 2) == (False, False)
    assert judge("dropped == 0", 0) == (True, False)
    assert judge("dropped == 0", 4) == (False, True)
    # latencies and rates move both ways: their live verdict stands as it is
    assert judge("p95 < 200ms", 250)[1] and judge("error_rate < 1%", 0.5)[1]
    th = parse_threshold("requests > 1000")
    assert pending_detail(th, ThresholdResult(expr=th.expr, ok=False, value=412)) == "412 so far, needs > 1000"
