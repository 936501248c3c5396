"""The coordinator: owns the plan, the phase clock and live control, and the worker processes.

It runs in the ``perftui`` process (inside the dashboard's event loop, or the headless
reporter's). Workers are ``python -m perftui.worker`` subprocesses speaking the frame
protocol of ``perftui.worker.messages``; each gets an equal share of the rate or of the VUs. The
phase clock only advances while running, so a pause stretches the run instead of eating the phase.

Control API (what the dashboard calls): ``start``, ``pause``, ``resume``, ``toggle_pause``,
``next_phase``, ``prev_phase``, ``scale_load``, ``set_rate``, ``set_vus``, ``annotate``, ``stop``.
Every control action becomes an ``Event`` in the session.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from pathlib import Path
from collections.abc import Callable
from dataclasses import replace

import msgspec

from perftui.worker.messages import (
    Bye, Fatal, FrameReader, Hello, Init, SetLoad, Snapshot, Stop, encode_frame, report_decoder,
)
from perftui.errors import UserError
from perftui.journal import JournalWriter, session_directory
from perftui.lifeline import child_options
from perftui.monitor import Monitor
from perftui.plan import duration_s, protocol_endpoints
from perftui.run.clock import PhaseSpec, phase_specs
from perftui.planload import LoadedPlan, redacted_plan
from perftui.redact import masker
from perftui.session import PhaseRecord, SessionRecord
from perftui.thresholds import METRICS, evaluate, parse_threshold

_now = time.monotonic


def default_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


class LoadScaling:
    """``scale_load`` for anything with the coordinator's surface (``current``, ``state``,
    ``override``, ``current_phase_elapsed``, ``set_rate``, ``set_vus``): local or attached."""

    def scale_load(self, factor: float) -> float | None:
        """Multiply the current phase's target (rate or VUs) by ``factor``; returns the new value
        (for VUs a whole number that moves by at least one)."""
        spec = self.current
        if spec is None or spec.kind == "pause" or self.state not in ("running", "paused"):
            return None
        base = self.override if self.override is not None else spec.value_at(self.current_phase_elapsed())
        new = base * factor
        if self.override is None and spec.start_value != spec.end_value and hasattr(self, "scale_ramp"):
            return self.scale_ramp(factor)  # a ramp stays a ramp: both of its ends scale
        if spec.kind == "closed":
            new = max(1, round(new) if round(new) != round(base) else round(base) + (1 if factor > 1 else -1))
            return self.set_vus(int(new))
        return self.set_rate(new)


class WorkerHandle:
    def __init__(self, index: int, proc: asyncio.subprocess.Process):
        self.index = index
        self.proc = proc
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


class Coordinator(LoadScaling):
    """Runs one plan. States: idle → running ⇄ paused → finished."""

    def __init__(self, loaded: LoadedPlan, target: str, *, workers: int | None = None,
                 snapshot_interval: float = 0.25, seed: int = 0, reveal_secrets: bool = False,
                 sessions_dir: Path | None = None, session_id: str | None = None):
        self.loaded = loaded
        self.plan = loaded.plan
        self.target = target
        self.worker_count = workers or default_workers()
        self.snapshot_interval = snapshot_interval
        self.seed = seed
        self.specs = phase_specs(self.plan.phases)
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
        self.thresholds = [parse_threshold(t) for t in self.plan.thresholds]
        self._protocol_thresholds = any(t.metric not in METRICS for t in self.thresholds)
        self.state = "idle"
        self.phase_index = 0
        self.phase_elapsed = 0.0  # run time spent in the current phase (excludes pauses)
        self._phase_resumed_at: float | None = None
        self.override: float | None = None  # live rate/VU override for the current phase
        self.workers: list[WorkerHandle] = []
        self.listeners: list[Callable[[], None]] = []
        self.finished = asyncio.Event()
        self._clock_task: asyncio.Task | None = None
        self._stopping = False
        self._killed = False
        self.monitor = Monitor(self.plan.monitor, target=target, session=self.session, own_pids=self._own_pids,
                               tls_verify=self.plan.defaults.tls_verify)
        """Target health/metrics and generator self-health; its state is ``session.monitor``."""
        self.sessions_dir = sessions_dir
        """Where the journal, checkpoints and final document go (None: keep nothing on disk)."""
        self.journal: JournalWriter | None = None
        self.session_file: Path | None = None
        """The final session document in the session directory, once written."""

    # ---- workers ----------------------------------------------------------------------

    async def launch(self) -> None:
        """Start the worker processes and wait until each has said hello."""
        plan_bytes = msgspec.msgpack.encode(self.plan)
        hellos = []
        for i in range(self.worker_count):
            if self._stopping:  # stopped while starting: start no more
                break
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "perftui.worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C on the terminal is ours to handle, not theirs
                **child_options(),  # and they die with us, whatever kills us
            )
            handle = WorkerHandle(i, proc)
            self.workers.append(handle)
            hello = asyncio.get_running_loop().create_future()
            hellos.append(hello)
            handle.reader_task = asyncio.ensure_future(self._read_worker(handle, hello))
            handle.stderr_task = asyncio.ensure_future(self._read_stderr(handle))
            handle.send(Init(plan=plan_bytes, target=self.target, worker_index=i, worker_count=self.worker_count,
                             snapshot_interval=self.snapshot_interval, seed=self.seed))
        await asyncio.wait_for(asyncio.gather(*hellos), timeout=30)
        self.session.generator.workers_alive = len(self.workers)

    async def _read_worker(self, handle: WorkerHandle, hello: asyncio.Future) -> None:
        frames = FrameReader()
        stream = handle.proc.stdout
        while True:
            data = await stream.read(65536)
            if not data:
                break
            for frame in frames.feed(data):
                msg = report_decoder.decode(frame)
                if isinstance(msg, Snapshot):
                    if self.session.started_mono is not None:
                        self.session.ingest(self._masked(msg))
                elif isinstance(msg, Hello):
                    if not hello.done():
                        hello.set_result(msg.pid)
                elif isinstance(msg, Bye):
                    handle.said_bye = True
                elif isinstance(msg, Fatal):
                    self.session.event("worker", f"worker {msg.worker} failed: {self.mask(msg.message)}")
        handle.alive = False
        await handle.proc.wait()
        if handle.stderr_task is not None:
            await asyncio.wait([handle.stderr_task], timeout=1.0)
        if not hello.done():
            hello.set_exception(RuntimeError(f"worker {handle.index} exited with code {handle.proc.returncode} before starting: "
                                             + "\n".join(map(self.mask, handle.stderr_tail))))
        if not handle.said_bye and not self._stopping and not self._killed:
            alive = sum(1 for w in self.workers if w.alive)
            self.session.generator.workers_alive = alive
            last = self.mask(handle.stderr_tail[-1]) if handle.stderr_tail else ""
            self.session.event("worker", f"worker {handle.index} died (exit code {handle.proc.returncode}); "
                                         f"{alive} of {len(self.workers)} left" + (f": {last}" if last else ""))
            if alive == 0:
                asyncio.ensure_future(self.stop("all workers died"))
            else:
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
        return [("coordinator", os.getpid())] + [(f"worker {w.index}", w.proc.pid) for w in self.workers if w.alive]

    def _alive(self) -> list[WorkerHandle]:
        return [w for w in self.workers if w.alive]

    # ---- phase clock ------------------------------------------------------------------

    @property
    def current(self) -> PhaseSpec | None:
        return self.specs[self.phase_index] if 0 <= self.phase_index < len(self.specs) else None

    def current_phase_elapsed(self) -> float:
        e = self.phase_elapsed
        if self._phase_resumed_at is not None:
            e += _now() - self._phase_resumed_at
        return e

    def target_now(self, back: float = 0.0) -> tuple[float, int]:
        """(target rps, target VUs) across all workers, right now or ``back`` seconds ago within
        the current phase (a second's row reports the target at its middle: the average of a ramp)."""
        spec = self.current
        if spec is None or self.state != "running" or spec.kind == "pause":
            return 0.0, 0
        elapsed = max(0.0, self.current_phase_elapsed() - back)
        value = self.override if self.override is not None else spec.value_at(elapsed)
        return (value, 0) if spec.kind == "open" else (0.0, int(round(value)))

    def _apply_load(self) -> None:
        """Tell every live worker its share of the current phase from now on."""
        alive = self._alive()
        spec = self.current
        now = _now()
        origin = self.session.started_mono or 0.0
        if not alive:
            return
        if spec is None or self.state != "running" or spec.kind == "pause":
            for w in alive:
                w.send(SetLoad(phase=self.phase_index, kind="idle", start=now, duration=0, clock_origin=origin))
            return
        elapsed = self.current_phase_elapsed()
        remaining = max(0.0, spec.duration - elapsed)
        if self.override is not None:
            v0 = v1 = self.override
        else:
            v0, v1 = spec.value_at(elapsed), spec.end_value
        n = len(alive)
        for i, w in enumerate(alive):
            if spec.kind == "open":
                w.send(SetLoad(phase=self.phase_index, kind="open", start=now, duration=remaining,
                               rate_from=v0 / n, rate_to=v1 / n, arrivals=spec.arrivals,
                               max_in_flight=-(-spec.max_in_flight // n) if spec.max_in_flight else 0,
                               clock_origin=origin))
            else:
                w.send(SetLoad(phase=self.phase_index, kind="closed", start=now, duration=remaining,
                               vus_from=_share(round(v0), n, i), vus_to=_share(round(v1), n, i), clock_origin=origin))

    def _enter_phase(self, index: int, *, reason: str) -> None:
        rec = self.session.phases
        t = round(self.session.elapsed(), 3)
        if self.current is not None and rec[self.phase_index].start is not None and rec[self.phase_index].end is None:
            rec[self.phase_index].end = t
            if reason in ("skip", "back"):
                rec[self.phase_index].skipped = reason == "skip"
        self.phase_index = index
        self.phase_elapsed = 0.0
        self._phase_resumed_at = _now() if self.state == "running" else None
        self.override = None
        if self.current is None:
            return
        rec[index].start = t
        rec[index].end = None
        self.session.event("phase", f"phase {index + 1}/{len(self.specs)} '{self.current.name}' ({self.current.describe()})"
                           + ("" if reason == "clock" else f" [{reason}]"))
        self._apply_load()

    async def _clock(self) -> None:
        """Advance phases, close timeline seconds, evaluate thresholds."""
        next_second = self.session.started_mono + 1.0
        grace = 0.06  # snapshots stamped on the boundary arrive within a millisecond or so
        while self.state in ("running", "paused"):
            await asyncio.sleep(0.05)
            now = _now()
            spec = self.current
            if self.state == "running" and spec is not None and self.current_phase_elapsed() >= spec.duration:
                if self.phase_index + 1 < len(self.specs):
                    self._enter_phase(self.phase_index + 1, reason="clock")
                else:
                    await self.stop("completed")
                    return
            if now >= next_second + grace:
                self._second(next_second)
                next_second += 1.0
                if next_second + grace < now:  # the loop was blocked for a while: don't replay seconds
                    next_second = now

    def _second(self, boundary: float, final: bool = False) -> None:
        spec = self.current
        rps, vus = self.target_now(back=max(0.0, _now() - boundary) + 0.5)
        self.session.tick(boundary, spec.name if spec else "", rps, vus, final=final)
        self.evaluate_thresholds()
        for cb in self.listeners:
            cb()

    def evaluate_thresholds(self) -> list:
        s = self.session
        if not self.thresholds:
            return []
        overall = s.summary()
        eps = {e.name: e for e in s.endpoint_summaries()}
        # protocol figures (ws.*, mcp.*, graphql.*) cost a merge of histograms: only when asked for
        extra = s.protocol_extra() if self._protocol_thresholds else {}
        s.threshold_results = [evaluate(t, overall, eps, extra) for t in self.thresholds]
        return s.threshold_results

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
        self.session.mark_started()
        self.state = "running"
        self.session.event("start", f"run started with {len(self._alive())} worker(s) against {self.session.target}")
        self._enter_phase(0, reason="clock")
        self._clock_task = asyncio.ensure_future(self._clock())
        self.monitor.start()

    def pause(self) -> None:
        if self.state != "running":
            return
        self.phase_elapsed = self.current_phase_elapsed()
        self._phase_resumed_at = None
        self.state = "paused"
        self.session.event("pause", "paused")
        self._apply_load()

    def resume(self) -> None:
        if self.state != "paused":
            return
        self.state = "running"
        self._phase_resumed_at = _now()
        self.session.event("resume", "resumed")
        self._apply_load()

    def toggle_pause(self) -> None:
        self.resume() if self.state == "paused" else self.pause()

    def next_phase(self) -> None:
        if self.state not in ("running", "paused"):
            return
        if self.phase_index + 1 >= len(self.specs):
            asyncio.ensure_future(self.stop("skipped past the last phase"))
            return
        self._enter_phase(self.phase_index + 1, reason="skip")

    def prev_phase(self) -> None:
        if self.state not in ("running", "paused"):
            return
        self._enter_phase(max(0, self.phase_index - 1) if self.current_phase_elapsed() < 2 else self.phase_index,
                          reason="back")

    def set_rate(self, rate: float) -> float | None:
        spec = self.current
        if spec is None or spec.kind != "open":
            return None
        self.override = max(0.1, float(rate))
        self.session.event("rate", f"target rate set to {self.override:g}/s")
        self._apply_load()
        return self.override

    def scale_ramp(self, factor: float) -> float | None:
        """Multiply both ends of the current phase's ramp by ``factor`` (the phase keeps its
        shape and its clock); returns the target now."""
        spec = self.current
        if spec is None or spec.kind == "pause":
            return None
        low = 0.1 if spec.kind == "open" else 1.0
        scaled = replace(spec, start_value=max(low, spec.start_value * factor) if spec.start_value else 0.0,
                         end_value=max(low, spec.end_value * factor) if spec.end_value else 0.0)
        self.specs[self.phase_index] = scaled
        self.session.phases[self.phase_index].target = scaled.describe()
        what = "target rate" if spec.kind == "open" else "virtual users"
        self.session.event("rate" if spec.kind == "open" else "vus",
                           f"{what} ramp scaled ×{factor:g}: {scaled.describe()}")
        self._apply_load()
        return scaled.value_at(self.current_phase_elapsed())

    def set_vus(self, vus: int) -> float | None:
        spec = self.current
        if spec is None or spec.kind != "closed":
            return None
        self.override = float(max(1, int(vus)))
        self.session.event("vus", f"virtual users set to {int(self.override)}")
        self._apply_load()
        return self.override

    def annotate(self, text: str) -> None:
        self.session.event("annotation", text)

    async def stop(self, reason: str = "stopped", *, grace: float | None = None) -> None:
        """Stop the run: workers finish in-flight work (up to ``grace``, by default the plan's
        ``defaults.graceful_stop``), cancel what is still going (counted as ``interrupted``)
        and send final snapshots."""
        if grace is None:
            grace = duration_s(self.plan.defaults.graceful_stop)
        if self._stopping:
            if grace <= 0:  # a forced stop overtaking a graceful one: say so in the record
                self._stop_reason = reason
            await self.finished.wait()
            return
        self._stopping = True
        self._stop_reason = reason
        was_running = self.state in ("running", "paused")
        if was_running:
            rec = self.session.phases[self.phase_index] if self.current else None
            if rec is not None and rec.start is not None and rec.end is None:
                rec.end = round(self.session.elapsed(), 3)
            self.session.event("stop", reason)
        self.state = "finished"
        if self._clock_task and self._clock_task is not asyncio.current_task():
            self._clock_task.cancel()
        for w in self._alive():
            w.send(Stop(grace=grace))
        readers = [w.reader_task for w in self.workers if w.reader_task]
        if readers:
            done, pending = await asyncio.wait(readers, timeout=grace + 0.7)
            for w in self.workers:
                if w.proc.returncode is None:
                    w.proc.kill()
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
        for cb in self.listeners:
            cb()

    def kill_workers(self) -> None:
        """Kill every worker at once. Their deaths are then ours, never "all workers died"
        (a fast double Ctrl-C kills them before the graceful stop has begun)."""
        self._killed = True
        for w in self.workers:
            if w.proc.returncode is None:
                w.proc.kill()


def _share(total: int, n: int, i: int) -> int:
    """Split ``total`` VUs over ``n`` workers; the first ``total % n`` get one more."""
    return total // n + (1 if i < total % n else 0)
