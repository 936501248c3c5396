"""``{{ }}`` templating for URLs, headers, query values and bodies of plan steps.

The plan loader compiles every template once (so syntax errors and undefined variables are
reported before a run starts); the engine keeps the compiled ``Template`` / ``JsonTemplate`` and
calls ``render`` for each request. Rendering is a single ``%``-format over precompiled getters,
so a template costs a few hundred nanoseconds, and a template without ``{{`` costs nothing.

Syntax, inside ``{{ ... }}`` (whitespace optional):

- ``name`` — a variable from ``[variables]`` or a ``capture``; ``name.key`` / ``name[0]`` walk into
  a captured JSON object or array.
- ``$vu``, ``$iteration``, ``$worker`` — context values the engine passes in ``vars``.
- ``$fn(args)`` — a built-in function, see ``BUILTINS``.
- ``'text'`` or ``"text"`` — a literal (``{{ '{{' }}`` writes a literal ``{{``).

An undefined variable renders as ``""``; the loader rejects undefined names up front.
"""

from __future__ import annotations

import datetime as _dt
import random as _random
import re
import string as _string
import time as _time
import uuid as _uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "BUILTINS",
    "CONTEXT",
    "JsonTemplate",
    "Template",
    "TemplateError",
    "compile_json",
    "compile_template",
    "to_text",
]


class TemplateError(ValueError):
    """A template that cannot be compiled; the message says where and what was expected."""


# ---- built-ins ---------------------------------------------------------------------------

_ALNUM = _string.ascii_lowercase + _string.digits
_MAX_RANDOM_STRING = 65_536


def _random_string(n: int = 10) -> str:
    return "".join(_random.choices(_ALNUM, k=n))


def _random_int(a: int, b: int) -> int:
    return _random.randint(a, b)


def _uuid4() -> str:
    return str(_uuid.uuid4())


def _timestamp() -> int:
    return int(_time.time() * 1000)


def _iso_time() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Builtin:
    __slots__ = ("name", "func", "min_args", "max_args", "usage", "doc")

    def __init__(self, name: str, func: Callable[..., Any], min_args: int, max_args: int, usage: str, doc: str):
        self.name = name
        self.func = func
        self.min_args = min_args
        self.max_args = max_args
        self.usage = usage
        self.doc = doc


def _check_random_string(args: tuple[int, ...]) -> str | None:
    if args and not 0 <= args[0] <= _MAX_RANDOM_STRING:
        return f"length must be between 0 and {_MAX_RANDOM_STRING}, got {args[0]}"
    return None


def _check_random_int(args: tuple[int, ...]) -> str | None:
    if args[0] > args[1]:
        return f"the lower bound {args[0]} is greater than the upper bound {args[1]}"
    return None


BUILTINS: dict[str, _Builtin] = {
    b.name: b
    for b in (
        _Builtin("randomString", _random_string, 0, 1, "$randomString() or $randomString(n)",
                 "random [a-z0-9] text, 10 characters unless n is given"),
        _Builtin("randomInt", _random_int, 2, 2, "$randomInt(a, b)",
                 "random integer from a to b inclusive (an integer in JSON bodies)"),
        _Builtin("randomNumber", _random_int, 2, 2, "$randomNumber(a, b)",
                 "Artillery spelling of $randomInt(a, b)"),
        _Builtin("uuid", _uuid4, 0, 0, "$uuid()", "random UUID v4"),
        _Builtin("randomUUID", _uuid4, 0, 0, "$randomUUID()", "alias of $uuid()"),
        _Builtin("timestamp", _timestamp, 0, 0, "$timestamp()",
                 "milliseconds since the Unix epoch (an integer in JSON bodies)"),
        _Builtin("isoTime", _iso_time, 0, 0, "$isoTime()", "current UTC time, e.g. 2026-11-21T06:24:46.123Z"),
    )
}
"""Functions usable as ``{{ $name(args) }}``. Arguments are integer literals."""

_ARG_CHECKS: dict[str, Callable[[tuple[int, ...]], str | None]] = {
    "randomString": _check_random_string,
    "randomInt": _check_random_int,
    "randomNumber": _check_random_int,
}

CONTEXT: dict[str, str] = {
    "vu": "number of the virtual user (closed model) or arrival slot running the iteration",
    "iteration": "iteration count of that virtual user",
    "worker": "index of the worker process",
}
"""Context values written ``{{ $vu }}``; the engine passes them in ``vars`` as ``"$vu"`` etc."""


# ---- rendering helpers -------------------------------------------------------------------

_json_encode = msgspec.json.encode


def to_text(value: Any) -> str:
    """How a variable's value appears inside a string: TOML/JSON spelling for booleans and
    compound values, ``""`` for ``None``."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is float:
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        try:
            return _json_encode(value).decode()
        except (TypeError, ValueError, OverflowError):
            return str(value)
    return str(value)


_MISSING = object()


def _walk(value: Any, keys: tuple[str | int, ...]) -> Any:
    for key in keys:
        try:
            if isinstance(key, int):
                if isinstance(value, (list, tuple)):
                    value = value[key]
                    continue
                if isinstance(value, Mapping):
                    value = value[str(key)]
                    continue
                return _MISSING
            if isinstance(value, Mapping):
                value = value[key]
            elif isinstance(value, (list, tuple)) and key.lstrip("-").isdigit():
                value = value[int(key)]
            else:
                return _MISSING
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value


# An expression compiles to a "native getter" (vars -> value of any type); the text form is
# to_text() of it, specialised for the common cases.


def _var_native(name: str, keys: tuple[str | int, ...]) -> Callable[[Mapping[str, Any]], Any]:
    if not keys:

        def get(vars: Mapping[str, Any]) -> Any:
            return vars.get(name, "")

        return get

    def get_path(vars: Mapping[str, Any]) -> Any:
        value = _walk(vars.get(name, _MISSING), keys)
        return "" if value is _MISSING else value

    return get_path


def _text_of(native: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], str]:
    def get(vars: Mapping[str, Any]) -> str:
        value = native(vars)
        if value.__class__ is str:
            return value
        return to_text(value)

    return get


def _call_native(b: _Builtin, args: tuple[int, ...]) -> Callable[[Mapping[str, Any]], Any]:
    func = b.func
    if not args:
        return lambda vars: func()
    if len(args) == 1:
        (a,) = args
        return lambda vars: func(a)
    return lambda vars: func(*args)


# ---- parsing -----------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[A-Za-z0-9_]+")  # after a dot: a key, or a list index like items.0
_INT = re.compile(r"[+-]?\d+")
_WS = re.compile(r"\s*")


class _Expr:
    """One parsed ``{{ }}`` expression."""

    __slots__ = ("native", "text", "name", "const")

    def __init__(self, native: Callable[[Mapping[str, Any]], Any], name: str | None = None, const: Any = _MISSING):
        self.native = native
        self.name = name  # user variable (root name), for Template.names
        self.const = const  # literal value, when the expression is a constant


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Parser:
    def __init__(self, source: str):
        self.s = source

    def fail(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"{message} (at character {pos + 1} of {_short(self.s)!r})")

    def ws(self, pos: int) -> int:
        return _WS.match(self.s, pos).end()  # type: ignore[union-attr]

    def parse(self) -> list[str | _Expr]:
        s = self.s
        parts: list[str | _Expr] = []
        pos = 0
        while True:
            start = s.find("{{", pos)
            if start < 0:
                if pos < len(s):
                    parts.append(s[pos:])
                return parts
            if start > pos:
                parts.append(s[pos:start])
            expr, pos = self.expression(start)
            parts.append(expr)

    def expression(self, open_at: int) -> tuple[_Expr, int]:
        s = self.s
        pos = self.ws(open_at + 2)
        if pos >= len(s):
            raise self.fail(open_at, "'{{' is never closed: expected an expression and '}}'")
        if s.startswith("}}", pos):
            raise self.fail(open_at, "empty '{{ }}': expected a variable name or a $function()")
        ch = s[pos]
        if ch == "$":
            expr, pos = self.dollar(pos)
        elif ch in "'\"":
            end = s.find(ch, pos + 1)
            if end < 0:
                raise self.fail(pos, f"unterminated string literal: expected a closing {ch}")
            text = s[pos + 1 : end]
            expr = _Expr(lambda vars, _t=text: _t, const=text)
            pos = end + 1
        else:
            m = _IDENT.match(s, pos)
            if not m:
                raise self.fail(
                    pos, f"expected a variable name, $function() or 'text' after '{{{{', got {s[pos]!r}"
                )
            name = m.group()
            pos = m.end()
            keys: list[str | int] = []
            while pos < len(s):
                if s[pos] == "." and (m := _KEY.match(s, pos + 1)):
                    keys.append(m.group())
                    pos = m.end()
                elif s[pos] == "[":
                    p = self.ws(pos + 1)
                    m = _INT.match(s, p)
                    if not m:
                        raise self.fail(pos, "expected an integer index inside [ ], e.g. items[0]")
                    p = self.ws(m.end())
                    if not s.startswith("]", p):
                        raise self.fail(p, "expected ']' to close the index")
                    keys.append(int(m.group()))
                    pos = p + 1
                else:
                    break
            expr = _Expr(_var_native(name, tuple(keys)), name=name)
        pos = self.ws(pos)
        if not s.startswith("}}", pos):
            if pos >= len(s):
                raise self.fail(open_at, "'{{' is never closed: expected '}}'")
            raise self.fail(pos, f"expected '}}}}' to close the expression, got {_short(s[pos:], 20)!r}")
        return expr, pos + 2

    def dollar(self, pos: int) -> tuple[_Expr, int]:
        s = self.s
        m = _IDENT.match(s, pos + 1)
        if not m:
            raise self.fail(pos, "expected a built-in name after '$', e.g. $randomString() or $vu")
        name = m.group()
        after = self.ws(m.end())
        if name in CONTEXT:
            if s.startswith("(", after):
                raise self.fail(after, f"${name} is a value, not a function: write {{{{ ${name} }}}}")
            key = "$" + name
            return _Expr(lambda vars: vars.get(key, "")), m.end()
        b = BUILTINS.get(name)
        if b is None:
            import difflib

            known = [f"${k}" for k in (*BUILTINS, *CONTEXT)]
            close = difflib.get_close_matches("$" + name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
            raise self.fail(pos, f"unknown built-in ${name}{hint}")
        if not s.startswith("(", after):
            raise self.fail(pos, f"${name} is a function: write {b.usage}")
        args: list[int] = []
        p = self.ws(after + 1)
        if s.startswith(")", p):
            p += 1
        else:
            while True:
                am = _INT.match(s, p)
                if not am:
                    raise self.fail(p, f"expected an integer argument: {b.usage}")
                args.append(int(am.group()))
                p = self.ws(am.end())
                if s.startswith(",", p):
                    p = self.ws(p + 1)
                    continue
                if s.startswith(")", p):
                    p += 1
                    break
                raise self.fail(p, f"expected ',' or ')' in the arguments of {b.usage}")
        if not b.min_args <= len(args) <= b.max_args:
            raise self.fail(pos, f"wrong number of arguments ({len(args)}): {b.usage}")
        check = _ARG_CHECKS.get(name)
        if check is not None and (problem := check(tuple(args))):
            raise self.fail(pos, f"${name}: {problem}")
        return _Expr(_call_native(b, tuple(args))), p


# ---- public API --------------------------------------------------------------------------


class Template:
    """A compiled string template. ``render(vars)`` returns the text."""

    __slots__ = ("source", "names", "static", "_render", "_native")

    source: str
    names: frozenset[str]
    static: bool

    def __init__(self, source: str, parts: list[str | _Expr]):
        self.source = source
        self.names = frozenset(p.name for p in parts if isinstance(p, _Expr) and p.name is not None)
        exprs = [p for p in parts if isinstance(p, _Expr)]
        self.static = not exprs
        # A template that is one expression and nothing else keeps the value's type in JSON.
        self._native = exprs[0].native if len(parts) == 1 and exprs else None
        if self.static:
            self._render = None
        elif all(p.const is not _MISSING for p in exprs):
            text = "".join(p if isinstance(p, str) else p.const for p in parts)
            self._render = lambda vars: text
        elif len(parts) == 1:
            self._render = _text_of(exprs[0].native)
        else:
            fmt = "".join(p.replace("%", "%%") if isinstance(p, str) else "%s" for p in parts)
            getters = tuple(_text_of(p.native) for p in exprs)
            if len(getters) == 1:
                (g,) = getters
                self._render = lambda vars: fmt % (g(vars),)
            else:
                self._render = lambda vars: fmt % tuple([g(vars) for g in getters])

    def render(self, vars: Mapping[str, Any]) -> str:
        if self._render is None:
            return self.source
        return self._render(vars)

    def render_native(self, vars: Mapping[str, Any]) -> Any:
        """The value itself when the template is exactly one ``{{ expression }}`` (so a number
        stays a number), otherwise the rendered text."""
        if self._native is not None:
            return self._native(vars)
        return self.render(vars)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@lru_cache(maxsize=4096)
def compile_template(text: str) -> Template:
    """Compile ``text``; raises ``TemplateError`` with the position and what was expected."""
    if not isinstance(text, str):
        raise TemplateError(f"expected a string template, got {type(text).__name__}")
    if "{{" not in text:
        return Template(text, [text] if text else [])
    return Template(text, _Parser(text).parse())


_Builder = Callable[[Mapping[str, Any]], Any]


class JsonTemplate:
    """A compiled JSON body: ``render(vars)`` returns compact JSON bytes."""

    __slots__ = ("names", "static", "_build", "_bytes")

    names: frozenset[str]
    static: bool

    def __init__(self, build: _Builder | None, const: Any, names: frozenset[str]):
        self.names = names
        self.static = build is None
        self._build = build
        self._bytes = _json_encode(const) if build is None else b""

    def render(self, vars: Mapping[str, Any]) -> bytes:
        if self._build is None:
            return self._bytes
        return _json_encode(self._build(vars))


def _compile_value(value: Any, names: set[str], path: str) -> tuple[_Builder | None, Any]:
    """Return ``(None, constant)`` for a static subtree or ``(builder, None)``."""
    if isinstance(value, str):
        try:
            t = compile_template(value)
        except TemplateError as e:
            raise TemplateError(f"{path}: {e}" if path else str(e)) from None
        if t.static:
            return None, value
        names |= t.names
        return t.render_native, None
    if isinstance(value, Mapping):
        items = []
        dynamic = False
        for k, v in value.items():
            b, c = _compile_value(v, names, f"{path}.{k}" if path else str(k))
            items.append((str(k), b, c))
            dynamic = dynamic or b is not None
        if not dynamic:
            return None, {k: c for k, _, c in items}

        def build_dict(vars: Mapping[str, Any]) -> dict[str, Any]:
            return {k: (c if b is None else b(vars)) for k, b, c in items}

        return build_dict, None
    if isinstance(value, (list, tuple)):
        elems = [_compile_value(v, names, f"{path}[{i}]") for i, v in enumerate(value)]
        if all(b is None for b, _ in elems):
            return None, [c for _, c in elems]

        def build_list(vars: Mapping[str, Any]) -> list[Any]:
            return [c if b is None else b(vars) for b, c in elems]

        return build_list, None
    return None, value


def compile_json(value: Any) -> JsonTemplate:
    """Compile a JSON body (dicts, lists, scalars). Strings are templates; a string that is
    exactly ``"{{ x }}"`` renders as x's own value (an integer stays an integer)."""
    names: set[str] = set()
    build, const = _compile_value(value, names, "")
    if build is None:
        try:
            _json_encode(const)
        except (TypeError, ValueError, OverflowError) as e:
            raise TemplateError(f"cannot be encoded as JSON: {e}") from None
    return JsonTemplate(build, const, frozenset(names))
