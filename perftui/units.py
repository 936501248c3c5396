"""Parsing and formatting of the units people type: durations (``30s``, ``5m``, ``1h30m``,
``250ms``), rates and byte sizes. Used by the plan loader, the CLI and the reporters."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|us|µs|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

MAX_DURATION_S = 30 * 86400.0
"""The longest duration anywhere in perftui (phases, timeouts, think times, --duration): 30 days.
Far longer than any soak test, short enough that a typo (``1e308``, ``"999999999999999d"``) is
refused instead of overflowing a clock or a timer."""


def parse_duration(value: str | int | float) -> float:
    """Return seconds for ``30``, ``"30s"``, ``"1m30s"``, ``"250ms"``.

    A bare number means seconds. Raises ``ValueError`` with a message meant for the user, also
    for a value that is not finite or longer than ``MAX_DURATION_S`` (30 days).
    """
    seconds = _parse_duration(value)
    if seconds != seconds or abs(seconds) == float("inf"):
        raise ValueError(f"the duration must be a finite number of seconds, got {value!r}")
    if abs(seconds) > MAX_DURATION_S:
        raise ValueError(f"durations are at most 30 days (30d), got {value!r}")
    return seconds


def _parse_duration(value: str | int | float) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h, got a boolean")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return float("inf")
    text = value.strip()
    if not text:
        raise ValueError("expected a duration such as 30s, 5m or 1h, got an empty string")
    try:
        return float(text)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos and text[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 250ms, got {value!r}")
    return total


def format_duration(seconds: float, *, exact: bool = False) -> str:
    """``75`` -> ``1m15s``; sub-second values in ms. ``exact``: a part of a second stays, to the
    hundredth (``2.51`` -> ``2.51s``, ``62.5`` -> ``1m02.5s``)."""
    if seconds < 0:
        return "-" + format_duration(-seconds, exact=exact)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if exact and abs(seconds - round(seconds)) >= 0.005:
        m, s = divmod(round(seconds, 2), 60)
        head = format_duration(m * 60)[:-3] if m else ""  # "1m" of "1m00s" ("1h05m" of "1h05m00s")
        return head + (f"{s:05.2f}" if head else f"{s:.2f}").rstrip("0") + "s"
    whole = int(round(seconds))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def format_ms(ms: float | None) -> str:
    """Latency for humans: ``0.42ms``, ``12.3ms``, ``1.25s``."""
    if ms is None:
        return "-"
    if ms >= 10_000:
        return f"{ms / 1000:.1f}s"
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 100:
        return f"{ms:.0f}ms"
    if ms >= 10:
        return f"{ms:.1f}ms"
    return f"{ms:.2f}ms"


def format_count(n: float) -> str:
    """``1234567`` -> ``1.23M``."""
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}" if n == int(n) else f"{n:.1f}"


def format_bytes(n: float) -> str:
    n = float(n)
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}B"


# C0 controls, DEL, C1 controls (ESC[2J, OSC title sequences, CSI in its 8-bit form 0x9b) and the
# bidirectional overrides that reorder text on screen. Names in a plan are free text, and a
# terminal obeys any of these it is sent, so every output shows them as escapes instead.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: str) -> str:
    """``text`` safe to send to a terminal: control characters become visible escapes
    (``"\\x1b[2J"`` is shown as the six characters ``\\x1b[2J``). Idempotent on its output."""
    return _UNPRINTABLE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """``printable`` for a block of text: its line breaks are kept, everything else escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))
