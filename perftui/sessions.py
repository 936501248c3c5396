"""Session management commands: ``--detach``, ``perftui ls``, ``perftui attach``, ``perftui recover``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from perftui.errors import UserError
from perftui.journal import FINAL, RUN_INFO, SessionEntry, directory_for, list_sessions, recover
from perftui.planload import LoadedPlan
from perftui.runtime import sessions_dir
from perftui.session import new_session_id
from perftui.units import format_duration, printable


def detach(loaded: LoadedPlan, argv: list[str]) -> int:
    """Start the same command in the background as a headless run serving a control socket."""
    from perftui.run.attach import socket_dir

    socket_dir()  # a directory another user owns: say so here (exit 2), not from the background
    sid = new_session_id()
    directory = directory_for(sessions_dir(), sid, loaded.plan.name)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = directory / "output.log"
    child_argv = [a for a in argv if a != "--detach"] + ["--headless", "--serve", "--session-id", sid]
    env = dict(os.environ, PERFTUI_SESSIONS_DIR=str(sessions_dir()))
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "perftui", *child_argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                cwd=os.getcwd())
    deadline = time.monotonic() + 60
    info: dict = {}
    while time.monotonic() < deadline:
        try:
            info = json.loads((directory / RUN_INFO).read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("socket") or info.get("state") == "finished":
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if not info.get("socket") and info.get("state") != "finished":
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        if proc.poll() is None:
            proc.terminate()
        raise UserError(f"the background run did not start (exit code {proc.poll()}):\n{tail}")
    print(f"session {sid} running in the background (pid {proc.pid})")
    print(f"  attach   perftui attach {sid}")
    print("  list     perftui ls")
    print(f"  stop     perftui attach {sid}, then x  (or: kill -INT {proc.pid})")
    print(f"  files    {directory}")
    return 0


def _find(ident: str | None, *, want_running: bool) -> SessionEntry:
    entries = list_sessions(sessions_dir())
    if not entries:
        raise UserError(f"no sessions in {sessions_dir()}")
    if ident is None:
        running = [e for e in entries if e.state == "running"]
        if want_running:
            if not running:
                raise UserError("no running session to attach to (perftui ls lists them all)")
            return running[-1]
        return entries[-1]
    name = ident.rstrip("/")
    matches = ([e for e in entries if e.id == ident] or [e for e in entries if Path(e.directory).name == name]
               or [e for e in entries if e.id.startswith(ident)])
    if not matches:
        raise UserError(f"no session {ident!r} in {sessions_dir()} (perftui ls lists them)")
    if len(matches) > 1:
        raise UserError(f"{ident!r} matches {len(matches)} sessions: " + ", ".join(e.id for e in matches))
    return matches[0]


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _outcome(e: SessionEntry) -> tuple[str, str]:
    """Requests and threshold verdict of a finished run, from its document ("-" when unknown):
    ``pass``, ``FAIL n/m`` (n of m thresholds failed) or ``none`` (the plan had no thresholds)."""
    if e.state not in ("finished", "recovered"):
        return "-", "-"
    try:
        doc = json.loads((Path(e.directory) / FINAL).read_bytes())
        requests = str(int(doc["summary"]["requests"]))
        results = [t for t in doc.get("thresholds") or [] if isinstance(t, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        return "-", "-"
    failed = sum(1 for t in results if not t.get("ok"))
    return requests, ("none" if not results else f"FAIL {failed}/{len(results)}" if failed else "pass")


def cmd_ls(args) -> int:
    entries = list_sessions(sessions_dir())
    if not entries:
        print(f"no sessions in {sessions_dir()}")
        return 0
    print(f"{'ID':<22} {'STATE':<9} {'STARTED':<19} {'LENGTH':>8} {'REQUESTS':>9} {'VERDICT':<9}  PLAN / NOTE")
    for e in entries:
        length = format_duration((e.ended_at or time.time()) - e.started_at) if e.started_at else "-"
        requests, verdict = _outcome(e)
        note = e.end_reason if e.state in ("finished", "recovered") else ("perftui recover " + e.id if e.state == "dead" else
                                                          ("attach: perftui attach " + e.id if e.socket else ""))
        # run.json is a file anyone may have edited: its text is escaped like a plan's
        print(printable(f"{e.id:<22} {e.state:<9} {_when(e.started_at):<19} {length:>8} {requests:>9} {verdict:<9}  "
                        f"{e.plan_name}" + (f" [{e.profile}]" if e.profile else "")
                        + (f" · {note}" if note else "")))
    print(f"\n{sessions_dir()}")
    return 0


def cmd_recover(args) -> int:
    from perftui.headless import summary_text
    from perftui.runtime import write_session

    path = Path(args.path)
    if not path.exists():
        path = Path(_find(args.path, want_running=False).directory)
    session = recover(path)
    directory = path if path.is_dir() else path.parent
    written = write_session(session, directory / FINAL)
    print(summary_text(session))
    print(f"\nrecovered session written to {written}" + ("  (partial)" if session.partial else ""))
    if args.out:
        print(f"and to {write_session(session, args.out)}")
    return 0


def cmd_attach(args) -> int:
    entry = _find(args.id, want_running=True)
    if entry.state == "dead":
        # Opening a run whose process died rebuilds its document, as `perftui recover` does.
        print(f"session {entry.id} is not running any more (its process died); recovering it", file=sys.stderr)
        args.path, args.out = entry.directory, None
        return cmd_recover(args)
    if entry.state == "finished" or not entry.socket:
        raise UserError(f"session {entry.id} has finished: {Path(entry.directory) / FINAL}")
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("CI") is None
    if interactive and not args.headless:
        try:
            from perftui.ui.app import run_attached
        except ImportError:
            run_attached = None
        if run_attached is not None:
            return run_attached(entry.socket, refresh=args.refresh)
    return asyncio.run(_follow(entry.socket))


async def _follow(socket_path: str) -> int:
    """Attach without a dashboard: print progress lines until the run ends (Ctrl-C detaches)."""
    import signal

    from perftui.run.attach import RemoteCoordinator
    from perftui.headless import progress_line, summary_text
    from perftui.session.observer import OnInterval

    remote = RemoteCoordinator(socket_path)
    try:
        await remote.connect()
    except (OSError, asyncio.TimeoutError) as exc:
        raise UserError(f"cannot connect to {socket_path}: {exc}") from None
    print(printable(f"attached to {remote.session.id} · {remote.session.plan_name} → {remote.target} (Ctrl-C detaches)"),
          flush=True)
    remote.session.add_observer(OnInterval(
        lambda _s, state: print(progress_line(remote), flush=True) if state != "finished" else None))
    loop = asyncio.get_running_loop()
    detached = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, detached.set)
    loop.add_signal_handler(signal.SIGHUP, detached.set)
    waiter = asyncio.ensure_future(remote.finished.wait())
    await asyncio.wait([waiter, asyncio.ensure_future(detached.wait())], return_when=asyncio.FIRST_COMPLETED)
    if detached.is_set() and not remote.finished.is_set():
        await remote.detach()
        print("\ndetached; the run goes on", flush=True)
        return 0
    print(summary_text(remote.session))
    if remote.session_file:
        print(f"\nsession written to {remote.session_file}")
    return 0


def resolve_document(ref: str) -> Path:
    """A session document named by a file (``session.json`` or any exported one), a session
    directory (its path, or its name in the sessions directory), or a session id (or unique
    prefix): ``perftui open``, ``compare`` and ``report`` take all of them."""
    path = Path(ref)
    if path.exists():
        if not path.is_dir():
            return path
        if not (path / FINAL).exists() and (path / RUN_INFO).exists():
            raise UserError(f"{path}: no {FINAL} yet (perftui recover {ref} if its run died; else it is still running)")
        return path / FINAL
    if ref.endswith(".json") or os.sep in ref.rstrip(os.sep):
        raise UserError(f"{ref}: no such file")
    entry = _find(ref, want_running=False)  # an id, a unique prefix, or the directory's name
    final = Path(entry.directory) / FINAL
    if not final.exists():
        hint = f"perftui recover {entry.id}" if entry.state == "dead" else "it is still running"
        raise UserError(f"session {entry.id} has no {FINAL} yet ({hint})")
    return final


def cmd_compare(args) -> int:
    from perftui.compare import compare, format_text, load_document

    baseline = load_document(resolve_document(args.baseline))
    current = load_document(resolve_document(args.current))
    result = compare(baseline, current, levels=args.levels, fail_on=args.fail_on, alpha=args.alpha,
                     min_change_ms=args.min_change_ms)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_text(result))
    return 1 if result.failed else 0


def cmd_open(args) -> int:
    """``perftui open ID|FILE``: a saved session in the results view; exit 2 naming the file when
    it is not a session document."""
    from perftui.compare import load_document
    from perftui.ui.screens.opened import decode_document, run_open

    path = resolve_document(args.session)
    doc = decode_document(load_document(path))
    if not sys.stdout.isatty():
        raise UserError(f"{path}: perftui open needs a terminal (perftui report {args.session} --html FILE does not)")
    return run_open(doc, path)


def after_dashboard(run, out: str | None, after) -> int:
    """Run the dashboard, then hand the document it wrote to ``after`` (end-of-run outputs): the
    dashboard writes it to ``out``, else into the one new session directory."""
    before = {e.id for e in list_sessions(sessions_dir())}
    code = run()
    path = Path(out) if out else None
    if path is None:
        new = [e for e in list_sessions(sessions_dir()) if e.id not in before]
        path = Path(new[-1].directory) / FINAL if new else None
    if path is None or not path.exists():
        print("perftui: the session document was not found; no end-of-run comparison", file=sys.stderr)
        return code
    return code or after(json.loads(path.read_text()), path)
