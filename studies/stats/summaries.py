"""Turning per-seed rows into statistics with uncertainty, grouped by label columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from diagnostics.train import OUTCOMES
from studies.stats.intervals import median_ci, wilson_interval
from studies.stats.survival import kaplan_meier


def _groups(frame: pd.DataFrame, by: Sequence[str]):
    if not by:
        yield {}, frame
        return
    for key, part in frame.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key, strict=True)), part


def proportion(k, n) -> dict:
    """share k/n with its 95% Wilson interval."""
    lo, hi = wilson_interval(k, n)
    return {"count": int(k), "n": int(n), "share": k / n if n else np.nan,
            "ci_low": float(lo), "ci_high": float(hi)}


def prefixed_proportion(prefix: str, k: int, n: int) -> dict:
    """Table columns ``<prefix>_count/_share/_ci_low/_ci_high``: k/n, its 95% Wilson interval."""
    p = proportion(k, n)
    return {f"{prefix}_count": p["count"], f"{prefix}_share": p["share"],
            f"{prefix}_ci_low": p["ci_low"], f"{prefix}_ci_high": p["ci_high"]}




def outcome_shares(outcomes: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per group and outcome: count, n, share and its 95% Wilson interval."""
    rows = []
    for key, part in _groups(outcomes, by):
        n = len(part)
        for name in OUTCOMES:
            rows.append(key | {"outcome": name} | proportion(int((part.outcome == name).sum()), n))
    return pd.DataFrame(rows)


def epochs_summary(
    outcomes: pd.DataFrame, by: Sequence[str], column: str = "epochs_to_threshold"
) -> pd.DataFrame:
    """Median epochs to threshold with a 95% order-statistic CI; inf = not reached in budget.

    Seeds that never reached the threshold (or diverged) count as +inf: censoring is at the
    epoch budget, later than every observed time, so order statistics remain valid.
    """
    rows = []
    for key, part in _groups(outcomes, by):
        e = part[column].to_numpy(dtype=float)
        e = np.where(e >= 0, e, np.inf)
        med, lo, hi = median_ci(e)
        reached = np.isfinite(e)
        rows.append(
            key
            | {
                "n": len(e),
                "reached": int(reached.sum()),
                "median": med,
                "median_ci_low": lo,
                "median_ci_high": hi,
                "q25": float(np.quantile(e, 0.25, method="lower")) if len(e) else np.nan,
                "q75": float(np.quantile(e, 0.75, method="higher")) if len(e) else np.nan,
            }
            | {f"reached_{k}": v for k, v in proportion(int(reached.sum()), len(e)).items()
               if k in ("share", "ci_low", "ci_high")}
        )
    return pd.DataFrame(rows)


def loss_bands(loss: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group and recorded epoch: 25th, 50th and 75th percentile of the loss over seeds."""
    g = loss.groupby([*by, "epoch"], sort=True).loss
    out = g.quantile([0.25, 0.5, 0.75]).unstack()
    out.columns = ["q25", "median", "q75"]
    out["n"] = g.size()
    return out.reset_index()


def survival_curves(
    outcomes: pd.DataFrame, by: Sequence[str], budget: int, column: str = "epochs_to_threshold"
) -> pd.DataFrame:
    """Kaplan-Meier share of seeds not yet converged vs epoch, censored at the budget."""
    rows = []
    for key, part in _groups(outcomes, by):
        e = part[column].to_numpy(dtype=float)
        observed = e >= 0
        times = np.where(observed, e, budget)
        t, s = kaplan_meier(times, observed)
        rows.extend(key | {"epoch": float(ti), "not_converged": float(si)}
                    for ti, si in zip(t, s, strict=True))
        rows.append(key | {"epoch": float(budget), "not_converged": float(s[-1])})
    return pd.DataFrame(rows)
