"""Loading and validating test plans: TOML text -> ``${ENV}`` substitution -> ``perftui.plan.Plan``.

Called by the CLI (``perftui run/validate``), the plan picker and the coordinator. Every problem
in a plan is collected and raised together as one ``PlanError``; each ``Problem`` names the file,
the key path in TOML words (``scenarios[2].steps[1].url``; array indices count from 1, so
``phases[1]`` is the first ``[[phases]]``) and the line where it was found.

Also here: command-line overrides (``--rate``/``--vus``/``--duration``/``--target``), plans built
from a bare URL (``perftui run URL``), and the redacted copy of a plan stored in session files.
"""

from __future__ import annotations

import bisect
import difflib
import math
import os
import re
import select
import stat
import time
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from perftui.errors import PlanError, Problem
from perftui.jsonpath import MISSING, compile_path
from perftui.plan import (
    PROTOCOL_ACTIONS, Capture, Defaults, DemoOptions, Expect, Phase, Plan, Scenario, Step, endpoint_name,
    step_endpoints,
)
from perftui.template import TemplateError, compile_json, compile_template
from perftui.thresholds import METRICS, parse_threshold
from perftui.units import parse_duration, printable
from perftui.demo.latency import parse_latency
from perftui.monitor.metrics import parse_selector
from perftui.plan import GeneratorLimits, MetricSeries, Monitor

__all__ = [
    "HTTP_METHODS",
    "MAX_PLAN_BYTES",
    "LoadedPlan",
    "apply_overrides",
    "format_path",
    "load_plan",
    "plan_from_dict",
    "quick_plan",
    "redacted_plan",
]

MAX_PLAN_BYTES = 10 * 1024 * 1024
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
CLI_FILE = "<command line>"

# Sanity limits: far above anything one machine can drive, low enough to catch a typo (and to
# keep every number inside msgpack's 64-bit integers).
MAX_RATE = 10_000_000.0
MAX_VUS = 1_000_000
MAX_IN_FLIGHT = 10_000_000
MAX_REDIRECTS = 100
MAX_WEIGHT = 1_000_000.0
MAX_PID = 4_194_304  # Linux's pid_max ceiling

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan and where it came from."""

    plan: Plan
    """Validated, ``${ENV}`` substituted; durations still as written (see ``duration_s``)."""
    path: Path | None = None
    """The plan file, or None for plans built in memory (``quick_plan``, ``plan_from_dict``)."""
    source: str = ""
    """The plan's TOML text as written (before substitution)."""
    secrets: frozenset[str] = field(default=frozenset())
    """Every value that came from ``${ENV}`` substitution; ``redacted_plan`` masks them."""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_BARE_KEY_AT = re.compile(r"[A-Za-z0-9_-]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?\Z")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\Z")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 field-value: no CTL but tab
_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _has_space_or_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _has_control(text: str) -> bool:
    return _CONTROL.search(text.replace(" ", "")) is not None


def format_path(path: Path_) -> str:
    """``("phases", 0, "arrival_rate")`` -> ``phases[1].arrival_rate`` (indices from 1)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            key = part if _BARE_KEY.match(part) else msgspec.json.encode(part).decode()
            out += f".{key}" if out else key
    return out


def _describe(value: Any) -> str:
    """What a TOML value is, for "got ..." messages."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})" if abs(value) < 10**15 else "an integer"
    if isinstance(value, float):
        return f"a number ({value:g})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({msgspec.json.encode(shown).decode()})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "nothing (null)"
    name = type(value).__name__
    if name in ("datetime", "date", "time"):
        return f"a {name}"
    return f"a {name}"


def _strip_unset(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = tuple(a for a in typing.get_args(tp) if a is not UnsetType)
        if len(args) == 1:
            return args[0]
        return typing.Union[args]  # noqa: UP007 - built dynamically
    return tp


_DURATION_SET = frozenset({str, int, float})
_SCALAR_SET = frozenset({str, int, float, bool})
_SIMPLE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_PLURALS = {str: "strings", int: "integers", float: "numbers", bool: "booleans"}


def _expected(tp: Any) -> str:
    tp = _strip_unset(tp)
    if tp in _SIMPLE_WORDS:
        return _SIMPLE_WORDS[tp]
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(msgspec.json.encode(a).decode() for a in args)
    if origin is list:
        if args and args[0] in _PLURALS:
            return f"an array of {_PLURALS[args[0]]}"
        return f"an array ({_expected(args[0]) if args else 'any value'} each)"
    if origin is dict:
        return "a table"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "a table"
    if isinstance(tp, types.UnionType) or origin is typing.Union:
        members = set(args)
        if members == _DURATION_SET:
            return 'a duration such as "30s", "5m", "1h30m" or a number of seconds'
        if members == _SCALAR_SET:
            return "a string, number or boolean"
        lists = [a for a in args if typing.get_origin(a) is list]
        if lists and set(args) - set(lists) == _SCALAR_SET:
            return "a string, number or boolean, or an array of them"
        return " or ".join(_expected(a) for a in args)
    return "a value"


def _quote(text: str) -> str:
    return msgspec.json.encode(text).decode()


# ---- line numbers --------------------------------------------------------------------------


class _Locator:
    """Maps key paths to the line they are written on.

    tomllib keeps no positions, so this walks the (already valid) TOML text: table headers,
    arrays of tables with their counts, dotted keys, inline tables and arrays. Best effort: if
    anything surprises it, lines are simply unknown."""

    def __init__(self, text: str | None):
        self.lines: dict[Path_, int] = {}
        self.s = text or ""
        self.scanned = not text  # scanned on the first question: valid plans never pay for it

    def line(self, path: Path_) -> int | None:
        if not self.scanned:
            self.scanned = True
            self.starts = [0] + [m.end() for m in re.finditer("\n", self.s)]
            try:
                self._scan()
            except Exception:  # noqa: BLE001 - positions are a nicety, never a failure
                pass
        for n in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:n]))
            if found is not None:
                return found
        return None

    # -- scanner --

    def _line_at(self, i: int) -> int:
        return bisect.bisect_right(self.starts, i)

    def _record(self, path: Path_, i: int) -> None:
        self.lines.setdefault(path, self._line_at(i))

    def _skip(self, i: int, newlines: bool = True) -> int:
        s = self.s
        n = len(s)
        while i < n:
            c = s[i]
            if c in " \t" or (newlines and c in "\r\n"):
                i += 1
            elif c == "#":
                j = s.find("\n", i)
                i = n if j < 0 else j
            else:
                break
        return i

    def _string_end(self, i: int) -> int:
        s = self.s
        for q in ('"""', "'''"):
            if s.startswith(q, i):
                j = i + 3
                while True:
                    if q == '"""' and s[j] == "\\":
                        j += 2
                        continue
                    if s.startswith(q, j):
                        j += 3
                        while j < len(s) and s[j] == q[0]:
                            j += 1
                        return j
                    j += 1
        q = s[i]
        j = i + 1
        while s[j] != q:
            j += 2 if (q == '"' and s[j] == "\\") else 1
        return j + 1

    def _key(self, i: int) -> tuple[tuple[str, ...], int]:
        s = self.s
        keys: list[str] = []
        while True:
            i = self._skip(i, newlines=False)
            if s[i] in "\"'":
                end = self._string_end(i)
                keys.append(tomllib.loads(f"k = {s[i:end]}")["k"])
                i = end
            else:
                m = _BARE_KEY_AT.match(s, i)
                if not m:
                    raise ValueError("bad key")
                keys.append(m.group())
                i = m.end()
            i = self._skip(i, newlines=False)
            if i < len(s) and s[i] == ".":
                i += 1
                continue
            return tuple(keys), i

    def _value(self, i: int, path: Path_) -> int:
        s = self.s
        c = s[i]
        if c in "\"'":
            return self._string_end(i)
        if c == "[":
            i += 1
            idx = 0
            while True:
                i = self._skip(i)
                if s[i] == "]":
                    return i + 1
                self._record(path + (idx,), i)
                i = self._value(i, path + (idx,))
                idx += 1
                i = self._skip(i)
                if s[i] == ",":
                    i += 1
        if c == "{":
            i += 1
            while True:
                i = self._skip(i)
                if s[i] == "}":
                    return i + 1
                keys, i = self._key(i)
                for n in range(1, len(keys) + 1):
                    self._record(path + keys[:n], i)
                i = self._skip(i, newlines=False)
                i = self._skip(i + 1, newlines=False)  # '='
                i = self._value(i, path + keys)
                i = self._skip(i)
                if s[i] == ",":
                    i += 1
        while i < len(s) and s[i] not in ",]}\r\n#":
            i += 1
        return i

    def _scan(self) -> None:
        s = self.s
        n = len(s)
        table: Path_ = ()
        aot: dict[Path_, int] = {}

        def resolve(keys: tuple[str, ...]) -> Path_:
            cur: Path_ = ()
            for k in keys:
                cur = cur + (k,)
                if cur in aot:
                    cur = cur + (aot[cur] - 1,)
            return cur

        i = 0
        while True:
            i = self._skip(i)
            if i >= n:
                return
            if s[i] == "[":
                double = s.startswith("[[", i)
                start = i
                keys, i = self._key(i + (2 if double else 1))
                i += 2 if double else 1
                if double:
                    arr = resolve(keys[:-1]) + (keys[-1],)
                    aot[arr] = aot.get(arr, 0) + 1
                    self._record(arr, start)
                    table = arr + (aot[arr] - 1,)
                else:
                    table = resolve(keys)
                self._record(table, start)
                continue
            keys, j = self._key(i)
            for k in range(1, len(keys) + 1):
                self._record(table + keys[:k], i)
            j = self._skip(j, newlines=False)
            j = self._skip(j + 1, newlines=False)  # past '='
            i = self._value(j, table + keys)


# ---- reading files -------------------------------------------------------------------------

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def _toml_problem(file: str, text: str, err: tomllib.TOMLDecodeError) -> Problem:
    msg = str(err)
    line: int | None = None
    column: int | None = None
    if m := _TOML_POS.search(msg):
        line, column = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()]
    elif m := _TOML_END.search(msg):
        msg = msg[: m.start()]
        line, opened = _find_error_line(text)
        if opened:
            msg += f": the {opened} that starts on this line is never closed"
    hint = ""
    src_line = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    if msg.startswith("Expected '=' after a key") and re.match(r"\s*[\w.\"'-]+\s*:", src_line):
        hint = "; TOML writes key = value, not key: value"
    elif msg.startswith("Invalid value") and column is not None:
        rest = src_line[column - 1 :].strip() if column - 1 < len(src_line) else ""
        if rest[:1].isalpha() and not rest.startswith(("true", "false", "inf", "nan")):
            hint = '; strings must be quoted, e.g. key = "text"'
    elif msg.startswith("Cannot overwrite a value") or msg.startswith("Cannot declare"):
        hint = "; a key or table is defined twice"
    where = f" (column {column})" if column is not None else ""
    text_msg = msg[:1].lower() + msg[1:]
    return Problem(file, "", f"invalid TOML: {text_msg}{where}{hint}", line)


def _find_error_line(text: str) -> tuple[int | None, str]:
    """For errors tomllib reports "at end of document": the line where the string, array or
    inline table that never closes was opened, and which of them it is; for anything else the
    last line."""
    n = len(text)
    line = 1
    openers: list[tuple[int, str]] = []  # unclosed [ and {
    i = 0
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c in "[{":
            openers.append((line, "array" if c == "[" else "inline table"))
        elif c in "]}":
            if openers:
                openers.pop()
        elif c in "\"'":
            quote = text[i : i + 3] if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while True:
                if j >= n or (len(quote) == 1 and text[j] == "\n"):
                    return line, "string"  # the string opened here never closes
                if c == '"' and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                j += 1
            line += text.count("\n", i, j)
            i = j + len(quote)
            continue
        i += 1
    if openers:
        return openers[0]
    last = text.rstrip().count("\n") + 1
    return (last if text.strip() else None), ""


_READ_WAIT_S = 5.0
"""How long a plan read from a pipe or a device may go without data before it is refused."""


def _read_bounded(file: str, path: Path) -> bytes:
    """The file's bytes, at most ``MAX_PLAN_BYTES`` (+1 to tell "too large"), whatever the file
    is: the reported size of a device (``/dev/zero``: 0) is not trusted, a FIFO without a writer
    does not block, and a pipe or terminal that stays silent is refused after ``_READ_WAIT_S``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        regular = stat.S_ISREG(mode)
        if regular:
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        deadline = time.monotonic() + _READ_WAIT_S
        while total <= MAX_PLAN_BYTES:
            try:
                chunk = os.read(fd, min(1 << 20, MAX_PLAN_BYTES + 1 - total))
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise PlanError([Problem(file, "", f"nothing could be read from it within {_READ_WAIT_S:g} s"
                                             " (a pipe or device that stays silent?); give a plan file")]) from None
                continue
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > MAX_PLAN_BYTES:
        raise PlanError([Problem(file, "", "file is larger than 10 MB; plans that large are refused")])
    if not regular and not total:
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise PlanError([Problem(file, "", f"is {kind} and nothing was written to it; give a plan file")])
    return b"".join(chunks)


def _read_plan_file(path: Path) -> str:
    file = str(path)
    try:
        if path.is_dir():
            raise PlanError([Problem(file, "", "is a directory, not a plan file (expected a .toml file)")])
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanError(
                [Problem(file, "", f"file is {size / 1048576:.1f} MB; plans larger than 10 MB are refused")]
            )
        data = _read_bounded(file, path)
    except FileNotFoundError:
        raise PlanError([Problem(file, "", "no such file")]) from None
    except PermissionError:
        raise PlanError([Problem(file, "", "permission denied: cannot read the file")]) from None
    except IsADirectoryError:
        raise PlanError([Problem(file, "", "is a directory, not a plan file (expected a .toml file)")]) from None
    except OSError as e:
        raise PlanError([Problem(file, "", f"cannot read the file: {e.strerror or e}")]) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise PlanError(
            [
                Problem(
                    file,
                    "",
                    f"not valid UTF-8 text (byte 0x{data[e.start]:02x} at column {column}); save the plan as UTF-8",
                    line,
                )
            ]
        ) from None


def load_plan(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> LoadedPlan:
    """Read, substitute and validate a plan file. Raises ``PlanError`` listing every problem."""
    p = Path(path)
    text = _read_plan_file(p)
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError([_toml_problem(file, text, e)]) from None
    except (ValueError, RecursionError) as e:  # tomllib can raise these on pathological input
        raise PlanError([Problem(file, "", f"invalid TOML: {e}")]) from None
    return _load(data, file=file, env=env, source=text, path=p, default_name=p.stem)


def plan_from_dict(
    data: dict[str, Any], *, file: str = "<plan>", env: Mapping[str, str] | None = None
) -> LoadedPlan:
    """Validate a plan given as the dict TOML parses into (same rules as ``load_plan``)."""
    source = ""
    if isinstance(data, dict):
        try:
            import tomli_w

            source = tomli_w.dumps(data)
        except Exception:  # noqa: BLE001 - the source text is informational
            source = ""
    stem = "" if file.startswith("<") else Path(file).stem
    return _load(data, file=file, env=env, source=source, path=None, default_name=stem, locate=False)


def _load(
    data: Any,
    *,
    file: str,
    env: Mapping[str, str] | None,
    source: str,
    path: Path | None,
    default_name: str,
    locate: bool = True,
) -> LoadedPlan:
    locator = _Locator(source if locate else None)
    if not isinstance(data, dict):
        raise PlanError([Problem(file, "", f"a plan must be a table of keys, got {_describe(data)}")])
    subst = _Substituter(os.environ if env is None else env)
    try:
        data = subst.walk(data, ())
    except RecursionError:
        raise PlanError([Problem(file, "", "the plan is nested too deeply")]) from None
    v = _Validator(file, locator, subst.full_refs, subst.failed)
    for p, msg in subst.problems:
        v.problem(p, msg, force=True)
    plan = v.run(data, default_name)
    if v.problems or plan is None:
        raise PlanError(v.problems or [Problem(file, "", "the plan could not be validated")])
    # Values that became numbers or booleans ("${VUS}" -> 10) are settings, not credentials.
    secrets = {value for p, values in subst.secret_at.items() if p not in v.coerced for value in values}
    return LoadedPlan(plan=plan, path=path, source=source, secrets=frozenset(secrets))


# ---- ${ENV} substitution -------------------------------------------------------------------

_ENV_START = re.compile(r"\$\$\{|\$\{")
_ENV_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?\Z", re.DOTALL)


class _Substituter:
    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[tuple[Path_, str]] = []
        self.secret_at: dict[Path_, list[str]] = {}
        self.full_refs: set[Path_] = set()
        self.failed: set[Path_] = set()

    def walk(self, value: Any, path: Path_) -> Any:
        if isinstance(value, str):
            return self.string(value, path) if "${" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, path: Path_) -> str:
        out: list[str] = []
        pos = 0
        refs = 0
        for m in _ENV_START.finditer(text):
            if m.start() < pos:
                continue
            out.append(text[pos : m.start()])
            if m.group() == "$${":
                out.append("${")
                pos = m.end()
                continue
            close = text.find("}", m.end())
            if close < 0:
                self.fail(path, "'${' is not closed: write ${NAME} or ${NAME:-default} (or $${ for a literal ${)")
                return text
            inner = text[m.end() : close]
            ref = _ENV_REF.match(inner)
            if not ref:
                self.fail(
                    path,
                    f"${{{inner}}} is not a valid environment reference: expected ${{NAME}} or ${{NAME:-default}}"
                    " (or $${ for a literal ${)",
                )
                return text
            name, op, default = ref.group(1), ref.group(2), ref.group(3)
            value = self.env.get(name)
            if value is not None and not (op == ":-" and value == ""):
                out.append(value)
                if value:
                    self.secret_at.setdefault(path, []).append(value)
            elif op is not None:
                out.append(default or "")
            else:
                self.fail(
                    path,
                    f"environment variable {name} is not set (used as ${{{name}}}); set it, or give a default:"
                    f" ${{{name}:-value}}",
                )
                return text
            refs += 1
            pos = close + 1
        out.append(text[pos:])
        result = "".join(out)
        if refs == 1 and text.startswith("${") and text.endswith("}") and text.find("}") == len(text) - 1:
            self.full_refs.add(path)
        return result

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append((path, message))
        self.failed.add(path)


# ---- validation ----------------------------------------------------------------------------

_FAIL: Any = object()

_TABLE_WORDS: dict[type, str] = {
    Plan: "at the top level",
    Defaults: "in [defaults]",
    DemoOptions: "in [demo]",
    Phase: "in [[phases]]",
    Scenario: "in [[scenarios]]",
    Step: "in a step ([[scenarios.steps]])",
    Capture: "in a capture entry",
    Expect: "in expect",
    Monitor: "in [monitor]",
    MetricSeries: "in a [monitor] series entry",
    GeneratorLimits: "in [monitor.generator]",
}

# Keys people bring from Artillery and k6, with what perftui calls them.
_FOREIGN_KEYS: dict[str, tuple[str | None, str]] = {
    "arrivalRate": ("arrival_rate", "Artillery"),
    "rampTo": ("ramp_to", "Artillery"),
    "maxVusers": ("max_in_flight", "Artillery"),
    "qs": ("query", "Artillery"),
    "ifTrue": ("if", "Artillery"),
    "flow": ("steps", "Artillery"),
    "statusCode": ("status", "Artillery"),
    "hasProperty": ("json_exists", "Artillery"),
    "equals": ("json_equals", "Artillery"),
    "ensure": ("thresholds", "Artillery"),
    "stages": ("phases", "k6"),
    "target": ("ramp_to", "k6 stages"),
    "rate": ("arrival_rate", "k6"),
    "think_time": ("think", ""),
    "wait": ("think", ""),
    "sleep": ("think", ""),
    "params": ("query", ""),
    "status_code": ("status", ""),
    "statuses": ("status", ""),
    "users": ("vus", "Locust"),
    "concurrency": ("vus", ""),
    "http": ("defaults", "Artillery config.http"),
    "timeout": ("defaults", "Artillery config.http.timeout"),
    "headers": ("defaults", ""),
}
_FOREIGN_NOTES = {
    "config": "Artillery's config: section is not used; put target, phases and variables at the top level",
    "processor": "JavaScript processors are not supported; use templates, capture and if",
    "beforeRequest": "JavaScript hooks are not supported; use templates, capture and if",
    "afterResponse": "JavaScript hooks are not supported; use templates, capture and if",
    "payload": "CSV payloads are not supported; use [variables] lists (one value picked per virtual user)",
    "plugins": "plugins are not used; per-endpoint metrics and expect checks are built in",
    "get": 'write method = "GET" and url = "..." (Artillery\'s "- get:" step)',
    "post": 'write method = "POST" and url = "..." (Artillery\'s "- post:" step)',
    "put": 'write method = "PUT" and url = "..." (Artillery\'s "- put:" step)',
    "patch": 'write method = "PATCH" and url = "..." (Artillery\'s "- patch:" step)',
    "delete": 'write method = "DELETE" and url = "..." (Artillery\'s "- delete:" step)',
}


_PROTOCOL_COMMON = frozenset({"name", "if", "think"})
_PROTOCOL_KEYS: dict[str, frozenset[str]] = {
    "graphql": _PROTOCOL_COMMON | {"url", "headers", "variables", "operation", "capture", "expect", "timeout"},
    "mcp": _PROTOCOL_COMMON | {"url", "headers", "tool", "arguments", "params", "capture", "expect", "timeout"},
    "ws_connect": _PROTOCOL_COMMON | {"headers", "query", "subprotocols", "timeout"},
    "ws_send": _PROTOCOL_COMMON,
    "ws_request": _PROTOCOL_COMMON | {"match", "capture", "expect", "timeout"},
    "ws_expect": _PROTOCOL_COMMON | {"capture", "expect", "timeout"},
    "ws_hold": _PROTOCOL_COMMON,
    "ws_close": _PROTOCOL_COMMON,
}
# Keys that only make sense with one protocol action, for "belongs to" messages on HTTP steps.
_PROTOCOL_ONLY_KEYS = {
    "variables": "graphql",
    "operation": "graphql",
    "tool": "mcp",
    "arguments": "mcp",
    "params": "mcp",
    "subprotocols": "ws_connect",
    "match": "ws_request",
}


def _fields(cls: type) -> dict[str, msgspec.structs.FieldInfo]:
    cached = _FIELDS_CACHE.get(cls)
    if cached is None:
        cached = {f.encode_name: f for f in msgspec.structs.fields(cls)}
        _FIELDS_CACHE[cls] = cached
    return cached


_FIELDS_CACHE: dict[type, dict[str, msgspec.structs.FieldInfo]] = {}


def _unknown_key_message(key: str, cls: type) -> str:
    fields = _fields(cls)
    where = _TABLE_WORDS.get(cls, "here")
    valid = ", ".join(fields)
    if key in _FOREIGN_NOTES and cls in (Plan, Step, Scenario):
        return f"unknown key {_quote(key)} {where}: {_FOREIGN_NOTES[key]}"
    foreign = _FOREIGN_KEYS.get(key)
    if foreign is not None and foreign[0] == "defaults":
        if cls is Plan:
            inner = "timeout and headers" if key == "http" else key
            return f"unknown key {_quote(key)} {where}; did you mean [defaults] {inner}?"
    elif foreign is not None and foreign[0] in fields:
        origin = f" ({key} is the {foreign[1]} spelling)" if foreign[1] else ""
        return f"unknown key {_quote(key)} {where}; did you mean {_quote(foreign[0])}?{origin}"
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
    close = difflib.get_close_matches(snake, list(fields), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.lower(), list(fields), n=1, cutoff=0.6)
    if close:
        return f"unknown key {_quote(key)} {where}; did you mean {_quote(close[0])}?"
    return f"unknown key {_quote(key)} {where} (valid keys: {valid})"


_SCALAR_TEXT = re.compile(r"[+-]?(?:[0-9_.eE+-]+|inf|nan)|true|false")


def _toml_scalar(text: str) -> Any:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, ``"true"`` -> True; anything else stays text."""
    text = text.strip()
    if not _SCALAR_TEXT.fullmatch(text):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _printable_names(plan: Plan) -> Plan:
    """Names are free text, but a terminal obeys the control characters in them (``ESC[2J``
    clears the screen, an OSC sequence retitles the window): every name, and the thresholds that
    quote endpoint names, keep such characters only as visible escapes (``\\x1b[2J``), so that
    no output (validate, headless, ls, the dashboard, session files) can send them raw. The same
    escaping on both sides keeps ``p95{name}`` thresholds matching their endpoints."""

    def fix(text: Any) -> Any:
        return printable(text) if isinstance(text, str) else text

    def step(st: Step) -> Step:
        if st.name is not UNSET:
            return msgspec.structs.replace(st, name=fix(st.name)) if fix(st.name) != st.name else st
        name = endpoint_name(st)
        return msgspec.structs.replace(st, name=printable(name)) if printable(name) != name else st

    return msgspec.structs.replace(
        plan,
        name=fix(plan.name),
        description=fix(plan.description),
        phases=[msgspec.structs.replace(ph, name=fix(ph.name)) for ph in plan.phases],
        scenarios=[msgspec.structs.replace(sc, name=fix(sc.name), steps=[step(st) for st in sc.steps])
                   for sc in plan.scenarios],
        thresholds=[fix(t) for t in plan.thresholds],
    )


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class _Validator:
    """Converts the plan piece by piece (so one bad value doesn't hide the others) and runs the
    semantic checks on every piece that converted."""

    def __init__(self, file: str, locator: _Locator, full_refs: set[Path_], env_failed: set[Path_]):
        self.file = file
        self.locator = locator
        self.full_refs = full_refs
        self.env_failed = env_failed
        self.problems: list[Problem] = []
        self.defined: set[str] = set()
        self.endpoints: set[str] = set()
        self.suppress: list[list[Path_]] = []
        self.coerced: set[Path_] = set()

    def problem(self, path: Path_, message: str, *, force: bool = False) -> None:
        if not force and any(path[: len(p)] == p for p in self.env_failed):
            return  # already reported as a missing environment variable
        if self.suppress and any(path[: len(p)] == p for p in self.suppress[-1]):
            return  # already reported as a wrong type
        self.problems.append(Problem(self.file, format_path(path), message, self.locator.line(path)))

    # -- driver --

    def run(self, data: dict[str, Any], default_name: str) -> Plan | None:
        self.defined = self._defined_names(data)
        plan = self.struct(data, Plan, ())
        if plan is _FAIL:
            plan = None
        self._plan_checks(data, plan)
        self.problems.sort(key=lambda p: p.line or 0)
        if plan is None:
            return None
        updates: dict[str, Any] = {}
        if not plan.name:
            updates["name"] = default_name or "plan"
        phases = [
            msgspec.structs.replace(ph, name=f"phase {i + 1}") if not ph.name else ph for i, ph in enumerate(plan.phases)
        ]
        scenarios = [
            msgspec.structs.replace(sc, name=f"scenario {i + 1}") if not sc.name else sc
            for i, sc in enumerate(plan.scenarios)
        ]
        plan = msgspec.structs.replace(plan, phases=phases, scenarios=scenarios, **updates)
        plan = _printable_names(plan)
        try:
            msgspec.msgpack.encode(plan)
        except (OverflowError, TypeError, ValueError) as e:
            self.problem((), f"the plan cannot be encoded (a number too large?): {e}")
            return None
        return plan

    def _defined_names(self, data: dict[str, Any]) -> set[str]:
        names: set[str] = set()
        variables = data.get("variables")
        if isinstance(variables, dict):
            names.update(k for k in variables if isinstance(k, str))
        scenarios = data.get("scenarios")
        for sc in scenarios if isinstance(scenarios, list) else ():
            steps = sc.get("steps") if isinstance(sc, dict) else None
            for st in steps if isinstance(steps, list) else ():
                caps = st.get("capture") if isinstance(st, dict) else None
                for cap in caps if isinstance(caps, list) else ():
                    if isinstance(cap, dict) and isinstance(cap.get("as"), str):
                        names.add(cap["as"])
        return names

    # -- structure --

    def struct(self, value: Any, cls: type, path: Path_) -> Any:
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {_describe(value)}")
            return _FAIL
        fields = _fields(cls)
        ok = True
        kwargs: dict[str, Any] = {}
        failed: list[Path_] = []
        for key, item in value.items():
            if not isinstance(key, str):
                self.problem(path, f"keys must be strings, got {_describe(key)}")
                ok = False
                continue
            info = fields.get(key)
            if info is None:
                self.problem(path + (key,), _unknown_key_message(key, cls))
                ok = False
                continue
            converted = self.value(item, info.type, path + (key,))
            if converted is _FAIL:
                ok = False
                failed.append(path + (key,))
            else:
                kwargs[info.name] = converted
        for key, info in fields.items():
            if info.required and key not in value:
                self.problem(path, f"missing required key {_quote(key)} {_TABLE_WORDS.get(cls, '')}".rstrip())
                ok = False
        if not ok:
            # Still run the semantic checks on what did convert (failed fields hold their default
            # or UNSET), so that every problem is reported at once; nothing under a failed key
            # is reported twice.
            for info in fields.values():
                if info.name not in kwargs:
                    if info.default is not msgspec.NODEFAULT:
                        kwargs[info.name] = info.default
                    elif info.default_factory is not msgspec.NODEFAULT:
                        kwargs[info.name] = info.default_factory()
                    else:
                        kwargs[info.name] = UNSET
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as e:  # pragma: no cover - every field was checked
            self.problem(path, str(e))
            return _FAIL
        check = getattr(self, f"check_{cls.__name__.lower()}", None)
        if check is not None:
            self.suppress.append(failed)
            try:
                check(obj, value, path)
            finally:
                self.suppress.pop()
        return obj if ok else _FAIL

    def value(self, value: Any, tp: Any, path: Path_) -> Any:
        tp = _strip_unset(tp)
        if tp is Any:
            return value
        if _is_struct(tp):
            return self.struct(value, tp, path)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is list:
            if not isinstance(value, list):
                if _is_struct(args[0]):
                    self.problem(path, f"expected an array of tables (write [[{format_path(path)}]] or [ {{ ... }} ]), got {_describe(value)}")
                else:
                    self.problem(path, f"expected {_expected(tp)}, got {_describe(value)}")
                return _FAIL
            out = [self.value(item, args[0], path + (i,)) for i, item in enumerate(value)]
            return _FAIL if any(o is _FAIL for o in out) else out
        if origin is dict:
            if not isinstance(value, dict):
                self.problem(path, f"expected a table, got {_describe(value)}")
                return _FAIL
            result = {}
            ok = True
            for k, item in value.items():
                if not isinstance(k, str):
                    self.problem(path, f"keys must be strings, got {_describe(k)}")
                    ok = False
                    continue
                converted = self.value(item, args[1], path + (k,))
                if converted is _FAIL:
                    ok = False
                result[k] = converted
            return result if ok else _FAIL
        if origin is Literal:
            if isinstance(value, str) and value in args:
                return value
            choices = ", ".join(_quote(a) for a in args)
            close = difflib.get_close_matches(value, [str(a) for a in args], n=1) if isinstance(value, str) else []
            hint = f"; did you mean {_quote(close[0])}?" if close else ""
            self.problem(path, f"expected one of {choices}, got {_describe(value)}{hint}")
            return _FAIL
        if isinstance(tp, types.UnionType) or origin is typing.Union:
            lists = [a for a in args if typing.get_origin(a) is list]
            structs = [a for a in args if _is_struct(a)]
            if isinstance(value, list) and lists:
                return self.value(value, lists[0], path)
            if isinstance(value, dict) and structs:
                return self.struct(value, structs[0], path)
            rest = tuple(a for a in args if a not in lists and a not in structs)
            target = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
            return self.leaf(value, target, tp, path)
        return self.leaf(value, tp, tp, path)

    def leaf(self, value: Any, tp: Any, described: Any, path: Path_) -> Any:
        try:
            return msgspec.convert(value, tp, strict=True)
        except (msgspec.ValidationError, TypeError, ValueError, OverflowError):
            pass
        if path in self.full_refs and isinstance(value, str):
            # "${VUS}" -> 10: an environment value standing alone takes the type the key needs.
            try:
                coerced = _toml_scalar(value)
                result = msgspec.convert(coerced, tp, strict=True)
                self.coerced.add(path)
                return result
            except (tomllib.TOMLDecodeError, msgspec.ValidationError, TypeError, ValueError, OverflowError):
                pass
        hint = ""
        if isinstance(value, str) and tp in (int, float, bool):
            try:
                if not isinstance(_toml_scalar(value), str):
                    hint = "; remove the quotes"
            except (tomllib.TOMLDecodeError, ValueError):
                pass
        if tp is int and isinstance(value, float):
            hint = "; use a whole number"
        self.problem(path, f"expected {_expected(described)}, got {_describe(value)}{hint}")
        return _FAIL

    # -- helpers for checks --

    def duration(self, value: Any, path: Path_, *, allow_zero: bool = False) -> float | None:
        if value is UNSET:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.problem(path, str(e))
            return None
        if not math.isfinite(seconds):
            self.problem(path, "the duration must be finite")
            return None
        if seconds < 0 or (seconds == 0 and not allow_zero):
            self.problem(path, f"the duration must be greater than 0, got {value!r}" if not allow_zero
                         else f"the duration must not be negative, got {value!r}")
            return None
        return seconds

    def template(self, text: str, path: Path_) -> None:
        try:
            t = compile_template(text)
        except TemplateError as e:
            self.problem(path, f"bad template: {e}")
            return
        self.names_defined(t.names, path)

    def names_defined(self, names: frozenset[str], path: Path_) -> None:
        for name in sorted(names - self.defined):
            close = difflib.get_close_matches(name, sorted(self.defined), n=1)
            hint = f"; did you mean {{{{ {close[0]} }}}}?" if close else ""
            self.problem(
                path,
                f"template uses {{{{ {name} }}}} but no variable {name!r} is defined in [variables] or captured"
                f" by a step (capture ... as = {_quote(name)}){hint}",
            )

    def headers(self, headers: dict[str, str], path: Path_) -> None:
        for name, text in headers.items():
            if not _HEADER_NAME.match(name):
                self.problem(path + (name,), f"{_quote(name)} is not a valid HTTP header name")
            if _HEADER_VALUE_BAD.search(text):
                self.problem(path + (name,), "header values must not contain line breaks or control characters")
                continue
            self.template(text, path + (name,))

    # -- per-struct checks (called when the struct converted) --

    def check_defaults(self, d: Defaults, raw: dict[str, Any], path: Path_) -> None:
        self.duration(d.timeout, path + ("timeout",))
        self.duration(d.connect_timeout, path + ("connect_timeout",))
        self.duration(d.late_threshold, path + ("late_threshold",), allow_zero=True)
        self.duration(d.graceful_stop, path + ("graceful_stop",), allow_zero=True)
        if not 1 <= d.h2_streams <= 10_000:
            self.problem(path + ("h2_streams",), f"must be a number of streams from 1 to 10000, got {d.h2_streams}")
        if not 0 <= d.max_redirects <= MAX_REDIRECTS:
            self.problem(path + ("max_redirects",), f"must be from 0 (no redirect followed) to {MAX_REDIRECTS}, got {d.max_redirects}")
        if d.max_connections < 0:
            self.problem(path + ("max_connections",), f"must be 0 (automatic) or more, got {d.max_connections}")
        self.headers(d.headers, path + ("headers",))

    def check_demooptions(self, d: DemoOptions, raw: dict[str, Any], path: Path_) -> None:
        if not (math.isfinite(d.error_rate) and 0 <= d.error_rate <= 1):
            self.problem(path + ("error_rate",), f"must be a fraction from 0 to 1 (0.05 = 5%), got {d.error_rate:g}")
        if not 0 <= d.port <= 65535:
            self.problem(path + ("port",), f"must be a TCP port from 0 to 65535 (0 = any free port), got {d.port}")
        if not d.latency.strip():
            self.problem(path + ("latency",), 'must not be empty; use "0ms" for no added latency')
        else:
            try:
                parse_latency(d.latency)
            except ValueError as e:
                self.problem(path + ("latency",), str(e))

    def check_phase(self, ph: Phase, raw: dict[str, Any], path: Path_) -> None:
        self.duration(ph.duration, path + ("duration",))
        modes = [k for k in ("arrival_rate", "vus") if k in raw]
        if ph.pause:
            modes.append("pause")
        if len(modes) > 1:
            self.problem(
                path,
                f"a phase has exactly one of arrival_rate (open model), vus (closed model) or pause = true;"
                f" this one has {' and '.join(modes)}",
            )
            return
        if not modes and all(k in _fields(Phase) for k in raw):
            self.problem(
                path,
                "a phase needs one of arrival_rate (open model: iterations started per second),"
                " vus (closed model: virtual users) or pause = true",
            )
            return
        if not modes:
            return
        model = "pause" if ph.pause else ("closed" if "vus" in raw else "open")
        # Starting at 0 is fine when the phase ramps up from it (k6's startRate: 0, stages from 0 VUs).
        ramps_up = ph.ramp_to is not UNSET and isinstance(ph.ramp_to, (int, float)) and ph.ramp_to > 0
        low = "0 or more (it ramps up)" if ramps_up else "greater than 0"
        if model == "open" and ph.arrival_rate is not UNSET:
            rate = ph.arrival_rate
            if not (math.isfinite(rate) and (0 < rate or (ramps_up and rate == 0)) and rate <= MAX_RATE):
                self.problem(path + ("arrival_rate",), f"must be {low} (and at most {MAX_RATE:g}), got {rate:g}")
        if model == "closed" and ph.vus is not UNSET:
            if not ((0 < ph.vus or (ramps_up and ph.vus == 0)) and ph.vus <= MAX_VUS):
                self.problem(path + ("vus",), f"must be {low} (and at most {MAX_VUS}), got {ph.vus}")
        if ph.ramp_to is not UNSET:
            limit = MAX_RATE if model == "open" else MAX_VUS
            if model == "pause":
                self.problem(path + ("ramp_to",), "a pause phase cannot ramp; remove ramp_to")
            elif not (math.isfinite(ph.ramp_to) and 0 <= ph.ramp_to <= limit):
                self.problem(path + ("ramp_to",), f"must be 0 or more (ramping down is fine), got {ph.ramp_to:g}")
            elif model == "closed" and ph.ramp_to != int(ph.ramp_to):
                self.problem(path + ("ramp_to",), f"virtual users are whole: ramp_to must be a whole number, got {ph.ramp_to:g}")
        if ph.max_in_flight is not UNSET:
            if model != "open":
                self.problem(path + ("max_in_flight",), "max_in_flight limits open-model phases (arrival_rate) only")
            elif not 0 < ph.max_in_flight <= MAX_IN_FLIGHT:
                self.problem(path + ("max_in_flight",), f"must be greater than 0, got {ph.max_in_flight}")
        if "arrivals" in raw and model != "open":
            self.problem(path + ("arrivals",), "arrivals shapes open-model phases (arrival_rate) only")

    def check_scenario(self, sc: Scenario, raw: dict[str, Any], path: Path_) -> None:
        if not (math.isfinite(sc.weight) and 0 <= sc.weight <= MAX_WEIGHT):
            self.problem(path + ("weight",), f"must be from 0 to {MAX_WEIGHT:g}, got {sc.weight:g}")
        steps = raw.get("steps")
        connected = False
        for i, st in enumerate(steps if isinstance(steps, list) else ()):
            if not isinstance(st, dict):
                continue
            if "ws_connect" in st:
                connected = True
            elif not connected:
                used = next((k for k in ("ws_send", "ws_request", "ws_expect", "ws_hold", "ws_close") if k in st), None)
                if used is not None:
                    self.problem(path + ("steps", i, used), f"{used} needs a ws_connect step before it in this scenario"
                                 ' (e.g. ws_connect = "/ws")')
        if not raw.get("steps") and all(k in _fields(Scenario) for k in raw):
            self.problem(
                path + ("steps",) if "steps" in raw else path,
                "a scenario needs at least one step: add [[scenarios.steps]] with url = \"/path\"",
            )

    def check_step(self, st: Step, raw: dict[str, Any], path: Path_) -> None:
        actions = [k for k in PROTOCOL_ACTIONS if k in raw]
        if actions:
            self.check_protocol_step(st, raw, path, actions)
            return
        for key in raw:
            owner = _PROTOCOL_ONLY_KEYS.get(key)
            if owner is not None:
                hint = "; query string parameters go in query" if key == "params" else ""
                self.problem(path + (key,), f"{key} belongs to {owner} steps; this step has no {owner}{hint}")
        if "url" not in raw:
            if "think" not in raw:
                if all(k in _fields(Step) for k in raw):
                    self.problem(path, 'a step needs url = "/path" (or only think = "1s" for a pause step, or one of'
                                       ' graphql, mcp, ws_connect, ws_send, ws_request, ws_expect, ws_hold, ws_close)')
                return
            others = [k for k in raw if k != "think"]
            if others:
                self.problem(path, f"a step without url is a pause and may only have think; it also has {', '.join(others)}")
            self.duration(st.think, path + ("think",), allow_zero=True)
            return
        method = st.method.upper()
        st.method = method  # plans may say "post"; the engine sends what the loader returns
        if method not in HTTP_METHODS:
            close = difflib.get_close_matches(method, HTTP_METHODS, n=1, cutoff=0.65)
            hint = f"; did you mean {close[0]}?" if close else f" (use one of {', '.join(HTTP_METHODS)})"
            self.problem(path + ("method",), f"unknown HTTP method {_quote(st.method)}{hint}")
        self.step_rest(st, path)
        if st.url is UNSET:
            return  # reported as a wrong type
        self.endpoints.add(endpoint_name(st))
        self.check_url(st.url, path + ("url",))

    def absolute_url(self, url: str, path: Path_, schemes: tuple[str, ...]) -> bool:
        """Checks an absolute URL's parts (port, IPv6 brackets, host name); templated URLs are
        checked as far as their text allows. False when a problem was reported."""
        if "{{" in url:
            return True
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not 0..65535
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(url)}")
            return False
        if parts.scheme.lower() not in schemes:
            return True  # the caller words the scheme problem
        host = parts.hostname or ""
        if not host:
            self.problem(path, f"has no host name: {_quote(url)}")
            return False
        if not _HOST.match(host) and not (parts.netloc.rpartition("@")[2].startswith("[") and _IPV6.match(host)):
            self.problem(path, f"{_quote(host)} is not a valid host name (letters, digits, - and . only): {_quote(url)}")
            return False
        return True

    def check_url(self, url: str, path: Path_) -> None:
        if not url.strip():
            self.problem(path, 'must not be empty; write a path like "/api/users"')
        elif not (url.startswith(("/", "{{")) or url.lower().startswith(("http://", "https://"))):
            if url.lower().startswith(("ws://", "wss://")):
                self.problem(path, f"WebSocket URLs go in ws_connect = {_quote(url)}, not url")
            elif "://" in url:
                self.problem(path, f"only http:// and https:// URLs are supported, got {_quote(url)}")
            else:
                self.problem(path, f"must start with / (a path on the target) or http(s)://, got {_quote(url)}; did you mean {_quote('/' + url)}?")
        if _has_control(url) or (_has_space_or_control(url) and "{{" not in url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
        elif url.lower().startswith(("http://", "https://")):
            self.absolute_url(url, path, ("http", "https"))
        self.template(url, path)

    # -- protocol steps --

    def json_template(self, value: Any, path: Path_) -> None:
        try:
            jt = compile_json(value)
        except TemplateError as e:
            self.problem(path, f"bad template: {e}")
        else:
            self.names_defined(jt.names, path)

    def check_protocol_step(self, st: Step, raw: dict[str, Any], path: Path_, actions: list[str]) -> None:
        if len(actions) > 1:
            self.problem(path, f"a step does one thing: one of {', '.join(PROTOCOL_ACTIONS)}; this one has {' and '.join(actions)}")
            return
        action = actions[0]
        allowed = _PROTOCOL_KEYS[action]
        for key in raw:
            if key != action and key not in allowed and key in _fields(Step):
                keys = ", ".join(sorted(allowed))
                self.problem(path + (key,), f"{key} does not apply to a {action} step (its keys: {action}, {keys})")
        self.step_rest(st, path)
        for name, _role in step_endpoints(st):
            self.endpoints.add(name)
        value = raw[action]
        at = path + (action,)
        if action in ("graphql", "mcp") and st.url is not UNSET:
            self.check_url(st.url, path + ("url",))
        if action.startswith("ws_") and isinstance(raw.get("expect"), dict) and "status" in raw["expect"]:
            self.problem(path + ("expect", "status"), "WebSocket messages have no status; use json_equals, json_exists or body_contains")
        if action.startswith("ws_"):
            for i, cap in enumerate(raw.get("capture") or []):
                if isinstance(cap, dict) and "header" in cap:
                    self.problem(path + ("capture", i, "header"), "WebSocket messages have no headers; capture with json or regex")
        if action == "graphql":
            if isinstance(value, str) and not value.strip():
                self.problem(at, 'must not be empty: write a GraphQL document such as "query { users { id } }"')
            if st.variables is not UNSET:
                self.json_template(st.variables, path + ("variables",))
            if st.operation is not UNSET and not _IDENT.match(st.operation):
                self.problem(path + ("operation",), f"must be a GraphQL operation name (letters, digits, _), got {_quote(st.operation)}")
        elif action == "mcp":
            self.check_mcp(st, raw, path)
        elif action == "ws_connect":
            if isinstance(value, str):
                self.check_ws_url(value, at)
            for i, proto in enumerate(st.subprotocols or ()):
                if not _HEADER_NAME.match(proto):
                    self.problem(path + ("subprotocols", i), f"{_quote(proto)} is not a valid subprotocol name (a token without spaces)")
        elif action == "ws_send":
            if isinstance(value, str):
                self.template(value, at)
            elif isinstance(value, (dict, list)):
                self.json_template(value, at)
            else:
                self.problem(at, f"expected a string (sent as text) or a table/array (sent as JSON), got {_describe(value)}")
        elif action == "ws_request":
            if not isinstance(value, dict):
                self.problem(at, f"expected a table (sent as JSON, with a correlation field such as id), got {_describe(value)}")
                return
            self.json_template(value, at)
            match = st.match if st.match is not UNSET else "id"
            if not match.strip():
                self.problem(path + ("match",), 'must name the correlation field, e.g. "id" or "$.meta.id"')
            elif match.startswith("$"):
                try:
                    found = compile_path(match).find(value)
                except ValueError as e:
                    self.problem(path + ("match",), str(e))
                else:
                    if found is MISSING:
                        self.problem(path + ("match",), f"the message has nothing at {match} to match the reply on")
            elif match not in value:
                hint = ' (add id = "{{ $uuid() }}")' if match == "id" else ""
                self.problem(at, f"the message needs a field {_quote(match)}: replies are matched on it{hint};"
                                 " set match = \"...\" to use another field")
        elif action == "ws_expect":
            if isinstance(value, str):
                if not value:
                    self.problem(at, "must not be empty")
                self.template(value, at)
            elif isinstance(value, dict):
                if not value:
                    self.problem(at, 'must name at least one field, e.g. { type = "subscribed" }')
                for key, expected in value.items():
                    if key.startswith("$"):
                        try:
                            compile_path(key)
                        except ValueError as e:
                            self.problem(at + (key,), str(e))
                    self.json_template(expected, at + (key,))
            else:
                self.problem(at, f"expected a table of fields to match (e.g. {{ type = \"tick\" }}) or a string the text contains, got {_describe(value)}")
        elif action == "ws_hold":
            self.duration(st.ws_hold, at)
        elif action == "ws_close":
            if value is not True:
                self.problem(at, "write ws_close = true (or leave the step out: the connection closes at the end of the iteration)")

    def check_ws_url(self, url: str, path: Path_) -> None:
        low = url.lower()
        if not url.strip():
            self.problem(path, 'must not be empty; write a path like "/ws" or a ws:// URL')
        elif low.startswith(("http://", "https://")):
            fixed = "ws" + url[4:]
            self.problem(path, f"WebSocket URLs use ws:// or wss://; did you mean {_quote(fixed)}? (a path like \"/ws\" uses the target's host)")
        elif not (url.startswith(("/", "{{")) or low.startswith(("ws://", "wss://"))):
            hint = f"; did you mean {_quote('/' + url)}?" if "://" not in url else ""
            self.problem(path, f"must start with / (a path on the target) or ws:// / wss://, got {_quote(url)}{hint}")
        if _has_control(url) or (_has_space_or_control(url) and "{{" not in url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
        elif low.startswith(("ws://", "wss://")):
            self.absolute_url(url, path, ("ws", "wss"))
        self.template(url, path)

    def check_mcp(self, st: Step, raw: dict[str, Any], path: Path_) -> None:
        method = st.mcp
        at = path + ("mcp",)
        if method is UNSET:
            return
        if not method.strip() or any(c.isspace() for c in method):
            self.problem(at, f'expected a JSON-RPC method such as "tools/call" or "tools/list", got {_quote(method)}')
            return
        if method in ("initialize", "notifications/initialized"):
            self.problem(at, "the MCP session (initialize, notifications/initialized) is opened automatically on a"
                             " virtual user's first MCP step; start with the call you want to measure")
        if method == "tools/call":
            if st.tool is UNSET:
                self.problem(path, 'mcp = "tools/call" needs tool = "<tool name>" (and arguments = { ... })')
            elif not st.tool.strip():
                self.problem(path + ("tool",), "must not be empty")
            elif _has_control(st.tool):
                self.problem(path + ("tool",), f"a tool name cannot contain control characters: {_quote(st.tool)}")
            if st.params is not UNSET:
                self.problem(path + ("params",), "tools/call takes tool and arguments instead of params")
        else:
            for key in ("tool", "arguments"):
                if key in raw:
                    self.problem(path + (key,), f'{key} is for mcp = "tools/call"; use params for {method}')
        if st.arguments is not UNSET:
            self.json_template(st.arguments, path + ("arguments",))
        if st.params is not UNSET:
            self.json_template(st.params, path + ("params",))

    def step_rest(self, st: Step, path: Path_) -> None:
        self.headers(st.headers, path + ("headers",))
        for k, q in st.query.items():
            if isinstance(q, str):
                self.template(q, path + ("query", k))
        if st.json is not UNSET and st.body is not UNSET:
            self.problem(path + ("body",), "a step has json or body, not both: json sends a JSON document, body sends text as written")
        if st.json is not UNSET:
            try:
                jt = compile_json(st.json)
            except TemplateError as e:
                self.problem(path + ("json",), f"bad template: {e}")
            else:
                self.names_defined(jt.names, path + ("json",))
        if st.body is not UNSET:
            self.template(st.body, path + ("body",))
        if st.if_ is not UNSET:
            if not _IDENT.match(st.if_):
                self.problem(path + ("if",), f"must name a variable (like authToken), got {_quote(st.if_)}")
            elif st.if_ not in self.defined:
                close = difflib.get_close_matches(st.if_, sorted(self.defined), n=1)
                hint = f"; did you mean {_quote(close[0])}?" if close else ""
                self.problem(path + ("if",), f"no variable {_quote(st.if_)} is defined in [variables] or captured by a step{hint}")
        if st.think is not UNSET:
            self.duration(st.think, path + ("think",), allow_zero=True)
        if st.timeout is not UNSET:
            self.duration(st.timeout, path + ("timeout",))
        if st.name is not UNSET and not st.name.strip():
            self.problem(path + ("name",), "must not be empty (leave it out to use \"METHOD url\")")

    def check_capture(self, cap: Capture, raw: dict[str, Any], path: Path_) -> None:
        if isinstance(cap.as_, str) and not _IDENT.match(cap.as_):
            self.problem(path + ("as",), f"must be a variable name (letters, digits, _), got {_quote(cap.as_)}")
        sources = [k for k in ("json", "header", "regex") if k in raw]
        if len(sources) != 1:
            have = f"; this one has {' and '.join(sources)}" if sources else ""
            self.problem(path, f"a capture takes exactly one of json, header or regex{have}")
            return
        if cap.json is not UNSET:
            try:
                compile_path(cap.json)
            except ValueError as e:
                self.problem(path + ("json",), str(e))
        if cap.header is not UNSET and not _HEADER_NAME.match(cap.header):
            self.problem(path + ("header",), f"{_quote(cap.header)} is not a valid HTTP header name")
        if cap.regex is not UNSET:
            try:
                re.compile(cap.regex)
            except re.error as e:
                self.problem(path + ("regex",), f"invalid regular expression: {e}")
            except (RecursionError, OverflowError, ValueError):
                self.problem(path + ("regex",), "invalid regular expression")

    def check_expect(self, ex: Expect, raw: dict[str, Any], path: Path_) -> None:
        if ex.status is not UNSET:
            codes = ex.status if isinstance(ex.status, list) else [ex.status]
            if isinstance(ex.status, list) and not codes:
                self.problem(path + ("status",), "must list at least one status code")
            for i, code in enumerate(codes):
                if not 100 <= code <= 599:
                    where = path + ("status", i) if isinstance(ex.status, list) else path + ("status",)
                    self.problem(where, f"HTTP status codes are 100 to 599, got {code}")
        for key in ex.json_equals:
            try:
                compile_path(key)
            except ValueError as e:
                self.problem(path + ("json_equals", key), str(e))
        for i, key in enumerate(ex.json_exists):
            try:
                compile_path(key)
            except ValueError as e:
                self.problem(path + ("json_exists", i), str(e))

    # -- [monitor] --

    def monitor_url(self, url: str, path: Path_, example: str = "/health") -> None:
        if not url.strip():
            self.problem(path, f'must not be empty: a path on the target such as "{example}", or an http(s):// URL')
            return
        if _has_space_or_control(url):
            self.problem(path, "URLs cannot contain spaces, line breaks or control characters; encode them as %20")
            return
        if url.startswith("/"):
            return
        if "://" not in url:
            self.problem(path, f"must start with / (a path on the target) or http(s)://, got {_quote(url)};"
                               f" did you mean {_quote('/' + url)}?")
            return
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(url)}")
            return
        if parts.scheme not in ("http", "https"):
            self.problem(path, f"only http:// and https:// URLs can be polled, got {_quote(parts.scheme + '://')}")
        else:
            self.absolute_url(url, path, ("http", "https"))

    def check_monitor(self, m: Monitor, raw: dict[str, Any], path: Path_) -> None:
        single = isinstance(m.health, str)
        seen: set[str] = set()
        for i, url in enumerate([m.health] if single else m.health):
            where = path + (("health",) if single else ("health", i))
            self.monitor_url(url, where)
            if url in seen:
                self.problem(where, f"{_quote(url)} is listed twice")
            seen.add(url)
        if m.metrics or "metrics" in raw:
            self.monitor_url(m.metrics, path + ("metrics",), "/metrics")
        interval = self.duration(m.interval, path + ("interval",))
        if interval is not None and interval < 0.1:
            self.problem(path + ("interval",), f"must be at least 100ms (polling faster would load the target), got {m.interval!r}")
        self.duration(m.timeout, path + ("timeout",))
        for name, text in m.headers.items():
            if not _HEADER_NAME.match(name):
                self.problem(path + ("headers", name), f"{_quote(name)} is not a valid HTTP header name")
            elif _HEADER_VALUE_BAD.search(text):
                self.problem(path + ("headers", name), "header values must not contain line breaks or control characters")
        if m.process is not UNSET:
            if isinstance(m.process, int):
                if not 0 < m.process <= MAX_PID:
                    self.problem(path + ("process",), f"a pid is a whole number from 1 to {MAX_PID}, got {m.process}")
            elif not m.process.strip():
                self.problem(path + ("process",), 'must not be empty: a pid, a process name or command-line text, or "target"')
        if m.series and not m.metrics and "metrics" not in raw:
            self.problem(path + ("series",), 'series are read from the metrics URL: add metrics = "/metrics" (or a JSON metrics URL)')
        names: dict[str, int] = {}
        for i, entry in enumerate(m.series):
            where = path + ("series", i)
            if isinstance(entry, str):
                try:
                    parse_selector(entry)
                except ValueError as e:
                    self.problem(where, str(e))
                    continue
                if m.metrics_format == "json":
                    self.problem(where, 'a Prometheus selector cannot read JSON metrics (metrics_format = "json");'
                                        ' write { json = "$.path", name = "..." }')
                name = entry.strip()
            else:
                if entry.select is not UNSET and m.metrics_format == "json":
                    self.problem(where + ("select",), 'metrics_format = "json": read JSON metrics with json = "$.path"')
                if entry.json is not UNSET and m.metrics_format == "prometheus":
                    self.problem(where + ("json",), 'metrics_format = "prometheus": read Prometheus metrics with select = "name{...}"')
                source = entry.select if entry.select is not UNSET else entry.json if entry.json is not UNSET else ""
                name = (entry.name or source).strip()
            if name and name in names:
                self.problem(where, f"two series are named {_quote(name)} (also series[{names[name] + 1}]):"
                                    " give one of them name = \"...\"")
            names.setdefault(name, i)

    def check_metricseries(self, s: MetricSeries, raw: dict[str, Any], path: Path_) -> None:
        sources = [k for k in ("select", "json") if k in raw]
        if len(sources) != 1:
            have = f"; this one has {' and '.join(sources)}" if sources else ""
            self.problem(path, f"a series takes exactly one of select (a Prometheus selector) or json (a JSON path){have}")
        if s.select is not UNSET:
            try:
                parse_selector(s.select)
            except ValueError as e:
                self.problem(path + ("select",), str(e))
        if s.json is not UNSET:
            try:
                compile_path(s.json)
            except ValueError as e:
                self.problem(path + ("json",), str(e))
        if not math.isfinite(s.scale) or s.scale == 0:
            self.problem(path + ("scale",), f"must be a number other than 0, got {s.scale:g}")
        if s.quantile is not UNSET:
            if not (math.isfinite(s.quantile) and 0 < s.quantile < 1):
                self.problem(path + ("quantile",), f"must be between 0 and 1 (0.99 for p99), got {s.quantile:g}")
            if s.json is not UNSET:
                self.problem(path + ("quantile",), "quantile reads the buckets of a Prometheus histogram: use it with select")
            if s.rate is not UNSET:
                self.problem(path + ("rate",), "a quantile is not a rate: remove rate")
        if "name" in raw and not s.name.strip():
            self.problem(path + ("name",), "must not be empty (leave it out to use the selector or path)")

    def check_generatorlimits(self, g: GeneratorLimits, raw: dict[str, Any], path: Path_) -> None:
        if not (math.isfinite(g.cpu_percent) and 0 < g.cpu_percent <= 100):
            self.problem(path + ("cpu_percent",), f"must be a percentage of one core above 0 and at most 100, got {g.cpu_percent:g}")
        self.duration(g.cpu_for, path + ("cpu_for",), allow_zero=True)
        self.duration(g.loop_lag, path + ("loop_lag",))
        self.duration(g.schedule_lag, path + ("schedule_lag",))

    # -- whole-plan checks (on the raw data, so they run even when parts failed) --

    def _plan_checks(self, raw: dict[str, Any], plan: Plan | None) -> None:
        target = raw.get("target")
        if isinstance(target, str):
            self.check_target(target, ("target",))
        elif "target" not in raw:
            self.problem(("target",), 'missing: set target = "demo" (the embedded demo server) or a base URL such as "http://localhost:8080"')
        phases = raw.get("phases")
        if "phases" not in raw or (isinstance(phases, list) and not phases):
            self.problem(
                ("phases",),
                "a plan needs at least one phase, e.g. [[phases]] duration = \"1m\" arrival_rate = 10",
            )
        scenarios = raw.get("scenarios")
        if "scenarios" not in raw or (isinstance(scenarios, list) and not scenarios):
            self.problem(
                ("scenarios",),
                "a plan needs at least one scenario: [[scenarios]] with [[scenarios.steps]] url = \"/\"",
            )
        elif isinstance(scenarios, list) and all(isinstance(s, dict) for s in scenarios):
            weights = [s.get("weight", 1) for s in scenarios]
            if all(_finite(w) and w >= 0 for w in weights) and sum(weights) <= 0:
                self.problem(("scenarios",), "the scenario weights add up to 0: give at least one scenario a weight above 0")
        thresholds = raw.get("thresholds")
        if isinstance(thresholds, list):
            for i, expr in enumerate(thresholds):
                if not isinstance(expr, str):
                    continue  # reported as a type error
                try:
                    th = parse_threshold(expr)
                except ValueError as e:
                    self.problem(("thresholds", i), str(e))
                    continue
                if th.endpoint is not None and th.metric in METRICS and plan is not None and th.endpoint not in self.endpoints:
                    known = sorted(self.endpoints)
                    close = difflib.get_close_matches(th.endpoint, known, n=1, cutoff=0.6)
                    hint = f"; did you mean {{{close[0]}}}?" if close else f"; endpoints: {', '.join(known)}"
                    self.problem(("thresholds", i), f"no step has the endpoint name {_quote(th.endpoint)}{hint}")
        variables = raw.get("variables")
        if isinstance(variables, dict):
            for name, val in variables.items():
                if isinstance(name, str) and not _IDENT.match(name):
                    self.problem(("variables", name), "variable names use letters, digits and _ (and don't start with a digit), so templates can use them")
                if isinstance(val, list) and not val:
                    self.problem(("variables", name), "an empty list: give at least one value")

    def check_target(self, target: str, path: Path_) -> None:
        if target == "demo":
            return
        if not target.strip():
            self.problem(path, 'must not be empty: use "demo" or a base URL such as "http://localhost:8080"')
            return
        if _has_space_or_control(target):
            self.problem(path, f"a target URL cannot contain spaces, line breaks or control characters: {_quote(target)}")
            return
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError as e:
            self.problem(path, f"not a valid URL ({e}): {_quote(target)}")
            return
        del port
        if parts.scheme not in ("http", "https"):
            if not parts.scheme or "://" not in target:
                self.problem(path, f"needs a scheme: did you mean {_quote('http://' + target)}? (or \"demo\" for the embedded demo server)")
            else:
                self.problem(path, f"only http:// and https:// targets are supported, got {_quote(parts.scheme + '://')}")
            return
        if not parts.hostname:
            self.problem(path, f"has no host name: {_quote(target)}")
        elif not self.absolute_url(target, path, ("http", "https")):
            return
        if parts.query or parts.fragment:
            self.problem(path, "a target is a base URL without ?query or #fragment; put the query on the steps")


# ---- command-line overrides and quick plans ------------------------------------------------


def _revalidate(loaded: LoadedPlan, plan_dict: dict[str, Any]) -> LoadedPlan:
    file = str(loaded.path) if loaded.path is not None else CLI_FILE
    v = _Validator(file, _Locator(loaded.source if loaded.path is not None else None), set(), set())
    plan = v.run(plan_dict, loaded.plan.name)
    if v.problems or plan is None:
        raise PlanError(v.problems or [Problem(file, "", "the plan could not be validated")])
    return LoadedPlan(plan=plan, path=loaded.path, source=loaded.source, secrets=loaded.secrets)


def _cli_number(value: Any, flag: str, kind: type, problems: list[Problem]) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and kind is int and (not float(value).is_integer()):
        bad = True
    if bad or not math.isfinite(value) or value <= 0:
        what = "a whole number of virtual users" if kind is int else "a rate in iterations per second"
        problems.append(Problem(CLI_FILE, flag, f"expected {what} greater than 0, got {value!r}"))


def apply_overrides(
    loaded: LoadedPlan,
    *,
    target: str | None = None,
    rate: float | None = None,
    vus: int | None = None,
    duration: str | None = None,
) -> LoadedPlan:
    """Apply ``--target/--rate/--vus/--duration`` and re-validate.

    ``--rate`` replaces every phase with one open phase at that rate, ``--vus`` with one closed
    phase; their length is ``--duration`` (30s without it). ``--duration`` alone replaces the
    phases with one phase shaped like the first non-pause phase, at its starting value."""
    problems: list[Problem] = []
    if rate is not None and vus is not None:
        problems.append(Problem(CLI_FILE, "--rate", "--rate (open model) and --vus (closed model) cannot be combined"))
    if rate is not None:
        _cli_number(rate, "--rate", float, problems)
    if vus is not None:
        _cli_number(vus, "--vus", int, problems)
    if duration is not None:
        try:
            seconds = parse_duration(duration)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"the duration must be greater than 0, got {duration!r}")
        except ValueError as e:
            problems.append(Problem(CLI_FILE, "--duration", str(e)))
    if target is not None:
        v = _Validator(CLI_FILE, _Locator(None), set(), set())
        v.check_target(target, ())
        problems.extend(Problem(CLI_FILE, "--target", p.message) for p in v.problems)
    if problems:
        raise PlanError(problems)
    if target is None and rate is None and vus is None and duration is None:
        return loaded
    plan_dict = msgspec.to_builtins(loaded.plan)
    if target is not None:
        plan_dict["target"] = target
    length: str | int | float = duration if duration is not None else "30s"
    if rate is not None:
        plan_dict["phases"] = [{"name": f"--rate {rate:g}/s", "duration": length, "arrival_rate": float(rate)}]
    elif vus is not None:
        plan_dict["phases"] = [{"name": f"--vus {int(vus)}", "duration": length, "vus": int(vus)}]
    elif duration is not None:
        first = next((p for p in loaded.plan.phases if not p.pause), None)
        if first is None:
            raise PlanError([Problem(CLI_FILE, "--duration", "the plan has only pause phases; add --rate or --vus")])
        shaped = msgspec.to_builtins(first)
        ramp_to = shaped.pop("ramp_to", None)
        for key in ("arrival_rate", "vus"):  # a ramp from 0 holds its end value instead
            if shaped.get(key) == 0 and ramp_to:
                shaped[key] = ramp_to if key == "arrival_rate" else int(ramp_to)
        shaped["duration"] = duration
        plan_dict["phases"] = [shaped]
    return _revalidate(loaded, plan_dict)


def quick_plan(
    url: str,
    *,
    rate: float | None,
    vus: int | None,
    duration: str = "30s",
    method: str = "GET",
    headers: list[str] | tuple[str, ...] = (),
    body: str | None = None,
) -> LoadedPlan:
    """A one-step plan for ``perftui run URL``: target is the URL's ``scheme://host[:port]``,
    the step requests its path and query. Without ``rate`` and ``vus``: 10 virtual users."""
    problems: list[Problem] = []
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise PlanError([Problem(CLI_FILE, "URL", f"not a valid URL ({e}): {_quote(url)}")]) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f"; did you mean {_quote('http://' + url)}?" if "://" not in url else ""
        raise PlanError([Problem(CLI_FILE, "URL", f"expected an http:// or https:// URL with a host, got {_quote(url)}{hint}")])
    if rate is not None and vus is not None:
        problems.append(Problem(CLI_FILE, "--rate", "--rate (open model) and --vus (closed model) cannot be combined"))
    if rate is not None:
        _cli_number(rate, "--rate", float, problems)
    if vus is not None:
        _cli_number(vus, "--vus", int, problems)
    header_map: dict[str, str] = {}
    for h in headers:
        name, sep, val = h.partition(":")
        if not sep or not _HEADER_NAME.match(name.strip()):
            problems.append(Problem(CLI_FILE, "--header", f'expected "Name: value", got {_quote(h)}'))
            continue
        header_map[name.strip()] = val.strip()
    if problems:
        raise PlanError(problems)
    netloc = parts.netloc.rpartition("@")[2]
    target = f"{parts.scheme}://{netloc}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    step: dict[str, Any] = {"method": method.upper(), "url": path}
    if header_map:
        step["headers"] = header_map
    if body is not None:
        step["body"] = body
    if rate is not None:
        phase: dict[str, Any] = {"name": f"{rate:g}/s", "duration": duration, "arrival_rate": float(rate)}
    else:
        n = int(vus) if vus is not None else 10
        phase = {"name": f"{n} VUs", "duration": duration, "vus": n}
    data = {
        "name": f"{method.upper()} {url}",
        "target": target,
        "phases": [phase],
        "scenarios": [{"name": "quick", "steps": [step]}],
    }
    loaded = plan_from_dict(data, file=CLI_FILE, env={})
    return LoadedPlan(plan=loaded.plan, path=None, source=loaded.source, secrets=frozenset())


# ---- redaction -----------------------------------------------------------------------------

_AUTH_PREFIX = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9_-]*\s+)?\Z")


def _pure_template(value: str) -> bool:
    """True for values like ``"Bearer {{ authToken }}"``: nothing secret is written in them."""
    try:
        t = compile_template(value)
    except TemplateError:
        return False
    if t.static:
        return False
    literal = re.sub(r"\{\{.*?\}\}", "", value)
    return bool(_AUTH_PREFIX.match(literal))


def redacted_plan(loaded: LoadedPlan, *, reveal: bool = False) -> dict[str, Any]:
    """The plan as run, as plain data for the session file. Unless ``reveal``: credentials
    written into Authorization/Cookie/Proxy-Authorization/X-Api-Key headers become ``"***"``
    and every value that came from the environment is masked wherever it appears."""
    data: dict[str, Any] = msgspec.to_builtins(loaded.plan)
    if reveal:
        return data
    # Masking a one- or two-character value everywhere would garble the record without
    # protecting anything; such values are masked only where they are the whole string.
    secrets = sorted((s for s in loaded.secrets if len(s) >= 3), key=len, reverse=True)
    short = {s for s in loaded.secrets if 0 < len(s) < 3}

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            if value in short:
                return "***"
            for s in secrets:
                if s in value:
                    value = value.replace(s, "***")
            return value
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    def headers(h: Any) -> None:
        if not isinstance(h, dict):
            return
        for name, value in h.items():
            if name.lower() in SENSITIVE_HEADERS and isinstance(value, str) and not _pure_template(value):
                h[name] = "***"

    headers(data.get("defaults", {}).get("headers"))
    headers(data.get("monitor", {}).get("headers"))
    for sc in data.get("scenarios", []):
        for st in sc.get("steps", []):
            headers(st.get("headers"))
    return mask(data)
