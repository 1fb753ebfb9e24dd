"""Intervals: rates (Wilson), medians (order statistics), bootstrap, paired rates (McNemar)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

_BOOT_CHUNK_ELEMENTS = 4_000_000  # largest (resamples × values) block bootstrap_ci holds at once


def _check_conf(conf: float) -> None:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in the open interval (0, 1); got {conf}")


def wilson_interval(
    k: ArrayLike, n: ArrayLike, conf: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorized; nan where n == 0).

    scipy's ``binomtest(k, n).proportion_ci(method="wilson")``, which uses the exact normal
    quantile (1.959964… at 95%), element by element.

    Args:
        k: successes, 0 ≤ k ≤ n.
        n: trials, n ≥ 0.
        conf: confidence level in (0, 1).

    Returns:
        (lower, upper), arrays of the broadcast shape of k and n.
    """
    _check_conf(conf)
    k_arr, n_arr = np.broadcast_arrays(
        np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    if not (np.all(np.isfinite(k_arr)) and np.all(np.isfinite(n_arr))):
        raise ValueError("k and n must be finite")
    if np.any(n_arr < 0) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError(f"need 0 <= k <= n; got k={k!r}, n={n!r}")
    lower, upper = np.full(k_arr.shape, np.nan), np.full(k_arr.shape, np.nan)
    for i in np.ndindex(k_arr.shape):
        if n_arr[i] > 0:
            ci = stats.binomtest(int(k_arr[i]), int(n_arr[i])).proportion_ci(conf, "wilson")
            lower[i], upper[i] = ci.low, ci.high
    return lower, upper


def median_ci(values: ArrayLike, conf: float = 0.95) -> tuple[float, float, float]:
    """Sample median and its distribution-free CI from binomial order statistics.

    The interval is scipy's ``quantile_test(x, p=0.5).confidence_interval(conf)``: order
    statistics [x_(j), x_(k)] that cover the population median with probability ≥ conf; it is
    (−inf, +inf) where too few values allow no such ranks (n ≤ 5 at 95 %). +inf values mean "not
    reached within a budget above every finite value"; order statistics stay valid and the median
    or a bound is +inf where it lands on one.

    Args:
        values: sample; finite or +inf, no NaN.
        conf: confidence level in (0, 1).

    Returns:
        (median, lower, upper); all nan for an empty sample.
    """
    _check_conf(conf)
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if np.any(np.isnan(x)) or np.any(x == -np.inf):
        raise ValueError("values must not contain NaN or -inf (+inf means 'not reached')")
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mid = n // 2
    median = float(x[mid]) if n % 2 else float((x[mid - 1] + x[mid]) / 2.0)
    ci = stats.quantile_test(x, p=0.5).confidence_interval(conf)
    lo, hi = float(ci.low), float(ci.high)  # nan where no ranks reach conf: unbounded
    return median, -math.inf if math.isnan(lo) else lo, math.inf if math.isnan(hi) else hi


def bootstrap_ci(
    values: ArrayLike,
    stat: Callable[..., np.ndarray] = np.median,
    n_boot: int = 2000,
    conf: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap: (stat(values), lower, upper) from n_boot resamples with replacement.

    The bounds are the (1 − conf)/2 and (1 + conf)/2 quantiles of the resampled statistic, taken
    as order statistics (method "lower" / "higher") so +inf values cannot produce NaN.

    Args:
        values: sample (1-D).
        stat: reduction accepting an ``axis`` keyword (np.median, np.mean, …).
        n_boot: number of resamples.
        conf: confidence level in (0, 1).
        seed: seed or np.random.Generator for the resampling.

    Returns:
        (estimate, lower, upper); all nan for an empty sample.
    """
    _check_conf(conf)
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot}")
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // x.size)
    boot = np.empty(n_boot)  # (n_boot,)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, x.size, size=(m, x.size))  # (m, n)
        boot[start : start + m] = stat(x[idx], axis=1)
    lower = float(np.quantile(boot, (1.0 - conf) / 2.0, method="lower"))
    upper = float(np.quantile(boot, (1.0 + conf) / 2.0, method="higher"))
    return float(stat(x)), lower, upper


def mcnemar_exact(rescued: int, killed: int) -> float:
    """Two-sided exact McNemar p-value for paired rates: a binomial test on the discordant pairs.

    ``rescued`` seeds fail in A and succeed in B, ``killed`` the reverse; under "A and B succeed
    equally often" each discordant seed is rescued or killed with probability 1/2.
    """
    if rescued < 0 or killed < 0:
        raise ValueError(f"counts must be non-negative; got {rescued}, {killed}")
    n = rescued + killed
    return 1.0 if n == 0 else float(stats.binomtest(rescued, n, 0.5).pvalue)


def paired_difference(
    both: int, first_only: int, second_only: int, neither: int, conf: float = 0.95
) -> tuple[float, float, float]:
    """p2 - p1 for two rates measured on the same units, with Newcombe's paired interval.

    Newcombe (1998), "Improved confidence intervals for the difference between binomial
    proportions based on paired data", method 10: the Wilson intervals (l1, u1) of p1 =
    (both + first_only)/n and (l2, u2) of p2 = (both + second_only)/n combined as
    D - sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2) ..
    D + sqrt((u2 - p2)^2 - 2 phi (u2 - p2)(p1 - l1) + (p1 - l1)^2), with phi the correlation of
    the 2x2 table (continuity-corrected when positive: max(AD - BC - n/2, 0) / sqrt(...)).
    With phi = 0 it is the independent-samples square-and-add interval; correlated outcomes
    (the same seeds under two variants) make it narrower.

    Args:
        both: units with the event under both; first_only, second_only: under one only;
            neither: under neither.
        conf: confidence level.

    Returns:
        (difference p2 - p1, lower, upper); nan when there are no units.
    """
    cells = (both, first_only, second_only, neither)
    if any(c < 0 for c in cells):
        raise ValueError(f"counts must be non-negative; got {cells}")
    n = sum(cells)
    if n == 0:
        return math.nan, math.nan, math.nan
    k1, k2 = both + first_only, both + second_only
    p1, p2 = k1 / n, k2 / n
    (l1, l2), (u1, u2) = wilson_interval([k1, k2], [n, n], conf)
    margins = (k1 * (n - k1) * k2 * (n - k2))
    ad_bc = both * neither - first_only * second_only
    if margins == 0:
        phi = 0.0
    elif ad_bc > 0:
        phi = max(ad_bc - n / 2.0, 0.0) / math.sqrt(margins)
    else:
        phi = ad_bc / math.sqrt(margins)
    d = p2 - p1
    low = d - math.sqrt(max((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2,
                            0.0))
    high = d + math.sqrt(max((u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2,
                             0.0))
    return d, max(low, -1.0), min(high, 1.0)
