"""Significance tests for ``perftui compare``: is a difference between two runs a change, or noise?

Called by ``perftui.compare`` only. Two tests, both Mann-Whitney U (Go's benchstat uses the same
rank test), both exact about ties:

* ``mann_whitney`` takes two samples given as value → count maps. A run's HDR histogram is such a
  map (bucket value → count), so two latency distributions are compared over their buckets with
  the ranks of tied values averaged — no per-request storage is needed. The per-second series of a
  run's timeline (p95 per second, requests per second, ...) are the same with counts of one.
* ``rank_test_clustered`` answers the question a load test actually asks. Requests of one run are
  not independent samples: they share the second's server state (a GC pause, a cold cache slows a
  whole second), so 10,000 requests do not make 10,000 observations, and a plain rank test over
  requests calls a 12 % shift between two runs whose spreads overlap "certain". This test keeps the
  effect size the request distributions give (the probability that a current request is slower
  than a baseline request, ties counted half) and judges it with the sample sizes of the runs'
  seconds, the unit that repeats independently.

p-values use the normal approximation with the tie correction; with fewer than 3 samples a side no
p-value is given (None).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

from hdrh.histogram import HdrHistogram

MIN_SAMPLES = 3


class RankResult:
    """Outcome of a rank test: ``u`` (U of the current sample), ``effect`` (U / (n1·n2), 0.5 means no
    shift, above 0.5 the current sample is larger), ``z`` and the two-sided ``p`` (None when either
    side has fewer than ``MIN_SAMPLES`` samples)."""

    __slots__ = ("u", "effect", "z", "p", "n_base", "n_current")

    def __init__(self, u: float, effect: float, z: float | None, p: float | None, n_base: float, n_current: float):
        self.u, self.effect, self.z, self.p = u, effect, z, p
        self.n_base, self.n_current = n_base, n_current

    def __repr__(self) -> str:
        return f"RankResult(effect={self.effect:.3f}, z={self.z}, p={self.p}, n={self.n_base}/{self.n_current})"


def _counts(sample: Mapping[float, int] | Iterable[float]) -> dict[float, int]:
    if isinstance(sample, Mapping):
        return {float(v): int(c) for v, c in sample.items() if c > 0}
    out: dict[float, int] = {}
    for v in sample:
        out[float(v)] = out.get(float(v), 0) + 1
    return out


def _rank_sums(base: dict[float, int], current: dict[float, int]) -> tuple[float, float, float, float]:
    """(U of current, n_base, n_current, tie term Σ(t³ - t)) over the merged distinct values."""
    n1 = sum(base.values())
    n2 = sum(current.values())
    rank_sum_current = 0.0
    ties = 0.0
    below = 0  # samples with a smaller value than the current one
    for value in sorted(set(base) | set(current)):
        a = base.get(value, 0)
        b = current.get(value, 0)
        t = a + b
        mid_rank = below + (t + 1) / 2.0  # the average rank of the tied group
        rank_sum_current += b * mid_rank
        ties += t ** 3 - t
        below += t
    u = rank_sum_current - n2 * (n2 + 1) / 2.0
    return u, float(n1), float(n2), ties


def _p_from_z(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def mann_whitney(base: Mapping[float, int] | Iterable[float],
                 current: Mapping[float, int] | Iterable[float]) -> RankResult:
    """Two-sided Mann-Whitney U test of ``current`` against ``base`` (samples or value → count)."""
    b, c = _counts(base), _counts(current)
    u, n1, n2, ties = _rank_sums(b, c)
    if n1 == 0 or n2 == 0:
        return RankResult(0.0, 0.5, None, None, n1, n2)
    effect = u / (n1 * n2)
    if n1 < MIN_SAMPLES or n2 < MIN_SAMPLES:
        return RankResult(u, effect, None, None, n1, n2)
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:  # every sample the same value: no evidence of any shift
        return RankResult(u, effect, 0.0, 1.0, n1, n2)
    mean = n1 * n2 / 2.0
    # continuity correction, as scipy's default
    d = u - mean
    z = (d - math.copysign(0.5, d)) / math.sqrt(var) if abs(d) >= 0.5 else 0.0
    return RankResult(u, effect, z, _p_from_z(z), n1, n2)


def rank_test_clustered(base: Mapping[float, int], current: Mapping[float, int],
                        n_base: float, n_current: float) -> RankResult:
    """The effect size of a rank test over two request distributions, judged with ``n_base`` and
    ``n_current`` independent samples (the runs' seconds) instead of the request counts."""
    full = mann_whitney(base, current)
    if full.n_base == 0 or full.n_current == 0:
        return RankResult(full.u, full.effect, None, None, n_base, n_current)
    if n_base < MIN_SAMPLES or n_current < MIN_SAMPLES:
        return RankResult(full.u, full.effect, None, None, n_base, n_current)
    # Var(U/(n1 n2)) under H0 is (n1+n2+1)/(12 n1 n2); ties shrink it, by the same factor as for
    # the request-level test.
    n1, n2 = full.n_base, full.n_current
    n = n1 + n2
    _, _, _, ties = _rank_sums(_counts(base), _counts(current))
    tie_factor = 1.0 - ties / (n ** 3 - n) if n > 1 else 1.0
    var = (n_base + n_current + 1) / (12.0 * n_base * n_current) * tie_factor
    if var <= 0:
        return RankResult(full.u, full.effect, 0.0, 1.0, n_base, n_current)
    z = (full.effect - 0.5) / math.sqrt(var)
    return RankResult(full.u, full.effect, z, _p_from_z(z), n_base, n_current)


def histogram_counts(encoded: str | bytes | None) -> dict[float, int]:
    """Bucket value (µs) → count of an HdrHistogram in its compressed base64 form (V2), {} when
    empty or absent. Raises ValueError when the text is not such a histogram."""
    if not encoded:
        return {}
    if isinstance(encoded, str):
        encoded = encoded.encode("ascii", "replace")
    try:
        h = HdrHistogram.decode(encoded)
    except Exception as exc:  # hdrh raises whatever its decoder hits on foreign text
        raise ValueError(f"not an HdrHistogram (compressed base64 V2): {exc}") from None
    if h is None:
        raise ValueError("not an HdrHistogram (compressed base64 V2)")
    return {float(it.value_iterated_to): int(it.count_at_value_iterated_to) for it in h.get_recorded_iterator()}
