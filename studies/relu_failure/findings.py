"""The relu_failure study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studies.run.study import read_table
from studies.stats.summaries import read_proportion

from .tables import CATEGORIES

_share = read_proportion  # {share, lo, hi, count, n} from a row's <prefix>_* columns


def _split(row) -> dict:
    return {k: _share(row, k, row["n"]) for k in ("failure", *CATEGORIES)}


def findings(tables_dir: Path) -> dict:
    """The numbers the report quotes (JSON-ready, no NaN), from the CSV tables."""
    t = read_table(tables_dir, "failure")
    bw = read_table(tables_dir, "born_dead_theory")
    cond = read_table(tables_dir, "born_dead_conditions")
    second = read_table(tables_dir, "second_layer")
    layers = read_table(tables_dir, "dead_layers")
    base = t[t.factor == "baseline"].iloc[0]
    f: dict = {"baseline": _split(base), "factors": {}}
    f["baseline"]["dead_initial"] = _share(base, "dead_initial", base.n)  # failed or not
    f["baseline"]["dead_initial_converged"] = int(base.dead_initial_converged_count)
    for _, row in t[t.factor != "baseline"].iterrows():
        f["factors"].setdefault(row.factor, {})[str(row.value)] = _split(row) | {
            "is_baseline": bool(row.is_baseline)}
    ens = bw[bw.source == "ensemble"].sort_values("width")
    widest = ens.iloc[-1]
    f["theory"] = {
        "p_unit": float(widest.theory_p),
        "measured_unit": _share(widest, "unit", widest.unit_n),
        "by_width": {},
        "conditions": [
            {"condition": r.condition, "source": r.source,
             "theory_p": float(r.theory_p) if pd.notna(r.theory_p) else None,
             "measured": {"share": float(r.unit_share), "lo": float(r.unit_ci_low),
                          "hi": float(r.unit_ci_high)}, "theory_in_ci": bool(r.theory_in_ci)}
            for r in cond.itertuples()],
        "second_layer": {
            str(int(r.n1)): {"theory_whole_space": float(r.theory_whole_space),
                             "measured": {"share": float(r.unit_share), "lo": float(r.unit_ci_low),
                                          "hi": float(r.unit_ci_high)}}
            for r in second.itertuples()},
    }
    for r in ens.itertuples():
        f["theory"]["by_width"][str(int(r.width))] = {
            "theory_all_dead": float(r.theory_all_dead),
            "measured_all_dead": _share(r._asdict(), "all_dead", r.n_seeds)}
    for r in bw[bw.source == "trained"].itertuples():
        f["theory"]["by_width"].setdefault(str(int(r.width)), {})["trained_all_dead"] = _share(
            r._asdict(), "all_dead", r.n_seeds)
    best = [{"factor": "baseline", "value": "question", "failure_share": float(base.failure_share)}]
    best += [{"factor": r.factor, "value": str(r.value), "failure_share": float(r.failure_share)}
             for r in t[(t.factor != "baseline") & ~t.is_baseline].itertuples()]
    f["best"] = sorted(best, key=lambda d: d["failure_share"])
    bl = layers[(layers.factor == "baseline")]
    f["baseline_dead_layers"] = {
        when: {str(int(r.layer)): {"all_dead_share": float(r.all_dead_share),
                                   "mean_dead_fraction": float(r.mean_dead_fraction)}
               for r in part.itertuples()}
        for when, part in bl.groupby("when")}
    f["epochs"] = int(base.epochs)
    f["seeds"] = int(base.n)
    return f
