"""BenchmarkTable: a benchmark plan's operations as the run takes their samples — samples taken
of those asked, errors, min, max, mean, median, p95, p99 (the table ``perftui run --headless``
prints at the end). Shown instead of the endpoints table; fed ``RunView.numbers.benchmark``
(``perftui.ui.view.BenchRow``). Sorts like the endpoints table (``o``, or a click on a header)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from perftui.stages_text import stage_lines
from perftui.ui.format import fmt_pct
from perftui.ui.view import BenchRow, bench_rows
from perftui.ui.widgets.endpoints import EndpointsTable, endpoint_label
from perftui.units import format_ms

COLUMNS = (
    ("name", "operation", 0, lambda r: r.order, False),
    ("requests", "samples", 11, lambda r: r.requests, True),
    ("min", "min", 6, lambda r: r.min or 0.0, True),
    ("max", "max", 6, lambda r: r.max or 0.0, True),
    ("mean", "mean", 6, lambda r: r.mean or 0.0, True),
    ("p50", "median", 6, lambda r: r.p50 or 0.0, True),
    ("p95", "p95", 6, lambda r: r.p95 or 0.0, True),
    ("p99", "p99", 6, lambda r: r.p99 or 0.0, True),
    ("errors", "err %", 5, lambda r: r.error_rate, True),
)
"""Sized so that every figure still shows at 80 columns (errors last: the errors panel has them too)."""


def bench_cells(r: BenchRow, name_width: int) -> list:
    samples = f"{r.requests:,}/{r.asked:,}" if r.asked else f"{r.requests:,}"
    done = r.asked and r.requests >= r.asked
    return [endpoint_label(r.name, r.protocol, name_width or None),
            Text(samples, style="green" if done else "", justify="right"),
            *(Text(format_ms(v), justify="right") for v in (r.min, r.max, r.mean, r.p50, r.p95, r.p99)),
            Text(fmt_pct(r.error_rate), style="red" if r.error_rate else "", justify="right")]


class BenchmarkTable(EndpointsTable):
    COLUMNS = COLUMNS
    TITLE = "benchmark"
    MIN_NAME = 10

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort_key, self.sort_reverse = "name", False  # plan order

    def row_cells(self, r, name_width: int) -> list:
        return bench_cells(r, name_width)


def benchmark_renderable(session) -> Table:
    """The benchmark table of a finished run (the results screen): one row per operation."""
    t = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    t.add_column("operation", ratio=1, overflow="ellipsis", no_wrap=True)
    for col in ("samples", "min", "max", "mean", "median", "p95", "p99", "err %"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in bench_rows(session.benchmark, session.endpoint_summaries()):
        t.add_row(*bench_cells(r, 0))
    return t


def stages_renderable(session) -> Text | None:
    """The setup's and teardown's outcome (results screen), None when the plan has neither."""
    lines = stage_lines(session.setup, session.teardown)
    return Text("\n".join(lines)) if lines else None
