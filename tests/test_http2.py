"""HTTP/2 when a plan asks for it (``[defaults] http2 = true``): requests go through httpx and
really arrive as HTTP/2 at a real nginx; failures keep perftui's error kinds."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, read_session, run_cli, write_plan
from tests.nginx_peer import NginxPeer, nginx_binary

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (tests/setup.sh installs it)")


def test_http2_requests_reach_nginx_as_http2(tmp_path):
    with NginxPeer(http2=True) as nginx:
        plan = write_plan(tmp_path, f"""
            target = "{nginx.url('')}"
            [defaults]
            http2 = true
            [[phases]]
            duration = "2s"
            arrival_rate = 25
            [[scenarios]]
            steps = [
              {{ url = "/proto", expect = {{ status = 200, body_contains = "HTTP/2.0" }} }},
              {{ url = "/status/404", expect = {{ status = 404 }} }},
              {{ url = "/status/503", name = "503" }},
            ]
        """)
        out = tmp_path / "s.json"
        r = run_cli("run", str(plan), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    eps = {e["name"]: e for e in read_session(out)["endpoints"]}
    proto = eps["GET /proto"]
    assert proto["requests"] >= 10 and proto["errors"] == 0  # body_contains "HTTP/2.0" held every time
    assert eps["GET /status/404"]["errors"] == 0
    assert eps["503"]["error_kinds"] == {"http_5xx": eps["503"]["requests"]}


def test_http2_failures_are_classified(tmp_path):
    dead = free_port()
    plan = write_plan(tmp_path, f"""
        target = "http://127.0.0.1:{dead}"
        [defaults]
        http2 = true
        [[phases]]
        duration = "1s"
        arrival_rate = 10
        [[scenarios]]
        steps = [{{ url = "/" }}]
    """)
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = read_session(out)["summary"]
    assert s["error_kinds"] == {"connect_refused": s["requests"]} and s["requests"] >= 3
