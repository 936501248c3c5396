"""Run options from the environment (PERFTUI_<OPTION>, flags win) and ``perftui ls``'s columns, with
real runs against the demo target."""

from __future__ import annotations

from tests.conftest import read_session, run_cli, write_plan


def test_options_come_from_the_environment_and_flags_win(tmp_path, demo):
    out = tmp_path / "env.json"
    env = {"PERFTUI_RATE": "7", "PERFTUI_DURATION": "2s", "PERFTUI_OUT": str(out), "PERFTUI_WORKERS": "1",
           "PERFTUI_HEADLESS": "yes", "PERFTUI_HEADER": "X-One: 1\nX-Two: 2"}
    r = run_cli("quick", demo.url + "/api/users", "--rate", "3", env=env)
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert doc["workers"] == 1
    assert doc["plan"]["phases"] == [{"name": "3/s", "duration": "2s", "arrival_rate": 3.0}]  # the flag won
    headers = doc["plan"]["scenarios"][0]["steps"][0]["headers"]
    assert headers == {"X-One": "1", "X-Two": "2"}
    # --vus on the command line beats PERFTUI_RATE instead of clashing with it
    r = run_cli("quick", demo.url + "/api/users", "--vus", "1", env={**env, "PERFTUI_OUT": str(tmp_path / "v.json")})
    assert r.returncode == 0, r.stderr
    assert "vus" in read_session(tmp_path / "v.json")["plan"]["phases"][0]


def test_bad_values_in_the_environment_exit_2_naming_the_variable(tmp_path):
    for var, value, says in (("PERFTUI_RATE", "fast", "--rate must be a number"),
                             ("PERFTUI_HEADLESS", "maybe", "expected 1/true/yes/on"),
                             ("PERFTUI_FAIL_ON", "sometimes", "expected one of"),
                             ("PERFTUI_METRICS_PORT", "0", "port must be")):
        r = run_cli("quick", "http://127.0.0.1:9/", env={var: value})
        assert r.returncode == 2, (var, r.stderr)
        assert f"{var}={value!r}" in r.stderr and says in r.stderr and "Traceback" not in r.stderr


def test_help_says_so():
    r = run_cli("run", "--help")
    assert "PERFTUI_RATE" in r.stdout and "[env PERFTUI_OUT]" in r.stdout and "flag on the command line wins" in r.stdout


def test_ls_shows_requests_and_threshold_verdict(tmp_path, demo):
    plan = write_plan(tmp_path, f"""
        name = "verdicts"
        target = "{demo.url}"
        thresholds = ["requests > 1000000", "error_rate < 50%"]
        [[phases]]
        duration = "2s"
        arrival_rate = 10
        [[scenarios]]
          [[scenarios.steps]]
          url = "/api/users"
        """)
    r = run_cli("run", str(plan), "--headless", "--workers", "1", "--out", str(tmp_path / "s.json"))
    assert r.returncode == 1
    requests = read_session(tmp_path / "s.json")["summary"]["requests"]
    listed = run_cli("ls")
    line = next(l for l in listed.stdout.splitlines() if "verdicts" in l)
    assert "REQUESTS" in listed.stdout and "VERDICT" in listed.stdout
    assert f" {requests} " in line and "FAIL 1/2" in line
