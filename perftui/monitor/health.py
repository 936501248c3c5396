"""Generator self-health: is perftui itself the bottleneck?

A load generator that runs out of CPU, or whose event loop wakes up late, sends less load than
planned and measures latency that includes its own queueing. Such seconds must not be read as
the target's numbers. ``GeneratorHealth`` decides, once per timeline second, from

- CPU samples of perftui's processes (``ProcessSample.busy``: time on a CPU plus time waiting
  for one): one at or above ``cpu_percent`` of a core for ``cpu_for`` or longer;
- the workers' snapshots, via the row: event-loop lag above ``loop_lag``, arrivals starting
  more than ``schedule_lag`` after their slot (open model).

It keeps the intervals (``GeneratorWarning``) and the current warning text; ``MonitorState``
owns it and turns its verdicts into timeline flags and events.
"""

from __future__ import annotations

from dataclasses import dataclass

from msgspec import Struct

from perftui.monitor.model import GeneratorWarning, ProcessSample
from perftui.units import format_duration, format_ms


@dataclass
class Limits:
    cpu_percent: float = 90.0
    cpu_for_s: float = 2.0
    loop_lag_ms: float = 50.0
    schedule_lag_ms: float = 50.0

    def as_dict(self) -> dict[str, float]:
        return {"cpu_percent": self.cpu_percent, "cpu_for_s": self.cpu_for_s,
                "loop_lag_ms": self.loop_lag_ms, "schedule_lag_ms": self.schedule_lag_ms}


class GeneratorHealthWire(Struct, kw_only=True):
    """A ``GeneratorHealth`` in full, for an attaching viewer (part of ``MonitorWire``)."""

    limits: Limits
    busy_since: dict[str, float]
    busy_now: dict[str, float]
    cpu_t: float | None
    warnings: list[GeneratorWarning]
    open: bool
    """The last of ``warnings`` is still open."""
    worst: dict[str, float]
    current: str | None


class GeneratorHealth:
    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.busy_since: dict[str, float] = {}
        """perftui process label -> when its CPU went (and stayed) at or above the limit."""
        self.busy_now: dict[str, float] = {}
        self.cpu_t: float | None = None
        self.warnings: list[GeneratorWarning] = []
        self.open: GeneratorWarning | None = None
        self._worst: dict[str, float] = {}
        """Reason key -> worst value seen in the open interval."""
        self.current: str | None = None
        """The warning for the latest second, or None."""

    def wire(self) -> GeneratorHealthWire:
        return GeneratorHealthWire(limits=self.limits, busy_since=self.busy_since, busy_now=self.busy_now,
                                   cpu_t=self.cpu_t, warnings=self.warnings, open=self.open is not None,
                                   worst=self._worst, current=self.current)

    def load_wire(self, w: GeneratorHealthWire) -> None:
        self.limits = w.limits
        self.busy_since, self.busy_now, self.cpu_t = w.busy_since, w.busy_now, w.cpu_t
        self.warnings = w.warnings
        self.open = w.warnings[-1] if w.open and w.warnings else None  # the same object, as live
        self._worst, self.current = w.worst, w.current

    def observe(self, sample: ProcessSample) -> None:
        limit = self.limits.cpu_percent
        for label, cpu in sample.busy.items():
            if cpu >= limit:
                # the percentage covers the interval before the sample
                self.busy_since.setdefault(label, sample.t - sample.interval)
            else:
                self.busy_since.pop(label, None)
        for label in list(self.busy_since):
            if label not in sample.busy:
                del self.busy_since[label]
        self.busy_now = dict(sample.busy)
        self.cpu_t = sample.t

    def judge(self, loop_lag_ms: float, schedule_lag_ms: float) -> tuple[dict[str, float], float | None]:
        """Reasons for the second just closed (key -> value) and, for sustained CPU, since when."""
        lim = self.limits
        reasons: dict[str, float] = {}
        since: float | None = None
        if self.cpu_t is not None:
            for label, start in self.busy_since.items():
                if self.cpu_t - start >= lim.cpu_for_s - 0.05:
                    reasons[f"cpu:{label}"] = self.busy_now.get(label, 0.0)
                    since = start if since is None else min(since, start)
        if loop_lag_ms > lim.loop_lag_ms:
            reasons["loop_lag"] = loop_lag_ms
        if schedule_lag_ms > lim.schedule_lag_ms:
            reasons["schedule_lag"] = schedule_lag_ms
        return reasons, since

    def describe(self, reasons: dict[str, float], *, worst: bool = False) -> str:
        lim = self.limits
        parts = []
        for key, value in reasons.items():
            if key.startswith("cpu:"):
                label = key[4:]
                if worst:
                    parts.append(f"{label} CPU-bound (≥ {lim.cpu_percent:g}% of a core, max {value:.0f}%)")
                else:
                    since = self.busy_since.get(label)
                    held = f" for {format_duration(self.cpu_t - since)}" if since is not None and self.cpu_t else ""
                    parts.append(f"{label} CPU-bound ({value:.0f}% of a core{held})")
            elif key == "loop_lag":
                parts.append(f"worker event-loop lag {'up to ' if worst else ''}{format_ms(value)}")
            elif key == "schedule_lag":
                parts.append(f"arrivals started {'up to ' if worst else ''}{format_ms(value)} late")
        return "; ".join(parts)

    def step(self, reasons: dict[str, float], span_start: float, t: float, since: float | None
             ) -> tuple[GeneratorWarning | None, GeneratorWarning | None]:
        """Advance the interval bookkeeping; returns (opened, closed) warnings, if any."""
        opened = closed = None
        if reasons:
            if self.open is None:
                start = span_start if since is None else min(span_start, max(0.0, since))
                self.open = GeneratorWarning(start=round(start, 3), end=None, reason="")
                self.warnings.append(self.open)
                self._worst = {}
                opened = self.open
            for k, v in reasons.items():
                self._worst[k] = max(v, self._worst.get(k, v))
            self.open.reason = self.describe(self._worst, worst=True)
            self.current = "generator-limited: " + self.describe(reasons)
        elif self.open is not None:
            self.open.end = round(span_start, 3)
            closed, self.open = self.open, None
            self.current = None
        return opened, closed

    def finish(self, t: float) -> None:
        if self.open is not None:
            self.open.end = round(t, 3)
            self.open = None
