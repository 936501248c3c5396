"""[[setup]], [[on_start]], [[teardown]] and benchmark plans, run headless against the demo
target (a real server on 127.0.0.1 started here), counted on the server's own /metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from perftui.planload import load_plan
from perftui.run.clock import plan_specs
from tests.conftest import ROOT, read_session, run_cli, write_plan

LOGIN = '''
[[setup]]
method = "POST"
url = "/auth/login"
json = {{ username = "loadtest", password = "{password}" }}
capture = [{{ json = "$.tokens.accessToken", as = "token" }}]
'''


def served(url: str) -> dict[tuple[str, str], int]:
    """(method, route) -> requests the demo target answered, from its Prometheus counter."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out: dict[tuple[str, str], int] = {}
    for m in re.finditer(r'^demo_http_requests_total\{method="(\w+)",route="([^"]+)",status="\d+"\} ([\d.e+]+)$', text, re.M):
        key = (m.group(1), m.group(2))
        out[key] = out.get(key, 0) + int(float(m.group(3)))
    return out


def bench_plan(tmp_path, url: str, *, iterations=23, warmup=7, concurrency=4, password="loadtestpassword", extra=""):
    return write_plan(tmp_path, f'''
        name = "bench"
        target = "{url}"
        {LOGIN.format(password=password)}
        [[on_start]]
        url = "/api/users"
        capture = [{{ json = "$.items[1].id", as = "uid" }}]

        [[teardown]]
        url = "/notifications"
        headers = {{ Authorization = "Bearer {{{{ token }}}}" }}

        [[scenarios]]
        name = "profile"
        benchmark = {{ iterations = {iterations}, warmup_iterations = {warmup}, concurrency = {concurrency} }}
        [[scenarios.steps]]
        url = "/api/profile"
        headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
        [[scenarios.steps]]
        url = "/api/users/{{{{ uid }}}}"
        {extra}
    ''')


def test_benchmark_plan_has_one_phase_per_scenario(tmp_path):
    path = bench_plan(tmp_path, "http://127.0.0.1:9")
    specs = plan_specs(load_plan(path).plan)
    assert [(s.kind, s.name, s.iterations, s.warmup, s.start_value) for s in specs] == [("benchmark", "profile", 23, 7, 4)]
    assert specs[0].describe() == "23 samples after 7 warm-up, 4 at a time"


def test_exact_counts_over_three_workers_setup_once_on_start_per_user(tmp_path, fresh_demo):
    demo = fresh_demo()
    path = bench_plan(tmp_path, demo.url)
    out = tmp_path / "s.json"
    r = run_cli("run", str(path), "--headless", "--workers", "3", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = served(demo.url)
    # warm-up and measured iterations reach the server; only the measured ones are in the figures
    assert counts[("GET", "/api/profile")] == 30
    assert counts[("GET", "/api/users/{id}")] == 30
    assert counts[("POST", "/auth/login")] == 1  # one setup for all workers and users
    assert counts[("GET", "/api/users")] == 4  # on_start once per virtual user (concurrency 4)
    assert counts[("GET", "/notifications")] == 1  # teardown once, with the setup's token
    doc = read_session(out)
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert eps["GET /api/profile"]["requests"] == 23 and eps["GET /api/profile"]["errors"] == 0
    assert eps["GET /api/users/{{ uid }}"]["requests"] == 23
    assert "POST /auth/login" not in eps and "GET /notifications" not in eps
    assert doc["summary"]["requests"] == 46
    assert doc["benchmark"] == [{"scenario": "profile", "phase": 0, "iterations": 23, "warmup_iterations": 7,
                                 "concurrency": 4, "measured": 23, "warmed": 7,
                                 "endpoints": ["GET /api/profile", "GET /api/users/{{ uid }}"]}]
    assert doc["setup"]["ok"] and doc["setup"]["captured"] == ["token"]
    assert [e["name"] for e in doc["setup"]["endpoints"]] == ["POST /auth/login"]
    assert doc["setup"]["endpoints"][0]["status_codes"] == {"200": 1}
    assert doc["teardown"]["ok"] and doc["teardown"]["endpoints"][0]["status_codes"] == {"200": 1}
    assert doc["end_reason"] == "completed"
    # the table, as the seed's benchmark script prints it
    table = r.stdout[r.stdout.index("\nbenchmark\n"):]
    assert re.search(r"operation\s+samples\s+errors\s+min\s+max\s+mean\s+median\s+p95\s+p99", table)
    assert re.search(r"GET /api/profile\s+23\s+0\s", table)
    assert "profile: 23 measured iteration(s) after 7 warm-up (not counted), 4 at a time" in table
    assert "setup          ok in" in r.stdout and "captured token" in r.stdout


def test_setup_failure_stops_before_any_load(tmp_path, fresh_demo):
    demo = fresh_demo()
    path = bench_plan(tmp_path, demo.url, password="wrong")
    out = tmp_path / "s.json"
    r = run_cli("run", str(path), "--headless", "--workers", "2", "--out", str(out), timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "setup failed: step 'POST /auth/login': HTTP 401 (http_4xx)" in r.stdout
    counts = served(demo.url)
    assert counts == {("POST", "/auth/login"): 1}  # no on_start, no load, no teardown
    doc = read_session(out)
    assert doc["end_reason"].startswith("setup failed") and doc["partial"]
    assert doc["setup"]["ok"] is False and doc["summary"]["requests"] == 0 and doc["teardown"] is None


def test_setup_token_shared_by_closed_model_users_and_on_start_per_user(tmp_path, fresh_demo):
    demo = fresh_demo()
    path = write_plan(tmp_path, f'''
        target = "{demo.url}"
        {LOGIN.format(password="loadtestpassword")}
        [[on_start]]
        url = "/api/users"
        [[phases]]
        duration = "2s"
        vus = 3
        [[scenarios]]
        [[scenarios.steps]]
        url = "/api/profile"
        headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
        think = "50ms"
    ''')
    out = tmp_path / "s.json"
    r = run_cli("run", str(path), "--headless", "--workers", "2", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = served(demo.url)
    assert counts[("POST", "/auth/login")] == 1
    assert counts[("GET", "/api/users")] == 3  # one per virtual user, not per iteration
    assert counts[("GET", "/api/profile")] > 10
    doc = read_session(out)
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert eps["GET /api/profile"]["errors"] == 0  # every user sent the setup's token
    assert eps["GET /api/users"]["requests"] == 3  # on_start requests are part of the load's figures


def test_teardown_runs_after_ctrl_c(tmp_path, fresh_demo):
    demo = fresh_demo()
    path = write_plan(tmp_path, f'''
        target = "{demo.url}"
        {LOGIN.format(password="loadtestpassword")}
        [[teardown]]
        method = "POST"
        url = "/echo"
        json = {{ bye = "{{{{ token }}}}" }}
        [[phases]]
        duration = "60s"
        vus = 1
        [[scenarios]]
        [[scenarios.steps]]
        url = "/api/users"
        think = "20ms"
    ''')
    out = tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(path), "--headless", "--workers", "1",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and served(demo.url).get(("GET", "/api/users"), 0) < 5:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stdout + stderr
    assert served(demo.url)[("POST", "/echo")] == 1
    doc = read_session(out)
    assert doc["teardown"]["ok"] and doc["partial"]
    assert "teardown       ok in" in stdout


def test_compare_flags_a_slowdown_between_two_benchmark_runs(tmp_path, fresh_demo):
    """The same benchmark against the demo with 5 ms and then 25 ms of added latency: the
    threshold passes, then fails (it applies to the samples); compare calls it a regression."""
    docs = []
    for latency, code in (("5ms", 0), ("25ms", 1)):
        demo = fresh_demo(latency=latency)
        path = write_plan(tmp_path, f'''
            target = "{demo.url}"
            thresholds = ["p50{{GET /api/users}} < 15ms"]
            [[scenarios]]
            name = "users"
            benchmark = {{ iterations = 40, warmup_iterations = 5 }}
            [[scenarios.steps]]
            url = "/api/users"
        ''', name=f"{latency}.toml")
        out = tmp_path / f"{latency}.json"
        r = run_cli("run", str(path), "--headless", "--workers", "2", "--out", str(out), timeout=120)
        assert r.returncode == code, r.stdout + r.stderr
        assert read_session(out)["endpoints"][0]["requests"] == 40
        docs.append(out)
        demo.stop()
    r = run_cli("compare", str(docs[0]), str(docs[1]), "--json", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [row for row in json.loads(r.stdout)["rows"] if row["scope"] == "GET /api/users" and row["metric"] == "p50"]
    assert rows and rows[0]["direction"] == "worse" and rows[0]["level"] in ("major", "critical")
    assert rows[0]["p"] is not None and rows[0]["p"] < 0.001  # 40 samples each: a real test, not a guess
    every = json.loads(r.stdout)["rows"]
    run_p50 = next(row for row in every if row["scope"] == "run" and row["metric"] == "p50")
    assert run_p50["test"] == "histogram" and run_p50["p"] < 0.001 and run_p50["direction"] == "worse"
    assert all(row["level"] == "none" and row["p"] is None for row in every if row["metric"] == "max")


@pytest.mark.parametrize("text, offset, where, message", [
    ('[[phases]]\nduration = "1s"\nvus = 1\n', 0, "phases", "a benchmark plan runs each scenario's [scenarios.benchmark] instead of phases"),
    ('[[scenarios]]\n[[scenarios.steps]]\nurl = "/"\n', 0, "scenarios[2]", "in a benchmark plan every scenario is benchmarked"),
    ('[[setup]]\nws_connect = "/ws"\n', 1, "setup[1].ws_connect", "WebSocket steps belong in scenarios"),
])
def test_bad_stage_plans_name_file_line_and_key(tmp_path, text, offset, where, message):
    base = 'target = "http://127.0.0.1:9"\n[[scenarios]]\nbenchmark = { iterations = 5 }\n[[scenarios.steps]]\nurl = "/"\n'
    path = tmp_path / "bad.toml"
    path.write_text(base + text)
    r = run_cli("validate", str(path))
    assert r.returncode == 2
    line = base.count("\n") + 1 + offset
    assert f"{path}:{line}: {where}: {message}" in r.stderr, r.stderr


def test_bad_benchmark_values(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('target = "http://127.0.0.1:9"\n[[scenarios]]\n'
                    'benchmark = { iterations = 0, warmup_iterations = -1, concurrency = 2.5 }\n'
                    '[[scenarios.steps]]\nurl = "/"\n')
    r = run_cli("validate", str(path))
    assert r.returncode == 2
    assert f"{path}:3: scenarios[1].benchmark.iterations: must be a number of samples from 1" in r.stderr
    assert f"{path}:3: scenarios[1].benchmark.warmup_iterations: must be from 0 (no warm-up)" in r.stderr
    assert f"{path}:3: scenarios[1].benchmark.concurrency: expected an integer, got a number (2.5)" in r.stderr


def test_a_benchmark_cut_by_max_duration_says_so_and_the_next_one_runs(tmp_path, fresh_demo):
    demo = fresh_demo(latency="40ms")
    path = write_plan(tmp_path, f'''
        target = "{demo.url}"
        [[scenarios]]
        name = "slow"
        benchmark = {{ iterations = 1000, max_duration = "1500ms" }}
        [[scenarios.steps]]
        url = "/api/users"
        [[scenarios]]
        name = "quick"
        benchmark = {{ iterations = 12, warmup_iterations = 3, concurrency = 2 }}
        [[scenarios.steps]]
        url = "/api/bounties"
    ''')
    out = tmp_path / "s.json"
    r = run_cli("run", str(path), "--headless", "--workers", "2", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = read_session(out)
    slow, quick = doc["benchmark"]
    assert 0 < slow["measured"] < 1000
    assert quick["measured"] == 12 and quick["warmed"] == 3
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert eps["GET /api/bounties"]["requests"] == 12
    # what was cut off in flight is an interrupted sample, never a silent one
    assert eps["GET /api/users"]["requests"] - eps["GET /api/users"]["errors"] == slow["measured"]
    assert f"slow: {slow['measured']:,} measured iteration(s), 1 at a time — {1000 - slow['measured']:,} short of 1,000" in r.stdout


def test_rate_and_vus_do_not_apply_to_a_benchmark_plan(tmp_path):
    path = bench_plan(tmp_path, "http://127.0.0.1:9")
    r = run_cli("run", str(path), "--headless", "--vus", "3")
    assert r.returncode == 2
    assert "--vus: --vus replaces the phases, and a benchmark plan has none" in r.stderr


def test_a_benchmark_phase_has_nothing_to_scale():
    from perftui.run.clock import PhaseClock, PhaseSpec

    clock = PhaseClock([PhaseSpec("b", "benchmark", 600.0, 2, 2, scenario=0, iterations=10, warmup=0)], now=lambda: 0.0)
    clock.start()
    assert clock.scale_by(1.1) is None and clock.current.start_value == 2
    t = clock.skip("done")
    assert t is not None and t.entered is None and t.reason == "done"


def test_checkpoints_keep_the_setup_and_benchmark_records():
    """What ``perftui recover`` and an attached viewer rebuild a session from."""
    import msgspec

    from perftui.journal import Checkpoint, capture, restore
    from perftui.session import SessionRecord
    from perftui.session.stages import BenchmarkRecord, StageRecord

    s = SessionRecord(plan_name="p", plan_file=None, plan_dict={}, target="t", workers=1, phases=[])
    s.setup = StageRecord(ok=True, duration_s=0.1, captured=["token"])
    s.benchmark = [BenchmarkRecord(scenario="a", phase=0, iterations=5, warmup_iterations=1, concurrency=1,
                                   measured=5, endpoints=["GET /x"])]
    cp = msgspec.msgpack.decode(msgspec.msgpack.encode(capture(s, with_timeline=True)), type=Checkpoint)
    back = restore(cp)
    assert back.setup == s.setup and back.benchmark == s.benchmark and back.teardown is None


async def test_dashboard_shows_the_benchmark_table_live_and_in_the_results(tmp_path):
    """The real coordinator, two workers and the embedded demo target: the endpoints table is the
    benchmark table, its samples count up to what was asked, and the results show it."""
    from textual.widgets import Static

    from perftui.ui.app import PerftuiApp
    from perftui.ui.screens.dashboard import DashboardScreen
    from perftui.ui.screens.results import ResultsScreen
    from perftui.ui.widgets.benchmark import BenchmarkTable
    from tests.test_ui import text_of, until

    plan = write_plan(tmp_path, f'''
        name = "ui bench"
        target = "demo"
        [demo]
        latency = "20ms"
        {LOGIN.format(password="loadtestpassword")}
        [[scenarios]]
        name = "users"
        benchmark = {{ iterations = 60, warmup_iterations = 4, concurrency = 2 }}
        [[scenarios.steps]]
        name = "list users"
        url = "/api/users"
    ''')
    app = PerftuiApp(load_plan(plan), workers=2, out=str(tmp_path / "s.json"), start=True)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.controller is not None and app.controller.coord is not None, timeout=15)
            await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
            screen = app.screen
            table = screen.query_one(BenchmarkTable)
            await until(pilot, lambda: app.controller.coord.session.endpoints.get("list users") is not None, timeout=20)
            screen.tick_numbers()
            await pilot.pause()
            assert [str(k.value) for k in table.rows] == ["list users"]
            assert table.get_cell("list users", "requests").plain.endswith("/60")
            await until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.query("#results-stages"),
                        timeout=30)
            shown = text_of(app.screen.query_one("#results-endpoints", Static))
            assert "median" in shown and "60/60" in shown
            assert "captured token" in text_of(app.screen.query_one("#results-stages", Static))
    finally:
        if app.controller is not None:
            await app.controller.shutdown("test over")
            app.controller.close_target()
    doc = read_session(tmp_path / "s.json")
    assert doc["benchmark"][0]["measured"] == 60 and doc["endpoints"][0]["requests"] == 60
