"""The run's control state machine: phases, pause, skip, back, live rate/VU changes.

One pure object, used by every place that needs to know "which phase, how far in, what load":
the local coordinator (which turns its answers into worker load shapes and session events), the
attached viewer's replica of a remote run (rebuilt from the wire state), and the tests' scripted
coordinator. It does no I/O and reads time only through the ``now`` callable it is given, so
tests drive it with a fake clock.

States: ``idle`` → ``running`` ⇄ ``paused`` → ``finished``. The phase clock only advances while
running, so a pause stretches the run instead of eating the phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from perftui.plan import Phase, duration_s, phase_model


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


class ClockState(msgspec.Struct, kw_only=True):
    """Everything the clock knows besides its phases: what the attach wire carries so a viewer's
    replica answers exactly as the run's own clock does. ``resumed_at`` is on the run's
    monotonic clock (same machine)."""

    state: str = "idle"
    phase_index: int = 0
    phase_elapsed: float = 0.0
    resumed_at: float | None = None
    override: float | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Shape:
    """The current phase's load from now on, across all workers."""

    kind: str  # open | closed | idle
    remaining: float = 0.0
    value_from: float = 0.0
    value_to: float = 0.0


@dataclass(frozen=True)
class Transition:
    """A change of phase: ``left`` is the index of the phase left (None at the start), ``entered``
    the new one (None when the run has no phase left), ``reason`` clock | skip | back."""

    left: int | None
    entered: int | None
    reason: str


class PhaseClock:
    """The phase clock of one run (see the module docstring)."""

    def __init__(self, specs: list[PhaseSpec], now: Callable[[], float] = time.monotonic,
                 state: ClockState | None = None):
        self.specs = specs
        self.now = now
        self.s = state if state is not None else ClockState()

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

    def phase_elapsed(self) -> float:
        """Run time spent in the current phase (pauses excluded)."""
        e = self.s.phase_elapsed
        if self.s.resumed_at is not None:
            e += self.now() - self.s.resumed_at
        return e

    def value_at(self, elapsed: float) -> float:
        """The current phase's target (rate or VUs) ``elapsed`` seconds into it, with live changes."""
        spec = self.current
        if spec is None:
            return 0.0
        if self.s.override is not None:
            return self.s.override
        return spec.value_at(elapsed) * self.s.scale

    def target(self, back: float = 0.0) -> tuple[float, int]:
        """(target rps, target VUs) now, or ``back`` seconds ago within the current phase."""
        spec = self.current
        if spec is None or self.s.state != "running" or spec.kind == "pause":
            return 0.0, 0
        value = self.value_at(max(0.0, self.phase_elapsed() - back))
        return (value, 0) if spec.kind == "open" else (0.0, int(round(value)))

    def shape(self) -> Shape:
        """What the workers should run from now on (``idle`` unless running a load phase)."""
        spec = self.current
        if spec is None or self.s.state != "running" or spec.kind == "pause":
            return Shape("idle")
        elapsed = self.phase_elapsed()
        remaining = max(0.0, spec.duration - elapsed)
        if self.s.override is not None:
            v0 = v1 = self.s.override
        else:
            v0, v1 = spec.value_at(elapsed) * self.s.scale, spec.end_value * self.s.scale
        return Shape(spec.kind, remaining, v0, v1)

    def due(self) -> Transition | None:
        """The transition the clock owes now (the current phase ran its length), or None.
        Applies it: the caller records it (and stops the run when ``entered`` is None)."""
        spec = self.current
        if self.s.state != "running" or spec is None or self.phase_elapsed() < spec.duration:
            return None
        if self.s.phase_index + 1 < len(self.specs):
            return self._enter(self.s.phase_index + 1, "clock")
        return Transition(self.s.phase_index, None, "clock")

    # ---- control -----------------------------------------------------------------------

    def start(self) -> Transition | None:
        if self.s.state != "idle":
            return None
        self.s.state = "running"
        return self._enter(0, "clock", left=None)

    def pause(self) -> bool:
        if self.s.state != "running":
            return False
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

    def skip(self) -> Transition | None:
        """Next phase; past the last one the transition has ``entered`` None (end the run)."""
        if not self.active:
            return None
        if self.s.phase_index + 1 >= len(self.specs):
            return Transition(self.s.phase_index, None, "skip")
        return self._enter(self.s.phase_index + 1, "skip")

    @property
    def in_last_phase(self) -> bool:
        return self.s.phase_index + 1 >= len(self.specs)

    def back(self) -> Transition | None:
        """Within a phase's first 2 s: the previous phase; later: the start of this one (like a
        media player's back button)."""
        if not self.active:
            return None
        i = self.s.phase_index
        return self._enter(max(0, i - 1) if self.phase_elapsed() < 2 else i, "back")

    def set_value(self, kind: str, value: float) -> float | None:
        """A flat live target for the current phase (``kind`` must match it); returns it, or None
        when the current phase is not of that kind."""
        spec = self.current
        if spec is None or spec.kind != kind:
            return None
        self.s.override = max(0.1, float(value)) if kind == "open" else float(max(1, int(value)))
        self.s.scale = 1.0
        return self.s.override

    def scale_by(self, factor: float) -> tuple[str, float] | None:
        """``+``/``-``: multiply the current phase's target by ``factor``. A flat phase (or one
        already overridden) gets a flat new value — for VUs a whole number that moves by at least
        one; a ramp keeps its shape with both ends scaled. Returns (``"value"`` or ``"ramp"``, the
        new value now) or None when there is nothing to scale."""
        spec = self.current
        if spec is None or spec.kind == "pause" or not self.active:
            return None
        base = self.value_at(self.phase_elapsed())
        if spec.ramps and self.s.override is None:
            self.s.scale *= factor
            return "ramp", self.value_at(self.phase_elapsed())
        new = base * factor
        if spec.kind == "closed":
            whole = round(new)
            new = max(1, whole if whole != round(base) else round(base) + (1 if factor > 1 else -1))
        return "value", self.set_value(spec.kind, new)

    def finish(self) -> None:
        self.s.phase_elapsed = self.phase_elapsed() if self.s.state == "running" else self.s.phase_elapsed
        self.s.resumed_at = None
        self.s.state = "finished"

    def _enter(self, index: int, reason: str, *, left: int | None | bool = True) -> Transition:
        prev = self.s.phase_index if left is True else left
        self.s.phase_index = index
        self.s.phase_elapsed = 0.0
        self.s.resumed_at = self.now() if self.s.state == "running" else None
        self.s.override = None
        self.s.scale = 1.0
        return Transition(prev, index, reason)
