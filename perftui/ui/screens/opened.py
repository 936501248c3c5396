"""``perftui open ID|FILE``: a saved session document (finished, recovered or exported) in the
dashboard's results view, called by ``perftui.sessions.cmd_open``.

The screen reads the decoded ``SessionDocument`` only (no run, no controller): the run's summary
and full-run charts, and a cursor over the timeline (left/right one row, home/end; shift+left/right
select a span), drawn as vertical lines on the charts, whose panels show that row or span: rate
against the target, percentiles, errors, late/dropped, in flight, the target's health, metrics and
SUT process from the row's monitor data, and the endpoints table from the row's per-endpoint
figures (``TimelineRow.endpoints``; ``w`` shows the whole run's instead). A span is its rows merged
as the timeline merges them on long runs (``merge_rows``: counts add, percentiles the worst row's).
Documents of schema version 1 have no per-endpoint rows: their endpoints table is the whole run's.
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
from perftui.session.schema import SessionDocument, TimelineRow, merge_rows
from perftui.ui.format import fmt_pct, fmt_rate
from perftui.ui.screens.results import clock, limit_table
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


def row_panel(row: TimelineRow, index: int, count: int, resolution: float, *, first: int | None = None,
              first_t: float | None = None) -> Table:
    """What the run did in one timeline row (the cursor's second), or in the rows ``first`` (which
    ends at ``first_t``) to ``index`` merged into ``row``."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    if first is not None and first_t is not None and first < index:
        span = f"{clock(max(0.0, first_t - resolution))}–{clock(row.t)}"
        t.add_row("span", Text(f"{span}  (rows {first + 1}–{index + 1} of {count}, phase {row.phase}; "
                               "percentiles: the worst row's)", style="bold"))
    else:
        span = f"{clock(max(0.0, row.t - resolution))}–{clock(row.t)}"
        t.add_row("second", Text(f"{span}  (row {index + 1} of {count}, phase {row.phase})", style="bold"))
    target = (f"target {fmt_rate(row.target_rps)}" if row.target_rps else
              f"target {row.target_vus} VUs" if row.target_vus else "no load asked")  # (stopping, a pause)
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


def has_endpoint_rows(doc: SessionDocument) -> bool:
    """The timeline has per-endpoint figures (schema version 2 and later, with requests)."""
    return any(r.endpoints for r in doc.timeline)


def cursor_endpoints_table(doc: SessionDocument, row: TimelineRow) -> Table:
    """The endpoints in one row (or a merged span): requests, rate, errors, p50/p95/p99 there,
    and the whole run's p95 beside them. Rows keep their busiest ``ENDPOINTS_PER_ROW`` endpoints:
    the others' requests are one line at the end."""
    t = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    t.add_column("endpoint", ratio=1, overflow="ellipsis", no_wrap=True)
    for col in ("requests", "rps", "err %", "p50", "p95", "p99", "run p95"):
        t.add_column(col, justify="right", no_wrap=True)
    points = row.endpoints
    rest = row.requests - sum(p.requests for p in points.values())
    rest_errors = row.errors - sum(p.errors for p in points.values())
    known = {e.name: e for e in doc.endpoints}
    names = [e.name for e in sorted(doc.endpoints, key=lambda e: -e.requests)]
    names += [n for n in points if n not in known]
    for name in names:
        e = known.get(name)
        label = endpoint_label(name, e.protocol if e else "")
        run_p95 = Text(_ms(e.latency_ms.p95 if e else None), style="dim")
        p = points.get(name)
        if p is None:
            # not in the row: idle then, or (when the row kept only its busiest) among the rest
            label.stylize("dim")
            t.add_row(label, "…" if rest > 0 else "0", "", "", "—", "—", "—", run_p95)
            continue
        rps = row.rps * p.requests / row.requests if row.requests else 0.0
        rate = p.errors / p.requests if p.requests else 0.0
        t.add_row(label, f"{p.requests:,}", fmt_rate(rps), Text(fmt_pct(rate), style="red" if p.errors else ""),
                  _ms(p.p50_ms), _ms(p.p95_ms), _ms(p.p99_ms), run_p95)
    if rest > 0:
        t.add_row(Text("… endpoints not kept in this row", style="dim italic"), f"{rest:,}",
                  fmt_rate(row.rps * rest / row.requests if row.requests else 0.0),
                  Text(fmt_pct(rest_errors / rest), style="red" if rest_errors else ""), "", "", "", "")
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
        Binding("shift+left", "extend(-1)", "span", show=False),
        Binding("shift+right", "extend(1)", "span", show=False),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("w", "whole", "whole run / cursor"),
        Binding("escape", "clear_or_quit", "quit", show=False),
        Binding("q", "quit", "quit"),
    ]
    AUTO_FOCUS = "#opened"

    def __init__(self, doc: SessionDocument, path: Path) -> None:
        super().__init__()
        self.doc = doc
        self.path = path
        self.cursor = max(0, len(doc.timeline) - 1)
        self.anchor: int | None = None
        """The other end of a selected span (shift+arrows); None: the cursor's row alone."""
        self.per_endpoint = has_endpoint_rows(doc)
        self.whole_run = not self.per_endpoint
        """The endpoints table shows the whole run (``w``), not the cursor's row."""

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
            if d.find_limit is not None:  # as the results view after the run showed it
                yield panel(limit_table(d.find_limit), "results-limit", "breaking point")
            yield panel(latency_table(None, d.summary, live=False), "results-latency", "latency, whole run")
            yield panel(self._endpoints(), "results-endpoints", self._endpoints_title())
        yield Footer(compact=True)

    def _span(self) -> tuple[int, int]:
        """First and last row of what the panels show."""
        if self.anchor is None:
            return self.cursor, self.cursor
        return min(self.anchor, self.cursor), max(self.anchor, self.cursor)

    def _selected(self) -> TimelineRow:
        lo, hi = self._span()
        rows = self.doc.timeline
        return rows[lo] if lo == hi else merge_rows(rows[lo:hi + 1])

    def _row(self):
        rows = self.doc.timeline
        if not rows:
            return Text("the session has no timeline rows", style="dim")
        lo, hi = self._span()
        return row_panel(self._selected(), hi, len(rows), self.doc.timeline_resolution_s,
                         first=lo, first_t=rows[lo].t)

    def _endpoints(self):
        if self.whole_run or not self.doc.timeline:
            return endpoints_table(self.doc)
        return cursor_endpoints_table(self.doc, self._selected())

    def _endpoints_title(self) -> str:
        if not self.per_endpoint:
            return "endpoints, whole run (this session has no per-second endpoint figures)"
        if self.whole_run:
            return "endpoints, whole run  w: at the cursor"
        lo, hi = self._span()
        rows = self.doc.timeline
        start = max(0.0, rows[lo].t - self.doc.timeline_resolution_s)
        return f"endpoints {clock(start)}–{clock(rows[hi].t)}  w: whole run"

    def _health(self):
        rows = self.doc.timeline
        return health_panel(self._selected()) if rows else Text("")

    def _lines(self) -> tuple[float | None, float | None]:
        """Where the charts draw the cursor (and the span's start)."""
        rows = self.doc.timeline
        if not rows:
            return None, None
        lo, hi = self._span()
        return rows[hi].t, (max(0.0, rows[lo].t - self.doc.timeline_resolution_s) if lo < hi else None)

    def on_mount(self) -> None:
        for chart in self.query(TimelineChart):
            chart.cursor, chart.cursor_from = self._lines()
            chart.call_after_refresh(chart.draw, self.doc.timeline, self.doc.events)

    def _show(self) -> None:
        self.query_one("#opened-row", Static).update(self._row())
        self.query_one("#opened-health", Static).update(self._health())
        endpoints = self.query_one("#results-endpoints", Static)
        endpoints.update(self._endpoints())
        endpoints.border_title = self._endpoints_title()
        for chart in self.query(TimelineChart):  # the cursor as a vertical line on every chart
            chart.cursor, chart.cursor_from = self._lines()
            if chart._data is not None:
                chart.draw(*chart._data)

    def action_move(self, step: int) -> None:
        if self.doc.timeline:
            self.anchor = None
            self.cursor = min(len(self.doc.timeline) - 1, max(0, self.cursor + step))
            self._show()

    def action_extend(self, step: int) -> None:
        """Grow or shrink the span: the cursor moves, the other end stays."""
        if self.doc.timeline:
            if self.anchor is None:
                self.anchor = self.cursor
            self.cursor = min(len(self.doc.timeline) - 1, max(0, self.cursor + step))
            if self.anchor == self.cursor:
                self.anchor = None
            self._show()

    def action_jump(self, index: int) -> None:
        if self.doc.timeline:
            self.anchor = None
            self.cursor = index % len(self.doc.timeline)
            self._show()

    def action_whole(self) -> None:
        if self.per_endpoint:
            self.whole_run = not self.whole_run
            self._show()

    def action_clear_or_quit(self) -> None:
        if self.anchor is not None:
            self.anchor = None
            self._show()
        else:
            self.action_quit()

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
