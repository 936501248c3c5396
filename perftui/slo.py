"""Service level objectives: error budgets and burn-rate alerts while a load test runs.

An SLO says which share of requests must be good (``objective``, e.g. 99.5 %) over a budget
window (by default the planned length of the run). The error budget is the share that may be bad
(0.5 %); the **burn rate** is how fast it is being spent: the bad share divided by the budget
share, so 1 spends exactly the budget over the window and 10 spends it in a tenth of it.

Alerts follow the SRE Workbook's multi-window, multi-burn-rate scheme: a level fires when the
burn rate over a long window **and** over a short window are both above its level (the long
window keeps one bad second from paging, the short one lets the alert end soon after the problem
does), or when too little budget is left. The windows of the Workbook (1 h and 5 min, 6 h and
30 min for a 30-day budget) are scaled to the budget window of a load test.

``SloTracker`` is fed one second at a time (good and total request counts, from the session's
cumulative histograms: ``perftui.run.judge``) and needs nothing else; it keeps per-second counts
only as far back as its longest window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec

from perftui.units import format_duration, parse_duration

__all__ = ["AVAILABILITY_KINDS", "AlertLevel", "SloAlertRecord", "SloResult", "SloSpec", "SloTracker", "slo_line",
           "slo_specs", "slo_summary_lines"]

AVAILABILITY_KINDS = frozenset({
    "http_5xx", "connect_refused", "connect_timeout", "timeout", "reset", "dns", "tls", "protocol",
    "h2_goaway", "h2_stream_reset",
})
"""Error kinds that count against availability: the server or the network failed. A 4xx or a
failed ``expect`` is the client's business (it counts against ``error_rate`` SLOs)."""

MAX_SECONDS = 86_400
"""Per-second counts kept at most (a day); a longer budget window is judged over the run so far."""

DEFAULT_LEVELS = {  # the SMM performance framework's levels: burn rate > 5x or < 10 % left, > 2x or < 20 %
    "critical": (5.0, 0.10, 1 / 10),
    "warning": (2.0, 0.20, 6 / 10),
}
"""level -> (burn rate, budget left, long window as a share of the budget window)."""


class AlertLevel(msgspec.Struct, frozen=True, kw_only=True):
    level: str
    burn_rate: float
    long_s: float
    short_s: float
    budget_left: float
    """Fraction (0.1 = 10 %)."""


class SloSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    sli: str
    objective: float
    """Fraction: 0.995."""
    latency_ms: float | None
    endpoint: str | None
    window_s: float
    levels: tuple[AlertLevel, ...]


class SloAlertRecord(msgspec.Struct, kw_only=True):
    level: str
    at: float
    """Seconds since the run started."""
    until: float | None = None
    """When it stopped firing (None: still firing at the end)."""
    reason: str = ""


class SloResult(msgspec.Struct, kw_only=True):
    """One SLO in the session document (``slos[]``, docs/session.md)."""

    name: str
    sli: str
    objective: float
    latency_ms: float | None = None
    endpoint: str | None = None
    window_s: float
    good: int = 0
    total: int = 0
    sli_value: float | None = None
    """good / total over the budget window so far (None before any request)."""
    burn_rate: float | None = None
    """Over the budget window so far."""
    budget_consumed: float = 0.0
    """Fraction of the whole window's budget spent so far (above 1: overspent)."""
    budget_left: float = 1.0
    level: str = "ok"
    """``ok``, ``warning`` or ``critical`` now (at the end, for a finished run)."""
    burn_long: dict[str, float | None] = {}
    """Alert level -> burn rate over its long window, now."""
    burn_short: dict[str, float | None] = {}
    peak_burn: float = 0.0
    """Highest short-window burn rate of the critical level seen in the run."""
    alerts: list[SloAlertRecord] = []
    levels: list[AlertLevel] = []


def slo_specs(slos: Iterable, planned_s: float) -> list[SloSpec]:
    """``SloSpec``s of a plan's ``[[slos]]`` (already validated), defaults resolved against the
    planned length of the run (``planned_s``)."""
    from msgspec import UNSET

    out = []
    for s in slos:
        window = parse_duration(s.window) if s.window is not UNSET else max(planned_s, 1.0)
        levels = []
        for level, (burn, left, share) in DEFAULT_LEVELS.items():
            cfg = getattr(s, level)
            long_s = parse_duration(cfg.long) if cfg.long is not UNSET else max(10.0, window * share)
            short_s = parse_duration(cfg.short) if cfg.short is not UNSET else max(2.0, long_s / 12)
            levels.append(AlertLevel(
                level=level, burn_rate=burn if cfg.burn_rate is UNSET else float(cfg.burn_rate),
                long_s=long_s, short_s=min(short_s, long_s),
                budget_left=left if cfg.budget_left is UNSET else cfg.budget_left / 100.0))
        out.append(SloSpec(
            name=s.name, sli=s.sli, objective=s.objective / 100.0,
            latency_ms=parse_duration(s.latency) * 1000 if s.latency is not UNSET else None,
            endpoint=s.endpoint or None, window_s=window, levels=tuple(levels)))
    return out


def _pct(x: float) -> str:
    x = round(x * 100, 2)
    return f"{x:g}%"


class SloTracker:
    """One SLO's budget and alerts, one second at a time (``add``)."""

    def __init__(self, spec: SloSpec):
        self.spec = spec
        self.allowed = 1.0 - spec.objective
        longest = max([spec.window_s, *(lv.long_s for lv in spec.levels)])
        self._cum: deque[tuple[float, int, int]] = deque(maxlen=int(min(longest, MAX_SECONDS)) + 2)
        """(t, good so far, total so far) at the end of each second, newest last."""
        self._cum.append((0.0, 0, 0))
        self.good = 0
        self.total = 0
        self.t = 0.0
        self.level = "ok"
        self.firing: dict[str, SloAlertRecord] = {}
        self.alerts: list[SloAlertRecord] = []
        self.burn_long: dict[str, float | None] = {}
        self.burn_short: dict[str, float | None] = {}
        self.peak_burn = 0.0
        self.burn_rate: float | None = None
        self.budget_consumed = 0.0
        self.sli_value: float | None = None

    # ---- windows ------------------------------------------------------------------------

    def _since(self, seconds: float) -> tuple[int, int]:
        """(good, total) over the last ``seconds`` (or as far back as kept)."""
        t_now, g_now, n_now = self._cum[-1]
        start = t_now - seconds
        base = self._cum[0]
        for entry in reversed(self._cum):
            if entry[0] <= start + 1e-6:
                base = entry
                break
        return g_now - base[1], n_now - base[2]

    def burn(self, seconds: float) -> float | None:
        good, total = self._since(seconds)
        if total <= 0:
            return None
        return (total - good) / total / self.allowed

    # ---- one second -----------------------------------------------------------------------

    def add(self, t: float, good: int, total: int) -> list[str]:
        """The second ending at ``t`` (seconds since the start) had ``total`` requests, ``good``
        of them good. Returns the messages of alerts that fired or ended (for session events)."""
        good = max(0, min(good, total))
        self.good += good
        self.total += total
        self.t = t
        self._cum.append((t, self.good, self.total))
        spec = self.spec
        g, n = self._since(spec.window_s)
        self.sli_value = g / n if n else None
        self.burn_rate = (n - g) / n / self.allowed if n else None
        self.budget_consumed = (self.burn_rate or 0.0) * min(t, spec.window_s) / spec.window_s
        events: list[str] = []
        new_level = "ok"
        for lv in spec.levels:
            long_b = self.burn(lv.long_s)
            short_b = self.burn(lv.short_s)
            self.burn_long[lv.level] = long_b
            self.burn_short[lv.level] = short_b
            if lv.level == "critical" and short_b is not None and t >= lv.short_s:
                self.peak_burn = max(self.peak_burn, short_b)
            reason = ""
            if t >= lv.short_s - 1e-6 and long_b is not None and short_b is not None \
                    and long_b > lv.burn_rate and short_b > lv.burn_rate:
                reason = (f"burn rate {long_b:.1f}× over {format_duration(lv.long_s)} and {short_b:.1f}× over "
                          f"{format_duration(lv.short_s)} (> {lv.burn_rate:g}×)")
            elif self.total and self.budget_left < lv.budget_left:
                reason = f"{_pct(max(0.0, self.budget_left))} of the error budget left (< {_pct(lv.budget_left)})"
            rec = self.firing.get(lv.level)
            if reason and rec is None:
                rec = self.firing[lv.level] = SloAlertRecord(level=lv.level, at=round(t, 3), reason=reason)
                self.alerts.append(rec)
            elif not reason and rec is not None:
                rec.until = round(t, 3)
                del self.firing[lv.level]
            if reason and new_level == "ok":
                new_level = lv.level  # levels are ordered: critical first
        if new_level != self.level:
            what = self.describe_objective()
            if new_level == "ok":
                events.append(f"SLO {spec.name}: {self.level} alert resolved ({what}, {_pct(max(0.0, self.budget_left))} of the budget left)")
            else:
                events.append(f"SLO {spec.name}: {new_level.upper()}: {self.firing[new_level].reason} ({what})")
            self.level = new_level
        return events

    @property
    def budget_left(self) -> float:
        return 1.0 - self.budget_consumed

    def describe_objective(self) -> str:
        s = self.spec
        what = {"latency": f"requests within {s.latency_ms:g}ms" if s.latency_ms is not None else "latency",
                "availability": "availability", "error_rate": "requests without error"}[s.sli]
        return f"{_pct(s.objective)} {what}" + (f" on {s.endpoint}" if s.endpoint else "")

    def values(self) -> dict[str, float]:
        """The figures thresholds can name, ``slo.<name>.<field>`` (lower-case name)."""
        key = f"slo.{self.spec.name.lower()}."
        out = {key + "budget_consumed": self.budget_consumed, key + "budget_left": self.budget_left}
        if self.burn_rate is not None:
            out[key + "burn_rate"] = self.burn_rate
        if self.sli_value is not None:
            out[key + "sli"] = self.sli_value
        return out

    def result(self) -> SloResult:
        s = self.spec
        g, n = self._since(s.window_s)
        return SloResult(
            name=s.name, sli=s.sli, objective=s.objective, latency_ms=s.latency_ms, endpoint=s.endpoint,
            window_s=s.window_s, good=g, total=n, sli_value=self.sli_value, burn_rate=self.burn_rate,
            budget_consumed=self.budget_consumed, budget_left=self.budget_left, level=self.level,
            burn_long=dict(self.burn_long), burn_short=dict(self.burn_short), peak_burn=self.peak_burn,
            alerts=list(self.alerts), levels=list(s.levels))


def slo_line(r: SloResult) -> str:
    """One line for the headless summary and the dashboard: ``checkout  99.5% availability ...``."""
    burn = "-" if r.burn_rate is None else f"{r.burn_rate:.2f}×"
    sli = "-" if r.sli_value is None else f"{r.sli_value * 100:.3f}%"
    left = f"{r.budget_left * 100:.0f}% left" if r.budget_left >= 0 else f"overspent {-r.budget_left * 100:.0f}%"
    fired = ", ".join(f"{a.level} at {format_duration(a.at)}" for a in r.alerts)
    return (f"{r.level.upper() if r.level != 'ok' else 'ok':<8} burn {burn:>7}  SLI {sli:>8} of {r.objective * 100:g}%"
            f"  budget {r.budget_consumed * 100:.0f}% used ({left})" + (f"  alerts: {fired}" if fired else ""))


def slo_summary_lines(results: list) -> list[str]:
    """The SLO block of the headless summary (nothing without ``[[slos]]``)."""
    if not results:
        return []
    out = ["", "SLOs"]
    for r in results:
        what = {"latency": f"within {r.latency_ms:g}ms" if r.latency_ms is not None else "latency",
                "availability": "availability", "error_rate": "without error"}.get(r.sli, r.sli)
        out.append(f"  {r.name[:16]:<16} {r.objective * 100:g}% {what}" + (f" on {r.endpoint}" if r.endpoint else "")
                   + f" over {format_duration(r.window_s)}")
        out.append(f"  {'':<16} {slo_line(r)}")
    return out
