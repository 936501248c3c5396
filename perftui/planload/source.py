"""Reading a plan file and locating its keys: bounded file reads (pipes, devices, huge files),
TOML syntax errors with their line, a scanner that maps key paths to the line they are written on
(tomllib keeps no positions), and the words messages use (``format_path``, what a value is, what
a key expects). Used by every other part of ``perftui.planload``."""

from __future__ import annotations

import bisect
import os
import re
import select
import stat
import time
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UnsetType

from perftui.errors import PlanError, Problem

MAX_PLAN_BYTES = 10 * 1024 * 1024
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
CLI_FILE = "<command line>"


Path_ = tuple[str | int, ...]



Path_ = tuple[str | int, ...]

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


def _plain(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` ranges (they are worded by the driver)."""
    if typing.get_origin(tp) is Annotated:
        return typing.get_args(tp)[0]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.Union[tuple(_plain(a) for a in typing.get_args(tp))]  # noqa: UP007
    if typing.get_origin(tp) is list:
        return list[_plain(typing.get_args(tp)[0])]
    return tp


def _expected(tp: Any) -> str:
    tp = _plain(_strip_unset(tp))
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

