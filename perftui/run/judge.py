"""The judge: a run's thresholds and SLOs, evaluated once per second in the coordinator.

What a plain string threshold needs (the run's totals) the session record already has; the judge
adds what it does not:

- **Windows** (``window = "1m"``): per-second statistics folded into blocks of
  ``max(1 s, window / 30)``, each kept as encoded HDR histograms plus counters, so a window is
  at most 30 decodes away whatever its length and memory stays flat. The threshold is judged on
  every full window as the run goes and fails if any window fails (the worst is reported); a run
  shorter than its window is judged once, over the whole run.
- **The system under test** (``target.cpu``, ``host.memory``, ``series{NAME}``,
  ``health.uptime``): per-second values from the monitor's timeline row.
- **SLOs** (``perftui.slo``): good and total requests per second from the session's cumulative
  aggregates; alerts become ``slo`` events and ``slo.<name>.*`` values for thresholds.
- **Abort on fail**: once a threshold with ``abort_on_fail`` fails after its
  ``delay_abort_eval``, the judge asks the coordinator to stop (its normal stop path: the
  session and journal end complete) and says which threshold stopped the run and when.

It is a session observer (``on_ingest`` for the endpoints a windowed threshold names,
``on_tick`` for everything else); ``evaluate`` gives the threshold results.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from msgspec import UNSET

from perftui.aggregate import Aggregate, decode_histogram, encode_histogram
from perftui.plan import ThresholdSpec, duration_s, threshold_label
from perftui.slo import AVAILABILITY_KINDS, SloTracker, slo_specs
from perftui.summary import StatsSummary
from perftui.thresholds import (
    HOST_FIELDS, METRICS, TARGET_FIELDS, Threshold, ThresholdResult, evaluate, format_value, parse_threshold,
    settled, slo_metric, system_metric,
)
from perftui.units import format_duration
from perftui.session.observer import SessionObserver

if TYPE_CHECKING:  # pragma: no cover
    from perftui.plan import Plan
    from perftui.session import SessionRecord
    from perftui.session.schema import TimelineRow
    from perftui.worker.messages import Snapshot

__all__ = ["Judge"]

BLOCKS = 30
"""A window is kept as at most this many blocks."""


class _Block:
    __slots__ = ("seconds", "counters", "latency", "service")

    def __init__(self, seconds: int, agg: Aggregate, service: bool):
        self.seconds = seconds
        self.counters = (agg.requests, agg.errors, dict(agg.error_kinds), dict(agg.status), agg.latency_sum,
                         agg.service_sum, agg.late_starts, agg.dropped, agg.bytes_received)
        self.latency = encode_histogram(agg.latency) if agg.latency.total_count else b""
        self.service = encode_histogram(agg.service) if service and agg.service.total_count else b""


class _RequestWindow:
    """Blocks of per-second request statistics over the last ``seconds`` (one endpoint or all)."""

    def __init__(self, seconds: float, endpoint: str | None, service: bool):
        self.seconds = max(1, round(seconds))
        self.step = max(1, math.ceil(self.seconds / BLOCKS))
        self.endpoint = endpoint
        self.service = service
        self.blocks: deque[_Block] = deque(maxlen=math.ceil(self.seconds / self.step))
        self.filling = Aggregate()
        self.filled = 0
        self.pending = Aggregate() if endpoint is not None else None
        """An endpoint's requests of the second being filled (from the snapshots)."""
        self.scratch = Aggregate()
        self.seen = 0
        """Seconds folded in so far."""

    def add_second(self, sec: Aggregate) -> bool:
        """Fold one closed second in; True when a block was completed (the window moved)."""
        self.filling.merge(sec)
        self.filled += 1
        self.seen += 1
        if self.filled < self.step:
            return False
        self.blocks.append(_Block(self.filled, self.filling, self.service))
        self.filling.clear()
        self.filled = 0
        return True

    def full(self) -> bool:
        return sum(b.seconds for b in self.blocks) >= self.seconds

    def summary(self, include_filling: bool = False) -> StatsSummary:
        agg = self.scratch
        agg.clear()
        span = 0
        for b in self.blocks:
            req, err, kinds, status, lsum, ssum, late, dropped, nbytes = b.counters
            agg.requests += req
            agg.errors += err
            agg.error_kinds.update(kinds)
            agg.status.update(status)
            agg.latency_sum += lsum
            agg.service_sum += ssum
            agg.late_starts += late
            agg.dropped += dropped
            agg.bytes_received += nbytes
            if b.latency:
                lat = decode_histogram(b.latency)
                agg.latency.add(lat)
                agg.service.add(decode_histogram(b.service) if b.service else lat)
            span += b.seconds
        if include_filling and self.filled:
            agg.merge(self.filling)
            span += self.filled
        return agg.summary(float(max(span, 1)))


class _GaugeWindow:
    """Per-second values of one monitored figure: over the whole run and the last ``seconds``."""

    def __init__(self, seconds: float | None):
        self.recent: deque[float] | None = deque(maxlen=max(1, round(seconds))) if seconds else None
        self.n = 0
        self.total = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.last: float | None = None

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)
        self.last = value
        if self.recent is not None:
            self.recent.append(value)

    def stat(self, stat: str, windowed: bool) -> float | None:
        if windowed and self.recent is not None:
            vals = self.recent
            if not vals:
                return None
            return {"avg": lambda: sum(vals) / len(vals), "max": lambda: max(vals), "min": lambda: min(vals),
                    "last": lambda: vals[-1]}[stat or "avg"]()
        if not self.n:
            return None
        return {"avg": self.total / self.n, "max": self.hi, "min": self.lo, "last": self.last}[stat or "avg"]


class _Rule:
    def __init__(self, entry: str | ThresholdSpec):
        self.label = threshold_label(entry)
        self.th: Threshold = parse_threshold(entry if isinstance(entry, str) else entry.threshold)
        spec = entry if isinstance(entry, ThresholdSpec) else None
        self.window_s: float | None = duration_s(spec.window) if spec and spec.window is not UNSET else None
        self.abort = bool(spec and spec.abort_on_fail)
        self.delay_s = duration_s(spec.delay_abort_eval) if spec else 0.0
        self.system = system_metric(self.th.metric)
        self.slo = slo_metric(self.th.metric)
        self.requests: _RequestWindow | None = None
        self.gauge: _GaugeWindow | None = None
        self.worst: ThresholdResult | None = None
        """The first failing window (then the worst one) for a windowed threshold."""
        self.worst_at: float | None = None
        self.now: ThresholdResult | None = None
        self.aborted_at: float | None = None


class Judge(SessionObserver):
    """Thresholds and SLOs of one run (see the module docstring). ``stop(reason)`` is how an
    abort reaches the coordinator; it returns False when the run is stopping anyway."""

    def __init__(self, plan: Plan, session: SessionRecord, *, planned_s: float,
                 stop: Callable[[str], bool] | None = None):
        self.session = session
        self.stop = stop
        self.rules = [_Rule(e) for e in plan.thresholds]
        self.slos = [SloTracker(s) for s in slo_specs(plan.slos, planned_s)]
        self._slo_prev: dict[str, tuple[int, int]] = {}
        self.protocol = any(r.th.metric not in METRICS and r.system is None and r.slo is None for r in self.rules)
        self.aborted: _Rule | None = None
        for r in self.rules:
            if r.system is not None:
                r.gauge = _GaugeWindow(r.window_s)
            elif r.window_s is not None:
                r.requests = _RequestWindow(r.window_s, r.th.endpoint, r.th.metric.startswith("service."))
        self._endpoint_windows: dict[str, list[_RequestWindow]] = {}
        for r in self.rules:
            if r.requests is not None and r.requests.endpoint is not None:
                self._endpoint_windows.setdefault(r.requests.endpoint, []).append(r.requests)
        self.slo_values: dict[str, float] = {}

    @property
    def active(self) -> bool:
        return bool(self.rules or self.slos)

    # ---- observer hooks -----------------------------------------------------------------------

    def on_ingest(self, snap: Snapshot) -> None:
        if not self._endpoint_windows:
            return
        for d in snap.endpoints:
            wins = self._endpoint_windows.get(self.session.mask(d.name))
            if not wins:
                continue
            lat = decode_histogram(d.latency)
            svc = decode_histogram(d.service)
            for w in wins:
                w.pending.add_delta(d, lat, svc)

    def on_event(self, event) -> None:
        pass

    def on_monitor(self, sample) -> None:
        pass

    def on_tick(self, now: float, phase: str, target_rps: float, target_vus: int, final: bool,
                row: TimelineRow) -> None:
        s = self.session
        t = row.t
        sec = s.window[-1][1] if s.window else None
        for r in self.rules:
            if r.requests is not None:
                w = r.requests
                if w.endpoint is None:
                    moved = sec is not None and w.add_second(sec)
                else:
                    moved = w.add_second(w.pending)
                    w.pending.clear()
                if (moved and w.full()) or final:
                    self._judge_window(r, t, final)
            elif r.gauge is not None:
                value = self._system_value(r, row)
                if value is not None:
                    r.gauge.add(value)
                if r.window_s is not None and r.gauge.recent is not None \
                        and (len(r.gauge.recent) == r.gauge.recent.maxlen or final):
                    self._judge_gauge_window(r, t)
        self._slo_second(t, row)

    # ---- system under test ------------------------------------------------------------------

    def _system_value(self, r: _Rule, row: TimelineRow) -> float | None:
        mon = row.monitor
        if mon is None or r.system is None:
            return None
        family, fld, _ = r.system
        if family == "target":
            value = mon.sut.get(TARGET_FIELDS[fld])
            if value is None and fld in ("cpu", "memory", "rss_mb"):
                value = mon.metrics.get("process_cpu_percent" if fld == "cpu" else "process_rss_mb")
            return value
        if family == "host":
            return mon.host.get(HOST_FIELDS[fld])
        if family == "series":
            return mon.metrics.get(r.th.endpoint or "")
        # health.uptime: 1 for a second the check(s) were up, 0 for one they were down
        if r.th.endpoint is not None:
            point = mon.health.get(r.th.endpoint)
            return None if point is None else float(point.up)
        if not mon.health:
            return None
        return float(all(p.up for p in mon.health.values()))

    def _gauge_result(self, r: _Rule, windowed: bool) -> ThresholdResult:
        value = r.gauge.stat(r.system[2] if r.system else "avg", windowed) if r.gauge else None
        key = r.th.metric if r.th.endpoint is None else f"{r.th.metric}{{{r.th.endpoint}}}"
        return evaluate(r.th, StatsSummary(), {}, {} if value is None else {key: value})

    def _judge_gauge_window(self, r: _Rule, t: float) -> None:
        res = self._gauge_result(r, windowed=True)
        self._keep_window(r, res, t)

    # ---- windows ----------------------------------------------------------------------------

    def _judge_window(self, r: _Rule, t: float, final: bool) -> None:
        w = r.requests
        if final and not w.full() and r.worst is not None:
            return  # the last partial window adds nothing a full one has not judged
        summary = w.summary(include_filling=final and not w.full())
        res = evaluate(r.th, summary, {r.th.endpoint: summary} if r.th.endpoint else {})
        self._keep_window(r, res, t)

    def _keep_window(self, r: _Rule, res: ThresholdResult, t: float) -> None:
        if res.value is None:
            return  # a window with no data is not a failed window
        r.now = res
        if r.worst is None or (r.worst.ok and (not res.ok or _worse(r.th, res.value, r.worst.value))) \
                or (not r.worst.ok and not res.ok and _worse(r.th, res.value, r.worst.value)):
            r.worst, r.worst_at = res, t

    # ---- SLOs --------------------------------------------------------------------------------

    def _slo_counts(self, tracker: SloTracker) -> tuple[int, int]:
        """Cumulative (good, total) of an SLO's requests so far."""
        s = self.session
        spec = tracker.spec
        agg = s.total if spec.endpoint is None else s.endpoints.get(spec.endpoint)
        if agg is None:
            return 0, 0
        total = agg.requests - agg.error_kinds.get("interrupted", 0)
        if spec.sli == "error_rate":
            bad = agg.errors - agg.error_kinds.get("interrupted", 0)
        elif spec.sli == "availability":
            bad = sum(n for k, n in agg.error_kinds.items() if k in AVAILABILITY_KINDS)
        else:  # latency: slower than the bound, or no answer at all (no latency recorded)
            h = agg.latency
            within = 0
            if h.total_count:
                idx = h.get_counts_array_index(int(spec.latency_ms * 1000))
                within = sum(h.counts[: min(idx + 1, h.counts_len)])
            unanswered = agg.requests - h.total_count
            bad = (h.total_count - within) + max(0, unanswered - agg.error_kinds.get("interrupted", 0))
        return max(0, total - bad), max(0, total)

    def _slo_second(self, t: float, row: TimelineRow) -> None:
        for tracker in self.slos:
            good, total = self._slo_counts(tracker)
            pg, pt = self._slo_prev.get(tracker.spec.name, (0, 0))
            self._slo_prev[tracker.spec.name] = (good, total)
            for message in tracker.add(t, good - pg, total - pt):
                self.session.event("slo", message)
            values = tracker.values()
            self.slo_values.update(values)
            key = f"slo.{tracker.spec.name.lower()}."
            for fld in ("burn_rate", "budget_left"):
                if key + fld in values:
                    row.extra[key + fld] = round(values[key + fld], 4)
        if self.slos:
            self.session.slo_results = [tr.result() for tr in self.slos]

    # ---- results ----------------------------------------------------------------------------

    def evaluate(self, overall: StatsSummary, endpoints: Mapping[str, StatsSummary],
                 extra: Mapping[str, float]) -> list[ThresholdResult]:
        """Every threshold's result now; starts an abort when one that may abort fails."""
        results = []
        elapsed = self.session.elapsed()
        for r in self.rules:
            if r.requests is not None or (r.gauge is not None and r.window_s is not None):
                res = self._windowed_result(r)
            elif r.gauge is not None:
                res = self._gauge_result(r, windowed=False)
            elif r.slo is not None:
                res = evaluate(r.th, overall, endpoints, self.slo_values)
            else:
                res = evaluate(r.th, overall, endpoints, extra)
            res.expr = r.label
            if r.aborted_at is not None:
                res.ok = False
                res.detail = f"{res.detail}; stopped the run at {format_duration(r.aborted_at)}"
            elif r.abort and self._failing_now(r, res) and elapsed >= r.delay_s and self.aborted is None \
                    and self.stop is not None and self.session.ended_wall is None:
                self._abort(r, res, elapsed)
                if r.aborted_at is not None:
                    res.detail = f"{res.detail}; stopped the run at {format_duration(r.aborted_at)}"
            results.append(res)
        return results

    @staticmethod
    def _failing_now(r: _Rule, res: ThresholdResult) -> bool:
        """Whether an abort may trigger: a windowed threshold by its latest window (a window
        that failed during ``delay_abort_eval`` does not abort the run once the delay is over),
        a count only once its verdict can no longer change (``requests > 1000`` at 400 may
        still pass)."""
        if r.window_s is not None:
            return r.now is not None and not r.now.ok
        if res.ok or res.value is None and res.detail == "waiting for a full window":
            return False
        return r.gauge is not None or settled(r.th, res)

    def _windowed_result(self, r: _Rule) -> ThresholdResult:
        if r.worst is None:
            return ThresholdResult(expr=r.label, ok=False, value=None, detail="waiting for a full window")
        limit = f"{r.th.op} {format_value(r.th, r.th.value)}"
        at = format_duration(r.worst_at or 0.0)
        if not r.worst.ok:
            return ThresholdResult(expr=r.label, ok=False, value=r.worst.value,
                                   detail=f"{format_value(r.th, r.worst.value)} in the window to {at}, expected {limit}")
        now = r.now or r.worst
        return ThresholdResult(expr=r.label, ok=True, value=now.value,
                               detail=f"{format_value(r.th, now.value)} {limit} (worst {format_value(r.th, r.worst.value)})")

    def _abort(self, r: _Rule, res: ThresholdResult, elapsed: float) -> None:
        reason = f"threshold '{r.label}' failed: {res.detail}"
        if not self.stop(f"aborted: {reason}"):
            return
        self.aborted = r
        r.aborted_at = round(elapsed, 3)
        self.session.event("threshold", f"aborting the run at {format_duration(elapsed)}: {reason}")


def _worse(th: Threshold, a: float | None, b: float | None) -> bool:
    """Whether ``a`` is further on the failing side of ``th`` than ``b``."""
    if a is None:
        return False
    if b is None:
        return True
    return a > b if th.op in ("<", "<=") else a < b if th.op in (">", ">=") else abs(a - th.value) > abs(b - th.value)
