"""The dashboard's per-tick view (``perftui.ui.view.build_view``) on its own: no screen, no app.

A ``RunController`` over the tests' scripted backend (``tests/ui_fakes.py``: a real session record
fed by a scripted coordinator with a frozen clock) is stepped by hand, and the view is checked
against what the session says."""

from __future__ import annotations

import dataclasses
import os

import msgspec
import pytest
from rich.console import Console

from perftui.ui.controller import RunController
from perftui.ui.view import RunView, build_view
from perftui.ui.widgets.header import header_renderable
from tests.ui_fakes import ScriptedBackend, monitored_plan, sample_plan


class CountingBackend(ScriptedBackend):
    """Counts the UI process samples: the view takes one per data version, not one per tick."""

    def __init__(self) -> None:
        super().__init__()
        self.samples = 0

    def process_stats(self) -> tuple[float, int]:
        self.samples += 1
        return super().process_stats()


def text(renderable, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


async def running(plan=None, seconds: int = 3) -> tuple[RunController, CountingBackend]:
    backend = CountingBackend()
    c = RunController(plan or sample_plan(), backend=backend)
    await c.prepare()
    assert await c.start()
    backend.coord.step(seconds, latency_ms=10, error_rate=0.05)
    return c, backend


def test_before_the_target_is_up():
    c = RunController(sample_plan(), backend=ScriptedBackend())
    v = build_view(c)
    assert (v.status, v.state) == ("preparing", "idle")
    assert (v.header.word, v.header.detail) == ("starting", "starting demo target…")
    assert v.header.plan_name == "checkout flow" and v.header.run_elapsed is None and v.header.headline is None
    assert v.phases is None  # the strip says it is loading
    n = v.numbers
    assert not n.has_run and n.endpoints is None and n.generator is None
    assert n.thresholds.exprs == tuple(sample_plan().plan.thresholds) and n.thresholds.results == ()
    assert n.target.mode == "hint" and n.target.demo


async def test_idle_then_running():
    backend = ScriptedBackend()
    c = RunController(sample_plan(), backend=backend)
    await c.prepare()
    v = build_view(c, cores=4)
    assert (v.header.word, v.header.detail) == ("idle", "press s to start")
    assert v.phases is not None and len(v.phases.specs) == 4 and not v.phases.started
    assert v.numbers.has_run and v.numbers.endpoints is None and v.numbers.latency == (None, None)

    await c.start()
    backend.coord.step(3, latency_ms=10, error_rate=0.05)
    v = build_view(c, cores=4)
    s = backend.coord.session
    assert v.state == "running" and v.header.word == "running"
    assert v.phases.index == 0 and v.phases.current_elapsed == pytest.approx(3.0) and v.phases.active
    assert v.phases.current.name == "warm up" and v.phases.records[0].start == pytest.approx(0.0)
    assert v.header.run_elapsed == pytest.approx(s.elapsed())
    window, total = v.numbers.latency
    assert total.requests == s.summary().requests > 0 and window.requests == s.window_summary().requests
    assert {r.name for r in v.numbers.endpoints} == {e.name for e in s.endpoint_summaries()}
    assert sum(r.requests for r in v.numbers.endpoints) == total.requests
    g = v.numbers.generator
    assert g.workers == 2 and g.ui == (3.0, 72 * 2**20) and g.cores == 4 and g.warning is None
    assert tuple(v.numbers.timeline) == tuple(s.timeline) and len(v.numbers.timeline) == 3
    assert v.numbers.last_errors == tuple(s.last_errors) and v.numbers.last_errors  # 5 % errors
    assert v.numbers.thresholds.live and len(v.numbers.thresholds.results) == 3
    assert v.header.headline is not None and v.header.headline.last_row is v.numbers.timeline[-1]


async def test_numbers_are_built_once_per_data_version():
    c, backend = await running()
    first = build_view(c)
    assert backend.samples == 1
    again = build_view(c, first)  # a tick with no new second: the clocks move, the numbers stand
    assert again.numbers is first.numbers and backend.samples == 1
    backend.coord.step(1)
    moved = build_view(c, again)
    assert moved.numbers is not first.numbers and backend.samples == 2
    assert moved.numbers.total.requests > first.numbers.total.requests


async def test_the_view_is_frozen_and_does_not_move_with_the_session():
    c, backend = await running()
    v = build_view(c)
    requests, rows, events = v.numbers.total.requests, len(v.numbers.timeline), len(v.numbers.events)
    backend.coord.annotate("later")
    backend.coord.step(4)
    assert (v.numbers.total.requests, len(v.numbers.timeline), len(v.numbers.events)) == (requests, rows, events)
    assert v.phases.current_elapsed == pytest.approx(3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.numbers.version = 99  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.header.word = "paused"  # type: ignore[misc]


async def test_pause_and_the_end_of_the_run():
    c, backend = await running()
    backend.coord.toggle_pause()
    c.touch()
    v = build_view(c)
    assert v.header.word == "paused" and v.phases.active
    backend.coord.toggle_pause()
    backend.coord.step(60)
    await backend.coord.finished.wait()
    v = build_view(c)
    s = backend.coord.session
    assert c.ended and (v.header.word, v.header.detail) == ("finished", "completed")
    assert not v.phases.active and v.header.run_elapsed == pytest.approx(s.run_seconds())
    assert not v.numbers.thresholds.live and v.numbers.generator.warning is None
    assert [r.end is not None for r in v.phases.records] == [True] * 4


async def test_monitored_target_down_and_generator_limited():
    c, backend = await running(monitored_plan())
    coord = backend.coord
    v = build_view(c)
    t = v.numbers.target
    assert t.mode == "monitor" and [h.url for h in t.monitor.health] == ["/health", "/health/detailed"]
    assert all(h.up for h in t.monitor.health) and t.monitor.metric_names() and t.monitor.sut_pid == 4242
    assert not v.header.target_down and not v.header.limited
    coord.down["/health"] = (None, "timeout", "")
    coord.busy_cpu = 98.0
    coord.step(3)
    v2 = build_view(c, v)
    assert v2.header.target_down and v2.header.limited and v2.numbers.generator.warning
    assert not next(h for h in v2.numbers.target.monitor.health if h.url == "/health").up
    assert v2.numbers.generator_warnings and v2.numbers.generator_warning
    # the earlier view still says what it said
    assert all(h.up for h in v.numbers.target.monitor.health)


async def test_header_draws_from_the_view_alone():
    c, _ = await running()
    v: RunView = build_view(c)
    wide = text(header_renderable(v.header, 160))
    assert "checkout flow" in wide and "RUNNING" in wide and "phase 1/4" in wide and "elapsed" in wide
    narrow = text(header_renderable(v.header, 80), 80)
    assert "req" in narrow and "p95" in narrow and "err" in narrow


def test_the_phase_strip_keeps_a_part_of_a_second():
    """A 1.5 s phase reads "1.5s of 1.5s" when done (it read "2s of 2s"); a skipped one's time
    stays whole, and the current one's counts on in whole seconds."""
    from types import SimpleNamespace

    from perftui.run.clock import PhaseSpec
    from perftui.ui.widgets.phases import phase_cells

    specs = [PhaseSpec("a", "open", 1.5, 20, 20), PhaseSpec("b", "open", 20, 40, 40), PhaseSpec("c", "closed", 2.5, 2, 2)]
    records = [SimpleNamespace(start=0.0, end=1.5, skipped=False), SimpleNamespace(start=1.5, end=4.77, skipped=True),
               SimpleNamespace(start=4.77, end=None, skipped=False)]
    timings = [cell[2] for cell in phase_cells(specs, records, 2, 1.2, started=True, finished=False)]
    assert timings == ["1.5s of 1.5s", "3s of 20s skipped", "1s of 2.5s"]


async def test_the_started_rate_is_set_against_what_the_second_asked_for():
    """A second holding a 40/s → 80/s phase change asked for 60 arrivals: the narrow header reads
    "60/s of 60/s" (it set them against the new phase's 80/s), as the headless line does."""
    from perftui.session.schema import asked_rate
    from perftui.ui.view import Headline

    c, _ = await running()
    v = build_view(c)
    row = v.header.headline.last_row
    before = msgspec.structs.replace(row, t=1.0, asked=40.0, target_rps=40.0, started_rps=40.0)
    change = msgspec.structs.replace(row, t=2.0, asked=60.0, target_rps=80.0, started_rps=60.0)
    last = msgspec.structs.replace(row, t=2.5, asked=40.0, target_rps=80.0, started_rps=80.0)
    rows = [before, change, last]
    assert [asked_rate(rows[:n]) for n in (1, 2, 3)] == [40.0, 60.0, 80.0]
    # a row from before rows kept what they asked for: its target
    assert asked_rate([msgspec.structs.replace(change, asked=0.0)]) == 80.0 and asked_rate([]) == 0.0
    header = dataclasses.replace(v.header, headline=Headline(v.header.headline.window, v.header.headline.total,
                                                             change, asked_rate([before, change])))
    narrow = text(header_renderable(header, 80), 80)
    assert "iter 60.0/s of 60.0/s" in narrow, narrow
