"""What the Artillery and k6 importers share: the result of a conversion (a plan as the dict TOML
parses into, comments and TODOs attached to its parts, source lines), the commented TOML writer,
and the bookkeeping of problems in the source file.

Used by ``perftui.importers.artillery`` and ``perftui.importers.k6``; the CLI goes through
``perftui.importers`` (``import``, and ``run``/``validate`` on a foreign file).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from perftui.errors import PlanError, Problem

# A place in the written plan: () is the file head, ("phases", 0) the first [[phases]],
# ("scenarios", 1, "steps", 2) the third step of the second scenario, ("variables", "x") a key.
Where = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass
class Todo:
    """Something in the source that the plan does not do (yet). Never dropped silently: written
    as ``# TODO:`` beside the part it belongs to and listed on stderr."""

    line: int | None
    key: str  # where in the source, in its own words: "scenarios[1].flow[2].beforeRequest"
    message: str
    where: Where = ()

    def describe(self, file: str) -> str:
        loc = f"{file}:{self.line}" if self.line else file
        return f"{loc}: {self.key}: {self.message}" if self.key else f"{loc}: {self.message}"


@dataclass
class Conversion:
    """A foreign test converted into a perftui plan dict, with what the TOML writer needs."""

    file: str
    kind: str  # "Artillery" / "k6"
    plan: dict[str, Any] = field(default_factory=dict)
    comments: dict[Where, list[str]] = field(default_factory=dict)
    todos: list[Todo] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # "scenarios[1].steps[2]" -> source line
    environments: dict[str, "Conversion"] = field(default_factory=dict)  # Artillery environments

    def note(self, where: Where, text: str) -> None:
        self.comments.setdefault(where, []).append(text)

    def todo(self, where: Where, key: str, message: str, line: int | None) -> None:
        self.todos.append(Todo(line, key, message, where))
        self.note(where, f"TODO: {key}: {message}" if key else f"TODO: {message}")

    def finish(self, order: list[str]) -> None:
        """Top-level keys in reading order; a scenario left without steps has no ``steps`` key
        (an empty ``[[scenarios.steps]]`` list has no TOML spelling, and the loader reports it)."""
        for sc in self.plan.get("scenarios", []):
            if not sc.get("steps"):
                sc.pop("steps", None)
        self.plan = {k: self.plan[k] for k in order if k in self.plan and self.plan[k] != []}

    def locate(self, where: Where, line: int | None) -> None:
        if line:
            self.lines[toml_path(where)] = line

    def remap(self, err: PlanError) -> PlanError:
        """Problems found by the plan loader, pointed at the source file and its lines: the key
        path stays in TOML words (that is what ``perftui import`` writes), the line is the
        source line the part came from."""
        out = []
        for p in err.problems:
            line = None
            best = -1
            for prefix, ln in self.lines.items():
                if (p.path == prefix or p.path.startswith(prefix + ".") or p.path.startswith(prefix + "[")) \
                        and len(prefix) > best:
                    best, line = len(prefix), ln
            out.append(Problem(self.file, p.path, p.message + f" (in the plan translated from this {self.kind} file)",
                               line))
        return PlanError(out)


def toml_path(where: Where) -> str:
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            key = part if _BARE.match(part) else json.dumps(part)
            out += f".{key}" if out else key
    return out


class Problems:
    """Bad input found while reading the source (wrong types, unreadable values): collected,
    then raised together as one ``PlanError`` (exit 2), like plan problems."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []

    def add(self, key: str, message: str, line: int | None) -> None:
        self.items.append(Problem(self.file, key, message, line))

    def raise_if_any(self) -> None:
        if self.items:
            raise PlanError(self.items)


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({json.dumps(short)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def seconds_text(value: float) -> str | int | float:
    """A duration in seconds as a plan writes it: whole seconds as a bare number."""
    if float(value).is_integer():
        return int(value)
    return float(value)


# ---- TOML writing ------------------------------------------------------------------------------

def _key(k: str) -> str:
    return k if _BARE.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def inline(value: Any) -> str:
    """One TOML value on one line (inline tables cannot span lines in TOML 1.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {inline(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _assign(key: str, value: Any, indent: str) -> str:
    text = inline(value)
    if isinstance(value, list) and len(value) > 1 and len(indent + key + text) > 100:
        items = "".join(f"{indent}  {inline(v)},\n" for v in value)
        text = "[\n" + items + indent + "]"
    return f"{indent}{_key(key)} = {text}\n"


def _comment_lines(lines: list[str], indent: str) -> str:
    out = ""
    for text in lines:
        for part in str(text).splitlines() or [""]:
            out += f"{indent}# {part}".rstrip() + "\n"
    return out


def write_toml(conv: Conversion, header: list[str]) -> str:
    """The plan as commented TOML: the head comments, top-level keys, then [defaults],
    [variables], [[phases]] and [[scenarios]] with their steps, each preceded by its comments
    and TODOs. ``tomllib.loads`` of the result equals ``conv.plan``."""
    plan, notes = conv.plan, conv.comments
    out = _comment_lines(header, "")
    out += _comment_lines(notes.get((), []), "")
    tables = ("defaults", "demo", "variables", "monitor")
    arrays = ("phases", "scenarios")
    for k, v in plan.items():
        if k in tables or k in arrays:
            continue
        out += _comment_lines(notes.get((k,), []), "")
        out += _assign(k, v, "")
    for k in tables:
        if k not in plan and (k,) not in notes:
            continue
        out += "\n" + _comment_lines(notes.get((k,), []), "")
        if k not in plan:
            continue
        out += f"[{k}]\n"
        for kk, vv in plan[k].items():
            out += _comment_lines(notes.get((k, kk), []), "")
            out += _assign(kk, vv, "")
    for i, ph in enumerate(plan.get("phases", [])):
        out += "\n" + _comment_lines(notes.get(("phases", i), []), "") + "[[phases]]\n"
        for kk, vv in ph.items():
            out += _assign(kk, vv, "")
    for i, sc in enumerate(plan.get("scenarios", [])):
        out += "\n# " + "-" * 95 + "\n"
        out += _comment_lines(notes.get(("scenarios", i), []), "") + "[[scenarios]]\n"
        for kk, vv in sc.items():
            if kk != "steps":
                out += _assign(kk, vv, "")
        for j, st in enumerate(sc.get("steps", [])):
            out += "\n" + _comment_lines(notes.get(("scenarios", i, "steps", j), []), "  ")
            out += "  [[scenarios.steps]]\n"
            for kk, vv in st.items():
                out += _assign(kk, vv, "  ")
        # Notes on source items after the last step (dropped, untranslatable) close the scenario.
        extra = notes.get(("scenarios", i, "steps", len(sc.get("steps", []))), [])
        if extra:
            out += "\n" + _comment_lines(extra, "  ")
    return out
