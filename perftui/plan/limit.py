"""``[find_limit]``: the breaking-point search of a plan (``perftui find-limit PLAN``).

Only the shape lives here (the worker loads the plan types, so nothing heavy); the search itself
is ``perftui.run.limit.LimitFinder``, which drives the ordinary open-model engine through the
coordinator's phase clock. The field docstrings are the user documentation (docs/plans.md).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, UnsetType

from perftui.plan.common import Duration, _Strict

MAX_RATE = 10_000_000.0


def _range(ge=None, le=None, gt=None, lt=None, message: str = "") -> Meta:
    return Meta(ge=ge, le=le, gt=gt, lt=lt, extra={"range": message})


_RATE = _range(gt=0, le=MAX_RATE, message=f"must be a rate in arrivals per second above 0 and at most {MAX_RATE:g}, got {{value:g}}")
_FRACTION = _range(ge=0, lt=1, message="must be a fraction from 0 to below 1 (0.01 = 1%), got {value:g}")


class FindLimit(_Strict, kw_only=True):
    """``[find_limit]``: raise the open-model rate step by step, then narrow it, until a criterion
    breaks; report the highest rate that held and whether the target recovered when the load was
    dropped. A plan with this section runs the search instead of ``[[phases]]``."""

    start_rate: Annotated[float, _RATE] = 10.0
    """Arrivals per second of the first step."""
    max_rate: Annotated[float, _RATE] = 10_000.0
    """Highest rate tried: when a step at this rate holds, the search ends without a limit (exit 1)."""
    step_factor: Annotated[float, _range(gt=1, le=10, message="must be above 1 and at most 10 (1.5 = +50% per step), got {value:g}")] = 1.5
    """While raising, each step's rate is the last one times this ..."""
    step_size: Annotated[float, _RATE] | UnsetType = UNSET
    """... or, when given, the last one plus this many arrivals per second (linear steps)."""
    step_duration: Duration = "10s"
    """How long each step is measured."""
    settle: Duration = "2s"
    """Time at a new rate before its measurement starts (connections open, queues fill); not judged."""
    precision: Annotated[float, _range(gt=0, le=1, message="must be a fraction above 0 and at most 1 (0.05 = 5%), got {value:g}")] = 0.05
    """Narrowing ends when the lowest rate that broke is within this fraction above the highest
    rate that held."""
    max_steps: Annotated[int, _range(ge=2, le=200, message="must be a whole number of steps from 2 to 200, got {value}")] = 30
    """Most steps the search runs (raising, narrowing and repeated steps together)."""
    p99: Duration = "1s"
    """A step breaks when its p99 latency (measured from each arrival's intended start, so a
    queue building up at the target counts) is over this."""
    error_rate: Annotated[float, _FRACTION] = 0.01
    """A step breaks when more than this fraction of its requests fail."""
    late_rate: Annotated[float, _FRACTION] = 0.01
    """A step breaks when more than this fraction of its arrivals started late (later than
    ``defaults.late_threshold`` after their slot, waiting for the target) or were dropped."""
    health: bool = True
    """A step breaks when one of ``[monitor] health`` is down during it (without health checks
    this criterion has nothing to watch)."""
    recovery_rate: Annotated[float, _RATE] | UnsetType = UNSET
    """The rate the load drops to after a step that broke. Default: half the highest rate that
    held (half the broken rate divided by ``step_factor`` when none held yet)."""
    recovery: Duration = "30s"
    """How long to wait, after the drop, for the target to hold the criteria again for 2 seconds
    in a row. Not recovered by then: the search ends and says so."""
