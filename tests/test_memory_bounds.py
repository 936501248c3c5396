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
        columns = len(table.columns)
        shown = table.row_count
    # two endpoints redrawn 150 times: unbounded, these would hold 450 (rows, lines) and 3,150
    # (cells) entries; kept, at most twice what the table holds (a header and at least four rows)
    lines = 2 * (max(shown, 4) + 1)
    assert shown == 2 and 0 < sizes["_cell_render_cache"] <= lines * columns, sizes
    assert sizes["_line_cache"] <= lines and sizes["_row_render_cache"] <= lines, sizes
    assert sizes["_row_renderable_cache"] <= lines, sizes


def test_histogram_encoding_leaves_no_garbage_and_keeps_the_format():
    """A worker encodes a few histograms a second. hdrh's own ``encode()`` makes a new ctypes
    array type for every new highest value, each a reference cycle that only a full collection
    frees (a worker grew ~0.8 MB a minute until its first one). ``encode_histogram`` writes the
    same bytes and leaves nothing for the collector."""
    import gc
    import random

    from hdrh.histogram import HdrHistogram

    from perftui.worker.stats import encode_histogram, new_histogram

    rng = random.Random(7)
    histograms = []
    for i in range(60):
        h = new_histogram()
        for _ in range(rng.randint(1, 300)):
            h.record_value(rng.randint(1, 10 ** rng.randint(1, 8)))
        h.record_value(1000 + 997 * i)  # a different highest value each: a different buffer size for hdrh
        histograms.append(h)
    empty = new_histogram()
    assert encode_histogram(empty) == empty.encode()

    for h in histograms:
        encoded = encode_histogram(h)
        assert encoded == h.encode()
        back = HdrHistogram.decode(encoded)
        assert back.total_count == h.total_count and back.get_max_value() == h.get_max_value()

    def garbage_types(encode) -> set[str]:
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for h in histograms:
                encode(h)
            gc.collect()
            found = {type(o).__name__ for o in gc.garbage}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.collect()
        return found

    assert "PyCArrayType" in garbage_types(lambda h: h.encode())  # what the test guards against
    assert "PyCArrayType" not in garbage_types(encode_histogram)


def test_dropped_histograms_are_freed_without_the_collector():
    """The coordinator decodes every worker delta and rolls per-second aggregates: each dropped
    histogram holds a ~170 KB counts array. hdrh's histogram and encoder form a cycle; ours do
    not, so reference counting frees them, and adding, encoding and decoding still work."""
    import gc

    from hdrh.histogram import HdrHistogram

    from perftui.aggregate import Aggregate, decode_histogram
    from perftui.worker.stats import encode_histogram, new_histogram

    source = new_histogram()
    for v in (120, 950, 20_000, 7_000_000):
        source.record_value(v)
    encoded = encode_histogram(source)

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        total = new_histogram()
        for _ in range(20):
            agg = Aggregate()  # two fresh histograms, dropped at the next turn
            d = decode_histogram(encoded)
            agg.latency.add(d)
            total.add(d)
            assert encode_histogram(agg.latency) == encoded
        del agg, d
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()
    assert not left & {"HdrHistogram", "HdrHistogramEncoder", "HdrPayload"}, left
    assert total.get_total_count() == 80 and total.get_max_value() == source.get_max_value()
    back = HdrHistogram.decode(encode_histogram(total))
    assert back.get_value_at_percentile(50) == total.get_value_at_percentile(50)

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        HdrHistogram(1, 600_000_000, 3)  # hdrh's own: left for the collector
        gc.collect()
        plain = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()
    assert "HdrHistogram" in plain  # what the test guards against


def test_render_caches_the_dashboard_fills_are_emptied():
    """Textual's ANSI-code-per-style memo (up to 16,384 styles) keeps growing on a live
    dashboard for hours (a terminal's frames go through it, a headless test's do not); the app
    empties it every minute. It must exist in the installed Textual (a rename would silently end
    the trimming) and be emptied by ``trim_render_caches``."""
    import importlib

    from rich.color import ColorSystem
    from rich.style import Style
    from textual.strip import Strip

    from perftui.ui.app import RENDER_CACHES, trim_render_caches

    for i in range(50):
        Strip.render_ansi(Style(color=f"#{i:02x}8040", bold=bool(i % 2)), ColorSystem.TRUECOLOR)
    caches = []
    for module, name in RENDER_CACHES:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        caches.append(obj)
    sizes = [c.cache_info().currsize for c in caches]
    assert sizes[0] >= 50, sizes
    assert trim_render_caches() == sum(sizes)
    assert all(c.cache_info().currsize == 0 for c in caches)
