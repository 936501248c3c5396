"""What the dashboard shows, as one immutable value: ``build_view(controller)`` -> ``RunView``.

The dashboard screen calls ``build_view`` once per refresh tick and hands each widget its part
(``view.header`` to the ``HeaderBar``, ``view.numbers.latency`` to the ``LatencyTable``, ...);
no widget reads the controller, the coordinator or the session itself. The function is pure in
the sense that matters for tests: it reads the controller (and through it the coordinator and
the session record) and returns frozen dataclasses; ``tests/test_view.py`` checks it on the
tests' scripted session without any screen.

Two paces, as the screen always had: the clock part (header, phase strip) moves every tick; the
``NumbersView`` (summaries, endpoint rows, process stats, monitoring) is rebuilt only when the
controller's ``version`` moved (a closed second, a control action). Pass the previous view as
``previous`` and its numbers are reused when nothing new arrived, so a 4 Hz refresh costs no
more than before (the summaries are cached by the session record; the UI process's own CPU/RSS
is sampled once per version, as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perftui.plan import threshold_label
from perftui.run.clock import PhaseSpec
from perftui.session import Event, TimelineRow
from perftui.session.schema import asked_rate
from perftui.summary import StatsSummary
from perftui.ui import controller as ctl


@dataclass(frozen=True)
class EndpointRow:
    """One row of the endpoints table."""

    name: str
    requests: int
    rps: float
    """Over the last 10 s."""
    p50: float | None
    p95: float | None
    p99: float | None
    error_rate: float
    protocol: str = ""


def endpoint_rows(summaries, recent_rps) -> list[EndpointRow]:
    return [EndpointRow(e.name, e.requests, recent_rps(e.name), e.latency_ms.p50, e.latency_ms.p95,
                        e.latency_ms.p99, e.error_rate, e.protocol) for e in summaries]


@dataclass(frozen=True)
class BenchRow:
    """One operation of a benchmark plan: its samples so far (of ``asked``) and their latency."""

    name: str
    order: int
    """Its place in the plan."""
    requests: int
    asked: int
    error_rate: float
    min: float | None
    max: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    protocol: str = ""


def bench_rows(benchmark, summaries) -> list[BenchRow]:
    """``session.benchmark`` with the endpoints' summaries: one row per operation, in plan order."""
    by_name = {e.name: e for e in summaries}
    rows: list[BenchRow] = []
    seen: set[str] = set()
    for b in benchmark:
        for name in b.endpoints:
            if name in seen:
                continue
            seen.add(name)
            e = by_name.get(name)
            lat = e.latency_ms if e is not None else None
            rows.append(BenchRow(name, len(rows), e.requests if e else 0, b.iterations, e.error_rate if e else 0.0,
                                 *(getattr(lat, k) if lat else None for k in ("min", "max", "mean", "p50", "p95", "p99")),
                                 e.protocol if e else ""))
    return rows


@dataclass(frozen=True)
class PhaseRecordView:
    """Where a phase started and ended on the run's clock (None: not yet)."""

    start: float | None
    end: float | None
    skipped: bool


@dataclass(frozen=True)
class LimitCell:
    """One step of a breaking-point search, as the phase strip shows it."""

    number: int
    stage: str
    rate: float
    verdict: str
    p99: float | None
    started_rps: float
    broke: str
    """The evidence of a step that broke (or why it was generator-limited)."""
    progress: float
    """Measured share of the step (0..1)."""
    recovery: str
    """After a break: ``recovering at 570/s``, ``recovered in 2s``, ``not recovered``."""


@dataclass(frozen=True)
class LimitView:
    """A breaking-point search (``session.find_limit``): its steps so far and its result."""

    state: str
    cells: tuple[LimitCell, ...]
    limit_rps: float | None
    broke_rps: float | None
    verdict: str
    found: bool


def limit_view(doc) -> LimitView | None:
    if doc is None:
        return None
    measure = doc.settings.get("step_duration_s", 1.0) or 1.0
    cells = []
    for s in doc.steps:
        rec = s.recovery
        if rec is None:
            recovery = ""
        elif rec.recovered:
            recovery = f"recovered in {rec.seconds or 0:g}s at {rec.rate:,.4g}/s"
        elif rec.recovered is False:
            recovery = f"not recovered at {rec.rate:,.4g}/s"
        else:
            recovery = f"recovering at {rec.rate:,.4g}/s"
        cells.append(LimitCell(s.index + 1, s.stage, s.rate, s.verdict, s.p99_ms, s.started_rps,
                               "; ".join(s.broke) if s.verdict == "broke" else s.note, min(1.0, s.seconds / measure),
                               recovery))
    return LimitView(doc.state, tuple(cells), doc.limit_rps, doc.broke_rps, doc.verdict, doc.found)


@dataclass(frozen=True)
class PhasesView:
    """The phase clock as the header and the phase strip show it."""

    specs: tuple[PhaseSpec, ...]
    records: tuple[PhaseRecordView, ...]
    index: int
    current_elapsed: float
    """Seconds into the current phase (0 before the start)."""
    state: str
    started: bool
    ended: bool
    active: bool
    limit: LimitView | None = None
    """A breaking-point search's steps (the strip shows them instead of its one phase)."""

    @property
    def current(self) -> PhaseSpec | None:
        return self.specs[self.index] if 0 <= self.index < len(self.specs) else None


@dataclass(frozen=True)
class Headline:
    """The one-line numbers of a narrow header: last 10 s, whole-run errors, the target now."""

    window: StatsSummary
    total: StatsSummary
    last_row: TimelineRow | None
    asked_rps: float = 0.0
    """The last second's arrivals asked per second (``perftui.session.schema.asked_rate``)."""


@dataclass(frozen=True)
class HeaderView:
    plan_name: str
    target: str
    """The target URL as shown (``${ENV}`` values masked)."""
    attached_id: str | None
    """The session id when the run goes on in another process (an ``attached`` badge)."""
    word: str
    """The state badge: idle, starting, running, paused, stopping, finished, error."""
    detail: str
    phases: PhasesView | None
    run_elapsed: float | None
    """Seconds since the start (the run's length once it ended); None before the start."""
    target_down: bool
    limited: bool
    """perftui itself is the bottleneck right now."""
    headline: Headline | None
    profile: str = ""
    """The plan's profile that runs (``--profile``), "" for none."""


@dataclass(frozen=True)
class ThresholdsView:
    exprs: tuple[str, ...]
    results: tuple[Any, ...]
    live: bool
    """The run goes on: a count that can still change shows as pending."""
    slos: tuple[Any, ...] = ()
    """``perftui.slo.SloResult`` per ``[[slos]]`` entry: budget, burn rate, alert level."""


@dataclass(frozen=True)
class GeneratorView:
    """perftui's own processes and the machine: the load generator panel."""

    gen: Any
    """``session.generator`` (replaced, never changed, by each closed second)."""
    ui: tuple[float, int]
    """CPU % and RSS bytes of the dashboard's process."""
    total: StatsSummary | None
    last_row: TimelineRow | None
    workers: int
    host: dict | None
    warning: str | None
    cores: int | None


@dataclass(frozen=True)
class HealthView:
    url: str
    up: bool | None
    status: int | None
    latency_ms: float | None
    since: float | None
    error: str | None
    fields: dict = field(hash=False)


@dataclass(frozen=True)
class MonitorView:
    """What the target panel draws of ``session.monitor``, copied: the same attribute names as
    ``perftui.monitor.state.MonitorState``, so the panel's drawing functions take either."""

    health: tuple[HealthView, ...]
    process_spec: str | None
    sut_now: dict | None
    sut_pid: int | None
    sut_name: str
    rss_trend_mb_per_h: float | None
    rss_trend_span_s: float
    metrics_url: str | None
    metrics_ok: bool | None
    metrics_error: str | None
    missing: tuple[str, ...]
    metrics_now: dict
    series_info: tuple[Any, ...]
    names: tuple[str, ...]

    def metric_names(self) -> list[str]:
        return list(self.names)


@dataclass(frozen=True)
class TargetView:
    """The target panel: a hint (not monitored), waiting (monitored, no run yet), or figures."""

    mode: str
    """``hint`` | ``waiting`` | ``monitor``."""
    url: str | None
    demo: bool
    monitor: MonitorView | None = None
    timeline: Sequence[TimelineRow] = ()
    span: float = 10.0


@dataclass(frozen=True)
class NumbersView:
    """Everything that changes only with new data (the controller's ``version``)."""

    version: int
    thresholds: ThresholdsView
    target: TargetView
    has_run: bool
    """A coordinator exists: the panels below are filled."""
    latency: tuple[StatsSummary | None, StatsSummary | None] = (None, None)
    """(last 10 s, whole run); None before the start."""
    total: StatsSummary | None = None
    last_errors: tuple[str, ...] = ()
    generator: GeneratorView | None = None
    endpoints: tuple[EndpointRow, ...] | None = None
    """None before the start: the table keeps what it has."""
    events: tuple[Event, ...] = ()
    generator_warnings: tuple[Any, ...] = ()
    generator_warning: str | None = None
    timeline: Sequence[TimelineRow] = ()
    """The session's rows up to now (``Timeline.frozen``: read lazily, fixed once taken)."""
    protocols: Any = None
    """``ProtocolSummary`` when the plan has protocol steps (else None)."""
    benchmark: tuple[BenchRow, ...] | None = None
    """A benchmark plan's operations (``bench_rows``); None otherwise and before the start."""


@dataclass(frozen=True)
class RunView:
    """One tick of the dashboard."""

    status: str
    state: str
    header: HeaderView
    phases: PhasesView | None
    """None until the coordinator exists (the strip says it is loading)."""
    numbers: NumbersView


def run_state(c: ctl.RunController) -> tuple[str, str]:
    """(badge word, detail) for the header: the controller's own steps take precedence."""
    if c.status == ctl.FAILED:
        return "error", c.error
    if c.status == ctl.PREPARING:
        return "starting", "starting demo target…" if c.plan.target == "demo" else "resolving target…"
    if c.status == ctl.LAUNCHING:
        return "starting", "starting workers…"
    if c.status == ctl.STOPPING:
        return "stopping", "waiting for in-flight requests…"
    state = c.state
    if c.ended and state != "finished":  # an attached viewer that lost its connection
        return "finished", c.coord.session.end_reason or "finished"
    if state == "idle":
        return "idle", "press s to start"
    if state == "finished":
        return "finished", c.coord.session.end_reason or "finished"
    return state, ""


def phases_view(c: ctl.RunController) -> PhasesView | None:
    coord = c.coord
    if coord is None:
        return None
    started = c.started
    return PhasesView(
        specs=tuple(coord.specs),
        records=tuple(PhaseRecordView(r.start, r.end, r.skipped) for r in coord.session.phases),
        index=coord.phase_index,
        current_elapsed=coord.current_phase_elapsed() if started else 0.0,
        state=c.state, started=started, ended=c.ended, active=c.active,
        limit=limit_view(getattr(coord.session, "find_limit", None)))


def header_view(c: ctl.RunController, phases: PhasesView | None, numbers: NumbersView) -> HeaderView:
    word, detail = run_state(c)
    coord = c.coord
    started = coord is not None and c.started
    elapsed = None
    down = limited = False
    headline = None
    if started:
        s = coord.session
        elapsed = s.run_seconds() if c.ended else s.elapsed()
        mon = s.monitor
        down, limited = mon.any_down, bool(mon.generator_warning) and not c.ended
        window, total = numbers.latency
        if window is not None and total is not None:
            headline = Headline(window, total, numbers.timeline[-1] if numbers.timeline else None,
                                asked_rate(numbers.timeline))
    return HeaderView(
        plan_name=c.plan.name or "plan", target=c.shown_target,
        attached_id=coord.session.id if c.remote and coord is not None else None,
        word=word, detail=detail, phases=phases, run_elapsed=elapsed,
        target_down=down, limited=limited, headline=headline, profile=getattr(c.plan, "profile", ""))


def monitor_view(mon) -> MonitorView:
    """A frozen copy of what the target panel reads from a ``MonitorState``."""
    return MonitorView(
        health=tuple(HealthView(h.url, h.up, h.status, h.latency_ms, h.since, h.error,
                                dict(h.fields) if isinstance(h.fields, dict) else {}) for h in mon.health),
        process_spec=getattr(mon, "process_spec", None),
        sut_now=dict(mon.sut_now) if mon.sut_now else mon.sut_now,
        sut_pid=mon.sut_pid, sut_name=mon.sut_name,
        rss_trend_mb_per_h=mon.rss_trend_mb_per_h, rss_trend_span_s=getattr(mon, "rss_trend_span_s", 0.0),
        metrics_url=getattr(mon, "metrics_url", None), metrics_ok=mon.metrics_ok, metrics_error=mon.metrics_error,
        missing=tuple(getattr(mon, "missing", None) or ()), metrics_now=dict(mon.metrics_now),
        series_info=tuple(getattr(mon, "series_info", ())), names=tuple(mon.metric_names()))


def numbers_view(c: ctl.RunController, cores: int | None) -> NumbersView:
    coord = c.coord
    url = c.shown_target if c.target else None
    demo = c.plan.target == "demo"
    exprs = tuple(threshold_label(t) for t in c.plan.thresholds)
    if coord is None:
        target = TargetView("waiting" if c.monitored else "hint", url, demo)
        return NumbersView(c.version, ThresholdsView(exprs, (), False), target, has_run=False)
    s = coord.session
    mon = s.monitor
    timeline = s.timeline.frozen()  # rows decoded only where a chart samples them
    if c.monitored:
        span = max(10.0, timeline[-1].t if timeline else 0.0)
        target = TargetView("monitor", url, demo, monitor_view(mon), timeline, span)
    else:
        target = TargetView("hint", url, demo)
    started, ended = c.started, c.ended
    total = s.summary() if started else None
    window = s.window_summary() if started else None
    warning = mon.generator_warning if started and not ended else None
    generator = GeneratorView(s.generator, c.backend.process_stats(), total, timeline[-1] if timeline else None,
                              coord.worker_count, mon.host_now, warning, cores)
    return NumbersView(
        version=c.version,
        thresholds=ThresholdsView(exprs, tuple(s.threshold_results), not ended, tuple(s.slo_results)),
        target=target, has_run=True, latency=(window, total), total=total,
        last_errors=tuple(s.last_errors), generator=generator,
        endpoints=tuple(endpoint_rows(s.endpoint_summaries(), s.endpoint_recent_rps)) if started else None,
        events=tuple(s.events), generator_warnings=tuple(mon.generator_warnings),
        generator_warning=mon.generator_warning, timeline=timeline,
        protocols=s.protocol_summary() if c.protocols else None,
        benchmark=tuple(bench_rows(s.benchmark, s.endpoint_summaries())) if started and s.benchmark else None)


def build_view(c: ctl.RunController, previous: RunView | None = None, *, cores: int | None = None) -> RunView:
    """The dashboard's view of the run now. ``previous``: the last tick's view, whose numbers are
    reused when the controller's ``version`` has not moved since."""
    if previous is not None and previous.numbers.version == c.version:
        numbers = previous.numbers
    else:
        numbers = numbers_view(c, cores)
    phases = phases_view(c)
    return RunView(status=c.status, state=c.state, header=header_view(c, phases, numbers), phases=phases,
                   numbers=numbers)


def phase_rest(p: PhasesView) -> float:
    """Seconds of the plan still to run (the current phase's rest and every later phase)."""
    spec = p.current
    if spec is None:
        return 0.0
    rest = max(0.0, spec.duration - p.current_elapsed)
    return rest + sum(sp.duration for sp in p.specs[p.index + 1:])


def planned_total(specs: Sequence[PhaseSpec]) -> float:
    return sum(s.duration for s in specs)
