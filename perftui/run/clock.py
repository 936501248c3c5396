"""The run's control state machine: phases, pause, skip, back, live rate/VU changes.

One pure object, ``PhaseClock``, answers "which phase, how far in, what load" for every place
that needs it: the local coordinator (``perftui.run.coordinator``, which turns its answers into
worker load shapes, session events and phase records), the attached viewer's replica of a run in
another process (``perftui.run.attach.RemoteCoordinator``, rebuilt from the ``ClockState`` the
wire carries), and the tests' scripted coordinator (``tests/ui_fakes.py``). It does no I/O and
reads time only through the ``now`` callable it is given, so tests drive it with a fake clock.
``ClockView`` is the read surface the viewers use (``state``, ``phase_index``, ``current``,
``specs``, ``override``, ``current_phase_elapsed``, ``target_now``), for any owner of a clock.

States: ``idle`` → ``running`` ⇄ ``paused`` → ``finished``. The phase clock only advances while
running, so a pause stretches the run instead of eating the phase. Control calls that change the
phase return a ``Transition``; the caller records it (and ends the run when nothing is entered).

Live load changes: ``set_value`` holds the current phase flat at a value until the phase changes
(a phase change drops it); ``scale_by`` (the dashboard's ``+``/``-``) sets such a value on a flat
phase, but multiplies both ends of a ramp, which then stays scaled for the rest of the run (back
into the phase keeps it), as the ``ramps`` of the state record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import msgspec

from perftui.plan import Phase, Plan, duration_s, is_benchmark, phase_model


@dataclass
class PhaseSpec:
    """One phase as the clock runs it: its model, length and (ramped) target value."""

    name: str
    kind: str  # open | closed | pause
    duration: float
    start_value: float  # rate (open) or VUs (closed)
    end_value: float
    arrivals: str = "uniform"
    max_in_flight: int = 0
    scenario: int = -1
    """A benchmark phase (kind ``benchmark``, ``perftui.run.stages``): the scenario it measures,
    with ``iterations`` measured after ``warmup`` (values: the concurrency; duration: its limit)."""
    iterations: int = 0
    warmup: int = 0

    def value_at(self, elapsed: float) -> float:
        if self.duration <= 0:
            return self.end_value
        frac = min(1.0, max(0.0, elapsed / self.duration))
        return self.start_value + (self.end_value - self.start_value) * frac

    @property
    def ramps(self) -> bool:
        return self.start_value != self.end_value

    def describe(self) -> str:
        if self.kind == "pause":
            return "pause"
        if self.kind == "benchmark":
            warm = f" after {self.warmup:,} warm-up" if self.warmup else ""
            return f"{self.iterations:,} samples{warm}, {self.start_value:g} at a time"
        unit = "/s" if self.kind == "open" else " VUs"
        if not self.ramps:
            return f"{self.start_value:g}{unit}"
        return f"{self.start_value:g}→{self.end_value:g}{unit}"


def phase_specs(phases: list[Phase]) -> list[PhaseSpec]:
    specs = []
    for i, p in enumerate(phases):
        kind = phase_model(p)
        name = p.name or f"phase {i + 1}"
        d = duration_s(p.duration)
        if kind == "pause":
            specs.append(PhaseSpec(name, kind, d, 0, 0))
            continue
        start = float(p.arrival_rate if kind == "open" else p.vus)
        end = float(p.ramp_to) if p.ramp_to is not msgspec.UNSET else start
        specs.append(PhaseSpec(name, kind, d, start, end, p.arrivals,
                               p.max_in_flight if p.max_in_flight is not msgspec.UNSET else 0))
    return specs


def benchmark_specs(plan: Plan) -> list[PhaseSpec]:
    """A benchmark plan's phases: one per benchmarked scenario, in plan order, each as long as
    its ``max_duration`` at most (it ends as soon as its samples are taken)."""
    specs = []
    for i, sc in enumerate(plan.scenarios):
        b = sc.benchmark
        if b is msgspec.UNSET:
            continue
        specs.append(PhaseSpec(sc.name or f"scenario {i + 1}", "benchmark", duration_s(b.max_duration),
                               b.concurrency, b.concurrency, scenario=i, iterations=b.iterations,
                               warmup=b.warmup_iterations))
    return specs


def plan_specs(plan: Plan) -> list[PhaseSpec]:
    """The phases a plan runs: its benchmarks (``benchmark_specs``), else its ``[[phases]]``."""
    return benchmark_specs(plan) if is_benchmark(plan) else phase_specs(plan.phases)


class ClockState(msgspec.Struct, kw_only=True):
    """Everything the clock knows besides its planned phases: what the attach wire carries so a
    viewer's replica answers exactly as the run's own clock does. ``resumed_at`` is on the run's
    monotonic clock (same machine); ``ramps`` maps a phase index to the (start, end) its ramp was
    scaled to."""

    state: str = "idle"
    phase_index: int = 0
    phase_elapsed: float = 0.0
    """Run time spent in the current phase up to ``resumed_at`` (pauses excluded)."""
    resumed_at: float | None = None
    """When the clock last started counting (None unless running)."""
    override: float | None = None
    """A flat live target (rate or VUs) for the current phase."""
    ramps: dict[int, tuple[float, float]] = {}
    asked: float = 0.0
    """Open-model arrivals the run's phases asked for before ``asked_mark`` of the current phase
    (the integral of the target rate over run time, live changes and skips included)."""
    asked_mark: float = 0.0
    """How far into the current phase (run time, pauses excluded) ``asked`` counts."""


@dataclass(frozen=True)
class Shape:
    """The current phase's load from now on, across all workers (the owner splits it)."""

    kind: str  # open | closed | idle
    remaining: float = 0.0
    value_from: float = 0.0
    value_to: float = 0.0


@dataclass(frozen=True)
class Transition:
    """A change of phase: ``left`` is the index of the phase left (None at the start), ``entered``
    the new one (None when the run has no phase left: the owner ends the run), ``reason``
    clock | skip | back. ``at``: when it happened on the clock's time (a phase that ran its length
    ends at its end, however late the owner asks)."""

    left: int | None
    entered: int | None
    reason: str
    at: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LoadChange:
    """What ``set_value`` or ``scale_by`` did: ``how`` is ``"value"`` (the phase held flat at
    ``value``) or ``"ramp"`` (both ends scaled by ``factor``: ``spec`` is the phase now, ``value``
    its target now)."""

    how: str
    kind: str  # open | closed
    value: float
    spec: PhaseSpec
    factor: float = 1.0


BACK_RESTARTS_AFTER = 2.0
"""Seconds into a phase after which back restarts it instead of going to the previous one."""


class PhaseClock:
    """The phase clock of one run (see the module docstring)."""

    def __init__(self, specs: list[PhaseSpec], now: Callable[[], float] = time.monotonic,
                 state: ClockState | None = None):
        self.planned = list(specs)
        """The phases as planned; ``specs`` are them with the scaled ramps."""
        self.specs = list(specs)
        self.now = now
        self.s = ClockState()
        if state is not None:
            self.load(state)

    def load(self, state: ClockState) -> None:
        """Take ``state`` (a replica's update from the wire). A phase whose ramp did not change
        keeps its ``PhaseSpec`` object."""
        self.s = state
        for i, planned in enumerate(self.planned):
            ends = state.ramps.get(i)
            want = planned if ends is None else replace(planned, start_value=ends[0], end_value=ends[1])
            have = self.specs[i]
            if (have.start_value, have.end_value) != (want.start_value, want.end_value):
                self.specs[i] = want

    # ---- reading -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.s.state

    @property
    def phase_index(self) -> int:
        return self.s.phase_index

    @property
    def override(self) -> float | None:
        return self.s.override

    @property
    def current(self) -> PhaseSpec | None:
        i = self.s.phase_index
        return self.specs[i] if 0 <= i < len(self.specs) else None

    @property
    def active(self) -> bool:
        return self.s.state in ("running", "paused")

    @property
    def in_last_phase(self) -> bool:
        return self.s.phase_index + 1 >= len(self.specs)

    def phase_elapsed(self, at: float | None = None) -> float:
        """Run time spent in the current phase (pauses excluded), now or at time ``at``."""
        e = self.s.phase_elapsed
        if self.s.resumed_at is not None:
            e += (self.now() if at is None else at) - self.s.resumed_at
        return e

    @property
    def entered_at(self) -> float | None:
        """When the current phase was entered or last resumed (None while paused or idle)."""
        return self.s.resumed_at

    def value_at(self, elapsed: float) -> float:
        """The current phase's target (rate or VUs) ``elapsed`` seconds into it, with live changes."""
        spec = self.current
        if spec is None:
            return 0.0
        if self.s.override is not None:
            return self.s.override
        return spec.value_at(elapsed)

    def asked_arrivals(self, at: float | None = None) -> float:
        """Open-model arrivals asked for from the run's start to now (or time ``at``): the target
        rate integrated over the time each phase ran, up to its planned end, with every live change
        and skip as it happened. Pauses and closed phases ask for none."""
        return self.s.asked + self._asked_since_mark(at)

    def _asked_since_mark(self, at: float | None) -> float:
        spec = self.current
        if spec is None or spec.kind != "open" or self.s.state not in ("running", "paused"):
            return 0.0
        e0 = min(self.s.asked_mark, spec.duration)
        e1 = min(self.phase_elapsed(at), spec.duration)
        if e1 <= e0:
            return 0.0
        return (self.value_at(e0) + self.value_at(e1)) / 2.0 * (e1 - e0)  # the target is linear in between

    def _fold(self, at: float | None = None) -> None:
        """Count what the current phase asked for up to now (or ``at``) before its shape changes."""
        self.s.asked += self._asked_since_mark(at)
        self.s.asked_mark = max(self.s.asked_mark, self.phase_elapsed(at))

    def target(self, back: float = 0.0) -> tuple[float, int]:
        """(target rps, target VUs) now, or ``back`` seconds ago within the current phase; zero
        unless running a load phase."""
        spec = self.current
        if spec is None or self.s.state != "running" or spec.kind == "pause":
            return 0.0, 0
        value = self.value_at(max(0.0, self.phase_elapsed() - back))
        return (value, 0) if spec.kind == "open" else (0.0, int(round(value)))

    def shape(self, at: float | None = None) -> Shape:
        """What the workers should run from now on, or from time ``at`` (``idle`` unless running a
        load phase)."""
        spec = self.current
        if spec is None or self.s.state != "running" or spec.kind == "pause":
            return Shape("idle")
        elapsed = self.phase_elapsed(at)
        remaining = max(0.0, spec.duration - elapsed)
        if self.s.override is not None:
            v0 = v1 = self.s.override
        else:
            v0, v1 = spec.value_at(elapsed), spec.end_value
        return Shape(spec.kind, remaining, v0, v1)

    def ends_at(self) -> float | None:
        """When the current phase runs out on the clock's time, if running (None otherwise)."""
        spec = self.current
        if self.s.state != "running" or spec is None or self.s.resumed_at is None:
            return None
        return self.s.resumed_at + spec.duration - self.s.phase_elapsed

    def due(self) -> Transition | None:
        """The transition the clock owes now (the current phase ran its length), or None.
        Entering the next phase is applied here, as of the moment the current one ran out (the
        owner asking late moves no phase boundary); past the last one (``entered`` None) the
        owner ends the run."""
        end = self.ends_at()
        if end is None or self.now() < end:
            return None
        if self.s.phase_index + 1 < len(self.specs):
            return self._enter(self.s.phase_index + 1, "clock", at=end)
        return Transition(self.s.phase_index, None, "clock", at=end)

    # ---- control -----------------------------------------------------------------------

    def start(self) -> Transition | None:
        if self.s.state != "idle":
            return None
        self.s.state = "running"
        return self._enter(0, "clock", left=None)

    def pause(self) -> bool:
        if self.s.state != "running":
            return False
        self._fold()
        self.s.phase_elapsed = self.phase_elapsed()
        self.s.resumed_at = None
        self.s.state = "paused"
        return True

    def resume(self) -> bool:
        if self.s.state != "paused":
            return False
        self.s.state = "running"
        self.s.resumed_at = self.now()
        return True

    def skip(self, reason: str = "skip") -> Transition | None:
        """Next phase; past the last one the transition has ``entered`` None (end the run).
        ``reason`` ``done``: the phase's work is finished (a benchmark took its samples)."""
        if not self.active:
            return None
        if self.in_last_phase:
            return Transition(self.s.phase_index, None, reason, self.now())
        return self._enter(self.s.phase_index + 1, reason)

    def back(self) -> Transition | None:
        """Within a phase's first 2 s: the previous phase; later: the start of this one (like a
        media player's back button)."""
        if not self.active:
            return None
        i = self.s.phase_index
        return self._enter(max(0, i - 1) if self.phase_elapsed() < BACK_RESTARTS_AFTER else i, "back")

    def set_value(self, kind: str, value: float) -> LoadChange | None:
        """Hold the current phase flat at ``value`` (a rate of at least 0.1/s, or a whole number
        of at least one VU) until the phase changes; None when the current phase is not of
        ``kind``."""
        spec = self.current
        if spec is None or spec.kind != kind:
            return None
        self._fold()
        self.s.override = max(0.1, float(value)) if kind == "open" else float(max(1, int(value)))
        return LoadChange("value", kind, self.s.override, spec)

    def scale_by(self, factor: float) -> LoadChange | None:
        """``+``/``-``: multiply the current phase's target by ``factor``. A flat phase (or one
        already held flat) gets a flat new value — for VUs a whole number that moves by at least
        one; a ramp keeps its shape and its clock with both ends scaled (an end at zero stays
        there; others stay at least 0.1/s or 1 VU). None when there is nothing to scale."""
        spec = self.current
        if spec is None or spec.kind in ("pause", "benchmark") or not self.active:
            return None  # a benchmark's concurrency is part of what it measures
        if spec.ramps and self.s.override is None:
            low = 0.1 if spec.kind == "open" else 1.0
            start = max(low, spec.start_value * factor) if spec.start_value else 0.0
            end = max(low, spec.end_value * factor) if spec.end_value else 0.0
            self._fold()
            scaled = replace(spec, start_value=start, end_value=end)
            self.specs[self.s.phase_index] = scaled
            self.s.ramps = {**self.s.ramps, self.s.phase_index: (start, end)}
            return LoadChange("ramp", spec.kind, scaled.value_at(self.phase_elapsed()), scaled, factor)
        base = self.value_at(self.phase_elapsed())
        new = base * factor
        if spec.kind == "closed":
            whole = round(new)
            new = max(1, whole if whole != round(base) else round(base) + (1 if factor > 1 else -1))
        return self.set_value(spec.kind, new)

    def finish(self) -> None:
        """The run ended: the clock stops where it is."""
        if self.active:
            self._fold()
        self.s.phase_elapsed = self.phase_elapsed()
        self.s.resumed_at = None
        self.s.state = "finished"

    def _enter(self, index: int, reason: str, *, left: int | None | bool = True,
               at: float | None = None) -> Transition:
        prev = self.s.phase_index if left is True else left
        at = self.now() if at is None else at
        if self.active:
            self._fold(at)
        self.s.phase_index = index
        self.s.phase_elapsed = 0.0
        self.s.asked_mark = 0.0
        self.s.resumed_at = at if self.s.state == "running" else None
        self.s.override = None
        return Transition(prev, index, reason, at)


class ClockView:
    """The run's state as the viewers read it (dashboard, headless reporter), for anything
    that owns a ``phase_clock``: the coordinator, the attached viewer's replica, the tests' fake."""

    phase_clock: PhaseClock

    @property
    def state(self) -> str:
        return self.phase_clock.state

    @property
    def phase_index(self) -> int:
        return self.phase_clock.phase_index

    @property
    def specs(self) -> list[PhaseSpec]:
        return self.phase_clock.specs

    @property
    def current(self) -> PhaseSpec | None:
        return self.phase_clock.current

    @property
    def override(self) -> float | None:
        """The flat live rate/VU target of the current phase, if one was set."""
        return self.phase_clock.override

    def current_phase_elapsed(self) -> float:
        return self.phase_clock.phase_elapsed()

    def target_now(self, back: float = 0.0) -> tuple[float, int]:
        """(target rps, target VUs) across all workers, right now or ``back`` seconds ago within
        the current phase (a second's row reports the target at its middle: the average of a ramp)."""
        return self.phase_clock.target(back)
