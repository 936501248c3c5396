"""The command line as a user meets it: help, exit codes, and clear one-line errors (never a
traceback) for bad flags, bad plans and bad files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, read_session, run_cli, write_plan


def test_help_lists_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("run", "quick", "validate", "demo", "ls", "attach", "recover"):
        assert cmd in r.stdout
    assert "exit codes" in r.stdout
    for cmd in ("run", "quick", "validate", "demo", "ls", "attach", "recover"):
        sub = run_cli(cmd, "--help")
        assert sub.returncode == 0 and "usage: perftui " + cmd in sub.stdout


@pytest.mark.parametrize("args, needle", [
    (["run", "plans/demo.toml", "--rate", "-5"], "--rate must be greater than 0"),
    (["run", "plans/demo.toml", "--rate", "fast"], "--rate must be a number"),
    (["run", "plans/demo.toml", "--vus", "0"], "--vus must be at least 1"),
    (["run", "plans/demo.toml", "--duration", "5x"], "expected a duration"),
    (["run", "plans/demo.toml", "--duration", "0s"], "greater than 0"),
    (["run", "plans/demo.toml", "--workers", "many"], "--workers must be a whole number"),
    (["run", "plans/demo.toml", "--rate", "5", "--vus", "3"], "exclude each other"),
    (["run", "plans/demo.toml", "--target", "localhost:1"], "needs a scheme"),
    (["run", "plans/demo.toml", "--out", "/"], "is a directory"),
    (["run", "plans/demo.toml", "--refresh", "0"], "--refresh must be greater than 0"),
    (["run", "plans/demo.toml", "--refresh", "1e308"], "--refresh must be at most 30"),
    (["run", "plans/demo.toml", "--workers", "100000"], "--workers must be at most 256"),
    (["run", "plans/demo.toml", "--rate", "1e308"], "--rate must be at most"),
    (["run", "plans/demo.toml", "--vus", "5000000"], "--vus must be at most 1000000"),
    (["run", "plans/demo.toml", "--duration", "999999999999999d"], "durations are at most 30 days"),
    (["run", "plans/demo.toml", "--target", "http://exa mple.com"], "cannot contain spaces"),
    (["run", "plans/demo.toml", "--target", "http://127.0.0.1:99999"], "Port out of range"),
    (["run"], "the following arguments are required: PLAN"),
    (["run", "no/such/plan.toml"], "no such file"),
    (["run", "plans"], "is a directory"),
    (["quick", "example.com"], "did you mean \"http://example.com\""),
    (["quick", "http://127.0.0.1:1/", "--header", "nocolon"], "header must look like"),
    (["quick", "http://127.0.0.1:1/", "--body", "@/no/such/file"], "cannot read file"),
    (["validate", "tests/plans_bad/unknown_key.toml"], "did you mean"),
    (["frobnicate"], "invalid choice"),
    (["recover", "/no/such/session"], "no session"),
    (["attach", "nope"], "no session"),
])
def test_bad_input_exits_2_with_a_clear_message(args, needle, tmp_path):
    r = run_cli(*args, env={"PERFTUI_SESSIONS_DIR": str(tmp_path)})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_huge_and_binary_plan_files(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.write(b"# padding\n" * (5 * 2**20))  # 50 MB
    r = run_cli("validate", str(big))
    assert r.returncode == 2 and "larger than 10 MB" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("validate", "/dev/zero", timeout=30)  # reports a size of 0 and never ends
    assert r.returncode == 2 and "larger than 10 MB" in r.stderr and "Traceback" not in r.stderr
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    r = run_cli("validate", str(binary))
    assert r.returncode == 2 and "UTF-8" in r.stderr and "Traceback" not in r.stderr


def test_validate_reports_every_problem(tmp_path):
    plan = write_plan(tmp_path, """
        target = "localhost:8080"
        thresholds = ["p95 <"]
        [[phases]]
        duration = "0s"
        arrival_rate = 10
        [[scenarios]]
        [[scenarios.steps]]
        url = "/x/{{ missing }}"
        methd = "GET"
    """)
    r = run_cli("validate", str(plan))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if str(plan) in l]
    assert len(lines) >= 5, r.stderr
    assert any(":1: target" in l for l in lines)
    assert any(":4: phases[1].duration" in l for l in lines)
    assert any(":9: scenarios[1].steps[1].methd" in l and 'did you mean "method"' in l for l in lines)


def test_validate_every_shipped_plan():
    for plan in sorted((ROOT / "plans").glob("*.toml")):
        r = run_cli("validate", str(plan))
        assert r.returncode == 0, r.stderr
        assert ": ok ·" in r.stdout


def test_quick_headless_against_the_demo(demo, tmp_path):
    out = tmp_path / "q.json"
    r = run_cli("quick", f"{demo.url}/api/users/3", "--rate", "20", "--duration", "2s", "--header",
                "X-Trace: 1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert doc["plan_file"] is None
    assert [e["name"] for e in doc["endpoints"]] == ["GET /api/users/3"]
    assert abs(doc["summary"]["requests"] - 40) <= 2
    assert doc["summary"]["status_codes"] == {"200": doc["summary"]["requests"]}


def test_quick_post_with_body(demo, tmp_path):
    out = tmp_path / "q.json"
    r = run_cli("quick", f"{demo.url}/echo", "--vus", "2", "--duration", "1s", "--method", "POST",
                "--header", "Content-Type: application/json", "--body", '{"a": 1}', "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert doc["endpoints"][0]["name"] == "POST /echo" and doc["summary"]["errors"] == 0


def test_secrets_never_reach_disk(demo, tmp_path):
    """An ${ENV} value and a captured token appear nowhere in the session directory or --out."""
    secret = "hunter2-very-secret"
    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [variables]
        password = "${{DEMO_PASSWORD}}"
        [defaults]
        headers = {{ "X-Api-Key" = "${{API_KEY}}" }}
        [[phases]]
        duration = "2s"
        vus = 2
        [[scenarios]]
        [[scenarios.steps]]
        method = "POST"
        url = "/auth/sign-in"
        json = {{ email = "a@example.com", password = "{{{{ password }}}}" }}
        capture = [{{ json = "$.token", as = "token" }}]
        [[scenarios.steps]]
        url = "/api/profile"
        headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
        expect = {{ status = 200 }}
    """)
    sessions = tmp_path / "sessions"
    out = tmp_path / "s.json"
    r = run_cli("run", str(plan), "--out", str(out),
                env={"DEMO_PASSWORD": "TestPassword123!", "API_KEY": secret, "PERFTUI_SESSIONS_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    assert {e["name"]: e["errors"] for e in doc["endpoints"]}["GET /api/profile"] == 0  # the token worked
    files = [out] + [p for p in sessions.rglob("*") if p.is_file()]
    assert len(files) >= 4
    for f in files:
        data = f.read_bytes()
        assert secret.encode() not in data, f
        assert b"TestPassword123!" not in data, f
    assert "***" in out.read_text()
    assert secret not in r.stdout + r.stderr


def test_a_fifo_as_the_plan_does_not_hang(tmp_path):
    fifo = tmp_path / "plan.toml"
    os.mkfifo(fifo)
    r = run_cli("validate", str(fifo), timeout=30)  # no writer: open and read must not block
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "named pipe (FIFO)" in r.stderr and "Traceback" not in r.stderr


def test_a_silent_pipe_as_the_plan_is_refused_after_a_wait():
    # The writer (sleep) holds the pipe open without writing: refused after the read's wait.
    r = subprocess.run(["bash", "-c", f"sleep 7 | {sys.executable} -m perftui validate /dev/stdin"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "nothing could be read" in r.stderr and "Traceback" not in r.stderr


def test_a_plan_from_process_substitution_is_read(tmp_path):
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m perftui validate <(cat plans/demo.toml)"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and ": ok" in r.stdout, (r.stdout, r.stderr)


# ---- terminal control characters from a plan ------------------------------------------------

EVIL = "\x1b[2J\x1b]0;pwned\x07\x9b31m"
EVIL_SHOWN = "\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m"


def _evil_plan(directory) -> str:
    def toml(s: str) -> str:
        return "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or 0x7f <= ord(c) <= 0x9f else c for c in s)

    path = directory / "evil.toml"
    path.write_text(f'''name = "plan{toml(EVIL)}"
target = "demo"
thresholds = ["p95{{step{toml(EVIL)}}} < 5s"]

[[phases]]
name = "phase{toml(EVIL)}"
duration = "2s"
arrival_rate = 4

[[scenarios]]
steps = [{{ url = "/health", name = "step{toml(EVIL)}" }}]
''', encoding="utf-8")
    return str(path)


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\n") or 0x7f <= ord(c) <= 0x9f]
    assert not bad, f"raw control characters reached the terminal: {bad!r}"


def test_control_characters_in_names_are_escaped_in_validate_headless_and_ls(tmp_path):
    plan = _evil_plan(tmp_path)
    env = {"PERFTUI_SESSIONS_DIR": str(tmp_path / "sessions")}
    r = run_cli("validate", plan, env=env)
    assert r.returncode == 0, r.stderr
    _no_controls(r.stdout + r.stderr)
    assert f"plan{EVIL_SHOWN}" in r.stdout
    r = run_cli("run", plan, "--headless", "--out", str(tmp_path / "out.json"), env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    _no_controls(r.stdout + r.stderr)
    assert f"perftui · plan{EVIL_SHOWN}" in r.stdout  # the header
    assert f"phase{EVIL_SHOWN}" in r.stdout  # progress lines
    assert f"step{EVIL_SHOWN}" in r.stdout and "✓ pass" in r.stdout  # summary; the threshold still matches
    assert "MB/h" not in r.stdout and "too short for one" in r.stdout  # a 2 s run has no RSS trend
    r = run_cli("ls", env=env)
    assert r.returncode == 0 and f"plan{EVIL_SHOWN}" in r.stdout
    _no_controls(r.stdout + r.stderr)


def test_control_characters_in_error_messages_are_escaped(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('target = "demo"\n"k\\u001b[2J" = 1\nname = 5\n', encoding="utf-8")
    r = run_cli("validate", str(bad))
    assert r.returncode == 2
    _no_controls(r.stdout + r.stderr)
    assert "unknown key" in r.stderr
    odd = tmp_path / "x\x1b]0;t\x07.toml"  # the file name itself
    odd.write_text(bad.read_text(), encoding="utf-8")
    r = run_cli("validate", str(odd))
    assert r.returncode == 2 and "x\\x1b]0;t\\x07.toml" in r.stderr
    _no_controls(r.stdout + r.stderr)


def test_ls_into_a_closed_pipe_ends_quietly(tmp_path):
    sessions = tmp_path / "sessions"
    for i in range(3):  # some finished sessions to list
        d = sessions / f"20260101-00000{i}-abcd"
        d.mkdir(parents=True)
        (d / "run.json").write_text('{"id": "x", "state": "finished", "plan_name": "p", "started_at": 1.0}')
    for args in (["ls"], ["validate", "plans/demo.toml"], ["--help"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before perftui writes a byte: every write fails with EPIPE
        env = dict(os.environ, PERFTUI_SESSIONS_DIR=str(sessions), CI="true")
        r = subprocess.run([sys.executable, "-m", "perftui", *args], stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=60, env=env, cwd=ROOT)
        os.close(write)
        assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, (args, r.stderr)
        assert r.returncode in (0, 141), (args, r.returncode)


def test_ls_escapes_what_a_hand_edited_run_json_says(tmp_path):
    import json

    d = tmp_path / "sessions" / "20260101-000000-abcd"
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({
        "id": "20260101-000000-abcd", "state": "finished", "plan_name": "evil\x1b[2J", "started_at": 1.0,
        "ended_at": 2.0, "end_reason": "completed\x1b]0;owned\x07"}))
    r = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(tmp_path / "sessions")})
    assert r.returncode == 0, r.stderr
    _no_controls(r.stdout + r.stderr)
    assert "evil\\x1b[2J" in r.stdout
