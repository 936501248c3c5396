"""Thresholds over windows, abort on fail, SLOs with error budgets and burn-rate alerts, and
thresholds on the system under test (``perftui.run.judge``, ``perftui.slo``).

The runs go to real servers on 127.0.0.1 that the tests start: the demo target with a known
error rate, and a small HTTP server with a Prometheus ``/metrics`` and a ``/health``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rich.console import Console

from perftui.planload import load_plan
from perftui.run.coordinator import Coordinator
from perftui.slo import AlertLevel, SloSpec, SloTracker
from perftui.thresholds import format_value, metric_kind, parse_threshold
from tests.conftest import read_session, run_cli, write_plan
from tests.exporter_peers import FlappingPeer


# ---- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, metric, endpoint, kind, value", [
    ("target.cpu < 70%", "target.cpu", None, "gauge", 70.0),
    ("target.memory.max < 512", "target.memory.max", None, "gauge", 512.0),
    ("host.memory < 80%", "host.memory", None, "gauge", 80.0),
    ("series{db connections} < 80", "series", "db connections", "gauge", 80.0),
    ("series.max{db connections} <= 90", "series.max", "db connections", "gauge", 90.0),
    ("health.uptime > 99.9%", "health.uptime", None, "rate", 0.999),
    ("health.uptime{/health} > 99%", "health.uptime", "/health", "rate", 0.99),
    ("slo.checkout.burn_rate < 2", "slo.checkout.burn_rate", None, "factor", 2.0),
    ("slo.check-out.budget_left > 20%", "slo.check-out.budget_left", None, "rate", 0.2),
])
def test_system_and_slo_metrics_parse(expr, metric, endpoint, kind, value):
    th = parse_threshold(expr)
    assert (th.metric, th.endpoint, th.value) == (metric, endpoint, pytest.approx(value))
    assert metric_kind(th.metric) == kind


@pytest.mark.parametrize("expr, says", [
    ("target.cpux < 1", "unknown metric 'target.cpux'"),
    ("series < 80", "name the monitor series in braces"),
    ("slo.checkout.speed < 2", "unknown SLO metric"),
    ("target.cpu{x} < 3", "take no {...}"),
    ("slo.a.burn_rate < 2ms", "multiple of the budget's even pace"),
    ("host.cpu < 3s", "compared in its own units"),
])
def test_bad_system_and_slo_metrics_say_what_is_expected(expr, says):
    with pytest.raises(ValueError, match=None) as err:
        parse_threshold(expr)
    assert says in str(err.value)


def test_formats():
    assert format_value(parse_threshold("slo.a.burn_rate < 2"), 3.456) == "3.46×"
    assert format_value(parse_threshold("target.cpu < 70"), 42.04) == "42.0"


# ---- plan validation ----------------------------------------------------------------------


def test_bad_rules_exit_2_naming_file_line_and_key(tmp_path):
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        [[thresholds]]
        threshold = "p95 < 200ms"
        window = "soon"
        [[thresholds]]
        threshold = "slo.nope.burn_rate < 2"
        [[thresholds]]
        threshold = "error_rate < 1%"
        abort_on_fail = "yes"
        [[thresholds]]
        threshold = "series{db connections} < 80"
        [[phases]]
        duration = "5s"
        arrival_rate = 1
        [[scenarios]]
          [[scenarios.steps]]
          url = "/"
        [[slos]]
        name = "api x"
        sli = "latency"
        objective = 199
        endpoint = "GET /nope"
        critical = { long = "1s", short = "5s" }
    """)
    r = run_cli("validate", str(plan))
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr
    assert f"{plan}:4: thresholds[1].window:" in err
    assert f"{plan}:6: thresholds[2].threshold: no SLO named \"nope\"" in err
    assert f"{plan}:9: thresholds[3].abort_on_fail: expected true or false" in err
    assert f"{plan}:11: thresholds[4].threshold: series{{db connections}} needs [monitor] metrics" in err
    assert "slos[1].name: \"api x\": SLO names use letters, digits, _ and -" in err
    assert "slos[1].objective: must be a percentage above 0 and below 100" in err
    assert "slos[1].latency: missing: a latency SLO needs the bound" in err
    assert "slos[1].critical.short: the short window must not be longer than the long one" in err
    assert "Traceback" not in err


def test_a_window_on_an_slo_metric_is_refused(tmp_path):
    plan = write_plan(tmp_path, """
        target = "http://127.0.0.1:9"
        thresholds = [{ threshold = "slo.api.burn_rate < 2", window = "1m" }]
        [[phases]]
        duration = "5s"
        arrival_rate = 1
        [[scenarios]]
          [[scenarios.steps]]
          url = "/"
        [[slos]]
        name = "api"
        sli = "availability"
        objective = 99.5
    """)
    r = run_cli("validate", str(plan))
    assert r.returncode == 2
    assert f"{plan}:2: thresholds[1].window: an SLO metric has its own windows" in r.stderr


# ---- the SLO arithmetic, one second at a time ---------------------------------------------


def _tracker(window_s=3600.0) -> SloTracker:
    return SloTracker(SloSpec(
        name="api", sli="availability", objective=0.99, latency_ms=None, endpoint=None, window_s=window_s,
        levels=(AlertLevel(level="critical", burn_rate=5.0, long_s=10.0, short_s=2.0, budget_left=0.0),
                AlertLevel(level="warning", burn_rate=3.0, long_s=30.0, short_s=5.0, budget_left=0.0))))


def test_burn_rate_alert_needs_both_windows():
    tr = _tracker()
    t = 0
    for _ in range(20):  # clean traffic
        t += 1
        assert tr.add(t, 100, 100) == []
    # one bad second: 50 % errors is a 50x burn over 1 s, 25x over the short 2 s window,
    # but 5x over the long 10 s window, which is not above 5x: no page for one blip
    t += 1
    assert tr.add(t, 50, 100) == []
    assert tr.burn(2.0) == pytest.approx(25.0) and tr.burn(10.0) == pytest.approx(5.0)
    # it goes on: the long window passes 5x too and the critical level fires
    t += 1
    events = tr.add(t, 50, 100)
    assert tr.burn(10.0) == pytest.approx(10.0)
    assert events == ["SLO api: CRITICAL: burn rate 10.0× over 10s and 50.0× over 2s (> 5×) (99% availability)"]
    assert tr.level == "critical"
    # recovery: two clean seconds bring the short window under 5x, whatever the long one says
    t += 1
    assert tr.add(t, 100, 100) == []  # short window: 50 bad of 200 = 25x, still firing
    t += 1
    events = tr.add(t, 100, 100)
    assert tr.burn(2.0) == 0.0 and tr.burn(10.0) > 5.0
    assert tr.level == "warning"  # the warning level (3x over 30 s and 5 s) still holds
    assert events and events[0].startswith("SLO api: WARNING: burn rate")
    res = tr.result()
    assert [(a.level, a.at, a.until) for a in res.alerts] == [("critical", 22, 24), ("warning", 22, None)]
    assert res.total == 2400 and res.good == 2300
    assert res.burn_rate == pytest.approx(100 / 2400 / 0.01)


def test_budget_consumed_scales_with_the_share_of_the_window_run():
    tr = _tracker(window_s=100.0)
    for t in range(1, 11):
        tr.add(t, 99, 100)  # exactly the allowed 1 %: burn rate 1
    assert tr.burn_rate == pytest.approx(1.0)
    assert tr.budget_consumed == pytest.approx(0.10)  # 10 s of a 100 s window at 1x
    assert tr.values()["slo.api.budget_left"] == pytest.approx(0.90)


# ---- real runs ----------------------------------------------------------------------------


def _session_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "sessions").rglob("session.json"))


def test_abort_on_fail_stops_a_run_against_a_failing_target(tmp_path, fresh_demo):
    demo = fresh_demo(error_rate=0.5)
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        thresholds = [
          "p95 < 5s",
          {{ threshold = "error_rate < 10%", abort_on_fail = true, delay_abort_eval = "2s" }},
        ]
        [[phases]]
        duration = "60s"
        arrival_rate = 20
        [[scenarios]]
          [[scenarios.steps]]
          url = "/api/users"
    """)
    out = tmp_path / "out.json"
    r = run_cli("run", str(plan), "--headless", "--workers", "1", "--out", str(out), timeout=60)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    doc = read_session(out)
    assert doc["duration_s"] < 20, doc["duration_s"]  # a 60 s plan, stopped within seconds of the delay
    assert doc["end_reason"].startswith("aborted: threshold 'error_rate < 10% [abort after 2s]' failed: ")
    ev = [e for e in doc["events"] if e["kind"] == "threshold"]
    assert len(ev) == 1 and ev[0]["t"] >= 2.0 and "aborting the run at" in ev[0]["message"]
    stop = [e for e in doc["events"] if e["kind"] == "stop"]
    assert stop and stop[0]["t"] >= ev[0]["t"]
    failed = {t["expr"]: t for t in doc["thresholds"]}
    verdict = failed["error_rate < 10% [abort after 2s]"]
    assert verdict["ok"] is False and "stopped the run at" in verdict["detail"]
    assert 0.3 < verdict["value"] < 0.7
    assert failed["p95 < 5s"]["ok"] is True
    # the normal stop path: the journal ended in a complete session document of its own
    files = _session_files(tmp_path)
    assert len(files) == 1 and read_session(files[0])["end_reason"] == doc["end_reason"]
    assert "aborting the run at" in r.stdout and "✗ FAIL  error_rate < 10% [abort after 2s]" in r.stdout


def test_a_windowed_threshold_catches_what_the_whole_run_hides(tmp_path, fresh_demo):
    demo = fresh_demo(latency="1ms")
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        thresholds = [
          "p50 < 100ms",
          {{ threshold = "p50 < 100ms", window = "2s" }},
        ]
        [[phases]]
        duration = "10s"
        arrival_rate = 30
        [[scenarios]]
          [[scenarios.steps]]
          url = "/api/users"
    """)

    async def main():
        import httpx

        coord = Coordinator(load_plan(plan), demo.url, workers=1)
        await coord.start()
        async with httpx.AsyncClient() as client:
            await asyncio.sleep(3.0)
            await client.post(f"{demo.url}/_demo/config", json={"latency": "200ms"})
            await asyncio.sleep(3.0)
            await client.post(f"{demo.url}/_demo/config", json={"latency": "1ms"})
        await coord.finished.wait()
        return coord.session

    session = asyncio.run(main())
    whole, windowed = session.threshold_results
    assert whole.ok, whole  # 3 slow seconds of 10: the median of the run stays fast
    assert not windowed.ok and windowed.expr == "p50 < 100ms [2s window]"
    assert windowed.value >= 150 and "in the window to" in windowed.detail


def test_slo_burn_rate_alert_fires_against_a_known_error_rate(tmp_path, fresh_demo):
    demo = fresh_demo(error_rate=0.2)
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        thresholds = ["slo.api.burn_rate < 2", "slo.api.budget_left > 50%", "target.cpu.max < 1000"]
        [monitor]
        process = "target"
        [[phases]]
        duration = "8s"
        arrival_rate = 40
        [[scenarios]]
          [[scenarios.steps]]
          url = "/api/users"
        [[slos]]
        name = "api"
        sli = "availability"
        objective = 99
        window = "1h"
        critical = {{ long = "4s", short = "2s" }}
    """)
    out = tmp_path / "out.json"
    r = run_cli("run", str(plan), "--headless", "--workers", "1", "--out", str(out), timeout=60)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    doc = read_session(out)
    (slo,) = doc["slos"]
    assert doc["end_reason"] == "completed", doc["end_reason"]
    # 20 % errors against a 1 % budget: a burn rate of 20 (binomial noise on ~300 requests)
    assert 10 < slo["burn_rate"] < 32, slo
    assert slo["level"] == "critical", slo
    first = slo["alerts"][0]
    assert first["level"] == "critical" and first["reason"].startswith("burn rate") and first["at"] >= 1.9, slo
    events = [e["message"] for e in doc["events"] if e["kind"] == "slo"]
    assert any(m.startswith("SLO api: CRITICAL: burn rate") for m in events), events
    # a tiny share of an hour's budget is gone
    assert 0.9 < slo["budget_left"] < 1.0  # ~64 bad of a 1,440 budget; the error draws vary
    by = {t["expr"]: t for t in doc["thresholds"]}
    assert by["slo.api.burn_rate < 2"]["ok"] is False, by
    assert by["slo.api.budget_left > 50%"]["ok"] is True, by
    cpu = by["target.cpu.max < 1000"]
    assert cpu["ok"] is True and cpu["value"] is not None and cpu["value"] >= 0, (cpu, doc["events"])
    assert any("slo.api.burn_rate" in row["extra"] for row in doc["timeline"])
    assert "SLOs" in r.stdout and "CRITICAL burn" in r.stdout
    assert "! " in r.stdout and "SLO api: CRITICAL" in r.stdout
    html = tmp_path / "report.html"
    rep = run_cli("report", str(out), "--html", str(html))
    assert rep.returncode == 0, rep.stderr
    page = html.read_text()
    assert "<h2>SLOs</h2>" in page and "<td>99% availability</td>" in page and "critical at" in page


def test_thresholds_on_a_real_metrics_endpoint_and_health_check(tmp_path):
    from prometheus_client import Gauge

    with FlappingPeer() as peer:
        pool = Gauge("db_pool_in_use_percent", "Share of the pool in use.", registry=peer.registry)
        pool.set(60)
        plan = write_plan(tmp_path, f"""
            target = "{peer.url}"
            thresholds = [
              "series{{db connections}} < 80",
              "series.max{{db connections}} < 80",
              {{ threshold = "series{{db connections}} < 80", window = "2s" }},
              "health.uptime > 99%",
              "health.uptime{{/health}} > 50%",
            ]
            [monitor]
            health = "/health"
            metrics = "/metrics"
            interval = "250ms"
            timeout = "500ms"
            series = [{{ name = "db connections", select = "db_pool_in_use_percent" }}]
            [[phases]]
            duration = "60s"
            arrival_rate = 10
            [[scenarios]]
              [[scenarios.steps]]
              url = "/"
        """)

        async def main():
            coord = Coordinator(load_plan(plan), peer.url, workers=1)
            try:
                await coord.start()
                await asyncio.sleep(4.0)
                pool.set(95)  # the pool fills up for a while
                await asyncio.sleep(3.0)
                pool.set(60)
                await asyncio.to_thread(peer.down)  # and the server goes away for a moment
                await asyncio.sleep(1.5)
                await asyncio.to_thread(peer.up)
                await asyncio.sleep(4.0)
            finally:
                await coord.stop("stopped by test")
            return coord

        coord = asyncio.run(main())
    res = {r.expr: r for r in coord.session.threshold_results}
    avg = res["series{db connections} < 80"]
    assert avg.ok and 60 < avg.value < 80, avg  # the average over the run stays under 80
    peak = res["series.max{db connections} < 80"]
    assert not peak.ok and peak.value == pytest.approx(95)
    window = res["series{db connections} < 80 [2s window]"]
    assert not window.ok and window.value == pytest.approx(95) and "in the window to" in window.detail
    up = res["health.uptime > 99%"]
    assert not up.ok and 0.5 < up.value < 0.99, up
    assert res["health.uptime{/health} > 50%"].ok
    # the monitored series is in the timeline under the name the thresholds use
    assert any(r.monitor and r.monitor.metrics.get("db connections") == 95 for r in coord.session.timeline)


# ---- shown on the dashboard ---------------------------------------------------------------


def test_the_thresholds_panel_shows_windows_and_slos():
    from perftui.slo import SloResult
    from perftui.thresholds import ThresholdResult
    from perftui.ui.widgets.tables import thresholds_renderable

    slo = SloResult(name="checkout", sli="availability", objective=0.995, window_s=600, burn_rate=3.2,
                    budget_consumed=0.4, budget_left=0.6, level="warning", burn_short={"critical": 4.1})
    table = thresholds_renderable(
        ["p95 < 300ms [1m window]", "error_rate < 1% [abort after 10s]"],
        [ThresholdResult(expr="p95 < 300ms [1m window]", ok=False, value=None, detail="waiting for a full window"),
         ThresholdResult(expr="error_rate < 1% [abort after 10s]", ok=True, value=0.001, detail="0.10% < 1.00%")],
        live=True, slos=[slo])
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "… wait" in text and "waiting for a full window" in text
    assert "SLO checkout 99.5%" in text and "3.2× now 4.1× · 60% left" in text
    assert "⚠ warn" in text


def test_the_example_plan_loads():
    loaded = load_plan(Path(__file__).resolve().parent.parent / "plans" / "slo.toml")
    assert [s.name for s in loaded.plan.slos] == ["availability", "latency"]
    assert any(not isinstance(t, str) and t.abort_on_fail for t in loaded.plan.thresholds)
    json.dumps([str(t) for t in loaded.plan.thresholds])


def test_k6_abort_on_fail_imports_as_a_table_threshold(tmp_path):
    script = tmp_path / "load.js"
    script.write_text("""
import http from 'k6/http';
export const options = {
  vus: 2, duration: '10s',
  thresholds: {
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '10s' }],
    http_req_duration: ['p(95)<500'],
  },
};
export default function () { http.get('http://127.0.0.1:9/api'); }
""")
    out = tmp_path / "load.toml"
    r = run_cli("import", str(script), "-o", str(out))
    assert r.returncode == 0, r.stderr
    plan = load_plan(out).plan
    first, second = plan.thresholds
    assert (first.threshold, first.abort_on_fail, first.delay_abort_eval) == ("error_rate < 0.01", True, "10s")
    assert second == "p(95) < 500"
