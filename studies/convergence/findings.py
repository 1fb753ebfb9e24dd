"""The convergence study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies.run.study import read_table

from .figures import fastest_order


def findings(tables_dir: Path) -> dict:
    """The numbers the report quotes (see the keys below), from the CSV files."""
    med = read_table(tables_dir, "medians")
    grid = read_table(tables_dir, "lr_grid")
    f: dict = {
        "lr": float(med.lr.iloc[0]),
        "epochs": int(med.epochs.iloc[0]),
        "seeds": int(med.n.min()),
        "threshold": float(med.threshold.iloc[0]),
        "medians": {},
        "fastest": fastest_order(med),
        "lr_grid": {},
        "grid_epochs": int(grid.epochs.iloc[0]) if len(grid) else 0,
        "best_lr": {},
    }
    for r in med.itertuples():
        f["medians"][r.activation] = {
            "median": float(r.median), "lo": float(r.median_ci_low),
            "hi": float(r.median_ci_high), "reached": int(r.reached), "n": int(r.n),
            "converged_share": float(r.converged_share),
            "diverged_share": float(r.diverged_share),
            "min_loss_median": float(r.min_loss_median),
            "diverged_epoch_median": float(r.diverged_epoch_median),
        }
    for r in grid.itertuples():
        f["lr_grid"].setdefault(r.activation, {})[f"{r.lr:g}"] = {
            "median": float(r.median), "lo": float(r.median_ci_low),
            "hi": float(r.median_ci_high), "diverged_share": float(r.diverged_share),
            "converged_share": float(r.converged_share),
        }
    for act, part in grid.groupby("activation", sort=False):
        best = part.assign(_m=part["median"].fillna(np.inf)).sort_values(
            ["_m", "converged_share"], ascending=[True, False]).iloc[0]
        f["best_lr"][act] = float(best.lr)
    return f
