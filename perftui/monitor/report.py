"""Monitoring in the headless output: markers for the per-second progress line and the
``monitor`` block of the final summary. Pure functions of the session record (typed as
``MonitoredRun``). Called by ``perftui.headless`` and the dashboard's results screen."""

from __future__ import annotations

from perftui.monitor.state import MonitoredRun
from perftui.units import format_duration, format_ms

__all__ = ["progress_markers", "summary_lines"]


def progress_markers(session: MonitoredRun) -> list[str]:
    """What to append to the progress line for the latest second."""
    mon = session.monitor
    row = session.timeline[-1] if session.timeline else None
    out = []
    down = [h.url for h in mon.health if h.up is False]
    if down:
        out.append("target DOWN: " + ", ".join(down))
    if row is not None and row.generator_limited:
        out.append(f"⚠ {mon.generator_warning or 'generator-limited'} (numbers suspect)")
    return out


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    a = abs(v)
    text = f"{v:,.0f}" if a >= 1000 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.01 or a == 0 else f"{v:.3g}"
    return text + unit


def _trend(mb_per_h: float | None) -> str:
    return "-" if mb_per_h is None else f"{mb_per_h:+,.1f} MB/h"


def _trend_over(info) -> str:
    """A trend with the span it was fitted over; under a few minutes, start-up growth dominates,
    and under ``MIN_TREND_S`` there is no trend to speak of: what the RSS did is shown instead."""
    if info.span_s < MIN_TREND_S or info.mb_per_h is None:
        return _no_trend(info)
    caveat = "; too short to mean much" if info.span_s < SHORT_TREND_S else ""
    return f"{_trend(info.mb_per_h)} (over {format_duration(info.span_s)}{caveat})"


SHORT_TREND_S = 300.0
MIN_TREND_S = 60.0
"""Below this span no MB/h figure is printed: a 4 s run's start-up growth extrapolated to an hour
reads as a leak of thousands of MB/h. The session record keeps the fit with its span."""


def _no_trend(info) -> str:
    if info.first_mb is None or info.last_mb is None:
        return "-"
    return (f"none: the run is too short for one ({format_duration(info.span_s)} of samples, a trend needs"
            f" {format_duration(MIN_TREND_S)}); RSS {_num(info.first_mb)} → {_num(info.last_mb)} MB")


def summary_lines(session: MonitoredRun) -> list[str]:
    mon = session.monitor
    doc = mon.document()
    out: list[str] = []
    w = out.append
    if mon.enabled:
        w("")
        w("target monitoring")
    for h in doc.health:
        if h.up is None:
            w(f"  health {h.url:<28} no answer yet")
            continue
        mean = format_ms(h.latency_sum_ms / (h.probes - h.failures)) if h.probes > h.failures else "-"
        spells = sum(1 for tr in doc.transitions if tr.url == h.url and not tr.up)
        state = "up" if h.up else "DOWN"
        w(f"  health {h.url:<28} {state:<4} {h.status if h.status is not None else '-':>4}  latency mean {mean}"
          f" max {format_ms(h.latency_max_ms)}  {h.failures}/{h.probes} probes failed"
          + (f"  down {spells}x, {format_duration(h.down_s)} in total" if spells else ""))
        text = [f"{k}={v}" for k, v in h.fields.items() if isinstance(v, str) and k != "$"]
        if text:
            w("    " + "  ".join(text[:8]) + ("  …" if len(text) > 8 else ""))
    for tr in doc.transitions:
        if tr.up:
            w(f"    {format_duration(tr.t):>7}  {tr.url}  UP again (HTTP {tr.status}) after"
              f" {format_duration(tr.previous_for_s or 0)} down")
        else:
            why = tr.error or (f"HTTP {tr.status}" if tr.status else "no answer")
            status = tr.fields.get("status")
            if isinstance(status, str):
                why += f", status={status}"
            w(f"    {format_duration(tr.t):>7}  {tr.url}  DOWN ({why})")
    if doc.metrics_url:
        if doc.series:
            w(f"  metrics {doc.metrics_url}" + ("  (last scrape failed: " + doc.metrics_error + ")" if doc.metrics_error else ""))
            for s in doc.series:
                unit = "/s" if s.kind == "rate" and s.scale == 1 else ""
                w(f"    {s.name[:44]:<44} mean {_num(s.mean, unit):>10}  max {_num(s.max, unit):>10}"
                  f"  last {_num(s.last, unit):>10}")
        else:
            w(f"  metrics {doc.metrics_url}: " + (doc.metrics_error or "no series read"))
    for name in getattr(mon, "databases", ()):  # [monitor] postgres (perftui.monitor.pg)
        err = mon.db_error.get(name)
        w(f"  database {name}" + (f"  (last sample failed: {err})" if err else ""))
        for s in doc.series:
            if s.name.startswith(f"db.{name}."):
                w(f"    {s.name[:44]:<44} mean {_num(s.mean):>10}  max {_num(s.max):>10}  last {_num(s.last):>10}")
    if doc.sut is not None:
        sut = doc.sut
        t = sut["rss_trend"]
        if sut.get("pid"):
            w(f"  process {sut['pid']} ({sut.get('name', '')}): CPU mean {_num(sut['cpu_percent_mean'], '%')}"
              f" max {_num(sut['cpu_percent_max'], '%')}  RSS {_num(t.first_mb)} → {_num(t.last_mb)} MB"
              f" (max {_num(t.max_mb)})")
        else:
            w(f"  process {sut['spec']!r}: not found")
    if doc.rss_trend is not None:
        t = doc.rss_trend
        if t.mb_per_h is not None and t.span_s >= MIN_TREND_S:
            w(f"  RSS trend {_trend(t.mb_per_h)} (least squares over {format_duration(t.span_s)}, {t.samples} samples;"
              f" {t.source})")
        elif t.samples:
            w(f"  RSS trend {_no_trend(t)} ({t.source})")
    gen = doc.generator
    if gen["cpu_percent_max"]:
        busiest = ", ".join(f"{k} {v:.0f}%" for k, v in gen["cpu_percent_max"].items())
        w("")
        w(f"generator CPU max: {busiest} · perftui RSS trend {_trend_over(gen['rss_trend'])}")
    for gw in mon.generator_warnings:
        end = gw.end if gw.end is not None else session.run_seconds()
        w(f"! generator-limited {format_duration(gw.start)}–{format_duration(end)}: {gw.reason}")
    if mon.generator_warnings:
        w("  perftui itself was the bottleneck there: load and latency numbers in these intervals are suspect"
          " (more workers, a bigger machine, or less load per worker)")
    return out
