"""Constant-memory statistics, the coordinator's read half: worker deltas (``EndpointDelta``
with encoded HDR histograms, see ``perftui.worker.stats``) decoded and merged into mergeable
``Aggregate`` sets, summarised into ``StatsSummary`` on demand. Used by the session record and the
journal; never imported by a worker.
"""

from __future__ import annotations

from collections import Counter

from hdrh.histogram import HdrHistogram

from perftui.summary import LatencySummary, StatsSummary
from perftui.worker.messages import EndpointDelta
from perftui.worker.stats import acyclic, clear_histogram, encode_histogram, new_histogram

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def decode_histogram(encoded: bytes) -> HdrHistogram | None:
    return acyclic(HdrHistogram.decode(encoded)) if encoded else None


def summarize_histogram(h: HdrHistogram, total_us: float) -> LatencySummary:
    if not h.total_count:
        return LatencySummary()
    pct = h.get_percentile_to_value_dict(list(PERCENTILES))
    ms = 1000.0
    return LatencySummary(
        min=h.get_min_value() / ms,
        mean=total_us / h.total_count / ms,
        p50=pct[50.0] / ms,
        p90=pct[90.0] / ms,
        p95=pct[95.0] / ms,
        p99=pct[99.0] / ms,
        p999=pct[99.9] / ms,
        max=h.get_max_value() / ms,
    )


class Aggregate:
    """A mergeable set of request statistics (coordinator side)."""

    __slots__ = ("requests", "errors", "status", "error_kinds", "latency", "service", "latency_sum",
                 "service_sum", "bytes_received", "late_starts", "dropped")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.status: Counter[int] = Counter()
        self.error_kinds: Counter[str] = Counter()
        self.latency = new_histogram()
        self.service = new_histogram()
        self.latency_sum = 0.0
        self.service_sum = 0.0
        self.bytes_received = 0
        self.late_starts = 0
        self.dropped = 0

    def add_delta(self, d: EndpointDelta, lat: HdrHistogram | None, svc: HdrHistogram | None) -> None:
        """Add one endpoint delta; ``lat``/``svc`` are its decoded histograms (decode once, add to many)."""
        self.requests += d.requests
        self.errors += d.errors
        self.status.update(d.status)
        self.error_kinds.update(d.error_kinds)
        self.bytes_received += d.bytes_received
        if lat is not None:
            self.latency.add(lat)
            self.latency_sum += d.latency_sum
            self.service.add(svc if svc is not None else lat)
            self.service_sum += d.service_sum

    def merge(self, other: Aggregate) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.status.update(other.status)
        self.error_kinds.update(other.error_kinds)
        if other.latency.total_count:
            self.latency.add(other.latency)
            self.service.add(other.service)
        self.latency_sum += other.latency_sum
        self.service_sum += other.service_sum
        self.bytes_received += other.bytes_received
        self.late_starts += other.late_starts
        self.dropped += other.dropped

    def clear(self) -> None:
        self.requests = self.errors = self.bytes_received = self.late_starts = self.dropped = 0
        self.status.clear()
        self.error_kinds.clear()
        clear_histogram(self.latency)
        clear_histogram(self.service)
        self.latency_sum = self.service_sum = 0.0

    def summary(self, duration_s: float, cls: type[StatsSummary] = StatsSummary, **extra) -> StatsSummary:
        return cls(
            requests=self.requests,
            errors=self.errors,
            rps=self.requests / duration_s if duration_s > 0 else 0.0,
            error_rate=self.errors / self.requests if self.requests else 0.0,
            duration_s=duration_s,
            latency_ms=summarize_histogram(self.latency, self.latency_sum),
            service_time_ms=summarize_histogram(self.service, self.service_sum),
            status_codes={str(k): v for k, v in sorted(self.status.items())},
            error_kinds=dict(sorted(self.error_kinds.items())),
            late_starts=self.late_starts,
            dropped=self.dropped,
            bytes_received=self.bytes_received,
            **extra,
        )
