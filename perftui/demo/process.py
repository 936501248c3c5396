"""Run the demo target in a subprocess: ``launch()`` -> :class:`DemoProcess`."""

from __future__ import annotations

import atexit
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Any
from urllib.parse import urlsplit

from perftui.demo.latency import parse_latency
from perftui.demo.state import check_error_rate

__all__ = ["DemoProcess", "launch", "READY_TIMEOUT_S"]

READY_TIMEOUT_S = 15.0
_READY = re.compile(r"perftui demo target listening on (http://\S+)")
# Strong references: a DemoProcess that is dropped without stop() is still stopped at exit.
_LIVE: set[DemoProcess] = set()


class DemoProcess:
    """A running demo target subprocess (in its own process group)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, stderr_file: IO[bytes]) -> None:
        self._proc = proc
        self._stderr = stderr_file
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.pid = proc.pid
        _LIVE.add(self)

    @property
    def returncode(self) -> int | None:
        """None while running, else the exit status (negative: killed by that signal)."""
        return self._proc.poll()

    def running(self) -> bool:
        return self._proc.poll() is None

    def stderr_text(self) -> str:
        """Whatever the server wrote to stderr so far."""
        return _read_all(self._stderr)

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL the process group.

        Idempotent; returns the exit status."""
        proc = self._proc
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc)
                proc.wait()
        _close(proc.stdout)
        _LIVE.discard(self)
        return proc.returncode

    def __enter__(self) -> DemoProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited {self.returncode}"
        return f"<DemoProcess pid={self.pid} {self.url} {state}>"


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        try:
            stream.close()
        except OSError:
            pass


def _read_all(f: IO[bytes]) -> str:
    try:
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def launch(
    *, latency: str = "0ms", error_rate: float = 0.0, port: int = 0, host: str = "127.0.0.1"
) -> DemoProcess:
    """Start ``python -m perftui.demo`` and wait (up to 15 s) until it is listening.

    Bad ``latency``/``error_rate`` raise ``ValueError`` before anything starts; a server that
    fails to come up raises ``RuntimeError`` carrying its stderr. stderr goes to a temporary
    file (never a pipe nobody reads, never the caller's terminal).
    """
    parse_latency(latency)
    rate = check_error_rate(error_rate)
    cmd = [
        sys.executable, "-m", "perftui.demo",
        "--host", host, "--port", str(int(port)),
        "--latency", latency, "--error-rate", repr(rate),
    ]
    stderr_file = tempfile.TemporaryFile(prefix="perftui-demo-", suffix=".stderr")
    from perftui.lifeline import child_options

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    lifeline = child_options(env)  # the demo dies with us, even after a kill -9
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        start_new_session=True,  # own session and process group: terminal ^C does not reach it
        close_fds=True,
        **lifeline,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    url: str | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not sel.select(timeout=min(remaining, 0.5)):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:  # EOF: the process exited (or closed stdout)
                break
            buf += chunk
            *lines, _partial = buf.split(b"\n")
            for line in lines:
                match = _READY.search(line.decode("utf-8", "replace"))
                if match:
                    url = match.group(1)
                    break
    if url is None:
        if proc.poll() is None:
            _killpg(proc)
            proc.wait()
            reason = f"did not report ready within {READY_TIMEOUT_S:g}s"
        else:
            reason = f"exited with status {proc.returncode}"
        _close(proc.stdout)
        err = _read_all(stderr_file).strip()
        stderr_file.close()
        raise RuntimeError(f"perftui demo target {reason}: {err or buf.decode('utf-8', 'replace').strip() or 'no output'}")
    return DemoProcess(proc, url, stderr_file)


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a demo server behind when the parent exits without stopping it."""
    for demo in list(_LIVE):
        try:
            demo.stop(timeout=2)
        except Exception:  # pragma: no cover - best effort at exit
            pass
