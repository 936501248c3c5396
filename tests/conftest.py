"""Shared fixtures: the demo target in a subprocess, a CLI runner, plan files.

All load in tests goes to 127.0.0.1, is bounded in count and time, and stops by itself.
"""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_plan(directory: Path, text: str, name: str = "plan.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = 60, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m perftui ARGS`` as a user would (no TTY), capturing output."""
    full_env = dict(os.environ)
    full_env["CI"] = "true"
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "perftui", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


def read_session(path: Path) -> dict:
    return json.loads(Path(path).read_text())
