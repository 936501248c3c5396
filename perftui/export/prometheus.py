"""``perftui run --metrics-port PORT``: perftui's own live metrics in the Prometheus text format.

Started by the CLI before the run (a port that cannot be bound is exit 2 before any load), handed
to the viewer (dashboard or headless reporter) as a session observer: it follows the run's
session from its creation through the same ``on_interval`` as every viewer, once per closed
second and at the end. Served by prometheus-client's HTTP server from a thread. ``on_interval``
copies what the metrics need into a snapshot on the event loop's thread; a scrape only reads the
latest snapshot, so it never walks the session's structures while the loop changes them.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import start_http_server

from perftui.errors import UserError
from perftui.session.observer import SessionObserver

# Latency buckets in seconds (Prometheus convention), 1 ms to 60 s.
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _buckets(hist) -> list[tuple[str, float]]:
    """Cumulative counts at BUCKETS_S from an HDR histogram (µs), then +Inf."""
    counts = [0] * len(BUCKETS_S)
    total = 0
    for it in hist.get_recorded_iterator():
        v_s = hist.get_highest_equivalent_value(it.value_iterated_to) / 1e6
        n = it.count_at_value_iterated_to
        total += n
        for i, bound in enumerate(BUCKETS_S):
            if v_s <= bound:
                counts[i] += n
                break
    out, running = [], 0
    for bound, n in zip(BUCKETS_S, counts):
        running += n
        out.append((f"{bound:g}", float(running)))
    out.append(("+Inf", float(total)))
    return out


class _Collector:
    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter

    def collect(self):
        snap = self.exporter.snapshot
        if snap is None:
            return
        for name, (kind, doc, labels, samples) in snap.items():
            if kind == "counter":
                fam = CounterMetricFamily(name, doc, labels=labels)
            elif kind == "histogram":
                fam = HistogramMetricFamily(name, doc, labels=labels)
                for label_values, buckets, total_sum in samples:
                    fam.add_metric(label_values, buckets, total_sum)
                yield fam
                continue
            else:
                fam = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in samples:
                fam.add_metric(label_values, value)
            yield fam


class MetricsExporter(SessionObserver):
    """Serves ``/metrics`` on ``host:port`` for the one run of this process (a session observer)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port, self.host = port, host
        self.snapshot: dict[str, Any] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._lock = threading.Lock()
        self.server = None

    def start(self) -> None:
        try:
            self.server, _thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise UserError(f"--metrics-port {self.port}: cannot listen on {self.host}:{self.port}: "
                            f"{exc.strerror or exc}") from None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def on_interval(self, session, state: str) -> None:
        """A closed second (or the run's start, or its end): the figures scrapes read from now."""
        self.snapshot = self._collect(session, state)

    @staticmethod
    def _collect(s, state: str) -> dict[str, Any]:
        snap: dict[str, Any] = {}

        def put(name: str, kind: str, doc: str, labels: list[str], samples: list) -> None:
            snap[name] = (kind, doc, labels, samples)

        eps = list(s.endpoints.items())
        put("perftui_requests", "counter", "Completed requests (successful or not) by endpoint", ["endpoint"],
            [([n], float(a.requests)) for n, a in eps])
        put("perftui_errors", "counter", "Failed requests by endpoint and error kind", ["endpoint", "kind"],
            [([n, k], float(c)) for n, a in eps for k, c in a.error_kinds.items()])
        put("perftui_responses", "counter", "Responses by endpoint and HTTP status", ["endpoint", "status"],
            [([n, str(k)], float(c)) for n, a in eps for k, c in a.status.items()])
        put("perftui_request_latency_seconds", "histogram",
            "Latency from the intended start (coordinated-omission corrected), by endpoint", ["endpoint"],
            [([n], _buckets(a.latency), a.latency_sum / 1e6) for n, a in eps if a.latency.total_count])
        put("perftui_late_starts", "counter", "Open-model arrivals started late (the generator could not keep up)",
            [], [([], float(s.total.late_starts))])
        put("perftui_dropped", "counter", "Open-model arrivals not started", [], [([], float(s.total.dropped))])
        row = s.timeline[-1] if s.timeline else None
        g = s.generator

        def gauge(name: str, doc: str, value) -> None:
            put(name, "gauge", doc, [], [([], float(value) if value is not None else math.nan)])

        gauge("perftui_target_rate", "Scheduled arrivals per second now (open model)", row.target_rps if row else 0)
        gauge("perftui_started_rate", "Iterations started per second in the last second", row.started_rps if row else 0)
        gauge("perftui_achieved_rate", "Requests completed per second in the last second", row.rps if row else 0)
        gauge("perftui_target_vus", "Virtual users the schedule asks for (closed model)", row.target_vus if row else 0)
        gauge("perftui_vus", "Virtual users running", g.vus)
        gauge("perftui_in_flight", "Requests in flight", g.in_flight)
        gauge("perftui_open_connections", "Open connections to the target", g.open_connections)
        gauge("perftui_queued", "Open-model arrivals waiting for a free slot", g.queued)
        gauge("perftui_workers", "Worker processes", g.workers)
        gauge("perftui_workers_alive", "Worker processes alive", g.workers_alive)
        gauge("perftui_generator_cpu_percent", "CPU of the worker processes, summed (% of one core)", g.cpu_percent)
        gauge("perftui_generator_rss_bytes", "Memory of the worker processes", g.rss_bytes)
        gauge("perftui_loop_lag_seconds", "Worst worker event-loop lag in the last second", g.loop_lag_ms / 1000)
        gauge("perftui_schedule_lag_seconds", "Worst arrival start delay in the last second", g.schedule_lag_ms / 1000)
        gauge("perftui_generator_limited", "1 when perftui itself was the bottleneck in the last second",
              1 if row is not None and row.generator_limited else 0)
        gauge("perftui_elapsed_seconds", "Run time so far", row.t if row else 0)
        put("perftui_phase", "gauge", "The phase running now (1), by name and index", ["phase", "index"],
            [([p.name, str(p.index)], 1.0) for p in s.phases
             if p.start is not None and p.end is None][:1])
        put("perftui_state", "gauge", "The run's state (1): idle, running, paused, finished", ["state"],
            [([st], 1.0 if state == st else 0.0) for st in ("idle", "running", "paused", "finished")])
        put("perftui_threshold_ok", "gauge", "Each threshold's verdict so far: 1 passing, 0 failing", ["threshold"],
            [([str(getattr(t, "expr", "")), ], 1.0 if getattr(t, "ok", False) else 0.0)
             for t in s.threshold_results])
        return snap
