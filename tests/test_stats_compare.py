"""The rank tests of ``perftui compare`` on synthetic samples and histograms whose answer is known."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from perftui.stats_compare import histogram_counts, mann_whitney, rank_test_clustered


def _hist(values) -> HdrHistogram:
    h = HdrHistogram(1, 600_000_000, 3)
    for v in values:
        h.record_value(int(v))
    return h


def test_identical_samples_are_no_change():
    r = mann_whitney({10: 50, 20: 50}, {10: 50, 20: 50})
    assert r.effect == pytest.approx(0.5)
    assert r.p == pytest.approx(1.0)


def test_separated_samples_are_certain():
    r = mann_whitney(list(range(1, 21)), list(range(101, 121)))
    assert r.effect == 1.0  # every current value is larger
    assert r.p < 1e-6


def test_known_small_case_with_ties():
    # Hand computation: base {1,2,2}, current {2,3,3}. Ranks: 1→1, the three 2s→3, 3s→5.5.
    # Rank sum of current = 3 + 5.5 + 5.5 = 14; U = 14 - 3·4/2 = 8; effect = 8/9.
    r = mann_whitney([1, 2, 2], [2, 3, 3])
    assert r.u == pytest.approx(8.0)
    assert r.effect == pytest.approx(8 / 9)


def test_counts_and_samples_give_the_same_answer():
    rnd = random.Random(7)
    a = [round(rnd.gauss(10, 2)) for _ in range(300)]
    b = [round(rnd.gauss(10.5, 2)) for _ in range(200)]
    ca: dict[int, int] = {}
    for v in a:
        ca[v] = ca.get(v, 0) + 1
    assert mann_whitney(ca, b).p == pytest.approx(mann_whitney(a, b).p)


def test_agrees_with_scipy_on_tied_data():
    scipy_stats = pytest.importorskip("scipy.stats")
    rnd = random.Random(3)
    a = [round(rnd.expovariate(0.1)) for _ in range(400)]
    b = [round(rnd.expovariate(0.09)) for _ in range(250)]
    ours = mann_whitney(a, b)
    theirs = scipy_stats.mannwhitneyu(b, a, alternative="two-sided", use_continuity=True, method="asymptotic")
    assert ours.u == pytest.approx(theirs.statistic)
    assert ours.p == pytest.approx(theirs.pvalue, rel=1e-6)


def test_too_few_samples_give_no_p_value():
    assert mann_whitney([1, 2], [3, 4]).p is None
    assert mann_whitney([], [1, 2, 3]).p is None


def test_histogram_round_trip_counts():
    h = _hist([1000] * 5 + [20000] * 3)
    counts = histogram_counts(h.encode().decode())
    assert sum(counts.values()) == 8
    assert counts[1000.0] == 5


def test_histogram_counts_refuses_garbage():
    with pytest.raises(ValueError, match="not an HdrHistogram"):
        histogram_counts("bm90IGEgaGlzdG9ncmFt")
    assert histogram_counts("") == {}


def test_two_histograms_far_apart_differ_even_clustered():
    rnd = random.Random(1)
    base = histogram_counts(_hist(rnd.gauss(20_000, 2_000) for _ in range(3000)).encode())
    slow = histogram_counts(_hist(rnd.gauss(40_000, 2_000) for _ in range(3000)).encode())
    r = rank_test_clustered(base, slow, 30, 30)
    assert r.effect > 0.99
    assert r.p < 1e-6


def test_a_twelve_percent_shift_with_overlapping_spreads_is_noise_when_clustered():
    # 12 % apart in the median, spreads (sd 40 % of the mean) overlapping: 30 s of 100 requests
    # each. Over 3000 requests a side a plain rank test is "sure"; over 30 seconds a side it is not.
    rnd = random.Random(2)
    base = histogram_counts(_hist(rnd.gauss(20_000, 8_000) for _ in range(3000)).encode())
    cur = histogram_counts(_hist(rnd.gauss(22_400, 8_000) for _ in range(3000)).encode())
    assert mann_whitney(base, cur).p < 0.001
    clustered = rank_test_clustered(base, cur, 30, 30)
    assert 0.5 < clustered.effect < 0.65
    assert clustered.p > 0.05


def test_clustered_identical_distributions():
    h = histogram_counts(_hist(range(1000, 5000, 7)).encode())
    r = rank_test_clustered(h, h, 10, 10)
    assert r.p == pytest.approx(1.0)
