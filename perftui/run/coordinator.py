"""The coordinator: runs one plan's worker processes under the run's phase clock.

It runs in the ``perftui`` process (inside the dashboard's event loop, or the headless
reporter's). Workers are ``python -m perftui.worker`` subprocesses speaking the frame
protocol of ``perftui.worker.messages``; each gets an equal share of the rate or of the VUs.
Which phase runs, how far in, pause, skip, back and live rate/VU changes are decided by a
``perftui.run.clock.PhaseClock`` (``phase_clock``); the coordinator turns its answers into
``SetLoad`` messages for the workers, session events, phase records and threshold results.
``record_transition`` and ``record_load_change`` say what a phase or load change leaves in the
session; the tests' scripted coordinator uses them too.

Control API (what the dashboard calls): ``start``, ``pause``, ``resume``, ``toggle_pause``,
``next_phase``, ``prev_phase``, ``scale_load``, ``set_rate``, ``set_vus``, ``annotate``, ``stop``;
the run's state is read through ``ClockView`` (``state``, ``phase_index``, ``current``, ...).
Every control action becomes an ``Event`` in the session.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from pathlib import Path

import msgspec

from perftui.worker.messages import (
    BenchDone, BenchWarm, Bye, Fatal, FrameReader, Hello, Init, SetLoad, Snapshot, StageDone, Stop, encode_frame,
    report_decoder,
)
from perftui.errors import UserError
from perftui.journal import JournalWriter, session_directory
from perftui.lifeline import child_options
from perftui.monitor import Monitor
from perftui.plan import duration_s, protocol_endpoints
from perftui.run.cluster import clock_note, current as cluster_address, loopback_warning, node_lost_event
from perftui.run.stages import Stages
from perftui.run.clock import ClockView, LoadChange, PhaseClock, PhaseSpec, Transition, plan_specs
from perftui.planload import LoadedPlan, redacted_plan
from perftui.redact import masker
from perftui.session import PhaseRecord, SessionRecord
from perftui.run.judge import Judge

_now = time.monotonic


def default_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


class WorkerHandle:
    """A worker process on this machine. ``perftui.run.cluster.RayWorker`` has the same
    interface for a worker on a Ray cluster's node."""

    local = True
    node = ""
    """Which cluster node the worker runs on ("" on this machine)."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process):
        self.index = index
        self.proc = proc
        self.pid = proc.pid
        self.alive = True
        self.said_bye = False
        self.reader_task: asyncio.Task | None = None
        self.stderr_task: asyncio.Task | None = None
        self.stderr_tail: deque[str] = deque(maxlen=20)

    def send(self, msg) -> None:
        if self.alive and self.proc.stdin is not None and not self.proc.stdin.is_closing():
            try:
                self.proc.stdin.write(encode_frame(msg))
            except (BrokenPipeError, ConnectionResetError):
                self.alive = False

    async def reports(self):
        """The worker's reports, decoded, until its stdout closes."""
        frames = FrameReader()
        stream = self.proc.stdout
        while True:
            data = await stream.read(65536)
            if not data:
                break
            for frame in frames.feed(data):
                yield report_decoder.decode(frame)

    async def closed(self) -> None:
        await self.proc.wait()
        if self.stderr_task is not None:
            await asyncio.wait([self.stderr_task], timeout=1.0)

    def exit_text(self) -> str:
        return f"exit code {self.proc.returncode}"

    def finished(self) -> bool:
        return self.proc.returncode is not None

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


class Coordinator(ClockView):
    """Runs one plan. States (its ``phase_clock``'s): idle → running ⇄ paused → finished."""

    def __init__(self, loaded: LoadedPlan, target: str, *, workers: int | None = None,
                 snapshot_interval: float = 0.25, seed: int = 0, reveal_secrets: bool = False,
                 sessions_dir: Path | None = None, session_id: str | None = None):
        self.loaded = loaded
        self.plan = loaded.plan
        self.target = target
        self.cluster = None
        """Where the workers run when not on this machine (``--cluster``: ``perftui.run.cluster``)."""
        if cluster_address() is not None:
            from perftui.run.cluster import RayCluster

            self.cluster = RayCluster(cluster_address())
        self.worker_count = workers or (self.cluster.default_workers() if self.cluster else default_workers())
        self.snapshot_interval = snapshot_interval
        self.seed = seed
        if self.plan.find_limit is not None:  # a breaking-point search runs its own steps
            from perftui.run.limit import search_plan

            self.plan = search_plan(self.plan)
        self.phase_clock = PhaseClock(plan_specs(self.plan), now=_now)
        self.mask = masker(() if reveal_secrets else loaded.secrets)
        """Hides ${ENV} values in what the session records (endpoint names, errors, target)."""
        self.session = SessionRecord(
            plan_name=self.plan.name, plan_file=str(loaded.path) if loaded.path else None,
            plan_dict=redacted_plan(loaded, reveal=reveal_secrets), target=self.mask(target), workers=self.worker_count,
            phases=[PhaseRecord(index=i, name=s.name, kind=s.kind, target=s.describe(), planned_s=s.duration)
                    for i, s in enumerate(self.specs)],
            session_id=session_id,
            roles={self.mask(name): role for name, role in protocol_endpoints(self.plan).items()},
        )
        self.session.mask = self.mask
        self.judge = Judge(self.plan, self.session, planned_s=sum(s.duration for s in self.specs), stop=self._abort)
        """Thresholds (windows, the system under test, abort on fail) and SLOs, once per second."""
        if self.judge.active:
            self.session.add_observer(self.judge)
        self.stages = Stages(self)
        """``[[setup]]``, ``[[teardown]]`` and benchmark phases (``perftui.run.stages``)."""
        self.workers: list[WorkerHandle] = []
        self.finished = asyncio.Event()
        self._clock_task: asyncio.Task | None = None
        self._stopping = False
        self._final_target: tuple[float, int] | None = None
        """The load asked in the last, partial second, taken as the run stops (the clock then
        reads no load)."""
        self._asked_counted = 0.0  # open-model arrivals asked for, up to the last row
        self._killed = False
        self.monitor = Monitor(self.plan.monitor, target=target, session=self.session, own_pids=self._own_pids,
                               tls_verify=self.plan.defaults.tls_verify, databases=self.plan.databases)
        """Target health/metrics and generator self-health; its state is ``session.monitor``."""
        self.sessions_dir = sessions_dir
        """Where the journal, checkpoints and final document go (None: keep nothing on disk)."""
        self.journal: JournalWriter | None = None
        self.session_file: Path | None = None
        """The final session document in the session directory, once written."""
        self.finder = None
        """The breaking-point search (``perftui.run.limit.LimitFinder``) of a ``[find_limit]`` plan."""
        if self.plan.find_limit is not None:
            from perftui.run.limit import LimitFinder

            self.finder = LimitFinder(self, self.plan.find_limit)

    # ---- workers ----------------------------------------------------------------------

    async def launch(self) -> None:
        """Start the worker processes and wait until each has said hello."""
        plan_bytes = msgspec.msgpack.encode(self.plan)
        hellos = []
        remote = await self.cluster.start_workers(self.worker_count) if self.cluster else None
        for i in range(self.worker_count):
            if self._stopping:  # stopped while starting: start no more
                for handle in (remote or [])[i:]:
                    handle.kill()
                break
            if remote is None:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "perftui.worker",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,  # a Ctrl-C on the terminal is ours to handle, not theirs
                    **child_options(),  # and they die with us, whatever kills us
                )
                handle = WorkerHandle(i, proc)
                handle.stderr_task = asyncio.ensure_future(self._read_stderr(handle))
            else:
                handle = remote[i]
            self.workers.append(handle)
            hello = asyncio.get_running_loop().create_future()
            hellos.append(hello)
            handle.reader_task = asyncio.ensure_future(self._read_worker(handle, hello))
            handle.send(Init(plan=plan_bytes, target=self.target, worker_index=i, worker_count=self.worker_count,
                             snapshot_interval=self.snapshot_interval, seed=self.seed))
        await asyncio.wait_for(asyncio.gather(*hellos), timeout=30 if remote is None else 120)
        self.session.generator.workers_alive = len(self.workers)
        if remote is not None:
            self.session.worker_nodes = {w.index: w.node for w in self.workers}
            self.session.event("cluster", f"{len(self.workers)} worker(s) on {len({w.node for w in self.workers})} "
                                          f"node(s) of the Ray cluster {self.cluster.address}: " + ", ".join(
                                              f"{n} ×{sum(1 for w in self.workers if w.node == n)}"
                                              for n in dict.fromkeys(w.node for w in self.workers)) + clock_note(self.workers))
            warning = loopback_warning(self.target, [w.node for w in self.workers])
            if warning:
                self.session.event("warning", warning)

    async def _read_worker(self, handle: WorkerHandle, hello: asyncio.Future) -> None:
        async for msg in handle.reports():
            if isinstance(msg, Snapshot):
                if self.session.started_mono is not None:
                    self.session.ingest(self._masked(msg))
            elif isinstance(msg, Hello):
                if not hello.done():
                    hello.set_result(msg.pid)
            elif isinstance(msg, Bye):
                handle.said_bye = True
            elif isinstance(msg, (StageDone, BenchWarm, BenchDone)):
                self.stages.on_report(msg)
            elif isinstance(msg, Fatal):
                self.session.event("worker", f"worker {msg.worker} failed: {self.mask(msg.message)}")
        handle.alive = False
        await handle.closed()
        if not hello.done():
            hello.set_exception(RuntimeError(f"worker {handle.index} {handle.exit_text()} before starting: "
                                             + "\n".join(map(self.mask, handle.stderr_tail))))
        if not handle.said_bye and not self._stopping and not self._killed:
            self.stages.setup_lost(f"worker {handle.index} {handle.exit_text()}")
            alive = sum(1 for w in self.workers if w.alive)
            self.session.generator.workers_alive = alive
            self.session.worker_lost(handle.index)
            last = self.mask(handle.stderr_tail[-1]) if handle.stderr_tail else ""
            where = f" on node {handle.node}" if handle.node else ""
            self.session.event("worker", f"worker {handle.index}{where} died ({handle.exit_text()}); "
                                         f"{alive} of {len(self.workers)} left" + (f": {last}" if last else ""))
            lost_node = node_lost_event(self.workers, handle)
            if lost_node:
                self.session.event("node", lost_node)
            if alive == 0:
                asyncio.ensure_future(self.stop("all workers died"))
            else:
                self.stages.worker_lost(handle.index)
                self._apply_load()  # re-share the load among the survivors

    def _masked(self, snap: Snapshot) -> Snapshot:
        """Endpoint names (made from URL paths) and error texts without ${ENV} values."""
        mask = self.mask
        for e in snap.endpoints:
            e.name = mask(e.name)
        if snap.errors_sample:
            snap.errors_sample = [mask(t) for t in snap.errors_sample]
        return snap

    async def _read_stderr(self, handle: WorkerHandle) -> None:
        """Keep a worker's last stderr lines (a traceback, usually) for the death notice; never
        let them reach the terminal, where they would tear the dashboard."""
        async for line in handle.proc.stderr:
            handle.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _own_pids(self) -> list[tuple[str, int]]:
        """perftui's processes, for the monitor's psutil sampling."""
        return [("coordinator", os.getpid())] + [(f"worker {w.index}", w.pid) for w in self.workers if w.alive and w.local]

    def _alive(self) -> list[WorkerHandle]:
        return [w for w in self.workers if w.alive]

    # ---- phase clock ------------------------------------------------------------------

    def _apply_load(self, at: float | None = None) -> None:
        """Tell every live worker its share of the clock's load shape from now on, or from ``at``
        (a phase's start on the clock: see ``_transition``)."""
        alive = self._alive()
        if not alive:
            return
        spec = self.current
        if spec is not None and spec.kind == "benchmark":
            if self.state == "running":
                self.stages.apply_bench()
            return
        now = _now() if at is None else at
        shape = self.phase_clock.shape(now)
        origin = self.session.started_mono or 0.0
        index = self.phase_index
        if shape.kind == "idle":
            for w in alive:
                w.send(SetLoad(phase=index, kind="idle", start=now, duration=0, clock_origin=origin))
            return
        n = len(alive)
        v0, v1 = shape.value_from, shape.value_to
        for i, w in enumerate(alive):
            if shape.kind == "open":
                w.send(SetLoad(phase=index, kind="open", start=now, duration=shape.remaining,
                               rate_from=v0 / n, rate_to=v1 / n, arrivals=spec.arrivals,
                               max_in_flight=-(-spec.max_in_flight // n) if spec.max_in_flight else 0,
                               clock_origin=origin, share=i, shares=n, ends=index == len(self.specs) - 1))
            else:
                w.send(SetLoad(phase=index, kind="closed", start=now, duration=shape.remaining,
                               vus_from=_share(round(v0), n, i), vus_to=_share(round(v1), n, i), clock_origin=origin))

    def _transition(self, t: Transition | None) -> None:
        """Record a phase change the clock made and give the workers the new phase."""
        if t is None or t.entered is None:
            return
        record_transition(self.session, self.specs, t)
        self.stages.left_phase()
        # The phase's shape starts where the clock entered it, not when this line runs: a
        # coordinator held between the two (a busy machine; starting a run on Ray under load
        # held it 0.37 s) cut that much off the phase, whose end the clock still keeps. Arrivals
        # due meanwhile are started by the workers on catching up, and counted late.
        self._apply_load(self.phase_clock.entered_at)

    async def _clock(self) -> None:
        """Advance phases, close timeline seconds, evaluate thresholds. A bug in any of that must
        not leave the run hanging with no clock: it ends the run, recorded, with what it has."""
        try:
            await self._tick_seconds()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the session and on screen, then stopped
            self.session.event("warning", f"internal error in the run's clock: {type(exc).__name__}: {exc}; "
                                          "the run stops here and keeps what it recorded")
            if not self._stopping:
                await self.stop(f"internal error: {type(exc).__name__}")

    async def _tick_seconds(self) -> None:
        next_second = self.session.started_mono + 1.0
        grace = 0.06  # snapshots stamped on the boundary arrive within a millisecond or so
        clock = self.phase_clock
        while clock.active:
            # Wake at the phase's end when it comes before the next 50 ms: the workers get the
            # next phase's shape as it starts, not up to a tick later (the old shape runs on
            # meanwhile, so a late tick moved load from one phase into the other).
            end = clock.ends_at()
            await asyncio.sleep(0.05 if end is None else min(0.05, max(0.0, end - _now()) + 0.0005))
            now = _now()
            while (t := clock.due()) is not None:  # (a held loop can owe more than one)
                if t.entered is None:
                    await self.stop("completed", ran_out=t.at)
                    return
                self._transition(t)
            if now >= next_second + grace:
                self._second(next_second)
                next_second += 1.0
                if next_second + grace < now:  # the loop was blocked for a while: don't replay seconds
                    next_second = now

    def _second(self, boundary: float, final: bool = False) -> None:
        spec = self.current
        if final and self._final_target is not None:
            rps, vus = self._final_target
        else:
            rps, vus = self.target_now(back=max(0.0, _now() - boundary) + 0.5)
        # what the phases asked for up to the row's end, from the clock (a phase change inside the
        # row counts each phase at its own rate; rows differ from each other, the sum is exact)
        total = self.phase_clock.asked_arrivals(at=None if final else min(boundary, _now()))
        asked = max(0.0, total - self._asked_counted)
        self._asked_counted += asked
        self.session.tick(boundary, spec.name if spec else "", rps, vus, final=final, asked=asked)
        self.evaluate_thresholds()
        self.session.interval_closed(self.state)  # the viewers' one path (SessionObserver.on_interval)

    def evaluate_thresholds(self) -> list:
        s = self.session
        if not self.judge.rules:
            return []
        overall = s.summary()
        eps = {e.name: e for e in s.endpoint_summaries()}
        # protocol figures (ws.*, mcp.*, graphql.*) cost a merge of histograms: only when asked for
        extra = s.protocol_extra() if self.judge.protocol else {}
        s.threshold_results = self.judge.evaluate(overall, eps, extra)
        return s.threshold_results

    def _abort(self, reason: str) -> bool:
        """A threshold with ``abort_on_fail`` failed: stop the run the normal way."""
        if self._stopping or not self.phase_clock.active:
            return False
        asyncio.ensure_future(self.stop(reason))
        return True

    # ---- control API ------------------------------------------------------------------

    async def start(self) -> None:
        if self.state != "idle":
            return
        if self.sessions_dir is not None and self.journal is None:
            # before the workers: a sessions directory that cannot be written stops us at once
            directory = session_directory(self.sessions_dir, self.session)
            try:
                self.journal = JournalWriter(self.session, directory)
            except OSError as exc:
                raise UserError(f"sessions directory {self.sessions_dir}: cannot write {directory.name}: "
                                f"{exc.strerror or exc} (free space, fix its permissions, or choose another "
                                "with --sessions-dir)") from None
        if not self.workers:
            try:
                await self.launch()
            except Exception:
                if not self._stopping:
                    raise
            if self._stopping:  # a signal while the workers were starting: stop() finishes the record
                await self.finished.wait()
                return
        if not await self.stages.setup():
            if not self._stopping:
                why = self.session.setup.message if self.session.setup else "no worker left"
                await self.stop(f"setup failed: {why}")
            await self.finished.wait()
            return
        self.session.mark_started()
        t = self.phase_clock.start()
        self.session.event("start", f"run started with {len(self._alive())} worker(s) against {self.session.target}")
        if self.current is not None:
            self._transition(t)
        self._clock_task = asyncio.ensure_future(self._clock())
        self.monitor.start()

    def pause(self) -> None:
        if self.phase_clock.pause():
            self.session.event("pause", "paused")
            self._apply_load()

    def resume(self) -> None:
        if self.phase_clock.resume():
            self.session.event("resume", "resumed")
            self._apply_load()

    def toggle_pause(self) -> None:
        self.resume() if self.state == "paused" else self.pause()

    def next_phase(self) -> None:
        t = self.phase_clock.skip()
        if t is not None and t.entered is None:
            asyncio.ensure_future(self.stop("skipped past the last phase"))
            return
        self._transition(t)

    def phase_done(self) -> None:
        """The current phase's work is done before its time (a benchmark took its samples)."""
        t = self.phase_clock.skip("done")
        if t is not None and t.entered is None:
            asyncio.ensure_future(self.stop("completed"))
            return
        self._transition(t)

    def prev_phase(self) -> None:
        self._transition(self.phase_clock.back())

    def set_rate(self, rate: float) -> float | None:
        return self._load_change(self.phase_clock.set_value("open", rate))

    def set_vus(self, vus: int) -> float | None:
        return self._load_change(self.phase_clock.set_value("closed", vus))

    def scale_load(self, factor: float) -> float | None:
        """Multiply the current phase's target (rate or VUs) by ``factor`` (the dashboard's
        ``+``/``-``): a flat value for a flat phase, both ends of a ramp (see
        ``PhaseClock.scale_by``); returns the target now."""
        return self._load_change(self.phase_clock.scale_by(factor))

    def _load_change(self, change: LoadChange | None) -> float | None:
        if change is None:
            return None
        record_load_change(self.session, self.phase_index, change)
        self._apply_load()
        return change.value

    def annotate(self, text: str) -> None:
        self.session.event("annotation", text)

    async def stop(self, reason: str = "stopped", *, grace: float | None = None,
                   ran_out: float | None = None) -> None:
        """Stop the run: workers finish in-flight work (up to ``grace``, by default the plan's
        ``defaults.graceful_stop``), cancel what is still going (counted as ``interrupted``)
        and send final snapshots. ``ran_out``: when the last phase ran its length (its record
        ends there)."""
        if grace is None:
            grace = duration_s(self.plan.defaults.graceful_stop)
        if self._stopping:
            if grace <= 0:  # a forced stop overtaking a graceful one: say so in the record
                self._stop_reason = reason
            await self.finished.wait()
            return
        self._stopping = True
        self._stop_reason = reason
        self.stages.setup_lost(reason)  # a setup still going ends with the run
        was_running = self.phase_clock.active
        if was_running:
            # the middle of the partial second the final row covers (its rate asked; from here on
            # the clock reads none, and that row said 0/s asked of a second that ran at full load)
            since = self.session._last_tick or self.session.started_mono or _now()
            self._final_target = self.target_now(back=max(0.0, _now() - since) / 2)
            close_phase_record(self.session, self.phase_index if self.current else None, at=ran_out)
            self.session.event("stop", reason)
        self.phase_clock.finish()
        if self._clock_task and self._clock_task is not asyncio.current_task():
            self._clock_task.cancel()
        teardown = self.stages.teardown_limit(0) if grace > 0 else 0.0
        stopped_at = _now()
        for w in self._alive():
            w.send(Stop(grace=grace, teardown=self.stages.teardown_limit(w.index) if grace > 0 else 0.0,
                        at=stopped_at))
        readers = [w.reader_task for w in self.workers if w.reader_task]
        if readers:
            done, pending = await asyncio.wait(readers, timeout=grace + 0.7 + (teardown + 1.0 if teardown else 0.0)
                                               + (0.0 if self.cluster is None else 2.0))
            for w in self.workers:
                if not w.local or not w.finished():
                    w.kill()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if was_running:
            await self.monitor.stop()
            self._second(_now(), final=True)  # fold the last partial second in
        self.session.ended_wall = time.time()
        self.session.end_reason = self._stop_reason
        self.session.partial = self._stop_reason != "completed"
        try:
            self.evaluate_thresholds()
        finally:
            if self.journal is not None:
                try:
                    self.session_file = self.journal.finish()
                except Exception as exc:  # noqa: BLE001 - whatever the disk does, the run must end
                    self.session.event("warning", f"session directory: {exc}")
            self.finished.set()  # always: the reporter waits on it, a signal handler too
        self.session.interval_closed(self.state)

    def kill_workers(self) -> None:
        """Kill every worker at once. Their deaths are then ours, never "all workers died"
        (a fast double Ctrl-C kills them before the graceful stop has begun)."""
        self._killed = True
        for w in self.workers:
            if not w.finished():
                w.kill()


# ---- what a phase change and a load change leave in the session (the tests' fake uses them too)


def close_phase_record(session: SessionRecord, index: int | None, *, skipped: bool | None = None,
                       at: float | None = None) -> None:
    """End the record of phase ``index`` now or at monotonic time ``at``, if it is open
    (``skipped``: left by skip or back)."""
    if index is None:
        return
    rec = session.phases[index]
    if rec.start is not None and rec.end is None:
        rec.end = round(session.elapsed(at), 3)
        if skipped is not None:
            rec.skipped = skipped


def record_transition(session: SessionRecord, specs: list[PhaseSpec], t: Transition) -> None:
    """Close the phase left, open the one entered, say so in the events: as of when the clock
    made the change (a phase that ran its length ends at its end, whenever this runs)."""
    manual = t.reason in ("skip", "back")
    close_phase_record(session, t.left, skipped=(t.reason == "skip") if manual else None, at=t.at)
    if t.entered is None:
        return
    rec = session.phases[t.entered]
    rec.start = round(session.elapsed(t.at), 3)
    rec.end = None
    spec = specs[t.entered]
    session.event("phase", f"phase {t.entered + 1}/{len(specs)} '{spec.name}' ({spec.describe()})"
                  + ("" if t.reason == "clock" else f" [{t.reason}]"), at=t.at)


def record_load_change(session: SessionRecord, index: int, change: LoadChange) -> None:
    """The event of a live rate/VU change (and a scaled ramp's new target in the phase record)."""
    kind = "rate" if change.kind == "open" else "vus"
    if change.how == "ramp":
        session.phases[index].target = change.spec.describe()
        what = "target rate" if change.kind == "open" else "virtual users"
        session.event(kind, f"{what} ramp scaled ×{change.factor:g}: {change.spec.describe()}")
    elif change.kind == "open":
        session.event(kind, f"target rate set to {change.value:g}/s")
    else:
        session.event(kind, f"virtual users set to {int(change.value)}")


def _share(total: int, n: int, i: int) -> int:
    """Split ``total`` VUs over ``n`` workers; the first ``total % n`` get one more."""
    return total // n + (1 if i < total % n else 0)
