"""Time-series charts over the session timeline (textual-plotext), with event markers.

``RateChart`` (the load: iterations/s target vs started, VUs target vs active), ``LatencyChart``
(p50/p95/p99) and ``ErrorChart`` (throughput: requests/s, and the error rate on its own right-hand
axis) share ``TimelineChart``: each axis holds one unit, so requests/s never sit beside an arrival
target they are not comparable with (an iteration may send several requests); x is seconds since the run started; phase changes and annotations
are vertical lines, other control actions (pause, resume, rate, export, stop) small ticks along
the bottom; seconds in which perftui itself was the bottleneck (``generator_limited``: their
numbers are suspect) get a red band along the bottom of the load and latency charts. The colour
key lives in the border title, so no legend ever covers the data. Colours are xterm-256 indices,
which survive a 256-colour terminal unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color as RichColor
from textual_plotext import PlotextPlot

from perftui.session import Event, TimelineRow
from perftui.units import format_duration

# xterm-256 colour indices (plotext takes ints; Rich markup says color(N)).
TARGET = 250
STARTED = 78
ACHIEVED = 39
VUS = 141
P50 = 78
P95 = 214
P99 = 203
ERRORS = 196
PHASE_MARK = 111
NOTE_MARK = 220
CONTROL_MARK = 244
LIMITED = 160
BASELINE = 248
CURSOR = 15
"""``perftui open``'s cursor line: white."""
"""The baseline's p95 (``perftui run --baseline NAME``): grey, so it reads as a reference line."""
LIMITED_GLYPH = "▁"

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


def runs(rows: Sequence[TimelineRow], value) -> list[tuple[list[float], list[float]]]:
    """Contiguous stretches of rows where ``value(row)`` is not None, as (xs, ys): a series
    is drawn with gaps (a pause, a closed-model phase's missing rate target) instead of lines
    across them."""
    out: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    for r in rows:
        v = value(r)
        if v is None:
            if xs:
                out.append((xs, ys))
                xs, ys = [], []
            continue
        xs.append(r.t)
        ys.append(float(v))
    if xs:
        out.append((xs, ys))
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
    """Base: subclasses implement ``series(rows)`` -> list of (xs, ys, colour, y side) and may
    override ``y_range`` and ``y_label``. A right-hand axis appears when a series asks for it."""

    TITLE = ""
    MARK_LIMITED = False
    """Mark the seconds in which perftui itself was the bottleneck (``generator_limited``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._drawn_key: object = None
        self._data: tuple | None = None
        self._limited_shown = False
        self.cursor: float | None = None
        """A time to mark with a vertical line (``perftui open``'s cursor); None: no line."""
        self.cursor_from: float | None = None
        """The start of a selected span (``perftui open``): a second line; None: no span."""

    def on_resize(self) -> None:
        # ticks and downsampling depend on the size: redraw (the key includes the size)
        if self._data is not None:
            self.draw(*self._data)

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self.TITLE
        self.border_subtitle = self.key()

    def key(self) -> str:
        return ""

    def series(self, rows: list[TimelineRow]) -> list[tuple[list[float], list[float], int, str]]:
        raise NotImplementedError

    def y_range(self, rows: list[TimelineRow], top: float) -> tuple[float, float]:
        return 0.0, max(1.0, top * 1.1)

    def y_label(self, value: float, top: float, side: str = "left") -> str:
        return f"{value:,.0f}" if top >= 10 else f"{value:.1f}"

    def draw(self, timeline: Sequence[TimelineRow], events: Sequence[Event], span_hint: float = 0.0) -> bool:
        """Redraw from the whole timeline; returns False (and does nothing) if nothing changed."""
        self._data = (timeline, events, span_hint)
        width, height = self.size
        key = (len(timeline), timeline[-1].t if timeline else None, len(events), width, height, span_hint,
               self.cursor, self.cursor_from)
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
        rows = downsample(timeline, max(2, 2 * max(10, width - 10)))
        span = max(10.0, span_hint, rows[-1].t if rows else 0.0)
        top = {"left": 0.0, "right": 0.0}
        used = set()
        for xs, ys, colour, side in self.series(rows):
            if xs:
                plt.plot(xs, ys, marker="braille", color=colour, yside=side)
                top[side] = max(top[side], max(ys))
                used.add(side)
        right = "right" in used
        plt.yaxes(True, right)
        plt.xlim(0, span)
        ticks, labels = time_ticks(span, width)
        plt.xticks(ticks, labels)
        lo, hi = self.y_range(rows, top["left"])
        for side in ("left", "right") if right else ("left",):
            s_lo, s_hi = (lo, hi) if side == "left" else (0.0, max(1.0, top["right"] * 1.1))
            plt.ylim(s_lo, s_hi, yside=side)
            yt = [s_lo + (s_hi - s_lo) * f for f in (0.0, 0.5, 1.0)] if height >= 7 else [s_lo, s_hi]
            plt.yticks(yt, [self.y_label(v, s_hi, side) for v in yt], yside=side)
        self.mark_events(events, lo, hi)
        if self.cursor is not None:
            plt.vline(self.cursor, CURSOR)
        if self.cursor_from is not None:
            plt.vline(self.cursor_from, CURSOR)
        if self.MARK_LIMITED:
            self.mark_limited(rows, lo)
        if not timeline:
            plt.text("no data yet", span / 2, (lo + hi) / 2, color=CONTROL_MARK, alignment="center")
        self.refresh()
        return True

    def mark_limited(self, rows: Sequence[TimelineRow], lo: float) -> None:
        """A red band along the bottom under each stretch of generator-limited seconds (a row
        covers the second that ends at its ``t``)."""
        stretches = runs(rows, lambda r: lo if r.generator_limited else None)
        for xs, ys in stretches:
            xs = [max(0.0, xs[0] - 1.0)] + xs
            self.plt.plot(xs, [lo] * len(xs), marker=LIMITED_GLYPH, color=LIMITED)
        if stretches and not self._limited_shown:
            self._limited_shown = True
            self.border_title = self.TITLE + f"  [{hex_of(LIMITED)}]▬[/] [not bold]perftui-limited: suspect[/]"

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
    TITLE = "load: target vs achieved (iterations/s · VUs)"
    MARK_LIMITED = True

    def key(self) -> str:
        return key_markup(("target", TARGET), ("achieved", STARTED)) + \
            f"  [{hex_of(PHASE_MARK)}]│[/]phase [{hex_of(NOTE_MARK)}]│[/]note"

    def series(self, rows):
        # Like with like, one unit per axis: in open phases the arrival target and the iterations
        # actually started (left, iterations/s); in closed phases the VU target and the VUs
        # running (right). Requests/s are on the throughput chart: an iteration may send several
        # requests, and 57 requests/s beside a 20/s target read as a 3x overshoot.
        out = [(xs, ys, TARGET, "left") for xs, ys in runs(rows, lambda r: r.target_rps or None)]
        out += [(xs, ys, STARTED, "left") for xs, ys in runs(rows, lambda r: r.started_rps if r.target_rps else None)]
        # VUs take the right-hand axis beside a rate, the left one in a plan without open phases
        side = "right" if out else "left"
        out += [(xs, ys, TARGET, side) for xs, ys in runs(rows, lambda r: r.target_vus or None)]
        out += [(xs, ys, STARTED, side) for xs, ys in runs(rows, lambda r: r.vus if r.target_vus else None)]
        return out

    def mark_events(self, events, lo, hi) -> None:
        super().mark_events(events, lo, hi)
        for ev in events:
            if ev.kind == "annotation" and ev.t >= 0:
                self.plt.text(" " + ev.message[:24], ev.t, hi * 0.93, color=NOTE_MARK, alignment="left")


class LatencyChart(TimelineChart):
    TITLE = "latency (ms, from intended start)"
    MARK_LIMITED = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.baseline: list[tuple[float, float | None]] | None = None
        """(t, p95 ms) of the baseline run, drawn as a reference line: ``PerftuiApp.baseline_p95``."""
        self.baseline_name = ""

    def on_mount(self) -> None:
        app_baseline = getattr(self.app, "baseline_p95", None)
        if app_baseline:
            self.baseline = app_baseline
            self.baseline_name = getattr(self.app, "baseline_name", "") or "baseline"
        super().on_mount()

    def key(self) -> str:
        items = [("p50", P50), ("p95", P95), ("p99", P99)]
        if self.baseline:
            items.append((f"{self.baseline_name} p95", BASELINE))
        return key_markup(*items)

    def baseline_series(self, rows) -> list[tuple[list[float], list[float], int, str]]:
        """The baseline's p95 over the part of the time axis shown (the run so far, or the plan's
        length when the dashboard gives it), in stretches where the baseline had latencies."""
        if not self.baseline:
            return []
        span_hint = self._data[2] if self._data else 0.0
        limit = max(10.0, span_hint, rows[-1].t if rows else 0.0)
        out = []
        xs: list[float] = []
        ys: list[float] = []
        for t, v in self.baseline:
            if t > limit:
                break
            if v is None:
                if xs:
                    out.append((xs, ys, BASELINE, "left"))
                xs, ys = [], []
                continue
            xs.append(t)
            ys.append(v)
        if xs:
            out.append((xs, ys, BASELINE, "left"))
        return out

    def series(self, rows):
        out = self.baseline_series(rows)  # first, so the run's own lines draw over it
        for attr, colour in (("p99_ms", P99), ("p95_ms", P95), ("p50_ms", P50)):
            out += [(xs, ys, colour, "left") for xs, ys in runs(rows, lambda r, a=attr: getattr(r, a))]
        return out



class ErrorChart(TimelineChart):
    TITLE = "throughput (requests/s) and errors"

    def key(self) -> str:
        return key_markup(("requests/s", ACHIEVED), ("errors % (right)", ERRORS))

    def series(self, rows):
        # no requests in a second (a pause): no error rate either
        return [(xs, ys, ACHIEVED, "left") for xs, ys in runs(rows, lambda r: r.rps)] + \
               [(xs, ys, ERRORS, "right") for xs, ys in runs(rows, lambda r: r.error_rate * 100 if r.requests else None)]

    def y_label(self, value: float, top: float, side: str = "left") -> str:
        if side == "left":
            return super().y_label(value, top, side)
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
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.frame(False)
        plt.xaxes(True, False)
        kinds = {s.kind for s in self._specs}
        # Rates and VUs are different units: with both, VUs get the right-hand axis.
        vus_side = "right" if {"open", "closed"} <= kinds else "left"
        plt.yaxes(True, vus_side == "right")
        t = 0.0
        top = {"left": 1.0, "right": 1.0}
        for spec in self._specs:
            t1 = t + spec.duration
            if spec.kind != "pause":
                side = vus_side if spec.kind == "closed" else "left"
                colour = ACHIEVED if spec.kind == "open" else VUS
                plt.plot([t, t1], [spec.start_value, spec.end_value], marker="braille", color=colour, yside=side)
                top[side] = max(top[side], spec.start_value, spec.end_value)
            t = t1
        span = max(1.0, t)
        t = 0.0
        for spec in self._specs[:-1]:
            t += spec.duration
            plt.vline(t, PHASE_MARK)
        plt.xlim(0, span)
        width = self.size.width or 60
        ticks, labels = time_ticks(span, width)
        plt.xticks(ticks, labels)
        for side in ("left", "right") if vus_side == "right" else ("left",):
            plt.ylim(0, top[side] * 1.15, yside=side)
            unit = "/s" if side == "left" and "open" in kinds else ""
            plt.yticks([0, top[side]], ["0", f"{top[side]:g}{unit}"], yside=side)
        self.refresh()
