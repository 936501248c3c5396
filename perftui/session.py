"""The session record: everything a run produced, in constant memory.

The coordinator feeds it worker snapshots (``ingest``) and closes a timeline row every second
(``tick``). The dashboard and the headless reporter read it; ``document()`` turns it into the
JSON session file (schema in docs/session.md). Memory does not grow with run length: histograms
are cumulative, the 10-second window is a ring of per-second aggregates, and the timeline halves
its resolution whenever it reaches ``TIMELINE_MAX_ROWS`` rows.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Struct

from perftui import __version__
from perftui.worker.messages import Snapshot
from perftui.aggregate import Aggregate, decode_histogram, summarize_histogram
from perftui.monitor.model import GeneratorWarning, MonitorDocument, MonitorRow, merge_monitor
from perftui.monitor.state import MonitorState
from perftui.summary import EndpointSummary, LatencySummary, StatsSummary

SCHEMA_VERSION = 1
TIMELINE_MAX_ROWS = 3600
WINDOW_SECONDS = 10


class TimelineRow(Struct, kw_only=True):
    t: float
    """Seconds since the run started (end of the row's span)."""
    phase: str
    target_rps: float
    """Scheduled arrivals per second (open model); 0 in closed phases and pauses."""
    target_vus: int
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
    "health" (target up/down, health fields, metrics failures, SUT process), "generator" (generator-limited from/until)."""
    message: str


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


# ---- protocol figures (WebSocket, GraphQL, MCP) -------------------------------------------

GAUGE_EXTRA = frozenset({"ws.open_connections"})
"""``Snapshot.extra`` keys that are gauges (the worker's value now), not per-interval counts: the
timeline shows their sum over workers at the end of each second instead of a sum over snapshots."""


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

    def __bool__(self) -> bool:
        return self.ws is not None or self.graphql is not None or self.mcp is not None


def _roles_of(plan_dict: dict) -> dict[str, str]:
    from perftui.plan import Plan
    from perftui.plan import protocol_endpoints

    try:
        return protocol_endpoints(msgspec.convert(plan_dict, Plan))
    except (msgspec.ValidationError, TypeError, ValueError):
        return {}


def _encoded(agg: Aggregate | None) -> str:
    return agg.latency.encode().decode() if agg is not None and agg.latency.total_count else ""


def _merged(aggs: list[Aggregate]) -> Aggregate:
    out = Aggregate()
    for a in aggs:
        out.merge(a)
    return out


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


def new_session_id() -> str:
    """Sortable and unique enough for one user's runs: ``20261121-063712-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionRecord:
    def __init__(self, *, plan_name: str, plan_file: str | None, plan_dict: dict, target: str,
                 workers: int, phases: list[PhaseRecord], session_id: str | None = None):
        self.id = session_id or new_session_id()
        self.plan_name = plan_name
        self.plan_file = plan_file
        self.plan_dict = plan_dict
        self.target = target
        self.workers = workers
        self.phases = phases
        self.started_wall: float | None = None
        self.started_mono: float | None = None
        self.fixed_span: float | None = None
        """The run's length when it is not measured by this process's clock: a recovered run
        (``journal.recover``) has its true length here, and no ``started_mono``."""
        self.recovered = False
        self.mask: Callable[[str], str] = str
        """Applied to every event message: the coordinator's ``redact.masker`` (monitor
        messages name health and metrics URLs, which may hold ${ENV} values)."""
        self.ended_wall: float | None = None
        self.end_reason = ""
        self.partial = True
        self.events: list[Event] = []
        self.endpoints: dict[str, Aggregate] = {}
        self.total = Aggregate()
        self.second = Aggregate()
        self.window: deque[tuple[float, Aggregate]] = deque(maxlen=WINDOW_SECONDS)
        self._spare: list[Aggregate] = []
        self.endpoint_window: dict[str, deque[int]] = {}
        self.endpoint_second: dict[str, int] = {}
        self.endpoint_protocol: dict[str, str] = {}
        """Endpoint name -> the protocol its requests last went over ("http/1.1", "h2", "h2c")."""
        self.timeline: list[TimelineRow] = []
        self.observers: list[Any] = []
        """Objects told about every ``ingest``/``tick``/``event`` (the journal, attached viewers):
        each may define ``on_ingest(snap)``, ``on_tick(now, phase, target_rps, target_vus, final,
        row)`` and ``on_event(event)``."""
        self.resolution = 1.0
        self._pending: list[TimelineRow] = []
        self.worker_state: dict[int, Snapshot] = {}
        self.generator = GeneratorState(workers=workers)
        self.last_errors: deque[str] = deque(maxlen=50)
        self.threshold_results: list[Any] = []
        self.iterations = 0
        self._second_late = 0
        self._second_dropped = 0
        self._second_lag = 0.0
        self._second_iterations = 0
        self._second_sched_lag = 0.0
        self._second_stalls = 0
        self.extra_now: dict[str, float] = {}
        self.extra_total: dict[str, float] = {}
        """Cumulative sums of the counter keys of ``Snapshot.extra``."""
        self.gauges: dict[str, float] = {}
        """Gauge keys of ``Snapshot.extra`` (``GAUGE_EXTRA``): the sum over workers at the last tick."""
        self.gauge_peaks: dict[str, float] = {}
        self._worker_gauges: dict[int, dict[str, float]] = {}
        self._roles: dict[str, str] | None = None
        self.monitor = MonitorState(emit=self.event)
        """Target health/metrics, SUT process and generator self-health (``perftui.monitor.state``)."""
        self._last_tick: float | None = None
        self._ticks = 0
        """Seconds closed: the cumulative totals and the window change only then."""
        self._merges = 0
        """Snapshots merged: the per-endpoint aggregates change with each."""
        self._views: dict[str, tuple[tuple[int, ...], Any]] = {}
        """Summaries computed once per change of what they derive from, whoever asks (thresholds,
        the dashboard, the reporters): a percentile walk is a Python loop over the histogram."""
        self._window_scratch = Aggregate()
        self.boundary = 0.0
        """End of the second being filled; snapshots stamped after it wait in ``_next``."""
        self._next: list[Snapshot] = []

    # ---- time -------------------------------------------------------------------------

    def mark_started(self) -> None:
        self.started_wall = time.time()
        self.started_mono = time.monotonic()
        self.boundary = self.started_mono + 1.0

    def elapsed(self, now: float | None = None) -> float:
        if self.started_mono is None:
            return 0.0
        return (now if now is not None else time.monotonic()) - self.started_mono

    def event(self, kind: str, message: str) -> Event:
        ev = Event(t=round(self.elapsed(), 3), kind=kind, message=self.mask(message))
        self.add_event(ev)
        return ev

    def add_event(self, ev: Event) -> None:
        self.events.append(ev)
        for ob in self.observers:
            if hasattr(ob, "on_event"):
                ob.on_event(ev)

    # ---- ingest -----------------------------------------------------------------------

    def ingest(self, snap: Snapshot) -> None:
        """Merge one worker snapshot into the second its timestamp falls in. Histograms are
        decoded once and added to the endpoint's cumulative aggregate and the current second."""
        for ob in self.observers:
            if hasattr(ob, "on_ingest"):
                ob.on_ingest(snap)
        self._place(snap)

    def _place(self, snap: Snapshot) -> None:
        if snap.t > self.boundary + 0.005:
            self._next.append(snap)
            return
        self._merge(snap)

    def _merge(self, snap: Snapshot) -> None:
        self._merges += 1
        for d in snap.endpoints:
            lat = decode_histogram(d.latency)
            svc = decode_histogram(d.service)
            agg = self.endpoints.get(d.name)
            if agg is None:
                agg = self.endpoints[d.name] = Aggregate()
                self.endpoint_window[d.name] = deque(maxlen=WINDOW_SECONDS)
            agg.add_delta(d, lat, svc)
            self.second.add_delta(d, lat, svc)
            self.endpoint_second[d.name] = self.endpoint_second.get(d.name, 0) + d.requests
            if d.protocol:
                self.endpoint_protocol[d.name] = d.protocol
        self.second.late_starts += snap.late_starts
        self.second.dropped += snap.dropped
        self.iterations += snap.iterations
        self._second_iterations += snap.iterations
        self._second_lag = max(self._second_lag, snap.loop_lag_ms)
        self._second_sched_lag = max(self._second_sched_lag, snap.schedule_lag_ms)
        self._second_stalls += snap.stalls
        for e in snap.errors_sample:
            self.last_errors.append(e)
        self.worker_state[snap.worker] = snap
        for k, v in snap.extra.items():
            if k in GAUGE_EXTRA:
                self._worker_gauges.setdefault(snap.worker, {})[k] = v
                continue
            self.extra_now[k] = self.extra_now.get(k, 0.0) + v
            self.extra_total[k] = self.extra_total.get(k, 0.0) + v

    def tick(self, now: float, phase: str, target_rps: float, target_vus: int, *, final: bool = False) -> TimelineRow:
        """Close the second ending at ``now``: a timeline row, the 10 s window, the cumulative
        totals. ``final`` folds in everything still waiting (the last, partial second)."""
        if final:
            for snap in self._next:
                self._merge(snap)
            self._next = []
        sec = self.second
        span = max(1e-3, now - (self._last_tick if self._last_tick is not None else self.started_mono or now))
        self._last_tick = now
        self._ticks += 1
        summary_lat = sec.latency
        pct = summary_lat.get_percentile_to_value_dict([50.0, 95.0, 99.0]) if summary_lat.total_count else {}
        gen = self._generator_now()
        if self._worker_gauges:
            gauges: dict[str, float] = {}
            for values in self._worker_gauges.values():
                for k, v in values.items():
                    gauges[k] = gauges.get(k, 0.0) + v
            self.gauges = gauges
            for k, v in gauges.items():
                if v > self.gauge_peaks.get(k, 0.0):
                    self.gauge_peaks[k] = v
            self.extra_now.update(gauges)
        row = TimelineRow(
            t=round(self.elapsed(now), 3), phase=phase, target_rps=round(target_rps, 3), target_vus=target_vus,
            rps=round(sec.requests / span, 3), started_rps=round(self._second_iterations / span, 3),
            requests=sec.requests, errors=sec.errors,
            error_rate=sec.errors / sec.requests if sec.requests else 0.0,
            p50_ms=pct[50.0] / 1000 if pct else None, p95_ms=pct[95.0] / 1000 if pct else None,
            p99_ms=pct[99.0] / 1000 if pct else None, late_starts=sec.late_starts, dropped=sec.dropped,
            in_flight=gen.in_flight, vus=gen.vus, open_connections=gen.open_connections,
            cpu_percent=round(gen.cpu_percent, 1), rss_mb=round(gen.rss_bytes / 2**20, 1),
            loop_lag_ms=round(self._second_lag, 2), schedule_lag_ms=round(self._second_sched_lag, 2),
            stalls=self._second_stalls, queued=gen.queued, extra=dict(self.extra_now),
        )
        self.generator = gen
        row.monitor, row.generator_limited = self.monitor.close_second(row, self.timeline, self._pending, final=final)
        self._append_row(row)
        self.total.merge(sec)
        # rotate the window ring, reusing aggregates so memory stays flat
        if len(self.window) == self.window.maxlen:
            _, oldest = self.window.popleft()
            self._spare.append(oldest)
        self.window.append((now, sec))
        fresh = self._spare.pop() if self._spare else Aggregate()
        fresh.clear()
        self.second = fresh
        for name, n in self.endpoint_second.items():
            self.endpoint_window[name].append(n)
        self.endpoint_second = {name: 0 for name in self.endpoint_second}
        self._second_lag = self._second_sched_lag = 0.0
        self._second_stalls = 0
        self._second_iterations = 0
        self.extra_now = {}
        self.boundary = now + 1.0
        waiting, self._next = self._next, []
        for snap in waiting:
            self._place(snap)
        for ob in self.observers:
            if hasattr(ob, "on_tick"):
                ob.on_tick(now, phase, target_rps, target_vus, final, row)
        return row

    def _generator_now(self) -> GeneratorState:
        snaps = list(self.worker_state.values())
        return GeneratorState(
            workers=self.workers,
            workers_alive=self.generator.workers_alive,
            cpu_percent=sum(s.cpu_percent for s in snaps),
            rss_bytes=sum(s.rss_bytes for s in snaps),
            open_connections=sum(s.open_connections for s in snaps),
            in_flight=sum(s.in_flight for s in snaps),
            vus=sum(s.vus for s in snaps),
            loop_lag_ms=max((s.loop_lag_ms for s in snaps), default=0.0),
            schedule_lag_ms=max((s.schedule_lag_ms for s in snaps), default=0.0),
            stalls=self._second_stalls, queued=sum(s.queued for s in snaps),
        )

    def _append_row(self, row: TimelineRow) -> None:
        if self.resolution == 1.0:
            self.timeline.append(row)
        else:
            self._pending.append(row)
            if len(self._pending) * 1.0 >= self.resolution:
                self.timeline.append(merge_rows(self._pending))
                self._pending = []
        if len(self.timeline) >= TIMELINE_MAX_ROWS:
            self.timeline = [merge_rows(self.timeline[i : i + 2]) for i in range(0, len(self.timeline), 2)]
            self.resolution *= 2

    # ---- views ------------------------------------------------------------------------

    def run_seconds(self) -> float:
        if self.fixed_span is not None:
            return max(1e-9, self.fixed_span)
        if self.started_mono is None:
            return 0.0
        return max(1e-9, self.timeline[-1].t if self.timeline else self.elapsed())

    @property
    def _ran(self) -> bool:
        return self.started_mono is not None or self.fixed_span is not None

    def _view(self, name: str, version: tuple[int, ...], compute):
        if not self.timeline:  # before the first row, spans follow the clock: nothing to keep
            return compute()
        version = (*version, len(self.timeline))
        hit = self._views.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        self._views[name] = (version, value)
        return value

    def summary(self) -> StatsSummary:
        """Everything so far (closed seconds only)."""
        return self._view("summary", (self._ticks,),
                          lambda: self.total.summary(self.run_seconds()))

    def window_summary(self) -> StatsSummary:
        """The last 10 closed seconds."""
        def compute() -> StatsSummary:
            agg = self._window_scratch
            agg.clear()
            for _, a in self.window:
                agg.merge(a)
            return agg.summary(float(len(self.window)) or 1.0)

        return self._view("window", (self._ticks, len(self.window)), compute)

    def endpoint_summaries(self) -> list[EndpointSummary]:
        span = self.run_seconds()
        return list(self._view("endpoints", (self._ticks, self._merges), lambda: [
            agg.summary(span, EndpointSummary, name=name, protocol=self.endpoint_protocol.get(name, ""))
            for name, agg in self.endpoints.items()]))

    def endpoint_recent_rps(self, name: str) -> float:
        w = self.endpoint_window.get(name)
        return sum(w) / len(w) if w else 0.0

    # ---- protocols --------------------------------------------------------------------

    def protocol_roles(self) -> dict[str, str]:
        """Endpoint name -> role (``ws.connect``, ``ws.request``, ``graphql``, ``mcp``, ...) for the
        protocol endpoints of the plan (``perftui.plan.step_endpoints``)."""
        if self._roles is None:
            self._roles = _roles_of(self.plan_dict)
        return self._roles

    def protocol_summary(self) -> ProtocolSummary:
        """WebSocket / GraphQL / MCP figures so far (what the session JSON has under
        ``protocols``); each part is None when the plan has no such step. It merges the protocol
        endpoints' histograms, so it is computed once per change of the data, whoever asks."""
        return self._view("protocols", (self._ticks, self._merges), self._protocol_summary)

    def _protocol_summary(self) -> ProtocolSummary:
        roles = self.protocol_roles()
        if not roles:
            return ProtocolSummary()
        by_role: dict[str, list[tuple[str, Aggregate]]] = {}
        for name, role in roles.items():
            agg = self.endpoints.get(name)
            by_role.setdefault(role, []).append((name, agg if agg is not None else Aggregate()))
        span = self.run_seconds() if self._ran else 0.0
        total = self.extra_total

        def aggs(*wanted: str) -> list[Aggregate]:
            return [a for r in wanted for _, a in by_role.get(r, ())]

        def lat(items: list[Aggregate]) -> LatencySummary:
            m = _merged(items)
            return summarize_histogram(m.latency, m.latency_sum)

        out = ProtocolSummary()
        ws_roles = [r for r in by_role if r.startswith("ws.")]
        if ws_roles:
            connect = _merged(aggs("ws.connect"))
            every = _merged(aggs(*ws_roles))
            opened = connect.requests - connect.errors
            sent = int(total.get("ws.messages_sent", 0))
            received = int(total.get("ws.messages_received", 0))
            out.ws = WsSummary(
                connections_opened=opened, connections_failed=connect.errors,
                success_rate=opened / connect.requests if connect.requests else None,
                closed_by_server=int(total.get("ws.closed_by_server", 0)),
                open_connections=int(self.gauges.get("ws.open_connections", 0)),
                peak_open_connections=int(self.gauge_peaks.get("ws.open_connections", 0)),
                messages_sent=sent, messages_received=received,
                sent_per_s=round(sent / span, 3) if span else 0.0,
                received_per_s=round(received / span, 3) if span else 0.0,
                connect_ms=summarize_histogram(connect.latency, connect.latency_sum),
                rtt_ms=lat(aggs("ws.request")), expect_ms=lat(aggs("ws.expect")),
                operations=every.requests, errors=every.errors, error_kinds=dict(sorted(every.error_kinds.items())),
            )
        if "graphql" in by_role:
            g = _merged(aggs("graphql"))
            out.graphql = GraphQLSummary(
                requests=g.requests, errors=g.errors, graphql_errors=g.error_kinds.get("graphql_error", 0),
                error_rate=g.errors / g.requests if g.requests else 0.0,
                rps=round(g.requests / span, 3) if span else 0.0,
                latency_ms=summarize_histogram(g.latency, g.latency_sum),
                error_kinds=dict(sorted(g.error_kinds.items())), operations=[n for n, _ in by_role["graphql"]],
            )
        if "mcp" in by_role:
            init = _merged(aggs("mcp.initialize"))
            calls = _merged(aggs("mcp"))
            ended = _merged(aggs("mcp.terminate"))
            out.mcp = McpSummary(
                sessions_initialized=init.requests - init.errors, initialize_failed=init.errors,
                sessions_expired=int(total.get("mcp.sessions_expired", 0)),
                sessions_terminated=ended.requests - ended.errors,
                initialize_ms=summarize_histogram(init.latency, init.latency_sum),
                requests=calls.requests, errors=calls.errors,
                jsonrpc_errors=calls.error_kinds.get("jsonrpc_error", 0),
                tool_errors=calls.error_kinds.get("mcp_tool_error", 0),
                error_rate=calls.errors / calls.requests if calls.requests else 0.0,
                rps=round(calls.requests / span, 3) if span else 0.0,
                latency_ms=summarize_histogram(calls.latency, calls.latency_sum),
                error_kinds=dict(sorted(calls.error_kinds.items())), methods=[n for n, _ in by_role["mcp"]],
            )
        return out

    def protocol_extra(self, summary: ProtocolSummary | None = None) -> dict[str, float]:
        """The protocol metrics thresholds can name (``ws.connect.p95``, ``ws.rtt.p95``,
        ``ws.success_rate``, ``ws.messages_received``, ``graphql.error_rate``, ``mcp.p95``,
        ``mcp.initialize.p95``, ...; per endpoint as ``ws.rtt.p95{WS echo}``), for
        ``perftui.thresholds.evaluate(th, overall, endpoints, extra)``. Latencies in ms, rates as
        fractions; a figure without data is left out (the threshold then fails with "no data")."""
        p = summary if summary is not None else self.protocol_summary()
        out: dict[str, float] = {}

        def latency(prefix: str, ls: LatencySummary, suffix: str = "") -> None:
            for f in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max"):
                v = getattr(ls, f)
                if v is not None:
                    out[f"{prefix}.{f}{suffix}"] = float(v)

        if p.ws is not None:
            w = p.ws
            latency("ws.connect", w.connect_ms)
            latency("ws.rtt", w.rtt_ms)
            latency("ws.expect", w.expect_ms)
            if w.success_rate is not None:
                out["ws.success_rate"] = w.success_rate
            for k in ("connections_opened", "connections_failed", "closed_by_server", "messages_sent",
                      "messages_received", "operations", "errors"):
                out[f"ws.{k}"] = float(getattr(w, k))
            out["ws.peak_connections"] = float(w.peak_open_connections)
            out["ws.messages_sent.rps"] = w.sent_per_s
            out["ws.messages_received.rps"] = w.received_per_s
            if w.operations:
                out["ws.error_rate"] = w.errors / w.operations
        if p.graphql is not None:
            g = p.graphql
            latency("graphql", g.latency_ms)
            out.update({"graphql.requests": float(g.requests), "graphql.errors": float(g.errors),
                        "graphql.graphql_errors": float(g.graphql_errors), "graphql.rps": g.rps})
            if g.requests:
                out["graphql.error_rate"] = g.error_rate
                out["graphql.success_rate"] = 1.0 - g.error_rate
        if p.mcp is not None:
            m = p.mcp
            latency("mcp", m.latency_ms)
            latency("mcp.initialize", m.initialize_ms)
            out.update({"mcp.requests": float(m.requests), "mcp.errors": float(m.errors), "mcp.rps": m.rps,
                        "mcp.jsonrpc_errors": float(m.jsonrpc_errors), "mcp.tool_errors": float(m.tool_errors),
                        "mcp.sessions": float(m.sessions_initialized), "mcp.sessions_expired": float(m.sessions_expired)})
            if m.requests:
                out["mcp.error_rate"] = m.error_rate
                out["mcp.success_rate"] = 1.0 - m.error_rate
        # per endpoint: <family>.<latency>{name}, .requests, .errors, .rps, .error_rate, .success_rate
        families = {"ws.connect": "ws.connect", "ws.request": "ws.rtt", "ws.expect": "ws.expect",
                    "graphql": "graphql", "mcp": "mcp", "mcp.initialize": "mcp.initialize"}
        if p:
            span = self.run_seconds() if self._ran else 0.0
            for name, role in self.protocol_roles().items():
                family = families.get(role)
                agg = self.endpoints.get(name)
                if family is None or agg is None:
                    continue
                suffix = f"{{{name}}}"
                latency(family, summarize_histogram(agg.latency, agg.latency_sum), suffix)
                out[f"{family}.requests{suffix}"] = float(agg.requests)
                out[f"{family}.errors{suffix}"] = float(agg.errors)
                if span:
                    out[f"{family}.rps{suffix}"] = agg.requests / span
                if agg.requests:
                    out[f"{family}.error_rate{suffix}"] = agg.errors / agg.requests
                    out[f"{family}.success_rate{suffix}"] = 1.0 - agg.errors / agg.requests
        return out

    # ---- export -----------------------------------------------------------------------

    def document(self) -> SessionDocument:
        total = self.total
        return SessionDocument(
            schema_version=SCHEMA_VERSION,
            perftui_version=__version__,
            id=self.id,
            plan_name=self.plan_name,
            plan_file=self.plan_file,
            plan=self.plan_dict,
            target=self.target,
            workers=self.workers,
            started_at=_iso(self.started_wall),
            ended_at=_iso(self.ended_wall),
            duration_s=round(self.run_seconds(), 3) if self._ran else 0.0,
            recovered=self.recovered,
            partial=self.partial,
            end_reason=self.end_reason,
            phases=self.phases,
            summary=self.summary(),
            endpoints=[msgspec.structs.replace(e, histogram=_encoded(self.endpoints.get(e.name)))
                       for e in self.endpoint_summaries()],
            timeline_resolution_s=self.resolution,
            timeline=self.timeline + ([merge_rows(self._pending)] if self._pending else []),
            thresholds=self.threshold_results,
            events=self.events,
            generator=self.generator,
            monitor=self.monitor.document(),
            generator_warnings=list(self.monitor.generator_warnings),
            histogram=total.latency.encode().decode() if total.latency.total_count else "",
            service_histogram=total.service.encode().decode() if total.service.total_count else "",
            protocols=self.protocol_summary(),
        )

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self.document()), indent=2)


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
        rps=sum(r.rps for r in rows) / n, started_rps=sum(r.started_rps for r in rows) / n, p50_ms=mx("p50_ms"), p95_ms=mx("p95_ms"), p99_ms=mx("p99_ms"),
        errors=err, requests=req, error_rate=err / req if req else 0.0,
        late_starts=sum(r.late_starts for r in rows), dropped=sum(r.dropped for r in rows),
        in_flight=last.in_flight, vus=last.vus, open_connections=last.open_connections,
        cpu_percent=sum(r.cpu_percent for r in rows) / n, rss_mb=last.rss_mb,
        loop_lag_ms=max(r.loop_lag_ms for r in rows), schedule_lag_ms=max(r.schedule_lag_ms for r in rows),
        stalls=sum(r.stalls for r in rows), queued=last.queued, extra=extra, monitor=merge_monitor([r.monitor for r in rows]),
        generator_limited=any(r.generator_limited for r in rows),
    )
