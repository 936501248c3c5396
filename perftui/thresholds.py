"""Pass/fail thresholds, k6-like: ``"p95 < 200ms"``, ``"error_rate < 1%"``,
``"p99{GET /api/users} < 500ms"``, ``"rps > 100"``.

Parsed by the plan loader (so a typo fails before the run) and evaluated against a
``StatsSummary`` by the engine's reporters at the end of a run (and live by the dashboard).

Grammar::

    THRESHOLD := METRIC [ "{" ENDPOINT "}" ] OP NUMBER [UNIT]
    OP        := "<" | "<=" | ">" | ">=" | "=="

ENDPOINT is everything between the first ``{`` and the *last* ``}`` of the expression, taken
exactly as written (surrounding spaces trimmed). Endpoint names keep their ``{{ }}`` templates
(``GET /api/bounties/{{ id }}``), so they contain braces themselves; since neither the operator
nor the number can contain ``}``, the last ``}`` always closes the endpoint.

Values are stored in canonical units: milliseconds for latencies, a fraction (0..1) for rates,
plain numbers for counts and requests per second.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Literal

import msgspec

from perftui.summary import ERROR_KINDS, StatsSummary
from perftui.units import format_ms

__all__ = [
    "METRICS",
    "Threshold",
    "ThresholdResult",
    "evaluate",
    "format_value",
    "metric_kind",
    "parse_threshold",
]


class Threshold(msgspec.Struct, frozen=True):
    expr: str
    """The threshold as written."""
    metric: str
    """Canonical metric name: ``p95``, ``service.p99``, ``error_rate``, ``ws.rtt.p95``..."""
    endpoint: str | None
    """Endpoint metric name, or None for the whole run."""
    op: str
    value: float
    """Canonical units: ms for latencies, a fraction for rates, plain numbers otherwise."""


class ThresholdResult(msgspec.Struct):
    expr: str
    ok: bool
    value: float | None
    """Observed value in canonical units; None when there was no data."""
    detail: str = ""


# ---- metric names ------------------------------------------------------------------------

_LATENCY_FIELDS = ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
_LATENCY_ALIASES = {
    "avg": "mean",
    "med": "p50",
    "median": "p50",
    "p(50)": "p50",
    "p(90)": "p90",
    "p(95)": "p95",
    "p(99)": "p99",
    "p(99.9)": "p999",
    "p99.9": "p999",
}
_PROTOCOL_PREFIXES = ("ws.", "mcp.", "graphql.", "sql.")

MetricKind = Literal["latency", "rate", "rps", "count", "gauge", "factor"]

METRICS: dict[str, tuple[MetricKind, str]] = {}
"""Every built-in metric name -> (kind, description). Protocol metrics (``ws.*``, ``mcp.*``,
``graphql.*``) are accepted too and read from the ``extra`` mapping."""

for _f in _LATENCY_FIELDS:
    METRICS[_f] = ("latency", f"{_f} latency from the intended start (coordinated-omission corrected)")
    METRICS[f"service.{_f}"] = ("latency", f"{_f} service time, from the moment the request was sent")
METRICS["rps"] = ("rps", "completed requests per second")
METRICS["requests"] = ("count", "completed requests")
METRICS["errors"] = ("count", "failed requests")
METRICS["error_rate"] = ("rate", "errors / requests")
METRICS["success_rate"] = ("rate", "1 - error_rate")
for _k in ERROR_KINDS:
    METRICS[f"{_k}_rate"] = ("rate", f"share of requests failing with {_k}")
    METRICS[f"{_k}_count"] = ("count", f"requests failing with {_k}")
METRICS["dropped"] = ("count", "open-model arrivals dropped by max_in_flight")
METRICS["late_starts"] = ("count", "open-model arrivals started later than late_threshold")

# Protocol metrics (computed by ``Session.protocol_extra``): families with latency figures, the
# named figures of the whole run, and the figures every protocol endpoint has (``{name}``).
PROTOCOL_LATENCY_FAMILIES = ("ws.connect", "ws.rtt", "ws.expect", "graphql", "mcp", "mcp.initialize", "sql")
PROTOCOL_METRICS = frozenset({
    "ws.success_rate", "ws.connections_opened", "ws.connections_failed", "ws.closed_by_server",
    "ws.messages_sent", "ws.messages_received", "ws.operations", "ws.errors", "ws.error_rate",
    "ws.peak_connections", "ws.messages_sent.rps", "ws.messages_received.rps",
    "graphql.requests", "graphql.errors", "graphql.graphql_errors", "graphql.rps", "graphql.error_rate",
    "graphql.success_rate",
    "mcp.requests", "mcp.errors", "mcp.rps", "mcp.jsonrpc_errors", "mcp.tool_errors", "mcp.sessions",
    "mcp.sessions_expired", "mcp.error_rate", "mcp.success_rate",
    # SQL steps and pools (perftui.session.sqlfigures); pool figures also per database: {NAME}
    "sql.requests", "sql.errors", "sql.rps", "sql.error_rate", "sql.success_rate", "sql.rows",
    "sql.pool.utilization", "sql.pool.wait.mean",
    *(f"{fam}.{f}" for fam in PROTOCOL_LATENCY_FAMILIES for f in _LATENCY_FIELDS),
})
_PROTOCOL_ENDPOINT_FIELDS = (*_LATENCY_FIELDS, "requests", "errors", "rps", "error_rate", "success_rate")
PROTOCOL_ENDPOINT_METRICS = frozenset(
    {f"{fam}.{f}" for fam in PROTOCOL_LATENCY_FAMILIES for f in _PROTOCOL_ENDPOINT_FIELDS}
    | {"sql.rows", "sql.pool.utilization", "sql.pool.wait.mean"}
)


# The system under test (``perftui.run.judge`` reads them from the monitor's timeline): the SUT
# process, the machine, named metric series and health checks; and the plan's SLOs.
TARGET_FIELDS = {"cpu": "cpu_percent", "memory": "rss_mb", "rss_mb": "rss_mb", "threads": "threads",
                 "connections": "connections", "open_fds": "open_fds"}
"""``target.<name>`` -> the SUT process figure (``timeline[].monitor.sut``)."""
HOST_FIELDS = {"cpu": "cpu_percent", "memory": "memory_percent", "load1": "load1"}
"""``host.<name>`` -> the machine's figure (``timeline[].monitor.host``)."""
GAUGE_STATS = ("avg", "max", "min", "last")
"""How a monitored series is summed up over the run or the window; ``avg`` when not said."""
SLO_FIELDS = ("burn_rate", "budget_consumed", "budget_left", "sli")
_SLO_NAME = re.compile(r"[a-z0-9_-]+\Z")
SYSTEM_PREFIXES = ("target.", "host.", "series", "health.")


def system_metric(metric: str) -> tuple[str, str, str] | None:
    """``(family, field, stat)`` of a system-under-test metric (``target.cpu.max`` ->
    ``("target", "cpu", "max")``, ``series{NAME}`` -> ``("series", "", "avg")``,
    ``health.uptime`` -> ``("health", "uptime", "")``), or None when it is not one."""
    parts = metric.split(".")
    if parts[0] == "series" and len(parts) <= 2:
        stat = parts[1] if len(parts) == 2 else "avg"
        return ("series", "", stat) if stat in GAUGE_STATS else None
    if parts[0] == "health" and parts[1:] == ["uptime"]:
        return ("health", "uptime", "")
    fields = {"target": TARGET_FIELDS, "host": HOST_FIELDS}.get(parts[0])
    if fields is None or len(parts) not in (2, 3) or parts[1] not in fields:
        return None
    stat = parts[2] if len(parts) == 3 else "avg"
    return (parts[0], parts[1], stat) if stat in GAUGE_STATS else None


def slo_metric(metric: str) -> tuple[str, str] | None:
    """``(slo name, field)`` of ``slo.<name>.<field>``, or None."""
    if not metric.startswith("slo."):
        return None
    name, _, fld = metric[4:].rpartition(".")
    if not name or fld not in SLO_FIELDS or not _SLO_NAME.match(name):
        return None
    return name, fld


def _system_problem(raw: str, metric: str, endpoint: str | None) -> str | None:
    """What is wrong with a ``target.*``/``host.*``/``series``/``health.*``/``slo.*`` metric
    name, or None when it is fine."""
    if metric.startswith("slo."):
        if slo_metric(metric) is None:
            return (f"unknown SLO metric {raw!r}: write slo.<name>.<field> with a field among "
                    f"{', '.join(SLO_FIELDS)} (e.g. slo.checkout.burn_rate < 2)")
        if endpoint is not None:
            return f"{raw}: an SLO metric takes no {{...}}; the SLO names its endpoint itself"
        return None
    found = system_metric(metric)
    if found is None:
        stats = "/".join(GAUGE_STATS)
        return (f"unknown metric {raw!r} (system under test: target.<{'|'.join(TARGET_FIELDS)}>[.{stats}], "
                f"host.<{'|'.join(HOST_FIELDS)}>[.{stats}], series[.{stats}]{{SERIES NAME}}, "
                "health.uptime or health.uptime{HEALTH URL})")
    if found[0] == "series" and endpoint is None:
        return f"{raw}: name the monitor series in braces: series{{db connections}} < 80"
    if found[0] in ("target", "host") and endpoint is not None:
        return f"{raw}: {found[0]}.* metrics take no {{...}}"
    return None


def _unknown_protocol_metric(raw: str, metric: str, endpoint: str | None) -> str:
    known = sorted(PROTOCOL_METRICS if endpoint is None else PROTOCOL_ENDPOINT_METRICS)
    close = difflib.get_close_matches(metric, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    family = metric.split(".", 1)[0]
    same = [k for k in known if k.startswith(family + ".") and k.rpartition(".")[2] not in _LATENCY_FIELDS]
    where = "per endpoint" if endpoint is not None else "for the whole run"
    return (f"unknown protocol metric {raw!r}{hint} ({family} metrics {where}: "
            f"{', '.join(same)}, and latencies such as {family if family != 'ws' else 'ws.rtt'}.p95)")


_METRIC_CHARS = re.compile(r"[a-z0-9_.()]+\Z")
_TAIL = re.compile(
    r"""\s*(?P<op><=|>=|==|<|>|=>|=<|!=|=)\s*
        (?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
        \s*(?P<unit>[A-Za-zµ%/]+)?\s*\Z""",
    re.VERBOSE,
)
_OPS = ("<", "<=", ">", ">=", "==")
_GRAMMAR = "expected METRIC[{ENDPOINT}] OP VALUE, e.g. 'p95 < 200ms', 'error_rate < 1%' or 'p99{GET /api/users} < 500ms'"


_K6_PERCENTILE = re.compile(r"(.*?)(p\([0-9.]+\)|p\d+\.\d+)\Z")


def _normalise_metric(name: str) -> str:
    name = name.strip().lower()
    if (m := _K6_PERCENTILE.match(name)) and (not m.group(1) or m.group(1).endswith(".")):
        prefix, last = m.group(1), m.group(2)  # p(99.9) and p99.9 have a dot of their own
    else:
        head, dot, last = name.rpartition(".")
        prefix = head + dot
    return prefix + _LATENCY_ALIASES.get(last, last)


def metric_kind(metric: str) -> MetricKind:
    """Unit family of a canonical metric name (protocol metrics are judged by their last part)."""
    known = METRICS.get(metric)
    if known is not None:
        return known[0]
    if (slo := slo_metric(metric)) is not None:
        return "factor" if slo[1] == "burn_rate" else "rate"
    if (system := system_metric(metric)) is not None:
        return "rate" if system[0] == "health" else "gauge"
    last = metric.rpartition(".")[2]
    if last in _LATENCY_FIELDS:
        return "latency"
    if last == "rps":
        return "rps"
    if last.endswith("rate") or last == "utilization":
        return "rate"
    return "count"


def _unknown_metric(raw: str, metric: str) -> str:
    choices = [*METRICS, "p(95)", "p(99)", "p(99.9)", "avg", "med"]
    close = difflib.get_close_matches(metric, choices, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    if re.fullmatch(r"p\(?\d+(\.\d+)?\)?", metric):
        hint = "; percentiles available: p50 p90 p95 p99 p999 (or p(95), p(99.9))"
    return (
        f"unknown metric {raw!r}{hint} (latency: min mean p50 p90 p95 p99 p999 max, service.p95...;"
        " rps, requests, errors, error_rate, success_rate, <kind>_rate, <kind>_count, dropped, late_starts;"
        " ws.*, mcp.*, graphql.*, sql.*)"
    )


def parse_threshold(expr: str) -> Threshold:
    """Parse one threshold; raises ``ValueError`` saying what was expected."""
    if not isinstance(expr, str):
        raise ValueError(f"threshold must be a string, got {type(expr).__name__}; {_GRAMMAR}")
    text = expr.strip()
    if not text:
        raise ValueError(f"empty threshold: {_GRAMMAR}")
    endpoint: str | None = None
    if "{" in text:
        open_at = text.index("{")
        close_at = text.rfind("}")
        if close_at < open_at:
            raise ValueError(f"threshold {expr!r}: '{{' opens an endpoint name but no '}}' closes it; {_GRAMMAR}")
        endpoint = text[open_at + 1 : close_at].strip()
        if not endpoint:
            raise ValueError(f"threshold {expr!r}: empty endpoint name in {{}}; {_GRAMMAR}")
        metric_raw = text[:open_at]
        rest = text[close_at + 1 :]
        tail = _TAIL.match(rest)
        if not tail:
            raise ValueError(f"threshold {expr!r}: expected OP VALUE after the endpoint name; {_GRAMMAR}")
    else:
        tail = _TAIL.search(text)
        if not tail:
            if not any(c in text for c in "<>="):
                raise ValueError(f"threshold {expr!r} has no comparison operator (< <= > >= ==); {_GRAMMAR}")
            raise ValueError(f"threshold {expr!r}: expected a number after the operator; {_GRAMMAR}")
        metric_raw = text[: tail.start()]
    op = tail.group("op")
    if op not in _OPS:
        fix = {"=>": ">=", "=<": "<=", "=": "=="}.get(op)
        extra = f"; did you mean {fix!r}?" if fix else ""
        raise ValueError(f"threshold {expr!r}: operator {op!r} is not supported (use < <= > >= ==){extra}")
    if not metric_raw.strip():
        raise ValueError(f"threshold {expr!r}: missing metric name before the operator; {_GRAMMAR}")
    if any(c in metric_raw for c in "<>=!"):
        raise ValueError(f"threshold {expr!r}: malformed operator; use exactly one of < <= > >= ==")
    metric = _normalise_metric(metric_raw)
    if not _METRIC_CHARS.match(metric) and slo_metric(metric) is None:  # SLO names may hold '-'
        guess = _normalise_metric(re.sub(r"[\s-]+", "_", metric_raw.strip()))
        hint = f"; did you mean {guess!r}?" if guess in METRICS else ""
        raise ValueError(
            f"threshold {expr!r}: metric name {metric_raw.strip()!r} may only contain a-z 0-9 _ . ( ){hint}"
        )
    if metric.startswith(("slo.", *SYSTEM_PREFIXES)) and metric not in METRICS:
        if (problem := _system_problem(metric_raw.strip(), metric, endpoint)) is not None:
            raise ValueError(f"threshold {expr!r}: {problem}")
    elif metric not in METRICS and not metric.startswith(_PROTOCOL_PREFIXES):
        raise ValueError(f"threshold {expr!r}: {_unknown_metric(metric_raw.strip(), metric)}")
    if metric.startswith(_PROTOCOL_PREFIXES) and (metric.endswith(".") or ".." in metric):
        raise ValueError(f"threshold {expr!r}: incomplete metric name {metric!r}")
    if metric.startswith(_PROTOCOL_PREFIXES) and metric not in (
        PROTOCOL_METRICS if endpoint is None else PROTOCOL_ENDPOINT_METRICS
    ):
        raise ValueError(f"threshold {expr!r}: {_unknown_protocol_metric(metric_raw.strip(), metric, endpoint)}")
    number = float(tail.group("num"))
    if not math.isfinite(number):
        raise ValueError(f"threshold {expr!r}: the value must be a finite number")
    unit = tail.group("unit") or ""
    if metric_kind(metric) == "rate" and not unit and tail.group("num").lstrip("+") == "1":
        raise ValueError(
            f"threshold {expr!r}: a bare 1 is ambiguous for {metric}: write 1% (one percent) or 1.0 (all requests)"
        )
    value = _to_canonical(expr, metric, number, unit)
    return Threshold(expr=expr, metric=metric, endpoint=endpoint, op=op, value=value)


_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}


def _to_canonical(expr: str, metric: str, number: float, unit: str) -> float:
    kind = metric_kind(metric)
    u = unit.lower() if unit != "µs" else unit
    if kind == "latency":
        if u in _LATENCY_UNITS:
            return number * _LATENCY_UNITS[u]
        raise ValueError(f"threshold {expr!r}: {metric} is a latency; use ms, s or us (a bare number means ms), not {unit!r}")
    if kind == "rate":
        if u == "%":
            if not 0 <= number <= 100:
                raise ValueError(f"threshold {expr!r}: a percentage must be between 0% and 100%")
            return number / 100.0
        if u == "":
            if not 0 <= number <= 1:
                raise ValueError(
                    f"threshold {expr!r}: {metric} is a fraction from 0 to 1; write {number:g}% for a percentage"
                    f" or {number / 100:g} as a fraction"
                )
            return number
        raise ValueError(f"threshold {expr!r}: {metric} is a rate; use % or a fraction like 0.01, not {unit!r}")
    if kind == "rps":
        if u in ("", "/s", "rps"):
            return number
        raise ValueError(f"threshold {expr!r}: {metric} is requests per second; write a number, optionally with /s")
    if kind == "gauge":
        if u in ("", "%", "mb", "/s", "ms"):
            return number  # in the series' own units, as charted
        raise ValueError(f"threshold {expr!r}: {metric} is compared in its own units (CPU in % of a core,"
                         " memory in MB, a series as charted); write a plain number or one with %")
    if kind == "factor":
        if u in ("", "x"):
            return number
        raise ValueError(f"threshold {expr!r}: {metric} is a multiple of the budget's even pace; write a number such as 2 (or 2x)")
    if u:
        raise ValueError(f"threshold {expr!r}: {metric} is a count; write a plain number without a unit")
    return number


# ---- evaluation --------------------------------------------------------------------------


def _observe(metric: str, s: StatsSummary) -> float | None:
    kind = METRICS[metric][0]
    if kind == "latency":
        group, _, field = metric.rpartition(".")
        lat = s.service_time_ms if group == "service" else s.latency_ms
        value = getattr(lat, field)
        return None if value is None else float(value)
    if metric == "rps":
        return float(s.rps) if s.requests or s.duration_s else None
    if metric == "requests":
        return float(s.requests)
    if metric == "errors":
        return float(s.errors)
    if metric == "dropped":
        return float(s.dropped)
    if metric == "late_starts":
        return float(s.late_starts)
    if kind == "rate":
        if not s.requests:
            return None
        if metric == "error_rate":
            return s.errors / s.requests
        if metric == "success_rate":
            return 1.0 - s.errors / s.requests
        return s.error_kinds.get(metric[: -len("_rate")], 0) / s.requests
    # <kind>_count
    return float(s.error_kinds.get(metric[: -len("_count")], 0))


def _compare(value: float, op: str, limit: float) -> bool:
    if op == "<":
        return value < limit
    if op == "<=":
        return value <= limit
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    return math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def evaluate(
    th: Threshold,
    overall: StatsSummary,
    endpoints: Mapping[str, StatsSummary],
    extra: Mapping[str, float] = {},  # noqa: B006 - read only
) -> ThresholdResult:
    """Check ``th`` against a run's results. No data (unknown endpoint, no requests, a protocol
    metric nobody reported) fails with ``detail="no data"``."""
    value: float | None
    if th.metric in METRICS:
        summary = overall if th.endpoint is None else endpoints.get(th.endpoint)
        value = None if summary is None else _observe(th.metric, summary)
    else:
        key = th.metric if th.endpoint is None else f"{th.metric}{{{th.endpoint}}}"
        raw = extra.get(key)
        value = None if raw is None else float(raw)
    if value is None or math.isnan(value):
        return ThresholdResult(expr=th.expr, ok=False, value=None, detail="no data")
    ok = _compare(value, th.op, th.value)
    limit = f"{th.op} {format_value(th, th.value)}"
    detail = f"{format_value(th, value)} {limit}" if ok else f"{format_value(th, value)}, expected {limit}"
    return ThresholdResult(expr=th.expr, ok=ok, value=value, detail=detail)


def settled(th: Threshold, result: ThresholdResult) -> bool:
    """Whether a verdict taken while the run goes on can no longer change. Counts (``requests``,
    ``errors``, ``<kind>_count``, ``ws.messages_received``...) only grow during a run: ``requests
    > 1000`` that holds keeps holding, and ``errors < 10`` that failed stays failed; until then
    (and for ``==`` until the count passes it) the verdict waits for the end of the run.
    Latencies and rates can move either way, so their live verdict is shown as it stands."""
    if metric_kind(th.metric) != "count":
        return True
    value = result.value if result.value is not None else 0.0
    if th.op in (">", ">="):
        return result.ok
    if th.op in ("<", "<="):
        return not result.ok
    return value > th.value  # ==: only settled once the count has gone past it


def pending_detail(th: Threshold, result: ThresholdResult) -> str:
    """What a pending threshold shows: ``412 so far, needs > 1000``."""
    return f"{format_value(th, result.value or 0.0)} so far, needs {th.op} {format_value(th, th.value)}"


def format_value(th: Threshold, value: float | None) -> str:
    """A value in the threshold's units for people: ``183ms``, ``0.42%``, ``1234/s``, ``17``."""
    if value is None:
        return "no data"
    kind = metric_kind(th.metric)
    if kind == "latency":
        return format_ms(value)
    if kind == "rate":
        pct = value * 100
        if pct and abs(pct) < 0.01:
            return f"{pct:.4f}%"
        return f"{pct:.2f}%"
    if kind == "rps":
        return f"{value:.0f}/s" if abs(value) >= 100 else f"{value:.1f}/s"
    if kind == "factor":
        return f"{value:.2f}×"
    if kind == "gauge":
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:.0f}" if value == int(value) else f"{value:g}"
