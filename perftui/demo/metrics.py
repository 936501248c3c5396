"""Prometheus metrics for the demo target, from its own ``CollectorRegistry``.

The HTTP middleware counts every request by method, route *template* and status, times it
into a per-route histogram and tracks the in-flight gauge. Labelled children are cached so
the hot path is two dict lookups plus the prometheus-client increments.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest

#: What ``GET /metrics`` answers with (classic text exposition format).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

UNMATCHED_ROUTE = "<unmatched>"

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DemoMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.process = ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "demo_http_requests",
            "HTTP requests served by the demo target.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "demo_http_request_duration_seconds",
            "Time spent serving HTTP requests, by route template.",
            ("route",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # Plain ints on the hot path, read by the gauges at scrape time (single event loop).
        self.in_flight_now = 0
        self.ws_connections_now = 0
        self.in_flight = Gauge(
            "demo_http_requests_in_flight", "HTTP requests currently being served.", registry=self.registry
        )
        self.in_flight.set_function(lambda: self.in_flight_now)
        self.ws_connections = Gauge(
            "demo_ws_connections", "Open WebSocket connections.", registry=self.registry
        )
        self.ws_connections.set_function(lambda: self.ws_connections_now)
        self.ws_messages = Counter(
            "demo_ws_messages", "WebSocket messages, by direction (in/out).", ("direction",), registry=self.registry
        )
        self.ws_in = self.ws_messages.labels("in")
        self.ws_out = self.ws_messages.labels("out")
        self.mcp_sessions = Gauge("demo_mcp_sessions", "Open MCP sessions.", registry=self.registry)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}

    # -- hot path -----------------------------------------------------------------------
    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(method, route, str(status))
        child.inc()
        hist = self._duration_children.get(route)
        if hist is None:
            hist = self._duration_children[route] = self.duration.labels(route)
        hist.observe(seconds)

    # -- exposition ---------------------------------------------------------------------
    def text(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same numbers as ``/metrics``, as a JSON-friendly dict."""
        routes: dict[str, dict[str, Any]] = {}
        statuses: dict[str, int] = {}
        total = 0
        for family in self.requests.collect():
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                n = int(sample.value)
                route = sample.labels["route"]
                status = sample.labels["status"]
                total += n
                statuses[status] = statuses.get(status, 0) + n
                entry = routes.setdefault(route, {"count": 0, "errors": 0, "client_errors": 0})
                entry["count"] += n
                code = int(status)
                if code >= 500:
                    entry["errors"] += n
                elif code >= 400:
                    entry["client_errors"] += n
        for family in self.duration.collect():
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    entry = routes.get(sample.labels["route"])
                    if entry is not None and entry["count"]:
                        entry["mean_ms"] = round(sample.value / entry["count"] * 1000, 3)
        process: dict[str, float] = {}
        names = {
            "process_cpu_seconds_total": "cpu_seconds",
            "process_resident_memory_bytes": "rss_bytes",
            "process_open_fds": "open_fds",
            "process_virtual_memory_bytes": "vms_bytes",
            "process_start_time_seconds": "start_time_seconds",
        }
        for family in self.process.collect():
            for sample in family.samples:
                key = names.get(sample.name)
                if key:
                    process[key] = sample.value
        out: dict[str, Any] = {
            "requests_total": total,
            "in_flight": _value(self.in_flight),
            "ws_connections": _value(self.ws_connections),
            "ws_messages": {
                "in": _value(self.ws_messages, direction="in"),
                "out": _value(self.ws_messages, direction="out"),
            },
            "mcp_sessions": _value(self.mcp_sessions),
            "process": process,
            "status": statuses,
            "routes": routes,
        }
        if extra:
            out.update(extra)
        return out


def _value(metric: Any, **labels: str) -> int:
    """Current value of an unlabelled gauge/counter (or of one labelled child)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return int(sample.value)
    return 0


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route template."""

    def __init__(self, app: Any, metrics: DemoMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_flight_now += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.in_flight_now -= 1
            route = scope.get("route")
            metrics.observe(
                scope["method"],
                route.path if route is not None else UNMATCHED_ROUTE,
                status,
                time.perf_counter() - start,
            )
