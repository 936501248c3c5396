"""The coordinator's half of setup, teardown and benchmarks (the worker's is
``perftui.worker.stages``).

* ``[[setup]]`` runs in worker 0 after the workers start and before the phase clock does; its
  requests are kept apart (``session.setup``), its captures go to every worker (``Shared``) and
  from there, as a copy, to every virtual user. A failed setup ends the run before any load.
* ``[[teardown]]`` runs in worker 0 after its load has stopped (``Stop.teardown``), also after a
  signal, within ``defaults.teardown_timeout``; only after a setup that went through (as k6).
* A benchmark plan's phases are its benchmarked scenarios (``perftui.run.clock.benchmark_specs``):
  entering one splits its counts over the live workers (``share``: the parts add up exactly)
  and ends the phase as soon as every worker has reported its samples.
"""

from __future__ import annotations

import asyncio
from typing import Any

from perftui.aggregate import Aggregate, decode_histogram
from perftui.plan import duration_s, is_benchmark, step_endpoints
from perftui.plan.stages import share
from perftui.session.stages import BenchmarkRecord, StageRecord
from perftui.summary import EndpointSummary
from perftui.worker.messages import Bench, BenchDone, BenchGo, BenchWarm, RunSetup, SetLoad, Shared, StageDone


def stage_record(done: StageDone | None, message: str, mask) -> StageRecord:
    """A worker's ``StageDone`` (or nothing, with ``message`` saying why) as the session keeps it."""
    if done is None:
        return StageRecord(ok=False, duration_s=0.0, message=message)
    endpoints = []
    for d in done.endpoints:
        agg = Aggregate()
        agg.add_delta(d, decode_histogram(d.latency), decode_histogram(d.service))
        endpoints.append(agg.summary(max(done.duration, 1e-3), EndpointSummary, name=mask(d.name), protocol=d.protocol))
    return StageRecord(ok=done.ok, duration_s=round(done.duration, 3), message=mask(done.message),
                       captured=sorted(done.captured), endpoints=endpoints)


class Stages:
    """Setup, teardown and the benchmark phases of one coordinator's run."""

    def __init__(self, coord: Any):
        self.coord = coord
        """The ``perftui.run.coordinator.Coordinator`` (not imported: it imports this module)."""
        self.plan = coord.plan
        self.shared: dict = {}
        self.setup_ok = True
        self._setup: asyncio.Future | None = None
        self._bench_sent: int | None = None
        """Index of the benchmark phase whose work the workers were given."""
        self._bench_waiting: set[int] = set()
        self._warming: set[int] = set()
        """Workers of the current benchmark still in their warm-up (the others wait for them)."""
        self._held = False
        if is_benchmark(self.plan):
            coord.session.benchmark = [
                BenchmarkRecord(scenario=coord.mask(spec.name), phase=i, iterations=spec.iterations,
                                warmup_iterations=spec.warmup, concurrency=int(spec.start_value),
                                endpoints=list(dict.fromkeys(
                                    coord.mask(name) for st in self.plan.scenarios[spec.scenario].steps
                                    for name, _ in step_endpoints(st))))
                for i, spec in enumerate(coord.specs)]

    # ---- setup / teardown ----------------------------------------------------------------

    async def setup(self) -> bool:
        """Run ``[[setup]]`` (if any) in the first worker; True when the load may start."""
        if not self.plan.setup:
            return True
        coord = self.coord
        alive = coord._alive()
        if not alive:
            return False
        limit = duration_s(self.plan.defaults.setup_timeout)
        self._setup = asyncio.get_running_loop().create_future()
        coord.session.event("setup", f"setup: {len(self.plan.setup)} step(s)")
        alive[0].send(RunSetup(timeout=limit))
        done, why = None, ""
        try:
            done = await asyncio.wait_for(asyncio.shield(self._setup), limit + 5.0)
        except TimeoutError:
            why = f"no answer within {limit:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the worker died
            why = str(exc)
        record = coord.session.setup = stage_record(done, why, coord.mask)
        self.setup_ok = record.ok
        if not record.ok:
            coord.session.event("setup", f"setup failed: {record.message}")
            return False
        self.shared = done.captured
        for w in coord._alive():
            w.send(Shared(vars=self.shared))
        names = ", ".join(record.captured) or "nothing"
        coord.session.event("setup", f"setup done in {record.duration_s:g}s, captured {names}")
        return True

    def setup_lost(self, message: str) -> None:
        """Worker 0 died during the setup."""
        if self._setup is not None and not self._setup.done():
            self._setup.set_exception(RuntimeError(message))

    def teardown_limit(self, index: int) -> float:
        """What ``Stop.teardown`` tells worker ``index`` (0: no teardown there)."""
        if index != 0 or not self.plan.teardown or not self.setup_ok:
            return 0.0
        return duration_s(self.plan.defaults.teardown_timeout)

    # ---- reports -------------------------------------------------------------------------

    def on_report(self, msg: StageDone | BenchWarm | BenchDone) -> None:
        coord = self.coord
        if isinstance(msg, BenchWarm):
            if msg.phase == self._bench_sent:
                self._warming.discard(msg.worker)
                self._release()
            return
        if isinstance(msg, StageDone):
            if msg.stage == "setup":
                if self._setup is not None and not self._setup.done():
                    self._setup.set_result(msg)
                return
            record = coord.session.teardown = stage_record(msg, "", coord.mask)
            coord.session.event("teardown", f"teardown done in {record.duration_s:g}s" if record.ok
                                else f"teardown failed: {record.message}")
            return
        rec = next((b for b in coord.session.benchmark if b.phase == msg.phase), None)
        if rec is None:
            return
        rec.measured += msg.measured
        rec.warmed += msg.warmup
        if msg.phase != self._bench_sent:
            return
        self._bench_waiting.discard(msg.worker)
        if not self._bench_waiting and coord.phase_clock.active and coord.phase_index == msg.phase:
            coord.session.event("benchmark", f"{rec.scenario}: {rec.measured:,} samples"
                                + (f" after {rec.warmed:,} warm-up" if rec.warmed else ""))
            coord.phase_done()

    # ---- benchmark phases -----------------------------------------------------------------

    def apply_bench(self) -> None:
        """Give the live workers their share of the current benchmark phase, once per phase
        entered (a pause, a resume or a lost worker does not restart or re-split it)."""
        coord = self.coord
        index, spec = coord.phase_index, coord.current
        if self._bench_sent == index or spec is None:
            return
        self._bench_sent = index
        alive = coord._alive()
        active = alive[: max(1, min(len(alive), int(spec.start_value)))]
        origin = coord.session.started_mono or 0.0
        self._bench_waiting = {w.index for w in active}
        self._held = bool(spec.warmup)
        """With a warm-up, every worker waits for ``BenchGo`` after its share (even a share of 0)."""
        self._warming = {w.index for w in active} if self._held else set()
        for i, w in enumerate(active):
            w.send(Bench(phase=index, scenario=spec.scenario, warmup=share(spec.warmup, len(active), i),
                         iterations=share(spec.iterations, len(active), i),
                         concurrency=max(1, share(int(spec.start_value), len(active), i)), clock_origin=origin,
                         hold=self._held))
        for w in alive[len(active):]:
            w.send(SetLoad(phase=index, kind="idle", start=0.0, duration=0, clock_origin=origin))

    def _release(self) -> None:
        """Every worker has warmed up: all take their measured samples now."""
        if self._bench_sent is not None and not self._warming and self._held:
            self._held = False
            for w in self.coord._alive():
                if w.index in self._bench_waiting:
                    w.send(BenchGo(phase=self._bench_sent))

    def worker_lost(self, index: int) -> None:
        """A worker died: the current benchmark no longer waits for it (its samples are lost,
        and the table says the benchmark fell short)."""
        if index in self._warming:
            self._warming.discard(index)
            self._release()
        if index in self._bench_waiting:
            self._bench_waiting.discard(index)
            coord = self.coord
            if not self._bench_waiting and coord.phase_clock.active and coord.phase_index == self._bench_sent:
                coord.phase_done()

    def left_phase(self) -> None:
        """A benchmark phase was left (skipped, or its ``max_duration`` ran out)."""
        self._bench_sent = None
        self._bench_waiting = set()
        self._warming = set()
        self._held = False

