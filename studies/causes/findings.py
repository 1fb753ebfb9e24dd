"""The causes study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from studies.run.study import read_table
from studies.stats.summaries import (
    read_proportion,
)

from .figures import _label
from .grid import ARMS, LR
from .tables import VARIANT_NOTES


def _prop(row, prefix: str) -> dict:
    return read_proportion(row, prefix, row["n"] if "n" in row else row["n_failed"])


_NAN_PROP = {"share": math.nan, "lo": math.nan, "hi": math.nan, "count": 0, "n": 0}
_NAN_MED = {"median": math.nan, "lo": math.nan, "hi": math.nan, "reached": 0, "n": 0,
            "budget": 0}


def _arm_row(v: pd.DataFrame, variant: str, arm: str) -> pd.Series | None:
    """The variant's row on ``arm`` at the arm's default lr (else its smallest lr)."""
    part = v[(v.variant == variant) & (v.arm == arm)]
    if not len(part):
        return None
    at = part[np.isclose(part.lr, LR.get(arm, part.lr.min()))]
    return (at if len(at) else part.sort_values("lr")).iloc[0]


def findings(tables_dir: Path) -> dict:
    v = read_table(tables_dir, "variants")
    lm = read_table(tables_dir, "local_minimum")
    pat = read_table(tables_dir, "dead_patterns")
    rank = read_table(tables_dir, "ranking")
    sve = read_table(tables_dir, "stuck_vs_epoch")
    f: dict = {"variants": {}, "notes": dict(VARIANT_NOTES)}
    for variant in dict.fromkeys(v.variant):
        entry = {}
        relu = _arm_row(v, variant, "relu")
        entry["relu_stuck"] = _prop(relu, "stuck") if relu is not None else dict(_NAN_PROP)
        entry["relu_converged"] = (_prop(relu, "converged") if relu is not None
                                   else dict(_NAN_PROP))
        entry["relu_failed"] = _prop(relu, "failed") if relu is not None else dict(_NAN_PROP)
        for arm in ("tanh", "sigmoid"):
            r = _arm_row(v, variant, arm)
            entry[f"{arm}_median"] = dict(_NAN_MED) if r is None else {
                "median": float(r["median"]), "lo": float(r.median_ci_low),
                "hi": float(r.median_ci_high), "reached": int(r.reached), "n": int(r.n),
                "budget": int(r.epochs)}
        entry["label"] = _label(variant)
        f["variants"][variant] = entry
    f["local_minimum"] = _local_minimum_findings(lm, pat, "faithful")
    f["local_minimum_by_variant"] = {
        variant: _local_minimum_findings(lm, pat, variant) for variant in dict.fromkeys(lm.variant)
    }
    momentum = f["variants"].get("momentum", {}).get("relu_stuck", dict(_NAN_PROP))
    faithful = f["variants"].get("faithful", {}).get("relu_stuck", dict(_NAN_PROP))
    diff = rank[(rank.variant == "momentum") & (rank.metric == "relu_stuck")]
    f["momentum"] = {
        "relu_stuck": momentum,
        "faithful_relu_stuck": faithful,
        "difference": ({"effect": float(diff.effect.iloc[0]), "lo": float(diff.ci_low.iloc[0]),
                        "hi": float(diff.ci_high.iloc[0])} if len(diff)
                       else {"effect": math.nan, "lo": math.nan, "hi": math.nan}),
        "true_bias_relu_stuck": f["variants"].get("momentum_true_bias", {}).get(
            "relu_stuck", dict(_NAN_PROP)),
        "revived_after_zero_gradient": _revived(sve),
    }
    f["ranking"] = [
        {"variant": r.variant, "metric": r.metric, "effect": float(r.effect),
         "lo": float(r.ci_low), "hi": float(r.ci_high), "bound": r.bound}
        for r in rank.itertuples(index=False)
    ]
    f["stability"] = _stability(sve)
    f["epochs_budget"] = {arm: _budget_of(v, arm) for arm in ARMS}
    f["seeds"] = {arm: _seeds_of(v, arm) for arm in ARMS}
    f["threshold"] = float(v.threshold.iloc[0]) if len(v) else math.nan
    return f


def _local_minimum_findings(lm: pd.DataFrame, pat: pd.DataFrame, variant: str) -> dict:
    """Failed seeds (never reached the threshold, not diverged) of one variant's relu arm."""
    row = lm[(lm.variant == variant) & (lm.arm == "relu")]
    if not len(row):
        row = lm[lm.variant == variant]
    if not len(row):
        return {"stuck": 0, "zero_gradient": 0, "nonzero_gradient": 0, "zero_share": math.nan,
                "zero_lo": math.nan, "zero_hi": math.nan, "dead_at_init": 0, "patterns": {},
                "constant_output": 0, "output_varies": 0, "bias_only_gradient": 0,
                "weights_gradient": 0, "stuck_outcome": 0}
    r = row.iloc[0]
    p = pat[(pat.variant == variant) & (pat.arm == r.arm) & (pat.lr == r.lr)]
    patterns = {str(k): int(c) for k, c in p.groupby("pattern")["count"].sum()
                .sort_values(ascending=False).items()}
    return {
        "population": "seeds that never reached the threshold and did not diverge",
        "stuck": int(r.n_failed),
        "stuck_outcome": int(r.n_stuck_outcome),
        "zero_gradient": int(r.zero_gradient_count),
        "nonzero_gradient": int(r.nonzero_gradient_count),
        "constant_output": int(r.constant_output_count),
        "output_varies": int(r.output_varies_count),
        "output_varies_final_loss_median": float(r.output_varies_final_loss_median),
        "bias_only_gradient": int(r.bias_only_count),
        "weights_gradient": int(r.weights_count),
        "nonzero_max_abs_grad_median": float(r.nonzero_max_abs_grad_median),
        "zero_share": float(r.zero_gradient_share),
        "zero_lo": float(r.zero_gradient_ci_low),
        "zero_hi": float(r.zero_gradient_ci_high),
        "dead_at_init": int(r.dead_at_init_count),
        "zero_gradient_dead_at_init": int(r.zero_gradient_dead_at_init_count),
        "dead_at_end": int(r.dead_at_end_count),
        "patterns": patterns,
        "n_seeds": int(r.n_seeds),
    }


def _revived(sve: pd.DataFrame) -> dict:
    """Per variant: seeds that had an exactly-zero gradient at a recording and not at the end."""
    out = {}
    for variant, part in sve.groupby("variant", sort=False):
        last = part[part.epoch == part.epoch.max()]
        out[variant] = int(last.revived_count.sum())
    return out


def _stability(sve: pd.DataFrame) -> dict:
    """Stuck share at the middle recording vs at the end, per variant (relu arm)."""
    out = {}
    for variant, part in sve.groupby("variant", sort=False):
        end = int(part.epoch.max())
        mid_rows = part[part.epoch == end // 2]
        mid = mid_rows.iloc[0] if len(mid_rows) else part.iloc[len(part) // 2]
        last = part[part.epoch == end].iloc[0]
        out[variant] = {"epoch_mid": int(mid.epoch), "share_mid": float(mid.stuck_share),
                        "epoch_end": end, "share_end": float(last.stuck_share),
                        "count_mid": int(mid.stuck_count), "count_end": int(last.stuck_count)}
    return out


def _budget_of(v: pd.DataFrame, arm: str) -> int:
    part = v[v.arm == arm]
    return int(part.epochs.max()) if len(part) else 0


def _seeds_of(v: pd.DataFrame, arm: str) -> int:
    part = v[v.arm == arm]
    return int(part.n.min()) if len(part) else 0
