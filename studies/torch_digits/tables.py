"""The torch_digits study's tables: tidy frames from its cells' results, written as CSV.

The same outcome definitions and summaries as every engine study (``studies.stats``); a failure
is a seed that did not converge (stuck, diverged or not converged), as in ``relu_failure``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.summaries import (
    epochs_summary,
    loss_bands,
    outcome_shares,
    prefixed_proportion,
)

BY = ["activation", "lr"]
PROFILE_METRICS = ("grad_norm_W", "grad_norm_z")  # the per-layer gradient profile


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    """outcomes, failure, epochs_to_threshold, per_seed, loss_bands, dead_fraction,
    saturation, gradient_profile."""
    outcomes = concat(results, "outcomes")
    metrics = concat(results, "metrics")
    budget = max(r.cell.config.epochs for r in results)
    return {
        "outcomes": outcome_shares(outcomes, BY),
        "failure": _failure(outcomes, metrics),
        "epochs_to_threshold": epochs_summary(outcomes, BY).assign(
            threshold=results[0].cell.config.threshold, budget=budget),
        "per_seed": outcomes,
        "loss_bands": loss_bands(concat(results, "loss"), BY),
        "dead_fraction": _over_training(metrics, "dead_fraction"),
        "saturation": _over_training(metrics, "saturation_fraction"),
        "gradient_profile": _profile(metrics),
    }


def _failure(outcomes: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per activation: failure (not converged) and its parts, and dead networks at the start."""
    rows = []
    dead = metrics[(metrics.metric == "network_dead") & (metrics.epoch == 0)] if len(
        metrics) else pd.DataFrame(columns=[*BY, "seed", "value"])
    for key, part in outcomes.groupby(BY, sort=False):
        n = len(part)
        d = dead[(dead.activation == key[0]) & (dead.lr == key[1])]
        rows.append(dict(zip(BY, key, strict=True)) | {"n": n}
                    | prefixed_proportion("failure", int((part.outcome != "converged").sum()), n)
                    | {f"{o}_count": int((part.outcome == o).sum())
                       for o in ("stuck", "diverged", "not_converged")}
                    | prefixed_proportion("dead_initial", int((d.value == 1).sum()), n)
                    | {"median_final_loss": float(part.final_loss.median())})
    return pd.DataFrame(rows)


def _over_training(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per activation, layer and recorded epoch: a per-seed fraction's mean, quartiles, and the
    share of seeds where it is above 0 and where it is 1 (with 95% intervals)."""
    if not len(metrics):
        return pd.DataFrame()
    m = metrics[(metrics.metric == metric) & (metrics.layer > 0)]
    rows = []
    for key, part in m.groupby([*BY, "layer", "epoch"], sort=True):
        v = part.value.to_numpy()
        n = v.size
        rows.append(dict(zip([*BY, "layer", "epoch"], key, strict=True))
                    | {"n": n, "mean": float(v.mean()), "q25": float(np.quantile(v, 0.25)),
                       "median": float(np.median(v)), "q75": float(np.quantile(v, 0.75))}
                    | prefixed_proportion("any", int((v > 0).sum()), n)
                    | prefixed_proportion("all", int((v == 1).sum()), n))
    return pd.DataFrame(rows)


def _profile(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per activation, layer, metric: the median and quartiles over seeds at the first and the
    last recorded epoch."""
    if not len(metrics):
        return pd.DataFrame()
    m = metrics[metrics.metric.isin(PROFILE_METRICS) & (metrics.layer > 0)]
    last = m.groupby(BY).epoch.transform("max")
    m = m[(m.epoch == 0) | (m.epoch == last)]
    m = m.assign(when=np.where(m.epoch == 0, "initial", "final"))
    g = m.groupby([*BY, "when", "epoch", "metric", "layer"], sort=True).value
    out = g.quantile([0.25, 0.5, 0.75]).unstack()
    out.columns = ["q25", "median", "q75"]
    out["n"] = g.size()
    return out.reset_index()
