"""The session's records of what ran besides the load: ``[[setup]]`` and ``[[teardown]]`` (their
own requests, measured apart from the load's) and the benchmarks of a benchmark plan. Filled by
``perftui.run.stages``; part of the session document (``perftui.session.schema``)."""

from __future__ import annotations

from typing import Any

import msgspec
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


def stage_extensions(session: Any) -> dict[str, Any]:
    """A checkpoint's ``extensions`` for the stage records (``perftui.journal``), so a recovered
    session keeps its setup, teardown and benchmark records."""
    out: dict[str, Any] = {}
    for key in ("setup", "teardown"):
        record = getattr(session, key)
        if record is not None:
            out[key] = msgspec.to_builtins(record)
    if session.benchmark:
        out["benchmark"] = msgspec.to_builtins(session.benchmark)
    return out


def restore_stages(session: Any, extensions: dict[str, Any]) -> None:
    for key in ("setup", "teardown"):
        if isinstance(extensions.get(key), dict):
            setattr(session, key, msgspec.convert(extensions[key], StageRecord))
    if isinstance(extensions.get("benchmark"), list):
        session.benchmark = msgspec.convert(extensions["benchmark"], list[BenchmarkRecord])
