"""Statistics with uncertainty: rates, survival curves, medians (numpy + stdlib only)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

_BOOT_CHUNK_ELEMENTS = 4_000_000  # largest (resamples × values) block bootstrap_ci holds at once
_BINOM_RTOL = 1e-9  # slack when comparing lgamma-computed binomial tails with the target level


def _check_conf(conf: float) -> None:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in the open interval (0, 1); got {conf}")


def wilson_interval(k: ArrayLike, n: ArrayLike, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorized; nan where n == 0).

    (p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n), with p̂ = k/n.

    Args:
        k: successes, 0 ≤ k ≤ n.
        n: trials, n ≥ 0.
        z: normal quantile (1.96 for 95 %).

    Returns:
        (lower, upper), arrays of the broadcast shape of k and n.
    """
    k_arr, n_arr = np.broadcast_arrays(
        np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    if not (np.all(np.isfinite(k_arr)) and np.all(np.isfinite(n_arr))):
        raise ValueError("k and n must be finite")
    if np.any(n_arr < 0) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError(f"need 0 <= k <= n; got k={k!r}, n={n!r}")
    if not z > 0:
        raise ValueError(f"z must be positive; got {z}")
    with np.errstate(divide="ignore", invalid="ignore"):
        p_hat = k_arr / n_arr
        z2n = z * z / n_arr
        centre = (p_hat + z2n / 2.0) / (1.0 + z2n)
        half = z / (1.0 + z2n) * np.sqrt(p_hat * (1.0 - p_hat) / n_arr + z2n / (4.0 * n_arr))
    # The interval always contains p̂; min/max only undo rounding (k = 0 gave lower ≈ 1e-17).
    lower = np.where(n_arr > 0, np.clip(np.minimum(centre - half, p_hat), 0.0, 1.0), np.nan)
    upper = np.where(n_arr > 0, np.clip(np.maximum(centre + half, p_hat), 0.0, 1.0), np.nan)
    return lower, upper


def _validated_times(times: ArrayLike, observed: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=np.float64).ravel()
    obs = np.asarray(observed).ravel()
    if obs.dtype != np.bool_:
        if not (np.issubdtype(obs.dtype, np.integer) and np.all((obs == 0) | (obs == 1))):
            raise ValueError(f"observed must be boolean (False = censored); got {observed!r}")
        obs = obs.astype(bool)
    if t.shape != obs.shape:
        raise ValueError(f"times and observed differ in length: {t.size} != {obs.size}")
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError("times must be non-negative and not NaN")
    if np.any(np.isinf(t[obs])):
        raise ValueError("observed event times must be finite (censor the others)")
    return t, obs


def kaplan_meier(times: ArrayLike, observed: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier survival S(t) = ∏_{t_j ≤ t} (1 − d_j / n_j) at the distinct event times.

    d_j events at t_j, n_j subjects with time ≥ t_j (a subject censored at t_j is still at risk
    there). S is a right-continuous step function; S(0) = 1 unless events happen at time 0.

    Args:
        times: time to event, or to censoring where not observed; ≥ 0.
        observed: True for an event, False for right-censored at that time.

    Returns:
        (t, S): t = [0, event times > 0 …] sorted, S[i] = survival just after t[i]. For empty
        input, ([0.], [nan]).
    """
    t, obs = _validated_times(times, observed)
    if t.size == 0:
        return np.zeros(1), np.full(1, np.nan)
    sorted_times = np.sort(t)
    event_times, deaths = np.unique(t[obs], return_counts=True)  # (m,), (m,)
    at_risk = t.size - np.searchsorted(sorted_times, event_times, side="left")  # (m,)
    survival = np.cumprod(1.0 - deaths / at_risk)
    if event_times.size and event_times[0] == 0.0:
        return event_times, survival
    return np.concatenate([[0.0], event_times]), np.concatenate([[1.0], survival])


def survival_at(t_grid: ArrayLike, times: ArrayLike, observed: ArrayLike) -> np.ndarray:
    """Kaplan–Meier S evaluated on t_grid: 1 before 0, flat after the last event time."""
    event_times, survival = kaplan_meier(times, observed)
    grid = np.asarray(t_grid, dtype=np.float64)
    idx = np.searchsorted(event_times, grid, side="right") - 1
    return np.where(idx >= 0, survival[np.maximum(idx, 0)], 1.0)


def _binomial_half_cdf(n: int) -> np.ndarray:
    """P(Bin(n, 1/2) ≤ i) for i = 0 … n, from math.lgamma."""
    log_norm = math.lgamma(n + 1) - n * math.log(2.0)
    log_pmf = np.array(
        [log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)]
    )
    return np.cumsum(np.exp(log_pmf))


def median_ci(values: ArrayLike, conf: float = 0.95) -> tuple[float, float, float]:
    """Sample median and distribution-free CI [x_(j), x_(n+1−j)] from binomial order statistics.

    j is the largest rank with P(j ≤ Bin(n, 1/2) ≤ n − j) ≥ conf. When even j = 1 falls short
    (n ≤ 5 at 95 %) the interval is (−inf, +inf). +inf values mean "not reached within a budget
    above every finite value"; order statistics stay valid and the median or a bound is +inf where
    it lands on one.

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
    # Symmetric ranks j, n + 1 − j cover the median with 1 − 2·P(B ≤ j − 1), B ~ Bin(n, 1/2).
    cdf = _binomial_half_cdf(n)  # (n + 1,)
    tail = (1.0 - conf) / 2.0
    ok = np.flatnonzero(cdf[: (n + 1) // 2] <= tail * (1.0 + _BINOM_RTOL))  # ranks j − 1
    if ok.size == 0:
        return median, -math.inf, math.inf
    j = int(ok[-1]) + 1
    return median, float(x[j - 1]), float(x[n - j])


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
