"""A scripted snapshot source for UI tests: no worker processes, no timers, a frozen clock.

``FakeCoordinator`` has the surface of ``perftui.run.coordinator.Coordinator`` that the
dashboard uses, over a REAL ``SessionRecord``. A test drives time by hand: ``step()`` makes one
worker ``Snapshot`` per second (real HDR histograms from ``EndpointRecorder``), ingests it, closes
the second with ``session.tick`` and advances the fake clock. Phases, pause, skip, back and live
load changes are the run's own ``PhaseClock`` reading that fake clock; control calls are recorded
in ``calls`` and leave in the session what the coordinator's do (its ``record_transition`` and
``record_load_change``).

Monitoring is scripted the same way: each ``step()`` applies one psutil-like ``ProcessSample``
(always, as the real monitor samples perftui and the machine) and, when the plan has a
``[monitor]`` section, one health sample per URL and one metrics scrape to the session's real
``MonitorState``. ``down``, ``busy_cpu`` and ``metrics_error`` change what the next steps report.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path

from msgspec import UNSET

from perftui.run.clock import ClockView, PhaseClock, phase_specs
from perftui.run.coordinator import close_phase_record, record_load_change, record_transition
from perftui.worker.messages import Snapshot
from perftui.worker.stats import EndpointRecorder
from perftui.monitor import limits_from
from perftui.monitor.model import HealthSample, MetricsSample, ProcessSample, SeriesInfo
from perftui.plan import endpoint_name, protocol_endpoints
from perftui.planload import LoadedPlan, plan_from_dict, redacted_plan
from perftui.runtime import Target
from perftui.session import PhaseRecord, SessionRecord
from perftui.thresholds import evaluate, parse_threshold

FROZEN_WALL = 1_767_268_800.0  # 2026-01-01T12:00:00Z
SESSION_ID = "20260101-120000"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start


class ScriptedSession(SessionRecord):
    """A real session record whose idea of "now" is the fake clock."""

    def __init__(self, clock: FakeClock, **kwargs) -> None:
        super().__init__(session_id=SESSION_ID, **kwargs)
        self.clock = clock

    def mark_started(self) -> None:
        self.started_wall = FROZEN_WALL
        self.started_mono = self.clock.now

    def elapsed(self, now: float | None = None) -> float:
        return super().elapsed(self.clock.now if now is None else now)


class FakeCoordinator(ClockView):
    def __init__(
        self, loaded: LoadedPlan, target: str, *, workers: int | None = None, seed: int = 7
    ) -> None:
        self.loaded = loaded
        self.plan = loaded.plan
        self.target = target
        self.worker_count = workers or 2
        self.clock = FakeClock()
        self.phase_clock = PhaseClock(phase_specs(self.plan.phases), now=lambda: self.clock.now)
        self.session = ScriptedSession(
            self.clock,
            plan_name=self.plan.name,
            plan_file=str(loaded.path) if loaded.path else None,
            plan_dict=redacted_plan(loaded),
            target=target,
            workers=self.worker_count,
            phases=[
                PhaseRecord(
                    index=i, name=s.name, kind=s.kind, target=s.describe(), planned_s=s.duration
                )
                for i, s in enumerate(self.specs)
            ],
            roles=protocol_endpoints(self.plan),
        )
        self.session.generator.workers_alive = self.worker_count
        self.thresholds = [parse_threshold(t) for t in self.plan.thresholds]
        self.finished = asyncio.Event()
        self.calls: list[tuple] = []
        self.rng = random.Random(seed)
        self.endpoints = [
            endpoint_name(st)
            for sc in self.plan.scenarios
            for st in sc.steps
            if endpoint_name(st) != "think"
        ] or ["GET /"]
        self.seq = 0
        self.killed = False
        self._configure_monitor(target)

    # ---- monitoring (scripted) ----------------------------------------------------------

    def _configure_monitor(self, target: str) -> None:
        cfg = self.plan.monitor
        urls = [cfg.health] if isinstance(cfg.health, str) else list(cfg.health)
        self.process = None if cfg.process is UNSET else str(cfg.process)
        self.session.monitor.configure(
            health=[(u, target.rstrip("/") + u) for u in urls],
            metrics_url=target.rstrip("/") + cfg.metrics if cfg.metrics else None,
            limits=limits_from(cfg), process_spec=self.process)
        self.series = [SeriesInfo(name=e if isinstance(e, str) else (e.name or e.select), source=str(e),
                                  kind="rate" if "_total" in str(e) else "value")
                       for e in cfg.series] if cfg.metrics else []
        self._series_sent = False
        self.down: dict[str, tuple[int | None, str | None, str]] = {}
        """Health URL -> (status, error, body status) while it is down."""
        self.busy_cpu = 38.0
        """CPU demand of the worker (percent of a core); 90+ for 2 s makes the generator limited."""
        self.metrics_error: str | None = None
        self.sut_rss = 60.0

    def _monitor_samples(self, t: float, rps: float, latency_ms: float, error_rate: float) -> None:
        mon = self.session.monitor
        phase = t / 3.0
        mon.apply(ProcessSample(
            t=t, interval=1.0, generator={"cpu_percent": self.busy_cpu + 9.0, "rss_mb": 120.0},
            busy={"coordinator": 9.0, "worker 0": self.busy_cpu},
            host={"cpu_percent": 31.0 + 4 * math.sin(phase), "memory_percent": 41.5, "memory_used_mb": 6650.0,
                  "load1": 1.25},
            sut=None if self.process is None else {"cpu_percent": 22.0 + rps / 10, "rss_mb": self.sut_rss,
                                                   "connections": 12.0},
            sut_pid=None if self.process is None else 4242, sut_name="" if self.process is None else "demo"))
        self.sut_rss += 0.4
        for h in mon.health:
            bad = self.down.get(h.url)
            if bad is None:
                mon.apply(HealthSample(url=h.url, t=t, up=True, status=200, latency_ms=1.8 + (len(h.url) % 5) / 2,
                                       fields={"status": "ok", "checks.database.status": "up"}))
            else:
                status, error, state = bad
                mon.apply(HealthSample(url=h.url, t=t, up=False, status=status, latency_ms=None if error else 40.0,
                                       error=error or (f"HTTP {status}" if status else None),
                                       fields={"status": state} if state else {}))
        if mon.metrics_url is None:
            return
        if self.metrics_error:
            mon.apply(MetricsSample(t=t, ok=False, error=self.metrics_error))
            return
        values = {}
        for i, info in enumerate(self.series):
            wave = 1 + 0.25 * math.sin(phase + i)
            if "5xx" in info.name:
                v = rps * error_rate
            elif info.kind == "rate":
                v = rps / (i + 1) * wave
            elif "flight" in info.name:
                v = rps * latency_ms / 1000 * wave
            else:
                v = latency_ms * 2.5 * wave
            values[info.name] = round(v, 3)
        mon.apply(MetricsSample(t=t, ok=True, values=values, series=None if self._series_sent else self.series,
                                rss_bytes=self.sut_rss * 2**20))
        self._series_sent = True

    # ---- the coordinator surface --------------------------------------------------------

    async def start(self) -> None:
        self.calls.append(("start",))
        if self.state != "idle":
            return
        self.session.mark_started()
        t = self.phase_clock.start()
        self.session.event(
            "start", f"run started with {self.worker_count} worker(s) against {self.target}"
        )
        record_transition(self.session, self.specs, t)

    def pause(self) -> None:
        self.calls.append(("pause",))
        if self.phase_clock.pause():
            self.session.event("pause", "paused")

    def resume(self) -> None:
        self.calls.append(("resume",))
        if self.phase_clock.resume():
            self.session.event("resume", "resumed")

    def toggle_pause(self) -> None:
        self.resume() if self.state == "paused" else self.pause()

    def next_phase(self) -> None:
        self.calls.append(("next_phase",))
        self._transition(self.phase_clock.skip(), "skipped past the last phase")

    def prev_phase(self) -> None:
        self.calls.append(("prev_phase",))
        self._transition(self.phase_clock.back(), "")

    def scale_load(self, factor: float) -> float | None:
        self.calls.append(("scale_load", factor))
        change = self.phase_clock.scale_by(factor)
        if change is None:
            return None
        record_load_change(self.session, self.phase_index, change)
        return change.value

    def annotate(self, text: str) -> None:
        self.calls.append(("annotate", text))
        self.session.event("annotation", text)

    async def stop(self, reason: str = "stopped", *, grace: float = 2.0) -> None:
        self.calls.append(("stop", reason))
        if self.state == "finished":
            await self.finished.wait()
            return
        if self.phase_clock.active:
            close_phase_record(self.session, self.phase_index if self.current else None)
            self.session.event("stop", reason)
        self.phase_clock.finish()
        await asyncio.sleep(0)
        self.session.ended_wall = FROZEN_WALL + self.session.elapsed()
        self.session.end_reason = reason
        self.session.partial = reason != "completed"
        self._evaluate()
        self.finished.set()
        self.session.interval_closed(self.state)

    def kill_workers(self) -> None:
        self.killed = True

    # ---- scripting ----------------------------------------------------------------------

    def _transition(self, t, end_reason: str) -> bool:
        """Record a phase change; past the last phase, end the run. True when it ends."""
        if t is None:
            return False
        if t.entered is None:
            asyncio.ensure_future(self.stop(end_reason))
            return True
        record_transition(self.session, self.specs, t)
        return False

    def _evaluate(self) -> None:
        if self.thresholds:
            overall = self.session.summary()
            eps = {e.name: e for e in self.session.endpoint_summaries()}
            self.session.threshold_results = [evaluate(t, overall, eps) for t in self.thresholds]

    def snapshot(self, *, iterations: float, latency_ms: float, error_rate: float) -> Snapshot:
        """One second of traffic: every endpoint gets ``iterations`` requests."""
        n = int(round(iterations))
        deltas = []
        errors_sample = []
        for i, name in enumerate(self.endpoints):
            rec = EndpointRecorder(name)
            base = latency_ms * (1 + 0.4 * i)
            for _ in range(n):
                lat = base * (0.6 + self.rng.random() * 0.8) + (
                    base * 3 if self.rng.random() < 0.01 else 0
                )
                svc = lat * 0.9
                err = self.rng.random() < error_rate
                rec.response(
                    500 if err else 200,
                    int(lat * 1000),
                    int(svc * 1000),
                    512,
                    "http_5xx" if err else None,
                )
                if err and len(errors_sample) < 3:
                    errors_sample.append(f"http_5xx: {name}: HTTP 500")
            d = rec.take_delta()
            if d is not None:
                deltas.append(d)
        self.seq += 1
        spec = self.current
        vus = int(self.target_now()[1]) if spec is not None and spec.kind == "closed" else 0
        return Snapshot(
            worker=0,
            seq=self.seq,
            t=self.clock.now,
            interval=1.0,
            endpoints=deltas,
            iterations=n,
            late_starts=0,
            dropped=0,
            in_flight=min(n, 3),
            vus=vus,
            open_connections=4 * self.worker_count,
            loop_lag_ms=0.4,
            schedule_lag_ms=0.8,
            cpu_percent=12.5,
            rss_bytes=48 * 2**20,
            errors_sample=errors_sample,
            extra=self._protocol_extra(n, vus),
        )

    def _protocol_extra(self, n: int, vus: int) -> dict[str, float]:
        """WebSocket counters as the workers report them, when the plan has WebSocket steps."""
        if not any(role.startswith("ws.") for role in self.session.protocol_roles().values()):
            return {}
        return {"ws.messages_sent": 3.0 * n, "ws.messages_received": 12.0 * n,
                "ws.open_connections": float(vus or min(n, 40))}

    def step(
        self,
        seconds: int = 1,
        *,
        latency_ms: float = 12.0,
        error_rate: float = 0.0,
        achieved: float = 1.0,
    ) -> None:
        """Advance ``seconds`` whole seconds of scripted traffic (no-op when not running/paused)."""
        for _ in range(seconds):
            if self.state not in ("running", "paused"):
                return
            rps, vus = self.target_now()
            iterations = (rps if rps else vus * 5.0) * achieved
            if self.state == "running" and iterations:
                self.session.ingest(
                    self.snapshot(
                        iterations=iterations, latency_ms=latency_ms, error_rate=error_rate
                    )
                )
            self.clock.now += 1.0  # the phase clock reads it: a running phase is a second further
            self._monitor_samples(round(self.session.elapsed() - 0.05, 3), iterations, latency_ms, error_rate)
            spec = self.current
            self.session.tick(self.clock.now, spec.name if spec else "", rps, vus)
            self._evaluate()
            self.session.interval_closed(self.state)
            if self._transition(self.phase_clock.due(), "completed"):
                return


class ScriptedBackend:
    """What ``RunController`` talks to, scripted: no demo server, fixed process stats."""

    def __init__(self, url: str = "http://127.0.0.1:8088", workers: int = 2) -> None:
        self.url = url
        self.workers = workers
        self.coord: FakeCoordinator | None = None

    def resolve_target(self, loaded: LoadedPlan) -> Target:
        return Target(self.url)

    def coordinator(
        self, loaded: LoadedPlan, url: str, *, workers: int | None, reveal_secrets: bool
    ):
        self.coord = FakeCoordinator(loaded, url, workers=workers or self.workers)
        return self.coord

    def process_stats(self) -> tuple[float, int]:
        return 3.0, 72 * 2**20

    def cpu_count(self) -> int:
        return 4


SAMPLE_PLAN = {
    "name": "checkout flow",
    "target": "demo",
    "thresholds": ["p95 < 50ms", "error_rate < 1%", "p99{GET /api/users/{{ id }}} < 100ms"],
    "demo": {"latency": "uniform:5ms:30ms", "error_rate": 0.01},
    "phases": [
        {"name": "warm up", "duration": "10s", "arrival_rate": 20, "ramp_to": 60},
        {"name": "steady", "duration": "20s", "arrival_rate": 60},
        {"name": "users", "duration": "15s", "vus": 8},
        {"name": "cool down", "duration": "5s", "pause": True},
    ],
    "scenarios": [
        {"name": "browse", "steps": [{"url": "/api/users"}, {"url": "/api/users/{{ id }}"}]},
    ],
    "variables": {"id": [1, 2, 3]},
}


MONITOR = {
    "health": ["/health", "/health/detailed"],
    "metrics": "/metrics",
    "process": "target",
    "series": [
        'http_requests_total{route="/api/users"}',
        'http_requests_total{route="/api/users/{id}"}',
        {"name": "5xx per second", "select": 'http_requests_total{status=~"5.."}'},
        "http_requests_in_flight",
        {"name": "server p99 (ms)", "select": "http_request_duration_seconds", "quantile": 0.99, "scale": 1000},
    ],
}


def sample_plan(**changes) -> LoadedPlan:
    data = dict(SAMPLE_PLAN)
    data.update(changes)
    return plan_from_dict(data, file="checkout.toml")


def monitored_plan(**changes) -> LoadedPlan:
    return sample_plan(name="checkout flow, monitored", monitor=MONITOR, **changes)


def write_sample_plans(directory: Path) -> Path:
    """A plans/ directory with the sample plan, a quick-start demo plan and a broken plan."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "demo.toml").write_text(
        'name = "demo quick start"\ntarget = "demo"\nthresholds = ["p95 < 100ms"]\n'
        '[[phases]]\nname = "ramp"\nduration = "10s"\narrival_rate = 10\nramp_to = 40\n'
        '[[phases]]\nname = "hold"\nduration = "20s"\narrival_rate = 40\n'
        '[[scenarios]]\nsteps = [{ url = "/api/users" }]\n',
        encoding="utf-8",
    )
    (directory / "broken.toml").write_text(
        'name = "broken"\ntarget = "demo"\n[[phases]]\nduration = "soon"\narrival_rate = -5\n'
        '[[scenarios]]\nsteps = [{ url = "/x", methd = "GET" }]\n',
        encoding="utf-8",
    )
    return directory


# ---- the app as the snapshot tests and screenshots see it -------------------------------


async def wait_for(pilot, predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def scripted_app(*, out: str = "session.json", plan_dirs=None, loaded: LoadedPlan | None = None):
    """A ``PerftuiApp`` over the scripted backend: the dashboard on the sample plan, or the picker
    when ``plan_dirs`` is given."""
    from perftui.ui.app import PerftuiApp

    backend = ScriptedBackend()
    if plan_dirs is not None:
        app = PerftuiApp(plan_dirs=plan_dirs, backend=backend, out=out)
    else:
        app = PerftuiApp(loaded or sample_plan(), backend=backend, out=out)
    app.scripted = backend
    return app


async def play_running(pilot, seconds_in_steady: int = 8) -> None:
    """Start, run the warm-up, annotate, skip nothing: a dashboard mid-run with every panel filled."""
    app = pilot.app
    backend: ScriptedBackend = app.scripted
    await wait_for(pilot, lambda: backend.coord is not None)
    await pilot.press("s")
    await wait_for(pilot, lambda: backend.coord.state == "running")
    coord = backend.coord
    coord.step(6, latency_ms=9)
    coord.annotate("cache flushed")
    coord.step(4, latency_ms=14, error_rate=0.03)
    coord.step(3, latency_ms=11)
    coord.scale_load(1.1)
    coord.step(seconds_in_steady - 3, latency_ms=10, error_rate=0.004)
    await settle(pilot)


async def play_monitored(pilot) -> None:
    """A monitored run mid-way: a health URL went down and came back, one is down now, perftui
    itself was CPU-bound for a few seconds (generator-limited), the SUT's RSS creeps up."""
    app = pilot.app
    backend: ScriptedBackend = app.scripted
    await wait_for(pilot, lambda: backend.coord is not None)
    await pilot.press("s")
    await wait_for(pilot, lambda: backend.coord.state == "running")
    coord = backend.coord
    coord.step(6, latency_ms=9)
    coord.down["/health/detailed"] = (503, None, "degraded")
    coord.step(3, latency_ms=30, error_rate=0.02)
    del coord.down["/health/detailed"]
    coord.step(3, latency_ms=11)
    coord.busy_cpu = 97.0
    coord.step(4, latency_ms=16)
    coord.busy_cpu = 40.0
    coord.step(3, latency_ms=10)
    coord.down["/health"] = (None, "timeout", "")
    coord.busy_cpu = 98.0
    coord.step(3, latency_ms=12)
    await settle(pilot)


async def play_to_the_end(pilot) -> None:
    await play_running(pilot)
    coord = pilot.app.scripted.coord
    coord.step(60, latency_ms=12, error_rate=0.002)
    from perftui.ui.screens.results import ResultsScreen

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResultsScreen))
    await pilot.pause()


async def settle(pilot) -> None:
    """Draw now (numbers and charts) rather than on the refresh timers."""
    from perftui.ui.screens.dashboard import DashboardScreen

    screen = pilot.app.screen
    if isinstance(screen, DashboardScreen):
        screen.tick_numbers()
        screen.tick_charts(force=True)
    await pilot.pause()
    await pilot.pause()
