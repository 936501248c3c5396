"""``perftui run PLAN --baseline NAME`` on the dashboard: the baseline's p95 is a line on the
latency chart while the run goes. The baseline is a real saved one (``perftui baseline save``
of the scripted session's document); the dashboard runs over the scripted coordinator."""

from __future__ import annotations

import asyncio
import time

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


def test_run_with_a_baseline_on_a_real_terminal(tmp_path, fresh_demo):
    """``perftui run PLAN --baseline NAME`` end to end on a pseudo-terminal: a baseline saved
    from a real run against a slow demo target (40 ms), then the dashboard of a run against a
    fast one. The screen, as a terminal emulator draws it, shows the baseline's p95 in the
    latency chart's legend and its grey line well above the run's own; when the run ends and the
    dashboard closes, the comparison with the baseline is printed."""
    import pyte

    from tests.conftest import run_cli, write_plan
    from tests.test_trust import Pty, _wait_for

    sessions = tmp_path / "sessions"
    env = {"PERFTUI_SESSIONS_DIR": str(sessions)}

    def plan(target: str, seconds: int, name: str) -> str:
        return str(write_plan(tmp_path, f"""
            name = "checkout"
            target = "{target}"
            [[phases]]
            name = "steady"
            duration = "{seconds}s"
            arrival_rate = 20
            [[scenarios]]
            steps = [{{ url = "/api/users" }}]
            """, name=name))

    slow = fresh_demo(latency="40ms")
    r = run_cli("run", plan(slow.url, 3, "base.toml"), "--headless", "--workers", "1", env=env, timeout=90)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (base_dir,) = [d for d in sessions.iterdir() if d.is_dir()]
    r = run_cli("baseline", "save", "main", str(base_dir), env=env)
    assert r.returncode == 0, r.stderr

    fast = fresh_demo()
    cols, lines = 120, 40
    term = Pty(["run", plan(fast.url, 6, "current.toml"), "--baseline", "main", "--fail-on", "never", "--start",
                "--workers", "1"], env)
    screen = pyte.Screen(cols, lines)
    stream = pyte.ByteStream(screen)
    fed = 0

    def display() -> list[str]:
        # only what came since the last look: replaying the whole output each time took seconds
        # on a busy machine, long enough to miss the few seconds the run is on screen
        nonlocal fed
        new = bytes(term.output[fed:])
        fed += len(new)
        stream.feed(new)
        return screen.display

    try:
        def legend_and_line():
            """The latency chart's box, its legend line, and the cells of the baseline's line:
            braille drawn in the colour of the legend's ``━`` before ``main p95``."""
            shown = display()
            box = [i for i, ln in enumerate(shown) if "latency (ms" in ln]
            if not box:
                return None
            top = box[0]
            left = shown[top].index("╭", 0, shown[top].index("latency (ms"))
            right = shown[top].index("╮", left)
            legend = [i for i in range(top + 1, lines) if "main p95" in shown[i][left:right + 1]]
            if not legend:
                return None
            bottom = legend[0]
            mark = shown[bottom].index("━ main p95", left)
            colour = screen.buffer[bottom][mark].fg
            own = screen.buffer[bottom][shown[bottom].index("━ p95", left)].fg
            line = [(y, x) for y in range(top + 1, bottom) for x in range(left, right)
                    if "\u2800" < screen.buffer[y][x].data <= "\u28ff" and screen.buffer[y][x].fg == colour]
            return (colour, own, line) if line else None

        colour, own, line = _wait_for(legend_and_line, timeout=60, what="the baseline's p95 line and legend",
                                      interval=0.5)
        assert colour != own  # the baseline's line is not the run's own p95
        directory = _wait_for(lambda: next((d / "session.json" for d in sessions.iterdir()
                                            if d != base_dir and (d / "session.json").exists()), None),
                              timeout=60, what="the end of the run")
        time.sleep(0.5)
        term.send(b"q")
        assert term.proc.wait(30) == 0
        time.sleep(0.3)
    finally:
        term.close()
    printed = term.output.decode("utf-8", "replace")
    assert "baseline" in printed and "verdict" in printed, printed[-3000:]
    assert directory.exists()
