"""``perftui run PLAN --baseline NAME`` on the dashboard: the baseline's p95 is a line on the
latency chart while the run goes. The baseline is a real saved one (``perftui baseline save``
of the scripted session's document); the dashboard runs over the scripted coordinator."""

from __future__ import annotations

import asyncio

from perftui.baselines import load_baseline, p95_series
from perftui.cli import main
from perftui.ui.app import PerftuiApp
from perftui.ui.widgets import LatencyChart
from perftui.ui.widgets.charts import BASELINE, P95
from tests.test_open import scripted_document
from tests.test_ui import chart_text
from tests.ui_fakes import ScriptedBackend, sample_plan, settle, wait_for


def saved_baseline(tmp_path, monkeypatch) -> list[tuple[float, float | None]]:
    monkeypatch.setenv("PERFTUI_SESSIONS_DIR", str(tmp_path / "sessions"))
    path = scripted_document(tmp_path)
    assert main(["baseline", "save", "main", str(path)]) == 0
    return p95_series(load_baseline("main"))


def test_p95_series_of_a_saved_baseline(tmp_path, monkeypatch):
    series = saved_baseline(tmp_path, monkeypatch)
    assert len(series) == 8
    assert [t for t, _ in series] == sorted(t for t, _ in series)
    # the scripted run's slow second (80 ms) is in it
    assert max(v for _, v in series if v is not None) > 60


def test_latency_chart_draws_the_baseline_p95(tmp_path, monkeypatch):
    series = saved_baseline(tmp_path, monkeypatch)

    async def drive():
        backend = ScriptedBackend()
        app = PerftuiApp(sample_plan(), backend=backend, out=str(tmp_path / "s.json"),
                         baseline_p95=series, baseline_name="main")
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: backend.coord is not None)
            await pilot.press("s")
            await wait_for(pilot, lambda: backend.coord.state == "running")
            backend.coord.step(6, latency_ms=9)
            await settle(pilot)
            screen = app.screen
            screen.tick_charts(force=True)
            await pilot.pause()
            chart = screen.query_one(LatencyChart)
            drawn = chart.series(chart._data[0])
            base = [s for s in drawn if s[2] == BASELINE]
            assert base, "no baseline series on the latency chart"
            xs = [x for s in base for x in s[0]]
            ys = [y for s in base for y in s[1]]
            assert xs == [t for t, v in series if v is not None]
            assert ys == [v for _, v in series if v is not None]
            assert any(s[2] == P95 for s in drawn)  # the run's own p95 is still there
            assert "main p95" in chart.border_subtitle
            assert chart_text(chart).strip()
            await pilot.press("q")

    asyncio.run(drive())


def test_no_baseline_no_baseline_series(tmp_path):
    async def drive():
        backend = ScriptedBackend()
        app = PerftuiApp(sample_plan(), backend=backend, out=str(tmp_path / "s.json"))
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: backend.coord is not None)
            await pilot.press("s")
            await wait_for(pilot, lambda: backend.coord.state == "running")
            backend.coord.step(3, latency_ms=9)
            await settle(pilot)
            app.screen.tick_charts(force=True)
            await pilot.pause()
            chart = app.screen.query_one(LatencyChart)
            assert not [s for s in chart.series(chart._data[0]) if s[2] == BASELINE]
            assert "baseline" not in chart.border_subtitle and "main" not in chart.border_subtitle
            await pilot.press("q")

    asyncio.run(drive())
