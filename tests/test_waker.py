"""The open model's wake-up (perftui/worker/waker.py): a timer file descriptor watched by the
event loop. How precisely it fires is bench/'s business (bench/README.md, tail latency); here:
it never fires before its time, a cancelled wait leaves nothing behind, and without a timer file
descriptor the open model still keeps its schedule on the loop's own timer."""

from __future__ import annotations

import asyncio
import time

import uvloop

from perftui.worker import waker as waker_mod
from perftui.worker.waker import Waker
from tests.conftest import read_session, run_cli, write_plan


def test_waker_resumes_at_its_time_never_before():
    async def go():
        w = Waker(asyncio.get_running_loop())
        assert w.precise  # Linux: a timer file descriptor
        woke = []
        for i in range(20):
            when = time.monotonic() + 0.002 + i * 0.0001
            await w.until(when)
            woke.append(time.monotonic() - when)
        w.close()
        assert w.fd == -1
        return woke

    woke = uvloop.run(go())
    assert all(late >= 0 for late in woke), woke  # same clock as time.monotonic
    assert max(woke) < 5.0, woke  # and it does fire (generous: a busy machine)


def test_waker_cancelled_wait_then_a_new_one():
    async def go():
        loop = asyncio.get_running_loop()
        w = Waker(loop)
        first = asyncio.ensure_future(w.until(time.monotonic() + 0.05))
        await asyncio.sleep(0)
        first.cancel()
        # re-armed for a nearer time: the one cancelled never fires into it
        t = time.monotonic() + 0.01
        await w.until(t)
        assert time.monotonic() >= t
        # a cancelled wait whose time passes: its firing is ignored, the loop goes on
        stale = w.until(time.monotonic() + 0.005)
        stale.cancel()
        await asyncio.sleep(0.03)
        t = time.monotonic() + 0.005
        await w.until(t)
        assert time.monotonic() >= t
        # a wait pending at close is cancelled, not left hanging
        pending = w.until(time.monotonic() + 10)
        w.close()
        assert pending.cancelled()
        w.close()  # twice is harmless

    uvloop.run(go())


def test_without_a_timer_fd_the_loop_timer_is_used(monkeypatch):
    monkeypatch.setattr(waker_mod, "_libc", lambda: None)

    async def go():
        w = Waker(asyncio.get_running_loop())
        assert not w.precise
        w.close()

    uvloop.run(go())


def test_open_model_keeps_its_schedule_on_the_loop_timer(tmp_path, demo):
    """A worker without timer file descriptors (the environment switch the tests use to take
    that path) still runs an open phase to its plan: every arrival counted once."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        duration = "3s"
        arrival_rate = 100
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out), env={"PERFTUI_LOOP_TIMER": "1"})
    assert r.returncode == 0, r.stderr + r.stdout
    s = read_session(out)["summary"]
    assert 150 <= s["requests"] <= 300, s["requests"]
    assert s["errors"] == 0
    assert "arrivals       asked ~300 " in r.stdout, r.stdout
