"""The dashboard driven with Pilot: keys in, what the screen shows and what the coordinator got.

Most tests use the scripted coordinator (``tests/ui_fakes.py``): time moves only when a test calls
``step()``. A few run the real engine for a few seconds: against the real demo target, against a
target that accepts connections and never answers, and as a background run the dashboard attaches
to (``perftui attach``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from perftui.planload import load_plan
from perftui.ui.app import PerftuiApp, serve
from perftui.ui.controller import FAILED
from perftui.ui.screens.dashboard import DashboardScreen
from perftui.ui.screens.help import HelpScreen
from perftui.ui.screens.picker import PickerScreen
from perftui.ui.screens.prompts import AnnotatePrompt, ConfirmEndRun, ConfirmQuit
from perftui.ui.screens.results import ResultsScreen
from perftui.ui.widgets import (
    EndpointsTable, ErrorsPanel, GeneratorPanel, HeaderBar, LatencyChart, LatencyTable, PhaseStrip, ProtocolsPanel,
    RateChart, TargetPanel, ThresholdsPanel,
)
from perftui.ui.widgets.charts import LIMITED_GLYPH, time_ticks
from perftui.ui.widgets.target import axis_text, sparkline
from perftui.units import format_ms
from tests.conftest import ROOT, write_plan
from tests.ui_fakes import ScriptedBackend, monitored_plan, play_monitored, sample_plan, write_sample_plans


def text_of(widget, width: int = 200) -> str:
    """What a Static-based panel shows, as plain text."""
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    content = widget.content
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text()


def chart_text(chart) -> str:
    return Text.from_ansi(chart.plt.build()).plain


async def until(pilot, predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


async def dashboard(pilot, app) -> DashboardScreen:
    await until(pilot, lambda: app.controller is not None and app.controller.coord is not None)
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    return screen


async def redraw(pilot, screen: DashboardScreen) -> None:
    """Draw now instead of waiting for the refresh timers."""
    screen.tick_numbers()
    screen.tick_charts(force=True)
    await pilot.pause()


def kinds(coord) -> list[str]:
    return [e.kind for e in coord.session.events]


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_picker_previews_plans_and_opens_the_dashboard(tmp_path):
    plans = write_sample_plans(tmp_path / "plans")
    backend = ScriptedBackend()
    app = PerftuiApp(plan_dirs=[(plans, "plans/")], backend=backend)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        assert [e.path.name for e in picker.entries] == ["demo.toml", "broken.toml"]  # quick start first
        head = text_of(picker.head)
        assert "demo quick start" in head and "2 phases, 30s planned" in head
        body = text_of(picker.body)
        assert "ramp" in body and "10→40/s" in body and "GET /api/users" in body and "p95 < 100ms" in body
        assert picker.sketch.display
        # the broken plan shows its problems instead of a preview, and does not open
        await pilot.press("down")
        head = text_of(picker.head)
        assert "does not validate" in head and "duration" in head
        assert not picker.sketch.display
        await pilot.press("enter")
        assert isinstance(app.screen, PickerScreen)
        assert any("does not validate" in m for m in notifications(app))
        # the demo plan opens the dashboard, idle
        await pilot.press("up", "enter")
        screen = await dashboard(pilot, app)
        assert app.controller.plan.name == "demo quick start"
        assert backend.coord.state == "idle"
        assert "IDLE" in text_of(screen.query_one(HeaderBar))


async def test_controls_reach_the_coordinator_and_the_screen(tmp_path):
    backend = ScriptedBackend()
    out = tmp_path / "session.json"
    app = PerftuiApp(sample_plan(), backend=backend, out=str(out))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        header = screen.query_one(HeaderBar)
        assert "IDLE" in text_of(header) and "press s to start" in text_of(header)
        assert screen.check_action("pause", ()) is None  # shown disabled until running

        # start
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(5, latency_ms=10)
        await redraw(pilot, screen)
        assert kinds(coord)[:2] == ["start", "phase"]
        h = text_of(header)
        assert "RUNNING" in h and "phase 1/4 warm up" in h and "5s / 10s" in h and "elapsed 5s" in h
        assert "▶ 1 warm up" in text_of(screen.query_one(PhaseStrip))
        latency = text_of(screen.query_one(LatencyTable))
        assert "10s latency" in latency and "run service" in latency and "ms" in latency
        table = screen.query_one(EndpointsTable)
        assert table.row_count == 2
        assert table.get_cell("GET /api/users", "requests").plain == f"{coord.session.endpoints['GET /api/users'].requests:,}"
        assert "✓ pass" in text_of(screen.query_one(ThresholdsPanel))
        gen = text_of(screen.query_one(GeneratorPanel))
        assert "workers 2/2" in gen and "dashboard" in gen and "3%" in gen and "72.0MiB" in gen

        # pause and resume (p and space)
        await pilot.press("p")
        assert coord.state == "paused"
        await redraw(pilot, screen)
        assert "PAUSED" in text_of(header)
        await pilot.press("space")
        assert coord.state == "running"

        # skip a phase, go back, skip again
        await pilot.press("n")
        assert coord.phase_index == 1
        await pilot.press("b")  # within 2 s of the phase start: back to the previous one
        assert coord.phase_index == 0
        await pilot.press("n")
        coord.step(3)
        await redraw(pilot, screen)
        assert "▶ 2 steady" in text_of(screen.query_one(PhaseStrip))
        assert "phase 2/4 steady" in text_of(header)

        # raise and lower the rate by 10 %
        await pilot.press("plus")
        assert abs(coord.override - 66.0) < 1e-9
        assert any("target rate → 66/s" in m for m in notifications(app))
        await pilot.press("minus")
        assert abs(coord.override - 59.4) < 1e-9
        assert [c[1] for c in coord.calls if c[0] == "scale_load"] == [1.1, 0.9]

        # annotate: a prompt, then a note on the timeline and on the chart
        await pilot.press("a")
        assert isinstance(app.screen, AnnotatePrompt)
        await pilot.press(*"cache flushed", "enter")
        assert isinstance(app.screen, DashboardScreen)
        assert coord.session.events[-1].kind == "annotation"
        assert coord.session.events[-1].message == "cache flushed"
        coord.step(2)
        await redraw(pilot, screen)
        assert "cache flushed" in chart_text(screen.query_one(RateChart))

        # export now
        await pilot.press("e")
        assert out.exists()
        doc = json.loads(out.read_text())
        assert doc["events"][-1]["kind"] == "export"
        assert [e["kind"] for e in doc["events"]].count("rate") == 2
        assert any(str(out) in m for m in notifications(app))
        assert not app.controller.written.final

        # quit asks while running; "n" keeps it running, "y" stops, writes and exits
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("n")
        assert coord.state == "running"
        await pilot.press("q")
        await pilot.press("y")
        await until(pilot, lambda: coord.finished.is_set())
    assert coord.session.end_reason == "stopped by user (quit)"
    doc = json.loads(out.read_text())
    assert doc["partial"] is True and doc["events"][-1]["kind"] == "stop"
    assert {"start", "pause", "resume", "phase", "rate", "annotation", "export", "stop"} <= set(kinds(coord))
    # quitting is not an interruption: the exit code is the thresholds' verdict
    failed = any(not r.ok for r in coord.session.threshold_results)
    assert app.controller.exit_code() == (1 if failed else 0)


async def test_run_to_completion_shows_results(tmp_path):
    backend = ScriptedBackend()
    out = tmp_path / "done.json"
    app = PerftuiApp(sample_plan(), backend=backend, out=str(out), start=True)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await until(pilot, lambda: coord.state == "running")  # start=True: no key needed
        coord.step(60, latency_ms=30, error_rate=0.05)  # past the last phase: completes
        await until(pilot, lambda: isinstance(app.screen, ResultsScreen)
                    and all(app.screen.query(q) for q in ("#verdict", "#written", "#results-thresholds")))
        results = app.screen
        verdict = text_of(results.query_one("#verdict"))
        assert "RUN COMPLETED" in verdict and "thresholds failed" in verdict
        assert str(out) in text_of(results.query_one("#written"))
        assert "FAIL" in text_of(results.query_one("#results-thresholds"))
        # escape goes back to the dashboard (charts), r shows the results again
        await pilot.press("escape")
        assert app.screen is screen
        assert screen.check_action("start", ()) is None and screen.check_action("results", ()) is True
        await pilot.press("r")
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("q")
    doc = json.loads(out.read_text())
    assert doc["partial"] is False and doc["end_reason"] == "completed"
    assert [p["start"] is not None for p in doc["phases"]] == [True] * 4
    assert app.controller.exit_code() == 1  # thresholds failed


async def test_stop_key_ends_the_run_and_sorting_endpoints(tmp_path):
    backend = ScriptedBackend()
    app = PerftuiApp(sample_plan(), backend=backend, out=str(tmp_path / "s.json"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        await pilot.press("s")
        coord = backend.coord
        await until(pilot, lambda: coord.state == "running")
        coord.step(4)
        await redraw(pilot, screen)
        table = screen.query_one(EndpointsTable)
        assert table.sort_key == "requests"
        await pilot.press("o")
        assert table.sort_key == "rps"
        # clicking a header sorts by it; clicking again reverses
        await pilot.click(EndpointsTable, offset=(3, 1))
        assert table.sort_key == "name" and not table.sort_reverse
        assert [str(k.value) for k in table.rows] == ["GET /api/users", "GET /api/users/{{ id }}"]
        await pilot.click(EndpointsTable, offset=(3, 1))
        assert table.sort_reverse
        assert [str(k.value) for k in table.rows] == ["GET /api/users/{{ id }}", "GET /api/users"]
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ResultsScreen))
        assert coord.session.end_reason == "stopped by user"
        assert ("stop", "stopped by user") in coord.calls


async def test_help_lists_every_key():
    app = PerftuiApp(sample_plan(), backend=ScriptedBackend())
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = [k for k, _ in app.screen.keys]
        for key in ("s", "p / space", "n", "b", "+ / -", "a", "e", "x", "q", "ctrl+c", "?"):
            assert key in keys
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_narrow_terminal_keeps_every_key_in_the_footer():
    app = PerftuiApp(sample_plan(), backend=ScriptedBackend())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await dashboard(pilot, app)
        assert screen.has_class("-narrow")
        footer_keys = [fk.key_display or fk.key for fk in app.screen.query("FooterKey")]
        for key in ("s", "p", "n", "b", "+/-", "a", "e", "x", "q", "?"):
            assert key in footer_keys, footer_keys
        # every footer key fits on the one line
        right = max(fk.region.right for fk in app.screen.query("FooterKey"))
        assert right <= 80


async def test_target_that_fails_to_start_is_shown_not_raised():
    class Broken(ScriptedBackend):
        def resolve_target(self, loaded):
            raise RuntimeError("port 8088 in use")

    app = PerftuiApp(sample_plan(), backend=Broken())
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.controller is not None and app.controller.status == FAILED)
        screen = app.screen
        screen.tick_numbers()
        await pilot.pause()
        header = text_of(screen.query_one(HeaderBar))
        assert "ERROR" in header and "port 8088 in use" in header
        await pilot.press("s")  # nothing to start: no crash
        await pilot.press("q")
    assert app.controller.exit_code() == 0


async def test_ctrl_c_stops_gracefully_writes_and_quits(tmp_path):
    backend = ScriptedBackend()
    out = tmp_path / "ctrlc.json"
    app = PerftuiApp(sample_plan(), backend=backend, out=str(out), start=True)

    async def pilot_script(pilot):
        await until(pilot, lambda: backend.coord is not None and backend.coord.state == "running")
        backend.coord.step(3)
        await pilot.press("ctrl+c")

    code = await asyncio.wait_for(serve(app, headless=True, size=(120, 40), auto_pilot=pilot_script), 20)
    assert code == 0  # a key, not a signal
    doc = json.loads(out.read_text())
    assert doc["end_reason"] == "stopped by user (ctrl+c)" and doc["partial"] is True


async def test_sighup_stops_the_run_and_writes_the_session(tmp_path):
    """The terminal goes away: the run stops gracefully, the session is written, exit 130."""
    backend = ScriptedBackend()
    out = tmp_path / "hup.json"
    app = PerftuiApp(sample_plan(), backend=backend, out=str(out), start=True)

    async def pilot_script(pilot):
        await until(pilot, lambda: backend.coord is not None and backend.coord.state == "running")
        backend.coord.step(4)
        os.kill(os.getpid(), signal.SIGHUP)

    code = await asyncio.wait_for(serve(app, headless=True, size=(120, 40), auto_pilot=pilot_script), 20)
    assert code == 130
    doc = json.loads(out.read_text())
    assert doc["end_reason"] == "interrupted (SIGHUP)" and doc["partial"] is True
    assert doc["summary"]["requests"] > 0
    assert backend.coord.killed  # workers never outlive the app


async def test_real_engine_against_the_demo_target(tmp_path):
    """The real coordinator, one worker process and the embedded demo target, ~4 s."""
    plan = write_plan(tmp_path, """
        name = "ui smoke"
        target = "demo"
        thresholds = ["error_rate < 1%"]
        [demo]
        latency = "2ms"
        [[phases]]
        name = "steady"
        duration = "30s"
        arrival_rate = 40
        [[scenarios]]
        steps = [{ url = "/api/users" }, { url = "/health" }]
    """)
    out = tmp_path / "real.json"
    app = PerftuiApp(load_plan(plan), workers=1, out=str(out))
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await dashboard(pilot, app)  # the demo target is up
            c = app.controller
            assert c.target.url.startswith("http://127.0.0.1:")
            await pilot.press("s")
            await until(pilot, lambda: c.state == "running", timeout=15)
            await until(pilot, lambda: len(c.coord.session.timeline) >= 3, timeout=10)
            await redraw(pilot, screen)
            assert "RUNNING" in text_of(screen.query_one(HeaderBar))
            table = screen.query_one(EndpointsTable)
            assert {str(k.value) for k in table.rows} == {"GET /api/users", "GET /health"}
            assert int(table.get_cell("GET /api/users", "requests").plain.replace(",", "")) > 10
            assert "✓ pass" in text_of(screen.query_one(ThresholdsPanel))
            assert "no errors so far" in text_of(screen.query_one(ErrorsPanel))
            await pilot.press("plus")
            assert abs(c.coord.override - 44.0) < 1e-6
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ResultsScreen), timeout=10)
    finally:
        if app.controller is not None:
            await app.controller.shutdown("test over")
            app.controller.close_target()
    doc = json.loads(Path(out).read_text())
    assert doc["end_reason"] == "stopped by user" and doc["summary"]["requests"] > 100
    assert [e["kind"] for e in doc["events"]][:2] == ["start", "phase"] and "rate" in [e["kind"] for e in doc["events"]]


async def test_many_phases_and_worker_trouble_on_a_narrow_screen():
    phases = [{"name": f"step {i + 1}", "duration": "5s", "arrival_rate": 10 * (i + 1)} for i in range(12)]
    backend = ScriptedBackend()
    app = PerftuiApp(sample_plan(phases=phases), backend=backend, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await until(pilot, lambda: coord.state == "running")
        for _ in range(6):
            await pilot.press("n")
        coord.step(2)
        coord.session.event("worker", "worker 1 died (exit code -9); 1 of 2 left")
        await redraw(pilot, screen)
        strip = text_of(screen.query_one(PhaseStrip), width=80)
        assert "▶ 7 step 7" in strip and "…" in strip  # a window around the current phase
        assert "step 1 " not in strip
        assert any("worker 1 died" in m for m in notifications(app))


async def test_quitting_while_the_target_starts_still_stops_it():
    """q before the (slow) demo server is up: serve waits for it and stops it."""
    import threading

    release = threading.Event()
    closed = []

    class SlowTarget:
        url = "http://127.0.0.1:9"

        def close(self):
            closed.append(True)

    class Slow(ScriptedBackend):
        def resolve_target(self, loaded):
            release.wait(5)
            return SlowTarget()

    app = PerftuiApp(sample_plan(), backend=Slow())

    async def pilot_script(pilot):
        await until(pilot, lambda: app.controller is not None)
        await pilot.press("q")
        release.set()

    code = await asyncio.wait_for(serve(app, headless=True, size=(100, 30), auto_pilot=pilot_script), 20)
    assert code == 0 and closed == [True]


# ---- target monitoring, generator self-health, protocols ---------------------------------


async def test_target_panel_health_process_metrics_and_generator_warnings():
    backend = ScriptedBackend()
    app = PerftuiApp(monitored_plan(), backend=backend)
    async with app.run_test(size=(160, 48)) as pilot:
        app.scripted = backend
        await play_monitored(pilot)  # /health/detailed down 3 s and back; /health down now; CPU-bound twice
        screen = app.screen
        assert screen.has_class("-monitored")
        target = text_of(screen.query_one(TargetPanel))
        lines = target.splitlines()
        health = next(ln for ln in lines if "/health " in ln)
        assert "DOWN" in health and "timeout" in health and "since 0:19" in health
        detailed = next(ln for ln in lines if "/health/detailed" in ln)
        assert "UP" in detailed and "200" in detailed and "2.30ms" in detailed and "ok" in detailed
        assert "since 0:09" in detailed  # up again since the recovery
        proc = next(ln for ln in lines if ln.strip().startswith("process"))
        assert "4242 demo" in proc and "CPU" in proc and "RSS" in proc
        assert "measuring… (needs 1m)" in proc and "MB/h" not in proc  # 20 s: too short for a trend
        for name in ("5xx per second", "http_requests_in_flight", "server p99 (ms)"):
            assert name in target
        assert 'route="/api/users"}' in target and "/s" in target
        assert any(c in target for c in "▁▂▃▄▅▆▇█")
        # the generator panel: machine figures and the bottleneck warning, a toast when it began
        gen = text_of(screen.query_one(GeneratorPanel))
        assert "perftui is the bottleneck" in gen and "numbers in this interval are suspect" in gen
        assert "worker 0 CPU-bound" in gen and "machine (4 cores)" in gen and "load" in gen and "1.25" in gen
        assert screen.query_one(GeneratorPanel).has_class("-warning")
        header = text_of(screen.query_one(HeaderBar))
        assert "TARGET DOWN" in header and "PERFTUI-LIMITED" in header
        notes = notifications(app)
        assert any("worker 0 CPU-bound" in m and "suspect" in m for m in notes)
        assert not any("DOWN" in m for m in notes)  # the badge and the panel say it; a toast would cover the panel
        # generator-limited seconds are marked along the bottom of the load and latency charts
        limited = [r.t for r in backend.coord.session.timeline if r.generator_limited]
        assert limited and LIMITED_GLYPH in chart_text(screen.query_one(RateChart))
        assert LIMITED_GLYPH in chart_text(screen.query_one(LatencyChart))
        assert "perftui-limited" in str(screen.query_one(RateChart).border_title)
        # the metrics URL fails: said so; the CPU calms down: the warning goes
        coord = backend.coord
        coord.metrics_error = "connect refused"
        coord.busy_cpu = 20.0
        coord.down.clear()
        coord.step(2)
        await redraw(pilot, screen)
        target = text_of(screen.query_one(TargetPanel))
        assert "metrics failing: connect refused" in target
        assert "DOWN" not in target
        assert "bottleneck" not in text_of(screen.query_one(GeneratorPanel))
        assert not screen.query_one(GeneratorPanel).has_class("-warning")
        assert "TARGET DOWN" not in text_of(screen.query_one(HeaderBar))


def test_sparklines_share_the_charts_time_axis():
    # like the charts, a row sits at its t: 10 rows in a 20 s span on 20 columns fill columns
    # 1-10; column 0 (the first second) and the future stay empty
    cols = sparkline([(t, float(t)) for t in range(1, 11)], span=20.0, width=20)
    assert cols[0] is None and all(v is not None for v in cols[1:11]) and all(v is None for v in cols[11:])
    assert cols[1] < cols[10]
    # a failed scrape is a gap, not a step
    assert sparkline([(1, 1.0), (2, None), (3, 3.0)], span=4.0, width=4) == [None, 1.0, None, 3.0]
    # columns between two rows hold the previous value
    assert sparkline([(1, 5.0), (3, 7.0)], span=3.0, width=6) == [None, None, 5.0, 5.0, 5.0, 7.0]
    # tick labels at the charts' round seconds
    axis = axis_text(40.0, 40, 0).plain
    ticks, labels = time_ticks(40.0, 80)
    assert axis.startswith("0") and all(label in axis for label in labels[1:])


async def test_unmonitored_plan_says_how_to_monitor():
    app = PerftuiApp(sample_plan(), backend=ScriptedBackend(), start=True)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        await until(pilot, lambda: app.controller.state == "running")
        app.controller.coord.step(3)
        await redraw(pilot, screen)
        assert not screen.has_class("-monitored") and not screen.query(ProtocolsPanel)
        target = text_of(screen.query_one(TargetPanel))
        assert "not monitored" in target and '[monitor]' in target and 'health = "/health"' in target
        gen = text_of(screen.query_one(GeneratorPanel))
        assert "machine (4 cores)" in gen and "bottleneck" not in gen  # perftui and the machine: always


async def test_protocols_panel_for_websocket_plans():
    backend = ScriptedBackend()
    app = PerftuiApp(load_plan(ROOT / "plans" / "websocket.toml"), backend=backend, start=True)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        assert screen.has_class("-protocols")
        await until(pilot, lambda: backend.coord.state == "running")
        backend.coord.step(4)
        await redraw(pilot, screen)
        text = text_of(screen.query_one(ProtocolsPanel))
        summary = backend.coord.session.protocol_summary()
        assert "WebSocket" in text and f"opened {summary.ws.connections_opened:,}" in text
        assert "messages" in text and "sent" in text and "received" in text
        assert "connect" in text and "RTT" in text and "p95" in text
        assert "GraphQL" not in text and "MCP" not in text
        assert "not monitored" in str(screen.query_one(ProtocolsPanel).border_subtitle)


# ---- secrets stay off the screen -------------------------------------------------------------


async def test_picker_preview_never_shows_a_secret(tmp_path, monkeypatch):
    token = "s3cr3t-t0ken-from-the-env"
    monkeypatch.setenv("TOKEN", token)
    plans = tmp_path / "plans"
    plans.mkdir()
    write_plan(plans, """
        name = "secret plan"
        target = "demo"
        [defaults]
        headers = { X-Api-Key = "literal-api-key-123" }
        [[phases]]
        duration = "10s"
        arrival_rate = 5
        [[scenarios]]
        steps = [{ url = "/api/users", headers = { Authorization = "Bearer ${TOKEN}" } }]
    """, name="secret.toml")
    backend = ScriptedBackend()
    app = PerftuiApp(plan_dirs=[(plans, "plans/")], backend=backend)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        body = text_of(picker.body)
        assert "Authorization: ***" in body and "X-Api-Key: ***" in body
        assert token not in body and "literal-api-key-123" not in body
        assert token not in app.export_screenshot()
        await pilot.press("enter")  # the dashboard: header, thresholds, ... never show it either
        screen = await dashboard(pilot, app)
        await redraw(pilot, screen)
        assert token not in app.export_screenshot()


# ---- attach mode -------------------------------------------------------------------------------


def _run_info(sessions: Path) -> dict:
    return json.loads(next(sessions.glob("*/run.json")).read_text())


async def test_attached_dashboard_pauses_detaches_and_stops_the_background_run(tmp_path, demo, monkeypatch):
    """perftui run --detach, then the attached dashboard: p pauses the background run, q detaches
    (the run goes on), a second viewer's x (confirmed) stops it and shows its results."""
    from perftui.run.attach import RemoteCoordinator
    from perftui.ui.app import attached_app
    from perftui.ui.screens.prompts import ConfirmStop
    from tests.conftest import run_cli

    sessions = tmp_path / "sessions"
    monkeypatch.setenv("PERFTUI_SESSIONS_DIR", str(sessions))
    plan = write_plan(tmp_path, f"""
        name = "attached"
        target = "{demo.url}"
        [[phases]]
        name = "steady"
        duration = "60s"
        arrival_rate = 20
        [[scenarios]]
        steps = [{{ url = "/api/users" }}]
    """)
    done = await asyncio.to_thread(run_cli, "run", str(plan), "--detach", "--workers", "1",
                                   env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert done.returncode == 0, done.stderr
    info = _run_info(sessions)
    socket_path = info["socket"]

    async def remote_state() -> str:
        other = RemoteCoordinator(socket_path)
        await other.connect()
        try:
            return other.state
        finally:
            await other.detach()

    try:
        remote = RemoteCoordinator(socket_path)
        await remote.connect()
        app = attached_app(remote, refresh=4.0)
        seen: dict = {}

        async def viewer(pilot):
            screen = await dashboard(pilot, app)
            await until(pilot, lambda: remote.state == "running" and len(remote.session.timeline) >= 1, 10)
            await redraw(pilot, screen)
            header = text_of(screen.query_one(HeaderBar))
            seen["header"] = header
            seen["footer"] = [fk.description for fk in screen.query("FooterKey")]
            await pilot.press("p")
            await until(pilot, lambda: remote.state == "paused", 5)
            seen["other"] = await remote_state()  # a second viewer sees the pause too
            await pilot.press("e")  # the replica as this viewer has it, next to the run's files
            seen["export"] = notifications(app)[-1]
            await pilot.press("q")

        code = await asyncio.wait_for(serve(app, headless=True, size=(160, 48), auto_pilot=viewer), 30)
        assert code == 0 and app.controller.detached
        assert "attached" in seen["header"] and info["id"] in seen["header"] and demo.url in seen["header"]
        assert "detach" in seen["footer"] and "quit" not in seen["footer"] and "start" not in seen["footer"]
        assert seen["other"] == "paused"
        export = next(sessions.glob("*/attached-export.json"))
        assert str(export) in seen["export"] and json.loads(export.read_text())["id"] == info["id"]
        # the background run goes on without any viewer
        await asyncio.sleep(0.3)
        assert _run_info(sessions)["state"] == "running"
        assert await remote_state() == "paused"

        # the terminal goes away (SIGHUP): detach too
        remote_h = RemoteCoordinator(socket_path)
        await remote_h.connect()
        app_h = attached_app(remote_h)

        async def hangup(pilot):
            await dashboard(pilot, app_h)
            os.kill(os.getpid(), signal.SIGHUP)

        assert await asyncio.wait_for(serve(app_h, headless=True, size=(100, 30), auto_pilot=hangup), 20) == 0
        assert app_h.controller.detached and await remote_state() == "paused"

        # a second viewer stops it with x (asked first), then sees its results
        remote2 = RemoteCoordinator(socket_path)
        await remote2.connect()
        app2 = attached_app(remote2, refresh=4.0)

        async def stopper(pilot):
            await dashboard(pilot, app2)
            await pilot.press("p")  # resume
            await until(pilot, lambda: remote2.state == "running", 5)
            await pilot.press("x")
            assert isinstance(app2.screen, ConfirmStop)
            await pilot.press("n")
            assert remote2.state == "running"
            await pilot.press("x", "y")
            await until(pilot, lambda: isinstance(app2.screen, ResultsScreen), 15)
            seen["written"] = text_of(app2.screen.query_one("#written"))
            await pilot.press("q")

        code = await asyncio.wait_for(serve(app2, headless=True, size=(160, 48), auto_pilot=stopper), 40)
        assert code == 0 and not app2.controller.detached
        assert remote2.session.end_reason == "stopped by user (attached viewer)"
        assert remote2.session_file and remote2.session_file in seen["written"]
        for _ in range(100):
            if _run_info(sessions)["state"] == "finished":
                break
            await asyncio.sleep(0.1)
        assert _run_info(sessions)["state"] == "finished"
        assert json.loads(Path(remote2.session_file).read_text())["end_reason"] == "stopped by user (attached viewer)"
    finally:
        if _run_info(sessions)["state"] == "running":  # never leave a background run behind
            try:
                last = RemoteCoordinator(socket_path)
                await last.connect()
                await last.stop("test cleanup")
            except OSError:
                os.kill(info["pid"], signal.SIGINT)


def test_attach_to_a_socket_that_is_gone_says_so(tmp_path, capsys):
    from perftui.ui.app import run_attached

    assert run_attached(str(tmp_path / "gone.sock"), refresh=4.0) == 2
    err = capsys.readouterr().err
    assert "cannot attach to" in err and "gone.sock" in err


# ---- target faults -------------------------------------------------------------------------


async def test_dashboard_stays_responsive_while_the_target_hangs(tmp_path):
    """The real engine against a target that accepts connections and never answers (the peer runs
    in this loop, like the app): keys still act within half a second; errors show timeouts."""
    from tests.http_peers import HANG, RawPeer

    async with RawPeer(lambda r: [HANG]) as peer:
        plan = write_plan(tmp_path, f"""
            name = "hanging target"
            target = "http://127.0.0.1:{peer.port}"
            [defaults]
            timeout = "400ms"
            [[phases]]
            name = "first"
            duration = "30s"
            arrival_rate = 20
            [[phases]]
            name = "second"
            duration = "30s"
            arrival_rate = 20
            [[scenarios]]
            steps = [{{ url = "/never" }}]
        """)
        app = PerftuiApp(load_plan(plan), workers=1, out=str(tmp_path / "hang.json"))
        loop = asyncio.get_running_loop()
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                screen = await dashboard(pilot, app)
                c = app.controller
                await pilot.press("s")
                await until(pilot, lambda: c.state == "running", timeout=15)
                await until(pilot, lambda: c.coord.session.summary().error_kinds.get("timeout", 0) >= 5, timeout=10)

                async def prompt(key: str, done) -> float:
                    t0 = loop.time()
                    await pilot.press(key)
                    await until(pilot, done, timeout=5.0)
                    return loop.time() - t0

                # well under 0.5 s on a quiet machine (a blocked loop would wait out the 400 ms
                # timeouts again and again); 5 s leaves room for a machine with both cores busy
                assert await prompt("p", lambda: c.state == "paused") < 5.0
                assert await prompt("p", lambda: c.state == "running") < 5.0
                assert await prompt("n", lambda: c.coord.phase_index == 1) < 5.0
                assert await prompt("plus", lambda: c.coord.override is not None and abs(c.coord.override - 22) < 1e-6) < 5.0
                assert "phase 2/2 second" in text_of(screen.query_one(HeaderBar))
                await until(pilot, lambda: screen.errors is not None and "timeout" in text_of(screen.errors), timeout=3)
                errors = text_of(screen.errors)
                assert "timeout" in errors and "no errors so far" not in errors
                assert peer.connections > 0
                await pilot.press("x")
                await until(pilot, lambda: isinstance(app.screen, ResultsScreen), timeout=10)
        finally:
            if app.controller is not None:
                await app.controller.shutdown("test over")
                app.controller.close_target()
    doc = json.loads((tmp_path / "hang.json").read_text())
    assert set(doc["summary"]["error_kinds"]) == {"timeout"}


def test_target_panel_of_a_viewer_that_attached_after_the_first_scrape():
    """The series list comes with the first scrape; a replica that missed it still charts what
    it has seen (by name)."""
    from perftui.monitor.model import MetricsSample
    from perftui.monitor.state import MonitorState
    from perftui.ui.widgets.target import target_renderable

    mon = MonitorState()
    mon.configure(health=[], metrics_url="http://t/metrics", live=False)
    mon.apply(MetricsSample(t=1.0, ok=True, values={"queue depth": 4.0}))
    assert mon.metric_names() == []
    console = Console(width=80, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(target_renderable(mon, [], 70, 10, 10.0))
    text = console.export_text()
    assert "queue depth" in text and "4.00" in text


# ---- a terminal that stops reading, then goes away -------------------------------------------


def test_writer_never_blocks_and_survives_a_dead_terminal(monkeypatch):
    import time as _time

    from perftui.ui import driver

    monkeypatch.setattr(driver, "STOP_WAIT_S", 0.3)

    class Gone:
        def write(self, text):
            raise OSError(5, "Input/output error")

        def flush(self):
            raise OSError(5, "Input/output error")

    w = driver.SafeWriterThread(Gone())
    w.start()
    for _ in range(500):
        w.write("frame")
    w.stop()
    assert w.broken and not w.is_alive()

    # a terminal nobody reads (a frozen link): writes return at once, frames are dropped
    r, wfd = os.pipe()
    frozen = os.fdopen(wfd, "w")
    w = driver.SafeWriterThread(frozen)
    w.start()
    start = _time.monotonic()
    for _ in range(400):
        w.write("x" * 10_000)
    assert _time.monotonic() - start < 5.0 and w.dropped > 0  # a blocking write would never return
    start = _time.monotonic()
    w.stop()  # bounded even though the thread is stuck in write()
    assert _time.monotonic() - start < 5.0
    os.close(r)  # the link closes: the stuck write fails, the thread ends
    w.join(2)
    assert not w.is_alive()


def test_frozen_then_closed_terminal_still_stops_the_run_and_writes_the_session(tmp_path, demo):
    """The dashboard on a pty nobody reads for a while (a frozen SSH link), then the link closes:
    the process stops the run, writes the session and exits 130, leaving no worker behind. (With
    Textual's stock writer thread it hung for good: the thread died on EIO with its queue full.)"""
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios
    import time as _time

    import psutil

    plan = write_plan(tmp_path, f"""
        name = "frozen link"
        target = "{demo.url}"
        [[phases]]
        duration = "60s"
        arrival_rate = 10
        [[scenarios]]
        steps = [{{ url = "/api/users" }}]
    """)
    out = tmp_path / "frozen.json"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("CI", None)  # CI=true means "no dashboard"; this test is about the dashboard
    # 10 Hz: the writer's queue (30 frames) fills within a few seconds of the link freezing
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--start", "--workers", "1",
                             "--refresh", "10", "--out", str(out)], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        end = _time.monotonic() + 3
        while _time.monotonic() < end:  # a working link: the dashboard is up and running
            try:
                os.read(master, 65536)
            except BlockingIOError:
                _time.sleep(0.02)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers
        _time.sleep(5)  # frozen: nobody reads (the pty, then the writer queue fill up)
        os.close(master)  # the link goes away
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(45) == 130  # the bug was a hang for good; 45 s tolerates a loaded machine
        doc = json.loads(out.read_text())
        assert doc["end_reason"] == "interrupted (SIGHUP)" and doc["summary"]["requests"] > 0
        _time.sleep(0.5)
        assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_next_in_the_last_phase_asks_before_ending_the_run(tmp_path):
    backend = ScriptedBackend()
    app = PerftuiApp(sample_plan(phases=[{"name": "only", "duration": "30s", "arrival_rate": 10}]),
                     backend=backend, out=str(tmp_path / "s.json"))
    async with app.run_test(size=(160, 48)) as pilot:
        await dashboard(pilot, app)
        coord = backend.coord
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(2)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmEndRun)
        assert coord.state == "running" and ("next_phase",) not in coord.calls
        await pilot.press("n")  # pressed twice by habit: keeps the run going
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen) and coord.state == "running"
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: coord.finished.is_set())
    assert coord.session.end_reason == "skipped past the last phase"


async def test_scaling_during_a_ramp_scales_both_ends(tmp_path):
    backend = ScriptedBackend()
    app = PerftuiApp(sample_plan(), backend=backend, out=str(tmp_path / "s.json"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(5)  # halfway up the 20→60/s ramp: 40/s
        await pilot.press("plus")
        spec = coord.current
        assert (spec.start_value, spec.end_value) == (pytest.approx(22.0), pytest.approx(66.0))
        assert coord.override is None  # still a ramp, not a flat rate
        assert coord.target_now()[0] == pytest.approx(44.0)
        coord.step(5)
        assert coord.session.timeline[-1].target_rps > 60  # the ramp went on climbing, scaled
        assert any("ramp → 22→66/s" in m for m in notifications(app))
        await redraw(pilot, screen)
        assert "22→66/s" in text_of(screen.query_one(PhaseStrip))
        # a flat phase still takes a flat value
        await until(pilot, lambda: coord.phase_index == 1)
        await pilot.press("minus")
        assert coord.override == pytest.approx(54.0)


def test_rss_trend_is_shown_once_there_is_a_minute_of_samples():
    from perftui.monitor.model import ProcessSample
    from perftui.monitor.state import MonitorState
    from perftui.ui.widgets.target import process_line

    mon = MonitorState()
    mon.configure(process_spec="target")

    def line(upto: int, start: int = 0) -> str:
        for t in range(start, upto):  # 0.4 MB a second: 1,440 MB/h
            mon.apply(ProcessSample(t=float(t), interval=1.0, sut={"cpu_percent": 5.0, "rss_mb": 60 + 0.4 * t},
                                    sut_pid=4242, sut_name="demo"))
        return process_line(mon).plain

    assert "measuring… (needs 1m)" in line(10) and "MB/h" not in line(10, 10)
    assert "+1,440.0 MB/h" in line(70, 20)


async def test_a_threshold_on_a_growing_count_waits_for_the_end_of_the_run(tmp_path):
    backend = ScriptedBackend()
    plan = sample_plan(thresholds=["requests > 100000", "p95 < 1ms", "errors < 1000000"],
                       phases=[{"name": "short", "duration": "4s", "arrival_rate": 20}])
    app = PerftuiApp(plan, backend=backend, out=str(tmp_path / "s.json"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(2)
        await redraw(pilot, screen)
        panel = text_of(screen.query_one(ThresholdsPanel))
        line = next(ln for ln in panel.splitlines() if "requests > 100000" in ln)
        assert "wait" in line and "so far, needs > 100000" in line and "FAIL" not in line, panel
        assert "FAIL" in next(ln for ln in panel.splitlines() if "p95 < 1ms" in ln)  # latency: as it stands
        assert "wait" in next(ln for ln in panel.splitlines() if "errors < 1000000" in ln)
        coord.step(3)  # the run ends: now the verdicts are final
        await until(pilot, lambda: app.controller.ended)
        screen.thresholds.show_results(list(app.controller.plan.thresholds), coord.session.threshold_results,
                                       live=not app.controller.ended)
        await pilot.pause()
        panel = text_of(screen.thresholds)
        assert "FAIL" in next(ln for ln in panel.splitlines() if "requests > 100000" in ln)
        assert "pass" in next(ln for ln in panel.splitlines() if "errors < 1000000" in ln)


async def test_control_characters_and_brackets_in_names_reach_the_screen_escaped(tmp_path):
    evil = "\x1b[2J\x1b]0;pwned\x07"
    plan = sample_plan(
        name=f"plan{evil}",
        phases=[{"name": f"phase{evil}", "duration": "30s", "arrival_rate": 10}],
        scenarios=[{"steps": [{"url": "/api/users", "name": f"step{evil}[/]"}]}],
        thresholds=[f"p95{{step{evil}[/]}} < 1s"],
    )
    backend = ScriptedBackend()
    app = PerftuiApp(plan, backend=backend, out=str(tmp_path / "s.json"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(3)
        await redraw(pilot, screen)
        shown = "\n".join(text_of(w) for w in (screen.query_one(HeaderBar), screen.query_one(PhaseStrip),
                                               screen.query_one(ThresholdsPanel)))
        table = screen.query_one(EndpointsTable)
        shown += "\n" + "\n".join(table.get_row_at(i)[0].plain for i in range(table.row_count))
        assert "plan\\x1b[2J\\x1b]0;pwned\\x07" in shown
        assert "phase\\x1b[2J" in shown
        assert "step\\x1b[2J\\x1b]0;pwned\\x07[/]" in shown  # the brackets are text, not markup
        assert "✓ pass" in shown  # the threshold still names its endpoint
        svg = app.export_screenshot()
        assert "\x1b" not in shown + svg and "\x07" not in shown + svg


async def test_toasts_do_not_cover_the_errors_panel_or_the_headline(tmp_path):
    from textual.widgets._toast import Toast

    for size, monitored in (((160, 48), False), ((160, 48), True), ((120, 40), False), ((80, 24), False)):
        backend = ScriptedBackend()
        app = PerftuiApp(monitored_plan() if monitored else sample_plan(), backend=backend,
                         out=str(tmp_path / "s.json"))
        async with app.run_test(size=size, notifications=True) as pilot:
            screen = await dashboard(pilot, app)
            coord = backend.coord
            await pilot.press("s")
            await until(pilot, lambda: coord.state == "running")
            coord.step(3, error_rate=0.2)
            await redraw(pilot, screen)
            for i in range(3):
                app.notify(f"worker {i} died\nsecond line", title="worker", severity="warning")
            await pilot.pause(0.3)
            toasts = [t.region for t in app.screen.query(Toast)]
            assert toasts, size
            covered = [screen.errors.region, screen.header.region, screen.phase_strip.region]
            for toast in toasts:
                for region in covered:
                    assert not toast.overlaps(region), (size, monitored, toast, region)


async def test_at_80x24_the_headline_numbers_show_without_scrolling():
    from textual.widget import Widget

    backend = ScriptedBackend()  # more endpoints than the narrow table has rows
    plan = sample_plan(scenarios=[{"steps": [{"url": f"/api/e{i}"} for i in range(14)]}], thresholds=["p95 < 1s"])
    app = PerftuiApp(plan, backend=backend)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await dashboard(pilot, app)
        coord = backend.coord
        await pilot.press("s")
        await until(pilot, lambda: coord.state == "running")
        coord.step(4, latency_ms=20, error_rate=0.05)
        await redraw(pilot, screen)
        header = screen.query_one(HeaderBar)
        assert header.region.bottom <= 24 and header.region.y == 0
        text = text_of(header, width=80)
        window = coord.session.window_summary()
        for needle in ("phase 1/4 warm up", "req ", f"{window.rps:.1f}/s", "iter ", "p50 ", "p95 ", "p99 ", "err "):
            assert needle in text, (needle, text)
        assert format_ms(window.latency_ms.p95) in text and format_ms(window.latency_ms.p99) in text
        assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
        # one scrollbar at most: the column's, none inside it
        scrolling = [w for w in screen.query(Widget) if w.show_vertical_scrollbar and w.display]
        assert [w.id for w in scrolling] in ([], ["body"]), [w.id for w in scrolling]
