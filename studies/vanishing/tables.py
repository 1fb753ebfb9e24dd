"""The vanishing study's tables: tidy frames computed from its cells' results, written as CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from diagnostics import theory
from diagnostics.activations import get_activation
from diagnostics.initializers import get_initializer
from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.intervals import bootstrap_ci
from studies.stats.summaries import loss_bands, outcome_shares, proportion

from .grid import study_width

KEYS = ["run", "preset", "activation", "init", "depth"]  # label columns of every cell
BOUND_RTOL = 1e-9  # float slack when comparing a measured chain with its bound
# diagnostics.theory's names for the initialisations the closed forms are about


def safe_ratio(num, den) -> np.ndarray:
    """num/den, nan where den is 0 or missing (undefined), 0 where only num is 0."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def theory_factor(activation: str, init: str, width: int) -> float:
    """diagnostics.theory's per-layer variance factor for (activation, init), or nan."""
    try:
        return theory.backprop_variance_factor(activation, init, width)
    except ValueError:
        return math.nan


def mean_field_bound(activation: str, init: str, width: int) -> float:
    """n·Var[w]·max act'(z)²: the per-layer factor's ceiling under the independence assumption."""
    spread = get_initializer(init).variance
    if spread is None:
        return math.nan
    return width * spread(width, width) * get_activation(activation).max_grad ** 2


def he_formula(activation: str, init: str, width: int) -> float:
    """ReLU only: n·Var[w]/2, He et al. 2015's per-layer factor for any weight variance, or nan."""
    spread = get_initializer(init).variance
    if activation != "relu" or spread is None:
        return math.nan
    return width * spread(width, width) / 2.0


def wide_metrics(results: Sequence[CellResult]) -> pd.DataFrame:
    """One row per (cell, seed, epoch, layer), one column per metric, the cell's labels first.

    Pivoting on a small integer cell id and merging the labels afterwards is several times
    faster than unstacking an index that carries every label column.
    """
    frames, labels = [], []
    for i, r in enumerate(results):
        if len(r.metrics):
            frames.append(r.metrics[["seed", "epoch", "layer", "metric", "value"]].assign(cell=i))
            labels.append({"cell": i} | {k: r.labels[k] for k in KEYS})
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "seed", "epoch", "layer"])
    long = pd.concat(frames, ignore_index=True)
    key = np.zeros(len(long), dtype=np.int64)  # mixed-radix code of (cell, seed, epoch, layer)
    for col in ("cell", "seed", "epoch", "layer"):
        codes, uniques = pd.factorize(long[col])
        key = key * len(uniques) + codes
    rows, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    metric_codes, metrics = pd.factorize(long.metric)
    values = np.full((rows.size, len(metrics)), np.nan)  # (rows, metrics)
    values[inverse, metric_codes] = long.value.to_numpy()
    wide = long.iloc[firsts][["cell", "seed", "epoch", "layer"]].reset_index(drop=True)
    wide[list(metrics)] = values
    wide = pd.DataFrame(labels).merge(wide, on="cell").drop(columns="cell")
    return wide


def _quantiles(frame: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """q25, median, q75 of ``column`` over seeds (nan ignored), n rows and n_defined values."""
    g = frame.groupby(by, sort=True)[column]
    out = g.quantile([0.25, 0.5, 0.75]).unstack()
    out.columns = ["q25", "median", "q75"]
    out["n"] = g.size()
    out["n_defined"] = g.count()
    return out.reset_index()


def per_seed_chains(wide: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, seed, epoch): first/last gradient ratios and the chain-bound quantities.

    Columns: ratio_W = ‖dW_1‖/‖dW_out‖, ratio_z = ‖dz_1‖/‖dz_H‖, bound_z = max|act'|^(H−1) ·
    ∏_{l=2..H} ‖W_l‖_F (the bound on ratio_z), log10_chain = log10(‖dz_1‖ / (‖dz_out‖ ·
    ∏_{l=2..H+1} ‖W_l‖_F)), log10_bound = H·log10(max|act'|), log10_gain = Σ_l log10 gain_l.
    """
    idx = [*KEYS, "seed", "epoch"]
    w = wide.copy()
    depth = w.depth.to_numpy()
    hidden = w.layer <= depth
    with np.errstate(divide="ignore"):  # a zero norm or gain is log10 = -inf, on purpose
        w["log_w"] = np.log10(w.weight_norm.where(w.layer >= 2))
        w["log_w_hidden"] = w.log_w.where(hidden)
        w["log_gain"] = np.log10(w.gain.where(hidden)) if "gain" in w else np.nan
        sums = w.groupby(idx, sort=True)[["log_w", "log_w_hidden", "log_gain"]].sum(min_count=1)
    first = w[w.layer == 1].set_index(idx)
    last_hidden = w[w.layer == w.depth].set_index(idx)
    out_layer = w[w.layer == w.depth + 1].set_index(idx)
    frame = sums.copy()
    frame["grad_W_first"] = first.grad_norm_W
    frame["grad_W_out"] = out_layer.grad_norm_W
    frame["grad_z_first"] = first.grad_norm_z
    frame["grad_z_last"] = last_hidden.grad_norm_z
    frame["grad_z_out"] = out_layer.grad_norm_z
    frame = frame.reset_index()
    max_grad = {a: get_activation(a).max_grad for a in frame.activation.unique()}
    acts = frame.activation.map(max_grad).to_numpy(dtype=float)
    H = frame.depth.to_numpy(dtype=float)
    frame["ratio_W"] = safe_ratio(frame.grad_W_first, frame.grad_W_out)
    frame["ratio_z"] = safe_ratio(frame.grad_z_first, frame.grad_z_last)
    frame["bound_z"] = acts ** (H - 1) * 10.0 ** frame.log_w_hidden.fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chain = np.log10(frame.grad_z_first) - np.log10(frame.grad_z_out) - frame.log_w
    defined = (frame.grad_z_out > 0) & np.isfinite(frame.log_w)  # else the bound says nothing
    frame["log10_chain"] = chain.where(defined)
    frame["log10_bound"] = H * np.log10(acts)
    frame["log10_gain"] = frame.log_gain
    return frame.drop(columns=["log_w", "log_w_hidden", "log_gain"])


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    """The study's tidy tables (see the module docstring for what each measures)."""
    width = study_width(opts)
    wide = wide_metrics([r for r in results if r.labels["run"] != "question"])
    chains = per_seed_chains(wide)
    init = wide[(wide.run == "init") & (wide.epoch == 0)]
    init_chains = chains[(chains.run == "init") & (chains.epoch == 0)]
    labels = ["activation", "init", "depth"]

    long = init.melt(id_vars=[*KEYS, "seed", "epoch", "layer"],
                     value_vars=[c for c in ("grad_norm_W", "grad_norm_z", "gain",
                                             "saturation_fraction") if c in init],
                     var_name="metric").dropna(subset=["value"])
    at_init = _quantiles(long, [*labels, "layer", "metric"], "value").assign(width=width)

    ratio = pd.concat([
        _quantiles(init_chains, labels, f"ratio_{q}").assign(quantity=q) for q in ("W", "z")
    ], ignore_index=True)
    ratio["theory_factor"] = [
        theory_factor(a, i, width) if q == "z" else math.nan
        for a, i, q in zip(ratio.activation, ratio.init, ratio.quantity, strict=True)
    ]
    ratio["theory"] = ratio.theory_factor ** ((ratio.depth - 1) / 2)  # nan stays nan
    ratio.loc[ratio.theory_factor.isna(), "theory"] = np.nan
    ratio["sigmoid_bound"] = [
        float(theory.sigmoid_chain_bound(d - 1)) if (q == "z" and a == "sigmoid") else math.nan
        for a, d, q in zip(ratio.activation, ratio.depth, ratio.quantity, strict=True)
    ]
    bound = init_chains.groupby(labels).bound_z.median().rename("chain_bound_median")
    ratio = ratio.merge(bound.reset_index(), on=labels, how="left")
    ratio.loc[ratio.quantity == "W", "chain_bound_median"] = np.nan
    ratio = ratio[[*labels, "quantity", "median", "q25", "q75", "n", "n_defined", "theory_factor",
                   "theory", "sigmoid_bound", "chain_bound_median"]]

    return {
        "at_init": at_init,
        "ratio_vs_depth": ratio.sort_values([*labels, "quantity"]).reset_index(drop=True),
        "per_layer_factor": _factor_table(init, width),
        "heatmap": _heatmap_table(wide[wide.run == "train"]),
        "saturation": _saturation_table(wide),
        "chain_bound": _chain_bound_table(chains),
        "question_network": _question_table(
            concat([r for r in results if r.labels["run"] == "question"], "metrics")),
        "train_outcomes": outcome_shares(
            concat(results, "outcomes").query("run == 'train'"), labels),
        "train_loss": loss_bands(concat(results, "loss").query("run == 'train'"), labels),
    }


def _factor_table(init: pd.DataFrame, width: int) -> pd.DataFrame:
    """Per-layer factor of ‖∂L/∂z_l‖² between consecutive hidden layers, at every depth ≥ 3.

    Per seed: the geometric mean of the H − 1 consecutive ratios (median and IQR over seeds) and
    their arithmetic mean (mean over seeds with a 95% bootstrap CI; the theory's estimator).
    """
    by = ["activation", "init", "depth"]
    w = init[init.depth >= 3].sort_values([*by, "seed", "layer"])
    nxt = w.groupby([*by, "seed"], sort=False).grad_norm_z.shift(-1)
    w = w.assign(r=np.square(safe_ratio(w.grad_norm_z, nxt)))
    w = w[w.layer < w.depth]  # consecutive hidden pairs (l, l + 1), l = 1 .. H − 1
    per_seed = w.groupby([*by, "seed"], sort=True).r.mean()  # nan when every pair is undefined
    first = w[w.layer == 1].set_index([*by, "seed"]).grad_norm_z
    last = init[(init.depth >= 3) & (init.layer == init.depth)].set_index(
        [*by, "seed"]).grad_norm_z
    seeds = pd.DataFrame({"mean_r": per_seed, "first": first, "last": last}).reset_index()
    seeds["geo"] = np.power(safe_ratio(seeds["first"], seeds["last"]),
                            2.0 / (seeds.depth.to_numpy(dtype=float) - 1))
    rows = []
    for (act, ini, depth), part in seeds.groupby(by, sort=True):
        geo = part.geo.dropna().to_numpy()
        means = part.mean_r.dropna().to_numpy()
        mean, lo, hi = bootstrap_ci(means, np.mean, n_boot=1000, seed=0) if means.size else (
            math.nan, math.nan, math.nan)
        q25, med, q75 = np.quantile(geo, [0.25, 0.5, 0.75]) if geo.size else [math.nan] * 3
        rows.append({
            "activation": act, "init": ini, "depth": int(depth), "width": width,
            "measured": float(med), "q25": float(q25), "q75": float(q75),
            "mean": mean, "mean_ci_low": lo, "mean_ci_high": hi,
            "n": len(part), "n_defined": int(geo.size),
            "theory": theory_factor(act, ini, width),
            "mean_field_bound": mean_field_bound(act, ini, width),
            "he_formula": he_formula(act, ini, width),
        })
    return pd.DataFrame(rows)


def _heatmap_table(train: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds of ‖∂L/∂W_l‖, ‖∂L/∂z_l‖ and saturation per layer and recorded epoch."""
    by = ["activation", "init", "depth", "layer", "epoch"]
    cols = [c for c in ("grad_norm_W", "grad_norm_z", "saturation_fraction") if c in train]
    g = train.groupby(by, sort=True)
    out = g[cols].median()
    out["n"] = g.size()
    out = out.reset_index()
    if "saturation_fraction" not in out:
        out["saturation_fraction"] = np.nan
    return out


def _saturation_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Share of saturated (unit, sample) pairs over all hidden layers, per seed -> quantiles."""
    if "saturation_fraction" not in wide:
        return pd.DataFrame(columns=["run", "activation", "init", "depth", "epoch", "q25",
                                     "median", "q75", "n", "n_defined"])
    hidden = wide[(wide.layer <= wide.depth) & wide.saturation_fraction.notna()]
    per_seed = (hidden.groupby(["run", "activation", "init", "depth", "epoch", "seed"])
                .saturation_fraction.mean().reset_index())
    return _quantiles(per_seed, ["run", "activation", "init", "depth", "epoch"],
                      "saturation_fraction")


def _chain_bound_table(chains: pd.DataFrame) -> pd.DataFrame:
    """Per cell: how many (seed, epoch) checks obey ‖dz_1‖ ≤ max|act'|^H ∏‖W_l‖_F ‖dz_out‖."""
    c = chains.assign(slack=chains.log10_chain - chains.log10_bound)
    c = c.assign(holds=c.slack <= BOUND_RTOL, checked=c.log10_chain.notna())
    g = c.groupby(["run", "activation", "init", "depth"], sort=True)
    out = g.agg(
        checks=("checked", "sum"), holds=("holds", "sum"), bound_log10=("log10_bound", "first"),
        median_log10_chain=("log10_chain", "median"),
        max_log10_chain_over_bound=("slack", "max"),
        median_log10_gain_chain=("log10_gain", "median"),
    ).reset_index()
    return out.astype({"checks": int, "holds": int, "depth": int})


def _question_table(q: pd.DataFrame) -> pd.DataFrame:
    """First/last gradient ratios of the question's own network at initialisation.

    quantity W: ‖∂L/∂W_1‖/‖∂L/∂W_out‖ (what the updates see; it also scales with the layer's
    inputs), z: ‖∂L/∂z_1‖/‖∂L/∂z_H‖ (the back-propagated error alone, first vs last hidden).
    """
    rows = []
    if not len(q):
        return pd.DataFrame(rows)
    for (preset, act), part in q.groupby(["preset", "activation"], sort=False):
        depth = int(part.depth.iloc[0])
        pairs = (("W", "grad_norm_W", depth + 1), ("z", "grad_norm_z", depth))
        for quantity, metric, last in pairs:
            g = part[part.metric == metric].pivot(index="seed", columns="layer", values="value")
            ratio = safe_ratio(g[1], g[last])
            ok = ratio[~np.isnan(ratio)]
            share = proportion(int((ok < 1).sum()), ok.size)
            q25, med, q75 = np.quantile(ok, [0.25, 0.5, 0.75]) if ok.size else [math.nan] * 3
            rows.append({
                "preset": preset, "activation": act, "depth": depth, "quantity": quantity,
                "median": float(med), "q25": float(q25), "q75": float(q75),
                "n": len(ratio), "n_defined": int(ok.size),
                "share_below_1": share["share"], "ci_low": share["ci_low"],
                "ci_high": share["ci_high"],
            })
    return pd.DataFrame(rows)
