"""HeaderBar: plan, target, run state, current phase (elapsed / remaining), overall elapsed; an
``attached`` badge and the session id when the run goes on in another process.

Drawn from ``RunView.header`` (``perftui.ui.view.HeaderView``) every refresh tick: the clocks
move between data versions.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from perftui.ui.format import fmt_pct, fmt_rate
from perftui.ui.view import HeaderView, PhasesView, phase_rest, planned_total
from perftui.ui.widgets.base import LivePanel
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


def phase_text(p: PhasesView | None) -> Text:
    t = Text()
    if p is None:
        return t
    specs = p.specs
    bench = bool(specs) and specs[0].kind == "benchmark"  # a benchmark plan: its phases end with their samples
    if p.state == "idle" or not p.started:
        t.append(f"{len(specs)} benchmark{'s' if len(specs) != 1 else ''}" if bench else
                 f"{len(specs)} phase{'s' if len(specs) != 1 else ''} · {format_duration(planned_total(specs))} planned",
                 "dim")
        return t
    spec = p.current
    if spec is None or p.state == "finished":
        return t
    if p.limit is not None:  # a breaking-point search: its step, not its open-ended phase
        step = p.limit.cells[-1] if p.limit.cells else None
        t.append("find limit ", "bold")
        if step is not None:
            t.append(f" step {step.number} · {step.rate:,.4g}/s · {step.verdict}")
            if step.recovery.startswith("recovering"):
                t.append(f" · {step.recovery}", "dim")
        return t
    el = p.current_elapsed
    left = max(0.0, spec.duration - el)
    t.append(f"phase {p.index + 1}/{len(specs)} ", "dim")
    t.append(spec.name, "bold")
    if bench:
        t.append(f"  {format_duration(el)}  {spec.describe()}")
        return t
    t.append(f"  {format_duration(el)} / {format_duration(spec.duration)}")
    t.append(f"  {format_duration(left)} left", "dim")
    return t


def elapsed_text(h: HeaderView) -> Text:
    if h.run_elapsed is None:
        return Text("")
    t = Text("elapsed ", "dim")
    t.append(format_duration(h.run_elapsed), "bold")
    p = h.phases
    if p is not None and p.active and p.current is not None and p.current.kind != "benchmark" and p.limit is None:
        t.append(f"  ~{format_duration(phase_rest(p))} to go", "dim")
    return t


def headline_text(h: HeaderView) -> Text:
    """The numbers that matter, in one line for narrow terminals (the panels that hold them
    are below the fold at 80x24): requests/s against the target, p50/p95/p99 and errors over the
    last 10 s, and the run's error count."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if h.headline is None:
        return t
    window, total, row = h.headline.window, h.headline.total, h.headline.last_row
    active = h.phases is not None and h.phases.active
    t.append(" req ", "dim")
    t.append(fmt_rate(window.rps if window.requests else 0.0), "bold")
    if row is not None and active and (row.target_vus or row.target_rps):
        # like with like: iterations started against the arrival target (an iteration may send
        # several requests), VUs against the VU target
        if row.target_vus:
            t.append("  VUs ", "dim")
            t.append(f"{row.target_vus}")
        else:
            t.append("  iter ", "dim")
            t.append(f"{fmt_rate(row.started_rps)} of {fmt_rate(h.headline.asked_rps)}")
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


def header_renderable(h: HeaderView, width: int) -> Table | Group:
    title = Text()
    title.append(" perftui ", "bold reverse")
    if h.attached_id is not None:
        title.append(" attached ", "bold black on medium_purple1")
        title.append(f" {h.attached_id}", "dim")
    title.append(" ")
    title.append(h.plan_name, "bold")
    if h.profile:
        title.append(f" [{h.profile}]", "bold cyan")
    title.append(" → ", "dim")
    title.append(h.target)
    status = Text()
    status.append(f" {h.word.upper()} ", STATE_STYLES.get(h.word, "reverse"))
    if h.detail:
        status.append(f" {h.detail}", "red" if h.word == "error" else "italic")
    # badges visible at any terminal size
    if h.target_down:
        status.append(" ")
        status.append(" TARGET DOWN ", "bold white on red3")
    if h.limited:
        status.append(" ")
        status.append(" ⚠ PERFTUI-LIMITED ", "bold black on dark_orange")
    phase = phase_text(h.phases)
    if phase:
        status.append("   ")
        status.append_text(phase)
    elapsed = elapsed_text(h)
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
            return Group(grid, headline_text(h))
    return grid


NARROW = 100
"""Below this many columns the number panels are below the fold: the header adds a headline."""


class HeaderBar(LivePanel):
    """One line at 140+ columns, two below, three (with the headline numbers) below 100."""

    def show_view(self, h: HeaderView) -> None:
        width = self.size.width or 160
        key = (width >= 140, h.word, h.detail, h.target, h.plan_name, h.profile, h.attached_id,
               str(phase_text(h.phases)), str(elapsed_text(h)), h.phases.index if h.phases else None,
               (h.target_down, h.limited), str(headline_text(h)) if width < NARROW else "")
        self.show(key, lambda: header_renderable(h, width))
