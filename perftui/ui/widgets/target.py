"""TargetPanel: what the system under test says about itself while the load runs.

Titles itself and draws ``RunView.numbers.target`` (``perftui.ui.view.TargetView``): its
``monitor`` is a frozen copy of ``session.monitor`` with ``MonitorState``'s attribute names, so the
drawing functions below take either. One line per health URL
(UP/DOWN, HTTP status, probe latency, since when, the body's ``status`` field), the SUT process
(CPU, RSS and its trend in MB/h), metrics errors, then one sparkline per metric series. The
sparklines share the load charts' time axis: x is seconds since the run started, from 0 to the
same span the charts use, with a tick line under them. Without a ``[monitor]`` section the panel
says how to add one.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.text import Text

from perftui.monitor.report import MIN_TREND_S
from perftui.monitor.state import series
from perftui.ui.format import ellipsize
from perftui.ui.view import TargetView
from perftui.ui.widgets.base import LivePanel
from perftui.ui.widgets.charts import downsample, time_ticks
from perftui.units import format_ms

BARS = "▁▂▃▄▅▆▇█"
SPARK_COLOURS = ("color(39)", "color(78)", "color(214)", "color(141)", "color(203)", "color(81)", "color(186)",
                 "color(250)")
NAME_WIDTH = 30
VALUE_WIDTH = 9

HINT = ('not monitored: add a [monitor] section to the plan, e.g.\n'
        '  health = "/health", metrics = "/metrics", process = "target"')


def run_clock(t: float | None) -> str:
    """Run time as m:ss (h:mm:ss past an hour)."""
    if t is None:
        return "-"
    whole = int(max(0.0, t))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def number(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:,.1f}k"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.2f}"
    return f"{v:.2g}"


def short_series_name(name: str, width: int) -> str:
    """Too long: a Prometheus selector keeps its end (the labels tell two series apart), other
    names their start."""
    if len(name) <= width:
        return name
    if name.endswith("}") and "{" in name:
        return "…" + name[len(name) - width + 1:]
    return ellipsize(name, width)


def sparkline(points: Sequence[tuple[float, float | None]], span: float, width: int) -> list[float | None]:
    """Column values over [0, span] (a row's second ends at its ``t``): the mean of the values in
    each column; a column between two rows holds the previous value (a step line); None where a
    scrape had no value, and after the latest row."""
    if width <= 0 or span <= 0:
        return []
    sums = [0.0] * width
    counts = [0] * width
    gaps = [False] * width
    last = -1
    for t, v in points:
        col = min(width - 1, max(0, int(t / span * width)))
        last = max(last, col)
        if v is None:
            gaps[col] = True
        else:
            sums[col] += v
            counts[col] += 1
    out: list[float | None] = []
    prev: float | None = None
    for i in range(width):
        if counts[i]:
            prev = sums[i] / counts[i]
        elif gaps[i] or i > last:
            prev = None
        out.append(prev)
    return out


def spark_text(cols: list[float | None], style: str) -> Text:
    values = [v for v in cols if v is not None]
    t = Text(no_wrap=True)
    if not values:
        return t.append(" " * len(cols))
    lo, hi = min(values), max(values)
    rng = hi - lo
    chars = []
    for v in cols:
        if v is None:
            chars.append(" ")
        elif rng <= 0:
            chars.append(BARS[0] if hi == 0 else BARS[3])
        else:
            chars.append(BARS[min(len(BARS) - 1, int((v - lo) / rng * (len(BARS) - 1) + 0.5))])
    return t.append("".join(chars), style)


def axis_text(span: float, width: int, indent: int) -> Text:
    """Tick labels under the sparklines, at the load charts' round seconds (``time_ticks``)."""
    line = [" "] * width
    ticks, labels = time_ticks(span, 2 * width)
    for tick, label in zip(ticks, labels):
        col = int(tick / span * width) if span else 0
        start = 0 if tick == 0 else min(col - len(label) // 2, width - len(label))
        if start < 0 or any(c != " " for c in line[max(0, start - 1):start + len(label) + 1]):
            continue  # would overlap its neighbour
        line[start:start + len(label)] = label
    return Text(" " * indent + "".join(line), style="dim", no_wrap=True)


def health_line(h, width: int, url_width: int) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if h.up is None:
        t.append(" … ", "dim")
    elif h.up:
        t.append(" UP ", "bold black on green3")
    else:
        t.append(" DOWN ", "bold white on red3")
    t.append(" ")
    t.append(f"{ellipsize(h.url, url_width):<{url_width}}", "bold")
    if h.up is None:
        t.append("  waiting for the first answer", "dim italic")
        return t
    if h.status is not None:
        t.append(f" {h.status}", "green" if 200 <= h.status < 400 else "red")
    if h.latency_ms is not None:
        t.append(f" {format_ms(h.latency_ms):>7}")
    t.append(f"  since {run_clock(h.since)}", "dim")
    status = h.fields.get("status") if isinstance(h.fields, dict) else None
    if isinstance(status, str) and status:
        good = status.lower() in ("ok", "up", "pass", "healthy", "green")
        t.append(f"  {status}", "green" if good else "bold yellow")
    if not h.up and h.error and h.error != f"HTTP {h.status}":
        t.append(f"  {h.error}", "red")
    return t


def process_line(mon) -> Text | None:
    spec = getattr(mon, "process_spec", None)
    trend = mon.rss_trend_mb_per_h
    t = Text(no_wrap=True, overflow="ellipsis")
    if spec is not None:
        now = mon.sut_now
        t.append("process ", "dim")
        if not now:
            t.append(f"{spec!r} not found", "yellow")
            t.append(" (looking again every few seconds)", "dim")
            return t
        t.append(f"{mon.sut_pid} {mon.sut_name}".strip(), "bold")
        t.append("  CPU ", "dim")
        t.append(f"{now.get('cpu_percent', 0.0):.0f}%")
        t.append("  RSS ", "dim")
        t.append(f"{now.get('rss_mb', 0.0):,.1f}MiB")
    elif trend is not None:
        t.append("server RSS", "dim")
    else:
        return None
    t.append("  trend ", "dim")
    if trend is None or getattr(mon, "rss_trend_span_s", 0.0) < MIN_TREND_S:
        t.append("measuring… (needs 1m)", "dim")
    else:
        t.append(f"{trend:+,.1f} MB/h", "bold yellow" if trend >= 100 else "")
    return t


def metrics_line(mon) -> Text | None:
    url = getattr(mon, "metrics_url", None)
    if not url:
        return None
    if mon.metrics_ok is False:
        return Text.assemble(("metrics ", "dim"), (f"failing: {mon.metrics_error or 'no answer'}", "bold red"),
                             no_wrap=True, overflow="ellipsis")
    if mon.metrics_ok is None:
        return Text("metrics: waiting for the first scrape…", style="dim italic")
    missing = getattr(mon, "missing", None)
    if missing:
        return Text(f"no match in the metrics: {', '.join(missing)}", style="yellow", no_wrap=True, overflow="ellipsis")
    return None


def metric_names(mon) -> list[str]:
    """The charted series. A viewer that attached after the first scrape has no series list (it
    came with that scrape): then the names of the values it has seen."""
    return mon.metric_names() or list(mon.metrics_now)


def metric_points(timeline: Sequence, name: str) -> list[tuple[float, float | None]]:
    return series(timeline, "metrics", name)


def target_renderable(mon, timeline: Sequence, width: int, height: int, span: float) -> Group:
    """Everything the panel shows, cut to ``height`` lines (metric series go first)."""
    width = max(20, width)
    lines: list[Text] = []
    url_width = min(24, max((len(h.url) for h in mon.health), default=0))
    for h in mon.health:
        lines.append(health_line(h, width, url_width))
    for extra in (process_line(mon), metrics_line(mon)):
        if extra is not None:
            lines.append(extra)
    names = metric_names(mon)
    room = height - len(lines) - 1  # the axis line
    if names and room >= 1:
        info = {s.name: s for s in getattr(mon, "series_info", [])}
        name_w = min(NAME_WIDTH, max(8, width * 2 // 5))
        spark_w = max(8, width - name_w - VALUE_WIDTH - 2)
        shown = names if len(names) <= room else names[: max(0, room - 1)]
        rows = downsample(timeline, 4 * spark_w)  # a few rows per column are plenty
        points = {name: metric_points(rows, name) for name in shown}
        now = mon.metrics_now
        for i, name in enumerate(shown):
            si = info.get(name)
            unit = "/s" if si is not None and si.kind == "rate" and si.scale == 1 else ""
            cols = sparkline(points[name], span, spark_w)
            v = now.get(name)
            line = Text(no_wrap=True)
            line.append(f"{short_series_name(name, name_w):<{name_w}} ", "dim" if v is None else "")
            line.append_text(spark_text(cols, SPARK_COLOURS[i % len(SPARK_COLOURS)]))
            line.append(f" {number(v) + unit if v is not None else '-':>{VALUE_WIDTH}}", "bold")
            lines.append(line)
        if len(shown) < len(names):
            lines.append(Text(f"+{len(names) - len(shown)} more series (in the session file)", style="dim"))
        lines.append(axis_text(span, spark_w, name_w + 1))
    elif not names and mon.metrics_ok and room >= 1:
        lines.append(Text("no metric series matched", style="dim"))
    return Group(*lines[:max(1, height)])


def hint_renderable(url: str | None, demo: bool) -> Text:
    t = Text()
    t.append(url or "…", style="bold")
    if demo:
        t.append("  (embedded demo target)", style="dim")
    t.append("\n" + HINT, style="dim")
    return t


class TargetPanel(LivePanel):
    FIXED_SIZE = True

    def __init__(self, *args, monitored: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = "target (system under test)"
        if monitored:
            self.border_subtitle = "health · process · metrics (x: seconds since start)"

    def show_view(self, v: TargetView) -> None:
        if v.mode == "monitor" and v.monitor is not None:
            self.show_monitor(v.monitor, v.timeline, v.span)
        elif v.mode == "waiting":
            self.show_waiting(v.url)
        else:
            self.show_hint(v.url, v.demo)

    def show_hint(self, url: str | None, demo: bool) -> None:
        self.show(("hint", url, demo), lambda: hint_renderable(url, demo))

    def show_waiting(self, url: str | None) -> None:
        self.show(("waiting", url), lambda: Text(f"{url or '…'}\nmonitoring starts with the run", style="dim"))

    def show_monitor(self, mon, timeline: Sequence, span: float) -> None:
        w, h = self.content_size
        last = timeline[-1].t if timeline else None
        health = tuple((x.up, x.status, x.latency_ms, x.since, x.error, x.fields.get("status")) for x in mon.health)
        key = ("mon", w, h, len(timeline), last, span, health, mon.metrics_ok, mon.metrics_error,
               tuple(sorted(mon.metrics_now.items())), tuple(sorted((mon.sut_now or {}).items())),
               mon.rss_trend_mb_per_h, tuple(metric_names(mon)))
        self.show(key, lambda: target_renderable(mon, timeline, w, h, span))
