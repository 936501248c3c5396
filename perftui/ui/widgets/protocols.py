"""ProtocolsPanel: WebSocket, GraphQL and MCP figures of the run so far.

Fed at the charts' pace (at most once a second) with ``RunView.numbers.protocols``
(``SessionRecord.protocol_summary()``, a ``perftui.session.ProtocolSummary``); the dashboard shows
the panel only when the plan has protocol steps. It titles itself; not monitored, its subtitle
says how to monitor the target (the target panel has no room then).
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from perftui.ui.format import fmt_pct, fmt_rate
from perftui.ui.widgets.base import LivePanel
from perftui.units import format_count, format_ms

LABEL = 11


def _count(n: int | float) -> str:
    return f"{n:,}" if n < 100_000 else format_count(n)


def _head(label: str) -> Text:
    return Text(f"{label:<{LABEL}}", style="bold", no_wrap=True, overflow="ellipsis")


def _sub(label: str) -> Text:
    return Text(f"{'  ' + label:<{LABEL}}", style="dim", no_wrap=True, overflow="ellipsis")


def _pair(t: Text, label: str, value: str, style: str = "") -> None:
    t.append(f"{label} ", "dim")
    t.append(value, style)
    t.append("  ")


def _latency(t: Text, lat) -> None:
    if lat.p50 is None:
        t.append("no data yet", "dim")
        return
    for name in ("p50", "p95", "p99"):
        _pair(t, name, format_ms(getattr(lat, name)))


def protocol_lines(p) -> list[Text]:
    lines: list[Text] = []
    if p.ws is not None:
        w = p.ws
        t = _head("WebSocket")
        _pair(t, "open", f"{w.open_connections:,}", "bold")
        _pair(t, "peak", f"{w.peak_open_connections:,}")
        _pair(t, "opened", _count(w.connections_opened))
        _pair(t, "failed", _count(w.connections_failed), "red" if w.connections_failed else "")
        if w.success_rate is not None:
            _pair(t, "ok", fmt_pct(w.success_rate), "" if w.success_rate >= 0.99 else "bold red")
        lines.append(t)
        t = _sub("messages")
        _pair(t, "sent", fmt_rate(w.sent_per_s), "bold")
        _pair(t, "received", fmt_rate(w.received_per_s), "bold")
        t.append(f"({_count(w.messages_sent)} / {_count(w.messages_received)})", "dim")
        lines.append(t)
        t = _sub("connect")
        _latency(t, w.connect_ms)
        lines.append(t)
        if w.rtt_ms.p50 is not None or w.expect_ms.p50 is None:
            t = _sub("RTT")
            _latency(t, w.rtt_ms)
            lines.append(t)
        if w.expect_ms.p50 is not None:
            t = _sub("expect")
            _latency(t, w.expect_ms)
            lines.append(t)
        if w.errors or w.closed_by_server:
            t = _sub("errors")
            _pair(t, "failed ops", _count(w.errors), "red" if w.errors else "")
            _pair(t, "closed by server", _count(w.closed_by_server), "yellow" if w.closed_by_server else "")
            lines.append(t)
    if p.graphql is not None:
        g = p.graphql
        t = _head("GraphQL")
        _pair(t, "requests", _count(g.requests), "bold")
        _pair(t, "rate", fmt_rate(g.rps))
        _pair(t, "errors", fmt_pct(g.error_rate), "red" if g.errors else "")
        _pair(t, "GraphQL errors", _count(g.graphql_errors), "red" if g.graphql_errors else "")
        lines.append(t)
        t = _sub("latency")
        _latency(t, g.latency_ms)
        lines.append(t)
    if p.mcp is not None:
        m = p.mcp
        t = _head("MCP")
        _pair(t, "sessions", _count(m.sessions_initialized), "bold")
        _pair(t, "failed", _count(m.initialize_failed), "red" if m.initialize_failed else "")
        _pair(t, "expired", _count(m.sessions_expired), "yellow" if m.sessions_expired else "")
        _pair(t, "ended", _count(getattr(m, "sessions_terminated", 0)))
        lines.append(t)
        t = _sub("calls")
        t.append(_count(m.requests) + "  ", "bold")
        _pair(t, "rate", fmt_rate(m.rps))
        _pair(t, "errors", fmt_pct(m.error_rate), "red" if m.errors else "")
        _pair(t, "JSON-RPC", _count(m.jsonrpc_errors), "red" if m.jsonrpc_errors else "")
        _pair(t, "tool", _count(m.tool_errors), "red" if m.tool_errors else "")
        lines.append(t)
        t = _sub("latency")
        _latency(t, m.latency_ms)
        t.append(" init ", "dim")
        t.append(format_ms(m.initialize_ms.p95) + " p95" if m.initialize_ms.p95 is not None else "-")
        lines.append(t)
    sql = getattr(p, "sql", None)
    if sql is not None:
        t = _head("SQL")
        _pair(t, "statements", _count(sql.statements), "bold")
        _pair(t, "rate", fmt_rate(sql.rps))
        _pair(t, "errors", fmt_pct(sql.error_rate), "red" if sql.errors else "")
        _pair(t, "rows", _count(sql.rows))
        lines.append(t)
        if sql.error_kinds:
            t = _sub("errors")
            for kind, n in list(sql.error_kinds.items())[:3]:
                _pair(t, kind, _count(n), "red")
            lines.append(t)
        t = _sub("latency")
        _latency(t, sql.latency_ms)
        lines.append(t)
        for name, pool in sql.databases.items():
            t = _sub("pool")
            busy = pool.utilization is not None and pool.utilization >= 0.8
            t.append(f"{name}  ", "bold")
            _pair(t, "in use", f"{pool.in_use}/{pool.size}", "bold")
            _pair(t, "peak", f"{pool.peak_in_use}", "bold yellow" if busy else "")
            _pair(t, "waiting", f"{pool.waiting}", "yellow" if pool.waiting else "")
            if pool.wait_ms_mean is not None:
                _pair(t, "wait", format_ms(pool.wait_ms_mean))
            lines.append(t)
    for line in lines:
        line.rstrip()
    return lines


def protocols_renderable(p, height: int) -> Group:
    lines = protocol_lines(p)
    if not lines:
        return Group(Text("no protocol steps in this plan", style="dim"))
    return Group(*lines[:max(1, height)])


class ProtocolsPanel(LivePanel):
    FIXED_SIZE = True

    def __init__(self, *args, monitored: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "protocols"
        if not monitored:
            self.border_subtitle = 'target not monitored: add \\[monitor] health = "/health" to the plan'

    def show_summary(self, summary) -> None:
        w, h = self.content_size
        self.show((w, h, summary), lambda: protocols_renderable(summary, h))
