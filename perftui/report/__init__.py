"""Reports from a session document: ``perftui report SESSION --html FILE --junit FILE --csv DIR``,
and the same flags on ``perftui run`` / ``quick`` (written when the run ends). Called by the CLI.

``html`` renders one self-contained page, ``junit`` the thresholds as JUnit XML, ``csvout`` the
Locust-style CSV files; with a baseline the comparison (``perftui.compare``) goes into all three.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from perftui.errors import UserError


def check_outputs(html: str | None, junit: str | None, csv_dir: str | None) -> None:
    """Refuse (exit 2) output paths that cannot be written, before a run spends its time."""
    for flag, path in (("--html", html), ("--junit", junit)):
        if path is None:
            continue
        p = Path(path)
        if p.is_dir():
            raise UserError(f"{flag} {path}: is a directory, expected a file name")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UserError(f"{flag} {path}: directory {parent} does not exist or is not writable")
    if csv_dir is not None and Path(csv_dir).exists() and not Path(csv_dir).is_dir():
        raise UserError(f"--csv {csv_dir}: exists and is not a directory")


def write_outputs(doc: dict, *, html: str | None = None, junit: str | None = None, csv_dir: str | None = None,
                  comparison: dict | None = None, stream=sys.stdout) -> None:
    from perftui.report import csvout, junit as junit_mod
    from perftui.report.html import render as render_html

    def write(flag: str, path: str, data: bytes) -> None:
        try:
            Path(path).write_bytes(data)
        except OSError as exc:
            raise UserError(f"{flag} {path}: cannot write: {exc.strerror or exc}") from None
        print(f"{flag[2:]} report written to {path}", file=stream)

    if html:
        write("--html", html, render_html(doc, comparison).encode())
    if junit:
        write("--junit", junit, junit_mod.render(doc, comparison))
    if csv_dir:
        try:
            files = csvout.write(doc, Path(csv_dir))
        except OSError as exc:
            raise UserError(f"--csv {csv_dir}: cannot write: {exc.strerror or exc}") from None
        print(f"csv files written to {csv_dir}: " + ", ".join(f.name for f in files), file=stream)


def load_reference(ref: str) -> dict:
    """A comparison reference: a saved baseline by name, else a session file, directory or id."""
    from perftui.baselines import NAME_RE, baseline_path
    from perftui.compare import load_document
    from perftui.sessions import resolve_document

    if NAME_RE.match(ref) and baseline_path(ref).exists():
        return load_document(baseline_path(ref))
    return load_document(resolve_document(ref))


def cmd_report(args) -> int:
    from perftui.compare import compare, load_document
    from perftui.sessions import resolve_document

    if not (args.html or args.junit or args.csv):
        raise UserError("perftui report: say what to write: --html FILE, --junit FILE and/or --csv DIR")
    check_outputs(args.html, args.junit, args.csv)
    doc = load_document(resolve_document(args.session))
    comparison = None
    if args.baseline:
        comparison = compare(load_reference(args.baseline), doc, levels=args.levels, fail_on=args.fail_on,
                             alpha=args.alpha, min_change_ms=args.min_change_ms).as_dict()
    write_outputs(doc, html=args.html, junit=args.junit, csv_dir=args.csv, comparison=comparison)
    return 0


def end_of_run_hook(args):
    """What ``perftui run`` / ``quick`` do when the run ends, from their flags (``--baseline``,
    ``--html``, ``--junit``, ``--csv``); None when nothing was asked. Everything is checked now — an
    unknown baseline or an unwritable path stops the command before any load is sent. The hook
    ``after(document, path) -> exit code`` prints the comparison and writes the reports; it returns
    1 when the comparison fails ``--fail-on``, 2 when a report could not be written."""
    if not (args.baseline or args.html or args.junit or args.csv):
        return None
    from perftui.compare import compare, format_text

    check_outputs(args.html, args.junit, args.csv)
    baseline = None
    if args.baseline:
        from perftui.baselines import load_baseline

        baseline = load_baseline(args.baseline)

    def after(document: dict, path) -> int:
        document["_path"] = str(path) if path else "(not written)"
        code, comparison = 0, None
        if baseline is not None:
            result = compare(baseline, document, levels=args.levels, fail_on=args.fail_on, alpha=args.alpha,
                             min_change_ms=args.min_change_ms)
            print(f"\ncompared with baseline {args.baseline}:")
            print(format_text(result), flush=True)
            code, comparison = (1 if result.failed else 0), result.as_dict()
        try:
            write_outputs(document, html=args.html, junit=args.junit, csv_dir=args.csv, comparison=comparison)
        except UserError as exc:
            print(f"perftui: {exc}", file=sys.stderr)
            code = code or 2
        sys.stdout.flush()
        return code

    return after
