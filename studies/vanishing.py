"""Study ``vanishing``: do gradients vanish with depth, and does the question's network have that?

Networks of 1 to 20 hidden layers of fixed width (16) on the question's data, per activation
(relu, tanh, sigmoid) and weight initialisation (standard normal, the question's; Xavier normal;
He normal; LeCun uniform U(±1/√fan_in), Glorot & Bengio's "tanh with U(±1/√n)" case). Biases are
N(0, 1) with the standard normal initialisation, as in the question, and zero with the scaled
ones. Training uses the ``fixed`` preset's rules: true bias gradients, back-propagation through
the weights that produced the output, and an identity output unit, so the output layer cannot
mask what happens in the hidden layers.

What is measured, through the Monitor's full-dataset passes:

- at initialisation (one cell per depth, 200 seeds, epoch 0 only): ‖∂L/∂W_l‖ and ‖∂L/∂z_l‖ per
  layer; the first-to-last ratios ‖∂L/∂W_1‖/‖∂L/∂W_out‖ and ‖∂L/∂z_1‖/‖∂L/∂z_H‖ (H hidden
  layers) against depth; the per-layer factor of ‖∂L/∂z_l‖² between consecutive hidden layers,
  against the closed forms in ``diagnostics.theory`` (tanh with U(±1/√n): 1/3; ReLU with Xavier:
  1/2; ReLU with He: 1);
- during training (depth 20, 32 seeds, 120 epochs of online SGD at lr 0.01 as in the fixed
  preset): layer × epoch medians of ‖∂L/∂W_l‖ and of the saturated share of (unit, sample) pairs;
- the chain bound ‖∂L/∂z_1‖ ≤ max|act'|^H · ∏_{l≥2} ‖W_l‖_F · ‖∂L/∂z_out‖, i.e. (1/4)^H for
  sigmoid, checked on every seed at every recorded epoch;
- the first-to-last ratio of the question's own network (2-4-4-1, standard normal, its own
  output activation; and with the fixed preset's identity output) at initialisation.

Options: --layers sets the width (its first hidden size) and adds its depth to the grid and is
the "question network"; --activations, --seeds (every cell), --epochs (training), --lrs (the
first is the training rate), --data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from diagnostics import theory
from diagnostics.activations import get_activation
from diagnostics.presets import PRESETS

from . import plots
from .base import StudyOptions, read_table
from .runner import Cell, CellResult, concat
from .stats import bootstrap_ci
from .summaries import loss_bands, outcome_shares, proportion

NAME = "vanishing"
TITLE = (
    "Vanishing gradients with depth: per-layer gradients at initialisation and in training "
    "(fixed preset: true gradients, identity output)"
)
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("standard_normal", "xavier_normal", "he_normal", "lecun_uniform")
DEPTHS = (1, 2, 4, 6, 8, 12, 16, 20)  # hidden layers, at initialisation
QUICK_DEPTHS = (1, 2, 4, 8, 20)
WIDTH = 16  # units per hidden layer
TRAIN_DEPTHS = (20,)  # hidden layers of the trained networks
QUICK_TRAIN_DEPTHS = (8,)
QUESTION_HIDDEN = (4, 4)  # the question's hidden layers
KEYS = ["run", "preset", "activation", "init", "depth"]  # label columns of every cell
INIT_PROBES = "grad_norm_W,grad_norm_z,saturation_fraction,gain,weight_norm"
TRAIN_PROBES = "grad_norm_W,grad_norm_z,saturation_fraction,gain,weight_norm,loss"
TRAIN_RECORDS = 24  # at most this many log-spaced recordings per training run (plus epoch 0)
CLIP = 0.01  # the gradient heatmaps' colour range: these quantiles of all plotted values
ZERO_CMAP = ListedColormap(["0.55"])  # cells whose median gradient is exactly zero
BOUND_RTOL = 1e-9  # float slack when comparing a measured chain with its bound

# diagnostics.theory's names for the initialisations the closed forms are about
THEORY_INIT = {
    "lecun_uniform": "uniform_1_over_sqrt_n", "xavier_normal": "xavier", "he_normal": "he",
}
# Var[w] of each initialisation, as a function of (fan_in, fan_out)
WEIGHT_VARIANCE: dict[str, Callable[[int, int], float]] = {
    "standard_normal": lambda i, o: 1.0,
    "xavier_normal": lambda i, o: 2.0 / (i + o),
    "he_normal": lambda i, o: 2.0 / i,
    "lecun_uniform": lambda i, o: 1.0 / (3.0 * i),
}
INIT_LABEL = {
    "standard_normal": "N(0,1) (question)", "xavier_normal": "Xavier normal",
    "he_normal": "He normal", "lecun_uniform": "U(±1/√n)",
}
INIT_STYLE = {
    "standard_normal": "-", "xavier_normal": "--", "he_normal": ":", "lecun_uniform": "-.",
}


# ---- the grid ------------------------------------------------------------------------------


def _bias_init(init: str) -> str:
    """Normal biases with the question's N(0, 1) weights, zero with the scaled ones."""
    return "normal" if init == "standard_normal" else "zero"


def _shape(n_in: int, n_out: int, width: int, depth: int) -> tuple[int, ...]:
    """Layer sizes: inputs, ``depth`` hidden layers of ``width``, outputs."""
    return (n_in, *([width] * depth), n_out)


def study_width(opts: StudyOptions) -> int:
    """Hidden width: the user's first hidden layer size, else 16."""
    return int(opts.layers[1]) if opts.layers and len(opts.layers) > 2 else WIDTH


def study_depths(opts: StudyOptions) -> list[int]:
    """Depths at initialisation: the default grid plus the user's own depth if given."""
    depths = set(QUICK_DEPTHS if opts.quick else DEPTHS)
    if opts.layers and len(opts.layers) > 2:
        depths.add(len(opts.layers) - 2)
    return sorted(depths)


def cells(opts: StudyOptions) -> list[Cell]:
    """At-init cells (every activation × init × depth), training cells, question-network cells."""
    seeds = opts.pick("seeds", 200, 30)
    train_seeds = opts.pick("seeds", 32, 10)
    epochs = opts.pick("epochs", 120, 10)
    width = study_width(opts)
    n_in, n_out = opts.io_shape()
    acts = opts.pick("activations", ACTIVATIONS)
    lr = opts.lrs[0] if opts.lrs else PRESETS["fixed"].lr
    fixed = PRESETS["fixed"]
    out = []
    for act in acts:
        for init in INITS:
            for depth in study_depths(opts):
                out.append(Cell(
                    NAME, (("run", "init"), ("preset", "fixed"), ("activation", act),
                           ("init", init), ("depth", depth)),
                    fixed.replace(layers=_shape(n_in, n_out, width, depth), activation=act,
                                  init=init, bias_init=_bias_init(init), epochs=1, batch="full"),
                    (0, seeds), loss_every="none", record=INIT_PROBES, record_every="list:0",
                    **opts.data_kwargs(),
                ))
    for act in acts:
        for init in INITS:
            for depth in QUICK_TRAIN_DEPTHS if opts.quick else TRAIN_DEPTHS:
                out.append(Cell(
                    NAME, (("run", "train"), ("preset", "fixed"), ("activation", act),
                           ("init", init), ("depth", depth)),
                    fixed.replace(layers=_shape(n_in, n_out, width, depth), activation=act,
                                  init=init, bias_init=_bias_init(init), epochs=epochs, lr=lr),
                    (0, train_seeds), loss_every="log:40", record=TRAIN_PROBES,
                    record_every=f"log:{TRAIN_RECORDS}", **opts.data_kwargs(),
                ))
    q_layers = opts.layers if opts.layers else (n_in, *QUESTION_HIDDEN, n_out)
    for preset in ("question", "fixed"):
        for act in acts:
            out.append(Cell(
                NAME, (("run", "question"), ("preset", preset), ("activation", act),
                       ("init", "standard_normal"), ("depth", len(q_layers) - 2)),
                PRESETS[preset].replace(layers=tuple(q_layers), activation=act, epochs=1),
                (0, seeds), loss_every="none", record="grad_norm_W,grad_norm_z",
                record_every="list:0",
                **opts.data_kwargs(),
            ))
    return out


# ---- tables --------------------------------------------------------------------------------


def safe_ratio(num, den) -> np.ndarray:
    """num/den, nan where den is 0 or missing (undefined), 0 where only num is 0."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def theory_factor(activation: str, init: str) -> float:
    """diagnostics.theory's per-layer variance factor for (activation, init), or nan."""
    try:
        return theory.backprop_variance_factor(activation, THEORY_INIT.get(init, init))
    except ValueError:
        return math.nan


def mean_field_bound(activation: str, init: str, width: int) -> float:
    """n·Var[w]·max act'(z)²: the per-layer factor's ceiling under the independence assumption."""
    if init not in WEIGHT_VARIANCE:
        return math.nan
    return width * WEIGHT_VARIANCE[init](width, width) * get_activation(activation).max_grad ** 2


def he_formula(activation: str, init: str, width: int) -> float:
    """ReLU only: n·Var[w]/2, He et al. 2015's per-layer factor for any weight variance, or nan."""
    if activation != "relu" or init not in WEIGHT_VARIANCE:
        return math.nan
    return width * WEIGHT_VARIANCE[init](width, width) / 2.0


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
        theory_factor(a, i) if q == "z" else math.nan
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
            "theory": theory_factor(act, ini),
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


# ---- figures (from the CSV files only) -----------------------------------------------------


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """Ratio vs depth, per-layer profile, per-layer factor, gradient and saturation heatmaps."""
    return [
        _ratio_figure(tables_dir, out_dir),
        _profile_figure(tables_dir, out_dir),
        _factor_figure(tables_dir, out_dir),
        _heatmap_figure(tables_dir, out_dir, "grad_norm_W"),
        _heatmap_figure(tables_dir, out_dir, "saturation_fraction"),
    ]


def _ordered(names: Sequence[str], order: Sequence[str]) -> list[str]:
    """The distinct names, those in ``order`` first and in that order."""
    present = list(dict.fromkeys(names))
    return [n for n in order if n in present] + [n for n in present if n not in order]


def _series(ax, x, lo, mid, hi, *, color: str, style: str, label: str) -> None:
    """Median line (with the init's line style) and its interquartile band."""
    ax.fill_between(x, plots.positive(lo), plots.positive(hi), color=color, alpha=0.12,
                    linewidth=0)
    ax.plot(x, plots.positive(mid), color=color, linestyle=style, linewidth=1.7, label=label,
            marker="o", markersize=2.5)


def _fraction(f: float) -> str:
    """1/3 for 0.333…, 0.5 -> 1/2, 1 -> 1, else 3 significant digits."""
    for d in (1, 2, 3, 4, 6, 8, 16, 48):
        if abs(f * d - round(f * d)) < 1e-9 and round(f * d) >= 1:
            n = int(round(f * d))
            return f"{n}" if d == 1 else f"{n}/{d}"
    return f"{f:.3g}"


def _panels(nrows: int, ncols: int, *, panel: tuple[float, float], left: float, right: float,
            top: float, bottom: float, wgap: float, hgap: float, **kw):
    """A grid of panels with margins in inches (right: room for a legend or colour bar).

    A fixed layout rather than plots.figure's constrained one, which doubled these figures'
    drawing time; the margins are sized for their labels and legends.
    """
    width = left + ncols * panel[0] + (ncols - 1) * wgap + right
    height = top + nrows * panel[1] + (nrows - 1) * hgap + bottom
    fig, axes = plots.plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=wgap / panel[0], hspace=hgap / panel[1])
    return fig, axes


def _row_legend(axes_row) -> None:
    """One legend right of a row of panels: measured series first, then theory lines."""
    entries: dict[str, object] = {}
    for ax in axes_row:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(lab, h)
    order = sorted(entries, key=lambda lab: lab.startswith("theory"))
    axes_row[-1].legend([entries[k] for k in order], order, loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                        title="line style = initialisation", fontsize=7.5, title_fontsize=8)


def _ratio_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "ratio_vs_depth")
    acts = _ordered(t.activation, ACTIVATIONS)
    n = int(t.n.max())
    fig, axes = _panels(len(acts), 2, panel=(3.6, 2.4), left=1.05, right=3.0, top=1.05,
                        bottom=0.55, wgap=1.2, hgap=0.75)
    quantities = {
        "W": "‖∂L/∂W_1‖ / ‖∂L/∂W_out‖\n(first layer vs output layer)",
        "z": "‖∂L/∂z_1‖ / ‖∂L/∂z_H‖\n(first vs last hidden layer)",
    }
    for row, act in enumerate(acts):
        for col, (q, ylabel) in enumerate(quantities.items()):
            ax = axes[row, col]
            part = t[(t.activation == act) & (t.quantity == q)]
            for init in _ordered(part.init, INITS):
                p = part[part.init == init].sort_values("depth")
                _series(ax, p.depth, p.q25, p["median"], p.q75, color=plots.color(act),
                        style=INIT_STYLE.get(init, "-"), label=f"{INIT_LABEL.get(init, init)}")
                if p.theory.notna().any():
                    ax.plot(p.depth, p.theory, color="black", linewidth=1.1,
                            linestyle=INIT_STYLE.get(init, "-"),
                            label=f"theory, {INIT_LABEL.get(init, init)}: ‖∂L/∂z‖² × "
                                  f"{_fraction(p.theory_factor.iloc[0])} per layer")
            if q == "z" and part.sigmoid_bound.notna().any():
                p = part.drop_duplicates("depth").sort_values("depth")
                ax.plot(p.depth, p.sigmoid_bound, color="0.45", linewidth=1.3,
                        linestyle=(0, (1, 1)),
                        label="theory: (1/4)^(H−1), sigmoid derivative chain\n"
                              "(times ∏‖W_l‖, which the line leaves out)")
            ax.axhline(1.0, color="0.6", linewidth=0.7)
            ax.set_yscale("log")
            ax.set_xlabel("hidden layers H (width fixed)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(f"{act}", color=plots.color(act), fontweight="bold")
        _row_legend(axes[row])
    fig.suptitle("First-to-last gradient ratio at initialisation vs depth: median (line) and "
                 f"interquartile band over {n} seeds\nbelow 1 = the first layer gets a smaller "
                 "gradient than the last; black = theory (Glorot & Bengio 2010; He et al. 2015),\n"
                 "which is about the mean of ‖∂L/∂z‖²: the median of a product of random "
                 "per-layer factors lies somewhat below it")
    return plots.save(fig, out_dir / "ratio_vs_depth.png")


def _profile_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "at_init")
    factors = read_table(tables_dir, "per_layer_factor")
    depth = int(t.depth.max())
    t = t[t.depth == depth]
    acts = _ordered(t.activation, ACTIVATIONS)
    n = int(t.n.max())
    fig, axes = _panels(len(acts), 2, panel=(3.6, 2.4), left=1.05, right=3.25, top=0.85,
                        bottom=0.75, wgap=1.2, hgap=0.95)
    metrics = {"grad_norm_z": "‖∂L/∂z_l‖ (back-propagated error)",
               "grad_norm_W": "‖∂L/∂W_l‖ (weight gradient)"}
    for row, act in enumerate(acts):
        for col, (metric, ylabel) in enumerate(metrics.items()):
            ax = axes[row, col]
            part = t[(t.activation == act) & (t.metric == metric)]
            for init in _ordered(part.init, INITS):
                p = part[part.init == init].sort_values("layer")
                _series(ax, p.layer, p.q25, p["median"], p.q75, color=plots.color(act),
                        style=INIT_STYLE.get(init, "-"), label=INIT_LABEL.get(init, init))
                if metric != "grad_norm_z":
                    continue
                f = factors[(factors.activation == act) & (factors.init == init)
                            & (factors.depth == depth)]
                anchor = p[p.layer == depth]["median"]
                if not len(f) or not len(anchor):
                    continue
                layers = np.arange(1, depth + 1)
                if np.isfinite(f.theory.iloc[0]):
                    ax.plot(layers, anchor.iloc[0] * f.theory.iloc[0] ** ((depth - layers) / 2),
                            color="black", linewidth=1.1, linestyle=INIT_STYLE.get(init, "-"),
                            label=f"theory slope, {INIT_LABEL.get(init, init)}: "
                                  f"‖∂L/∂z‖² × {_fraction(f.theory.iloc[0])} per layer")
                elif act == "sigmoid" and init == "xavier_normal":
                    b = f.mean_field_bound.iloc[0]
                    ax.plot(layers, anchor.iloc[0] * b ** ((depth - layers) / 2), color="0.45",
                            linewidth=1.3, linestyle=(0, (1, 1)),
                            label=f"theory bound, {INIT_LABEL[init]}: σ' ≤ 1/4, n·Var[w] = 1"
                                  f"\n→ ‖∂L/∂z‖² × at most {_fraction(b)} per layer")
            ax.axvline(depth + 0.5, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_yscale("log")
            ax.set_xlabel(f"layer l\n(1 = next to the inputs, {depth + 1} = output)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(act, color=plots.color(act), fontweight="bold")
        _row_legend(axes[row])
    fig.suptitle(f"Per-layer gradient norms at initialisation, {depth} hidden layers: median and "
                 f"interquartile band over {n} seeds\nblack = theory slope anchored at the last "
                 "hidden layer; dotted vertical line = hidden | output")
    return plots.save(fig, out_dir / "per_layer_profile.png")


def _factor_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "per_layer_factor")
    fig, ax = plots.figure(width=10.0, height=4.8)
    legend: dict[str, Line2D] = {}

    def mark(x, y, label: str, **style) -> None:
        if np.isfinite(x):
            ax.plot(x, y, linestyle="none", **style)
            legend.setdefault(label, Line2D([], [], linestyle="none", **style))

    if len(t):
        depth = int(t.depth.max())
        t = t[t.depth == depth]
        rows = [(a, i) for a in _ordered(t.activation, ACTIVATIONS)
                for i in _ordered(t[t.activation == a].init, INITS)]
        for y, (act, init) in enumerate(rows):
            r = t[(t.activation == act) & (t.init == init)].iloc[0]
            c = plots.color(act)
            ax.plot([r.q25, r.q75], [y + 0.15] * 2, color=c, linewidth=2.5, alpha=0.6)
            mark(r.measured, y + 0.15, "measured: median over seeds (bar: IQR)", marker="o",
                 color=c, markersize=6)
            ax.plot([r.mean_ci_low, r.mean_ci_high], [y - 0.15] * 2, color=c, linewidth=1.2)
            mark(r["mean"], y - 0.15, "measured: mean of per-layer ratios (bar: 95% CI)",
                 marker="s", mfc="white", color=c, markersize=5)
            mark(r.he_formula, y, "He et al. formula n·Var[w]/2 (ReLU, any init)",
                 marker="P", mfc="white", color="black", markersize=9)
            mark(r.theory, y, "theory (Glorot & Bengio 2010; He et al. 2015)", marker="X",
                 color="black", markersize=7)
            mark(r.mean_field_bound, y, "ceiling n·Var[w]·max act'² (independence assumption)",
                 marker="|", color="0.4", markersize=14, markeredgewidth=2)
        ax.set_yticks(range(len(rows)), [f"{a} / {INIT_LABEL.get(i, i)}" for a, i in rows])
        for label, (a, _) in zip(ax.get_yticklabels(), rows, strict=True):
            label.set_color(plots.color(a))
        ax.invert_yaxis()
        ax.set_title(f"Per-layer factor of ‖∂L/∂z_l‖² at initialisation ({depth} hidden layers, "
                     f"width {int(t.width.iloc[0])}, {int(t.n.max())} seeds)\n"
                     "below 1: the back-propagated error shrinks layer by layer towards the inputs")
    ax.axvline(1.0, color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("‖∂L/∂z_l‖² / ‖∂L/∂z_(l+1)‖² between consecutive hidden layers (ratio)")
    ax.legend(list(legend.values()), list(legend), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)
    return plots.save(fig, out_dir / "per_layer_factor.png")


def _heatmap_figure(tables_dir: Path, out_dir: Path, column: str) -> Path:
    t = read_table(tables_dir, "heatmap")
    outcomes = read_table(tables_dir, "train_outcomes")
    saturation = column == "saturation_fraction"
    name = "heatmap_saturation.png" if saturation else "heatmap_grad.png"
    t = t[t[column].notna()]
    if not len(t):
        fig, ax = plots.figure(width=6.4, height=2.0)
        ax.set_axis_off()
        ax.text(0.5, 0.5, "nothing to show: saturation is measured for saturating activations "
                "(tanh, sigmoid, ...)\nonly, and none was trained in this run" if saturation
                else "nothing to show: no training run was recorded", ha="center",
                va="center", transform=ax.transAxes)
        return plots.save(fig, out_dir / name)
    depth = int(t.depth.max())
    t = t[t.depth == depth]
    acts = _ordered(t.activation, ACTIVATIONS)
    inits = _ordered(t.init, INITS)
    epochs = np.sort(t.epoch.unique())  # one column per recording, shared by every panel
    nrows, ncols = max(len(acts), 1), max(len(inits), 1)
    fig, axes = _panels(nrows, ncols, panel=(3.0, 2.1), left=0.7, right=1.6, top=0.6,
                        bottom=0.55, wgap=0.12, hgap=0.45, sharex=True, sharey=True)
    values = t[column].to_numpy(dtype=float) * (100.0 if saturation else 1.0)
    if saturation:
        top = max(10.0, math.ceil(np.nanmax(values) / 10.0) * 10.0) if values.size else 100.0
        norm, cmap = Normalize(0.0, top), plots.plt.get_cmap("magma_r").with_extremes(bad="white")
        clipped = False
    else:
        positive = values[values > 0]
        low, top = (np.quantile(positive, [CLIP, 1.0 - CLIP]) if positive.size else (0.1, 1.0))
        norm = LogNorm(low, max(top, low * 10.0))
        clipped = bool(positive.size) and (positive.min() < low or positive.max() > top)
        cmap = plots.plt.get_cmap("viridis").with_extremes(bad=(0, 0, 0, 0))
    image = None
    for r, act in enumerate(acts):
        for c, init in enumerate(inits):
            ax = axes[r, c]
            ax.grid(False)
            p = t[(t.activation == act) & (t.init == init)]
            if not len(p):
                ax.set_axis_off()
                continue
            m = p.pivot(index="layer", columns="epoch", values=column).reindex(columns=epochs)
            m = m.reindex(range(1, int(m.index.max()) + 1))
            data = m.to_numpy(dtype=float) * (100.0 if saturation else 1.0)  # (layers, epochs)
            extent = (-0.5, len(epochs) - 0.5, 0.5, data.shape[0] + 0.5)
            image = ax.imshow(np.ma.masked_invalid(np.where(data > 0, data, np.nan))
                              if not saturation else np.ma.masked_invalid(data),
                              aspect="auto", origin="lower", interpolation="nearest",
                              norm=norm, cmap=cmap, extent=extent)
            if not saturation and (data == 0).any():  # exact zeros in their own colour
                ax.imshow(np.ma.masked_where(data != 0, np.ones_like(data)), aspect="auto",
                          origin="lower", interpolation="nearest", cmap=ZERO_CMAP,
                          extent=extent)
            if saturation:
                ax.text(0.97, 0.96, f"highest cell {np.nanmax(data):.1f}%",
                        transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
                        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.5"})
            o = outcomes[(outcomes.activation == act) & (outcomes.init == init)
                         & (outcomes.depth == depth) & (outcomes.outcome == "diverged")]
            if len(o) and o["count"].iloc[0] > 0:
                ax.text(0.97, 0.04, f"diverged: {int(o['count'].iloc[0])}/{int(o.n.iloc[0])} "
                        "seeds\n(white: none left)", transform=ax.transAxes, ha="right",
                        va="bottom", fontsize=7.5, bbox={"facecolor": "white", "alpha": 0.85,
                                                        "edgecolor": "0.5"})
            ax.set_title(f"{act} / {INIT_LABEL.get(init, init)}", color=plots.color(act))
            if r == len(acts) - 1:
                ax.set_xlabel("epoch (log-spaced recordings)")
            if c == 0:
                ax.set_ylabel("layer (1 = inputs side)")
    ticks = np.unique(np.linspace(0, max(len(epochs) - 1, 0), 6).round().astype(int))
    axes[-1, 0].set_xticks(ticks, [f"{int(epochs[i])}" for i in ticks] if len(epochs) else [])
    if image is not None:
        label = ("median share of saturated (unit, sample) pairs (%)\n"
                 "saturated: act'(z) < 1% of its maximum") if saturation else (
            "median ‖∂L/∂W_l‖ (Frobenius norm, mean squared error)\n"
            f"grey = exactly 0; colours clipped at the {CLIP:.0%} and {1 - CLIP:.0%} quantiles")
        box = axes[-1, -1].get_position()
        cax = fig.add_axes((box.x1 + 0.015, 0.15, 0.012, 0.7))
        fig.colorbar(image, cax=cax, label=label,
                     extend="both" if not saturation and clipped else "neither")
    what = "saturated share" if saturation else "weight-gradient norm"
    n = int(t.n.max()) if len(t) else 0
    fig.suptitle(f"{what.capitalize()} per layer during training, {depth} hidden layers, median "
                 f"over {n} seeds (online SGD, fixed preset)")
    return plots.save(fig, out_dir / name)


# ---- findings (from the CSV files only) ----------------------------------------------------


def _key(activation: str, init: str) -> str:
    """The findings' key of an (activation, init) pair."""
    return f"{activation}/{init}"


def findings(tables_dir: Path) -> dict:
    """The numbers the report quotes, from the CSV tables only.

    Keys: width, depths, seeds_init, trained_depth, train_epochs, seeds_train; ratio and ratio_z
    ({"act/init": {"depth": {median, q25, q75, n_defined}}}: ‖∂L/∂W_1‖/‖∂L/∂W_out‖ and
    ‖∂L/∂z_1‖/‖∂L/∂z_H‖ at initialisation); factor ({"act/init": {measured, q25, q75, theory,
    mean, mean_ci_low, mean_ci_high, mean_field_bound, depth}} at the deepest depth);
    chain_bound ({act: {checks, violations, max_log10_chain_over_bound}}); sigmoid_bound_holds
    (True/False, None without sigmoid); saturation ({"act/init": {initial, final, depth,
    final_epoch}}, medians over seeds of the hidden layers' saturated share, trained depth);
    question_network and question_network_fixed ({act: median ‖∂L/∂W_1‖/‖∂L/∂W_out‖} of the
    question's own network, own output activation / identity output); question_network_z
    ({act: median ‖∂L/∂z_1‖/‖∂L/∂z_H‖}, own output activation); question_network_detail
    ({"preset/act/quantity": {median, q25, q75, n, n_defined, share_below_1, ci_low, ci_high}}).
    """
    ratio = read_table(tables_dir, "ratio_vs_depth")
    factor = read_table(tables_dir, "per_layer_factor")
    at_init = read_table(tables_dir, "at_init")
    chain = read_table(tables_dir, "chain_bound")
    saturation = read_table(tables_dir, "saturation")
    question = read_table(tables_dir, "question_network")
    heat = read_table(tables_dir, "heatmap")
    f: dict = {
        "width": int(at_init.width.iloc[0]),
        "depths": sorted(int(d) for d in ratio.depth.unique()),
        "seeds_init": int(ratio.n.max()),
        "trained_depth": int(heat.depth.max()) if len(heat) else None,
        "train_epochs": int(heat.epoch.max()) if len(heat) else None,
        "seeds_train": int(heat.n.max()) if len(heat) else None,
        "ratio": {}, "ratio_z": {}, "factor": {}, "saturation": {}, "chain_bound": {},
    }
    for r in ratio.itertuples():
        target = f["ratio"] if r.quantity == "W" else f["ratio_z"]
        target.setdefault(_key(r.activation, r.init), {})[str(int(r.depth))] = {
            "median": r.median, "q25": r.q25, "q75": r.q75, "n_defined": int(r.n_defined)}
    if len(factor):
        top = factor[factor.depth == factor.depth.max()]
        for r in top.itertuples():
            f["factor"][_key(r.activation, r.init)] = {
                "measured": r.measured, "q25": r.q25, "q75": r.q75, "theory": r.theory,
                "mean": r.mean, "mean_ci_low": r.mean_ci_low, "mean_ci_high": r.mean_ci_high,
                "mean_field_bound": r.mean_field_bound, "depth": int(r.depth)}
    for act, part in chain.groupby("activation"):
        f["chain_bound"][act] = {
            "checks": int(part.checks.sum()), "violations": int((part.checks - part.holds).sum()),
            "max_log10_chain_over_bound": float(part.max_log10_chain_over_bound.max())}
    sig = f["chain_bound"].get("sigmoid")
    f["sigmoid_bound_holds"] = None if sig is None or sig["checks"] == 0 else (
        sig["violations"] == 0)
    train = saturation[saturation.run == "train"]
    if len(train):
        train = train[train.depth == train.depth.max()]
        for (act, init), part in train.groupby(["activation", "init"]):
            part = part.sort_values("epoch")
            f["saturation"][_key(act, init)] = {
                "initial": float(part["median"].iloc[0]), "final": float(part["median"].iloc[-1]),
                "depth": int(part.depth.iloc[0]), "final_epoch": int(part.epoch.iloc[-1])}
    for key, preset, quantity in (("question_network", "question", "W"),
                                  ("question_network_z", "question", "z"),
                                  ("question_network_fixed", "fixed", "W")):
        f[key] = {r.activation: r.median for r in question.itertuples()
                  if r.preset == preset and r.quantity == quantity}
    f["question_network_detail"] = {
        f"{r.preset}/{r.activation}/{r.quantity}": {
            "median": r.median, "q25": r.q25, "q75": r.q75, "n": int(r.n),
            "n_defined": int(r.n_defined), "share_below_1": r.share_below_1,
            "ci_low": r.ci_low, "ci_high": r.ci_high}
        for r in question.itertuples()}
    return f
