"""The session's records of what ran besides the load: ``[[setup]]`` and ``[[teardown]]`` (their
own requests, measured apart from the load's) and the benchmarks of a benchmark plan. Filled by
``perftui.run.stages``; part of the session document (``perftui.session.schema``)."""

from __future__ import annotations

from msgspec import Struct

from perftui.summary import EndpointSummary


class StageRecord(Struct, kw_only=True):
    """``setup`` / ``teardown`` in the session document."""

    ok: bool
    """Every step went through (an answer, no error status, every ``expect`` met)."""
    duration_s: float
    message: str = ""
    """Why it failed: the step and what went wrong."""
    captured: list[str] = []
    """Names of the variables the setup captured and gave every virtual user (never their values)."""
    endpoints: list[EndpointSummary] = []
    """Its requests, per endpoint; not in the run's ``summary`` or ``endpoints``."""


class BenchmarkRecord(Struct, kw_only=True):
    """One benchmarked scenario, in ``benchmark`` of the session document. Its samples are the
    run's ``endpoints`` named in ``endpoints`` (the warm-up is in no statistic)."""

    scenario: str
    phase: int
    """Index of the phase it ran as (one per benchmarked scenario)."""
    iterations: int
    """Measured iterations asked for."""
    warmup_iterations: int
    concurrency: int
    measured: int = 0
    """Measured iterations done (less than ``iterations`` only when stopped or cut by ``max_duration``)."""
    warmed: int = 0
    endpoints: list[str] = []
    """The scenario's operations (endpoint names), one table row each."""
