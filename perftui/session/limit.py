"""What a breaking-point search leaves in the session: ``SessionDocument.find_limit``.

``perftui.run.limit.LimitFinder`` fills a ``FindLimitDocument`` while it searches (it is the
live state the dashboard and the headless reporter read, and what checkpoints carry) and
completes it when the search ends. Field names are part of the session file format
(docs/session.md).
"""

from __future__ import annotations

from msgspec import Struct

__all__ = ["FindLimitDocument", "LimitStep", "Recovery"]


class Recovery(Struct, kw_only=True):
    """The load dropped after a step that broke, and what the target did then."""

    after_rps: float
    """The rate of the step that broke."""
    rate: float
    """The rate the load dropped to."""
    start: float
    """Seconds since the run started when the load dropped."""
    recovered: bool | None = None
    """True: the criteria held again for 2 seconds in a row; False: not within the recovery
    window; None: still watching (or the run stopped first)."""
    seconds: float | None = None
    """From the drop to the start of the first second that held (whole seconds)."""
    watched_s: float = 0.0
    """How long the target was watched at the lower rate."""


class LimitStep(Struct, kw_only=True):
    """One step of the search: a rate held for ``settle`` + ``step_duration``, judged on the
    measured part."""

    index: int
    stage: str
    """``raise`` (rate going up), ``narrow`` (between the highest that held and the lowest that
    broke) or ``repeat`` (the same rate again after a generator-limited step)."""
    rate: float
    """Arrivals per second asked."""
    start: float
    """Seconds since the run started when the measurement began."""
    end: float | None = None
    started_rps: float = 0.0
    """Achieved: iterations started per second over the measured seconds."""
    rps: float = 0.0
    """Requests completed per second."""
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    error_kinds: dict[str, int] = {}
    late: int = 0
    dropped: int = 0
    late_rate: float = 0.0
    """(late + dropped) / arrivals asked."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    seconds: int = 0
    """Seconds measured."""
    generator_limited_s: int = 0
    """Measured seconds in which perftui itself was the bottleneck."""
    health_down_s: int = 0
    """Measured seconds with a health check down."""
    verdict: str = "measuring"
    """``settling``, ``measuring``, ``held``, ``broke`` (the target), ``generator-limited`` (perftui
    could not deliver or time this rate: never the target's limit) or ``stopped`` (the run ended
    first)."""
    broke: list[str] = []
    """The criteria that broke, each with its evidence (``p99 812ms > 500ms``)."""
    note: str = ""
    """Why a step was generator-limited, or other remarks."""
    recovery: Recovery | None = None
    """After a step that broke: the drop and the target's recovery."""


class FindLimitDocument(Struct, kw_only=True):
    """The search and its result."""

    state: str = "searching"
    """``searching``, ``recovering``, ``done`` or ``stopped`` (the run ended before the search did)."""
    criteria: list[str] = []
    """The criteria a step is judged on, as text (``p99 <= 500ms``, ``errors <= 1%``, ...)."""
    settings: dict[str, float] = {}
    """start_rate, max_rate, step_factor or step_size, step_duration_s, settle_s, precision, recovery_s."""
    steps: list[LimitStep] = []
    found: bool = False
    """A limit was found: a rate held and a higher one broke the target's criteria."""
    limit_rps: float | None = None
    """The highest rate that held (the target's sustainable rate under the criteria)."""
    broke_rps: float | None = None
    """The lowest rate at which the target broke a criterion."""
    criterion: str | None = None
    """The first criterion that broke at ``broke_rps`` (``p99``, ``error_rate``, ``late_rate``,
    ``health``)."""
    evidence: list[str] = []
    """Every criterion that broke at ``broke_rps``, with the measured values."""
    broke_step: int | None = None
    """Index into ``steps`` of the step that broke at ``broke_rps``."""
    recovery: Recovery | None = None
    """After the last step that broke: the drop of the load and the target's recovery."""
    generator_limited_rps: float | None = None
    """The rate at which perftui itself could not go on (the search ended there)."""
    verdict: str = ""
    """One sentence: what was found."""

    def cut_short(self, why: str) -> None:
        """The run ended without the finder saying so (``perftui recover`` of a run that died):
        the search is ``stopped`` and its verdict says what it had found by then."""
        if self.state in ("done", "stopped"):
            return
        for step in self.steps:
            if step.verdict in ("settling", "measuring"):
                step.verdict = "stopped"
        self.state = "stopped"
        self.found = self.limit_rps is not None and self.broke_rps is not None and self.broke_rps > self.limit_rps
        held = f"held up to {self.limit_rps:,.4g}/s" if self.limit_rps is not None else "no rate held yet"
        broke = f", broke at {self.broke_rps:,.4g}/s ({'; '.join(self.evidence)})" if self.broke_rps is not None else ""
        self.verdict = f"search cut short ({why}): {held}{broke}"
