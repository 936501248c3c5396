"""``[profiles.NAME]``: named variants of one plan — light for CI, moderate for staging, stress or
spike for production — chosen with ``perftui run PLAN --profile NAME`` (or ``PERFTUI_PROFILE``, or
in the plan picker).

A profile is written like a part of the plan. Applied (by ``perftui.planload.profiles``, before
validation, so that a problem names the profile's own line): ``phases``, ``thresholds``,
``target`` and ``description`` replace the plan's; the tables ``defaults``, ``variables``,
``demo``, ``monitor`` and ``output`` are merged into the plan's key by key; ``vus`` or
``arrival_rate`` with ``duration`` replace the phases with one phase, as ``--vus``/``--rate``
with ``--duration`` do (``duration`` alone: the first phase's shape at that length).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, UnsetType

from perftui.plan import MAX_RATE, MAX_VUS, Defaults, DemoOptions, Monitor, Output, Phase, Scalar, _range
from perftui.plan.common import Duration, _Strict
from perftui.plan.data import DataFile
from perftui.plan.rules import ThresholdSpec

PROFILE_KEYS = ("description", "target", "phases", "thresholds", "vus", "arrival_rate", "duration",
                "defaults", "variables", "demo", "monitor", "output")
REPLACED = ("description", "target", "phases", "thresholds")
MERGED = ("defaults", "variables", "demo", "monitor", "output")
SHORTCUTS = ("vus", "arrival_rate", "duration")


class Profile(_Strict, kw_only=True):
    """``[profiles.NAME]``: what this profile changes in the plan; every key is optional."""

    description: str = ""
    """Shown in the plan picker and ``perftui validate``; replaces the plan's description."""
    target: str | UnsetType = UNSET
    """Another system under test (staging, production), or ``"demo"``."""
    vus: Annotated[int, _range(gt=0, le=MAX_VUS, message=f"must be a whole number of virtual users from 1 to {MAX_VUS}, got {{value}}")] | UnsetType = UNSET
    """One closed-model phase of this many virtual users for ``duration`` (30s without it)."""
    arrival_rate: Annotated[float, _range(gt=0, le=MAX_RATE, message=f"must be greater than 0 (and at most {MAX_RATE:g}), got {{value:g}}")] | UnsetType = UNSET
    """One open-model phase of this many arrivals per second for ``duration`` (30s without it)."""
    duration: Duration | UnsetType = UNSET
    """The length of that phase; alone, the plan's first phase at this length."""
    phases: list[Phase] | UnsetType = UNSET
    """Replace the plan's phases."""
    thresholds: list[str | ThresholdSpec] | UnsetType = UNSET
    """Replace the plan's thresholds (``[]``: none)."""
    defaults: Defaults | UnsetType = UNSET
    """Keys merged into ``[defaults]``."""
    variables: dict[str, Scalar | list[Scalar] | DataFile] | UnsetType = UNSET
    """Variables added or replaced (a data file table is merged key by key into the plan's)."""
    demo: DemoOptions | UnsetType = UNSET
    """Keys merged into ``[demo]``."""
    monitor: Monitor | UnsetType = UNSET
    """Keys merged into ``[monitor]``."""
    output: Output | UnsetType = UNSET
    """Keys merged into ``[output]``."""

