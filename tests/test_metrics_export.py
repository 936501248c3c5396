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
