"""A small JSON path subset for ``capture`` and ``expect``: ``$``, ``$.a.b``, ``$.items[0].id``,
``$.items[-1]``, ``$['key with space']``, ``$["k"]``.

Compiled once by the plan loader (so syntax errors are reported up front) and evaluated by the
engine on every matching response. No wildcards, filters or recursive descent: a path names at
most one value.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MISSING", "JsonPath", "compile_path"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""Returned by ``JsonPath.find`` when the path does not exist in the document."""

_NAME = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_UNESCAPE = re.compile(r"\\(.)")

_EXAMPLES = "e.g. $.token, $.data.items[0].id or $['key with space']"


class JsonPath:
    """A compiled path. ``find(obj)`` returns the value or ``MISSING``."""

    __slots__ = ("source", "steps")

    def __init__(self, source: str, steps: tuple[str | int, ...]):
        self.source = source
        self.steps = steps

    def find(self, obj: Any) -> Any:
        value = obj
        for step in self.steps:
            if step.__class__ is int:
                if value.__class__ is list:
                    try:
                        value = value[step]
                    except IndexError:
                        return MISSING
                    continue
                return MISSING
            if value.__class__ is dict:
                try:
                    value = value[step]
                except KeyError:
                    return MISSING
                continue
            if isinstance(value, dict):
                value = value.get(step, MISSING)
                if value is MISSING:
                    return MISSING
                continue
            if isinstance(value, list) and step.lstrip("-").isdigit():
                try:
                    value = value[int(step)]
                except IndexError:
                    return MISSING
                continue
            return MISSING
        return value

    def __repr__(self) -> str:
        return f"JsonPath({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonPath) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def compile_path(expr: str) -> JsonPath:
    """Compile a path; raises ``ValueError`` saying where the syntax went wrong."""
    if not isinstance(expr, str):
        raise ValueError(f"expected a JSON path string ({_EXAMPLES}), got {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise ValueError(f"empty JSON path: expected one starting with $ ({_EXAMPLES})")
    if not text.startswith("$"):
        guess = "$." + text.lstrip(".") if _NAME.match(text.lstrip(".")) else "$." + text
        raise ValueError(f"JSON path {expr!r} must start with '$': did you mean {guess!r}?")
    steps: list[str | int] = []
    pos = 1
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == ".":
            m = _NAME.match(text, pos + 1)
            if not m:
                if text.startswith("..", pos):
                    raise ValueError(f"JSON path {expr!r}: recursive descent '..' is not supported")
                if text.startswith(".*", pos):
                    raise ValueError(f"JSON path {expr!r}: wildcards are not supported; a path names one value")
                raise ValueError(
                    f"JSON path {expr!r}: expected a key name after '.' at character {pos + 2}"
                    f" (use $['...'] for keys with spaces or symbols)"
                )
            steps.append(m.group())
            pos = m.end()
        elif ch == "[":
            if m := _INDEX.match(text, pos):
                steps.append(int(m.group(1)))
            elif m := _QUOTED.match(text, pos):
                raw = m.group(1) if m.group(1) is not None else m.group(2)
                steps.append(_UNESCAPE.sub(r"\1", raw))
            else:
                inner = text[pos : pos + 6]
                if inner.startswith("[*") or inner.startswith("[?"):
                    raise ValueError(f"JSON path {expr!r}: wildcards and filters are not supported")
                raise ValueError(
                    f"JSON path {expr!r}: expected an index like [0] or [-1], or a quoted key like ['name'],"
                    f" at character {pos + 1}"
                )
            pos = m.end()
        else:
            raise ValueError(f"JSON path {expr!r}: expected '.' or '[' at character {pos + 1}, got {ch!r}")
    return JsonPath(text, tuple(steps))
