"""Protocol figures of a run (WebSocket, GraphQL, MCP, SQL), from the session record's aggregates.

``SessionRecord.protocol_summary`` and ``protocol_extra`` call these with what they need: the
plan's protocol endpoints and their roles (``perftui.plan.protocol_endpoints``, given to the
record by whoever creates it), the per-endpoint aggregates, the cumulative protocol counters and
gauges of ``Snapshot.extra``, and the run's length. Pure functions: the record caches the results.
"""

from __future__ import annotations

from collections.abc import Mapping

from perftui.aggregate import Aggregate, summarize_histogram
from perftui.session.schema import GraphQLSummary, McpSummary, ProtocolSummary, WsSummary
from perftui.session.sqlfigures import sql_summary
from perftui.summary import LatencySummary

__all__ = ["protocol_extra", "protocol_summary"]


def _merged(aggs: list[Aggregate]) -> Aggregate:
    out = Aggregate()
    for a in aggs:
        out.merge(a)
    return out


def protocol_summary(roles: Mapping[str, str], endpoints: Mapping[str, Aggregate], *, extra_total: Mapping[str, float],
                     gauges: Mapping[str, float], gauge_peaks: Mapping[str, float], span: float) -> ProtocolSummary:
    """What the session JSON has under ``protocols``; each part is None when no endpoint has
    that protocol's role. ``span`` is the run's length so far (0 before it started)."""
    if not roles:
        return ProtocolSummary()
    by_role: dict[str, list[tuple[str, Aggregate]]] = {}
    for name, role in roles.items():
        agg = endpoints.get(name)
        by_role.setdefault(role, []).append((name, agg if agg is not None else Aggregate()))
    total = extra_total

    def aggs(*wanted: str) -> list[Aggregate]:
        return [a for r in wanted for _, a in by_role.get(r, ())]

    def lat(items: list[Aggregate]) -> LatencySummary:
        m = _merged(items)
        return summarize_histogram(m.latency, m.latency_sum)

    out = ProtocolSummary()
    ws_roles = [r for r in by_role if r.startswith("ws.")]
    if ws_roles:
        connect = _merged(aggs("ws.connect"))
        every = _merged(aggs(*ws_roles))
        opened = connect.requests - connect.errors
        sent = int(total.get("ws.messages_sent", 0))
        received = int(total.get("ws.messages_received", 0))
        out.ws = WsSummary(
            connections_opened=opened, connections_failed=connect.errors,
            success_rate=opened / connect.requests if connect.requests else None,
            closed_by_server=int(total.get("ws.closed_by_server", 0)),
            open_connections=int(gauges.get("ws.open_connections", 0)),
            peak_open_connections=int(gauge_peaks.get("ws.open_connections", 0)),
            messages_sent=sent, messages_received=received,
            sent_per_s=round(sent / span, 3) if span else 0.0,
            received_per_s=round(received / span, 3) if span else 0.0,
            connect_ms=summarize_histogram(connect.latency, connect.latency_sum),
            rtt_ms=lat(aggs("ws.request")), expect_ms=lat(aggs("ws.expect")),
            operations=every.requests, errors=every.errors, error_kinds=dict(sorted(every.error_kinds.items())),
        )
    if "graphql" in by_role:
        g = _merged(aggs("graphql"))
        out.graphql = GraphQLSummary(
            requests=g.requests, errors=g.errors, graphql_errors=g.error_kinds.get("graphql_error", 0),
            error_rate=g.errors / g.requests if g.requests else 0.0,
            rps=round(g.requests / span, 3) if span else 0.0,
            latency_ms=summarize_histogram(g.latency, g.latency_sum),
            error_kinds=dict(sorted(g.error_kinds.items())), operations=[n for n, _ in by_role["graphql"]],
        )
    if "mcp" in by_role:
        init = _merged(aggs("mcp.initialize"))
        calls = _merged(aggs("mcp"))
        ended = _merged(aggs("mcp.terminate"))
        out.mcp = McpSummary(
            sessions_initialized=init.requests - init.errors, initialize_failed=init.errors,
            sessions_expired=int(total.get("mcp.sessions_expired", 0)),
            sessions_terminated=ended.requests - ended.errors,
            initialize_ms=summarize_histogram(init.latency, init.latency_sum),
            requests=calls.requests, errors=calls.errors,
            jsonrpc_errors=calls.error_kinds.get("jsonrpc_error", 0),
            tool_errors=calls.error_kinds.get("mcp_tool_error", 0),
            error_rate=calls.errors / calls.requests if calls.requests else 0.0,
            rps=round(calls.requests / span, 3) if span else 0.0,
            latency_ms=summarize_histogram(calls.latency, calls.latency_sum),
            error_kinds=dict(sorted(calls.error_kinds.items())), methods=[n for n, _ in by_role["mcp"]],
        )
    if "sql" in by_role:
        out.sql = sql_summary(roles, endpoints, extra_total=extra_total, gauges=gauges, gauge_peaks=gauge_peaks,
                              span=span)
    return out

def protocol_extra(p: ProtocolSummary, roles: Mapping[str, str], endpoints: Mapping[str, Aggregate], *,
                   span: float) -> dict[str, float]:
    """The protocol metrics thresholds can name (``ws.connect.p95``, ``ws.rtt.p95``,
    ``ws.success_rate``, ``ws.messages_received``, ``graphql.error_rate``, ``mcp.p95``,
    ``mcp.initialize.p95``, ...; per endpoint as ``ws.rtt.p95{WS echo}``), for
    ``perftui.thresholds.evaluate(th, overall, endpoints, extra)``. Latencies in ms, rates as
    fractions; a figure without data is left out (the threshold then fails with "no data")."""
    out: dict[str, float] = {}

    def latency(prefix: str, ls: LatencySummary, suffix: str = "") -> None:
        for f in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max"):
            v = getattr(ls, f)
            if v is not None:
                out[f"{prefix}.{f}{suffix}"] = float(v)

    if p.ws is not None:
        w = p.ws
        latency("ws.connect", w.connect_ms)
        latency("ws.rtt", w.rtt_ms)
        latency("ws.expect", w.expect_ms)
        if w.success_rate is not None:
            out["ws.success_rate"] = w.success_rate
        for k in ("connections_opened", "connections_failed", "closed_by_server", "messages_sent",
                  "messages_received", "operations", "errors"):
            out[f"ws.{k}"] = float(getattr(w, k))
        out["ws.peak_connections"] = float(w.peak_open_connections)
        out["ws.messages_sent.rps"] = w.sent_per_s
        out["ws.messages_received.rps"] = w.received_per_s
        if w.operations:
            out["ws.error_rate"] = w.errors / w.operations
    if p.graphql is not None:
        g = p.graphql
        latency("graphql", g.latency_ms)
        out.update({"graphql.requests": float(g.requests), "graphql.errors": float(g.errors),
                    "graphql.graphql_errors": float(g.graphql_errors), "graphql.rps": g.rps})
        if g.requests:
            out["graphql.error_rate"] = g.error_rate
            out["graphql.success_rate"] = 1.0 - g.error_rate
    if p.mcp is not None:
        m = p.mcp
        latency("mcp", m.latency_ms)
        latency("mcp.initialize", m.initialize_ms)
        out.update({"mcp.requests": float(m.requests), "mcp.errors": float(m.errors), "mcp.rps": m.rps,
                    "mcp.jsonrpc_errors": float(m.jsonrpc_errors), "mcp.tool_errors": float(m.tool_errors),
                    "mcp.sessions": float(m.sessions_initialized), "mcp.sessions_expired": float(m.sessions_expired)})
        if m.requests:
            out["mcp.error_rate"] = m.error_rate
            out["mcp.success_rate"] = 1.0 - m.error_rate
    # per endpoint: <family>.<latency>{name}, .requests, .errors, .rps, .error_rate, .success_rate
    families = {"ws.connect": "ws.connect", "ws.request": "ws.rtt", "ws.expect": "ws.expect",
                "graphql": "graphql", "mcp": "mcp", "mcp.initialize": "mcp.initialize"}
    if p:
        for name, role in roles.items():
            family = families.get(role)
            agg = endpoints.get(name)
            if family is None or agg is None:
                continue
            suffix = f"{{{name}}}"
            latency(family, summarize_histogram(agg.latency, agg.latency_sum), suffix)
            out[f"{family}.requests{suffix}"] = float(agg.requests)
            out[f"{family}.errors{suffix}"] = float(agg.errors)
            if span:
                out[f"{family}.rps{suffix}"] = agg.requests / span
            if agg.requests:
                out[f"{family}.error_rate{suffix}"] = agg.errors / agg.requests
                out[f"{family}.success_rate{suffix}"] = 1.0 - agg.errors / agg.requests
    return out
