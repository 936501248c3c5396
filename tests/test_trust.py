"""Every run survives and its record tells the truth: the dashboard journaled like a headless
run, nothing perftui started outlives it, a failing sessions disk, signals while starting,
recovered documents, in-flight requests at the end, the target's base path, secrets from the
environment, the runtime directory of control sockets."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, read_session, run_cli, write_plan


def _plan(tmp_path: Path, target: str, *, seconds: int = 60, rate: int = 20, url: str = "/health",
          extra: str = "", name: str = "trusty") -> Path:
    return write_plan(tmp_path, f"""
        name = "{name}"
        target = "{target}"
        {extra}
        [[phases]]
        name = "steady"
        duration = "{seconds}s"
        arrival_rate = {rate}
        [[scenarios]]
        steps = [{{ url = "{url}" }}]
    """)


class Pty:
    """``perftui ARGS`` on a pseudo-terminal, as a user on SSH runs it (no CI, a real TTY); the
    screen output is drained by a thread so the dashboard never waits on us."""

    def __init__(self, args: list[str], env: dict):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        # no CI, and no COLUMNS/LINES: they would override the terminal's own size (xdist's
        # workers have COLUMNS=80 LINES=24 in their environment)
        full = {k: v for k, v in os.environ.items() if k not in ("CI", "COLUMNS", "LINES")}
        full.update(env, TERM="xterm-256color")
        self.proc = subprocess.Popen([sys.executable, "-m", "perftui", *args], stdin=slave, stdout=slave,
                                     stderr=slave, cwd=ROOT, env=full, start_new_session=True)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        try:
            os.close(self.master)
        except OSError:
            pass


def _wait_for(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _rows(directory: Path) -> int:
    j = directory / "journal.ndjson"
    return j.read_text().count('"k":"row"') if j.exists() else 0


def _one_dir(sessions: Path) -> Path | None:
    dirs = [d for d in sessions.iterdir() if d.is_dir()] if sessions.is_dir() else []
    return dirs[0] if len(dirs) == 1 else None


def _gone(procs: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """The processes still alive after ``timeout`` (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    alive = procs
    while time.monotonic() < deadline:
        alive = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_dashboard_run_is_journaled_and_recoverable_after_kill_9(tmp_path):
    """The dashboard on a TTY, the embedded demo as target: the session directory appears with
    user-only modes, grows while the run goes; after kill -9, `ls` lists it, `recover` rebuilds
    it, and neither the workers nor the demo target outlive the dashboard."""
    sessions = tmp_path / "sessions"
    plan = _plan(tmp_path, "demo", rate=30)
    term = Pty(["run", str(plan), "--start", "--workers", "2"], {"PERFTUI_SESSIONS_DIR": str(sessions)})
    try:
        directory = _wait_for(lambda: _one_dir(sessions), what="the session directory")
        _wait_for(lambda: _rows(directory) >= 6, what="six journaled seconds")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for name in ("journal.ndjson", "run.json", "checkpoint.msgpack"):
            assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
        children = psutil.Process(term.proc.pid).children(recursive=True)
        names = [" ".join(c.cmdline()) for c in children]
        assert any("perftui.demo" in n for n in names) and any("perftui.worker" in n for n in names), names
        listed = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
        assert "running" in listed.stdout and "trusty" in listed.stdout
        term.proc.send_signal(signal.SIGKILL)
        term.proc.wait(10)
        left = _gone(children)
        assert not left, [" ".join(p.cmdline()) for p in left]
    finally:
        term.close()
    listed = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert "dead" in listed.stdout and "perftui recover" in listed.stdout, listed.stdout
    r = run_cli("recover", str(directory))
    assert r.returncode == 0, r.stderr
    doc = read_session(directory / "session.json")
    assert doc["partial"] and doc["end_reason"].startswith("recovered")
    assert doc["summary"]["requests"] >= 30 * 3
    assert doc["summary"]["duration_s"] >= 4
    assert stat.S_IMODE((directory / "session.json").stat().st_mode) == 0o600


def test_dashboard_run_that_ends_is_listed_with_user_only_files(tmp_path, demo):
    sessions = tmp_path / "sessions"
    plan = _plan(tmp_path, demo.url, seconds=2, rate=10)
    term = Pty(["run", str(plan), "--start", "--workers", "1"], {"PERFTUI_SESSIONS_DIR": str(sessions)})
    try:
        directory = _wait_for(lambda: _one_dir(sessions), what="the session directory")
        _wait_for(lambda: (directory / "session.json").exists(), what="the final document")
        term.send(b"q")
        term.proc.wait(30)
    finally:
        term.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for f in directory.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    listed = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert "finished" in listed.stdout and "completed" in listed.stdout, listed.stdout
    assert read_session(directory / "session.json")["summary"]["requests"] >= 10


def test_detached_run_killed_with_9_leaves_no_children(tmp_path):
    sessions = tmp_path / "sessions"
    plan = _plan(tmp_path, "demo", rate=10)
    r = run_cli("run", str(plan), "--detach", "--workers", "2", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    directory = _one_dir(sessions)
    info = json.loads((directory / "run.json").read_text())
    background = psutil.Process(info["pid"])
    children = background.children(recursive=True)
    assert len(children) >= 3, children  # two workers and the demo target
    background.send_signal(signal.SIGKILL)
    left = _gone(children)
    assert not left, [" ".join(p.cmdline()) for p in left]


def test_recover_is_consistent_and_stops_the_clock(tmp_path, demo):
    """A headless run killed after ~8 s: the recovered document has its true duration and rate,
    totals that agree with its timeline and thresholds evaluated on those totals; run.json says
    recovered, so `ls` stops calling it dead and its LENGTH stops growing."""
    sessions = tmp_path / "sessions"
    plan = _plan(tmp_path, demo.url, rate=20, extra='thresholds = ["requests > 0", "p95 < 10s"]')
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(sessions))
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    try:
        directory = _wait_for(lambda: _one_dir(sessions), what="the session directory")
        _wait_for(lambda: _rows(directory) >= 8, what="eight journaled seconds")
    finally:
        proc.kill()
        proc.wait(10)
    r = run_cli("recover", str(directory), env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    assert "0ms ·" not in r.stdout.splitlines()[1]
    doc = read_session(directory / "session.json")
    s = doc["summary"]
    assert doc["recovered"] is True and doc["partial"] is True
    assert doc["duration_s"] >= 5, doc["duration_s"]
    assert doc["duration_s"] == doc["timeline"][-1]["t"]
    assert s["requests"] == sum(row["requests"] for row in doc["timeline"])
    assert s["rps"] == pytest.approx(s["requests"] / doc["duration_s"], rel=0.01)
    assert sum(e["requests"] for e in doc["endpoints"]) == s["requests"]
    req = next(t for t in doc["thresholds"] if t["expr"] == "requests > 0")
    assert req["value"] == s["requests"]
    info = json.loads((directory / "run.json").read_text())
    assert info["state"] == "recovered" and info["ended_at"]
    first = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)}).stdout
    time.sleep(2.1)
    second = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)}).stdout
    assert "recovered" in first and "dead" not in first
    assert first == second  # LENGTH does not grow with the clock


def test_sigterm_while_workers_start_exits_130_with_a_partial_session(tmp_path, demo):
    sessions = tmp_path / "sessions"
    out = tmp_path / "s.json"
    plan = _plan(tmp_path, demo.url, rate=10)
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(sessions))
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "4",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)

    def a_worker_started() -> bool:
        try:
            return any("perftui.worker" in " ".join(c.cmdline())
                       for c in psutil.Process(proc.pid).children())
        except psutil.Error:
            return False

    _wait_for(a_worker_started, timeout=30, interval=0.005, what="the first worker process")
    proc.send_signal(signal.SIGTERM)  # before it could say hello (a Python start takes ~100 ms)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    doc = read_session(out)
    assert doc["partial"] is True and "SIGTERM" in doc["end_reason"]
    assert read_session(_one_dir(sessions) / "session.json")["id"] == doc["id"]


def test_a_plan_with_20000_steps_starts_its_workers_quickly(tmp_path):
    """Each endpoint's histograms are made on its first request: 20,000 steps used to allocate
    ~6 GB and take 25-30 s before the first request."""
    import asyncio

    from perftui.run.coordinator import Coordinator
    from perftui.planload import load_plan

    steps = "\n".join(f'[[scenarios.steps]]\nurl = "/p{i}"' for i in range(20000))
    path = write_plan(tmp_path, f'name = "big"\ntarget = "http://127.0.0.1:9"\n'
                                f'[[phases]]\nduration = "1s"\narrival_rate = 1\n[[scenarios]]\n{steps}\n')

    async def launch() -> tuple[float, int]:
        c = Coordinator(load_plan(path), "http://127.0.0.1:9", workers=1)
        t0 = time.monotonic()
        try:
            await c.launch()
            took = time.monotonic() - t0
            rss = psutil.Process(c.workers[0].proc.pid).memory_info().rss
        finally:
            c.kill_workers()
            for w in c.workers:
                await w.proc.wait()
        return took, rss

    took, rss = asyncio.run(launch())
    assert rss < 1024 ** 3, rss  # was several GB
    assert took < 15, took  # ~1 s on a quiet machine; was 25-30 s


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB filesystem of our own (tmpfs), to fill or make read-only; skipped where mounting
    is not allowed."""
    mounts = []

    def make(size: str = "2m", *, readonly: bool = False) -> Path:
        d = tmp_path / f"fs{len(mounts)}"
        d.mkdir()
        opts = f"size={size},mode=0700" + (",ro" if readonly else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(d)
        return d

    yield make
    for d in mounts:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


@pytest.mark.parametrize("readonly", [False, True], ids=["full", "read-only"])
def test_a_sessions_dir_that_cannot_be_written_stops_the_start_with_exit_2(tmp_path, demo, small_fs, readonly):
    d = small_fs(readonly=readonly)
    if not readonly:
        _fill(d)
    plan = _plan(tmp_path, demo.url, seconds=2)
    r = run_cli("run", str(plan), "--headless", env={"PERFTUI_SESSIONS_DIR": str(d / "sessions")}, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert f"sessions directory {d / 'sessions'}" in r.stderr
    r = run_cli("run", str(plan), "--headless", "--sessions-dir", str(d), timeout=60)
    assert r.returncode == 2 and f"sessions directory {d}" in r.stderr, r.stderr


def test_a_disk_that_fills_during_the_run_costs_no_results(tmp_path, demo, small_fs):
    """The journal stops with a warning (printed, and in the record), the run goes on in memory
    and its document goes to --out."""
    d = small_fs()
    out = tmp_path / "out.json"
    plan = _plan(tmp_path, demo.url, seconds=6, rate=20)
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(d))
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "1",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    try:
        directory = _wait_for(lambda: _one_dir(d), what="the session directory")
        _wait_for(lambda: _rows(directory) >= 2, what="two journaled seconds")
        _fill(d)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "journal stopped" in stdout and "No space left on device" in stdout
    doc = read_session(out)
    assert doc["end_reason"] == "completed"
    assert doc["summary"]["requests"] >= 20 * 4
    assert any(e["kind"] == "warning" and "journal stopped" in e["message"] for e in doc["events"])


def test_a_full_disk_and_a_signal_still_write_the_document_somewhere(tmp_path, demo, small_fs):
    """No --out, the sessions disk full: a SIGTERM is honoured at once and the document goes to
    the printed fallback path."""
    d = small_fs()
    plan = _plan(tmp_path, demo.url, seconds=60, rate=20)
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(d))
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        directory = _wait_for(lambda: _one_dir(d), what="the session directory")
        _wait_for(lambda: _rows(directory) >= 2, what="two journaled seconds")
        _fill(d)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    line = next(l for l in stdout.splitlines() if l.startswith("session written to "))
    path = Path(line.removeprefix("session written to ").split("  ")[0])
    assert not str(path).startswith(str(d))
    doc = read_session(path)
    path.unlink()
    assert "SIGTERM" in doc["end_reason"] and doc["summary"]["requests"] >= 20 * 2
    assert any(e["kind"] == "warning" and "journal stopped" in e["message"] for e in doc["events"])


@pytest.mark.parametrize("attempt", range(3))
async def test_fast_double_ctrl_c_in_the_dashboard_is_not_a_worker_death(tmp_path, fresh_demo, attempt):
    from perftui.planload import load_plan
    from perftui.ui.app import PerftuiApp, serve

    d = fresh_demo(latency="3s")  # requests in flight that hold a graceful stop
    out = tmp_path / "s.json"
    app = PerftuiApp(load_plan(_plan(tmp_path, d.url, rate=20, url="/api/users/1")), workers=2, out=str(out),
                     start=True)

    async def pilot_script(pilot):
        deadline = time.monotonic() + 30
        while not (app.controller and app.controller.coord and app.controller.coord.session.timeline):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        if attempt == 0:
            await pilot.press("ctrl+c", "ctrl+c")
        elif attempt == 1:
            # two Ctrl-C in one read of the terminal: both handled before the first stop has begun
            app.action_interrupt()
            app.action_interrupt()
        else:
            # the worst order: the workers are killed before the graceful stop has even been asked
            app.controller.force_stop()
            await pilot.pause(0.5)
            app.action_interrupt()

    import asyncio

    code = await asyncio.wait_for(serve(app, headless=True, size=(120, 40), auto_pilot=pilot_script), 60)
    assert code == 0
    doc = read_session(out)
    assert "died" not in doc["end_reason"] and "ctrl+c" in doc["end_reason"], doc["end_reason"]
    assert not any("died" in e["message"] for e in doc["events"]), doc["events"]


async def _run_cli_async(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``perftui ARGS`` without a TTY, awaited (the test's own peer serves in this loop)."""
    import asyncio

    env = dict(os.environ, CI="true")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "perftui", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_requests_in_flight_at_the_end_are_counted_as_interrupted(tmp_path):
    """A target that never answers (30 s timeout, 3 s phase): after the grace period the
    requests still in flight are counted, as kind 'interrupted', and the summary shows them."""
    from tests.http_peers import HANG, RawPeer

    async with RawPeer(lambda r: [HANG]) as peer:
        plan = _plan(tmp_path, f"http://127.0.0.1:{peer.port}", seconds=3, rate=10, url="/never",
                     extra='[defaults]\ngraceful_stop = "1s"')
        out = tmp_path / "s.json"
        code, stdout, stderr = await _run_cli_async("run", str(plan), "--headless", "--workers", "1",
                                                    "--out", str(out))
        sent = len(peer.requests)
    assert code == 0, stderr
    doc = read_session(out)
    s = doc["summary"]
    assert sent >= 20
    assert s["error_kinds"].get("interrupted", 0) == s["requests"] == sent, (s, sent)
    assert "interrupted" in stdout and "0 requests" not in stdout


async def test_the_targets_base_path_is_honoured(tmp_path):
    from tests.http_peers import RawPeer, response

    async with RawPeer(lambda r: [response(200, b"ok")]) as peer:
        plan = write_plan(tmp_path, f"""
            name = "base"
            target = "http://127.0.0.1:{peer.port}/base/"
            [[phases]]
            duration = "1s"
            arrival_rate = 5
            [[scenarios]]
            steps = [{{ url = "/p" }}, {{ url = "/q?x=1" }}]
        """)
        code, stdout, stderr = await _run_cli_async("run", str(plan), "--headless", "--workers", "1",
                                                    "--out", str(tmp_path / "s.json"))
        targets = {r.target for r in peer.requests}
    assert code == 0, stderr
    assert targets == {"/base/p", "/base/q?x=1"}, targets


def test_values_from_the_environment_reach_no_output(tmp_path, demo):
    """${ENV} in a URL path, query, header and body; one step against the demo (an endpoint
    name from the path), one against a closed port (error messages carrying the name). The
    value appears nowhere: stdout, --out, the journal, the checkpoint, run.json, the session
    file, the recovered document."""
    from tests.conftest import free_port

    secret = "s3cr3t-T0ken-98765"
    closed = free_port()
    plan = write_plan(tmp_path, f"""
        name = "secretive"
        target = "{demo.url}"
        [[phases]]
        duration = "3s"
        arrival_rate = 10
        [[scenarios]]
        [[scenarios.steps]]
        url = "/api/users/${{PERFTUI_TEST_TOKEN}}?key=${{PERFTUI_TEST_TOKEN}}"
        headers = {{ X-Trace = "${{PERFTUI_TEST_TOKEN}}" }}
        [[scenarios.steps]]
        url = "http://127.0.0.1:{closed}/p/${{PERFTUI_TEST_TOKEN}}"
        method = "POST"
        body = "t=${{PERFTUI_TEST_TOKEN}}"
    """)
    sessions = tmp_path / "sessions"
    out = tmp_path / "out.json"
    r = run_cli("run", str(plan), "--headless", "--workers", "1", "--out", str(out),
                env={"PERFTUI_TEST_TOKEN": secret, "PERFTUI_SESSIONS_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    doc = read_session(out)
    names = [e["name"] for e in doc["endpoints"]]
    assert any("/api/users/***" in n for n in names) and any("/p/***" in n for n in names), names
    assert doc["summary"]["errors"] > 0  # the refused step's messages went through too
    directory = _one_dir(sessions)
    rec = run_cli("recover", str(directory), "--out", str(tmp_path / "rec.json"))
    assert rec.returncode == 0, rec.stderr
    texts = {"stdout": r.stdout + r.stderr + rec.stdout, "out": out.read_text(),
             "recovered": (tmp_path / "rec.json").read_text()}
    for f in directory.iterdir():
        texts[f.name] = f.read_bytes().decode("latin-1")
    leaked = [k for k, v in texts.items() if secret in v]
    assert not leaked, leaked
    assert "***" in r.stdout


def test_detach_refuses_a_socket_directory_owned_by_another_user(tmp_path, demo, request):
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    if os.getuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    import shutil
    import tempfile

    # a short directory: the control socket's path must fit AF_UNIX's ~107 bytes, and tmp_path
    # is longer under pytest-xdist (a popen-gwN level)
    tmp = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    squatted = tmp / f"perftui-{os.getuid()}"
    squatted.mkdir(mode=0o777)
    os.chown(squatted, nobody.pw_uid, nobody.pw_gid)
    plan = _plan(tmp_path, demo.url, seconds=30, rate=5)
    sessions = tmp_path / "sessions"
    env = {"TMPDIR": str(tmp), "XDG_RUNTIME_DIR": "", "PERFTUI_SESSIONS_DIR": str(sessions)}
    r = run_cli("run", str(plan), "--detach", "--workers", "1", env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert str(squatted) in r.stderr and "another user" in r.stderr
    # with a runtime directory of our own, the socket goes there
    runtime = tmp / "run"
    runtime.mkdir(mode=0o700)
    r = run_cli("run", str(plan), "--detach", "--workers", "1", env=dict(env, XDG_RUNTIME_DIR=str(runtime)))
    assert r.returncode == 0, r.stderr
    info = json.loads((_one_dir(sessions) / "run.json").read_text())
    try:
        assert info["socket"].startswith(str(runtime / "perftui") + "/")
        assert stat.S_IMODE((runtime / "perftui").stat().st_mode) == 0o700
    finally:
        os.kill(info["pid"], signal.SIGINT)
        _wait_for(lambda: not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == "zombie",
                  what="the background run to stop")


def test_detach_with_a_runtime_directory_too_long_for_a_socket(tmp_path, demo):
    """A socket's whole path must fit AF_UNIX's ~107 bytes; a deep XDG_RUNTIME_DIR (or TMPDIR)
    made ``--detach`` end in a traceback. The control socket now goes to /tmp/perftui-<uid>."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    plan = _plan(tmp_path, demo.url, seconds=30, rate=5)
    sessions = tmp_path / "sessions"
    r = run_cli("run", str(plan), "--detach", "--workers", "1",
                env={"XDG_RUNTIME_DIR": str(deep), "TMPDIR": str(deep), "PERFTUI_SESSIONS_DIR": str(sessions)})
    assert r.returncode == 0 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    info = json.loads((_one_dir(sessions) / "run.json").read_text())
    try:
        assert info["socket"].startswith(f"/tmp/perftui-{os.getuid()}/"), info["socket"]
        assert len(os.fsencode(info["socket"])) < 108
        ls = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
        assert ls.returncode == 0 and "running" in ls.stdout, ls.stdout
    finally:
        os.kill(info["pid"], signal.SIGINT)
        _wait_for(lambda: not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == "zombie",
                  what="the background run to stop")


def test_sigterm_while_the_dashboard_starts_its_workers(tmp_path, demo):
    sessions = tmp_path / "sessions"
    plan = _plan(tmp_path, demo.url, rate=10)
    term = Pty(["run", str(plan), "--start", "--workers", "3"], {"PERFTUI_SESSIONS_DIR": str(sessions)})
    try:
        def a_worker_started() -> bool:
            try:
                return any("perftui.worker" in " ".join(c.cmdline())
                           for c in psutil.Process(term.proc.pid).children())
            except psutil.Error:
                return False

        _wait_for(a_worker_started, timeout=30, interval=0.005, what="the first worker process")
        term.proc.send_signal(signal.SIGTERM)
        assert term.proc.wait(30) == 130
        time.sleep(0.3)  # the last output
    finally:
        term.close()
    assert b"Traceback" not in term.output
    directory = _one_dir(sessions)
    doc = read_session(directory / "session.json")
    assert doc["partial"] and "SIGTERM" in doc["end_reason"]
    assert json.loads((directory / "run.json").read_text())["state"] == "finished"


def test_the_dashboard_shows_no_value_from_the_environment(tmp_path, demo):
    secret = "s3cr3t-D4sh-24680"
    plan = write_plan(tmp_path, f"""
        name = "secretive dashboard"
        target = "{demo.url}"
        [[phases]]
        duration = "3s"
        arrival_rate = 10
        [[scenarios]]
        [[scenarios.steps]]
        url = "/api/users/${{PERFTUI_TEST_TOKEN}}"
    """)
    sessions = tmp_path / "sessions"
    term = Pty(["run", str(plan), "--start", "--workers", "1"],
               {"PERFTUI_SESSIONS_DIR": str(sessions), "PERFTUI_TEST_TOKEN": secret})
    try:
        directory = _wait_for(lambda: _one_dir(sessions), what="the session directory")
        _wait_for(lambda: (directory / "session.json").exists(), what="the end of the run")
        time.sleep(1.0)  # a few frames of the results
        term.send(b"q")
        term.proc.wait(30)
        time.sleep(0.3)
    finally:
        term.close()
    shown = term.output.decode("utf-8", "replace")
    assert "GET /api/users/***" in shown  # the summary printed after the dashboard closed
    assert secret not in shown
    assert secret not in (directory / "session.json").read_text()


def test_a_disk_that_fills_under_the_dashboard_costs_no_results(tmp_path, demo, small_fs):
    """The dashboard's own run on a TTY: the sessions disk fills mid-run, the journal's failure is
    a warning, the run goes on in memory, and on the way out (SIGTERM, as a dropped SSH link's
    HUP would be) the document goes to the printed fallback path — no hang."""
    d = small_fs()
    plan = _plan(tmp_path, demo.url, seconds=60, rate=20)
    term = Pty(["run", str(plan), "--start", "--workers", "1"], {"PERFTUI_SESSIONS_DIR": str(d)})
    try:
        directory = _wait_for(lambda: _one_dir(d), what="the session directory")
        _wait_for(lambda: _rows(directory) >= 2, what="two journaled seconds")
        _fill(d)
        time.sleep(3)  # a few seconds run on in memory after the journal failed
        term.proc.send_signal(signal.SIGTERM)
        code = term.proc.wait(30)
        time.sleep(0.5)  # let the drain thread read the last screen
    finally:
        term.close()
    assert code == 130
    screen = bytes(term.output).decode("utf-8", "replace")
    assert "Traceback" not in screen
    m = re.search(r"session written to (\S+\.json)", screen)
    assert m, screen[-2000:]
    path = Path(m.group(1))
    assert not str(path).startswith(str(d))
    doc = read_session(path)
    path.unlink()
    assert "SIGTERM" in doc["end_reason"]
    assert doc["summary"]["requests"] >= 20 * 2
    assert any(e["kind"] == "warning" and "journal stopped" in e["message"] for e in doc["events"])
