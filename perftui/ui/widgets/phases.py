"""PhaseStrip: every phase in order, the current one highlighted, planned vs actual timing.

Drawn from ``RunView.phases`` (``perftui.ui.view.PhasesView``) every refresh tick."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from perftui.ui.format import ellipsize
from perftui.ui.view import PhasesView
from perftui.ui.widgets.base import LivePanel
from perftui.units import format_duration

MIN_CELL = 16


def phase_cells(specs, records, index: int, current_elapsed: float, started: bool, finished: bool):
    """One (title, timing, progress fraction, role) per phase; role is done|current|next|skipped."""
    cells = []
    for i, (spec, rec) in enumerate(zip(specs, records)):
        planned = format_duration(spec.duration)
        if started and not finished and i == index:
            role = "current"
            frac = min(1.0, current_elapsed / spec.duration) if spec.duration else 1.0
            timing = f"{format_duration(current_elapsed)} of {planned}"
        elif rec.start is not None and rec.end is not None:
            role = "skipped" if rec.skipped else "done"
            actual = format_duration(max(0.0, rec.end - rec.start))
            frac = 1.0 if not rec.skipped else min(1.0, (rec.end - rec.start) / spec.duration if spec.duration else 1.0)
            timing = f"{actual} of {planned}" + (" skipped" if rec.skipped else "")
        else:
            role = "next"
            frac = 0.0
            timing = planned
        cells.append((f"{i + 1} {spec.name}", spec.describe(), timing, frac, role))
    return cells


ROLE_STYLE = {"current": "bold black on grey85", "done": "", "skipped": "dim", "next": "dim"}
ROLE_MARK = {"current": "▶ ", "done": "✓ ", "skipped": "↷ ", "next": "  "}


def strip_renderable(cells, index: int, width: int, rows: int):
    """A row of equal-width cells; when they do not fit, a window around the current phase."""
    n = len(cells)
    fit = max(1, width // MIN_CELL)
    lo, hi = 0, n
    if n > fit:
        lo = max(0, min(index - fit // 2, n - fit))
        hi = lo + fit
    table = Table.grid(expand=True, padding=(0, 0))
    shown = cells[lo:hi]
    for _ in shown:
        table.add_column(ratio=1, no_wrap=True)
    row = []
    cell_w = max(4, width // max(1, len(shown)) - 2)
    for j, (title, target, timing, frac, role) in enumerate(shown):
        i = lo + j
        head = Text(ROLE_MARK[role] + ellipsize(title, cell_w - 2), style="bold" if role == "current" else "")
        if i == lo and lo > 0:
            head = Text("… ") + head
        if i == hi - 1 and hi < n:
            head.append(" …")
        lines = [head]
        if rows >= 2:
            lines.append(Text(ellipsize(f"{target} · {timing}", cell_w), style="" if role == "current" else "dim"))
        if rows >= 3:
            lines.append(ProgressBar(total=1.0, completed=frac, width=None,
                                     complete_style="green3" if role != "skipped" else "grey50",
                                     finished_style="green3" if role != "skipped" else "grey50",
                                     style="grey23"))
        row.append(Padding(Group(*lines), (0, 1), style=ROLE_STYLE[role], expand=True))
    table.add_row(*row)
    return table


class PhaseStrip(LivePanel):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "phases"

    def show_view(self, p: PhasesView | None) -> None:
        if p is None:
            self.show(("none",), lambda: Text("loading phases…", style="dim"))
            return
        width = self.content_size.width or 150
        rows = max(1, self.content_size.height or 3)
        cells = phase_cells(p.specs, p.records, p.index, p.current_elapsed, p.started, p.ended)
        key = (width, rows, p.index, tuple((t, g, round(f, 2), r) for _, t, g, f, r in cells))
        self.show(key, lambda: strip_renderable(cells, p.index, width, rows))
