"""HeaderBar: plan, target, run state, current phase (elapsed / remaining), overall elapsed; an
``attached`` badge and the session id when the run goes on in another process."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from perftui.ui import controller as ctl
from perftui.ui.widgets.base import LivePanel
from perftui.ui.format import fmt_pct, fmt_rate
from perftui.units import format_duration, format_ms

STATE_STYLES = {
    "idle": "bold black on grey70",
    "running": "bold black on green3",
    "paused": "bold black on gold1",
    "finished": "bold white on dodger_blue3",
    "starting": "bold black on grey70",
    "stopping": "bold black on dark_orange",
    "error": "bold white on red3",
}


def run_state(c: ctl.RunController) -> tuple[str, str]:
    """(badge word, detail) for the header: the controller's own steps take precedence."""
    if c.status == ctl.FAILED:
        return "error", c.error
    if c.status == ctl.PREPARING:
        return "starting", "starting demo target…" if c.plan.target == "demo" else "resolving target…"
    if c.status == ctl.LAUNCHING:
        return "starting", "starting workers…"
    if c.status == ctl.STOPPING:
        return "stopping", "waiting for in-flight requests…"
    state = c.state
    if c.ended and state != "finished":  # an attached viewer that lost its connection
        return "finished", c.coord.session.end_reason or "finished"
    if state == "idle":
        return "idle", "press s to start"
    if state == "finished":
        s = c.coord.session
        return "finished", s.end_reason or "finished"
    return state, ""


def phase_text(c: ctl.RunController) -> Text:
    coord = c.coord
    t = Text()
    if coord is None:
        return t
    specs = coord.specs
    total = sum(s.duration for s in specs)
    if c.state == "idle" or not c.started:
        t.append(f"{len(specs)} phase{'s' if len(specs) != 1 else ''} · {format_duration(total)} planned", "dim")
        return t
    spec = coord.current
    if spec is None or c.state == "finished":
        return t
    el = coord.current_phase_elapsed()
    left = max(0.0, spec.duration - el)
    t.append(f"phase {coord.phase_index + 1}/{len(specs)} ", "dim")
    t.append(spec.name, "bold")
    t.append(f"  {format_duration(el)} / {format_duration(spec.duration)}")
    t.append(f"  {format_duration(left)} left", "dim")
    return t


def elapsed_text(c: ctl.RunController) -> Text:
    coord = c.coord
    if coord is None or not c.started:
        return Text("")
    s = coord.session
    el = s.run_seconds() if c.ended else s.elapsed()
    t = Text("elapsed ", "dim")
    t.append(format_duration(el), "bold")
    if c.active and coord.current is not None:
        rest = max(0.0, coord.current.duration - coord.current_phase_elapsed())
        rest += sum(sp.duration for sp in coord.specs[coord.phase_index + 1:])
        t.append(f"  ~{format_duration(rest)} to go", "dim")
    return t


def headline_text(c: ctl.RunController) -> Text:
    """The numbers that matter, in one line for narrow terminals (the panels that hold them
    are below the fold at 80x24): requests/s against the target, p50/p95/p99 and errors over the
    last 10 s, and the run's error count."""
    coord = c.coord
    t = Text(no_wrap=True, overflow="ellipsis")
    if coord is None or not c.started:
        return t
    s = coord.session
    window = s.window_summary()
    total = s.summary()
    row = s.timeline[-1] if s.timeline else None
    t.append(" req ", "dim")
    t.append(fmt_rate(window.rps if window.requests else 0.0), "bold")
    if row is not None and c.active and (row.target_vus or row.target_rps):
        # like with like: iterations started against the arrival target (an iteration may send
        # several requests), VUs against the VU target
        if row.target_vus:
            t.append("  VUs ", "dim")
            t.append(f"{row.target_vus}")
        else:
            t.append("  iter ", "dim")
            t.append(f"{fmt_rate(row.started_rps)} of {row.target_rps:,.4g}/s")
    lat = window.latency_ms
    t.append("  ", "dim")
    for name in ("p50", "p95", "p99"):
        t.append(f"{name} ", "dim")
        t.append(format_ms(getattr(lat, name)) + " ", "bold")
    t.append(" err ", "dim")
    t.append(fmt_pct(window.error_rate if window.requests else None),
             "bold red" if window.requests and window.error_rate else "bold")
    if total.errors:
        t.append(f" ({total.errors:,})", "red")
    return t


def alerts(c: ctl.RunController) -> tuple[bool, bool]:
    """(a health URL is down, perftui itself is the bottleneck right now): badges in the header,
    visible at any terminal size."""
    if c.coord is None or not c.started:
        return False, False
    mon = c.coord.session.monitor
    return mon.any_down, bool(mon.generator_warning) and not c.ended


def header_renderable(c: ctl.RunController, width: int) -> Table | Group:
    word, detail = run_state(c)
    title = Text()
    title.append(" perftui ", "bold reverse")
    if c.remote:
        title.append(" attached ", "bold black on medium_purple1")
        title.append(f" {c.coord.session.id}", "dim")
    title.append(" ")
    title.append(c.plan.name or "plan", "bold")
    title.append(" → ", "dim")
    target = c.shown_target
    title.append(target)
    status = Text()
    status.append(f" {word.upper()} ", STATE_STYLES.get(word, "reverse"))
    if detail:
        status.append(f" {detail}", "red" if word == "error" else "italic")
    down, limited = alerts(c)
    if down:
        status.append(" ")
        status.append(" TARGET DOWN ", "bold white on red3")
    if limited:
        status.append(" ")
        status.append(" ⚠ PERFTUI-LIMITED ", "bold black on dark_orange")
    phase = phase_text(c)
    if phase:
        status.append("   ")
        status.append_text(phase)
    elapsed = elapsed_text(c)
    grid = Table.grid(expand=True, padding=(0, 2))
    if width >= 140:
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="center")
        grid.add_column(no_wrap=True, justify="right", min_width=28)
        grid.add_row(title, status, elapsed)
    else:
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(title, elapsed)
        grid.add_row(status, "")
        if width < NARROW:
            return Group(grid, headline_text(c))
    return grid


NARROW = 100
"""Below this many columns the number panels are below the fold: the header adds a headline."""


class HeaderBar(LivePanel):
    """One line at 140+ columns, two below, three (with the headline numbers) below 100."""

    def show_run(self, c: ctl.RunController) -> None:
        width = self.size.width or 160
        word, detail = run_state(c)
        coord = c.coord
        key = (width >= 140, word, detail, c.shown_target,
               str(phase_text(c)), str(elapsed_text(c)), coord.phase_index if coord else None, alerts(c),
               str(headline_text(c)) if width < NARROW else "")
        self.show(key, lambda: header_renderable(c, width))
