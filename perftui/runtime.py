"""What every way of running a plan shares: resolving the target (starting the embedded demo
when ``target = "demo"``), where session files go, writing them, and the exit code.

Used by the headless reporter and the dashboard alike.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from perftui.errors import UserError
from perftui.planload import LoadedPlan
from perftui.session import SessionRecord

EXIT_OK = 0
EXIT_THRESHOLDS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def sessions_dir() -> Path:
    """``$PERFTUI_SESSIONS_DIR``, else ``$XDG_DATA_HOME/perftui/sessions`` (``~/.local/share/...``)."""
    env = os.environ.get("PERFTUI_SESSIONS_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "perftui" / "sessions"


def default_session_path(session: SessionRecord) -> Path:
    from perftui.journal import FINAL, session_directory

    return session_directory(sessions_dir(), session) / FINAL


def write_session(session: SessionRecord, path: str | os.PathLike | None) -> Path:
    """Write the session JSON atomically (temp file + rename); returns the path written. In the
    sessions directory the file is user-only (0600 in a 0700 directory), like the journal."""
    from perftui.journal import _atomic_write

    target = Path(path) if path else default_session_path(session)
    if not path:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, session.to_json())
    return target


def fallback_session_path(session: SessionRecord) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"perftui-{session.id}.json"


def save_session(session: SessionRecord, out: str | None, written: Path | None) -> tuple[Path | None, str]:
    """Where the finished document goes, whatever the disk does: ``--out`` when given, else the
    file the journal already wrote, else the sessions directory; when that fails, a fallback
    file in the temp directory, then the working directory. Returns (path or None, a note on
    what failed: printed by the caller)."""
    if written is not None and not out:
        return written, ""
    notes = []
    for candidate in (out, None, fallback_session_path(session), Path.cwd() / f"perftui-{session.id}.json"):
        if candidate is None and out:
            continue  # --out was asked for: a failure there falls back, not into the sessions dir
        try:
            return write_session(session, candidate), "; ".join(notes)
        except OSError as exc:
            where = candidate if candidate is not None else default_session_path(session)
            notes.append(f"cannot write {where}: {exc.strerror or exc}")
    return None, "; ".join(notes)


def check_sessions_dir() -> Path:
    """Fail early (exit 2) when the sessions directory cannot take a session: not creatable,
    read-only or full. A probe of 64 KiB (a few seconds of journal) is written and removed."""
    d = sessions_dir()
    hint = "free some space, fix its permissions, or choose another with --sessions-dir or PERFTUI_SESSIONS_DIR"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UserError(f"sessions directory {d}: cannot create it: {exc.strerror or exc} ({hint})") from None
    probe = d / f".probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, b"\0" * 65536) < 65536:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"sessions directory {d}: cannot write to it: {exc.strerror or exc} ({hint})") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return d


def check_out_path(path: str | None) -> None:
    """Fail early (exit 2) if ``--out`` cannot be written, before any load is sent."""
    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--out {path}: is a directory; give a file name such as {path.rstrip('/')}/session.json")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise UserError(f"--out {path}: directory {parent} is not writable")


class Target:
    """The resolved base URL, plus the demo process if we started one."""

    def __init__(self, url: str, demo=None):
        self.url = url
        self.demo = demo

    def close(self) -> None:
        if self.demo is not None:
            self.demo.stop()
            self.demo = None


def resolve_target(loaded: LoadedPlan) -> Target:
    plan = loaded.plan
    require_extras(loaded)
    if plan.target != "demo":
        return Target(plan.target.rstrip("/"))
    from perftui.demo import launch, parse_latency

    try:
        parse_latency(plan.demo.latency)
    except ValueError as exc:
        raise UserError(f"{loaded.path or '<plan>'}: demo.latency: {exc}") from None
    demo = launch(latency=plan.demo.latency, error_rate=plan.demo.error_rate, port=plan.demo.port)
    return Target(demo.url, demo)


def require_extras(loaded: LoadedPlan) -> None:
    """Exit 2 naming the extra when the plan needs an optional dependency that is missing."""
    if loaded.plan.databases:
        from perftui.worker.sql import DRIVER_MISSING, driver_available

        if not driver_available():
            raise UserError(f"{loaded.path or '<plan>'}: {DRIVER_MISSING}")


def exit_code(session: SessionRecord, interrupted: bool) -> int:
    """130 interrupted by a signal; 1 a threshold failed or the run could not go on (every
    worker died, the ``[[setup]]`` failed); 0 otherwise."""
    if interrupted:
        return EXIT_INTERRUPTED
    if session.end_reason == "all workers died" or session.end_reason.startswith("setup failed"):
        return EXIT_THRESHOLDS
    if session.find_limit is not None:  # a breaking-point search: 0 when a limit was found
        return EXIT_OK if session.find_limit.found else EXIT_THRESHOLDS
    if any(not r.ok for r in session.threshold_results):
        return EXIT_THRESHOLDS
    return EXIT_OK
