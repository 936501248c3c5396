"""The worker's open model under overload and its loop-stall probe, in process: a real
``Worker`` driving real HTTP to a deliberately slow server on 127.0.0.1 that the test starts.
No timing asserts: overload is made 10x, stalls are made 25x the thresholds."""

from __future__ import annotations

import asyncio
import math
import time

import msgspec
import pytest

from perftui.worker import main as W
from perftui.worker.messages import Init, SetLoad, Snapshot
from perftui.planload import quick_plan


class _Pipe:
    """Stands in for the coordinator's end of the snapshot pipe; frames are decoded by the test."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.frames.append(data)


async def _slow_server(delay: float) -> tuple[asyncio.Server, str, list[int]]:
    """Answers every request after ``delay`` seconds; counts connections it accepted."""
    accepted = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/", accepted


def _worker(url: str, *, rate: float | None = None, vus: int | None = None, extra_defaults: dict | None = None) -> W.Worker:
    plan = quick_plan(url, rate=rate, vus=vus).plan
    if extra_defaults:
        plan = msgspec.structs.replace(plan, defaults=msgspec.structs.replace(plan.defaults, **extra_defaults))
    init = Init(plan=msgspec.msgpack.encode(plan), target=plan.target, worker_index=0, worker_count=1)
    return W.Worker(init, _Pipe())


async def _open_worker(monkeypatch, *, lanes: int, queue: int, delay: float, connections: int,
                       rate: float, **shape) -> tuple[asyncio.Server, W.Worker, list[int]]:
    """A server answering after ``delay``, and a worker with ``lanes`` lanes, a queue of ``queue``
    and a fixed connection bound, already given an open load (``shape``: SetLoad's fields)."""
    monkeypatch.setattr(W, "DEFAULT_LANES", lanes)
    monkeypatch.setattr(W, "DEFAULT_QUEUE", queue)
    server, url, accepted = await _slow_server(delay)
    w = _worker(url, rate=rate, extra_defaults={"max_connections": connections, "timeout": "20s"})
    now = time.monotonic()
    w.set_load(SetLoad(phase=0, kind="open", start=now, clock_origin=now, **shape))
    return server, w, accepted


def test_open_overload_queues_arrivals_and_bounds_connections(monkeypatch):
    """400 arrivals/s for 1 s at a server that can do 40/s on the 4 allowed connections: the
    connections stay at 4, arrivals past the (lowered) lane limit queue with their intended start,
    every arrival is accounted for, and queueing shows in latency, not in service time."""

    async def main():
        server, w, accepted = await _open_worker(monkeypatch, lanes=8, queue=200, delay=0.1, connections=4, rate=400,
                                                 duration=1.0, rate_from=400, rate_to=400)
        conns, queued = [], []
        for _ in range(10):
            await asyncio.sleep(0.1)
            conns.append(w.runner.open_connections)
            queued.append(len(w.queue))
        w.set_load(SetLoad(phase=1, kind="open", start=time.monotonic(), duration=0, rate_from=0, rate_to=0))
        snap = w.snapshot(time.monotonic(), 1.0)
        await w.stop(0.5)
        server.close()
        return w, snap, conns, queued, accepted[0]

    w, snap, conns, queued, accepted = asyncio.run(main())
    assert max(conns) <= 4 and accepted <= 4, (conns, accepted)
    assert max(queued) > 0, queued
    assert snap.dropped > 0  # 400 arrivals, 8 lanes + 200 queued at most; the queue is dropped at the end
    ep = snap.endpoints[0]
    assert 0 < ep.requests <= 8 + 200
    assert ep.latency_sum > ep.service_sum  # time queued counts from the intended start
    assert snap.iterations + snap.dropped + snap.queued >= 390  # nothing lost


def test_blocked_worker_loop_is_reported_as_stalls():
    """Three 50 ms blocks of the worker's own loop show up as stalls, the worst lag with them."""

    async def main():
        server, url, _ = await _slow_server(0.0)
        w = _worker(url, vus=1)
        w.start_stall_probe()
        await asyncio.sleep(0.05)
        w.snapshot(time.monotonic(), 0.05)  # start from a clean interval
        for _ in range(3):
            time.sleep(0.05)  # the deliberate block
            await asyncio.sleep(0.02)
        snap = w.snapshot(time.monotonic(), 0.2)
        await w.stop(0.5)
        server.close()
        return snap

    snap = asyncio.run(main())
    assert isinstance(snap, Snapshot)
    assert snap.stalls >= 1, snap
    assert snap.loop_lag_ms >= 20, snap.loop_lag_ms


@pytest.mark.parametrize("limit", [0, 3])
def test_pool_connection_limit_can_change_while_running(limit):
    """``set_connection_limit`` reaches existing pools; 0 lifts the bound."""

    async def main():
        server, url, _ = await _slow_server(0.0)
        w = _worker(url, vus=1)
        pool = w.runner.pool_for(w.runner.default_origin)
        w.runner.set_connection_limit(limit)
        server.close()
        return pool.max_connections

    assert asyncio.run(main()) == limit


def test_recorder_ships_one_histogram_until_service_differs():
    """Equal latency and service time record once and ship service as "same"; the first
    differing request splits the interval without losing the earlier ones."""
    from perftui.aggregate import decode_histogram
    from perftui.worker.stats import EndpointRecorder

    r = EndpointRecorder("x")
    for v in (100, 200, 300):
        r.response(200, v, v, 0, None)
    d = r.take_delta()
    assert d.service == b"" and d.latency_sum == d.service_sum == 600
    r.response(200, 100, 100, 0, None)
    r.response(200, 200, 200, 0, None)
    r.response(200, 500, 50, 0, None)
    d = r.take_delta()
    lat, svc = decode_histogram(d.latency), decode_histogram(d.service)
    assert lat.total_count == svc.total_count == 3
    assert (d.latency_sum, d.service_sum) == (800, 350)
    assert svc.get_min_value() == 50 and svc.get_max_value() == 200
    r.response(200, 7, 7, 0, None)  # the next interval starts unsplit again
    assert r.take_delta().service == b""


def test_open_model_default_pool_grows_to_what_a_slow_target_needs():
    """The open model's default pool starts at 64 connections and grows while requests wait and
    the core has room: 1,500 arrivals/s at a server that answers after 150 ms need about 225
    connections; the pool opens more than 64 and stays within the default bound, and the
    arrivals are served, not left queued."""
    from perftui.worker.transport import ADAPT_FLOOR

    async def main():
        server, url, accepted = await _slow_server(0.15)
        w = _worker(url, rate=1500, extra_defaults={"timeout": "20s"})
        now = time.monotonic()
        w.set_load(SetLoad(phase=0, kind="open", start=now, duration=2.5, rate_from=1500, rate_to=1500, clock_origin=now))
        pool = None
        conns, caps = [], []
        for _ in range(25):
            await asyncio.sleep(0.1)
            pool = pool or w.runner.pools.get(w.runner.default_origin)
            conns.append(w.runner.open_connections)
            caps.append(pool.connection_cap if pool is not None else 0)
        snap = w.snapshot(time.monotonic(), 2.5)
        await w.stop(3.0)
        server.close()
        return snap, conns, caps, accepted[0]

    snap, conns, caps, accepted = asyncio.run(main())
    assert caps[0] >= ADAPT_FLOOR and max(caps) <= W.DEFAULT_OPEN_CONNECTIONS, caps
    assert max(conns) > ADAPT_FLOOR, (conns, caps)  # grew past where it started
    assert accepted <= W.DEFAULT_OPEN_CONNECTIONS
    assert snap.endpoints and snap.endpoints[0].requests > 1500, snap.endpoints  # 3,750 asked, most served
    assert snap.dropped == 0


def test_explicit_max_connections_is_a_fixed_bound_not_adaptive():
    """``defaults.max_connections`` set by the plan: the pool may open all of them at once."""

    async def main():
        server, url, accepted = await _slow_server(0.2)
        w = _worker(url, rate=2000, extra_defaults={"max_connections": 300, "timeout": "20s"})
        now = time.monotonic()
        w.set_load(SetLoad(phase=0, kind="open", start=now, duration=0.4, rate_from=2000, rate_to=2000, clock_origin=now))
        await asyncio.sleep(0.3)
        pool = w.runner.pools[w.runner.default_origin]
        cap, adaptive = pool.connection_cap, pool._adaptive
        await w.stop(3.0)
        server.close()
        return cap, adaptive

    cap, adaptive = asyncio.run(main())
    assert (cap, adaptive) == (300, False)


def test_adaptive_bound_sheds_connections_while_the_core_is_saturated(monkeypatch):
    """The adaptive bound's decisions, driven sweep by sweep with the process's CPU clock given:
    requests waiting and the core saturated for a period -> a halving on trial, kept while the
    next period completes as many; a halving that completes fewer is undone and not retried for
    ``ADAPT_HOLD`` seconds; it grows only after ``ADAPT_CALM_SWEEPS`` calm sweeps in a row, so a
    saturated worker that was not scheduled for a sweep now and then does not grow."""
    from perftui.worker import transport as T

    clock = {"cpu": 0.0}
    monkeypatch.setattr(T, "_process_time", lambda: clock["cpu"])

    async def main():
        pool = T.HttpPool("http", "127.0.0.1", 9, max_connections=1024)
        pool.set_limit(1024, adaptive=True)
        assert pool.connection_cap == T.ADAPT_FLOOR
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in range(2000)]
        for fut in waiters:
            pool._add_waiter(1e9, 10.0, fut)
        now = 100.0

        def sweeps(seconds: float, busy: bool, done_per_s: float) -> None:
            nonlocal now
            for _ in range(round(seconds / T._SWEEP_INTERVAL)):
                now += T._SWEEP_INTERVAL
                clock["cpu"] += T._SWEEP_INTERVAL * (0.99 if busy else 0.3)
                pool._done += round(done_per_s * T._SWEEP_INTERVAL)
                pool._adapt(now)
                pool._slots = min(pool._cap, 1024)  # as if every allowed connection were open

        sweeps(0.1, busy=False, done_per_s=1000)  # two calm sweeps: not yet a reason to grow
        early = pool.connection_cap
        sweeps(0.4, busy=False, done_per_s=1000)  # waiting, CPU to spare: grows to the bound
        grown = pool.connection_cap
        sweeps(2.0, busy=True, done_per_s=30000)  # saturated a whole period: a halving on trial
        trial = pool.connection_cap
        sweeps(1.0, busy=True, done_per_s=32000)  # completes as many: kept, and the next trial
        kept = pool.connection_cap
        sweeps(1.0, busy=True, done_per_s=5000)  # completes fewer: undone
        undone = pool.connection_cap
        sweeps(5.0, busy=True, done_per_s=5000)  # held: no new trial for ADAPT_HOLD seconds
        held = pool.connection_cap
        for _ in range(10):  # saturated, but not scheduled now and then: one calm sweep at a time
            sweeps(0.05, busy=False, done_per_s=5000)
            sweeps(0.1, busy=True, done_per_s=5000)
        blips = pool.connection_cap
        for fut in waiters:
            fut.cancel()
        return early, grown, trial, kept, undone, held, blips

    early, grown, trial, kept, undone, held, blips = asyncio.run(main())
    assert early == T.ADAPT_FLOOR
    assert grown == 1024
    assert trial == 512
    assert kept == 256
    assert undone == 512 and held == 512
    assert blips == 512  # a calm sweep among busy ones is not CPU to spare


@pytest.mark.parametrize("r0,r1,d", [(2000, 2000, 0.0), (2000, 2000, 5.0), (100, 5000, 3.0), (5000, 10, 2.0)])
def test_arrivals_until_is_the_inverse_of_arrival_time(r0, r1, d):
    """What the open model's bulk drop counts with: arrivals due by ``t`` for steady rates and
    ramps, up and down, the same as walking the schedule one arrival at a time."""
    shape = SetLoad(phase=0, kind="open", start=0.0, duration=d, rate_from=r0, rate_to=r1)
    for k in (1.0, 10.5, 777.0, 3000.25):
        t = W.arrival_time(k, shape)
        assert W.arrivals_until(t, shape) == pytest.approx(k, rel=1e-9)
    k, walked = 0.5, 0
    while W.arrival_time(k + 1, shape) <= 1.7:
        k += 1
        walked += 1
    assert math.floor(W.arrivals_until(1.7, shape) - 0.5) == walked


def test_overloaded_open_model_counts_every_arrival_once(monkeypatch):
    """A ramp from 6,000 arrivals/s down to 0 over 0.5 s schedules exactly 1,500 arrivals; with
    2 lanes, a queue of 20 and a server answering after 0.3 s nearly all are dropped, most of them
    in bulk, and started + dropped + queued is exactly 1,500."""

    async def main():
        server, w, _ = await _open_worker(monkeypatch, lanes=2, queue=20, delay=0.3, connections=2, rate=6000,
                                          duration=0.5, rate_from=6000, rate_to=0)
        await asyncio.wait_for(w.shape_task, 30)  # the schedule ends by itself
        started = w.runner.iterations  # counted when an iteration begins
        snap = w.snapshot(time.monotonic(), 0.5)
        await w.stop(0.5)
        server.close()
        return snap, started

    snap, started = asyncio.run(main())
    assert snap.dropped > 1000 and started <= 2 + 20, (snap, started)
    assert started + snap.dropped + snap.queued == 1500, (started, snap.dropped, snap.queued)


def test_a_fixed_bound_after_an_adaptive_phase_never_grows():
    """An open phase under the adaptive default, then the plan's own bound of 2 (as a later
    phase's set_limit gives it): requests past 2 wait, whatever the adaptive phase allowed."""
    from perftui.worker import transport as T

    async def main():
        server, url, accepted = await _slow_server(0.2)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        pool = T.HttpPool("http", "127.0.0.1", port)
        pool.set_limit(1024, adaptive=True)
        pool._grow_to = 1024  # as after a calm sweep
        pool.set_limit(2)
        req = T.build_request("GET", "/", f"127.0.0.1:{port}", [])
        results = await asyncio.gather(*(pool.request(req, timeout=10.0) for _ in range(5)))
        conns = pool.open_connections
        await pool.close()
        server.close()
        return results, conns, accepted[0]

    results, conns, accepted = asyncio.run(main())
    assert all(r.status == 200 for r in results)
    assert accepted <= 2 and conns <= 2, (accepted, conns)


def test_worker_says_hello_only_after_its_start_up_collection():
    """The coordinator starts the run's clock once every worker said Hello. The worker's start-up
    collection (25-45 ms) must be over by then: said before it, the first phase's start was in
    the past when its SetLoad was read, and the first arrivals went out that late (the open
    model's p99.9 against a 20 ms server was 38-49 ms, wrk's 24-27). A real worker process,
    its Hello observed as it is sent."""
    import subprocess
    import sys

    from perftui.worker.messages import encode_frame

    script = (
        "import gc, sys\n"
        "import perftui.worker.main as m\n"
        "orig = m.Worker.send\n"
        "def send(self, msg):\n"
        "    if type(msg).__name__ == 'Hello':\n"
        "        sys.stderr.write(f'hello frozen={gc.get_freeze_count()}\\n')\n"
        "        sys.stderr.flush()\n"
        "    orig(self, msg)\n"
        "m.Worker.send = send\n"
        "m.run()\n"
    )
    plan = quick_plan("http://127.0.0.1:9/", rate=10, vus=None).plan
    init = Init(plan=msgspec.msgpack.encode(plan), target=plan.target, worker_index=0, worker_count=1)
    proc = subprocess.run([sys.executable, "-c", script], input=encode_frame(init), capture_output=True, timeout=120)
    lines = [ln for ln in proc.stderr.decode().splitlines() if ln.startswith("hello frozen=")]
    assert lines, proc.stderr.decode()[-2000:]
    assert int(lines[0].split("=")[1]) > 0  # the collection and freeze ran before the Hello


def test_the_worker_reads_its_own_resident_size():
    """The snapshot's RSS (read from /proc/self/statm on a kept descriptor) is the process's, as
    psutil reads it, and follows memory the process takes."""
    import psutil

    rss = W.rss_reader()
    before = rss()
    assert abs(before - psutil.Process().memory_info().rss) < 8 << 20
    held = bytearray(64 << 20)  # touched: resident
    held[::4096] = b"\x01" * len(held[::4096])
    assert rss() - before > 48 << 20
    del held


def _asked(shape: SetLoad, until: float) -> int:
    """Arrivals of a one-worker uniform schedule (k = 0.5, 1.5, ...) due before ``until``."""
    return max(0, math.ceil(W.arrivals_until(until - shape.start, shape) - 0.5))


async def _open_200(duration: float, ends: bool) -> tuple[asyncio.Server, W.Worker, SetLoad]:
    """A server answering at once and a worker given 200 arrivals/s from now for ``duration``."""
    server, url, _ = await _slow_server(0.0)
    w = _worker(url, rate=200)
    now = time.monotonic()
    shape = SetLoad(phase=0, kind="open", start=now, clock_origin=now, duration=duration, rate_from=200,
                    rate_to=200, ends=ends)
    w.set_load(shape)
    return server, w, shape


def test_arrivals_a_held_worker_never_reached_are_counted_dropped_at_the_stop():
    """The worker's whole loop is held for 0.5 s (as a busy machine holds it) while its open
    schedule runs at 200/s, and the run stops before it runs again: the ~100 arrivals that fell
    due meanwhile were never started, and they are counted dropped, so started + dropped is
    exactly the arrivals the schedule asked for up to the stop."""

    async def main():
        server, w, shape = await _open_200(10.0, ends=True)
        await asyncio.sleep(0.3)
        time.sleep(0.5)  # the hold: nothing of the worker's runs
        at = time.monotonic()
        await w.stop(0.5, at)  # the stop read before the schedule wakes
        snap = w.snapshot(time.monotonic(), 1.0)
        server.close()
        return shape, at, snap

    shape, at, snap = asyncio.run(main())
    assert snap.dropped >= 90, snap  # 0.5 s at 200/s, less the arrivals started before it
    assert snap.iterations + snap.dropped == _asked(shape, at), (snap.iterations, snap.dropped, _asked(shape, at))


def test_arrivals_a_schedule_behind_the_stop_never_reached_are_counted_dropped():
    """The stop says the run ended at the phase's end (1 s) while this worker's schedule is only
    0.4 s in — as on a cluster node whose clock offset leans late. The 120 arrivals of the phase
    it never reached are counted dropped: started + dropped is the phase's 200."""

    async def main():
        server, w, shape = await _open_200(1.0, ends=True)
        await asyncio.sleep(0.4)
        await w.stop(0.5, shape.start + 5.0)  # stopped (on the coordinator's clock) after the phase's end
        snap = w.snapshot(time.monotonic(), 1.0)
        server.close()
        return snap

    snap = asyncio.run(main())
    assert snap.dropped >= 60, snap
    assert snap.iterations + snap.dropped == 200, (snap.iterations, snap.dropped)


def test_a_pause_counts_the_arrivals_due_before_it_that_were_never_reached():
    """A pause (an idle shape) read after a 0.3 s hold: the arrivals due before the pause began
    that the held loop never reached are counted dropped; none due after it are."""

    async def main():
        server, w, shape = await _open_200(10.0, ends=False)
        await asyncio.sleep(0.2)
        time.sleep(0.3)
        paused = time.monotonic()
        w.set_load(SetLoad(phase=0, kind="idle", start=paused, duration=0))
        await asyncio.sleep(0.3)  # paused: nothing more is asked or dropped
        snap = w.snapshot(time.monotonic(), 1.0)
        await w.stop(0.5)
        server.close()
        return shape, paused, snap

    shape, paused, snap = asyncio.run(main())
    assert snap.dropped >= 50, snap
    assert snap.iterations + snap.dropped == _asked(shape, paused), (snap.iterations, snap.dropped)


def test_a_phase_that_starts_before_the_worker_reads_it_never_repeats_the_time_the_last_one_covered():
    """An open phase at 100/s runs 0.5 s; the next one (also 100/s) reaches the worker 0.3 s after
    the clock entered it (its start is in the past, as when the coordinator was held). Its
    arrivals start from where the first phase's left off: over 1 s, 100 arrivals, not the 130
    that re-issuing the 0.3 s both covered would give."""

    async def main():
        server, url, _ = await _slow_server(0.0)
        w = _worker(url, rate=100)
        t0 = time.monotonic()
        w.set_load(SetLoad(phase=0, kind="open", start=t0, clock_origin=t0, duration=60.0, rate_from=100, rate_to=100))
        await asyncio.sleep(0.5)
        w.set_load(SetLoad(phase=1, kind="open", start=time.monotonic() - 0.3, clock_origin=t0, duration=60.0,
                           rate_from=100, rate_to=100))
        await asyncio.sleep(0.5)
        end = time.monotonic()
        w.set_load(SetLoad(phase=1, kind="idle", start=end, duration=0))
        await asyncio.sleep(0.2)
        snap = w.snapshot(time.monotonic(), 1.0)
        await w.stop(0.5)
        server.close()
        return snap, end - t0

    snap, seconds = asyncio.run(main())
    assert abs(snap.iterations + snap.dropped - 100 * seconds) <= 3, (snap.iterations, snap.dropped, seconds)
