"""Plan parts outside the load itself: ``[scenarios.benchmark]`` (a fixed number of measured
samples after a warm-up, instead of phases) and the helpers for ``[[setup]]``, ``[[on_start]]``
and ``[[teardown]]`` (steps run once per run before the load, once per virtual user before its
first iteration, and once after the load).

Imported by ``perftui.plan`` (the ``Plan`` and ``Scenario`` fields), the loader's checks, the
engine (``perftui.worker.stages``) and the coordinator (``perftui.run.stages``).
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta

from perftui.plan.common import Duration, _Strict

MAX_SAMPLES = 100_000_000
MAX_CONCURRENCY = 100_000


class Benchmark(_Strict, kw_only=True):
    """``[scenarios.benchmark]``: run this scenario exactly ``iterations`` times, after
    ``warmup_iterations`` that are not counted, ``concurrency`` at a time. A plan whose
    scenarios have a benchmark table runs them one after another instead of phases, and ends
    with a table per operation (samples, min, max, mean, median, p95, p99)."""

    iterations: Annotated[int, Meta(ge=1, le=MAX_SAMPLES, extra={"range": f"must be a number of samples from 1 to {MAX_SAMPLES:,}, got {{value}}"})]
    """Measured iterations (samples of every step of the scenario)."""
    warmup_iterations: Annotated[int, Meta(ge=0, le=MAX_SAMPLES, extra={"range": f"must be from 0 (no warm-up) to {MAX_SAMPLES:,}, got {{value}}"})] = 0
    """Iterations run first and left out of every statistic (connections opened, caches warm)."""
    concurrency: Annotated[int, Meta(ge=1, le=MAX_CONCURRENCY, extra={"range": f"must be from 1 (one at a time) to {MAX_CONCURRENCY:,}, got {{value}}"})] = 1
    """Iterations in flight at once; 1 runs them one after another, like a micro-benchmark."""
    max_duration: Duration = "10m"
    """The benchmark stops here even if its samples are not all taken (the table says how many were)."""


def is_benchmark(plan: Any) -> bool:
    """A plan runs benchmarks (instead of phases) when a scenario has a ``benchmark`` table."""
    return any(sc.benchmark is not UNSET for sc in plan.scenarios)


def share(total: int, n: int, i: int) -> int:
    """``total`` split over ``n`` parts, the first ``total % n`` one more: the shares always add
    up to ``total`` exactly (a benchmark's samples over worker processes, lanes over workers)."""
    return total // n + (1 if i < total % n else 0)
