"""EndpointsTable: per endpoint requests, recent rps, p50/p95/p99, error %; sortable; titled
"endpoints". Fed ``RunView.numbers.endpoints`` (``perftui.ui.view.EndpointRow``) by the dashboard.

An endpoint whose requests went over HTTP/2 carries its protocol (``h2``, ``h2c``) after its name;
HTTP/1.1 is the unmarked default.

``o`` (on the dashboard) cycles the sort column; clicking a header sorts by it (again: reverse).
Rows are updated cell by cell; they are re-added only when the order or the set changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from perftui.ui.format import ellipsize, fmt_pct
from perftui.ui.view import EndpointRow
from perftui.units import format_ms

# (column key, label, width, sort value of an EndpointRow, default descending); width 0: the rest
COLUMNS = (
    ("name", "endpoint", 0, lambda r: r.name.lower(), False),
    ("requests", "requests", 9, lambda r: r.requests, True),
    ("rps", "rps 10s", 8, lambda r: r.rps, True),
    ("p50", "p50", 7, lambda r: r.p50 or 0.0, True),
    ("p95", "p95", 7, lambda r: r.p95 or 0.0, True),
    ("p99", "p99", 7, lambda r: r.p99 or 0.0, True),
    ("errors", "err %", 6, lambda r: r.error_rate, True),
)


def row_cells(r: EndpointRow, name_width: int) -> list:
    err = Text(fmt_pct(r.error_rate), style="red" if r.error_rate else "", justify="right")
    return [endpoint_label(r.name, r.protocol, name_width),  # Text, not markup: names may hold [brackets]
            Text(f"{r.requests:,}", justify="right"), Text(f"{r.rps:,.1f}", justify="right"),
            Text(format_ms(r.p50), justify="right"), Text(format_ms(r.p95), justify="right"),
            Text(format_ms(r.p99), justify="right"), err]


def endpoint_label(name: str, protocol: str, width: int | None = None) -> Text:
    """The endpoint's name, followed by its protocol (dim) unless that is HTTP/1.1."""
    if not protocol or protocol == "http/1.1":
        return Text(ellipsize(name, width) if width is not None else name)
    tag = " " + protocol
    short = ellipsize(name, max(4, width - len(tag))) if width is not None else name
    return Text.assemble(short, (tag, "dim"))


class EndpointsTable(DataTable):
    COLUMNS = COLUMNS
    """(column key, label, width, sort value of a row, default descending); a subclass may show
    other rows (``perftui.ui.widgets.benchmark``)."""
    TITLE = "endpoints"
    MIN_NAME = 12

    def row_cells(self, r, name_width: int) -> list:
        return row_cells(r, name_width)

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.border_title = self.TITLE
        self.border_subtitle = "o: sort"
        self.sort_key = "requests"
        self.sort_reverse = True
        self._rows: list[EndpointRow] = []
        self._name_width = 0
        self._bound_render_caches()

    def _bound_render_caches(self, rows: int = 0) -> None:
        """DataTable keys its render caches by an update counter that moves with every cell
        update, so entries from earlier seconds are never read again yet stay until the LRU
        limits (1,000 rows/lines, 10,000 cells) evict them: with a table updated every second
        that was most of the dashboard's growth (~0.6 MB/min for ~15 min, then a plateau).
        Only the current generation is worth keeping: twice what the table holds (a 1,024-cell
        bound still took ~2 MB of rendered segments in a soak's first minutes)."""
        lines = 2 * (min(max(rows, 4), 64) + 1)  # a header and the rows, twice
        for name, size in (("_row_render_cache", lines), ("_cell_render_cache", lines * len(self.COLUMNS)),
                           ("_row_renderable_cache", lines), ("_line_cache", lines)):
            cache = getattr(self, name, None)
            if cache is not None and hasattr(cache, "maxsize"):
                cache.maxsize = size

    def on_mount(self) -> None:
        self._build_columns()

    def on_resize(self) -> None:
        if self._name_width != self._wanted_name_width():
            self._build_columns()
            self.show_rows(self._rows, force=True)

    def fixed_width(self) -> int:
        return sum(c[2] for c in self.COLUMNS) + 2 * len(self.COLUMNS)

    def _wanted_name_width(self) -> int:
        return max(self.MIN_NAME, (self.size.width or 100) - self.fixed_width() - 2)

    def _build_columns(self) -> None:
        self.clear(columns=True)
        self._name_width = self._wanted_name_width()
        for key, label, width, _, _ in self.COLUMNS:
            self.add_column(label, key=key, width=width or self._name_width)
        self._label_columns()

    # ---- sorting ----------------------------------------------------------------------

    def cycle_sort(self) -> str:
        i = [c[0] for c in self.COLUMNS].index(self.sort_key)
        self.set_sort(self.COLUMNS[(i + 1) % len(self.COLUMNS)][0])
        return self.sort_key

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = next(c[4] for c in self.COLUMNS if c[0] == key)
        self.sort_key, self.sort_reverse = key, reverse
        self._label_columns()
        self.show_rows(self._rows, force=True)

    def _label_columns(self) -> None:
        for key, label, _, _, _ in self.COLUMNS:
            col = self.columns.get(key)  # type: ignore[call-overload]
            if col is None:
                continue
            mark = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_key else ""
            col.label = Text(label + mark, style="bold" if mark else "")
        self.refresh()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key == self.sort_key:
            self.set_sort(key, not self.sort_reverse)
        else:
            self.set_sort(key)

    def sorted_rows(self, rows: list[EndpointRow]) -> list[EndpointRow]:
        value = next(c[3] for c in self.COLUMNS if c[0] == self.sort_key)
        return sorted(rows, key=lambda r: (value(r), r.name), reverse=self.sort_reverse)

    # ---- data -------------------------------------------------------------------------

    def show_rows(self, rows: Sequence[EndpointRow] | None, *, force: bool = False) -> None:
        """The rows of ``NumbersView.endpoints`` (None before the run: keep what is shown)."""
        if rows is None:
            return
        rows = list(rows)
        if rows == self._rows and not force:
            return
        old = {r.name: r for r in self._rows}
        self._rows = rows
        ordered = self.sorted_rows(rows)
        current_order = [str(k.value) for k in self.rows]
        if force or [r.name for r in ordered] != current_order:
            cursor_key = current_order[self.cursor_row] if 0 <= self.cursor_row < len(current_order) else None
            self.clear()
            self._bound_render_caches(len(ordered))
            for r in ordered:
                self.add_row(*self.row_cells(r, self._name_width), key=r.name)
            if cursor_key is not None and cursor_key in [r.name for r in ordered]:
                self.move_cursor(row=[r.name for r in ordered].index(cursor_key), animate=False)
            return
        for r in ordered:
            prev = old.get(r.name)
            if prev == r:
                continue
            for (key, *_), cell in zip(self.COLUMNS, self.row_cells(r, self._name_width)):
                self.update_cell(r.name, key, cell)
