"""studies.stats against hand-worked values and independent exact computations."""

import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest

from studies.stats import intervals as stats
from studies.stats import survival

Z = NormalDist().inv_cdf(0.975)  # the exact 95% normal quantile, 1.959964..., from the stdlib

# --- Wilson ------------------------------------------------------------------------------------


def test_wilson_zero_successes():
    # k = 0: centre and half-width are both (z²/2n)/(1 + z²/n), so upper = (z²/n)/(1 + z²/n).
    lo, hi = stats.wilson_interval(0, 10)
    assert float(lo) == pytest.approx(0.0, abs=1e-15)
    assert float(hi) == pytest.approx(Z**2 / (10 + Z**2), rel=1e-12)


def test_wilson_all_successes_mirrors_zero_successes():
    lo, hi = stats.wilson_interval(10, 10)
    assert float(lo) == pytest.approx(1 - Z**2 / (10 + Z**2), rel=1e-12)
    assert float(hi) == pytest.approx(1.0, abs=1e-15)


def test_wilson_mid_case_from_the_formula():
    k, n = 3, 10
    p = k / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    lo, hi = stats.wilson_interval(k, n)
    assert float(lo) == pytest.approx(centre - half, rel=1e-12)
    assert float(hi) == pytest.approx(centre + half, rel=1e-12)
    # Textbook value (e.g. Newcombe 1998 style tables): 3/10 -> (0.1078, 0.6032).
    assert float(lo) == pytest.approx(0.1078, abs=1e-4)
    assert float(hi) == pytest.approx(0.6032, abs=1e-4)


def test_wilson_is_vectorized_contains_the_estimate_and_is_symmetric():
    n = np.repeat(np.arange(1, 31), 31)
    k = np.tile(np.arange(31), 30)
    keep = k <= n
    k, n = k[keep], n[keep]
    lo, hi = stats.wilson_interval(k, n)
    assert lo.shape == hi.shape == k.shape
    assert np.all(lo <= k / n) and np.all(k / n <= hi)
    lo_mirror, hi_mirror = stats.wilson_interval(n - k, n)
    np.testing.assert_allclose(lo, 1 - hi_mirror, atol=1e-12)
    np.testing.assert_allclose(hi, 1 - lo_mirror, atol=1e-12)


def test_wilson_no_trials_is_nan_and_bad_input_raises():
    lo, hi = stats.wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert np.isfinite(lo[1]) and np.isfinite(hi[1])
    with pytest.raises(ValueError, match="k <= n"):
        stats.wilson_interval(5, 4)


# --- Kaplan–Meier ------------------------------------------------------------------------------

# Sorted: 1 event, 2 event, 2.5 censored, 3 event, 4 censored, 4 event, 5 event, 6 censored.
# t=1: 8 at risk, 1 event -> S = 7/8
# t=2: 7 at risk           -> 7/8 * 6/7 = 3/4
# t=3: 5 at risk (3,4,4,5,6) -> 3/4 * 4/5 = 3/5
# t=4: 4 at risk (the one censored at 4 still counts) -> 3/5 * 3/4 = 9/20
# t=5: 2 at risk (5, 6)   -> 9/20 * 1/2 = 9/40
KM_TIMES = np.array([4.0, 1.0, 6.0, 2.5, 3.0, 5.0, 2.0, 4.0])
KM_OBSERVED = np.array([False, True, False, False, True, True, True, True])


def test_kaplan_meier_hand_example():
    t, s = survival.kaplan_meier(KM_TIMES, KM_OBSERVED)
    np.testing.assert_allclose(t, [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(s, [1, 7 / 8, 3 / 4, 3 / 5, 9 / 20, 9 / 40], rtol=1e-12)


def test_survival_at_is_a_right_continuous_step():
    grid = [-1.0, 0.0, 0.5, 1.0, 2.7, 4.0, 4.5, 5.0, 100.0]
    expected = [1, 1, 1, 7 / 8, 3 / 4, 9 / 20, 9 / 20, 9 / 40, 9 / 40]
    got = survival.survival_at(grid, KM_TIMES, KM_OBSERVED)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_kaplan_meier_is_monotone_non_increasing():
    rng = np.random.default_rng(3)
    times = rng.integers(1, 40, size=300).astype(float)
    observed = rng.random(300) < 0.7
    t, s = survival.kaplan_meier(times, observed)
    assert t[0] == 0 and s[0] == 1
    assert np.all(np.diff(t) > 0)
    assert np.all(np.diff(s) <= 0)
    assert np.all((s >= 0) & (s <= 1))


def test_kaplan_meier_without_censoring_is_one_minus_ecdf():
    rng = np.random.default_rng(4)
    times = rng.integers(0, 25, size=200).astype(float)  # ties and events at time 0
    grid = np.linspace(-1, 30, 125)
    ecdf = np.array([np.mean(times <= g) for g in grid])
    np.testing.assert_allclose(
        survival.survival_at(grid, times, np.ones(200, bool)), 1 - ecdf, atol=1e-12
    )


def test_kaplan_meier_edge_cases():
    t, s = survival.kaplan_meier([3.0, 7.0], [False, False])  # nothing happened
    np.testing.assert_array_equal(t, [0.0])
    np.testing.assert_array_equal(s, [1.0])
    t, s = survival.kaplan_meier([0.0, 0.0, 2.0, 9.0], [True, False, True, False])
    np.testing.assert_allclose(t, [0.0, 2.0])
    np.testing.assert_allclose(s, [3 / 4, 3 / 4 * 1 / 2])  # 4 at risk at 0; 2 at risk at 2
    with pytest.raises(ValueError, match="length"):
        survival.kaplan_meier([1.0, 2.0], [True])


# --- median_ci ---------------------------------------------------------------------------------


def exact_coverage(n: int, j: int, k: int) -> Fraction:
    """P(j <= Bin(n, 1/2) < k), exactly."""
    return Fraction(sum(math.comb(n, i) for i in range(max(j, 0), min(k, n + 1))), 2**n)


@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_median_ci_has_coverage_and_is_the_narrowest_symmetric_choice(conf):
    for n in range(1, 31):
        values = np.arange(1.0, n + 1)  # x_(i) = i, so bounds are ranks
        median, lo, hi = stats.median_ci(values[::-1], conf=conf)
        assert median == pytest.approx((n + 1) / 2)
        if math.isinf(lo):
            assert lo == -math.inf and hi == math.inf
            assert exact_coverage(n, 1, n) < conf  # even (x_(1), x_(n)) falls short
            continue
        j, k = int(lo), int(hi)
        assert j + k == n + 1  # symmetric ranks
        assert j <= median <= k
        assert exact_coverage(n, j, k) >= conf
        assert exact_coverage(n, j + 1, k - 1) < conf  # one rank narrower would fail


def test_median_ci_known_table_ranks():
    # Classic table (e.g. Conover, Practical Nonparametric Statistics): 95 % ranks for the median
    # are (2, 9) at n = 10 and (10, 21) at n = 30; n = 6 is the smallest sample reaching 95 %.
    assert stats.median_ci(np.arange(1.0, 11))[1:] == (2.0, 9.0)
    assert stats.median_ci(np.arange(1.0, 31))[1:] == (10.0, 21.0)
    assert stats.median_ci(np.arange(1.0, 7))[1:] == (1.0, 6.0)
    assert stats.median_ci(np.arange(1.0, 6))[1:] == (-math.inf, math.inf)


def test_median_ci_hand_median():
    assert stats.median_ci([5.0, 1.0, 3.0, 2.0, 4.0, 100.0])[0] == 3.5
    assert stats.median_ci([7.0, 1.0, 3.0])[0] == 3.0


def test_median_ci_with_values_not_reached():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] + [math.inf] * 4  # n = 10, ranks (2, 9)
    assert stats.median_ci(values) == (5.5, 2.0, math.inf)
    values = [3.0, 1.0, 2.0] + [math.inf] * 7
    median, lo, hi = stats.median_ci(values)
    assert median == math.inf and lo == 2.0 and hi == math.inf


def test_median_ci_empty_and_invalid():
    assert all(math.isnan(v) for v in stats.median_ci([]))
    with pytest.raises(ValueError, match="NaN"):
        stats.median_ci([1.0, math.nan])
    with pytest.raises(ValueError, match="conf"):
        stats.median_ci([1.0, 2.0], conf=1.0)


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_is_reproducible_and_contains_the_median():
    values = np.array([3.0, 8.0, 1.0, 9.0, 4.0, 7.0, 2.0, 6.0, 5.0, 10.0, 4.5, 5.5])
    first = stats.bootstrap_ci(values, seed=42)
    assert first == stats.bootstrap_ci(values, seed=42)
    assert first == stats.bootstrap_ci(values, seed=np.random.default_rng(42))
    estimate, lo, hi = first
    assert estimate == 5.25  # median of 1..10 with 4.5 and 5.5 added
    assert lo <= estimate <= hi and lo < hi


def test_bootstrap_ci_of_mean_matches_normal_theory():
    rng = np.random.default_rng(9)
    values = rng.normal(10.0, 2.0, size=400)
    estimate, lo, hi = stats.bootstrap_ci(values, stat=np.mean, n_boot=4000, seed=1)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert estimate == pytest.approx(values.mean())
    assert lo == pytest.approx(estimate - half, abs=0.1 * half)
    assert hi == pytest.approx(estimate + half, abs=0.1 * half)


def test_bootstrap_ci_handles_not_reached_and_empty():
    estimate, lo, hi = stats.bootstrap_ci([1.0, 2.0, math.inf, math.inf, math.inf], seed=0)
    assert estimate == math.inf and hi == math.inf and not math.isnan(lo)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))


# --- McNemar (paired rates) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rescued", "killed", "p"),
    [
        (0, 5, Fraction(2, 2**5)),  # all five discordant seeds one way: 2 * (1/2)^5
        (1, 9, Fraction(2 * (1 + 10), 2**10)),  # 2 * P(Bin(10, 1/2) <= 1)
        (3, 3, Fraction(1)),  # balanced: no evidence either way
        (0, 0, Fraction(1)),  # no discordant pair
    ],
)
def test_mcnemar_exact_by_hand(rescued, killed, p):
    assert stats.mcnemar_exact(rescued, killed) == pytest.approx(float(p), rel=1e-12)
    assert stats.mcnemar_exact(killed, rescued) == pytest.approx(float(p), rel=1e-12)


# --- paired difference (Newcombe 1998, method 10) -----------------------------------------------


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denom = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    return centre - half, centre + half


def test_paired_difference_without_correlation_is_the_square_and_add_interval():
    # ad - bc = 10*10 - 10*10 = 0: phi = 0, so method 10 is D -/+ sqrt of the two Wilson sides
    both, first, second, neither = 10, 10, 10, 10
    n = 40
    p1, p2 = (both + first) / n, (both + second) / n
    l1, u1 = _wilson_by_hand(both + first, n)
    l2, u2 = _wilson_by_hand(both + second, n)
    d, lo, hi = stats.paired_difference(both, first, second, neither)
    assert d == p2 - p1 == 0.0
    # rounding of a few dozen operations on numbers below 1: 1e-12 is far above it
    assert lo == pytest.approx(d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), abs=1e-12)
    assert hi == pytest.approx(d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2), abs=1e-12)
    assert lo == pytest.approx(-hi, abs=1e-12)  # equal margins at 1/2: symmetric


def test_paired_difference_is_narrower_when_outcomes_agree():
    # the same margins, once strongly paired (most units agree) and once uncorrelated
    d1, lo1, hi1 = stats.paired_difference(40, 5, 15, 40)
    assert 40 * 40 - 5 * 15 > 100 / 2  # positively correlated: phi > 0 after the correction
    p1, p2, n = 45 / 100, 55 / 100, 100
    l1, u1 = _wilson_by_hand(45, n)
    l2, u2 = _wilson_by_hand(55, n)
    lo0 = (p2 - p1) - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi0 = (p2 - p1) + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    assert d1 == pytest.approx(0.1, abs=1e-15)
    assert lo0 < lo1 < d1 < hi1 < hi0


def test_paired_difference_edges():
    assert all(math.isnan(x) for x in stats.paired_difference(0, 0, 0, 0))
    d, lo, hi = stats.paired_difference(0, 0, 30, 0)  # every unit gains the event
    assert d == 1.0 and lo < 1.0 and hi == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        stats.paired_difference(1, -1, 0, 0)
