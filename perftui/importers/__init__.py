"""Foreign test scripts as perftui plans: Artillery YAML (``.yml``/``.yaml``) and k6 JavaScript
(``.js``).

Called by the CLI: ``perftui import FILE [-o PLAN.toml]`` writes the plan as commented TOML
(``cmd_import``); ``perftui run`` / ``validate`` on such a file convert it in memory and hand the
dict to the normal plan validator (``load_foreign``). What cannot be translated is listed on
stderr (and written as ``# TODO:`` comments by ``import``), never dropped silently.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from perftui.errors import PlanError, Problem, UserError
from perftui.importers.common import Conversion, write_toml

__all__ = ["FOREIGN_SUFFIXES", "cmd_import", "convert", "is_foreign", "load_foreign", "to_toml"]

FOREIGN_SUFFIXES = {".yml": "Artillery", ".yaml": "Artillery", ".js": "k6", ".mjs": "k6"}
MAX_BYTES = 10 * 1024 * 1024


def is_foreign(path: str | Path) -> bool:
    return Path(path).suffix.lower() in FOREIGN_SUFFIXES


def _read(path: Path) -> str:
    file = str(path)
    try:
        if path.is_dir():
            raise PlanError([Problem(file, "", "is a directory, not a script file")])
        if path.stat().st_size > MAX_BYTES:
            raise PlanError([Problem(file, "", "file is larger than 10 MB; scripts that large are refused")])
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlanError([Problem(file, "", "no such file")]) from None
    except OSError as e:
        raise PlanError([Problem(file, "", f"cannot read the file: {e.strerror or e}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PlanError([Problem(file, "", "not valid UTF-8 text", line)]) from None


def _need(module: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise UserError(f"reading this file needs the Python package {package!r}: pip install {package} "
                        "(it is a dependency of perftui; the installation is incomplete)") from None


def convert(path: str | Path) -> Conversion:
    """Read and convert a foreign script. Raises ``PlanError`` (exit 2) for bad input."""
    p = Path(path)
    kind = FOREIGN_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise UserError(f"{path}: perftui imports Artillery YAML (.yml, .yaml) and k6 scripts (.js)")
    text = _read(p)
    if kind == "Artillery":
        _need("yaml", "PyYAML")
        from perftui.importers.artillery import convert_file
    else:
        _need("esprima", "esprima")
        from perftui.importers.k6 import convert_file
    conv = convert_file(p, text)
    conv.file = str(path)
    return conv


def to_toml(conv: Conversion) -> str:
    name = Path(conv.file).name
    head = [f"Imported from {name} ({conv.kind}) by `perftui import`."]
    if conv.todos:
        head.append(f"{len(conv.todos)} part(s) of it are not translated: see the TODO comments below.")
    return write_toml(conv, head + [""])


def load_foreign(path: str | Path, *, warn=None):
    """``perftui run/validate`` on an Artillery or k6 file: convert, warn once per untranslated
    item, validate like a plan. Problems point at the source file (its lines, TOML key paths)."""
    from perftui.planload import plan_from_dict

    conv = convert(path)
    warn = warn or (lambda text: print(text, file=sys.stderr))
    seen = set()
    for t in conv.todos:
        text = t.describe(conv.file)
        if text not in seen:
            seen.add(text)
            warn(f"perftui: warning: not translated: {text}")
    if conv.environments:
        warn(f"perftui: warning: {conv.file}: environments ({', '.join(conv.environments)}) are not applied; "
             "`perftui import -o PLAN.toml` writes one plan per environment")
    try:
        return plan_from_dict(conv.plan, file=conv.file)
    except PlanError as e:
        raise conv.remap(e) from None


def _env_file(out: Path, env: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", env).strip("-.") or "env"
    return out.with_name(f"{out.stem}.{safe}{out.suffix or '.toml'}")


def cmd_import(args) -> int:
    """``perftui import FILE [-o PLAN.toml]``: the plan on stdout (or in PLAN.toml, plus one
    PLAN.<environment>.toml per Artillery environment), the untranslated parts on stderr.
    Exit 0 when written (even if the plan still needs edits: those are listed), 2 on bad input."""
    from perftui.planload import plan_from_dict

    conv = convert(args.file)
    outputs: list[tuple[str, Conversion]] = []
    out = Path(args.output) if args.output else None
    outputs.append((str(out) if out else "<stdout>", conv))
    for env, ec in conv.environments.items():
        if out:
            outputs.append((str(_env_file(out, env)), ec))
    todos = [t.describe(conv.file) for t in conv.todos]
    for _, ec in outputs[1:]:
        todos += [t.describe(conv.file) for t in ec.todos if t.describe(conv.file) not in todos]
    for dest, c in outputs:
        text = to_toml(c)
        if out is None:
            sys.stdout.write(text)
        else:
            try:
                Path(dest).write_text(text, encoding="utf-8")
            except OSError as e:
                raise UserError(f"-o {dest}: cannot write: {e.strerror or e}") from None
            print(f"perftui: wrote {dest}", file=sys.stderr)
    if conv.environments and out is None:
        print(f"perftui: {conv.file}: environments ({', '.join(conv.environments)}): use -o PLAN.toml to write "
              "one plan per environment", file=sys.stderr)
    if todos:
        print(f"perftui: {len(todos)} part(s) of {conv.file} are not translated (marked # TODO in the plan):",
              file=sys.stderr)
        for t in todos:
            print(f"  {t}", file=sys.stderr)
    for dest, c in outputs:
        try:
            plan_from_dict(c.plan, file=dest)
        except PlanError as e:
            print(f"perftui: {dest} does not load as it is; edit it before running:", file=sys.stderr)
            for p in e.problems:
                print(f"  {p}", file=sys.stderr)
    return 0
