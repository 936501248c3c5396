"""``--metrics-port``: perftui's live metrics scraped by a real Prometheus server (Debian's
``prometheus``) that the test starts, then read back with PromQL over its HTTP API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port, run_cli, write_plan


def _prometheus(tmp_path, scrape_port: int) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus is not installed (tests/setup.sh installs it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: perftui
    static_configs:
      - targets: ["127.0.0.1:{scrape_port}"]
""")
    proc = subprocess.Popen([exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "prometheus.log", "wb"), start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail("prometheus did not become ready: " + (tmp_path / "prometheus.log").read_text()[-2000:])


def test_prometheus_scrapes_perftui_and_promql_returns_its_request_rate(tmp_path, demo):
    port = free_port()
    prom, prom_port = _prometheus(tmp_path, port)
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(tmp_path / "sessions"))
    run = subprocess.Popen([sys.executable, "-m", "perftui", "quick", demo.url + "/api/users", "--rate", "20",
                            "--duration", "25s", "--workers", "1", "--headless", "--metrics-port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        # perftui's own endpoint: the text format with the families the docs promise
        text = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "perftui_request_latency_seconds_bucket" not in text:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        for family in ('perftui_requests_total{endpoint="GET /api/users"}', "perftui_request_latency_seconds_bucket",
                       "perftui_target_rate 20.0", 'perftui_state{state="running"} 1.0', "perftui_workers_alive 1.0",
                       "perftui_in_flight", "perftui_phase{"):
            assert family in text, (family, text[-3000:])
        # Prometheus: a PromQL rate over what it scraped
        value = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                          params={"query": 'sum(rate(perftui_requests_total{job="perftui"}[10s]))'}, timeout=5).json()
            result = r["data"]["result"]
            if result:
                value = float(result[0]["value"][1])
                # the first windows hold one or two scrapes of a counter just started: wait for
                # a full one; 20 requests/s asked, generous bounds for a busy machine
                if 10 < value < 40:
                    break
            time.sleep(1)
        assert value is not None, "Prometheus never returned a request rate for perftui"
        assert 10 < value < 40, value
        up = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": 'up{job="perftui"}'}).json()
        assert up["data"]["result"][0]["value"][1] == "1"
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
        os.killpg(prom.pid, signal.SIGTERM)
        prom.wait(timeout=30)


def test_metrics_port_in_use_is_exit_2_before_any_load(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = run_cli("quick", "http://127.0.0.1:9/", "--rate", "1", "--duration", "1s", "--headless",
                    "--metrics-port", str(busy))
    assert r.returncode == 2 and f"--metrics-port {busy}" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("quick", "http://127.0.0.1:9/", "--metrics-port", "99999")
    assert r.returncode == 2 and "65535" in r.stderr


def test_metrics_port_from_the_plan(tmp_path, demo):
    port = free_port()
    plan = write_plan(tmp_path, f"""
        name = "exported"
        target = "{demo.url}"
        [output]
        metrics_port = {port}
        [[phases]]
        duration = "6s"
        arrival_rate = 5
        [[scenarios]]
          [[scenarios.steps]]
          url = "/api/users"
        """)
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(tmp_path / "sessions"))
    run = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "perftui_requests_total{" not in text:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert 'perftui_requests_total{endpoint="GET /api/users"}' in text


def test_the_exporter_follows_the_dashboards_run_through_the_session_observer(tmp_path):
    """The exporter is one more ``SessionObserver``: handed to the dashboard, it gets the run's
    figures at the start, after every closed second (with the thresholds' verdicts) and at the
    end, through the same ``on_interval`` as the dashboard itself. No class-level hook is left."""
    import asyncio

    from perftui.export.prometheus import MetricsExporter
    from perftui.run.coordinator import Coordinator
    from perftui.ui.app import PerftuiApp
    from tests.ui_fakes import ScriptedBackend, sample_plan, settle, wait_for

    assert not hasattr(Coordinator, "on_create")
    exporter = MetricsExporter(free_port())  # not started: the snapshot is what a scrape would read

    def samples(name):
        return exporter.snapshot[name][3]

    async def drive():
        backend = ScriptedBackend()
        app = PerftuiApp(sample_plan(), backend=backend, out=str(tmp_path / "s.json"), observers=(exporter,))
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: backend.coord is not None)
            coord = backend.coord
            assert exporter.snapshot is not None and samples("perftui_state") == [
                (["idle"], 1.0), (["running"], 0.0), (["paused"], 0.0), (["finished"], 0.0)]
            assert not hasattr(coord, "listeners")
            await pilot.press("s")
            await wait_for(pilot, lambda: coord.state == "running")
            version = app.controller.version
            coord.step(3, latency_ms=9)
            await settle(pilot)
            assert app.controller.version >= version + 3  # the dashboard heard the same seconds
            requests = {tuple(labels): v for labels, v in samples("perftui_requests")}
            assert requests and sum(requests.values()) == coord.session.summary().requests > 0
            assert (["running"], 1.0) in samples("perftui_state")
            assert samples("perftui_elapsed_seconds") == [([], coord.session.timeline[-1].t)]
            verdicts = samples("perftui_threshold_ok")
            assert len(verdicts) == len(coord.session.threshold_results) > 0  # evaluated before it heard
            await pilot.press("x")
            await wait_for(pilot, lambda: coord.state == "finished")
            await settle(pilot)
            assert (["finished"], 1.0) in samples("perftui_state")
            await pilot.press("q")

    asyncio.run(drive())
