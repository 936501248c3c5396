"""``perftui open ID|FILE``: a saved session document (finished, recovered or exported) in the
dashboard's results view, called by ``perftui.sessions.cmd_open``.

The screen reads the decoded ``SessionDocument`` only (no run, no controller): the run's summary
and full-run charts, and a cursor over the timeline (left/right one row, home/end), drawn as a
vertical line on the charts, whose panels show that row: rate against the target, percentiles, errors, late/dropped, in flight, and the
target's health, metrics and SUT process from the row's monitor data. Timeline rows have no
per-endpoint figures, so the endpoints table is the whole run's.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from perftui.errors import UserError
from perftui.session.schema import SessionDocument, TimelineRow
from perftui.ui.format import fmt_pct, fmt_rate
from perftui.ui.screens.results import clock
from perftui.ui.widgets.charts import ErrorChart, LatencyChart, RateChart, TimelineChart
from perftui.ui.widgets.endpoints import endpoint_label
from perftui.ui.widgets.tables import latency_table, summary_line
from perftui.units import format_duration, format_ms


def decode_document(doc: dict) -> SessionDocument:
    """``perftui.compare.load_document``'s dict as the typed document; UserError (exit 2) naming
    the file when a part does not fit the session format."""
    path = doc.get("_path", "session")
    body = {k: v for k, v in doc.items() if not k.startswith("_")}
    try:
        return msgspec.convert(body, SessionDocument)
    except msgspec.ValidationError as exc:
        raise UserError(f"{path}: not a readable perftui session document: {exc}") from None


def _ms(v: float | None) -> str:
    return "—" if v is None else format_ms(v)


def row_panel(row: TimelineRow, index: int, count: int, resolution: float) -> Table:
    """What the run did in one timeline row (the cursor's second)."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    span = f"{clock(max(0.0, row.t - resolution))}–{clock(row.t)}"
    t.add_row("second", Text(f"{span}  (row {index + 1} of {count}, phase {row.phase})", style="bold"))
    target = f"target {fmt_rate(row.target_rps)}" if row.target_rps else f"target {row.target_vus} VUs"
    t.add_row("rate", f"requests {fmt_rate(row.rps)} · started {fmt_rate(row.started_rps)} · {target}")
    t.add_row("latency", f"p50 {_ms(row.p50_ms)} · p95 {_ms(row.p95_ms)} · p99 {_ms(row.p99_ms)}")
    t.add_row("errors", Text(f"{row.errors:,} of {row.requests:,} requests ({fmt_pct(row.error_rate)})",
                             style="red" if row.errors else ""))
    t.add_row("late / dropped", f"{row.late_starts:,} late starts · {row.dropped:,} dropped · {row.queued:,} queued")
    t.add_row("in flight", f"{row.in_flight:,} · {row.vus:,} VUs · {row.open_connections:,} connections")
    t.add_row("generator", f"cpu {row.cpu_percent:.0f}% · loop lag {row.loop_lag_ms:.1f} ms"
              + (" · perftui-limited: suspect" if row.generator_limited else ""))
    return t


def health_panel(row: TimelineRow) -> Text:
    """The target at that moment, from the row's monitor data."""
    m = row.monitor
    out = Text()
    if m is None or not (m.health or m.metrics or m.sut):
        out.append("no target monitoring in this row", "dim")
        return out
    lines: list[Text] = []
    for url, h in m.health.items():
        line = Text(f"{url}  ")
        line.append("up" if h.up else "DOWN", "green" if h.up else "bold red")
        if h.status is not None:
            line.append(f"  {h.status}")
        if h.latency_ms is not None:
            line.append(f"  {format_ms(h.latency_ms)}")
        if h.state:
            line.append(f"  {h.state}")
        lines.append(line)
    for name, value in m.metrics.items():
        lines.append(Text(f"{name}  {value:,.4g}"))
    if m.sut:
        lines.append(Text("sut  " + " · ".join(f"{k} {v:,.4g}" for k, v in m.sut.items())))
    return Text("\n").join(lines)


def endpoints_table(doc: SessionDocument) -> Table:
    t = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    t.add_column("endpoint", ratio=1, overflow="ellipsis", no_wrap=True)
    for col in ("requests", "rps", "err %", "p50", "p95", "p99", "max"):
        t.add_column(col, justify="right", no_wrap=True)
    for e in sorted(doc.endpoints, key=lambda e: -e.requests):
        lat = e.latency_ms
        t.add_row(endpoint_label(e.name, e.protocol), f"{e.requests:,}", fmt_rate(e.rps),
                  Text(fmt_pct(e.error_rate), style="red" if e.errors else ""),
                  _ms(lat.p50), _ms(lat.p95), _ms(lat.p99), _ms(lat.max))
    return t


def header_text(doc: SessionDocument, path: Path) -> Text:
    t = Text()
    state = "recovered" if doc.recovered else "partial" if doc.partial else "completed"
    t.append(f" {doc.plan_name} ", "bold black on grey70")
    profile = doc.plan.get("profile") if isinstance(doc.plan, dict) else None
    if profile:
        t.append(f" [{profile}]", "bold cyan")
    ended = "" if doc.end_reason == state else f" · {doc.end_reason}"  # not "completed · completed"
    t.append(f"  {doc.id} · {state}{ended} · {format_duration(doc.duration_s)}  ")
    t.append(str(path), "dim")
    t.append("\n")
    t.append("requests  ", "dim")
    t.append(summary_line(doc.summary))
    return t


class SessionScreen(Screen):
    """A saved session; the cursor starts on the last row."""

    BINDINGS = [
        Binding("left", "move(-1)", "earlier"),
        Binding("right", "move(1)", "later"),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("q,escape", "quit", "quit"),
    ]
    AUTO_FOCUS = "#opened"

    def __init__(self, doc: SessionDocument, path: Path) -> None:
        super().__init__()
        self.doc = doc
        self.path = path
        self.cursor = max(0, len(doc.timeline) - 1)

    def compose(self) -> ComposeResult:
        d = self.doc

        def panel(renderable, id: str, title: str) -> Static:
            widget = Static(renderable, id=id)
            widget.border_title = title
            return widget

        with VerticalScroll(id="opened"):
            yield Static(header_text(d, self.path), id="opened-header")
            with Horizontal(id="results-top"):
                yield panel(self._row(), "opened-row", "at the cursor  ←/→")
                yield panel(self._health(), "opened-health", "target at the cursor")
            with Horizontal(id="results-charts"):
                yield RateChart(id="results-rate")
                yield LatencyChart(id="results-latency-chart")
                yield ErrorChart(id="results-errors")
            yield panel(latency_table(None, d.summary, live=False), "results-latency", "latency, whole run")
            yield panel(endpoints_table(d), "results-endpoints", "endpoints, whole run")
        yield Footer(compact=True)

    def _row(self):
        rows = self.doc.timeline
        if not rows:
            return Text("the session has no timeline rows", style="dim")
        return row_panel(rows[self.cursor], self.cursor, len(rows), self.doc.timeline_resolution_s)

    def _health(self):
        rows = self.doc.timeline
        return health_panel(rows[self.cursor]) if rows else Text("")

    def _cursor_t(self) -> float | None:
        rows = self.doc.timeline
        return rows[self.cursor].t if rows else None

    def on_mount(self) -> None:
        for chart in self.query(TimelineChart):
            chart.cursor = self._cursor_t()
            chart.call_after_refresh(chart.draw, self.doc.timeline, self.doc.events)

    def _show(self) -> None:
        self.query_one("#opened-row", Static).update(self._row())
        self.query_one("#opened-health", Static).update(self._health())
        for chart in self.query(TimelineChart):  # the cursor as a vertical line on every chart
            chart.cursor = self._cursor_t()
            if chart._data is not None:
                chart.draw(*chart._data)

    def action_move(self, step: int) -> None:
        if self.doc.timeline:
            self.cursor = min(len(self.doc.timeline) - 1, max(0, self.cursor + step))
            self._show()

    def action_jump(self, index: int) -> None:
        if self.doc.timeline:
            self.cursor = index % len(self.doc.timeline)
            self._show()

    def action_quit(self) -> None:
        self.app.exit(0)


class OpenApp(App[int]):
    CSS_PATH = "../perftui.tcss"
    TITLE = "perftui"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, doc: SessionDocument, path: Path) -> None:
        super().__init__()
        self.doc = doc
        self.path = path

    def on_mount(self) -> None:
        self.push_screen(SessionScreen(self.doc, self.path))


def run_open(doc: SessionDocument, path: Path) -> int:
    return OpenApp(doc, path).run() or 0
