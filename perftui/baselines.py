"""Named baselines: ``perftui baseline save NAME SESSION``, ``perftui baseline ls`` and the end-of-run
comparison of ``perftui run PLAN --baseline NAME`` (``perftui.report.end_of_run_hook``).

A baseline is a copy of a session document kept as ``<sessions dir>/baselines/NAME.json`` (0600,
the directory 0700 like the sessions), so it survives the session's own directory being cleaned.
Called by the CLI; the comparison itself is ``perftui.compare``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from perftui.compare import load_document
from perftui.errors import UserError
from perftui.journal import _atomic_write
from perftui.runtime import sessions_dir
from perftui.units import printable

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def baselines_dir() -> Path:
    return sessions_dir() / "baselines"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UserError(f"baseline name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, "
                        "starting with a letter or digit)")
    return name


def baseline_path(name: str) -> Path:
    return baselines_dir() / f"{check_name(name)}.json"


def load_baseline(name: str) -> dict:
    """The baseline's document; UserError (exit 2) when there is no such baseline or it is broken."""
    path = baseline_path(name)
    if not path.exists():
        known = sorted(p.stem for p in baselines_dir().glob("*.json")) if baselines_dir().is_dir() else []
        raise UserError(f"no baseline {name!r} in {baselines_dir()}"
                        + (f" (known: {', '.join(known)})" if known else " (perftui baseline save NAME SESSION)"))
    return load_document(path)


def p95_series(doc: dict) -> list[tuple[float, float | None]]:
    """The baseline run's p95 per timeline row, (t, ms or None), for the dashboard's latency
    chart; rows that are not objects or have no numeric ``t`` are left out."""
    out: list[tuple[float, float | None]] = []
    for row in doc.get("timeline") or []:
        if not isinstance(row, dict) or not isinstance(row.get("t"), (int, float)):
            continue
        v = row.get("p95_ms")
        out.append((float(row["t"]), float(v) if isinstance(v, (int, float)) else None))
    return out


def cmd_baseline(args) -> int:
    if args.baseline_command == "save":
        from perftui.sessions import resolve_document

        source = resolve_document(args.session)
        doc = load_document(source)  # checked before it becomes anyone's reference
        target = baseline_path(args.name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        existed = target.exists()
        doc.pop("_path", None)
        _atomic_write(target, json.dumps(doc).encode())
        print(printable(f"baseline {args.name} {'replaced' if existed else 'saved'}: session {doc.get('id')} "
                        f"({doc.get('plan_name')}) from {source}"))
        print(f"  {target}")
        return 0
    # ls
    directory = baselines_dir()
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        print(f"no baselines in {directory} (perftui baseline save NAME SESSION)")
        return 0
    print(f"{'NAME':<20} {'SESSION':<22} {'SAVED':<16} {'REQUESTS':>9} {'RPS':>8} {'P95 MS':>8}  PLAN")
    for f in files:
        try:
            doc = load_document(f)
        except UserError as exc:
            print(printable(f"{f.stem:<20} unreadable: {exc}"))
            continue
        s = doc["summary"]
        p95 = (s.get("latency_ms") or {}).get("p95")
        saved = dt.datetime.fromtimestamp(f.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        print(printable(f"{f.stem:<20} {str(doc.get('id')):<22} {saved:<16} {s.get('requests', 0):>9} "
                        f"{s.get('rps', 0.0):>8.1f} {'-' if p95 is None else f'{p95:.1f}':>8}  {doc.get('plan_name')}"))
    print(f"\n{directory}")
    return 0
