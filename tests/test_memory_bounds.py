"""Memory stays bounded by design, checked in compressed time: a long run's worth of scripted
seconds goes through the real session record and the real dashboard (``tests/ui_fakes.py``), and
the structures that could grow with run length are measured by size, not by the clock."""

from __future__ import annotations

import asyncio

import perftui.session.record as session_mod
from tests.ui_fakes import FakeCoordinator, monitored_plan, scripted_app, wait_for

SOAK = [{"name": "soak", "duration": "24h", "arrival_rate": 5}]


def test_session_timeline_and_lists_stay_bounded(monkeypatch):
    """With the row limit lowered to 50, 400 seconds halve the timeline's resolution three times;
    rows, the 10 s window and the error list never exceed their bounds."""
    monkeypatch.setattr(session_mod, "TIMELINE_MAX_ROWS", 50)

    async def main():
        c = FakeCoordinator(monitored_plan(phases=SOAK), "http://127.0.0.1:8088")
        await c.start()
        longest = 0
        for _ in range(400):
            c.step(1, error_rate=0.05)
            longest = max(longest, len(c.session.timeline))
        return c.session, longest

    s, longest = asyncio.run(main())
    assert longest <= 50
    assert s.resolution >= 8.0  # 400 s in at most 50 rows
    assert s.timeline[-1].t >= 390
    assert len(s.window) <= session_mod.WINDOW_SECONDS
    assert len(s.last_errors) <= 50
    assert sum(r.requests for r in s.timeline) > 0


async def test_dashboard_render_caches_stay_bounded():
    """150 seconds of a run on the dashboard: the endpoints table's render caches (keyed by an
    update counter, so each second's entries are never read again) stay at their small bounds.
    The charts are not redrawn: they hold no part of the table's caches, and drawing them was
    most of this test's time."""
    app = scripted_app(loaded=monitored_plan(phases=SOAK))
    async with app.run_test(size=(160, 48)) as pilot:
        backend = app.scripted
        await wait_for(pilot, lambda: backend.coord is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: backend.coord.state == "running")
        screen = app.screen
        for _ in range(150):
            backend.coord.step(1)
            screen.tick_numbers()
            await pilot.pause(0)
        table = screen.endpoints
        sizes = {name: len(getattr(table, name)) for name in
                 ("_row_render_cache", "_cell_render_cache", "_row_renderable_cache", "_line_cache")}
    # two endpoints redrawn 150 times: unbounded, these would hold 450 (rows, lines) and 3,150
    # (cells) entries
    assert sizes["_cell_render_cache"] <= 1024 and sizes["_line_cache"] <= 256, sizes
    assert sizes["_row_render_cache"] <= 128 and sizes["_row_renderable_cache"] <= 128, sizes
