"""The breaking-point search (``perftui find-limit``, ``[find_limit]``) against targets of known
capacity on 127.0.0.1 (``tests/capacity_peer.py``): it lands near the capacity, records every
step and the recovery, says so when nothing broke, never takes perftui's own limit for the
target's, and refuses bad input with exit 2."""

from __future__ import annotations

import pytest

from capacity_peer import CapacityPeer
from conftest import read_session, run_cli, write_plan

PLAN = """
name = "capacity"
target = "http://127.0.0.1:1"
{extra}
[[scenarios]]
[[scenarios.steps]]
url = "/work"
"""


def _plan(tmp_path, extra: str = ""):
    return write_plan(tmp_path, PLAN.format(extra=extra))


def test_finds_the_capacity_of_a_target_within_15_percent(tmp_path):
    # 8 requests at once, 40 ms each: the target completes at most 200 requests/s
    plan = _plan(tmp_path, """
[find_limit]
start_rate = 100
step_duration = "2s"
settle = "1s"
p99 = "150ms"
late_rate = 0.05
precision = 0.1
recovery = "20s"
""")
    out = tmp_path / "s.json"
    with CapacityPeer(concurrency=8, hold=0.04) as peer:
        r = run_cli("find-limit", str(plan), "--headless", "--workers", "1", "--target", peer.url,
                    "--out", str(out), timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    fl = read_session(out)["find_limit"]
    limit = fl["limit_rps"]
    assert fl["found"] is True and fl["state"] == "done"
    assert abs(limit - peer.capacity) <= 0.15 * peer.capacity, (limit, fl["verdict"])
    assert fl["broke_rps"] > limit
    assert fl["criterion"] == "p99" and fl["evidence"][0].startswith("p99 ")
    # every step recorded: asked and achieved rate, percentiles, errors, verdict
    steps = fl["steps"]
    assert [s["stage"] for s in steps][:2] == ["raise", "raise"] and "narrow" in {s["stage"] for s in steps}
    broke = steps[fl["broke_step"]]
    assert broke["verdict"] == "broke" and broke["rate"] == fl["broke_rps"]
    assert broke["p99_ms"] > 150 and broke["rps"] < broke["rate"]  # it could not keep up
    held = [s for s in steps if s["verdict"] == "held"]
    assert max(s["rate"] for s in held) == limit
    for s in held:
        assert s["p99_ms"] <= 150 and s["errors"] == 0
        assert s["started_rps"] == pytest.approx(s["rate"], rel=0.1)
    # after each break the load dropped and the target recovered (its queue drained)
    rec = fl["recovery"]
    assert rec["recovered"] is True and rec["rate"] < limit and 0 <= rec["seconds"] <= 20
    assert all(s["recovery"] is not None for s in steps if s["verdict"] == "broke")
    # the headless output: a step table and the verdict
    assert "breaking point · a step breaks on: p99 <= 150ms" in r.stdout
    assert f"✓ limit {limit:g}/s" in r.stdout
    assert r.stdout.count("broke — p99") >= 1


def test_no_limit_below_max_rate_is_exit_1(tmp_path):
    plan = _plan(tmp_path, """
[find_limit]
start_rate = 20
max_rate = 40
step_size = 10
step_duration = "2s"
settle = "0s"
p99 = "500ms"
late_rate = 0.2
""")
    out = tmp_path / "s.json"
    with CapacityPeer(concurrency=8, hold=0.04) as peer:
        r = run_cli("run", str(plan), "--headless", "--workers", "1", "--target", peer.url, "--out", str(out), timeout=120)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    fl = read_session(out)["find_limit"]
    assert fl["found"] is False and fl["limit_rps"] == 40 and fl["broke_rps"] is None
    assert [s["rate"] for s in fl["steps"]] == [20, 30, 40]
    assert all(s["verdict"] == "held" for s in fl["steps"])
    assert "✗ no limit found: the target held every step up to 40/s" in r.stdout
    html = tmp_path / "r.html"
    r = run_cli("report", str(out), "--html", str(html))
    assert r.returncode == 0, r.stderr
    page = html.read_text()
    assert "<h2>Breaking point</h2>" in page and "no limit found</span> · no limit found: the target held" in page
    assert page.count("<span class=\"pass\">held</span>") == 3


def test_a_generator_limited_step_is_never_the_targets_limit(tmp_path):
    # Limits so low that every second counts as perftui's own bottleneck (any CPU at all): the
    # step that overloads the target (20/s) is generator-limited, repeated once, and the search
    # ends without a limit instead of reporting 40/s as the target's.
    plan = _plan(tmp_path, """
[monitor.generator]
cpu_percent = 0.01
cpu_for = "0s"
[find_limit]
start_rate = 40
step_duration = "2s"
settle = "0s"
p99 = "100ms"
""")
    out = tmp_path / "s.json"
    with CapacityPeer(concurrency=1, hold=0.05) as peer:
        r = run_cli("find-limit", str(plan), "--headless", "--workers", "1", "--target", peer.url,
                    "--out", str(out), timeout=120)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    fl = read_session(out)["find_limit"]
    assert fl["found"] is False and fl["broke_rps"] is None
    assert fl["generator_limited_rps"] == 40
    assert [(s["stage"], s["verdict"]) for s in fl["steps"]] == [("raise", "generator-limited"), ("repeat", "generator-limited")]
    assert "perftui was the bottleneck" in fl["steps"][0]["note"]
    assert "no limit found: perftui itself was the bottleneck at 40/s" in r.stdout


def test_bad_find_limit_input_is_exit_2_naming_file_line_and_key(tmp_path):
    plan = _plan(tmp_path, """
[find_limit]
start_rate = 50
step_factr = 2
p99 = "soon"
""")
    r = run_cli("validate", str(plan))
    assert r.returncode == 2
    assert f"{plan}:6: find_limit.step_factr: unknown key \"step_factr\" in [find_limit]; did you mean \"step_factor\"?" in r.stderr
    assert f"{plan}:7: find_limit.p99: expected a duration" in r.stderr
    assert "Traceback" not in r.stderr


def test_find_limit_flags_are_checked_and_named(tmp_path):
    plan = _plan(tmp_path, """
[[phases]]
duration = "5s"
arrival_rate = 5
""")
    r = run_cli("find-limit", str(plan), "--headless", "--error-rate", "150%", "--step-factor", "0.5")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--error-rate: must be a fraction from 0 to below 1" in r.stderr
    assert "--step-factor: must be above 1" in r.stderr
    r = run_cli("find-limit", str(plan), "--headless", "--rate", "10")
    assert r.returncode == 2 and "find-limit chooses the rates itself" in r.stderr
    r = run_cli("find-limit", str(plan), "--headless", "--start-rate", "500", "--max-rate", "100")
    assert r.returncode == 2 and "--max-rate: must not be below start_rate (500/s)" in r.stderr


def test_phases_and_find_limit_exclude_each_other(tmp_path):
    plan = _plan(tmp_path, """
[find_limit]
start_rate = 5
[[phases]]
duration = "5s"
arrival_rate = 5
""")
    r = run_cli("validate", str(plan))
    assert r.returncode == 2
    assert "phases: [find_limit] runs its own steps: remove [[phases]]" in r.stderr


@pytest.mark.serial  # the app and its coordinator share one process: it needs a core
async def test_the_dashboard_shows_the_search_live_and_its_result(tmp_path):
    """The real app, coordinator and worker against a 40 requests/s target: the phase strip
    shows the steps as they go, the results screen the step table and the verdict."""
    from perftui.planload import apply_overrides, load_plan
    from perftui.ui.app import PerftuiApp
    from perftui.ui.screens.results import ResultsScreen
    from perftui.ui.widgets import HeaderBar, PhaseStrip
    from tests.test_ui import dashboard, redraw, text_of, until

    plan = _plan(tmp_path, """
[find_limit]
start_rate = 10
step_factor = 2
step_duration = "1s"
settle = "1s"
p99 = "400ms"
precision = 0.5
recovery = "20s"
""")
    out = tmp_path / "ui.json"
    with CapacityPeer(concurrency=2, hold=0.05, process=True) as peer:
        app = PerftuiApp(apply_overrides(load_plan(plan), target=peer.url), workers=1, out=str(out), start=True)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                screen = await dashboard(pilot, app)
                c = app.controller
                await until(pilot, lambda: c.coord.session.find_limit is not None
                            and any(s.verdict == "held" for s in c.coord.session.find_limit.steps), timeout=30)
                await redraw(pilot, screen)
                strip = screen.query_one(PhaseStrip)
                assert strip.border_title == "find limit"
                assert "✓ 1 10/s" in text_of(strip) and "held · p99" in text_of(strip)
                assert "find limit  step " in text_of(screen.query_one(HeaderBar))
                await until(pilot, lambda: isinstance(app.screen, ResultsScreen)
                            and bool(app.screen.query("#results-limit")), timeout=60)
                results = text_of(app.screen.query_one("#results-limit"))
                verdict = text_of(app.screen.query_one("#verdict"))
        finally:
            if app.controller is not None:
                await app.controller.shutdown("test over")
                app.controller.close_target()
    fl = read_session(out)["find_limit"]
    # never above the capacity (40/s; 80/s must break: its queue alone holds the last request
    # ~1 s). The finder's accuracy is the headless capacity test's to check. The target runs in a
    # process of its own: in the test's process (beside the app and its coordinator), with both
    # cores busy, its answers were held long enough to break a 400 ms p99 at 10/s (the first step).
    assert fl["found"] is True and 10 <= fl["limit_rps"] <= 60, fl["verdict"]
    assert f"LIMIT {fl['limit_rps']:g}/s" in verdict
    assert "1 raise" in results and "broke: p99" in results and fl["verdict"] in results.replace("\n", " ")
    assert app.controller.exit_code() == 0


def test_a_search_killed_mid_way_is_recovered_with_its_steps(tmp_path):
    """kill -9 during the search: ``perftui recover`` keeps the steps the last checkpoint had
    and says the search was cut short."""
    import signal

    from tests.test_sessions import _session_dir, _start, _wait_rows

    plan = _plan(tmp_path, """
[find_limit]
start_rate = 10
step_size = 10
step_duration = "1s"
settle = "0s"
max_rate = 1000
""")
    sessions = tmp_path / "sessions"
    with CapacityPeer(concurrency=8, hold=0.01) as peer:
        proc = _start(["find-limit", str(plan), "--headless", "--workers", "1", "--target", peer.url], sessions)
        try:
            directory = _session_dir(sessions)
            _wait_rows(directory, 7, timeout=60)  # a checkpoint every 2 s: several steps in it
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
    r = run_cli("recover", str(directory), "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    fl = read_session(tmp_path / "r.json")["find_limit"]
    assert fl["state"] == "stopped" and fl["found"] is False
    held = [s["rate"] for s in fl["steps"] if s["verdict"] == "held"]
    assert held[:3] == [10, 20, 30] and fl["limit_rps"] == max(held)
    assert fl["verdict"].startswith(f"search cut short (the run died): held up to {max(held):g}/s")
    assert "✗ search cut short" in r.stdout
