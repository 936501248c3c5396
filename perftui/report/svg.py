"""Line charts as inline SVG for the HTML report (``perftui.report.html``): no script, no network,
any browser draws them. Called by the report only.

A chart is a time axis (seconds since the run started) shared by every chart of a report, so the
rate, latency, error and monitored-series charts line up; phases are shaded bands with their names,
annotations dashed vertical lines.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 920, 210
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 26, 24
PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^k at or above ``value`` (axis top)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}" if abs(v) >= 1 else f"{v:.2g}"


def line_chart(title: str, series: list[tuple[str, list[tuple[float, float | None]]]], *, t_max: float,
               unit: str = "", phases: list[tuple[float, float, str]] = (), marks: list[tuple[float, str]] = (),
               colors: tuple[str, ...] = PALETTE) -> str:
    """One chart: ``series`` is ``[(name, [(t, value or None), ...])]``; a None breaks the line."""
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    t_max = t_max if t_max > 0 else 1.0
    values = [v for _, pts in series for _, v in pts if v is not None and math.isfinite(v)]
    y_max = nice_max(max(values) if values else 0.0)

    def x(t: float) -> float:
        return LEFT + min(max(t, 0.0), t_max) / t_max * w

    def y(v: float) -> float:
        return TOP + h - min(max(v, 0.0), y_max) / y_max * h

    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
           f'<text x="{LEFT}" y="16" class="title">{escape(title)}{escape(f" ({unit})" if unit else "")}</text>']
    for i, (start, end, name) in enumerate(phases):
        if end <= start:
            continue
        out.append(f'<rect class="phase" x="{x(start):.1f}" y="{TOP}" width="{max(0.5, x(end) - x(start)):.1f}" '
                   f'height="{h}" fill="{"#f1f5f9" if i % 2 == 0 else "#e2e8f0"}"><title>{escape(name)}</title></rect>')
        out.append(f'<text class="phase-name" x="{x(start) + 3:.1f}" y="{TOP + 11}">{escape(name[:40])}</text>')
    for k in range(5):  # y grid and labels
        v = y_max * k / 4
        out.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" class="ylabel">{_fmt(v)}</text>')
    step = nice_max(t_max / 8)
    t = 0.0
    while t <= t_max + 1e-9:
        out.append(f'<text x="{x(t):.1f}" y="{TOP + h + 16}" class="xlabel">{_fmt(t)}s</text>')
        t += step
    for t_mark, text in marks:
        out.append(f'<line class="mark" x1="{x(t_mark):.1f}" x2="{x(t_mark):.1f}" y1="{TOP}" y2="{TOP + h}">'
                   f'<title>{escape(text)}</title></line>')
    legend_x = LEFT + w
    for i, (name, pts) in enumerate(reversed(series)):
        color = colors[(len(series) - 1 - i) % len(colors)]
        legend_x -= 22 + 7 * len(name[:30])
        # inline style: a stylesheet's text fill would win over a fill attribute
        out.append(f'<text x="{legend_x:.0f}" y="16" class="legend" style="fill:{color}">■ {escape(name[:30])}</text>')
    for i, (name, pts) in enumerate(series):
        color = colors[i % len(colors)]
        run: list[str] = []
        runs: list[list[str]] = []
        for t_pt, v in pts:
            if v is None or not math.isfinite(v):
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{x(t_pt):.1f},{y(v):.1f}")
        if run:
            runs.append(run)
        for r in runs:
            if len(r) == 1:
                cx, cy = r[0].split(",")
                out.append(f'<circle class="series" cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            else:
                out.append(f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{color}" '
                           f'stroke-width="1.6" points="{" ".join(r)}"/>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" class="frame"/>')
    out.append("</svg>")
    return "\n".join(out)
