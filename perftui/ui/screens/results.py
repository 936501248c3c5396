"""The results view, shown when a run ends: final summary, thresholds, where the JSON went, and
what monitoring saw (health transitions, metric series, RSS trends, generator-limited intervals)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from perftui.plan import threshold_label
from perftui.runtime import EXIT_THRESHOLDS
from perftui.ui.format import fmt_pct, fmt_rate
from perftui.ui.keys import key_help
from perftui.ui.widgets.tables import status_style, counts_line, latency_table, summary_line, thresholds_renderable
from perftui.ui.widgets.protocols import protocols_renderable
from perftui.ui.widgets.benchmark import benchmark_renderable, stages_renderable
from perftui.ui.widgets.endpoints import endpoint_label
from perftui.ui.widgets.charts import ErrorChart, LatencyChart, RateChart, TimelineChart
from perftui.units import format_duration, format_ms


def clock(t: float) -> str:
    """Run time as m:ss (h:mm:ss past an hour); events before the start are negative."""
    sign = "-" if t < 0 else ""
    whole = int(abs(t))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def verdict(session) -> Text:
    results = session.threshold_results
    reason = session.end_reason or "finished"
    t = Text()
    if reason == "completed":
        t.append(" ✓ RUN COMPLETED ", "bold black on green3")
    else:
        t.append(f" ■ RUN ENDED: {reason} ", "bold black on dark_orange")
    fl = getattr(session, "find_limit", None)
    if fl is not None:  # a breaking-point search: its result decides the exit code
        t.append("   ")
        if fl.found:
            t.append(f" ✓ LIMIT {fl.limit_rps:,.4g}/s ", "bold black on green3")
        else:
            t.append(" ✗ NO LIMIT FOUND ", "bold white on red3")
            t.append(f"  exit code {EXIT_THRESHOLDS}", "dim")
        return t
    if results:
        failed = [r for r in results if not r.ok]
        t.append("   ")
        if failed:
            t.append(f" ✗ {len(failed)} of {len(results)} thresholds failed ", "bold white on red3")
            t.append(f"  exit code {EXIT_THRESHOLDS}", "dim")
        else:
            t.append(f" ✓ all {len(results)} thresholds passed ", "bold black on green3")
    return t


def overview(session, target_url: str) -> Table:
    s = session.summary()
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    t.add_row("plan", Text(session.plan_name, style="bold"))
    profile = session.plan_dict.get("profile") if isinstance(session.plan_dict, dict) else None
    if profile:
        t.add_row("profile", Text(str(profile), style="bold cyan"))
    t.add_row("target", target_url)
    t.add_row("duration", format_duration(session.run_seconds()) + (" (partial)" if session.partial else ""))
    t.add_row("requests", summary_line(s))
    asked = session.asked_arrivals()  # open model: started against asked
    t.add_row("iterations", f"{session.iterations:,}" + (f" of ~{asked:,.0f} asked ({session.iterations / asked:.1%})"
                                                         if asked else ""))
    t.add_row("late / dropped", f"{s.late_starts:,} late starts · {s.dropped:,} dropped arrivals")
    t.add_row("status codes", counts_line("", s.status_codes, status_style))
    t.add_row("error kinds", counts_line("", s.error_kinds, lambda _: "red"))
    return t


def endpoints_table(session) -> Table:
    t = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    t.add_column("endpoint", ratio=1, overflow="ellipsis", no_wrap=True)
    for col in ("requests", "rps", "err %", "p50", "p95", "p99", "max"):
        t.add_column(col, justify="right", no_wrap=True)
    for e in sorted(session.endpoint_summaries(), key=lambda e: -e.requests):
        lat = e.latency_ms
        t.add_row(endpoint_label(e.name, e.protocol), f"{e.requests:,}", fmt_rate(e.rps), Text(fmt_pct(e.error_rate), style="red" if e.errors else ""),
                  format_ms(lat.p50), format_ms(lat.p95), format_ms(lat.p99), format_ms(lat.max))
    return t


def monitor_renderable(session) -> Text | None:
    """The headless summary's monitoring block (``perftui.monitor.report``): for a monitored
    target, or when perftui itself was the bottleneck at some point."""
    from perftui.monitor.report import summary_lines

    if not (session.monitor.enabled or session.monitor.generator_warnings):
        return None
    lines = list(summary_lines(session))
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    t = Text()
    for i, line in enumerate(lines):
        if i:
            t.append("\n")
        style = "bold red" if line.startswith("!") else "bold" if line and not line.startswith(" ") else ""
        t.append(line, style=style)
    return t


def written_text(controller) -> Text:
    t = Text()
    if controller.written is not None:
        t.append("session written to ", "dim")
        t.append(str(controller.written.path), "bold")
        if controller.coord.session.partial:
            t.append("  (partial: the run did not complete)", "dim")
    elif controller.write_error:
        t.append(controller.write_error, "bold red")
    elif controller.remote:
        t.append("the background run writes its own session file (perftui ls shows where)", "dim")
    else:
        t.append("session not written yet", "dim")
    return t


def limit_table(doc) -> Group:
    """A breaking-point search: one row per step (and per drop after a break), then the verdict."""
    t = Table(box=None, padding=(0, 1), expand=True, header_style="dim")
    for name in ("step", "asked", "started", "p50", "p95", "p99", "err %", "late %"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("verdict", ratio=1, no_wrap=True, overflow="ellipsis")
    style = {"held": "green3", "broke": "bold red1", "generator-limited": "bold yellow3"}
    for st in doc.steps:
        verdict = st.verdict + (": " + "; ".join(st.broke) if st.verdict == "broke" else
                                f" ({st.note})" if st.note else "")
        t.add_row(f"{st.index + 1} {st.stage}", f"{st.rate:,.4g}/s", f"{st.started_rps:,.1f}/s", format_ms(st.p50_ms),
                  format_ms(st.p95_ms), format_ms(st.p99_ms), f"{st.error_rate * 100:.2f}", f"{st.late_rate * 100:.2f}",
                  Text(verdict, style=style.get(st.verdict, "")))
        r = st.recovery
        if r is not None:
            what = (f"recovered in {r.seconds or 0:g}s" if r.recovered else
                    "not recovered" if r.recovered is False else "watching")
            t.add_row("↓ drop", f"{r.rate:,.4g}/s", "", "", "", "", "", "",
                      Text(f"{what} ({format_duration(r.watched_s)} watched)", style="dim"))
    head = Text(("✓ " if doc.found else "✗ ") + doc.verdict, style="bold")
    return Group(Text("a step breaks on: " + ", ".join(doc.criteria), style="dim"), t, head)


class ResultsScreen(Screen):
    BINDINGS = [
        Binding("escape,d", "back", "dashboard"),
        Binding("e", "export", "export again"),
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
    ]
    AUTO_FOCUS = "#results"

    def __init__(self, controller) -> None:
        super().__init__()
        self.controller = controller

    def compose(self) -> ComposeResult:
        c = self.controller
        s = c.coord.session
        total = s.summary()

        def panel(renderable, id: str, title: str) -> Static:
            # titled here, not in on_mount: a query there can race the app's teardown
            widget = Static(renderable, id=id)
            widget.border_title = title
            return widget

        with VerticalScroll(id="results"):
            yield Static(verdict(s), id="verdict")
            yield Static(written_text(c), id="written")
            with Horizontal(id="results-top"):
                yield panel(overview(s, c.shown_target), "overview", "summary")
                yield panel(thresholds_renderable([threshold_label(t) for t in c.plan.thresholds], s.threshold_results,
                                                  slos=s.slo_results),
                            "results-thresholds", "thresholds")
            if s.find_limit is not None:
                yield panel(limit_table(s.find_limit), "results-limit", "breaking point")
            yield panel(latency_table(None, total, live=False), "results-latency", "latency, whole run")
            if s.benchmark:
                yield panel(benchmark_renderable(s), "results-endpoints", "benchmark")
            else:
                yield panel(endpoints_table(s), "results-endpoints", "endpoints")
            stages = stages_renderable(s)
            if stages is not None:
                yield panel(stages, "results-stages", "setup and teardown")
            if c.protocols:
                yield panel(protocols_renderable(s.protocol_summary(), 30), "results-protocols", "protocols")
            monitor = monitor_renderable(s)
            if monitor is not None:
                yield panel(monitor, "results-monitor", "target and load generator")
            with Horizontal(id="results-charts"):
                yield RateChart(id="results-rate")
                yield LatencyChart(id="results-latency-chart")
                yield ErrorChart(id="results-errors")
            yield panel(Group(*[Text.assemble((f"{clock(e.t):>8}  ", "dim"), (f"{e.kind:<11}", "bold"), e.message)
                                for e in s.events[-12:]]), "results-events", "events (latest)")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        s = self.controller.coord.session
        for chart in self.query(TimelineChart):
            chart.call_after_refresh(chart.draw, s.timeline, s.events)

    def action_back(self) -> None:
        self.dismiss()

    def action_export(self) -> None:
        try:
            path = self.controller.export()
        except OSError:
            self.notify(self.controller.write_error, severity="error")
            return
        self.query_one("#written", Static).update(written_text(self.controller))
        self.notify(f"session exported to {path}", title="export")

    def action_quit(self) -> None:
        self.app.exit()

    def action_help(self) -> None:
        from perftui.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(key_help(self.controller.remote)))
