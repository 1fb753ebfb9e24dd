"""Survival curves of epochs-to-threshold, censored at the epoch budget (scipy's Kaplan–Meier)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


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
    if not obs.any():
        return np.zeros(1), np.ones(1)
    sf = stats.ecdf(stats.CensoredData.right_censored(t, ~obs)).sf
    keep = np.isin(sf.quantiles, t[obs])  # scipy also lists censoring times: keep event times
    event_times, survival = sf.quantiles[keep], sf.probabilities[keep]
    if event_times.size and event_times[0] == 0.0:
        return event_times, survival
    return np.concatenate([[0.0], event_times]), np.concatenate([[1.0], survival])


def survival_at(t_grid: ArrayLike, times: ArrayLike, observed: ArrayLike) -> np.ndarray:
    """Kaplan–Meier S evaluated on t_grid: 1 before 0, flat after the last event time."""
    event_times, survival = kaplan_meier(times, observed)
    grid = np.asarray(t_grid, dtype=np.float64)
    idx = np.searchsorted(event_times, grid, side="right") - 1
    return np.where(idx >= 0, survival[np.maximum(idx, 0)], 1.0)
