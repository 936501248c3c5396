"""The live session record: everything a run produced, in constant memory.

The coordinator (``perftui.run.coordinator``) creates one per run, feeds it worker snapshots
(``ingest``) and closes a timeline row every second (``tick``); an attached viewer feeds its
replica the same calls (``perftui.run.attach``), and ``perftui.journal`` captures and restores
it for checkpoints and recovery. The dashboard and the headless reporter read it;
``document()`` fills the session document's Structs (``perftui.session.schema``, the contract
in docs/session.md). Observers (``perftui.session.observer.SessionObserver``: the journal, the
attach server, ...) are registered with ``add_observer`` and told about everything that enters.

Memory does not grow with run length: histograms are cumulative, the 10-second window is a ring
of per-second aggregates, and the timeline halves its resolution whenever it reaches
``TIMELINE_MAX_ROWS`` rows.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from perftui import __version__
from perftui.aggregate import Aggregate, decode_histogram, encode_histogram
from perftui.monitor.model import Sample
from perftui.monitor.state import MonitorState
from perftui.session.endpoint_points import EndpointSeconds, percentiles_ms
from perftui.session.limit import FindLimitDocument
from perftui.session.observer import SessionObserver
from perftui.session.protocols import protocol_extra, protocol_summary
from perftui.session.sqlfigures import sql_extra
from perftui.session.schema import (
    SCHEMA_VERSION, Event, GeneratorState, NodeHealth, PhaseRecord, ProtocolSummary, SessionDocument, TimelineRow, merge_rows,
)
from perftui.session.stages import BenchmarkRecord, StageRecord
from perftui.session.timeline import Timeline
from perftui.summary import EndpointSummary, StatsSummary
from perftui.worker.messages import Snapshot

__all__ = ["GAUGE_EXTRA", "TIMELINE_MAX_ROWS", "WINDOW_SECONDS", "SessionRecord", "new_session_id"]

TIMELINE_MAX_ROWS = 3600
WINDOW_SECONDS = 10

GAUGE_EXTRA = frozenset({"ws.open_connections"})
"""``Snapshot.extra`` keys that are gauges (the worker's value now), not per-interval counts: the
timeline shows their sum over workers at the end of each second instead of a sum over snapshots.
Keys starting with ``pool.`` (SQL connection pools) are gauges too."""


def new_session_id() -> str:
    """Sortable and unique enough for one user's runs: ``20261121-063712-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")



def _encoded(agg: Aggregate | None) -> str:
    """An endpoint's latency histogram in the document's form (compressed base64 V2), or ""."""
    return encode_histogram(agg.latency).decode() if agg is not None and agg.latency.total_count else ""

class SessionRecord:
    """One run's live record (see the module docstring); ``document()`` is its session file."""

    def __init__(self, *, plan_name: str, plan_file: str | None, plan_dict: dict, target: str,
                 workers: int, phases: list[PhaseRecord], session_id: str | None = None,
                 roles: Mapping[str, str] | None = None):
        self.id = session_id or new_session_id()
        self.plan_name = plan_name
        self.plan_file = plan_file
        self.plan_dict = plan_dict
        """The plan as run, redacted: written into the document as is, never read back."""
        self.roles: dict[str, str] = dict(roles or {})
        """Endpoint name -> protocol role for the plan's protocol endpoints (masked names, as the
        snapshots' endpoints are): ``perftui.plan.protocol_endpoints`` of the plan, given by
        whoever creates the record; it is all the record needs of the plan's structure."""
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
        self.endpoint_points = EndpointSeconds()
        """The second being filled, per endpoint: each timeline row's ``endpoints``."""
        """Endpoint name -> the protocol its requests last went over ("http/1.1", "h2", "h2c")."""
        self.timeline = Timeline()
        """Closed rows, kept compact (``perftui.session.timeline``)."""
        self.observers: list[SessionObserver] = []
        """Told about every ingest, tick, event and monitoring sample, in registration order
        (``add_observer``; the journal, the attach server, ...)."""
        self.resolution = 1.0
        self._pending: list[TimelineRow] = []
        self.worker_state: dict[int, Snapshot] = {}
        self.generator = GeneratorState(workers=workers)
        self.worker_nodes: dict[int, str] = {}
        """Worker index -> cluster node (``--cluster``); empty when the workers run here."""
        self.lost_workers: set[int] = set()
        self.node_totals: dict[str, list[int]] = {}
        """Cluster node -> [iterations, late starts, requests] over the run."""
        self.last_errors: deque[str] = deque(maxlen=50)
        self.threshold_results: list[Any] = []
        self.slo_results: list[Any] = []
        """``perftui.slo.SloResult`` per ``[[slos]]`` entry, updated every second."""
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
        self._peak_open: dict[int, bool] = {}
        """Per worker: a ``*_peak`` gauge has had a value in the current second already."""
        self.monitor = MonitorState(emit=self.event, forward=self._on_monitor_sample)
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
        self.setup: StageRecord | None = None
        self.teardown: StageRecord | None = None
        self.benchmark: list[BenchmarkRecord] = []
        """Setup, teardown and benchmark records (``perftui.run.stages`` fills them)."""
        self.find_limit: FindLimitDocument | None = None
        """A breaking-point search's steps and result (``perftui.run.limit``), kept up to date as it goes."""

    # ---- time -------------------------------------------------------------------------

    def mark_started(self) -> None:
        self.started_wall = time.time()
        self.started_mono = time.monotonic()
        self.boundary = self.started_mono + 1.0

    def elapsed(self, now: float | None = None) -> float:
        if self.started_mono is None:
            return 0.0
        return (now if now is not None else time.monotonic()) - self.started_mono

    def event(self, kind: str, message: str, at: float | None = None) -> Event:
        """Record an event now, or as of the monotonic time ``at``."""
        ev = Event(t=round(self.elapsed(at), 3), kind=kind, message=self.mask(message))
        self.add_event(ev)
        return ev

    def add_event(self, ev: Event) -> None:
        self.events.append(ev)
        self._tell("on_event", ev)

    # ---- observers --------------------------------------------------------------------

    def add_observer(self, observer: SessionObserver, *, state: str | None = None) -> None:
        """From now on, tell ``observer`` about every ingest, tick, event, monitoring sample and
        interval. With the run's ``state``, it gets the record as it is now at once (``on_interval``)."""
        self.observers.append(observer)
        if state is not None:
            observer.on_interval(self, state)

    def interval_closed(self, state: str) -> None:
        """The run has drawn its conclusions from the last closed second, or (``finished``) has
        ended: every observer's ``on_interval``. Called by the coordinator (or a viewer's replica)."""
        self._tell("on_interval", self, state)

    def _tell(self, method: str, *args) -> None:
        """Call one hook on every observer. An observer that raises (a bug in a viewer, an
        exporter, a judge) is dropped with a warning event: it never stops the run's clock or
        its record."""
        for ob in list(self.observers):
            try:
                getattr(ob, method)(*args)
            except Exception as exc:  # noqa: BLE001 - isolated, reported, and the run goes on
                if ob in self.observers:
                    self.observers.remove(ob)
                self.event("warning", f"{type(ob).__name__} stopped following the run after an internal error "
                                      f"({method}: {type(exc).__name__}: {exc}); the run and its record go on")

    def remove_observer(self, observer: SessionObserver) -> None:
        """Stop telling ``observer`` (no error when it was not registered)."""
        if observer in self.observers:
            self.observers.remove(observer)

    def _on_monitor_sample(self, sample: Sample) -> None:
        self._tell("on_monitor", sample)

    # ---- ingest -----------------------------------------------------------------------

    def ingest(self, snap: Snapshot) -> None:
        """Merge one worker snapshot into the second its timestamp falls in. Histograms are
        decoded once and added to the endpoint's cumulative aggregate and the current second."""
        self._tell("on_ingest", snap)
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
            self.endpoint_points.add(d.name, d.requests, d.errors, lat)
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
        if self.worker_nodes:
            totals = self.node_totals.setdefault(self.worker_nodes.get(snap.worker, "?"), [0, 0, 0])
            totals[0] += snap.iterations
            totals[1] += snap.late_starts
            totals[2] += sum(d.requests for d in snap.endpoints)
        for k, v in snap.extra.items():
            if k in GAUGE_EXTRA or k.startswith("pool."):  # SQL pools' gauges (perftui.worker.sql)
                g = self._worker_gauges.setdefault(snap.worker, {})
                # "<name>_peak": the most at once in the snapshot's interval; the row keeps the
                # second's most, not its last quarter's
                g[k] = max(v, g.get(k, 0.0)) if k.endswith("_peak") and self._peak_open.get(snap.worker) else v
                self._peak_open[snap.worker] = True
                continue
            self.extra_now[k] = self.extra_now.get(k, 0.0) + v
            self.extra_total[k] = self.extra_total.get(k, 0.0) + v

    def tick(self, now: float, phase: str, target_rps: float, target_vus: int, *, final: bool = False,
             asked: float = 0.0) -> TimelineRow:
        """Close the second ending at ``now``: a timeline row, the 10 s window, the cumulative
        totals. ``final`` folds in everything still waiting (the last, partial second). ``asked``:
        the open-model arrivals the phases asked for in the row's span."""
        if final:
            for snap in self._next:
                self._merge(snap)
            self._next = []
        sec = self.second
        span = max(1e-3, now - (self._last_tick if self._last_tick is not None else self.started_mono or now))
        self._last_tick = now
        self._ticks += 1
        summary_lat = sec.latency
        # the same values as hdrh's get_percentile_to_value_dict, without its walk over every counter
        p50, p95, p99 = percentiles_ms(summary_lat) if summary_lat.total_count else (None, None, None)
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
            self._peak_open = {}
        row = TimelineRow(
            t=round(self.elapsed(now), 3), phase=phase, target_rps=round(target_rps, 3), target_vus=target_vus,
            asked=round(asked, 3),
            rps=round(sec.requests / span, 3), started_rps=round(self._second_iterations / span, 3),
            requests=sec.requests, errors=sec.errors,
            error_rate=sec.errors / sec.requests if sec.requests else 0.0,
            p50_ms=p50, p95_ms=p95, p99_ms=p99, late_starts=sec.late_starts, dropped=sec.dropped,
            in_flight=gen.in_flight, vus=gen.vus, open_connections=gen.open_connections,
            cpu_percent=round(gen.cpu_percent, 1), rss_mb=round(gen.rss_bytes / 2**20, 1),
            loop_lag_ms=round(self._second_lag, 2), schedule_lag_ms=round(self._second_sched_lag, 2),
            stalls=self._second_stalls, queued=gen.queued, extra=dict(self.extra_now),
            endpoints=self.endpoint_points.close(),
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
        self._tell("on_tick", now, phase, target_rps, target_vus, final, row)
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
            stalls=self._second_stalls, queued=sum(s.queued for s in snaps), nodes=self._nodes_now(),
        )

    def worker_lost(self, index: int) -> None:
        """A worker is gone for good: its last snapshot no longer counts in the generator's state."""
        self.lost_workers.add(index)
        self.worker_state.pop(index, None)

    def _nodes_now(self) -> list[NodeHealth]:
        if not self.worker_nodes:
            return []
        nodes: dict[str, NodeHealth] = {}
        for index, name in self.worker_nodes.items():
            n = nodes.get(name)
            if n is None:
                totals = self.node_totals.get(name, [0, 0, 0])
                n = nodes[name] = NodeHealth(node=name, iterations=totals[0], late_starts=totals[1], requests=totals[2])
            n.workers += 1
            if index in self.lost_workers:
                continue
            n.workers_alive += 1
            snap = self.worker_state.get(index)
            if snap is not None:
                n.cpu_percent = round(n.cpu_percent + snap.cpu_percent, 1)
                n.loop_lag_ms = round(max(n.loop_lag_ms, snap.loop_lag_ms), 2)
        return list(nodes.values())

    def _append_row(self, row: TimelineRow) -> None:
        if self.resolution == 1.0:
            self.timeline.append(row)
        else:
            self._pending.append(row)
            if len(self._pending) * 1.0 >= self.resolution:
                self.timeline.append(merge_rows(self._pending))
                self._pending = []
        if len(self.timeline) >= TIMELINE_MAX_ROWS:
            rows = self.timeline[:]
            self.timeline = Timeline(merge_rows(rows[i : i + 2]) for i in range(0, len(rows), 2))
            self.resolution *= 2

    # ---- views ------------------------------------------------------------------------

    def asked_arrivals(self) -> float:
        """Open-model arrivals the plan asked for: the rows' ``asked``, which the phase clock
        counts; 0 when a closed phase ran (its users are not arrivals). A document written before
        rows kept it: each row's target rate over the time it spans, up to where the load ended
        (the last phase's end), which counts a row holding a phase change at the new phase's rate."""
        rows = self.timeline
        if any(r.target_vus for r in rows):
            return 0.0
        if any(r.asked for r in rows):
            return sum(r.asked for r in rows)
        load_end = max((p.end for p in self.phases if p.end is not None), default=math.inf)
        asked, before = 0.0, 0.0
        for r in rows:
            asked += r.target_rps * max(0.0, min(r.t, load_end) - before)
            before = r.t
        return asked

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
        protocol endpoints of the plan, as the record was given them (``roles``)."""
        return self.roles

    def _span(self) -> float:
        return self.run_seconds() if self._ran else 0.0

    def protocol_summary(self) -> ProtocolSummary:
        """WebSocket / GraphQL / MCP figures so far (what the session JSON has under
        ``protocols``); each part is None when the plan has no such step. It merges the protocol
        endpoints' histograms, so it is computed once per change of the data, whoever asks."""
        return self._view("protocols", (self._ticks, self._merges), lambda: protocol_summary(
            self.roles, self.endpoints, extra_total=self.extra_total, gauges=self.gauges,
            gauge_peaks=self.gauge_peaks, span=self._span()))

    def protocol_extra(self, summary: ProtocolSummary | None = None) -> dict[str, float]:
        """The protocol metrics thresholds can name (``perftui.session.protocols.protocol_extra``)."""
        p = summary if summary is not None else self.protocol_summary()
        out = protocol_extra(p, self.roles, self.endpoints, span=self._span())
        out.update(sql_extra(self.roles, self.endpoints, extra_total=self.extra_total, gauges=self.gauges,
                             gauge_peaks=self.gauge_peaks, span=self._span()))
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
            timeline=[*self.timeline, *([merge_rows(self._pending)] if self._pending else [])],
            thresholds=self.threshold_results,
            events=self.events,
            generator=self.generator,
            monitor=self.monitor.document(),
            generator_warnings=list(self.monitor.generator_warnings),
            histogram=encode_histogram(total.latency).decode() if total.latency.total_count else "",
            service_histogram=encode_histogram(total.service).decode() if total.service.total_count else "",
            protocols=self.protocol_summary(),
            slos=self.slo_results,
            setup=self.setup,
            teardown=self.teardown,
            benchmark=self.benchmark,
            find_limit=self.find_limit,
        )

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self.document()), indent=2)
