"""Latency distributions for the demo target.

A spec is a string such as ``"20ms"`` (fixed), ``"uniform:5ms:50ms"``, ``"normal:20ms:5ms"``
(clamped at 0), ``"exp:20ms"`` (exponential with that mean) or ``"lognormal:20ms:0.5"``
(median and sigma of the underlying normal). :func:`parse_latency` turns it into an object
whose ``sample()`` returns seconds.
"""

from __future__ import annotations

import math
import random

from perftui.units import parse_duration

__all__ = [
    "Latency",
    "FixedLatency",
    "UniformLatency",
    "NormalLatency",
    "ExponentialLatency",
    "LogNormalLatency",
    "parse_latency",
]

_HELP = (
    "expected a latency such as 0ms, 20ms, uniform:5ms:50ms, normal:20ms:5ms, "
    "exp:20ms or lognormal:20ms:0.5"
)


class Latency:
    """Base class: ``sample()`` returns a delay in seconds (never negative)."""

    spec: str = "0ms"
    #: True when every sample is 0, so callers can skip sampling entirely.
    is_zero: bool = False

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def sample(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class FixedLatency(Latency):
    def __init__(self, seconds: float, spec: str | None = None) -> None:
        super().__init__()
        self.seconds = float(seconds)
        self.is_zero = self.seconds <= 0.0
        self.spec = spec or f"{self.seconds * 1000:g}ms"

    def sample(self) -> float:
        return self.seconds

    @property
    def mean(self) -> float:
        return self.seconds


class UniformLatency(Latency):
    def __init__(self, low: float, high: float, spec: str | None = None) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)
        self.is_zero = self.high <= 0.0
        self.spec = spec or f"uniform:{low * 1000:g}ms:{high * 1000:g}ms"

    def sample(self) -> float:
        return self._rng.uniform(self.low, self.high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class NormalLatency(Latency):
    def __init__(self, mu: float, sd: float, spec: str | None = None) -> None:
        super().__init__()
        self.mu, self.sd = float(mu), float(sd)
        self.is_zero = self.mu <= 0.0 and self.sd <= 0.0
        self.spec = spec or f"normal:{mu * 1000:g}ms:{sd * 1000:g}ms"

    def sample(self) -> float:
        value = self._rng.gauss(self.mu, self.sd)
        return value if value > 0.0 else 0.0

    @property
    def mean(self) -> float:
        return self.mu


class ExponentialLatency(Latency):
    def __init__(self, mean: float, spec: str | None = None) -> None:
        super().__init__()
        self._mean = float(mean)
        self.is_zero = self._mean <= 0.0
        self.spec = spec or f"exp:{mean * 1000:g}ms"

    def sample(self) -> float:
        if self.is_zero:
            return 0.0
        return self._rng.expovariate(1.0 / self._mean)

    @property
    def mean(self) -> float:
        return self._mean


class LogNormalLatency(Latency):
    def __init__(self, median: float, sigma: float, spec: str | None = None) -> None:
        super().__init__()
        self.median, self.sigma = float(median), float(sigma)
        self.is_zero = self.median <= 0.0
        self._mu = math.log(self.median) if self.median > 0 else 0.0
        self.spec = spec or f"lognormal:{median * 1000:g}ms:{sigma:g}"

    def sample(self) -> float:
        if self.is_zero:
            return 0.0
        return self._rng.lognormvariate(self._mu, self.sigma)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2) if self.median > 0 else 0.0


def _duration(text: str, what: str, spec: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError(f"invalid latency {spec!r}: {what} {text!r} is not a duration (e.g. 20ms)") from None
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"invalid latency {spec!r}: {what} must be a non-negative duration")
    return seconds


def _arity(parts: list[str], n: int, spec: str, form: str) -> None:
    if len(parts) != n:
        raise ValueError(f"invalid latency {spec!r}: expected {form}")


def parse_latency(spec: str) -> Latency:
    """Parse a latency spec (see module docstring). Raises ``ValueError`` for bad specs."""
    if isinstance(spec, Latency):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"invalid latency {spec!r}: {_HELP}")
    text = spec.strip()
    if not text:
        raise ValueError(f"invalid latency (empty): {_HELP}")
    parts = [p.strip() for p in text.split(":")]
    kind = parts[0].lower()
    if len(parts) == 1:
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ValueError(f"invalid latency {spec!r}: {_HELP}") from None
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"invalid latency {spec!r}: a latency cannot be negative")
        return FixedLatency(seconds, spec=text)
    if kind == "fixed":
        _arity(parts, 2, spec, "fixed:DURATION, e.g. fixed:20ms")
        return FixedLatency(_duration(parts[1], "duration", spec), spec=text)
    if kind == "uniform":
        _arity(parts, 3, spec, "uniform:MIN:MAX, e.g. uniform:5ms:50ms")
        low = _duration(parts[1], "minimum", spec)
        high = _duration(parts[2], "maximum", spec)
        if high < low:
            raise ValueError(f"invalid latency {spec!r}: maximum is smaller than minimum")
        return UniformLatency(low, high, spec=text)
    if kind in ("normal", "gauss", "gaussian"):
        _arity(parts, 3, spec, "normal:MEAN:STDDEV, e.g. normal:20ms:5ms")
        return NormalLatency(_duration(parts[1], "mean", spec), _duration(parts[2], "standard deviation", spec), spec=text)
    if kind in ("exp", "exponential"):
        _arity(parts, 2, spec, "exp:MEAN, e.g. exp:20ms")
        return ExponentialLatency(_duration(parts[1], "mean", spec), spec=text)
    if kind in ("lognormal", "lognorm"):
        _arity(parts, 3, spec, "lognormal:MEDIAN:SIGMA, e.g. lognormal:20ms:0.5")
        median = _duration(parts[1], "median", spec)
        try:
            sigma = float(parts[2])
        except ValueError:
            raise ValueError(f"invalid latency {spec!r}: sigma {parts[2]!r} is not a number (e.g. 0.5)") from None
        if sigma < 0 or not math.isfinite(sigma):
            raise ValueError(f"invalid latency {spec!r}: sigma must be a non-negative number")
        return LogNormalLatency(median, sigma, spec=text)
    raise ValueError(f"invalid latency {spec!r}: unknown distribution {parts[0]!r}; {_HELP}")
