"""The load engine end to end: real worker processes against the real demo target on 127.0.0.1,
driven through the CLI as a user would, plus the coordinator's live-control API in process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from perftui.run.coordinator import Coordinator
from perftui.planload import load_plan
from tests.conftest import ROOT, free_port, read_session, run_cli, write_plan


def _wait_progress(proc: subprocess.Popen, lines: int) -> None:
    """Until the headless run has printed ``lines`` progress lines (one a second once the load
    runs): the run's clock, not the test's, which on a busy machine includes a slow start-up."""
    seen = 0
    while seen < lines:
        line = proc.stdout.readline()
        assert line, "the run ended before it showed progress"
        seen += " p95 " in line


def _health_plan(tmp_path, url: str, duration: str, rate: int):
    """A plan of one open phase, ``rate``/s for ``duration``, each arrival a GET /health."""
    return write_plan(tmp_path, f"""
        target = "{url}"
        [[phases]]
        duration = "{duration}"
        arrival_rate = {rate}
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)


def test_open_model_rate_is_accurate(tmp_path, demo):
    """200 arrivals/s for 5 s: the run keeps to the schedule (never more than 1000 arrivals, and
    the target recorded exactly). How close the achieved rate gets is bench/'s business: with
    both cores busy (the suite beside other work) the bounds here are generous."""
    plan = _health_plan(tmp_path, demo.url, "5s", 200)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    doc = read_session(out)
    s = doc["summary"]
    # one request per arrival: the plan's 1,000 at most (its last phase schedules none past its end,
    # which the coordinator's stop reaches a little later)
    assert 500 <= s["requests"] <= 1000, s["requests"]
    assert s["errors"] == 0
    assert 100 <= s["rps"] <= 210, s["rps"]
    assert 0 <= s["late_starts"] <= s["requests"]
    # the per-second timeline follows the target
    full = [row for row in doc["timeline"] if 1.5 <= row["t"] <= 4.5]
    assert full and all(row["target_rps"] == 200 for row in full)
    started = sum(row["started_rps"] for row in full) / len(full)
    assert 100 <= started <= 230, [row["started_rps"] for row in full]  # catching up after a stall may pass 200
    assert "started" in r.stdout and "session written to" in r.stdout
    # the last, partial second ran at full load too: its row says so, and the summary's count of
    # arrivals asked is the plan's (it read 0/s there, and "asked ~800 ... started 125%")
    assert doc["timeline"][-1]["target_rps"] == 200, doc["timeline"][-1]
    assert "arrivals       asked ~1,000 " in r.stdout, r.stdout
    # the workers' CPU is a share of their cores in every row, the last one's short interval
    # included (counted in 10 ms ticks it read 222 % of one worker's core)
    assert all(row["cpu_percent"] <= 110 * doc["workers"] for row in doc["timeline"]), \
        [row["cpu_percent"] for row in doc["timeline"]]


def test_a_run_ending_within_a_second_shows_and_counts_that_part(tmp_path, demo):
    """1.5 s at 40/s, then 1 s at 80/s: the last half second has its progress line (it had
    none), the arrivals asked are the plan's 140 — the second holding the phase change asks for
    half a second at each rate (it was counted whole at the new phase's rate: "asked ~160"; and
    before that the last row as a whole second too) — and the phases' records and events are
    where their lengths say (the second's event was shown at "2s")."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        duration = "1.5s"
        arrival_rate = 40
        [[phases]]
        duration = "1s"
        arrival_rate = 80
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "2 phase(s), 2.5s planned" in r.stdout, r.stdout
    assert re.search(r"·\s+1\.5\d?s  phase 2/2", r.stdout), r.stdout
    rows = [line for line in r.stdout.splitlines() if " target " in line and " p95 " in line]
    assert re.match(r"\s*2\.\d+s ", rows[-1]), rows  # (the second before: "2s")
    assert "arrivals       asked ~140 " in r.stdout, r.stdout
    # the second holding the change: half a second at each rate (it read "target 80.0/s")
    assert re.search(r"^\s+2s .* target\s+60\.0/s", r.stdout, re.M), r.stdout
    doc = read_session(out)
    assert [round(row["asked"], 1) for row in doc["timeline"]] == [40.0, 60.0, 40.0], doc["timeline"]
    (s1, e1), (s2, e2) = [(p["start"], p["end"]) for p in doc["phases"]]
    assert s1 < 0.1 and (round(e1 - s1, 3), s2, round(e2 - s2, 3)) == (1.5, e1, 1.0), doc["phases"]


def test_two_workers_share_the_rate(tmp_path, demo):
    plan = _health_plan(tmp_path, demo.url, "3s", 100)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--workers", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert doc["workers"] == 2
    assert 150 <= doc["summary"]["requests"] <= 306  # 300 quietly: one request per arrival, none invented


def test_latency_matches_injected_delay(tmp_path, fresh_demo):
    """A target with a fixed 50 ms delay: p50 at least 50 ms (a few ms above on a quiet machine;
    the upper bounds leave room for a busy one), service time the same."""
    d = fresh_demo(latency="50ms")
    plan = write_plan(tmp_path, f"""
        target = "{d.url}"
        [[phases]]
        duration = "3s"
        vus = 4
        [[scenarios]]
        steps = [{{ url = "/api/users/1" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = read_session(out)["summary"]
    assert 50 <= s["latency_ms"]["p50"] <= 150, s["latency_ms"]  # 50-58 on a quiet machine
    assert 50 <= s["service_time_ms"]["p50"] <= 150
    # 4 VUs x ~19 req/s each x 3 s (180-245 quietly); a VU never beats the 50 ms delay
    assert 40 <= s["requests"] <= 4 * 3 * 20 + 8, s["requests"]


def test_stall_shows_in_tail_latency(tmp_path, fresh_demo):
    """Coordinated omission: the target stalls for 1 s mid-run; the open-model schedule keeps
    sending, and the reported p99 and max reflect the stall."""
    d = fresh_demo()
    plan = write_plan(tmp_path, f"""
        target = "{d.url}"
        [[phases]]
        duration = "8s"
        arrival_rate = 100
        [[scenarios]]
        steps = [{{ url = "/api/users/7" }}]
    """)
    out = tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    _wait_progress(proc, 1)
    httpx.post(f"{d.url}/_demo/stall", json={"seconds": 2.0})
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    s = read_session(out)["summary"]
    assert s["latency_ms"]["max"] >= 1800, s["latency_ms"]
    assert s["latency_ms"]["p99"] >= 800, s["latency_ms"]
    # roughly a quarter of the requests (2 s of 8) were caught in the stall
    assert s["latency_ms"]["p90"] >= 200, s["latency_ms"]
    assert s["latency_ms"]["p50"] < 300, s["latency_ms"]  # most requests were not stalled


def test_latency_counts_from_the_intended_start(demo):
    """An iteration that starts 300 ms after its slot records >= 300 ms of latency while its
    service time stays small: queueing delay is not omitted."""
    from perftui.worker.scenario import ScenarioRunner
    from perftui.aggregate import Aggregate, decode_histogram
    from perftui.planload import plan_from_dict

    loaded = plan_from_dict({"target": demo.url, "phases": [{"duration": 1, "arrival_rate": 1}],
                             "scenarios": [{"steps": [{"url": "/health", "name": "h"}]}]})

    async def go():
        runner = ScenarioRunner(loaded.plan, demo.url)
        await runner.iteration(runner.new_vu(), time.monotonic() - 0.3)
        await runner.close()
        d = runner.recorders["h"].take_delta()
        agg = Aggregate()
        agg.add_delta(d, decode_histogram(d.latency), decode_histogram(d.service))
        return agg.summary(1.0)

    s = asyncio.run(go())
    assert s.latency_ms.p50 >= 300
    assert s.service_time_ms.p50 < 250  # far below the 300 ms of queueing, even on a busy machine


def test_error_classification(tmp_path, fresh_demo):
    """Refused port, HTTP 500, HTTP 404 and a request timeout, each under its own kind."""
    d = fresh_demo()
    dead = free_port()
    plan = write_plan(tmp_path, f"""
        target = "{d.url}"
        [defaults]
        timeout = "300ms"
        [[phases]]
        duration = "2s"
        arrival_rate = 20
        [[scenarios]]
        name = "refused"
        steps = [{{ url = "http://127.0.0.1:{dead}/x", name = "refused" }}]
        [[scenarios]]
        name = "five hundred"
        steps = [{{ url = "/status/500", name = "500" }}]
        [[scenarios]]
        name = "not found"
        steps = [{{ url = "/status/404", name = "404" }}]
        [[scenarios]]
        name = "slow"
        steps = [{{ url = "/delay/2000", name = "slow" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    eps = {e["name"]: e for e in doc["endpoints"]}
    assert set(eps["refused"]["error_kinds"]) == {"connect_refused"}
    assert set(eps["500"]["error_kinds"]) == {"http_5xx"} and eps["500"]["status_codes"] == {"500": eps["500"]["requests"]}
    assert set(eps["404"]["error_kinds"]) == {"http_4xx"}
    assert set(eps["slow"]["error_kinds"]) == {"timeout"}
    assert doc["summary"]["errors"] == doc["summary"]["requests"]
    kinds = doc["summary"]["error_kinds"]
    assert {"connect_refused", "http_5xx", "http_4xx", "timeout"} <= set(kinds)
    assert "error kinds" in r.stdout


def test_capture_token_and_expectations(tmp_path, demo):
    """Sign in, capture the token, use it: the profile endpoint answers 200, never 401; a failed
    expectation is counted as expect_failed."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [variables]
        email = ["a@example.com", "b@example.com"]
        password = "TestPassword123!"
        [[phases]]
        duration = "2s"
        vus = 2
        [[scenarios]]
        [[scenarios.steps]]
        method = "POST"
        url = "/auth/sign-in"
        json = {{ email = "{{{{ email }}}}", password = "{{{{ password }}}}" }}
        capture = [{{ json = "$.token", as = "token" }}]
        expect = {{ status = 200 }}
        [[scenarios.steps]]
        url = "/api/profile"
        if = "token"
        headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
        expect = {{ status = 200, json_exists = ["$.email"] }}
        [[scenarios.steps]]
        name = "bounty"
        url = "/api/bounties/{{{{ $randomInt(1, 400) }}}}"
        expect = {{ status = [200, 404], json_equals = {{ "$.status" = "no-such-status" }} }}
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 0, r.stderr
    eps = {e["name"]: e for e in read_session(out)["endpoints"]}
    assert eps["GET /api/profile"]["requests"] > 10
    assert eps["GET /api/profile"]["status_codes"] == {"200": eps["GET /api/profile"]["requests"]}
    assert eps["GET /api/profile"]["errors"] == 0
    assert eps["bounty"]["error_kinds"] == {"expect_failed": eps["bounty"]["requests"]}
    assert eps["POST /auth/sign-in"]["errors"] == 0


def test_thresholds_decide_the_exit_code(tmp_path, demo):
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        thresholds = ["p95 < 10s", "error_rate < 1%", "rps > 100000"]
        [[phases]]
        duration = "2s"
        arrival_rate = 20
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--headless", "--out", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    results = {t["expr"]: t["ok"] for t in read_session(out)["thresholds"]}
    assert results == {"p95 < 10s": True, "error_rate < 1%": True, "rps > 100000": False}
    assert "FAIL" in r.stdout


def test_sigint_writes_a_partial_session(tmp_path, demo):
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        duration = "60s"
        arrival_rate = 50
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    out = tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    _wait_progress(proc, 2)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    stdout, stderr = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 15  # about 1 s on a quiet machine; bounded, not fast, is the point
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = read_session(out)
    assert doc["partial"] is True
    assert "interrupted" in doc["end_reason"] and "SIGINT" in doc["end_reason"]
    assert 10 <= doc["summary"]["requests"] <= 60 * 50  # ~150 quietly; far fewer when start-up was starved
    assert doc["ended_at"] is not None


def test_session_document_shape(tmp_path, demo):
    plan = write_plan(tmp_path, f"""
        name = "shape"
        target = "{demo.url}"
        [defaults]
        headers = {{ Authorization = "Bearer s3cret" }}
        [[phases]]
        name = "one"
        duration = "1s"
        arrival_rate = 10
        [[phases]]
        name = "rest"
        duration = "1s"
        pause = true
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    out = tmp_path / "s.json"
    assert run_cli("run", str(plan), "--headless", "--out", str(out)).returncode == 0
    doc = read_session(out)
    for key in ("schema_version", "perftui_version", "plan", "started_at", "ended_at", "partial", "end_reason",
                "phases", "summary", "endpoints", "timeline", "thresholds", "histogram", "events"):
        assert key in doc, key
    assert doc["partial"] is False and doc["end_reason"] == "completed"
    assert [p["name"] for p in doc["phases"]] == ["one", "rest"]
    assert all(p["start"] is not None and p["end"] is not None for p in doc["phases"])
    assert doc["phases"][1]["start"] >= 0.9
    for key in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max"):
        assert doc["summary"]["latency_ms"][key] is not None
        assert doc["summary"]["service_time_ms"][key] is not None
    row = doc["timeline"][0]
    for key in ("t", "phase", "target_rps", "rps", "p50_ms", "p95_ms", "p99_ms", "errors"):
        assert key in row
    assert "s3cret" not in out.read_text()
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram.decode(doc["histogram"])
    assert h.get_total_count() == doc["summary"]["requests"]


def test_engine_never_imports_textual():
    code = ("import sys; import perftui.worker, perftui.run.coordinator, perftui.worker.transport, "
            "perftui.headless, perftui.session; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'textual_plotext', 'plotext')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


async def test_live_control(tmp_path, demo):
    """The control API the dashboard uses: pause stops the load, set_rate changes it, next_phase
    skips, annotate records; every action lands in the session's events."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        name = "first"
        duration = "60s"
        arrival_rate = 20
        [[phases]]
        name = "second"
        duration = "60s"
        vus = 2
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    coord = Coordinator(load_plan(plan), demo.url, workers=1)
    try:
        await coord.start()
        await asyncio.sleep(2.2)
        assert coord.state == "running" and coord.target_now() == (20.0, 0)
        coord.pause()
        await asyncio.sleep(0.6)  # let in-flight work and the last snapshot land
        before = coord.session.total.requests + coord.session.second.requests
        await asyncio.sleep(1.5)
        after = coord.session.total.requests + coord.session.second.requests
        assert after == before, "requests were sent while paused"
        coord.resume()
        assert coord.set_rate(40) == 40
        await asyncio.sleep(2.2)
        assert coord.session.timeline[-1].target_rps == 40
        assert 5 <= coord.session.timeline[-1].rps <= 60  # 40 on a quiet machine
        coord.annotate("deploy v2")
        coord.next_phase()
        assert coord.current.name == "second"
        await asyncio.sleep(1.5)
        assert coord.session.generator.vus == 2
        assert coord.scale_load(2.0) == 4
    finally:
        await coord.stop("stopped by test")
    kinds = [e.kind for e in coord.session.events]
    assert kinds[:1] == ["start"]
    for k in ("pause", "resume", "rate", "annotation", "phase", "vus", "stop"):
        assert k in kinds, kinds
    phases = coord.session.phases
    assert phases[0].skipped and phases[0].end is not None and phases[1].start is not None
    assert coord.session.partial and coord.session.end_reason == "stopped by test"


async def test_scaling_a_ramp_keeps_it_a_ramp(tmp_path, demo):
    """+/- during a ramp multiplies both of its ends (the dashboard's load scaling), instead of
    replacing the rest of the ramp with a flat rate."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        duration = "60s"
        arrival_rate = 4
        ramp_to = 40
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    coord = Coordinator(load_plan(plan), demo.url, workers=1)
    try:
        await coord.start()
        await asyncio.sleep(1.0)
        now = coord.scale_load(2.0)
        assert coord.override is None
        assert (coord.current.start_value, coord.current.end_value) == (8.0, 80.0)
        assert coord.session.phases[0].target == "8→80/s"
        assert now is not None and 8.0 < now < 20.0
        assert "ramp scaled ×2: 8→80/s" in coord.session.events[-1].message
        await asyncio.sleep(1.5)
        first = coord.target_now()[0]
        await asyncio.sleep(1.0)
        assert coord.target_now()[0] > first  # still climbing
    finally:
        await coord.stop("stopped by test")


async def _run_to_its_end(tmp_path, demo, duration: str, prepare=None, plan=None) -> object:
    """A 20/s run of ``duration`` against the demo (or ``plan``), ``prepare(coord)`` before it
    starts; the session once the run has finished (by itself or not)."""
    plan = plan or _health_plan(tmp_path, demo.url, duration, 20)
    coord = Coordinator(load_plan(plan), demo.url, workers=1)
    if prepare is not None:
        prepare(coord)
    try:
        await coord.start()
        await asyncio.wait_for(coord.finished.wait(), timeout=60)
    finally:
        await coord.stop("stopped by test")
    return coord.session


async def test_the_results_screen_sets_the_iterations_against_the_arrivals_asked(tmp_path, demo):
    """The dashboard's results say what the headless summary says: started of asked."""
    from rich.console import Console

    from perftui.ui.screens.results import overview

    s = await _run_to_its_end(tmp_path, demo, "2s")  # 20/s
    console = Console(width=120, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(overview(s, demo.url))
    line = next(x for x in console.export_text().splitlines() if x.startswith("iterations"))
    assert s.asked_arrivals() == pytest.approx(40.0, abs=0.01)
    assert f"{s.iterations:,} of ~40 asked ({s.iterations / 40:.1%})" in line, line


async def test_a_failing_observer_never_stops_the_run(tmp_path, demo):
    """A bug in something that follows the seconds (here an observer that raises) must not take
    the run's clock or its record with it: the observer is dropped with a warning event, the
    run goes on to its end, and the session is complete."""
    from perftui.session.observer import SessionObserver

    class Broken(SessionObserver):
        def on_interval(self, session, state):
            if session.timeline:
                raise RuntimeError("observer bug")

    s = await _run_to_its_end(tmp_path, demo, "3s", lambda coord: coord.session.add_observer(Broken()))
    assert s.end_reason == "completed"
    warnings = [e.message for e in s.events if e.kind == "warning" and "observer bug" in e.message]
    assert len(warnings) == 1 and "Broken" in warnings[0]
    assert len(s.timeline) >= 3 and s.total.requests > 0


async def test_a_bug_in_the_clock_ends_the_run_with_its_record(tmp_path, demo):
    """Something the clock calls each second fails (injected here): the run stops, says why, and
    is finished with what it recorded, instead of waiting forever for a clock that is gone."""
    calls = []

    def prepare(coord):
        real = coord.target_now

        def failing(*a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("clock bug")
            return real(*a, **k)

        coord.target_now = failing

    s = await _run_to_its_end(tmp_path, demo, "60s", prepare)
    assert s.end_reason == "internal error: RuntimeError" and s.partial
    assert any("internal error" in e.message and "clock bug" in e.message for e in s.events)
    assert s.timeline and s.total.requests > 0


async def test_a_coordinator_held_as_the_run_starts_cuts_nothing_from_the_phase(tmp_path, demo):
    """The coordinator is held for 0.4 s right after its clock has started the phase and before
    the workers are given it (here an observer that blocks on the start event; on a busy machine
    starting a run on Ray did the same). The phase still asks its 60 arrivals (20/s for 3 s): the
    workers start the ones due meanwhile on catching up and count them late, instead of the
    phase losing its first 0.4 s (52 of 60 started, none late)."""
    from perftui.session.observer import SessionObserver

    class Holds(SessionObserver):
        def on_event(self, event):
            if event.kind == "start":
                time.sleep(0.4)

    s = await _run_to_its_end(tmp_path, demo, "3s", lambda coord: coord.session.add_observer(Holds()))
    assert s.end_reason == "completed"
    assert abs(s.iterations - 60) <= 2, s.iterations
    assert s.total.late_starts >= 5, s.total.late_starts  # ~8 fell due while it was held
    phase = next(e for e in s.events if e.kind == "phase")
    assert phase.t == s.phases[0].start < 0.1, (phase.t, s.phases[0].start)  # when the clock entered it (was 0.366)


async def test_phases_end_where_their_lengths_say_and_the_record_says_so(tmp_path, demo):
    """Three phases of 0.33 s: each starts exactly where the one before ran out, in its record
    and its event, however late the coordinator's clock looks (it looked every 50 ms, so a phase
    ended up to a tick late and the next started as much later, its event stamped then)."""
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        duration = "330ms"
        arrival_rate = 20
        [[phases]]
        duration = "330ms"
        arrival_rate = 40
        [[phases]]
        duration = "330ms"
        arrival_rate = 20
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    s = await _run_to_its_end(tmp_path, demo, "", plan=plan)
    assert s.end_reason == "completed"
    starts = [p.start for p in s.phases]
    assert [round(b - a, 3) for a, b in zip(starts, starts[1:])] == [0.33, 0.33], starts
    assert [p.end for p in s.phases[:2]] == starts[1:]
    assert [e.t for e in s.events if e.kind == "phase"] == starts
