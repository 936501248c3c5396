"""Number panels: LatencyTable, ErrorsPanel, ThresholdsPanel, GeneratorPanel.

Each is a ``LivePanel`` that titles itself and takes its part of the dashboard's
``perftui.ui.view.NumbersView`` (``show_view``) once per new data version; the renderables are
built by plain functions of the data so the results view can reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rich.console import Group
from rich.table import Table
from rich.text import Text

from perftui.summary import LatencySummary, StatsSummary
from perftui.thresholds import Threshold, parse_threshold, pending_detail, settled
from perftui.ui.format import ellipsize, fmt_pct, fmt_rate
from perftui.ui.view import GeneratorView, NumbersView, ThresholdsView
from perftui.ui.widgets.base import LivePanel
from perftui.units import format_bytes, format_count, format_ms

LATENCY_COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p99.9", "p999"),
                   ("max", "max"), ("mean", "mean"))


def latency_table(window: StatsSummary | None, total: StatsSummary | None, *, live: bool = True) -> Table:
    """Rows: latency (from intended start) and service time, for the last 10 s (``live``) and
    the whole run; columns p50 … mean."""
    t = Table(box=None, padding=(0, 0, 0, 1 if live else 2), expand=live, show_edge=False, header_style="bold")
    t.add_column("", no_wrap=True)
    for label, _ in LATENCY_COLUMNS:
        t.add_column(label, justify="right", no_wrap=True, min_width=6)
    spans = [("10s", window), ("run", total)] if live else [("", total)]
    for i, (span, s) in enumerate(spans):
        for kind, attr in (("latency", "latency_ms"), ("service", "service_time_ms")):
            lat: LatencySummary = getattr(s, attr) if s is not None else LatencySummary()
            label = Text(f"{span} " if span else "", style="bold")
            label.append(kind, style="" if kind == "latency" else "dim")
            style = "" if kind == "latency" else "dim"
            t.add_row(label, *[Text(format_ms(getattr(lat, a)), style=style) for _, a in LATENCY_COLUMNS],
                      end_section=kind == "service" and i < len(spans) - 1)
    return t


class LatencyTable(LivePanel):
    FIXED_SIZE = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "latency · last 10 s and whole run"
        self.border_subtitle = "latency: from intended start · service: from send"

    def show_view(self, n: NumbersView) -> None:
        if n.has_run:
            self.show_stats(*n.latency)

    def show_stats(self, window: StatsSummary | None, total: StatsSummary | None) -> None:
        key = (window.latency_ms if window else None, window.service_time_ms if window else None,
               total.latency_ms if total else None, total.service_time_ms if total else None)
        self.show(key, lambda: latency_table(window, total))


def counts_line(label: str, counts: dict[str, int], style_of=None) -> Text:
    t = Text(f"{label:<8}" if label else "", style="dim")
    if not counts:
        t.append("none", style="dim")
        return t
    for i, (k, v) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        if i:
            t.append("  ")
        t.append(str(k), style=style_of(k) if style_of else "")
        t.append(f" {format_count(v)}", style="bold")
    return t


def status_style(code: str) -> str:
    return "green" if code.startswith(("2", "3")) else "yellow" if code.startswith("4") else "red"


def errors_renderable(total: StatsSummary | None, last_errors: Sequence[str], width: int, height: int) -> Group:
    s = total or StatsSummary()
    lines: list = [
        counts_line("status", s.status_codes, status_style),
        counts_line("errors", s.error_kinds, lambda _: "red"),
    ]
    recent: list[str] = []
    room = height - 3  # status, errors, "latest:"
    for msg in reversed(last_errors if room > 0 else ()):
        if msg not in recent:
            recent.append(msg)
        if len(recent) >= room:
            break
    if recent:
        lines.append(Text("latest:", style="dim"))
        for msg in recent:
            lines.append(Text(ellipsize(" " + msg.replace("\n", " "), max(10, width)), style="red3"))
    elif s.requests and not s.errors:
        lines.append(Text("no errors so far", style="green"))
    return Group(*lines)


class ErrorsPanel(LivePanel):
    FIXED_SIZE = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "errors"

    def show_view(self, n: NumbersView) -> None:
        if n.has_run:
            self.show_errors(n.total, n.last_errors)

    def show_errors(self, total: StatsSummary | None, last_errors: Sequence[str]) -> None:
        w, h = self.content_size
        key = (w, h, total.status_codes if total else None, total.error_kinds if total else None,
               tuple(last_errors)[-12:])
        self.show(key, lambda: errors_renderable(total, list(last_errors), w, h))


@lru_cache(maxsize=256)
def _parsed(expr: str) -> Threshold | None:
    try:
        return parse_threshold(expr)
    except ValueError:
        return None


def thresholds_renderable(exprs: Sequence[str], results: Sequence, live: bool = False,
                          slos: Sequence = ()) -> Table | Text:
    """One row per threshold, then one per SLO (its alert level, burn rate and budget left).
    ``live`` (the run goes on): a count whose verdict can still change (``requests > 1000`` at
    400) and a window not yet full show as pending instead of a FAIL they may not deserve."""
    if not exprs and not slos:
        return Text("no thresholds in this plan", style="dim")
    by_expr = {r.expr: r for r in results}
    t = Table(box=None, padding=(0, 1), show_header=False, expand=True, show_edge=False)
    t.add_column(no_wrap=True, width=6)
    t.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    t.add_column(no_wrap=True, overflow="ellipsis", justify="right", ratio=1)
    for expr in exprs:
        r = by_expr.get(expr)
        th = _parsed(expr)
        name = Text(expr)  # not markup: endpoint names may hold [brackets]
        if r is None:
            t.add_row(Text("  ·", style="dim"), name, Text("waiting", style="dim"))
        elif live and r.value is None and r.detail == "waiting for a full window":
            t.add_row(Text("… wait", style="bold yellow"), name, Text(r.detail, style="yellow"))
        elif live and th is not None and not settled(th, r):
            t.add_row(Text("… wait", style="bold yellow"), name, Text(pending_detail(th, r), style="yellow"))
        elif r.ok:
            t.add_row(Text("✓ pass", style="bold green"), name, Text(r.detail or ""))
        else:
            t.add_row(Text("✗ FAIL", style="bold red"), name, Text(r.detail or "no data", style="red"))
    for slo in slos:
        t.add_row(*slo_row(slo))
    return t


_SLO_STYLES = {"ok": ("✓ ok", "bold green"), "warning": ("⚠ warn", "bold yellow"), "critical": ("✗ CRIT", "bold red")}


def slo_row(r) -> tuple[Text, Text, Text]:
    """An SLO in the thresholds panel: level, name and objective, burn rate (over the budget
    window, and now: the critical level's short window) and budget left."""
    mark, style = _SLO_STYLES.get(r.level, ("  ·", "dim"))
    burn = "-" if r.burn_rate is None else f"{r.burn_rate:.1f}×"
    crit = r.burn_short.get("critical") if r.burn_short else None
    now = "" if crit is None else f" now {crit:.1f}×"
    left = f"{r.budget_left * 100:.0f}% left" if r.budget_left > 0 else "spent"
    return (Text(mark, style=style), Text(f"SLO {r.name} {r.objective * 100:g}%"),
            Text(f"{burn}{now} · {left}", style="" if r.level == "ok" else style.replace("bold ", "")))


class ThresholdsPanel(LivePanel):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "thresholds"

    def show_view(self, v: ThresholdsView) -> None:
        self.show_results(v.exprs, v.results, live=v.live, slos=v.slos)

    def show_results(self, exprs: Sequence[str], results: Sequence, live: bool = False, slos: Sequence = ()) -> None:
        key = (tuple(exprs), tuple((r.expr, r.ok, r.detail) for r in results), live,
               tuple((r.level, r.burn_rate, r.budget_left, tuple(r.burn_short.items())) for r in slos))
        self.show(key, lambda: thresholds_renderable(exprs, results, live, slos))


def generator_warning_text(warning: str) -> Text:
    """Two highlighted lines for a generator-limited second: the verdict, then why."""
    what = warning.removeprefix("generator-limited: ")
    t = Text(no_wrap=True, overflow="ellipsis", style="white on dark_red")
    t.append(" ⚠ perftui is the bottleneck: numbers in this interval are suspect ", "bold")
    t.append(f"\n   {what} ")
    return t


def generator_renderable(gen, ui: tuple[float, int], total: StatsSummary | None, last_row, workers: int,
                         host: dict | None = None, warning: str | None = None, cores: int | None = None):
    ui_cpu, ui_rss = ui
    t = Table(box=None, padding=(0, 1), show_header=True, expand=True, show_edge=False, header_style="dim")
    t.add_column("process", no_wrap=True)
    t.add_column("CPU", justify="right", no_wrap=True)
    t.add_column("RSS", justify="right", no_wrap=True)
    t.add_column("", no_wrap=True, ratio=1)
    t.add_column("", justify="right", no_wrap=True)
    alive = gen.workers_alive if gen.workers_alive or gen.workers else workers
    s = total or StatsSummary()
    late_now = last_row.late_starts if last_row else 0
    dropped_now = last_row.dropped if last_row else 0
    t.add_row(f"workers {alive}/{workers}", f"{gen.cpu_percent:.0f}%", format_bytes(gen.rss_bytes),
              Text("connections", style="dim"), f"{gen.open_connections:,}")
    t.add_row("dashboard", f"{ui_cpu:.0f}%", format_bytes(ui_rss), Text("in flight", style="dim"),
              f"{gen.in_flight:,}" + (f" +{gen.queued:,} queued" if gen.queued else ""))
    t.add_row(Text("all perftui", style="bold"), Text(f"{gen.cpu_percent + ui_cpu:.0f}%", style="bold"),
              Text(format_bytes(gen.rss_bytes + ui_rss), style="bold"), Text("VUs", style="dim"), f"{gen.vus:,}")
    if host:
        # the machine's CPU is over all its cores (0-100 %), the processes' over one core each
        cpu = host.get("cpu_percent")
        mem = host.get("memory_percent")
        used = host.get("memory_used_mb")
        load = host.get("load1")
        label = f"machine ({cores} cores)" if cores else "machine"
        t.add_row(Text(label, style="dim"),
                  Text(f"{cpu:.0f}%" if cpu is not None else "-", style="bold red" if (cpu or 0) >= 90 else ""),
                  format_bytes(used * 2**20) if used is not None else "-",
                  Text(f"mem {mem:.0f}% · load" if mem is not None else "load", style="dim"),
                  Text(f"{load:.2f}" if load is not None else "-",
                       style="yellow" if cores and load is not None and load > cores else ""))
    late = Text(f"{s.late_starts:,}", style="yellow" if s.late_starts else "")
    if late_now:
        late.append(f" (+{late_now})", style="yellow")
    dropped = Text(f"{s.dropped:,}", style="red" if s.dropped else "")
    if dropped_now:
        dropped.append(f" (+{dropped_now})", style="red")
    # stalls: the workers' loops held > 2 ms in the last second (a tail that is perftui's own)
    # (in the RSS column, which these rows leave empty: in the CPU column it took the width the
    # labels on the right need when the counts beside them grow large)
    stalls = Text(f"{gen.stalls} stall{'s' if gen.stalls != 1 else ''}", style="yellow") if gen.stalls else ""
    t.add_row(Text("loop lag", style="dim"), f"{gen.loop_lag_ms:.1f}ms", stalls, Text("late starts", style="dim"), late)
    t.add_row(Text("sched lag", style="dim"), f"{gen.schedule_lag_ms:.1f}ms", "", Text("dropped", style="dim"), dropped)
    for n in gen.nodes[:MAX_NODE_ROWS]:  # --cluster: where the workers are, and which node lags
        lost = not n.workers_alive
        t.add_row(Text(n.node, style="red" if lost else ""), "-" if lost else f"{n.cpu_percent:.0f}%",
                  "" if lost else f"lag {n.loop_lag_ms:.0f}ms",
                  Text("lost" if lost else f"{n.workers_alive}/{n.workers} workers", style="bold red" if lost else "dim"),
                  Text(f"late {n.late_starts:,}", style="yellow" if n.late_starts else "dim"))
    if len(gen.nodes) > MAX_NODE_ROWS:
        t.add_row(Text(f"+{len(gen.nodes) - MAX_NODE_ROWS} node(s)", style="dim"), "", "", "", "")
    if warning:
        return Group(generator_warning_text(warning), t)
    return t


MAX_NODE_ROWS = 6
"""Cluster nodes listed in the generator panel (the session has them all)."""


class GeneratorPanel(LivePanel):
    FIXED_SIZE = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "load generator (perftui's processes)"

    def show_view(self, g: GeneratorView | None) -> None:
        if g is None:
            return
        self.set_class(bool(g.warning), "-warning")
        nodes = len(g.gen.nodes)
        rows = min(nodes, MAX_NODE_ROWS) + (nodes > MAX_NODE_ROWS)
        want = (rows, bool(g.warning)) if rows else None
        if want != getattr(self, "_node_rows", None):  # a cluster run: a row per node below the rest
            self._node_rows = want
            self.styles.height = None if not rows else 9 + rows + (2 if g.warning else 0)
        self.show_generator(g.gen, g.ui, g.total, g.last_row, g.workers, g.host, g.warning, g.cores)

    def show_generator(self, gen, ui: tuple[float, int], total: StatsSummary | None, last_row, workers: int,
                       host: dict | None = None, warning: str | None = None, cores: int | None = None) -> None:
        host_key = tuple(round(host.get(k, 0.0), 1) for k in ("cpu_percent", "memory_percent", "load1")) if host else None
        key = (gen, round(ui[0]), ui[1] >> 20, total.late_starts if total else 0, total.dropped if total else 0,
               (last_row.late_starts, last_row.dropped) if last_row else None, workers, host_key,
               round(host.get("memory_used_mb", 0.0)) if host else None, warning)
        self.show(key, lambda: generator_renderable(gen, ui, total, last_row, workers, host, warning, cores))


def summary_line(s: StatsSummary) -> Text:
    t = Text()
    t.append(f"{s.requests:,}", style="bold")
    t.append(" requests · ", style="dim")
    t.append(fmt_rate(s.rps), style="bold")
    t.append(" · ", style="dim")
    t.append(fmt_pct(s.error_rate), style="bold red" if s.errors else "bold")
    t.append(" errors", style="dim")
    return t
