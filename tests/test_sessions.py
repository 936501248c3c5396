"""Sessions that survive: journal + checkpoints and recover after kill -9, graceful signals,
worker deaths, detach / attach / ls over the local control socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, read_session, run_cli, write_plan


def _plan(tmp_path, demo, seconds=60, rate=40, extra="", url="/health"):
    return write_plan(tmp_path, f"""
        name = "survivor"
        target = "{demo.url}"
        {extra}
        [[phases]]
        name = "steady"
        duration = "{seconds}s"
        arrival_rate = {rate}
        [[scenarios]]
        steps = [{{ url = "{url}" }}]
    """)


def _start(args, sessions, **kw):
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(sessions))
    return subprocess.Popen([sys.executable, "-m", "perftui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env, **kw)


def _session_dir(sessions: Path, timeout: float = 30) -> Path:
    """The one session directory, once the run has made it (start-up is slow on a busy machine)."""
    deadline = time.monotonic() + timeout
    while not (sessions.is_dir() and any(d.is_dir() for d in sessions.iterdir())):
        assert time.monotonic() < deadline, f"no session directory in {sessions}"
        time.sleep(0.1)
    dirs = [d for d in sessions.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _wait_running(sessions: Path, seconds: int) -> None:
    """Until the run has journaled ``seconds`` rows: time on the run's clock, not the test's."""
    _wait_rows(_session_dir(sessions), seconds, timeout=60)


def _wait_rows(directory: Path, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = directory / "journal.ndjson"
        if j.exists() and j.read_text().count('"k":"row"') >= n:
            return
        time.sleep(0.1)
    raise AssertionError("journal did not grow")


def test_kill_9_then_recover(tmp_path, demo):
    sessions = tmp_path / "sessions"
    proc = _start(["run", str(_plan(tmp_path, demo)), "--headless"], sessions)
    directory = _session_dir(sessions)
    _wait_rows(directory, 8)  # the recovered record stops at the last checkpoint (every 2 s)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    for c in children:  # the workers notice stdin closing and stop by themselves
        try:
            c.wait(5)
        except psutil.NoSuchProcess:
            pass
    assert not (directory / "session.json").exists()
    r = run_cli("ls", env={"PERFTUI_SESSIONS_DIR": str(sessions)})
    assert "dead" in r.stdout and "perftui recover" in r.stdout
    sid = directory.name[:20]
    opened = run_cli("attach", sid, env={"PERFTUI_SESSIONS_DIR": str(sessions)})  # opening it recovers too
    assert opened.returncode == 0 and "recovered session written to" in opened.stdout, opened.stderr
    (directory / "session.json").unlink()
    r = run_cli("recover", str(directory), "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    doc = read_session(directory / "session.json")
    assert doc == read_session(tmp_path / "r.json")
    assert doc["partial"] is True
    assert doc["end_reason"].startswith("recovered")
    rows = doc["timeline"]
    assert len(rows) >= 6
    # at most the last 5 s are lost: the timeline reaches to within 5 s of the kill
    started = doc["started_at"]
    assert started is not None
    assert doc["summary"]["requests"] >= 40  # ~40/s for 4 s and more on a quiet machine
    assert doc["summary"]["requests"] == sum(r["requests"] for r in rows)  # one checkpoint, consistent
    assert doc["histogram"]
    assert any(e["kind"] == "start" for e in doc["events"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signals_stop_gracefully_within_two_seconds(tmp_path, demo, sig):
    out = tmp_path / "s.json"
    proc = _start(["run", str(_plan(tmp_path, demo)), "--headless", "--out", str(out)], tmp_path / "sessions")
    time.sleep(2.5)
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=10)
    assert out.exists()
    assert time.monotonic() - t0 < 8  # written, and the process gone: ~2 s quietly, bounded when busy
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    doc = read_session(out)
    assert doc["partial"] and sig.name in doc["end_reason"]


def test_second_sigint_stops_at_once_and_still_writes(tmp_path, fresh_demo):
    d = fresh_demo(latency="3s")  # in-flight requests that would hold a graceful stop
    out = tmp_path / "s.json"
    proc = _start(["run", str(_plan(tmp_path, d, rate=20, url="/api/users/1")), "--headless", "--out", str(out)],
                  tmp_path / "sessions")
    _wait_running(tmp_path / "sessions", 4)  # the first 3 s answers are in; later ones in flight
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130
    doc = read_session(out)
    assert doc["partial"] and "forced" in doc["end_reason"]
    assert doc["summary"]["requests"] > 0


def test_worker_death_is_detected_and_the_run_goes_on(tmp_path, demo):
    out = tmp_path / "s.json"
    proc = _start(["run", str(_plan(tmp_path, demo, seconds=6, rate=100)), "--headless", "--workers", "2",
                   "--out", str(out)], tmp_path / "sessions")
    _wait_running(tmp_path / "sessions", 2)
    workers = [c for c in psutil.Process(proc.pid).children() if "perftui.worker" in " ".join(c.cmdline())]
    assert len(workers) == 2
    killed = time.monotonic()
    workers[1].kill()
    lines = []
    while True:  # the headless output reports it within a second
        line = proc.stdout.readline()
        lines.append(line)
        if "died" in line or not line:
            break
    assert "died" in lines[-1] and time.monotonic() - killed < 5  # within a second on a quiet machine
    stdout, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    doc = read_session(out)
    assert doc["end_reason"] == "completed"
    assert any(e["kind"] == "worker" and "died" in e["message"] for e in doc["events"])
    # the survivor took over the whole rate: ~600 requests in 6 s
    assert doc["summary"]["requests"] >= 300, doc["summary"]["requests"]  # ~600 on a quiet machine
    assert doc["generator"]["workers_alive"] == 1


def test_last_worker_dying_stops_cleanly(tmp_path, demo):
    out = tmp_path / "s.json"
    proc = _start(["run", str(_plan(tmp_path, demo)), "--headless", "--workers", "1", "--out", str(out)],
                  tmp_path / "sessions")
    _wait_running(tmp_path / "sessions", 2)
    for c in psutil.Process(proc.pid).children():
        if "perftui.worker" in " ".join(c.cmdline()):
            c.kill()
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 1, stdout + stderr
    doc = read_session(out)
    assert doc["partial"] and doc["end_reason"] == "all workers died"
    assert "Traceback" not in stderr


async def test_detach_attach_control_and_ls(tmp_path, demo):
    from perftui.run.attach import RemoteCoordinator

    sessions = tmp_path / "sessions"
    env = {"PERFTUI_SESSIONS_DIR": str(sessions)}
    plan = _plan(tmp_path, demo, seconds=120, rate=20)
    r = await asyncio.to_thread(run_cli, "run", str(plan), "--detach", env=env)
    assert r.returncode == 0, r.stderr
    sid = r.stdout.split()[1]
    assert f"perftui attach {sid}" in r.stdout
    info = json.loads((_session_dir(sessions) / "run.json").read_text())
    sock = Path(info["socket"])
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    ls = await asyncio.to_thread(run_cli, "ls", env=env)
    assert sid in ls.stdout and "running" in ls.stdout

    viewers = [RemoteCoordinator(str(sock)), RemoteCoordinator(str(sock))]
    for v in viewers:
        await v.connect()
    await asyncio.sleep(2.5)
    a, b = viewers
    assert a.state == "running" and a.current.name == "steady"
    assert a.session.timeline and a.session.timeline[-1].rps > 10
    # both viewers see the same numbers as each other
    assert [r.requests for r in a.session.timeline[-2:]] == [r.requests for r in b.session.timeline[-2:]]
    # and the arrivals the run asked for in each second (20/s: 20)
    assert [r.asked for r in a.session.timeline[-2:]] == [r.asked for r in b.session.timeline[-2:]]
    assert a.session.timeline[-1].asked == pytest.approx(20.0, abs=0.01)
    a.pause()
    await asyncio.sleep(0.5)
    assert b.state == "paused"
    a.resume()
    assert a.set_rate(30) == 30
    a.annotate("from a viewer")
    await asyncio.sleep(1.5)
    assert b.target_now()[0] == 30
    assert any(e.kind == "annotation" and e.message == "from a viewer" for e in b.session.events)
    await b.detach()  # leaving a viewer does not stop the run
    await asyncio.sleep(1.2)
    assert a.state == "running"
    await a.stop()
    assert a.finished.is_set() and a.session_file
    doc = read_session(Path(a.session_file))
    assert doc["end_reason"].startswith("stopped by user")
    kinds = [e["kind"] for e in doc["events"]]
    assert {"pause", "resume", "rate", "annotation", "stop"} <= set(kinds)
    ls = await asyncio.to_thread(run_cli, "ls", env=env)
    assert "finished" in ls.stdout
    assert not sock.exists()


async def test_attached_viewer_scales_a_ramp_like_the_local_dashboard(tmp_path, demo):
    """+ on an attached viewer during a ramp scales both of its ends in the run (not a flat rate),
    and the viewer's replica clock shows the scaled ramp at once and after the run's next state."""
    import tempfile

    from perftui.planload import load_plan
    from perftui.run.attach import ControlServer, RemoteCoordinator
    from perftui.run.coordinator import Coordinator

    plan = write_plan(tmp_path, f"""
        target = "{demo.url}"
        [[phases]]
        name = "ramp"
        duration = "60s"
        arrival_rate = 4
        ramp_to = 40
        [[scenarios]]
        steps = [{{ url = "/health" }}]
    """)
    coord = Coordinator(load_plan(plan), demo.url, workers=1)
    sock_dir = Path(tempfile.mkdtemp(prefix="perftui-test-"))  # AF_UNIX paths are short
    server = ControlServer(coord, sock_dir / "run.sock")
    await server.start()
    viewer = RemoteCoordinator(str(server.path))
    try:
        await coord.start()
        await viewer.connect()
        await asyncio.sleep(1.0)
        planned = viewer.current
        now = viewer.scale_load(2.0)
        assert viewer.current is not planned and viewer.current.describe() == "8→80/s"  # what the notice reads
        assert viewer.override is None and now is not None and 8.0 < now < 20.0
        for _ in range(50):
            if coord.current.end_value == 80.0:
                break
            await asyncio.sleep(0.1)
        assert (coord.current.start_value, coord.current.end_value) == (8.0, 80.0) and coord.override is None
        assert coord.session.phases[0].target == "8→80/s"
        # the newest "ramp scaled" event (a load warning may have come after it on a busy machine)
        scaled = [e.message for e in coord.session.events if "ramp scaled" in e.message]
        assert scaled and "ramp scaled ×2: 8→80/s" in scaled[-1]
        await asyncio.sleep(1.2)  # a tick carries the run's clock: the replica agrees with it
        assert viewer.current.describe() == "8→80/s" and viewer.override is None
        assert abs(viewer.current_phase_elapsed() - coord.current_phase_elapsed()) < 0.5
        assert any("ramp scaled ×2" in e.message for e in viewer.session.events)
    finally:
        await viewer.detach()
        await coord.stop("stopped by test")
        await server.close()
        sock_dir.rmdir()


def test_attach_without_a_tty_follows_until_the_end(tmp_path, demo):
    sessions = tmp_path / "sessions"
    env = {"PERFTUI_SESSIONS_DIR": str(sessions)}
    r = run_cli("run", str(_plan(tmp_path, demo, seconds=3, rate=10)), "--detach", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("attach", env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "attached to" in r.stdout and "req" in r.stdout and "session written to" in r.stdout
    r = run_cli("attach", env=env)
    assert r.returncode == 2 and "no running session" in r.stderr


async def test_attached_viewer_sees_target_monitoring(tmp_path, demo):
    from perftui.run.attach import RemoteCoordinator

    sessions = tmp_path / "sessions"
    env = {"PERFTUI_SESSIONS_DIR": str(sessions)}
    plan = _plan(tmp_path, demo, seconds=30, rate=10,
                 extra='[monitor]\nhealth = "/health"\nmetrics = "/metrics"\ninterval = "500ms"')
    r = await asyncio.to_thread(run_cli, "run", str(plan), "--detach", env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads((_session_dir(sessions) / "run.json").read_text())
    await asyncio.sleep(2.5)  # attach late: the viewer must still get what came before
    viewer = RemoteCoordinator(info["socket"])
    await viewer.connect()
    mon = viewer.session.monitor
    assert mon.enabled and [h.up for h in mon.health] == [True]
    assert mon.health[0].since is not None and mon.health[0].since < 1.5  # up since the start, not since attaching
    assert mon.series_info, "the series list (from the first scrape) came with the handshake"
    await asyncio.sleep(2.0)
    rows = [row for row in viewer.session.timeline if row.monitor is not None]
    assert rows and rows[-1].monitor.health, rows[-1:]
    assert mon.metric_names()
    await viewer.stop()
    doc = read_session(Path(viewer.session_file))
    assert doc["monitor"]["health"]


def test_headless_on_a_frozen_then_closed_terminal(tmp_path, demo):
    """Headless over SSH: the link freezes (nobody reads the pty), then drops. Progress lines never
    block the run, and on SIGHUP the session is written and the process exits 130."""
    import pty

    plan = _plan(tmp_path, demo, rate=50)
    out = tmp_path / "frozen.json"
    master, slave = pty.openpty()
    env = dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=str(tmp_path / "sessions"))
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "run", str(plan), "--headless", "--out", str(out)],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    try:
        time.sleep(6)  # frozen from the start: nobody reads
        directory = _session_dir(tmp_path / "sessions")
        rows = (directory / "journal.ndjson").read_text().count('"k":"row"')
        assert rows >= 2, rows  # the run went on while the terminal was not read (~5 rows quietly)
        os.close(master)  # the link drops
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = read_session(out)
    assert doc["end_reason"] == "interrupted (SIGHUP)" and doc["partial"] is True
    assert doc["summary"]["requests"] >= 50
