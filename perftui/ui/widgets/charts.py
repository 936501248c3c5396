"""Time-series charts over the session timeline (textual-plotext), with event markers.

``RateChart`` (target vs achieved), ``LatencyChart`` (p50/p95/p99) and ``ErrorChart`` (error
rate) share ``TimelineChart``: x is seconds since the run started; phase changes and annotations
are vertical lines, other control actions (pause, resume, rate, export, stop) small ticks along
the bottom. The colour key lives in the border title, so no legend ever covers the data. Colours
are xterm-256 indices, which survive a 256-colour terminal unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color as RichColor
from textual_plotext import PlotextPlot

from perftui.session import Event, TimelineRow
from perftui.units import format_duration

# xterm-256 colour indices (plotext takes ints; Rich markup says color(N)).
TARGET = 250
ACHIEVED = 39
VUS = 141
P50 = 78
P95 = 214
P99 = 203
ERRORS = 196
PHASE_MARK = 111
NOTE_MARK = 220
CONTROL_MARK = 244

CONTROL_GLYPHS = {"pause": "‖", "resume": "▸", "rate": "↕", "vus": "↕", "export": "⤓", "stop": "■"}


def hex_of(index: int) -> str:
    """An xterm-256 colour as #rrggbb, for Textual markup (border titles)."""
    return RichColor.from_ansi(index).get_truecolor().hex


def key_markup(*items: tuple[str, int]) -> str:
    return "  ".join(f"[{hex_of(c)}]━[/] {label}" for label, c in items)


def downsample(rows: Sequence[TimelineRow], max_points: int) -> list[TimelineRow]:
    """Keep at most ``max_points`` rows, evenly spaced (the last row always kept)."""
    n = len(rows)
    if n <= max_points or max_points < 2:
        return list(rows)
    step = n / max_points
    out = [rows[int(i * step)] for i in range(max_points - 1)]
    out.append(rows[-1])
    return out


def time_ticks(span: float, width: int) -> tuple[list[float], list[str]]:
    """About one labelled tick per 14 columns, at round seconds."""
    n = max(2, min(8, width // 14))
    raw = span / n
    for nice in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if nice >= raw:
            step = nice
            break
    else:
        step = 3600 * max(1, round(raw / 3600))
    ticks = [i * step for i in range(int(span // step) + 1)]
    return ticks, [format_duration(t) if t else "0" for t in ticks]


class TimelineChart(PlotextPlot):
    """Base: subclasses implement ``series(rows)`` -> list of (xs, ys, colour) and ``y_range``."""

    TITLE = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._drawn_key: object = None

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self.TITLE
        self.border_subtitle = self.key()

    def key(self) -> str:
        return ""

    def series(self, rows: list[TimelineRow]) -> list[tuple[list[float], list[float], int]]:
        raise NotImplementedError

    def y_range(self, rows: list[TimelineRow], top: float) -> tuple[float, float]:
        return 0.0, max(1.0, top * 1.1)

    def y_label(self, value: float, top: float) -> str:
        return f"{value:,.0f}" if top >= 10 else f"{value:.1f}"

    def draw(self, timeline: Sequence[TimelineRow], events: Sequence[Event], *, span_hint: float = 0.0) -> bool:
        """Redraw from the whole timeline; returns False (and does nothing) if nothing changed."""
        width, height = self.size
        key = (len(timeline), timeline[-1].t if timeline else None, len(events), width, height, span_hint)
        if key == self._drawn_key:
            return False
        self._drawn_key = key
        plt = self.plt
        plt.clear_figure()
        # The theme sets the canvas colour that text labels take as their background; set it
        # before drawing (textual-plotext would only apply it at render time).
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.frame(False)
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        rows = downsample(timeline, max(2, 2 * max(10, width - 10)))
        span = max(10.0, span_hint, rows[-1].t if rows else 0.0)
        top = 0.0
        for xs, ys, colour in self.series(rows):
            if xs:
                plt.plot(xs, ys, marker="braille", color=colour)
                top = max(top, max(ys))
        lo, hi = self.y_range(rows, top)
        plt.xlim(0, span)
        plt.ylim(lo, hi)
        ticks, labels = time_ticks(span, width)
        plt.xticks(ticks, labels)
        yt = [lo + (hi - lo) * f for f in (0.0, 0.5, 1.0)] if height >= 7 else [lo, hi]
        plt.yticks(yt, [self.y_label(v, hi) for v in yt])
        self.mark_events(events, lo, hi)
        self.refresh()
        return True

    def mark_events(self, events: Sequence[Event], lo: float, hi: float) -> None:
        plt = self.plt
        for ev in events:
            if ev.t < 0:
                continue
            if ev.kind == "phase":
                if ev.t >= 0.5:  # the first phase starts with the run: no line needed
                    plt.vline(ev.t, PHASE_MARK)
            elif ev.kind == "annotation":
                plt.vline(ev.t, NOTE_MARK)
            elif ev.kind in CONTROL_GLYPHS:
                plt.text(CONTROL_GLYPHS[ev.kind], ev.t, lo, color=CONTROL_MARK, alignment="center")


class RateChart(TimelineChart):
    TITLE = "load: target vs achieved"

    def key(self) -> str:
        return key_markup(("target arrivals/s", TARGET), ("requests/s", ACHIEVED), ("VUs", VUS)) + \
            f"  [{hex_of(PHASE_MARK)}]│[/]phase [{hex_of(NOTE_MARK)}]│[/]note"

    def series(self, rows):
        xs = [r.t for r in rows]
        out = [(xs, [r.target_rps for r in rows], TARGET), (xs, [r.rps for r in rows], ACHIEVED)]
        if any(r.target_vus for r in rows):
            out.append((xs, [float(r.target_vus) for r in rows], VUS))
        return out

    def mark_events(self, events, lo, hi) -> None:
        super().mark_events(events, lo, hi)
        for ev in events:
            if ev.kind == "annotation" and ev.t >= 0:
                self.plt.text(" " + ev.message[:24], ev.t, hi * 0.93, color=NOTE_MARK, alignment="left")


class LatencyChart(TimelineChart):
    TITLE = "latency (ms, from intended start)"

    def key(self) -> str:
        return key_markup(("p50", P50), ("p95", P95), ("p99", P99))

    def series(self, rows):
        out = []
        for attr, colour in (("p99_ms", P99), ("p95_ms", P95), ("p50_ms", P50)):
            pts = [(r.t, getattr(r, attr)) for r in rows if getattr(r, attr) is not None]
            out.append(([p[0] for p in pts], [p[1] for p in pts], colour))
        return out



class ErrorChart(TimelineChart):
    TITLE = "error rate (%)"

    def key(self) -> str:
        return key_markup(("errors", ERRORS))

    def series(self, rows):
        return [([r.t for r in rows], [r.error_rate * 100 for r in rows], ERRORS)]

    def y_range(self, rows, top):
        return 0.0, max(1.0, top * 1.15)

    def y_label(self, value: float, top: float) -> str:
        return f"{value:.0f}%" if top >= 10 else f"{value:.1f}%"


class PlanSketch(PlotextPlot):
    """The picker's mini chart of a plan's load over time: rate (open) and VUs (closed)."""

    def sketch(self, specs) -> None:
        self._specs = list(specs)
        self._draw()

    def on_resize(self) -> None:
        if getattr(self, "_specs", None) is not None:
            self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        # The theme sets the canvas colour that text labels take as their background; set it
        # before drawing (textual-plotext would only apply it at render time).
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.frame(False)
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        t = 0.0
        top = 1.0
        for spec in self._specs:
            t1 = t + spec.duration
            if spec.kind != "pause":
                colour = ACHIEVED if spec.kind == "open" else VUS
                plt.plot([t, t1], [spec.start_value, spec.end_value], marker="braille", color=colour)
                top = max(top, spec.start_value, spec.end_value)
            t = t1
        span = max(1.0, t)
        t = 0.0
        for spec in self._specs[:-1]:
            t += spec.duration
            plt.vline(t, PHASE_MARK)
        plt.xlim(0, span)
        plt.ylim(0, top * 1.15)
        width = self.size.width or 60
        ticks, labels = time_ticks(span, width)
        plt.xticks(ticks, labels)
        plt.yticks([0, top], ["0", f"{top:g}"])
        self.refresh()
