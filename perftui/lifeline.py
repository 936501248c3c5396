"""Children never outlive the perftui process that started them, whatever kills it (``kill -9``
included): a lifeline pipe.

The parent (``perftui run``, the dashboard, a ``--detach`` background run) creates one pipe and
keeps its write end open for its whole life, never passing it on. Each child it starts (worker
processes, the embedded demo target) inherits only the read end (``child_options()``) and calls
``watch_parent()`` first thing: a daemon thread blocks reading it, and when the parent is gone
the kernel closes the write end, the read returns end-of-file, and the child kills itself.

Why a pipe rather than ``PR_SET_PDEATHSIG``: the death signal fires when the *thread* that
forked the child exits, and the demo target is started from an executor thread; a pipe follows
the process, works the same whatever thread started the child, and needs no ctypes.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "PERFTUI_LIFELINE"

_read_fd: int | None = None
_write_fd: int | None = None
_pid: int | None = None


def _ensure() -> int:
    global _read_fd, _write_fd, _pid
    if _read_fd is None or _pid != os.getpid():
        # os.pipe() fds are not inheritable: only pass_fds hands the read end to a child
        _read_fd, _write_fd = os.pipe()
        _pid = os.getpid()
    return _read_fd


def child_options(env: dict | None = None) -> dict:
    """Keyword arguments for ``subprocess.Popen`` / ``asyncio.create_subprocess_exec`` that give
    the child the lifeline: ``pass_fds`` and an ``env`` naming the fd."""
    fd = _ensure()
    child_env = dict(os.environ if env is None else env)
    child_env[ENV] = str(fd)
    return {"pass_fds": (fd,), "env": child_env}


def watch_parent() -> None:
    """In a child: die as soon as the parent that started us is gone (no-op without a lifeline)."""
    text = os.environ.pop(ENV, None)
    if not text:
        return
    try:
        fd = int(text)
        os.fstat(fd)
    except (ValueError, OSError):
        return

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        # the parent died without stopping us: nobody will read our results
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="perftui-lifeline", daemon=True).start()
