"""The small plan types every part of a plan shares: durations, scalars, ``capture`` and
``expect`` tables, and the strict Struct base (unknown keys rejected, defaults omitted when
encoded). Imported by ``perftui.plan`` and ``perftui.plan.steps``; nothing here imports the loader."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType, field

from perftui.units import parse_duration

# A duration is "30s", "5m", "1h30m", "250ms" or a number of seconds.
Duration = str | int | float
Scalar = str | int | float | bool

StatusCode = Annotated[int, Meta(ge=100, le=599, extra={"range": "HTTP status codes are 100 to 599, got {value}"})]
"""``Meta.extra["range"]``: the loader's message (TOML words) when a value is out of range."""


class _Strict(Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


def duration_s(value: str | int | float) -> float:
    """Seconds for a plan duration (``"30s"``, ``"1m30s"``, ``250ms``, ``45``)."""
    return parse_duration(value)


class Capture(_Strict, kw_only=True):
    """One ``capture`` entry: take a value from the response into a variable."""

    as_: str = field(name="as")
    """Variable name to store the value in."""
    json: str | UnsetType = UNSET
    """JSON path into the response body, e.g. ``$.token`` or ``$.data.items[0].id``."""
    header: str | UnsetType = UNSET
    """Response header name (case-insensitive)."""
    regex: str | UnsetType = UNSET
    """Regular expression on the body; group 1 (or the whole match) is captured."""


class Expect(_Strict, kw_only=True):
    """``expect``: checks on the response. A failed check counts the request as an error of kind
    ``expect_failed`` (unless the status itself is the failure)."""

    status: StatusCode | list[StatusCode] | UnsetType = UNSET
    """Accepted status code(s). Without it, 2xx and 3xx are success, 4xx/5xx are errors."""
    json_equals: dict[str, Any] = {}
    """JSON path -> expected value, e.g. ``{ "$.status" = "ok" }``."""
    json_exists: list[str] = []
    """JSON paths that must be present."""
    body_contains: str | UnsetType = UNSET
    """Text the body must contain."""
