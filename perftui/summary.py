"""Result types shared by the session record, thresholds and the reporters.

These are what a finished (or live) run says about a set of requests: overall, per endpoint or
for a time window. All latencies are milliseconds.
"""

from __future__ import annotations

from msgspec import Struct

# The error kinds the engine classifies failures into (see docs/session.md).
ERROR_KINDS = (
    "connect_refused",
    "connect_timeout",
    "timeout",
    "reset",
    "dns",
    "tls",
    "protocol",
    "http_4xx",
    "http_5xx",
    "expect_failed",
    "redirect_loop",
    # HTTP/2 (perftui.worker.h2transport)
    "h2_stream_reset",
    "h2_goaway",
    # protocol steps (perftui.worker.ws, perftui.worker.rpc)
    "ws_handshake",
    "ws_closed",
    "ws_timeout",
    "ws_protocol",
    "graphql_error",
    "jsonrpc_error",
    "mcp_tool_error",
    # SQL steps (perftui.worker.sql), by SQLSTATE class
    "db_connection",
    "db_auth",
    "db_constraint",
    "db_syntax",
    "db_deadlock",
    "db_serialization",
    "db_timeout",
    "db_data",
    "db_resources",
    "db_param",
    "db_pool_timeout",
    "db_error",
)


class LatencySummary(Struct, kw_only=True, frozen=True):
    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None


class StatsSummary(Struct, kw_only=True):
    requests: int = 0
    """Completed requests (successes and failures)."""
    errors: int = 0
    """Failed requests (any error kind)."""
    rps: float = 0.0
    """Completed requests per second over the summarised span."""
    error_rate: float = 0.0
    """errors / requests (0..1)."""
    duration_s: float = 0.0
    """Length of the span the rates are computed over."""
    latency_ms: LatencySummary = LatencySummary()
    """From each request's intended start (open model) — coordinated-omission corrected."""
    service_time_ms: LatencySummary = LatencySummary()
    """From the moment the request was actually sent."""
    status_codes: dict[str, int] = {}
    error_kinds: dict[str, int] = {}
    late_starts: int = 0
    dropped: int = 0
    bytes_received: int = 0


class EndpointSummary(StatsSummary, kw_only=True):
    name: str = ""
    protocol: str = ""
    """What the endpoint's requests went over: "http/1.1", "h2" (HTTP/2 over TLS), "h2c"
    (cleartext HTTP/2); "" for WebSocket and MCP endpoints."""
    histogram: str = ""
    """Latency histogram (µs, corrected), HdrHistogram V2 compressed base64; set in the session
    document only (``perftui compare`` tests endpoints with it), "" elsewhere and in older files."""
