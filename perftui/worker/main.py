"""Worker process: ``python -m perftui.worker``.

Reads commands (``Init``, ``SetLoad``, ``Stop``) as length-prefixed msgpack frames on stdin and
writes ``Snapshot`` frames on stdout every ``snapshot_interval`` seconds. It runs the load shape it
was last given until told otherwise; the coordinator owns the phase clock. If stdin closes (the
coordinator died), the worker stops by itself.

Open model: arrival *k* is scheduled at the time the cumulative planned arrivals reach *k* (a
linear ramp integrates to a quadratic), so the schedule is absolute and never drifts. On each
wake-up every arrival due within half a timer tick is started (uvloop timers have 1 ms
resolution; shorter sleeps would spin). An arrival goes to an idle *lane* (a coroutine running
iterations one after another), else a new lane up to the lane limit, else a queue that keeps its
intended start, else it is dropped and counted; with ``max_in_flight`` the lane limit is that and
there is no queue. Connections per origin are bounded (``DEFAULT_OPEN_CONNECTIONS`` unless the
plan says otherwise), so overload makes requests wait, with honest latency, instead of opening a
connection per arrival.

Health: a 5 ms probe timer measures the loop's own stalls (``Snapshot.stalls``, ``loop_lag_ms``);
start-up objects are frozen out of the garbage collector.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import time
from collections import deque

import msgspec
import psutil

from perftui.worker.chain import Chain, chained_step
from perftui.worker.messages import (
    Bench, BenchDone, BenchGo, BenchWarm, Bye, Fatal, FrameReader, Hello, Init, RunSetup, SetLoad, Shared, Snapshot,
    Stop, command_decoder, encode_frame,
)
from perftui.worker.scenario import ScenarioRunner
from perftui.worker.stages import BenchRun, run_stage
from perftui.worker.transport import HttpPool
from perftui.worker.waker import Waker
from perftui.plan import Plan

_now = time.monotonic

EARLY = 0.001
"""An arrival due within this of a wake-up starts at once (uvloop's 1 ms timer tick); its
latency is then measured from its actual start, never from a slot still in the future."""
GC_THRESHOLD0 = 20_000
"""Young-generation threshold in the worker (Python's default: 700)."""
STALL_TICK = 0.005
STALL_S = 0.002
"""The loop-stall probe: a timer every ``STALL_TICK``; one that runs more than ``STALL_S`` late
means the loop was held (by our own work, GC or a stolen core) and every response that arrived
meanwhile waited too. Counted per snapshot, the worst lag with it. Costs ~0.1 % of a core."""
DEFAULT_LANES = 10_000
"""Open model without ``max_in_flight``: at most this many iterations run at once per worker."""
DEFAULT_QUEUE = 100_000
"""...and at most this many arrivals wait (with their intended start) for a lane; past that,
arrivals are dropped and counted. A float each: about 3 MB when full."""
DEFAULT_OPEN_CONNECTIONS = 1024
"""Open model: connections per origin per worker unless ``defaults.max_connections`` says
otherwise. Past it requests wait for a free connection (their latency keeps counting from the
intended start); without a bound, overload opened a connection per arrival and collapsed. Under
this default the pools are adaptive (``transport.ADAPT_FLOOR``): from 64 connections they grow
while requests wait and the core has room, and shrink while it is saturated."""


def arrival_time(k: float, shape: SetLoad) -> float:
    """Seconds after ``shape.start`` at which cumulative arrivals reach ``k``."""
    r0, r1, d = shape.rate_from, shape.rate_to, shape.duration
    ramp_total = (r0 + r1) / 2 * d if d > 0 else 0.0
    if k <= ramp_total and d > 0:
        a = (r1 - r0) / (2 * d)
        if abs(a) < 1e-12:
            return k / r0
        # a t^2 + r0 t - k = 0, the root in [0, d]
        disc = r0 * r0 + 4 * a * k
        return (-r0 + math.sqrt(max(0.0, disc))) / (2 * a)
    if r1 <= 0:
        return math.inf
    return d + (k - ramp_total) / r1


def arrivals_until(t: float, shape: SetLoad) -> float:
    """Cumulative arrivals ``t`` seconds after ``shape.start``: the inverse of ``arrival_time``."""
    if t <= 0:
        return 0.0
    r0, r1, d = shape.rate_from, shape.rate_to, shape.duration
    if d > 0 and t <= d:
        return r0 * t + (r1 - r0) * t * t / (2 * d)
    ramp_total = (r0 + r1) / 2 * d if d > 0 else 0.0
    return ramp_total + r1 * (t - max(d, 0.0))


class Worker:
    def __init__(self, init: Init, out: asyncio.WriteTransport):
        self.init = init
        self.out = out
        plan = msgspec.msgpack.decode(init.plan, type=Plan)
        self.runner = ScenarioRunner(plan, init.target, worker_index=init.worker_index, seed=init.seed,
                                     worker_count=init.worker_count)
        self.runner.warm_sql()  # [databases] min_connections: opened while the run is being set up
        self.shape_task: asyncio.Task | None = None
        self.shape: SetLoad | None = None
        self.in_flight = 0
        self.tasks: set[asyncio.Task] = set()
        self.lanes = 0
        self.lane_limit = DEFAULT_LANES
        self.queue_limit = DEFAULT_QUEUE
        self.idle_lanes: list[asyncio.Future] = []
        self.idle_chains: list[Chain] = []  # lanes whose chain is parked between arrivals
        self.gate: HttpPool | None = None  # see _lane_room
        self.queue: deque[float] = deque()
        self.vus: list[asyncio.Task] = []
        self.vu_target = 0
        self.late = 0
        self.dropped = 0
        self.schedule_lag = 0.0
        self.open_at: tuple[float, SetLoad, float | None] | None = None
        """The open loop's place while it waits (its only await): its next arrival (k), its shape,
        and the time up to which it has handed out arrivals (None before its first)."""
        self.loop_lag = 0.0
        self.stalls = 0
        self._tick_due = 0.0
        self._ticker: asyncio.TimerHandle | None = None
        self.seq = 0
        self.rss = rss_reader()
        # CPU over each snapshot's interval from the process's own clock (nanoseconds): psutil's
        # cpu_percent counts 10 ms ticks, so the short last interval of a run read up to 222 %.
        self._cpu_mark, self._cpu_wall = time.process_time(), _now()
        self.stopping = False
        self.origin = _now()
        self.bench: BenchRun | None = None
        self.bench_task: asyncio.Task | None = None
        self.waker = Waker(asyncio.get_running_loop())  # the open model's wake-up before an arrival

    def send(self, msg) -> None:
        if not self.out.is_closing():
            self.out.write(encode_frame(msg))

    # ---- load shapes -------------------------------------------------------------------

    def set_load(self, shape: SetLoad, until: float | None = None) -> None:
        """Run ``shape`` from now on. The open arrivals of the shape it replaces that were due
        before ``until`` (default: ``shape.start``) and never started are counted dropped."""
        if self.shape_task is not None:
            self.shape_task.cancel()
            self.shape_task = None
        at, self.open_at = self.open_at, None
        self.dropped += self._overtaken(at, shape.start if until is None else until)
        covered = at[2] if at is not None else None
        if self.bench_task is not None and shape.kind != "idle":
            self.bench_task.cancel()  # skipped past: the next phase's load takes over
        self.shape = shape
        if shape.kind != "open":
            self._release_lanes()
        own = self.runner.max_connections
        self.runner.set_connection_limit(
            own if own is not None else DEFAULT_OPEN_CONNECTIONS if shape.kind == "open" else 0,
            adaptive=own is None and shape.kind == "open")
        if shape.clock_origin:
            self.origin = shape.clock_origin  # the snapshot grid realigns within 50 ms
        if shape.kind == "open":
            self.vu_target = 0
            self.gate = self._gate_pool()
            self.shape_task = asyncio.ensure_future(self._open_loop(shape, covered))
        elif shape.kind == "closed":
            self.shape_task = asyncio.ensure_future(self._closed_loop(shape))
        else:
            self.vu_target = 0

    async def _open_loop(self, shape: SetLoad, covered: float | None = None) -> None:
        """Run an open shape's schedule. A shape starts where the phase clock entered its phase,
        which can be before the worker reads it (the coordinator held, a message's way): its
        arrivals due meanwhile start at once, counted late. ``covered``: the time up to which the
        open shape it replaces had handed out arrivals; this one's start from there, never twice
        over the same time."""
        runner = self.runner
        late_threshold = runner.late_threshold
        poisson = shape.arrivals == "poisson"
        rng = runner.rng
        # Workers interleave their uniform schedules instead of firing in lockstep.
        share, shares = (shape.share, shape.shares) if shape.shares else (self.init.worker_index, self.init.worker_count)
        k = (share + 0.5) / shares if not poisson else rng.expovariate(1.0)
        if shape.max_in_flight:
            # The plan's own bound: past it an arrival is dropped, never queued.
            self.lane_limit, self.queue_limit = shape.max_in_flight, 0
        else:
            self.lane_limit, self.queue_limit = DEFAULT_LANES, DEFAULT_QUEUE
        start = shape.start
        if covered is not None and covered > start:
            reached = arrivals_until(covered - start, shape)
            k = reached + rng.expovariate(1.0) if poisson else math.floor(reached - k) + 1 + k
        # the run's last phase: its last arrival is due before the phase ends (the coordinator's
        # stop, which comes a little later, would otherwise find arrivals past the plan: 1,506 of
        # 1,500 when it came up to 50 ms later)
        end = start + shape.duration if shape.ends else math.inf
        arrive = self._arrive
        queue = self.queue
        waker = self.waker
        reached = None  # the time up to which this loop has handed out arrivals
        while True:
            due = start + arrival_time(k, shape)
            if due >= end:
                self.open_at = None
                return
            delay = due - _now()
            if delay > EARLY:
                # Wake EARLY before the slot: an arrival sent late counts the delay in its
                # latency, one sent a little early does not (timed from the send). Never sooner
                # than EARLY from now: the arrivals due meanwhile go out together (below), and
                # a wake-up per arrival at thousands a second costs 2-3x the CPU (waking every
                # 0.2 ms at 5,000/s: 92 µs a request against 39), and spinning a whole core
                # (2,000/s once cost 98 % when every sub-millisecond sleep returned at once). A
                # timer file descriptor fires within ~0.3 ms of its time (waker.py); the loop's
                # own timer rounds to whole milliseconds and fires up to ~1.5 ms late.
                self.open_at = (k, shape, reached)  # where a stop or a new shape finds the schedule
                await waker.until(max(due - EARLY, _now() + EARLY))
            now = _now()
            horizon = min(now + EARLY, math.nextafter(end, 0.0))  # (never an arrival after the end)
            while due <= horizon:
                lag = now - due
                if lag > self.schedule_lag:
                    self.schedule_lag = lag
                if arrive(due):
                    if lag > late_threshold:
                        self.late += 1  # (a queued arrival is judged when it leaves the queue)
                elif not poisson and len(queue) >= self.queue_limit:
                    # Dropped, and so is every other arrival due before this loop yields (no
                    # lane frees meanwhile): count them at once. At 2x overload computing and
                    # dropping them one by one cost ~10 % of the core, growing with the overload.
                    n = math.floor(arrivals_until(horizon - start, shape) - k)
                    while n > 0 and start + arrival_time(k + n, shape) > horizon:
                        n -= 1  # never count one not yet due
                    if n > 0:
                        self.dropped += n
                        k += n
                k += rng.expovariate(1.0) if poisson else 1.0
                due = start + arrival_time(k, shape)
            reached = horizon

    @staticmethod
    def _overtaken(at: tuple[float, SetLoad, float | None] | None, until: float) -> int:
        """Arrivals of the open shape that was running (``at``: its loop's place, ``open_at``),
        due before ``until`` (and before that shape's end), that its loop never reached: it was
        held past them, or (on a cluster node) its schedule ran behind the coordinator's. Counted
        dropped when the shape is replaced or the run stops, so that a plan's arrivals are each
        started, or dropped and counted."""
        if at is None:
            return 0
        k, shape, _ = at
        limit = min(until, shape.start + shape.duration if shape.ends else math.inf) - shape.start
        if limit <= arrival_time(k, shape):
            return 0
        return max(0, math.ceil(arrivals_until(limit, shape) - k))

    def _arrive(self, intended: float) -> bool:
        """One arrival: to a waiting lane, else a new lane (up to ``lane_limit``), else the
        queue with its intended start (up to ``queue_limit``), else dropped. True if it started.
        Arrivals already queued go first."""
        queue = self.queue
        if not queue and self._lane_room() and self._start(intended):
            return True
        if len(queue) < self.queue_limit:
            queue.append(intended)
        else:
            self.dropped += 1
        while queue and self._lane_room():
            head = queue[0]
            if not self._start(head):
                break
            queue.popleft()
            if _now() - head > self.runner.late_threshold:
                self.late += 1  # waited in the queue past its slot
        return False

    def _gate_pool(self) -> HttpPool | None:
        """The one pool every open-model iteration starts with, if the plan is a single plain
        HTTP/1.1 request (no setup per user, one scenario); else None."""
        runner = self.runner
        step = runner.single_request
        if step is None:
            return None
        pool = step.pool or runner._bind_pool(step)
        pool.backlog = self.queue  # arrivals held back wait for this pool all the same
        return pool

    def _lane_room(self, running: int = 0) -> bool:
        """Another lane may run (``running``: the asking lane itself is one of those at work; idle
        lanes and parked chains are not): always, unless the plan is one plain HTTP request whose
        pool is full (``gate``). Then the arrival waits in the queue, not as a lane waiting inside
        the pool: each connection freed then goes back to the lane that used it, which takes the
        next queued arrival, with one wake-up per request instead of two (under 2x overload
        the hand-over through the pool took a quarter of the worker's time)."""
        gate = self.gate
        return (gate is None or self.lanes - len(self.idle_lanes) - len(self.idle_chains) - running < gate._cap
                or gate.grow())

    def _start(self, intended: float) -> bool:
        """Hand an arrival to a parked chain or an idle lane, else to a new lane (up to
        ``lane_limit``)."""
        chains = self.idle_chains
        if chains:
            chains.pop().resume(intended)
            return True
        idle = self.idle_lanes
        while idle:
            fut = idle.pop()
            if not fut.done():
                fut.set_result(intended)
                return True
        if self.lanes < self.lane_limit:
            self.lanes += 1
            task = asyncio.ensure_future(self._lane(intended))
            self.tasks.add(task)
            task.add_done_callback(self._lane_done)
            return True
        return False

    async def _lane(self, intended: float) -> None:
        """Runs open-model iterations one after another: the arrival it was started for, then
        queued ones, then waits to be handed the next: as a parked chain (``Chain.resume``, no
        wake-up) if the plan runs as chains, else on a future of its own (woken alone: waking
        every idle lane through a shared Event cost 15-40 % more CPU)."""
        runner = self.runner
        queue = self.queue
        loop = asyncio.get_running_loop()
        late_threshold = runner.late_threshold
        step = chained_step(runner)  # (a plan it allows is one the gate holds: runner.single_request)
        chain = Chain(self, 0, {}, step, arrivals=queue) if step is not None else None
        while True:
            self.in_flight += 1
            try:
                if chain is not None and chain.ready():
                    # this arrival, then queued ones, sent from the connection's callbacks
                    chain.vars = runner.new_vu()
                    if await chain.run(intended):
                        return  # released while parked
                else:
                    await runner.iteration(runner.new_vu(), intended)
            except Exception as exc:  # a bug must not kill the lane silently
                runner.errors_sample.append(f"internal: {type(exc).__name__}: {exc}")
            finally:
                self.in_flight -= 1
            if queue and self._lane_room(running=1):
                intended = queue.popleft()
                if _now() - intended > late_threshold:
                    self.late += 1  # waited in the queue past its slot
                continue
            if self.stopping:
                return
            fut = loop.create_future()
            self.idle_lanes.append(fut)  # the current list: _release_lanes replaces it
            intended = await fut
            if intended is None:
                return

    def _lane_done(self, task: asyncio.Task) -> None:
        self.lanes -= 1
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.runner.errors_sample.append(f"internal: {type(exc).__name__}: {exc}")

    def _release_lanes(self) -> None:
        """Idle lanes end (the shape changed or the run stops); queued arrivals are dropped."""
        chains, self.idle_chains = self.idle_chains, []
        for chain in chains:
            chain.release()
        idle, self.idle_lanes = self.idle_lanes, []
        for fut in idle:
            if not fut.done():
                fut.set_result(None)
        self.dropped += len(self.queue)
        self.queue.clear()

    async def _closed_loop(self, shape: SetLoad) -> None:
        while True:
            elapsed = _now() - shape.start
            frac = 1.0 if shape.duration <= 0 else min(1.0, max(0.0, elapsed / shape.duration))
            self.vu_target = round(shape.vus_from + (shape.vus_to - shape.vus_from) * frac)
            self.vus = [t for t in self.vus if not t.done()]
            while len(self.vus) < self.vu_target:
                self.vus.append(asyncio.ensure_future(self._vu(len(self.vus))))
            if frac >= 1.0:
                return
            await asyncio.sleep(0.1)

    async def _vu(self, index: int) -> None:
        runner = self.runner
        vars = runner.new_vu()
        step = chained_step(runner)
        chain = Chain(self, index, vars, step) if step is not None else None
        while index < self.vu_target and not self.stopping:
            self.in_flight += 1
            try:
                if chain is not None and chain.ready():
                    await chain.run()  # requests sent from the connection's callbacks (perftui.worker.chain)
                else:
                    await runner.iteration(vars, None)
            except Exception as exc:  # a bug must not kill the VU silently
                runner.errors_sample.append(f"internal: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.1)
            finally:
                self.in_flight -= 1

    # ---- setup, benchmarks (perftui.worker.stages) --------------------------------------

    async def run_setup(self, cmd: RunSetup) -> None:
        plan = self.runner.plan
        done = await run_stage(plan, self.init.target, "setup", plan.setup, {}, worker_index=self.init.worker_index,
                               seed=self.init.seed, timeout=cmd.timeout)
        self.send(done)

    def share(self, cmd: Shared) -> None:
        """The setup's captures: every virtual user from now on starts with a copy of them."""
        self.runner.constants.update(cmd.vars)

    def start_bench(self, cmd: Bench) -> None:
        if self.bench_task is not None:
            self.bench_task.cancel()
        if self.shape_task is not None:
            self.shape_task.cancel()
            self.shape_task = None
        if cmd.clock_origin:
            self.origin = cmd.clock_origin
        runner = self.runner
        runner.set_connection_limit(runner.max_connections or 0)
        if self.bench is not None or runner.iterations:
            # what ran before (the previous benchmark) leaves now, before this warm-up's
            # snapshots, which carry no requests
            self.send(self.snapshot(_now(), 0.0))
        index = self.init.worker_index
        self.bench = BenchRun(runner, cmd, lambda: self.send(BenchWarm(worker=index, phase=cmd.phase)))
        self.bench_task = asyncio.ensure_future(self._bench(self.bench))

    async def _bench(self, bench: BenchRun) -> None:
        try:
            await bench.run()
        finally:  # also when cut short (skipped, out of time): the counts done so far
            self.send(BenchDone(worker=self.init.worker_index, phase=bench.bench.phase, measured=bench.measured,
                                warmup=bench.warmed))

    # ---- reporting ---------------------------------------------------------------------

    def _next_grid(self, now: float) -> float:
        interval = self.init.snapshot_interval
        k = math.floor((now - self.origin) / interval + 1e-9) + 1
        return self.origin + k * interval

    def start_stall_probe(self) -> None:
        self._tick_due = _now() + STALL_TICK
        self._ticker = asyncio.get_running_loop().call_later(STALL_TICK, self._tick)

    def _tick(self) -> None:
        now = _now()
        lag = now - self._tick_due
        if lag > self.loop_lag:
            self.loop_lag = lag
        if lag > STALL_S:
            self.stalls += 1
        self._tick_due = now + STALL_TICK
        self._ticker = asyncio.get_running_loop().call_later(STALL_TICK, self._tick)

    async def snapshots(self) -> None:
        """Send a snapshot at every point of the grid."""
        last = _now()
        while True:
            origin = self.origin
            due = self._next_grid(_now())
            while True:
                t0 = _now()
                if self.origin != origin:  # the run started: aim at its grid's next point
                    origin = self.origin
                    due = self._next_grid(t0)
                step = min(0.05, due - t0)
                if step <= 0:
                    break
                await asyncio.sleep(step)
            self.send(self.snapshot(due, due - last))
            last = due

    def snapshot(self, now: float, interval: float) -> Snapshot:
        runner = self.runner
        deltas = [d for d in (r.take_delta() for r in runner.recorders.values()) if d is not None]
        bench = self.bench
        if bench is not None and bench.warming:
            deltas = []  # a benchmark's warm-up is in no statistic
            runner.iterations = 0
        snap = Snapshot(
            worker=self.init.worker_index, seq=self.seq, t=now, interval=interval, endpoints=deltas,
            iterations=runner.iterations, late_starts=self.late, dropped=self.dropped,
            in_flight=self.in_flight + (bench.in_flight if bench is not None else 0),
            vus=sum(1 for t in self.vus if not t.done()),
            open_connections=runner.open_connections, loop_lag_ms=self.loop_lag * 1000, stalls=self.stalls,
            queued=len(self.queue),
            schedule_lag_ms=self.schedule_lag * 1000, cpu_percent=self._cpu_percent(),
            rss_bytes=self.rss(), errors_sample=list(runner.errors_sample),
            extra=runner.take_extra(),
        )
        self.seq += 1
        runner.iterations = 0
        self.late = self.dropped = 0
        self.schedule_lag = self.loop_lag = 0.0
        self.stalls = 0
        runner.errors_sample.clear()
        return snap

    def _cpu_percent(self) -> float:
        """The worker's CPU since the last snapshot, in percent of one core."""
        cpu, wall = time.process_time(), _now()
        used = 100.0 * (cpu - self._cpu_mark) / (wall - self._cpu_wall) if wall > self._cpu_wall else 0.0
        self._cpu_mark, self._cpu_wall = cpu, wall
        return round(used, 1)

    async def stop(self, grace: float, at: float = 0.0) -> None:
        """Stop the load; ``at``: when the run stopped (see ``Stop.at``)."""
        self.stopping = True
        if self.bench is not None:
            self.bench.stopping = True  # lanes finish the iteration they are in, take no other
            self.bench.go.set()
        now = _now()
        self.set_load(SetLoad(phase=-1, kind="idle", start=now, duration=0), until=at or now)
        pending = list(self.tasks) + [t for t in self.vus if not t.done()]
        if self.bench_task is not None and not self.bench_task.done():
            pending.append(self.bench_task)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=0.3)
        self.waker.close()
        await self.runner.close()


def rss_reader():
    """A function that reads this process's resident set size (bytes). On Linux one ``pread`` of
    ``/proc/self/statm`` on a descriptor kept open: psutil's ``memory_info`` opens, reads and parses
    the file each time, 18 µs warm and ~170 µs as the worker meets it, a few times a second with
    its caches cold (the read here: ~40 µs) — time the event loop held every response that arrived
    meanwhile. Elsewhere, psutil."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        proc = psutil.Process()
        return lambda: proc.memory_info().rss
    page = os.sysconf("SC_PAGE_SIZE")
    return lambda: int(os.pread(fd, 128, 0).split()[1]) * page


async def main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(os.dup(1), "wb"))
    frames = FrameReader()
    worker: Worker | None = None
    snap_task = None
    try:
        while True:
            data = await reader.read(65536)
            if not data:  # coordinator gone
                break
            for frame in frames.feed(data):
                cmd = command_decoder.decode(frame)
                if isinstance(cmd, Init):
                    worker = Worker(cmd, out_transport)
                    # Everything built so far (modules, the compiled plan) lives for the whole
                    # run: out of the collector's sight, so a full collection walks only what
                    # the run allocates, and young collections run less often.
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(GC_THRESHOLD0, 50, 100)
                    # Hello only now: the coordinator starts the run's clock when every worker
                    # said it, and that collection takes 25-45 ms. Said before it, the first
                    # phase's start was already that far in the past when its SetLoad was read,
                    # and the first arrivals went out late by as much: the open model's p99.9
                    # against a 20 ms server was 38-49 ms, wrk's 24-27 (bench/tail.py).
                    worker.send(Hello(worker=cmd.worker_index, pid=os.getpid()))
                    snap_task = asyncio.ensure_future(worker.snapshots())
                    worker.start_stall_probe()
                elif isinstance(cmd, SetLoad) and worker is not None:
                    worker.set_load(cmd)
                elif isinstance(cmd, RunSetup) and worker is not None:
                    worker.tasks.add(asyncio.ensure_future(worker.run_setup(cmd)))  # a Stop may come meanwhile
                elif isinstance(cmd, Shared) and worker is not None:
                    worker.share(cmd)
                elif isinstance(cmd, Bench) and worker is not None:
                    worker.start_bench(cmd)
                elif isinstance(cmd, BenchGo) and worker is not None:
                    if worker.bench is not None and worker.bench.bench.phase == cmd.phase:
                        worker.bench.go.set()
                elif isinstance(cmd, Stop) and worker is not None:
                    await worker.stop(cmd.grace, cmd.at)
                    if cmd.teardown > 0:
                        plan = worker.runner.plan
                        worker.send(await run_stage(plan, worker.init.target, "teardown", plan.teardown,
                                                    worker.runner.constants, worker_index=worker.init.worker_index,
                                                    seed=worker.init.seed, timeout=cmd.teardown))
                    if snap_task:
                        snap_task.cancel()
                    now = _now()
                    worker.send(worker.snapshot(now, 0.0))
                    worker.send(Bye(worker=worker.init.worker_index))
                    return 0
    except Exception as exc:  # report instead of dying silently
        if worker is not None:
            worker.send(Fatal(worker=worker.init.worker_index, message=f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        if worker is not None and not out_transport.is_closing():
            # let the write buffer drain before exit
            for _ in range(50):
                if out_transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
    if worker is not None:
        await worker.stop(1.0)
    return 0


def run() -> None:
    import signal

    # The coordinator decides when we stop; a Ctrl-C on the terminal reaches the whole
    # process group, so ignore it here and let the coordinator send Stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from perftui.lifeline import watch_parent

    watch_parent()  # die with the coordinator, even when it is killed with -9
    try:
        import uvloop
    except ImportError:  # pragma: no cover - non-Linux
        uvloop = None
    if uvloop is not None:
        code = uvloop.run(main())
    else:
        code = asyncio.run(main())
    sys.exit(code)

