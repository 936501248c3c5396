"""``MonitorState``: what monitoring knows, kept on the session (``SessionRecord.monitor``).

The probes (``perftui.monitor.Monitor``) hand it samples through ``apply``; the session calls
``close_second`` once per timeline row, which returns the row's ``monitor`` entry and whether the
generator limited that second. Everything here is deterministic in the samples and rows it is
given, so a replica fed the same samples (each is handed to the ``forward`` callback: the
session's observers' ``on_monitor``) ends in the same state; ``wire()`` / ``load_wire`` carry the
whole state to a replica (an attached viewer) as a msgspec Struct. It is also the dashboard's read API:

- ``health``: list of ``HealthState`` (url, up, status, latency_ms, since, fields, error, ...)
- ``transitions``: list of ``HealthTransition``
- ``metric_names()``, ``metrics_now``; history via ``metric_series(timeline, last=60)`` or
  ``series(timeline, group, key)``
- ``sut_now``, ``generator_now``, ``host_now``: latest psutil figures (dicts, see MonitorRow)
- ``generator_warning`` (text or None) and ``generator_warnings`` (intervals)
- ``rss_trend_mb_per_h`` (the SUT) and ``generator_rss_trend_mb_per_h``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from msgspec import Struct

from perftui.monitor.health import GeneratorHealth, GeneratorHealthWire, Limits
from perftui.monitor.model import (
    DbSample, GeneratorWarning, HealthPoint, HealthSample, HealthState, HealthTransition, MetricsSample, MonitorDocument,
    MonitorRow, ProcessSample, Sample, SeriesInfo, SeriesStats, TrendInfo, row_figures,
)
from perftui.units import format_duration, format_ms

__all__ = ["MonitoredRun", "MonitorState", "MonitorWire", "Trend", "series"]


class Trend(Struct):
    """Least-squares slope of y over t, in O(1) memory (running sums). A Struct so that an
    attaching viewer gets it as is (``MonitorWire``)."""

    MIN_SAMPLES = 4
    MIN_SPAN_S = 4.0

    n: int = 0
    t0: float | None = None
    st: float = 0.0
    sy: float = 0.0
    stt: float = 0.0
    sty: float = 0.0
    first: float | None = None
    last: float | None = None
    max: float | None = None
    t_last: float = 0.0

    def reset(self) -> None:
        self.n = 0
        self.t0 = None
        self.st = self.sy = self.stt = self.sty = 0.0
        self.first = None
        self.last = None
        self.max = None
        self.t_last = 0.0

    def add(self, t: float, y: float) -> None:
        if self.t0 is None:
            self.t0, self.first = t, y
        x = t - self.t0
        self.n += 1
        self.st += x
        self.sy += y
        self.stt += x * x
        self.sty += x * y
        self.last = y
        self.max = y if self.max is None else max(self.max, y)
        self.t_last = t

    @property
    def span(self) -> float:
        return self.t_last - self.t0 if self.t0 is not None else 0.0

    def slope(self) -> float | None:
        """Units of y per second; None until there are enough samples over a long enough span."""
        if self.n < self.MIN_SAMPLES or self.span < self.MIN_SPAN_S:
            return None
        den = self.n * self.stt - self.st * self.st
        if den <= 0:
            return None
        return (self.n * self.sty - self.st * self.sy) / den

    def per_hour(self) -> float | None:
        s = self.slope()
        return None if s is None else round(s * 3600, 3)

    def info(self, source: str) -> TrendInfo:
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return TrendInfo(mb_per_h=self.per_hour(), span_s=round(self.span, 3), samples=self.n,
                         first_mb=r(self.first), last_mb=r(self.last), max_mb=r(self.max), source=source)


class _Running(Struct, array_like=True):
    n: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    last: float | None = None

    def add(self, v: float) -> None:
        self.n += 1
        self.sum += v
        self.min = v if self.min is None else min(self.min, v)
        self.max = v if self.max is None else max(self.max, v)
        self.last = v

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n else None


def _why(s: HealthSample) -> str:
    why = s.error or (f"HTTP {s.status}" if s.status is not None else "no answer")
    status = s.fields.get("status")
    if isinstance(status, str) and status:
        why += f", status={status}"
    return why


def _text_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if isinstance(v, (str, bool)) or v is None}


class MonitorWire(Struct, kw_only=True):
    """A ``MonitorState`` in full (health since when, series seen, trends so far, generator
    intervals), without its callbacks: what an attaching viewer receives (``perftui.run.attach``)
    to build a replica, which the forwarded samples then keep in step."""

    interval_s: float
    metrics_url: str | None
    process_spec: str | None
    health: list[HealthState]
    span_down: list[str]
    transitions: list[HealthTransition]
    series_info: list[SeriesInfo]
    metrics_now: dict[str, float]
    metrics_ok: bool | None
    metrics_error: str | None
    missing: list[str]
    reported_missing: list[str]
    series_stats: dict[str, _Running]
    sut_now: dict[str, float] | None
    sut_pid: int | None
    sut_name: str
    sut_cpu: _Running
    sut_missing_reported: bool
    generator_now: dict[str, float]
    host_now: dict[str, float]
    host_stats: dict[str, _Running]
    busy_max: dict[str, float]
    gen: GeneratorHealthWire
    sut_rss: Trend
    metric_rss: Trend
    gen_rss: Trend
    last_row_t: float
    samples: int
    databases: list[str] = []
    db_series: list[SeriesInfo] = []
    db_now: dict[str, float] = {}
    db_error: dict[str, str | None] = {}


class MonitoredRun(Protocol):
    """What monitoring needs of the run it watches (``perftui.session.SessionRecord`` is one):
    ``Monitor`` reads its clock, ``perftui.monitor.report`` its timeline and length. Declared
    here so that monitoring never imports the session package that builds on it."""

    @property
    def monitor(self) -> MonitorState: ...

    @property
    def started_mono(self) -> float | None: ...

    @property
    def timeline(self) -> Sequence[Any]: ...

    def elapsed(self, now: float | None = None) -> float: ...

    def run_seconds(self) -> float: ...


class MonitorState:
    def __init__(self, emit: Callable[[str, str], Any] | None = None,
                 forward: Callable[[Sample], Any] | None = None):
        self._emit_to: Callable[[str, str], Any] = emit or (lambda kind, message: None)
        """Adds a session event (``SessionRecord.event``)."""
        self._forward: Callable[[Sample], Any] = forward or (lambda sample: None)
        """Told about every sample applied (``SessionRecord`` hands it to its observers' ``on_monitor``,
        e.g. to forward it to a replica)."""
        self.live = False
        """True in the process that runs the probes (``configure`` was called): only there do
        state changes become session events. A replica (an attached viewer) gets the events
        from the original instead, so it must not add its own."""
        self.interval_s = 1.0
        self.metrics_url: str | None = None
        self.process_spec: str | None = None
        self.health: list[HealthState] = []
        self._health_index: dict[str, HealthState] = {}
        self._span_down: set[str] = set()
        self.transitions: list[HealthTransition] = []
        self.series_info: list[SeriesInfo] = []
        self.metrics_now: dict[str, float] = {}
        self.metrics_ok: bool | None = None
        self.metrics_error: str | None = None
        self.missing: list[str] = []
        self._reported_missing: set[str] = set()
        self._series_stats: dict[str, _Running] = {}
        self.sut_now: dict[str, float] | None = None
        self.sut_pid: int | None = None
        self.sut_name = ""
        self._sut_cpu = _Running()
        self._sut_missing_reported = False
        self.generator_now: dict[str, float] = {}
        self.host_now: dict[str, float] = {}
        self._host_stats: dict[str, _Running] = {}
        self._busy_max: dict[str, float] = {}
        self.gen = GeneratorHealth()
        self._sut_rss = Trend()
        self._metric_rss = Trend()
        self._gen_rss = Trend()
        self._last_row_t = 0.0
        self.samples = 0
        self.databases: list[str] = []
        """``[monitor] postgres`` entries (``perftui.monitor.pg``)."""
        self.db_series: list[SeriesInfo] = []
        self.db_now: dict[str, float] = {}
        """The latest ``db.NAME.*`` values; also in ``metrics_now``, so they chart and reach the
        timeline as named monitor series beside the target's."""
        self.db_error: dict[str, str | None] = {}

    def wire(self) -> MonitorWire:
        """Everything but the callbacks, for an attaching viewer (``perftui.run.attach``). The
        result shares this state's objects: encode it before the next sample."""
        return MonitorWire(
            interval_s=self.interval_s, metrics_url=self.metrics_url, process_spec=self.process_spec,
            health=self.health, span_down=sorted(self._span_down), transitions=self.transitions,
            series_info=self.series_info, metrics_now=self.metrics_now, metrics_ok=self.metrics_ok,
            metrics_error=self.metrics_error, missing=self.missing, reported_missing=sorted(self._reported_missing),
            series_stats=self._series_stats, sut_now=self.sut_now, sut_pid=self.sut_pid, sut_name=self.sut_name,
            sut_cpu=self._sut_cpu, sut_missing_reported=self._sut_missing_reported,
            generator_now=self.generator_now, host_now=self.host_now, host_stats=self._host_stats,
            busy_max=self._busy_max, gen=self.gen.wire(), sut_rss=self._sut_rss, metric_rss=self._metric_rss,
            gen_rss=self._gen_rss, last_row_t=self._last_row_t, samples=self.samples,
            databases=self.databases, db_series=self.db_series, db_now=self.db_now, db_error=self.db_error,
        )

    def load_wire(self, w: MonitorWire) -> None:
        """Become a replica of the state ``w`` was taken from; the callbacks stay this object's.
        A replica never turns its state changes into events (the original does, and they come
        with the samples), so ``live`` is False whatever the original's."""
        self.live = False
        self.interval_s, self.metrics_url, self.process_spec = w.interval_s, w.metrics_url, w.process_spec
        self.health = w.health
        self._health_index = {h.url: h for h in self.health}
        self._span_down = set(w.span_down)
        self.transitions, self.series_info = w.transitions, w.series_info
        self.metrics_now, self.metrics_ok, self.metrics_error = w.metrics_now, w.metrics_ok, w.metrics_error
        self.missing, self._reported_missing = w.missing, set(w.reported_missing)
        self._series_stats = w.series_stats
        self.sut_now, self.sut_pid, self.sut_name = w.sut_now, w.sut_pid, w.sut_name
        self._sut_cpu, self._sut_missing_reported = w.sut_cpu, w.sut_missing_reported
        self.generator_now, self.host_now = w.generator_now, w.host_now
        self._host_stats, self._busy_max = w.host_stats, w.busy_max
        self.gen.load_wire(w.gen)
        self._sut_rss, self._metric_rss, self._gen_rss = w.sut_rss, w.metric_rss, w.gen_rss
        self._last_row_t, self.samples = w.last_row_t, w.samples
        self.databases, self.db_series, self.db_now, self.db_error = w.databases, w.db_series, w.db_now, w.db_error

    def emit(self, kind: str, message: str) -> None:
        if self.live:
            self._emit_to(kind, message)

    # ---- configuration (by perftui.monitor.Monitor) --------------------------------------

    def configure(self, *, health: Sequence[tuple[str, str]] = (), metrics_url: str | None = None,
                  interval_s: float = 1.0, limits: Limits | None = None, process_spec: str | None = None,
                  live: bool = True, databases: Sequence[str] = ()) -> None:
        """``health``: (url as written, resolved url) pairs. A replica (an attached viewer) is not
        configured: it loads the original's ``wire()`` (``load_wire``) and is fed its samples."""
        self.live = live
        self.health = [HealthState(url=u, resolved=r) for u, r in health]
        self._health_index = {h.url: h for h in self.health}
        self.metrics_url = metrics_url
        self.interval_s = interval_s
        self.process_spec = process_spec
        self.databases = list(databases)
        if limits is not None:
            self.gen.limits = limits

    # ---- read API ---------------------------------------------------------------------

    @property
    def generator_warning(self) -> str | None:
        """Text of the current generator-limited warning, or None."""
        return self.gen.current

    @property
    def generator_warnings(self) -> list[GeneratorWarning]:
        return self.gen.warnings

    @property
    def rss_trend_mb_per_h(self) -> float | None:
        """The SUT's RSS slope (MB/h, least squares over the run): the local process when one is
        monitored, else the target's ``process_resident_memory_bytes`` metric."""
        trend, _ = self._rss_trend()
        return trend.per_hour() if trend is not None else None

    @property
    def rss_trend_span_s(self) -> float:
        """Seconds the SUT's RSS trend is fitted over (the dashboard shows no trend under a minute)."""
        trend, _ = self._rss_trend()
        return trend.span if trend is not None else 0.0

    @property
    def generator_rss_trend_mb_per_h(self) -> float | None:
        return self._gen_rss.per_hour()

    @property
    def any_down(self) -> bool:
        return any(h.up is False for h in self.health)

    @property
    def enabled(self) -> bool:
        """Whether the target is monitored (health or metrics URL, or a local process)."""
        return bool(self.health or self.metrics_url or self.process_spec or self.databases)

    def metric_names(self) -> list[str]:
        """The charted metric series, in plan order (or the defaults' order)."""
        return [s.name for s in self.series_info] + [s.name for s in self.db_series]

    def metric_series(self, timeline: Sequence[Any], last: int | None = None) -> dict[str, list[tuple[float, float | None]]]:
        """Every metric series over the last ``last`` timeline rows (all rows by default):
        name -> [(t, value or None)]."""
        rows = timeline[-last:] if last else timeline
        return {name: series(rows, "metrics", name) for name in self.metric_names()}

    def _rss_trend(self) -> tuple[Trend | None, str]:
        if self.process_spec is not None and self._sut_rss.n:
            return self._sut_rss, f"process {self.sut_pid} ({self.sut_name})" if self.sut_pid else "process"
        if self._metric_rss.n:
            return self._metric_rss, "metrics process_resident_memory_bytes"
        return None, ""

    # ---- samples ------------------------------------------------------------------------

    def apply(self, sample: Sample) -> None:
        self.samples += 1
        if isinstance(sample, HealthSample):
            self._apply_health(sample)
        elif isinstance(sample, MetricsSample):
            self._apply_metrics(sample)
        elif isinstance(sample, ProcessSample):
            self._apply_process(sample)
        elif isinstance(sample, DbSample):
            self._apply_db(sample)
        self._forward(sample)

    def _apply_health(self, s: HealthSample) -> None:
        st = self._health_index.get(s.url)
        if st is None:
            return
        st.probes += 1
        if not s.up:
            st.failures += 1
            self._span_down.add(s.url)
        if s.latency_ms is not None:
            st.latency_sum_ms += s.latency_ms
            st.latency_max_ms = s.latency_ms if st.latency_max_ms is None else max(st.latency_max_ms, s.latency_ms)
        prev_up, prev_fields = st.up, st.fields
        if prev_up is None:
            st.since = s.t
            if not s.up:
                self.transitions.append(HealthTransition(t=s.t, url=s.url, up=False, status=s.status,
                                                         latency_ms=s.latency_ms, error=s.error, fields=s.fields))
                self.emit("health", f"{s.url} is DOWN at the first probe ({_why(s)})")
        elif prev_up != s.up:
            lasted = round(s.t - (st.since or 0.0), 3)
            if s.up:
                st.down_s += lasted
            self.transitions.append(HealthTransition(t=s.t, url=s.url, up=s.up, status=s.status, latency_ms=s.latency_ms,
                                                     error=s.error, fields=s.fields, previous_for_s=lasted))
            if s.up:
                self.emit("health", f"{s.url} is UP again after {format_duration(lasted)} down "
                                    f"(HTTP {s.status}, {format_ms(s.latency_ms)})")
            else:
                self.emit("health", f"{s.url} is DOWN ({_why(s)}) after {format_duration(lasted)} up")
            st.since = s.t
        elif prev_fields and s.fields:
            # same up/down state, but a textual field changed (status ok -> degraded, a check down)
            old, new = _text_fields(prev_fields), _text_fields(s.fields)
            changes = [f"{k} {old.get(k)} → {new.get(k)}" for k in sorted(set(old) | set(new))
                       if old.get(k) != new.get(k)]
            if changes:
                more = f" (+{len(changes) - 4} more)" if len(changes) > 4 else ""
                self.emit("health", f"{s.url}: " + ", ".join(changes[:4]) + more)
        st.up, st.status, st.latency_ms, st.error, st.checked_at = s.up, s.status, s.latency_ms, s.error, s.t
        st.fields = s.fields

    def _apply_metrics(self, s: MetricsSample) -> None:
        if s.series is not None:
            self.series_info = list(s.series)
            for info in self.series_info:
                self._series_stats.setdefault(info.name, _Running())
        if not s.ok:
            if self.metrics_ok is not False:
                self.emit("health", f"metrics {self.metrics_url} failed: {s.error}")
            self.metrics_ok, self.metrics_error, self.metrics_now = False, s.error, dict(self.db_now)
            return
        if self.metrics_ok is False:
            self.emit("health", f"metrics {self.metrics_url} answering again")
        self.metrics_ok, self.metrics_error = True, None
        self.metrics_now = {**s.values, **self.db_now}
        for name, v in s.values.items():
            self._series_stats.setdefault(name, _Running()).add(v)
        self.missing = list(s.missing)
        fresh = [m for m in s.missing if m not in self._reported_missing]
        if fresh:
            self._reported_missing.update(fresh)
            self.emit("warning", f"monitor: {', '.join(fresh)} matched nothing in {self.metrics_url}")
        if s.rss_bytes is not None:
            self._metric_rss.add(s.t, s.rss_bytes / 2**20)

    def _apply_db(self, s: DbSample) -> None:
        prefix = f"db.{s.database}."
        if s.series is not None:
            keep = [i for i in self.db_series if not i.name.startswith(prefix)]
            self.db_series = keep + list(s.series)
            for info in s.series:
                self._series_stats.setdefault(info.name, _Running())
        was = self.db_error.get(s.database, "")  # "" before the first sample
        for k in [k for k in self.db_now if k.startswith(prefix)]:
            del self.db_now[k]
            self.metrics_now.pop(k, None)
        if not s.ok:
            if was is None or was == "":
                self.emit("health", f"database {s.database}: monitoring failed: {s.error}")
            self.db_error[s.database] = s.error
            return
        if was:
            self.emit("health", f"database {s.database}: answering again")
        self.db_error[s.database] = None
        self.db_now.update(s.values)
        self.metrics_now.update(s.values)
        for name, v in s.values.items():
            self._series_stats.setdefault(name, _Running()).add(v)

    def _apply_process(self, s: ProcessSample) -> None:
        self.generator_now = dict(s.generator)
        self.host_now = dict(s.host)
        for k, v in s.host.items():
            self._host_stats.setdefault(k, _Running()).add(v)
        self.gen.observe(s)
        for label, cpu in s.busy.items():
            self._busy_max[label] = max(cpu, self._busy_max.get(label, 0.0))
        if "rss_mb" in s.generator:
            self._gen_rss.add(s.t, s.generator["rss_mb"])
        if s.sut is None:
            return
        if s.sut_pid is None and self.sut_pid is None and not self._sut_missing_reported:
            self._sut_missing_reported = True
            self.emit("warning", f"monitor: no process matches process = {self.process_spec!r}; looking again every few seconds")
        if s.sut_pid != self.sut_pid:
            if self.sut_pid is None:
                self.emit("health", f"monitoring SUT process {s.sut_pid} ({s.sut_name})")
            elif s.sut_pid is None:
                self.emit("health", f"SUT process {self.sut_pid} ({self.sut_name}) is gone")
            else:
                self.emit("health", f"SUT process {self.sut_pid} replaced by {s.sut_pid} ({s.sut_name}): restarted?"
                                    " The RSS trend restarts too")
                self._sut_rss.reset()
            self.sut_pid = s.sut_pid
            if s.sut_name:
                self.sut_name = s.sut_name
        self.sut_now = dict(s.sut)
        if s.sut:
            if "cpu_percent" in s.sut:
                self._sut_cpu.add(s.sut["cpu_percent"])
            if "rss_mb" in s.sut:
                self._sut_rss.add(s.t, s.sut["rss_mb"])

    # ---- per second ---------------------------------------------------------------------

    def close_second(self, row: Any, timeline: Any, pending: list | None = None, *, final: bool = False
                     ) -> tuple[MonitorRow | None, bool]:
        """Called by ``SessionRecord.tick`` with the row it built (not yet appended): returns the
        row's ``monitor`` entry and its ``generator_limited`` flag. A CPU saturation that has just
        lasted long enough also flags the earlier rows it covered."""
        t = row.t
        span_start, self._last_row_t = self._last_row_t, t
        reasons, since = self.gen.judge(row.loop_lag_ms, row.schedule_lag_ms)
        opened, closed = self.gen.step(reasons, span_start, t, since)
        if opened is not None:
            self.emit("generator", f"{self.gen.current} — perftui itself is the bottleneck; "
                                   "load and latency numbers from here are suspect")
            if opened.start < span_start:
                # Sustained CPU: the seconds it already covered are suspect too. Samples are
                # taken just before each row closes, so a row counts when most of it is covered.
                # (A row read from the timeline is a copy: a flagged one is written back.)
                start, flagged = span_start, False
                for rows, i in _backwards(timeline, pending or []):
                    r = rows[i]
                    if r.t <= opened.start + 0.5:
                        if flagged:
                            start = r.t
                        break
                    r.generator_limited = True
                    rows[i] = r
                    flagged = True
                else:
                    if flagged:
                        start = 0.0
                opened.start = round(start, 3)
        if closed is not None:
            self.emit("generator", f"generator no longer limited ({format_duration(closed.start)}–"
                                   f"{format_duration(closed.end or t)}: {closed.reason})")
        if final:
            self.gen.finish(t)
        health = {}
        for st in self.health:
            if st.up is None:
                continue
            state = st.fields.get("status")
            health[st.url] = HealthPoint(up=bool(st.up) and st.url not in self._span_down, status=st.status,
                                         latency_ms=st.latency_ms, state=state if isinstance(state, str) else None)
        self._span_down.clear()
        mon = MonitorRow(health=row_figures(health), metrics=row_figures(self.metrics_now),
                         sut=row_figures(self.sut_now), generator=row_figures(self.generator_now),
                         host=row_figures(self.host_now))
        empty = not (mon.health or mon.metrics or mon.sut or mon.generator or mon.host)
        return (None if empty else mon), bool(reasons)

    # ---- document -----------------------------------------------------------------------

    def document(self) -> MonitorDocument:
        now = self._last_row_t
        health = []
        for st in self.health:
            copy = HealthState(**{f: getattr(st, f) for f in st.__struct_fields__})
            if st.up is False and st.since is not None:
                copy.down_s = round(st.down_s + max(0.0, now - st.since), 3)
            health.append(copy)
        series = []
        for info in [*self.series_info, *self.db_series]:
            r = self._series_stats.get(info.name, _Running())
            rnd = lambda v: None if v is None else round(v, 6)  # noqa: E731
            series.append(SeriesStats(name=info.name, source=info.source, kind=info.kind, scale=info.scale,
                                      default=info.default, samples=r.n, min=rnd(r.min), max=rnd(r.max),
                                      mean=rnd(r.mean), last=rnd(r.last)))
        sut = None
        if self.process_spec is not None:
            sut = {"spec": self.process_spec, "pid": self.sut_pid, "name": self.sut_name,
                   "cpu_percent_max": self._sut_cpu.max,
                   "cpu_percent_mean": round(self._sut_cpu.mean, 3) if self._sut_cpu.n else None,
                   "rss_trend": self._sut_rss.info(f"process {self.sut_pid} ({self.sut_name})")}
        trend, source = self._rss_trend()
        host = {k: {"max": round(r.max or 0.0, 3), "mean": round(r.mean or 0.0, 3)} for k, r in self._host_stats.items()}
        return MonitorDocument(
            interval_s=self.interval_s, health_urls=[h.url for h in self.health], metrics_url=self.metrics_url,
            health=health, transitions=list(self.transitions), series=series,
            metrics_error=self.metrics_error, sut=sut,
            rss_trend=trend.info(source) if trend is not None else None,
            generator={"limits": self.gen.limits.as_dict(),
                       "cpu_percent_max": {k: round(v, 1) for k, v in self._busy_max.items()},
                       "rss_trend": self._gen_rss.info("perftui processes")},
            host=host,
        )


def series(timeline: Sequence[Any], group: str, key: str, field: str | None = None) -> list[tuple[float, float | None]]:
    """One monitoring series from timeline rows: ``(t, value)`` per row, None where the row has
    no value. ``group`` is ``metrics``, ``sut``, ``generator``, ``host`` or ``health``; for
    ``health`` the key is the URL as written and ``field`` one of ``latency_ms``, ``status``,
    ``up`` (1/0; the default)."""
    out: list[tuple[float, float | None]] = []
    for row in timeline:
        mon = getattr(row, "monitor", None)
        v: float | None = None
        if mon is not None:
            if group == "health":
                p = mon.health.get(key)
                if p is not None:
                    f = field or "up"
                    raw = getattr(p, f, None)
                    v = None if raw is None else float(raw)
            else:
                v = getattr(mon, group, {}).get(key)
        out.append((row.t, v))
    return out


def _backwards(*seqs):
    """(sequence, index) of every row of ``seqs`` taken as one, last first."""
    for rows in reversed(seqs):
        for i in range(len(rows) - 1, -1, -1):
            yield rows, i
