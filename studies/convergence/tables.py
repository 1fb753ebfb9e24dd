"""The convergence study's tables: tidy frames computed from its cells' results, written as CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from diagnostics.presets import PRESETS
from diagnostics.train import OUTCOMES
from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.summaries import epochs_summary, proportion, survival_curves

from .grid import EPOCHS, LOSS_EVERY, QUICK_EPOCHS, QUICK_SEEDS, SEEDS, grid_epochs

BY = ["activation", "lr"]


def effective_epochs(outcomes: pd.DataFrame) -> pd.Series:
    """Epochs to threshold with diverged seeds set to -1 (never converged, censored)."""
    e = outcomes.epochs_to_threshold.where(outcomes.outcome != "diverged", -1)
    return e.astype(np.int64)


def summarize(outcomes: pd.DataFrame, by: Sequence[str], budget: int) -> pd.DataFrame:
    """Per group: median epochs with 95% CI, and each outcome's count and share with Wilson CI."""
    o = outcomes.assign(_e=effective_epochs(outcomes))
    med = epochs_summary(o, by, "_e").drop(
        columns=["reached_share", "reached_ci_low", "reached_ci_high"]
    )
    rows = []
    for key, part in o.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        for name in OUTCOMES:
            p = proportion(int((part.outcome == name).sum()), len(part))
            row |= {f"{name}_count": p["count"], f"{name}_share": p["share"],
                    f"{name}_ci_low": p["ci_low"], f"{name}_ci_high": p["ci_high"]}
        kept = part.min_loss[part.outcome != "diverged"]
        row["min_loss_median"] = float(kept.median()) if len(kept) else np.nan
        blown = part.diverged_epoch[part.outcome == "diverged"]
        row["diverged_epoch_median"] = float(blown.median()) if len(blown) else np.nan
        rows.append(row)
    out = med.merge(pd.DataFrame(rows), on=list(by))
    out.insert(len(by), "epochs", int(budget))
    out.insert(len(by) + 1, "threshold", float(PRESETS["fixed"].threshold))
    return out


def quantiles_with_inf(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolation quantiles of a sample that may hold +inf (e.g. diverged seeds).

    With sorted x and h = (n - 1) q: x[floor h] + (h - floor h)(x[ceil h] - x[floor h]), and +inf
    when x[ceil h] is +inf and h is not an integer (np.quantile would give nan for inf - inf).
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return np.full(len(qs), np.nan)
    out = np.empty(len(qs))
    for i, q in enumerate(qs):
        h = (x.size - 1) * q
        lo, hi = math.floor(h), math.ceil(h)
        if lo == hi:
            out[i] = x[lo]
        elif np.isinf(x[hi]):
            out[i] = np.inf
        else:
            out[i] = x[lo] + (h - lo) * (x[hi] - x[lo])
    return out


def loss_bands_all_seeds(
    loss: pd.DataFrame, groups: pd.DataFrame, seeds: Sequence[int], epochs: Sequence[int]
) -> pd.DataFrame:
    """Per group (a row of ``groups``, whose columns are the label columns) and recorded epoch:
    q25, median, q75 of the loss over all ``seeds``.

    Every group is expected to hold ``seeds`` recorded at ``epochs``. A seed with no row at a
    recorded epoch has diverged (the loss frame drops those rows, even from epoch 1 on); it
    counts as +inf, as does a non-finite recorded loss. ``n_finite`` counts the finite losses.
    """
    rows = []
    for key in groups.drop_duplicates().to_dict("records"):
        part = loss[np.logical_and.reduce([loss[k] == v for k, v in key.items()])]
        table = part.pivot_table(index="epoch", columns="seed", values="loss", aggfunc="first")
        table = table.reindex(index=list(epochs), columns=list(seeds))
        values = table.to_numpy(dtype=float)  # (epochs, seeds)
        values = np.where(np.isfinite(values), values, np.inf)
        for epoch, row in zip(table.index, values, strict=True):
            q25, q50, q75 = quantiles_with_inf(row, (0.25, 0.5, 0.75))
            rows.append(key | {
                "epoch": int(epoch), "q25": q25, "median": q50, "q75": q75,
                "n": row.size, "n_finite": int(np.isfinite(row).sum())})
    return pd.DataFrame(rows)


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    """medians, survival, loss_bands and per_seed (main lr); lr_grid (the grid)."""
    outcomes = concat(results, "outcomes")
    loss = concat(results, "loss")
    epochs = opts.pick("epochs", EPOCHS, QUICK_EPOCHS)
    budget = {"main": epochs, "grid": grid_epochs(epochs)}
    main = outcomes[outcomes.part == "main"].drop(columns=["part"])
    grid = outcomes[outcomes.part == "grid"].drop(columns=["part"])
    main_loss = loss[loss.part == "main"].drop(columns=["part"])
    survival = survival_curves(main.assign(_e=effective_epochs(main)), BY, budget["main"], "_e")
    out = {
        "medians": summarize(main, BY, budget["main"]),
        "survival": survival,
        "loss_bands": loss_bands_all_seeds(
            main_loss, main[BY], range(opts.pick("seeds", SEEDS, QUICK_SEEDS)),
            LOSS_EVERY.epochs(epochs, first=1)),
        "per_seed": main,
    }
    if len(grid):
        out["lr_grid"] = summarize(grid, BY, budget["grid"])
    else:  # no grid cells (e.g. every lr filtered out): keep the promised file and columns
        out["lr_grid"] = out["medians"].iloc[0:0]
    return out
