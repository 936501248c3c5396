"""The session document's types: the contract of the JSON session file (docs/session.md).

Every Struct here is a part of ``SessionDocument`` as written to ``session.json`` (and, row by
row and event by event, to the journal; whole, in checkpoints and on the attach wire). Field
names, order and defaults are the file format: change them only together with docs/session.md
and ``SCHEMA_VERSION``. ``perftui.session.record.SessionRecord`` fills them during a run;
readers (``perftui.sessions``, ``perftui.journal.recover``, the dashboard's charts) decode them.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from msgspec import Struct

from perftui.session.stages import BenchmarkRecord, StageRecord
from perftui.session.limit import FindLimitDocument
from perftui.monitor.model import GeneratorWarning, MonitorDocument, MonitorRow, merge_monitor
from perftui.session.endpoint_points import EndpointPoint, merge_points
from perftui.session.sqlfigures import SqlSummary
from perftui.summary import EndpointSummary, LatencySummary, StatsSummary

__all__ = [
    "SCHEMA_VERSION", "Event", "GeneratorState", "GraphQLSummary", "McpSummary", "PhaseRecord", "ProtocolSummary",
    "SessionDocument", "TimelineRow", "WsSummary", "merge_rows",
]

SCHEMA_VERSION = 2
"""2: timeline rows carry per-endpoint figures (``TimelineRow.endpoints``). Version 1 documents
read as before, their rows without endpoints."""


class TimelineRow(Struct, kw_only=True, gc=False):
    """One span of the run (a second until the timeline coarsens). Not tracked by the garbage
    collector (``gc=False``): a row only points down at numbers, dicts and structs, never back,
    and a long run holds thousands of them."""

    t: float
    """Seconds since the run started (end of the row's span)."""
    phase: str
    target_rps: float
    """Scheduled arrivals per second (open model); 0 in closed phases and pauses."""
    target_vus: int
    asked: float = 0.0
    """Open-model arrivals the phases asked for in this span: the target rate over the time each
    phase ran in it (a row that holds a phase change counts each phase's part at its own rate;
    the last row, up to where the load ended). 0 in documents written before it was kept."""
    rps: float
    """Requests completed per second."""
    started_rps: float = 0.0
    """Iterations started per second (compare with ``target_rps``: an iteration may send several requests)."""
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    error_rate: float
    late_starts: int = 0
    dropped: int = 0
    in_flight: int = 0
    vus: int = 0
    open_connections: int = 0
    cpu_percent: float = 0.0
    """Sum over worker processes."""
    rss_mb: float = 0.0
    loop_lag_ms: float = 0.0
    schedule_lag_ms: float = 0.0
    stalls: int = 0
    """Times the workers' event loops were held more than 2 ms: requests answered then were
    timed late by perftui itself, so a tail that moves with this is the generator's own."""
    queued: int = 0
    """Open model: arrivals waiting for a free lane at the end of the span (intended start kept)."""
    extra: dict[str, float] = {}
    """Other per-second series (protocol figures, target metrics) keyed by name."""
    monitor: MonitorRow | None = None
    """Monitoring at the end of the span: target health and metrics, the SUT process, perftui's
    processes, the machine (``perftui.monitor``)."""
    generator_limited: bool = False
    """perftui itself was the bottleneck during this span: its load and latency numbers are suspect."""
    endpoints: dict[str, EndpointPoint] = {}
    """Endpoint name -> its requests, errors and p50/p95/p99 in the span, for the span's busiest
    ``ENDPOINTS_PER_ROW`` endpoints (``perftui.session.endpoint_points``); empty in version 1."""


class PhaseRecord(Struct, kw_only=True):
    index: int
    name: str
    kind: str
    """"open", "closed" or "pause"."""
    target: str
    """Planned load, e.g. "10/s", "10→50/s", "20 VUs"."""
    planned_s: float
    start: float | None = None
    """Seconds since run start when the phase began (None: never reached)."""
    end: float | None = None
    skipped: bool = False


class Event(Struct, kw_only=True):
    t: float
    """Seconds since run start (may be negative for events before start)."""
    kind: str
    """"start", "pause", "resume", "phase", "skip", "rate", "vus", "annotation", "export", "stop", "worker", "warning",
    "health" (target up/down, health fields, metrics failures, SUT process), "generator" (generator-limited from/until),
    "limit" (a breaking-point search: each step's verdict, each recovery, the result)."""
    message: str


class NodeHealth(Struct, kw_only=True):
    """One cluster node's share of the generator (``--cluster``; docs/cluster.md)."""

    node: str
    """The node's address and the start of its Ray node id: ``10.0.0.7/3c2b5a``."""
    workers: int = 0
    workers_alive: int = 0
    cpu_percent: float = 0.0
    """Its workers' CPU now (100 = one core)."""
    loop_lag_ms: float = 0.0
    """Worst event-loop lag of its workers in the last snapshot."""
    late_starts: int = 0
    """Arrivals started late on this node, over the whole run."""
    iterations: int = 0
    """Iterations this node's workers started, over the whole run."""
    requests: int = 0
    """Requests its workers completed, over the whole run."""


class GeneratorState(Struct, kw_only=True):
    workers: int = 0
    workers_alive: int = 0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    open_connections: int = 0
    in_flight: int = 0
    vus: int = 0
    loop_lag_ms: float = 0.0
    schedule_lag_ms: float = 0.0
    stalls: int = 0
    """Worker event-loop stalls (> 2 ms) in the last second, all workers."""
    queued: int = 0
    nodes: list[NodeHealth] = []
    """Per cluster node (``--cluster``), in placement order; empty when the workers run here."""


# ---- protocol figures (WebSocket, GraphQL, MCP) -------------------------------------------


class WsSummary(Struct, kw_only=True):
    connections_opened: int = 0
    """Successful handshakes (``ws_connect`` steps)."""
    connections_failed: int = 0
    """Handshakes that failed (any kind: rejected, refused, timed out, ...)."""
    success_rate: float | None = None
    """opened / (opened + failed); None before any attempt."""
    closed_by_server: int = 0
    """Connections the server (or the network) ended while perftui still used them."""
    open_connections: int = 0
    """Open at the end of the last closed second (the run's end for a finished session)."""
    peak_open_connections: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    """Every message received, including subscription pushes nobody waited for."""
    sent_per_s: float = 0.0
    received_per_s: float = 0.0
    connect_ms: LatencySummary = LatencySummary()
    """Handshake time (from the intended start for the first step of an open-model iteration)."""
    rtt_ms: LatencySummary = LatencySummary()
    """``ws_request`` round trips: send -> matching reply."""
    expect_ms: LatencySummary = LatencySummary()
    """``ws_expect`` waits: step start -> matching message."""
    operations: int = 0
    """Operations of all WebSocket steps (handshakes, sends, round trips, waits, holds, closes)."""
    errors: int = 0
    error_kinds: dict[str, int] = {}


class GraphQLSummary(Struct, kw_only=True):
    requests: int = 0
    errors: int = 0
    """Failed requests: HTTP errors, ``graphql_error`` (a 200 answer with ``errors``), ..."""
    graphql_errors: int = 0
    error_rate: float = 0.0
    rps: float = 0.0
    latency_ms: LatencySummary = LatencySummary()
    error_kinds: dict[str, int] = {}
    operations: list[str] = []
    """Endpoint names of the GraphQL steps."""


class McpSummary(Struct, kw_only=True):
    sessions_initialized: int = 0
    initialize_failed: int = 0
    sessions_expired: int = 0
    """Calls answered 404 (session forgotten by the server), recovered by a new initialize."""
    sessions_terminated: int = 0
    """Sessions ended with DELETE when an open-model virtual user finished (``MCP terminate``)."""
    initialize_ms: LatencySummary = LatencySummary()
    """The handshake: initialize + notifications/initialized."""
    requests: int = 0
    """JSON-RPC calls (the handshakes not included)."""
    errors: int = 0
    jsonrpc_errors: int = 0
    tool_errors: int = 0
    """``tools/call`` results with ``isError: true``."""
    error_rate: float = 0.0
    rps: float = 0.0
    latency_ms: LatencySummary = LatencySummary()
    error_kinds: dict[str, int] = {}
    methods: list[str] = []
    """Endpoint names of the MCP steps."""


class ProtocolSummary(Struct, kw_only=True, omit_defaults=True):
    """What the protocol steps of a run did; a protocol the plan does not use is None (left out
    of the JSON)."""

    ws: WsSummary | None = None
    graphql: GraphQLSummary | None = None
    mcp: McpSummary | None = None
    sql: SqlSummary | None = None
    """SQL steps and their connection pools (``perftui.session.sqlfigures``)."""

    def __bool__(self) -> bool:
        return self.ws is not None or self.graphql is not None or self.mcp is not None or self.sql is not None


class SessionDocument(Struct, kw_only=True):
    schema_version: int
    perftui_version: str
    id: str
    plan_name: str
    plan_file: str | None
    plan: dict[str, Any]
    target: str
    workers: int
    started_at: str | None
    ended_at: str | None
    duration_s: float
    partial: bool
    end_reason: str
    phases: list[PhaseRecord]
    summary: StatsSummary
    endpoints: list[EndpointSummary]
    timeline_resolution_s: float
    timeline: list[TimelineRow]
    thresholds: list[Any]
    events: list[Event]
    generator: GeneratorState
    monitor: MonitorDocument
    generator_warnings: list[GeneratorWarning]
    """Intervals in which perftui itself was the bottleneck."""
    histogram: str
    """Overall latency histogram (µs, corrected), HdrHistogram V2 compressed base64."""
    service_histogram: str
    protocols: ProtocolSummary = msgspec.field(default_factory=ProtocolSummary)
    """WebSocket / GraphQL / MCP figures, for plans with such steps."""
    recovered: bool = False
    """Rebuilt by ``perftui recover`` from the journal and one checkpoint after the run died."""
    slos: list[Any] = []
    """The plan's ``[[slos]]``: error budget, burn rates and alerts (``perftui.slo.SloResult``)."""
    setup: StageRecord | None = None
    """``[[setup]]``: its outcome and its own requests (``perftui.session.stages``)."""
    teardown: StageRecord | None = None
    benchmark: list[BenchmarkRecord] = []
    """A benchmark plan's scenarios: asked and measured sample counts, and their endpoints."""
    find_limit: FindLimitDocument | None = None
    """The breaking-point search of a ``[find_limit]`` run (``perftui.session.limit``); None otherwise."""


def asked_rate(rows: Sequence[TimelineRow]) -> float:
    """The last row's open-model arrivals asked per second over its span, to set against its
    ``started_rps`` (a second holding a phase change asks each phase's rate for its part; its
    ``target_rps`` is the new phase's). A row without ``asked`` (an older document): its
    ``target_rps``."""
    if not rows:
        return 0.0
    row = rows[-1]
    span = row.t - (rows[-2].t if len(rows) > 1 else 0.0)
    return row.asked / span if row.asked and span > 0 else row.target_rps


def merge_rows(rows: list[TimelineRow]) -> TimelineRow:
    """Merge adjacent rows when the timeline coarsens: counts add, rates and gauges average,
    latency percentiles take the maximum (a conservative bound; the exact per-row histograms
    are not kept)."""
    if len(rows) == 1:
        return rows[0]
    n = len(rows)
    last = rows[-1]
    req = sum(r.requests for r in rows)
    err = sum(r.errors for r in rows)

    def mx(attr):
        vals = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return max(vals) if vals else None

    extra: dict[str, float] = {}
    for r in rows:
        for k, v in r.extra.items():
            extra[k] = extra.get(k, 0.0) + v / n
    return TimelineRow(
        t=last.t, phase=last.phase, target_rps=sum(r.target_rps for r in rows) / n, target_vus=last.target_vus,
        asked=sum(r.asked for r in rows),
        rps=sum(r.rps for r in rows) / n, started_rps=sum(r.started_rps for r in rows) / n, p50_ms=mx("p50_ms"), p95_ms=mx("p95_ms"), p99_ms=mx("p99_ms"),
        errors=err, requests=req, error_rate=err / req if req else 0.0,
        late_starts=sum(r.late_starts for r in rows), dropped=sum(r.dropped for r in rows),
        in_flight=last.in_flight, vus=last.vus, open_connections=last.open_connections,
        cpu_percent=sum(r.cpu_percent for r in rows) / n, rss_mb=last.rss_mb,
        loop_lag_ms=max(r.loop_lag_ms for r in rows), schedule_lag_ms=max(r.schedule_lag_ms for r in rows),
        stalls=sum(r.stalls for r in rows), queued=last.queued, extra=extra, monitor=merge_monitor([r.monitor for r in rows]),
        generator_limited=any(r.generator_limited for r in rows),
        endpoints=merge_points([r.endpoints for r in rows]),
    )
