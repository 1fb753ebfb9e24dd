"""The question study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies.run.study import read_table


def findings(tables_dir: Path) -> dict:
    out = read_table(tables_dir, "outcomes")
    ep = read_table(tables_dir, "epochs_to_threshold")
    long = read_table(tables_dir, "long_thresholds")
    per_seed = read_table(tables_dir, "per_seed")
    f: dict = {"outcomes": {}, "epochs": {}, "long": {}}
    for r in out.itertuples():
        f["outcomes"].setdefault(f"{r.activation}@{r.lr:g}", {})[r.outcome] = {
            "share": r.share, "lo": r.ci_low, "hi": r.ci_high, "count": r.count, "n": r.n}
    for r in ep.itertuples():
        f["epochs"][f"{r.activation}@{r.lr:g}"] = {
            "median": r.median, "lo": r.median_ci_low, "hi": r.median_ci_high,
            "reached": r.reached, "n": r.n, "budget": int(r.budget)}
    for r in long.itertuples():
        f["long"].setdefault(r.activation, {})[f"{r.threshold:g}"] = {
            "share": r.reached_share, "lo": r.reached_ci_low, "hi": r.reached_ci_high,
            "median": getattr(r, "median", np.nan), "reached": r.reached, "n": r.n}
    f["threshold"] = float(ep.threshold.iloc[0])
    f["long_epochs"] = int(long.budget.max()) if len(long) else 0
    f["seeds"] = int(per_seed.groupby(["activation", "lr"]).size().min())
    return f
