"""The causes study's tables: tidy frames computed from its cells' results, written as CSV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from diagnostics.presets import PRESETS
from diagnostics.train import OUTCOMES
from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.intervals import mcnemar_exact, median_ci, paired_difference
from studies.stats.summaries import (
    epochs_summary,
    outcome_shares,
    prefixed_proportion,
)

from .grid import arm_kind

VARIANT_NOTES = {
    "fix_output_activation": "also the 'identity output' remedy, so listed once",
    "momentum_true_bias": "momentum without the bias decay: tests whether momentum can revive "
                          "a zero-gradient network (relu arm only)",
    "leaky_relu": "hidden and output units leaky ReLU, slope 0.01 (relu arm only)",
}
GRADIENT_CLASSES = ("zero", "bias_only", "weights")  # where a seed's full-data gradient is != 0


def fold_change(
    variant: tuple[float, float, float], baseline: tuple[float, float, float], budget: float
) -> tuple[float, float, float, str]:
    """Ratio of medians (variant / baseline) with an interval, honest about censoring.

    Each tuple is (median, ci_low, ci_high); +inf means "not reached within ``budget``". A
    censored median is replaced by the budget, which turns the estimate into a bound:
    ``at_most`` when only the baseline is censored (the true ratio is smaller), ``at_least``
    when only the variant is, ``unknown`` (nan) when both are. The interval is
    [lo_v / hi_b, hi_v / lo_b] with censored values treated the same way (0 or inf where
    unbounded); with 97.5% intervals for each median it covers the ratio with >= 95%.
    """
    mv, lov, hiv = variant
    mb, lob, hib = baseline
    cv, cb = not math.isfinite(mv), not math.isfinite(mb)
    if cv and cb:
        effect, bound = math.nan, "unknown"
    else:
        effect = min(mv, budget) / min(mb, budget)
        bound = "at_most" if cb else ("at_least" if cv else "exact")
    lo = 0.0 if not math.isfinite(hib) else min(lov, budget) / hib
    hi = math.inf if not math.isfinite(hiv) else hiv / min(lob, budget)
    return effect, lo, hi, bound


def dead_pattern(dead_fraction: dict[int, float], n_layers: int) -> str:
    """Name the layers whose units were all dead, e.g. ``hidden 2 + output dead``.

    ``dead_fraction`` maps layer (1 = first hidden, ``n_layers`` = output) to its dead share;
    layers missing from it are not rectifiers. No entry at all: ``no dead-unit probe``.
    """
    if not dead_fraction:
        return "no dead-unit probe"
    parts = [
        "output" if layer == n_layers else f"hidden {layer}"
        for layer in sorted(dead_fraction)
        if dead_fraction[layer] >= 1.0
    ]
    if not parts:
        return "no layer all dead"
    return " + ".join(parts) + " dead"


def gradient_class(max_abs_grad: float, max_weight_grad: float) -> str:
    """``zero`` (every parameter), ``bias_only`` (every weight zero) or ``weights``."""
    if max_abs_grad == 0:
        return "zero"
    if max_weight_grad == 0:
        return "bias_only"
    return "weights"


def failure_class(outcome: str, gradient: str, constant_output: int) -> str:
    """What a failed seed looks like at the end ("" for converged or diverged seeds)."""
    if outcome not in ("stuck", "not_converged"):
        return ""
    if gradient == "zero":
        return "zero_gradient"
    return "constant_output" if constant_output else "output_varies"


def _share(k: int, n: int, prefix: str) -> dict:
    return prefixed_proportion(prefix, k, n)


LABELS = ["variant", "arm", "activation", "lr"]


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    outcomes = concat(results, "outcomes")
    metrics = concat(results, "metrics")
    cfg = {tuple(r.labels[k] for k in LABELS): r.cell.config for r in results}
    keys = [tuple(k) for k in outcomes[LABELS].itertuples(index=False)]
    outcomes["epochs"] = [cfg[k].epochs for k in keys]
    outcomes["layers"] = ["-".join(map(str, cfg[k].layers)) for k in keys]
    per_seed = _per_seed(outcomes, metrics)
    variants = _variants(outcomes)
    return {
        "variants": variants,
        "outcomes": outcome_shares(outcomes, LABELS),
        "per_seed": per_seed,
        "local_minimum": _local_minimum(per_seed),
        "dead_patterns": _dead_patterns(per_seed),
        "stuck_vs_epoch": _stuck_vs_epoch(outcomes, metrics),
        "ranking": _ranking(outcomes, variants),
    }


def _variants(outcomes: pd.DataFrame) -> pd.DataFrame:
    rows = []
    ep = epochs_summary(outcomes, LABELS).set_index(LABELS)
    for key, part in outcomes.groupby(LABELS, sort=False):
        n = len(part)
        row = dict(zip(LABELS, key, strict=True)) | {
            "epochs": int(part.epochs.iloc[0]), "layers": part.layers.iloc[0],
            "threshold": PRESETS["question"].threshold, "n": n}
        for o in OUTCOMES:
            row |= _share(int((part.outcome == o).sum()), n, o)
        row |= _share(int((part.outcome != "converged").sum()), n, "failed")
        e = ep.loc[key]
        row |= {"median": e["median"], "median_ci_low": e.median_ci_low,
                "median_ci_high": e.median_ci_high, "q25": e.q25, "q75": e.q75,
                "reached": int(e.reached), "reached_share": e.reached_share,
                "reached_ci_low": e.reached_ci_low, "reached_ci_high": e.reached_ci_high,
                "note": VARIANT_NOTES.get(key[0], "")}
        rows.append(row)
    return pd.DataFrame(rows)


def _per_seed(outcomes: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Every seed of the rectifier arms: outcome, gradient class and dead pattern at the end."""
    cols = [*LABELS, "seed", "outcome", "epochs_to_threshold", "final_loss", "max_abs_grad"]
    if not len(metrics):
        return pd.DataFrame(columns=[*cols, "max_weight_grad", "dead_at_init", "dead_at_end",
                                     "gradient", "failure", "pattern"])
    last = metrics.groupby(LABELS).epoch.transform("max")
    final, first = metrics[metrics.epoch == last], metrics[metrics.epoch == 0]
    keys = [*LABELS, "seed"]
    wgrad = final[final.metric == "grad_norm_W"].groupby(keys).value.max().rename("max_weight_grad")
    n_layers = final[final.metric == "grad_norm_W"].groupby(LABELS).layer.max()
    dead = final[final.metric == "dead_fraction"]
    dead_maps: dict[tuple, dict[int, float]] = {}
    for row in dead.itertuples(index=False):
        k = tuple(getattr(row, c) for c in keys)
        dead_maps.setdefault(k, {})[int(row.layer)] = float(row.value)

    def net_dead(frame: pd.DataFrame, name: str) -> pd.Series:
        return frame[frame.metric == "network_dead"].set_index(keys).value.rename(name)

    ps = outcomes[outcomes.arm.map(arm_kind) == "rectifier"][cols]
    ps = ps.join(wgrad, on=keys).join(net_dead(first, "dead_at_init"), on=keys)
    ps = ps.join(net_dead(final, "dead_at_end"), on=keys)
    ps["dead_at_init"] = ps.dead_at_init.fillna(0).astype(int)
    ps["dead_at_end"] = ps.dead_at_end.fillna(0).astype(int)
    ps["gradient"] = [
        gradient_class(g, w) if o != "diverged" else "diverged"
        for g, w, o in zip(ps.max_abs_grad, ps.max_weight_grad, ps.outcome, strict=True)
    ]
    ps["failure"] = [
        failure_class(o, g, d) for o, g, d in zip(ps.outcome, ps.gradient, ps.dead_at_end,
                                                  strict=True)
    ]
    ps["pattern"] = [
        dead_pattern(dead_maps.get(tuple(r), {}), int(n_layers.loc[tuple(r[:-1])]))
        for r in ps[keys].itertuples(index=False)
    ]
    return ps.reset_index(drop=True)


def _failed(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Seeds whose error never reached the threshold and did not diverge."""
    return per_seed[per_seed.outcome.isin(["stuck", "not_converged"])]


def _local_minimum(per_seed: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, part in per_seed.groupby(LABELS, sort=False):
        f = _failed(part)
        n = len(f)
        nonzero = f[f.gradient != "zero"].max_abs_grad
        row = dict(zip(LABELS, key, strict=True)) | {
            "n_seeds": len(part), "n_failed": n, "n_stuck_outcome": int((part.outcome == "stuck")
                                                                          .sum())}
        row |= _share(int((f.gradient == "zero").sum()), n, "zero_gradient")
        varies = f[f.failure == "output_varies"]
        row |= {"nonzero_gradient_count": int((f.gradient != "zero").sum()),
                "constant_output_count": int((f.failure == "constant_output").sum()),
                "output_varies_count": len(varies),
                "bias_only_count": int((f.gradient == "bias_only").sum()),
                "weights_count": int((f.gradient == "weights").sum()),
                "nonzero_max_abs_grad_median": _median(nonzero),
                "output_varies_final_loss_median": _median(varies.final_loss),
                "failed_final_loss_median": _median(f.final_loss)}
        row |= _share(int(f.dead_at_init.sum()), n, "dead_at_init")
        row["zero_gradient_dead_at_init_count"] = int(f[f.gradient == "zero"].dead_at_init.sum())
        row |= _share(int(f.dead_at_end.sum()), n, "dead_at_end")
        rows.append(row)
    return pd.DataFrame(rows)


def _median(x: pd.Series) -> float:
    return float(x.median()) if len(x) else math.nan


def _dead_patterns(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Failed seeds per variant, dead-layer pattern and gradient class."""
    f = _failed(per_seed)
    cols = [*LABELS, "pattern", "failure", "count", "dead_at_init", "share_of_failed"]
    if not len(f):
        return pd.DataFrame(columns=cols)
    g = (f.groupby([*LABELS, "pattern", "failure"], sort=False)
         .agg(count=("seed", "size"), dead_at_init=("dead_at_init", "sum")).reset_index())
    g["share_of_failed"] = g["count"] / g.groupby(LABELS)["count"].transform("sum")
    return g.sort_values([*LABELS, "count"], ascending=[True] * 4 + [False],
                         kind="stable")[cols].reset_index(drop=True)


def _stuck_vs_epoch(outcomes: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Share of seeds stuck (not yet converged, full-data gradient exactly 0) at each recording."""
    cols = [*LABELS, "epoch", "n", "stuck_count", "stuck_share", "stuck_ci_low", "stuck_ci_high",
            "revived_count"]
    if not len(metrics):
        return pd.DataFrame(columns=cols)
    keys = [*LABELS, "seed"]
    g = metrics[metrics.metric.isin(["grad_norm_W", "grad_norm_b"])]
    gmax = g.groupby([*keys, "epoch"]).value.max().rename("gmax").reset_index()
    gmax = gmax.join(outcomes.set_index(keys).epochs_to_threshold, on=keys)
    e2t = gmax.epochs_to_threshold
    gmax["stuck"] = (gmax.gmax == 0) & ((e2t < 0) | (e2t > gmax.epoch))
    gmax = gmax.sort_values([*keys, "epoch"], ignore_index=True)
    # revived: stuck at some earlier recording, not stuck now
    gmax["ever"] = gmax.groupby(keys).stuck.cummax()
    was = gmax.groupby(keys).ever.shift(fill_value=False).astype(bool)
    gmax["revived"] = was & ~gmax.stuck
    n = outcomes.groupby(LABELS).size().rename("n")
    rows = []
    for key, part in gmax.groupby([*LABELS, "epoch"], sort=True):
        total = int(n.loc[key[:-1]])
        k = int(part.stuck.sum())
        rows.append(dict(zip([*LABELS, "epoch"], key, strict=True)) | {"n": total}
                    | _share(k, total, "stuck") | {"revived_count": int(part.revived.sum())})
    return pd.DataFrame(rows, columns=cols)


def _paired_table(base: pd.DataFrame, variant: pd.DataFrame, outcome: str) -> tuple[int, ...]:
    """(bad in both, rescued, killed, bad in neither) on the seeds both ran: "bad" is ``outcome``
    (stuck, or failed = not converged); rescued = bad in the program only, killed = bad with the
    variant only."""
    def bad(part: pd.DataFrame) -> pd.Series:
        hit = part.outcome == "stuck" if outcome == "stuck" else part.outcome != "converged"
        return hit.set_axis(part.seed.to_numpy())

    b, v = bad(base), bad(variant)
    seeds = b.index.intersection(v.index)  # the same seeds: paired
    b, v = b[seeds], v[seeds]
    return (int((b & v).sum()), int((b & ~v).sum()), int((~b & v).sum()),
            int((~b & ~v).sum()))


def _ranking(outcomes: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """Effect of each variant against the faithful program on the same arm and lr."""
    rows = []
    for (arm, lr), part in variants.groupby(["arm", "lr"], sort=False):
        base = part[part.variant == "faithful"]
        if not len(base):
            continue
        b = base.iloc[0]
        kind = arm_kind(arm)
        for v in part[part.variant != "faithful"].itertuples(index=False):
            common = {"variant": v.variant, "arm": arm, "lr": lr, "vs": "faithful"}
            if kind == "rectifier":
                sel = (outcomes.arm == arm) & (outcomes.lr == lr)
                for outcome in ("stuck", "failed"):
                    both, rescued, killed, neither = _paired_table(
                        outcomes[sel & (outcomes.variant == "faithful")],
                        outcomes[sel & (outcomes.variant == v.variant)], outcome)
                    # variant minus program, on the same seeds: Newcombe's paired interval
                    d, lo, hi = paired_difference(both, rescued, killed, neither)
                    rows.append(common | {
                        "metric": f"{arm}_{outcome}", "unit": "share difference",
                        "effect": d, "ci_low": lo, "ci_high": hi, "bound": "exact",
                        "baseline": b[f"{outcome}_share"],
                        "value": getattr(v, f"{outcome}_share"), "budget": int(v.epochs),
                        "rescued": rescued, "killed": killed,
                        "mcnemar_p": mcnemar_exact(rescued, killed)})
            else:
                sel = (outcomes.arm == arm) & (outcomes.lr == lr)
                ci = {name: _median_ci97(outcomes[sel & (outcomes.variant == name)])
                      for name in ("faithful", v.variant)}
                effect, lo, hi, bound = fold_change(ci[v.variant], ci["faithful"], v.epochs)
                rows.append(common | {
                    "metric": f"{arm}_median", "unit": "fold change of median epochs",
                    "effect": effect, "ci_low": lo, "ci_high": hi, "bound": bound,
                    "baseline": b["median"], "value": v.median, "budget": int(v.epochs)})
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    out["size"] = [abs(math.log10(e)) if u.startswith("fold") and e > 0 else abs(e)
                   for e, u in zip(out.effect, out.unit, strict=True)]
    order = {m: i for i, m in enumerate(dict.fromkeys(out.metric))}  # stuck, failed, medians
    out["_order"] = out.metric.map(order)
    out = out.sort_values(["_order", "size"], ascending=[True, False], na_position="last",
                          kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _median_ci97(part: pd.DataFrame) -> tuple[float, float, float]:
    """Median epochs to threshold (+inf = never) with a 97.5% order-statistic interval."""
    e = part.epochs_to_threshold.to_numpy(dtype=float)
    return median_ci(np.where(e >= 0, e, np.inf), conf=0.975)
