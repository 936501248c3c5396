"""PhaseStrip: every phase in order, the current one highlighted, planned vs actual timing.

Drawn from ``RunView.phases`` (``perftui.ui.view.PhasesView``) every refresh tick."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from perftui.ui.format import ellipsize
from perftui.ui.view import LimitView, PhasesView
from perftui.ui.widgets.base import LivePanel
from perftui.units import format_duration, format_ms

MIN_CELL = 16


def phase_cells(specs, records, index: int, current_elapsed: float, started: bool, finished: bool):
    """One (title, timing, progress fraction, role) per phase; role is done|current|next|skipped."""
    cells = []
    for i, (spec, rec) in enumerate(zip(specs, records)):
        planned = format_duration(spec.duration, exact=True)  # (as the plan wrote it: 1.5s)
        if started and not finished and i == index:
            role = "current"
            frac = min(1.0, current_elapsed / spec.duration) if spec.duration else 1.0
            timing = f"{format_duration(current_elapsed)} of {planned}"
        elif rec.start is not None and rec.end is not None:
            role = "skipped" if rec.skipped else "done"
            actual = format_duration(max(0.0, rec.end - rec.start), exact=not rec.skipped)
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


LIMIT_MARK = {"held": "✓ ", "broke": "✗ ", "generator-limited": "! ", "measuring": "▶ ", "settling": "▶ ", "stopped": "■ "}
LIMIT_STYLE = {"held": "green3", "broke": "bold red1", "generator-limited": "bold yellow3", "stopped": "dim"}


def limit_cells(lv: LimitView) -> list[tuple[str, str, float, str, str]]:
    """(title, detail, progress, role, style) per step of a search, then the drop after a break."""
    out = []
    for c in lv.cells:
        live = c.verdict in ("measuring", "settling")
        title = f"{LIMIT_MARK.get(c.verdict, '  ')}{c.number} {c.rate:,.4g}/s"
        if c.verdict == "settling":
            detail = "settling"
        elif live:
            detail = f"measuring · p99 {format_ms(c.p99)}"
        elif c.verdict == "held":
            detail = f"held · p99 {format_ms(c.p99)}"
        elif c.verdict == "broke":
            detail = f"broke · {c.broke}"
        elif c.verdict == "generator-limited":
            detail = "perftui-limited · not the target"
        else:
            detail = c.verdict
        out.append((title, detail, c.progress if live else 1.0, "current" if live else "done", LIMIT_STYLE.get(c.verdict, "")))
        if c.recovery:
            role = "current" if c.recovery.startswith("recovering") else "done"
            out.append(("↓ drop", c.recovery, 1.0, role, "green3" if c.recovery.startswith("recovered") else ""))
    return out


def limit_title(lv: LimitView) -> str:
    if lv.state in ("done", "stopped") and lv.verdict:
        return ("✓ " if lv.found else "✗ ") + lv.verdict
    bits = []
    if lv.limit_rps is not None:
        bits.append(f"held {lv.limit_rps:,.4g}/s")
    if lv.broke_rps is not None:
        bits.append(f"broke {lv.broke_rps:,.4g}/s")
    return "searching" + (" · " + " · ".join(bits) if bits else "")


def limit_renderable(cells, width: int, rows: int):
    """The latest steps that fit, oldest on the left, as equal-width cells."""
    fit = max(1, width // MIN_CELL)
    shown = cells[-fit:]
    table = Table.grid(expand=True, padding=(0, 0))
    for _ in shown:
        table.add_column(ratio=1, no_wrap=True)
    cell_w = max(4, width // max(1, len(shown)) - 2)
    row = []
    for j, (title, detail, frac, role, style) in enumerate(shown):
        head = Text(ellipsize(title, cell_w), style=("bold " + style).strip() if role == "current" else style)
        if j == 0 and len(cells) > len(shown):
            head = Text("… ") + head
        lines = [head]
        if rows >= 2:
            lines.append(Text(ellipsize(detail, cell_w), style="" if role == "current" else "dim"))
        if rows >= 3:
            lines.append(ProgressBar(total=1.0, completed=frac, width=None, complete_style="green3",
                                     finished_style="grey50" if role != "current" else "green3", style="grey23"))
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
        if p.limit is not None:  # a breaking-point search: its steps instead of its one long phase
            lv = p.limit
            self.border_title = "find limit"
            self.border_subtitle = limit_title(lv)
            steps = limit_cells(lv)
            key = ("limit", width, rows, tuple((t, d, round(f, 2), r) for t, d, f, r, _ in steps), self.border_subtitle)
            self.show(key, lambda: limit_renderable(steps, width, rows) if steps else Text("starting…", style="dim"))
            return
        cells = phase_cells(p.specs, p.records, p.index, p.current_elapsed, p.started, p.ended)
        key = (width, rows, p.index, tuple((t, g, round(f, 2), r) for _, t, g, f, r in cells))
        self.show(key, lambda: strip_renderable(cells, p.index, width, rows))
