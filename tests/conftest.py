"""Shared fixtures: the demo target in a subprocess, a CLI runner, plan files.

All load in tests goes to 127.0.0.1, is bounded in count and time, and stops by itself.

The suite runs in parallel (pytest-xdist, ``-n 3 --dist loadgroup`` in pyproject.toml): every
peer listens on a free port, every file goes under ``tmp_path``, every session directory is the
test's own. Tests of one module that share a module-scoped fixture (a PostgreSQL, a Ray cluster,
sessions recorded once) are sent to one worker together, so the fixture starts once
(``pytest_collection_modifyitems`` below). A test marked ``@pytest.mark.serial`` (one that
needs a core to itself, or measures how fast this machine is) runs alone: the other workers
wait until it is over (``pytest_runtest_protocol`` below). ``python -m pytest -n 0`` runs
everything in one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perftui.demo import launch

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # xdist's workers start with COLUMNS=80 LINES=24 in their environment; the programs the tests
    # start would take them for the terminal's size (a dashboard on a 120x40 pty drawn at 80x24)
    for _var in ("COLUMNS", "LINES"):
        os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def demo():
    """A demo target shared by tests that only read from it (no latency, no errors)."""
    with launch() as proc:
        yield proc


@pytest.fixture
def fresh_demo():
    """A demo target of one's own, for tests that reconfigure it (latency, stalls)."""
    procs = []

    def start(**kwargs):
        p = launch(**kwargs)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


@pytest.fixture(autouse=True)
def _sessions_dir(tmp_path, monkeypatch):
    """Never write session files into the user's home during tests."""
    monkeypatch.setenv("PERFTUI_SESSIONS_DIR", str(tmp_path / "sessions"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup``, a test that uses a fixture of its module's scope goes to the
    worker that runs that module's other such tests (one setup, not one per worker)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is None:
            continue
        if any(defs and defs[-1].scope == "module" for defs in fixtures.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@contextlib.contextmanager
def _section(config, serial: bool):
    """A readers-writer lock over this run's workers: every test holds it shared, a serial one
    exclusive. The gate makes a serial test's turn come as soon as the tests running now end
    (new ones queue behind it). Its files are in the run's base temporary directory, which
    every worker's own is in (pytest removes old ones)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: nothing runs beside anything
        yield
        return
    base = config._tmp_path_factory.getbasetemp().parent
    with open(base / "serial.gate", "a") as gate, open(base / "serial.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if serial else fcntl.LOCK_SH)
        finally:
            if not serial:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if serial:
                fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # outermost, so that the wait is not counted by pytest-timeout; setup and teardown are inside
    with _section(item.config, item.get_closest_marker("serial") is not None):
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_plan(directory: Path, text: str, name: str = "plan.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _cli_env(env: dict | None) -> dict:
    full_env = dict(os.environ)
    full_env["CI"] = "true"
    if env:
        full_env.update(env)
    return full_env


def run_cli(*args: str, timeout: float = 60, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m perftui ARGS`` as a user would (no TTY), capturing output."""
    return subprocess.run([sys.executable, "-m", "perftui", *args], capture_output=True, text=True,
                          timeout=timeout, env=_cli_env(env), cwd=cwd or ROOT)


def run_cli_started(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``run_cli`` without waiting: the process, its output in pipes (``communicate()`` it)."""
    return subprocess.Popen([sys.executable, "-m", "perftui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_cli_env(env), cwd=ROOT)


def read_session(path: Path) -> dict:
    return json.loads(Path(path).read_text())
