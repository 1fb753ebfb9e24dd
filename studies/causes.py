"""Study ``causes``: which part of the user's program causes what, and was the advice right?

Starting from the faithful program (``PRESETS["question"]``) each quirk is switched off alone
(``QUIRK_FIXES``), then all four together; the advice the user was given (SGD with momentum 0.9)
and common remedies (He initialisation with zero bias, leaky ReLU) are tried on top of the faithful
program. The output-activation fix *is* the "identity output" remedy, so it appears once. One
extra variant, momentum with the true bias gradient (relu arm only), removes the bias decay, the
only thing besides the gradient that moves the faithful program's parameters, so it tests whether
momentum itself can bring a zero-gradient network back. Each variant is measured on two arms:

- ``relu`` at lr 0.01 (the question's): outcome shares over 1000 seeds, in particular the stuck
  rate; instruments record, on a schedule that includes epoch 0, the middle and the last epoch,
  every layer's dead-unit fraction, whether the output is constant, and the full-data gradient
  norms. Each failed seed (never reached the threshold, did not diverge) is classified at the end:
  gradient exactly zero / non-zero with a constant output (a dead network) / non-zero with an output
  that varies, and tied to the layers whose units were all dead.
- ``tanh`` and ``sigmoid`` at lr 0.1 (what the user ran them with): median epochs to the loss
  threshold with a 95% order-statistic CI; seeds that never got there count as +inf.

Effects against the faithful program: differences of rates with Newcombe's hybrid score interval,
fold-changes of medians with a Bonferroni-combined interval; censored medians give bounds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.activations import get_activation
from diagnostics.presets import PRESETS, QUIRK_FIXES
from diagnostics.train import OUTCOMES

from . import plots
from .base import StudyOptions, read_table
from .runner import Cell, CellResult, concat
from .stats import median_ci, wilson_interval
from .summaries import epochs_summary, outcome_shares, prefixed_proportion, read_proportion

NAME = "causes"
TITLE = "Causes: each quirk of the program switched off alone, the advice, and common remedies"

ARMS = ("relu", "tanh", "sigmoid")
LR = {"relu": 0.01, "tanh": 0.1, "sigmoid": 0.1}  # the question's relu lr; tanh/sigmoid as run
RECTIFIER_LR, SMOOTH_LR = 0.01, 0.1  # for other activations chosen with --activations
SEEDS = {"rectifier": (1000, 100), "smooth": (200, 20)}  # (default, quick) seeds per cell
EPOCHS = {"relu": (2000, 120), "tanh": (5000, 100), "sigmoid": (3500, 100)}  # (default, quick)
OTHER_EPOCHS = {"rectifier": (2000, 120), "smooth": (4000, 100)}

_ALL_FIXED: dict = {}
for _fix in QUIRK_FIXES.values():
    _ALL_FIXED |= _fix

# variant -> (config changes on top of the faithful program, which arms it applies to)
VARIANTS: dict[str, tuple[dict, str]] = {
    "faithful": ({}, "all"),
    **{f"fix_{name}": (changes, "all") for name, changes in QUIRK_FIXES.items()},
    "all_fixed": (_ALL_FIXED, "all"),
    "momentum": ({"optimizer": "momentum", "momentum": 0.9}, "all"),
    "momentum_true_bias": (
        {"optimizer": "momentum", "momentum": 0.9, **QUIRK_FIXES["bias_update"]}, "rectifier"),
    "he_init": ({"init": "he_normal", "bias_init": "zero"}, "all"),
    "leaky_relu": ({"activation": "leaky_relu", "leaky_slope": 0.01}, "relu"),
}
VARIANT_LABELS = {
    "faithful": "faithful program",
    "fix_bias_update": "fix: bias follows its gradient",
    "fix_backprop_weights": "fix: backprop through current W",
    "fix_output_activation": "fix / remedy: identity output",
    "fix_init": "fix: Xavier init, zero bias",
    "all_fixed": "all four quirks fixed",
    "momentum": "advice: momentum 0.9",
    "momentum_true_bias": "momentum 0.9 + true bias gradient",
    "he_init": "remedy: He init, zero bias",
    "leaky_relu": "remedy: leaky ReLU (0.01)",
}
VARIANT_NOTES = {
    "fix_output_activation": "also the 'identity output' remedy, so listed once",
    "momentum_true_bias": "momentum without the bias decay: tests whether momentum can revive "
                          "a zero-gradient network (relu arm only)",
    "leaky_relu": "hidden and output units leaky ReLU, slope 0.01 (relu arm only)",
}
GRADIENT_CLASSES = ("zero", "bias_only", "weights")  # where a seed's full-data gradient is != 0
# what a failed seed (never reached the threshold, did not diverge) looks like at the end
FAILURES = ("zero_gradient", "constant_output", "output_varies")
FAILURE_LABELS = {
    "zero_gradient": "gradient exactly zero (every parameter)",
    "constant_output": "gradient non-zero, output constant (dead network)",
    "output_varies": "gradient non-zero, output varies",
}
FAILURE_COLORS = {"zero_gradient": "#D55E00", "constant_output": "#E69F00",
                  "output_varies": "#56B4E9"}
OUTCOME_STYLE = {
    "converged": "#009E73", "not_converged": "#E69F00", "stuck": "#D55E00", "diverged": "#000000",
}


# ---- the grid -------------------------------------------------------------------------------


def arm_kind(activation: str) -> str:
    """``rectifier`` (can die: stuck-rate arm) or ``smooth`` (speed arm)."""
    return "rectifier" if get_activation(activation).rectifier else "smooth"


def record_epochs(epochs: int) -> list[int]:
    """Epochs the instruments record: 0, about ten log-spaced ones, the middle and the last."""
    logs = np.round(np.geomspace(1, max(epochs, 1), 10)).astype(int)
    return sorted({0, *map(int, logs), epochs // 2, epochs} - {-1})


def _arm_plan(act: str, opts: StudyOptions) -> tuple[int, int]:
    kind = arm_kind(act)
    default = EPOCHS.get(act, OTHER_EPOCHS[kind])
    seeds = opts.pick("seeds", *SEEDS[kind])
    epochs = opts.pick("epochs", *default)
    return seeds, epochs


def cells(opts: StudyOptions) -> list[Cell]:
    base = PRESETS["question"]
    if opts.layers:
        base = base.replace(layers=opts.layers)
    out = []
    for act in opts.pick("activations", ARMS):
        kind = arm_kind(act)
        seeds, epochs = _arm_plan(act, opts)
        lrs = opts.lrs or (LR.get(act, RECTIFIER_LR if kind == "rectifier" else SMOOTH_LR),)
        for variant, (changes, applies) in VARIANTS.items():
            if applies not in ("all", kind, act):
                continue
            cfg = base.replace(**({"activation": act} | changes))
            for lr in lrs:
                extra = {}
                if kind == "rectifier":
                    extra = {
                        "record": "grad_norm_W,grad_norm_b,dead",
                        "record_every": "list:" + ",".join(map(str, record_epochs(epochs))),
                    }
                out.append(Cell(
                    NAME,
                    (("variant", variant), ("arm", act), ("activation", cfg.activation),
                     ("lr", float(lr))),
                    cfg.replace(lr=float(lr), epochs=epochs), (0, seeds),
                    loss_every="log:20", **extra, **opts.data_kwargs(),
                ))
    return out


# ---- statistics helpers ---------------------------------------------------------------------


def newcombe_difference(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score 95% interval (from the two Wilson intervals).

    d - sqrt((p1 - l1)^2 + (u2 - p2)^2) .. d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    Built for independent samples; for paired seeds it is conservative when outcomes of the same
    seed are positively correlated.
    """
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    (l1,), (u1,) = (np.atleast_1d(v) for v in wilson_interval(k1, n1))
    (l2,), (u2,) = (np.atleast_1d(v) for v in wilson_interval(k2, n2))
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, float(lo), float(hi)


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


# ---- tables ---------------------------------------------------------------------------------

LABELS = ["variant", "arm", "activation", "lr"]


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    outcomes = concat(results, "outcomes")
    metrics = concat(results, "metrics")
    budgets = {tuple(c.label_dict[k] for k in LABELS): c.config.epochs for c in cells(opts)}
    outcomes["epochs"] = [budgets[tuple(k)] for k in outcomes[LABELS].itertuples(index=False)]
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
            "epochs": int(part.epochs.iloc[0]), "threshold": PRESETS["question"].threshold, "n": n}
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
                for outcome in ("stuck", "failed"):
                    d, lo, hi = newcombe_difference(
                        getattr(v, f"{outcome}_count"), v.n, b[f"{outcome}_count"], b.n)
                    rows.append(common | {
                        "metric": f"{arm}_{outcome}", "unit": "share difference",
                        "effect": d, "ci_low": lo, "ci_high": hi, "bound": "exact",
                        "baseline": b[f"{outcome}_share"],
                        "value": getattr(v, f"{outcome}_share"), "budget": int(v.epochs)})
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


# ---- figures (from the CSV files only) --------------------------------------------------------


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    return [
        _ranking_figure(tables_dir, out_dir),
        _relu_outcomes_figure(tables_dir, out_dir),
        _epochs_figure(tables_dir, out_dir),
        _local_minimum_figure(tables_dir, out_dir),
        _stuck_vs_epoch_figure(tables_dir, out_dir),
    ]


def _label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def _order(variants) -> list[str]:
    """Variants in the study's order (unknown names last, as given)."""
    present = list(dict.fromkeys(variants))
    return [v for v in VARIANTS if v in present] + [v for v in present if v not in VARIANTS]


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _pct(x: float) -> str:
    return f"{max(0.0, min(100.0, x * 100)):.0f}"


def _log_ticks(ax) -> None:
    """Major decade ticks only, as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _ranking_figure(tables_dir: Path, out_dir: Path) -> Path:
    rank = read_table(tables_dir, "ranking")
    variants = read_table(tables_dir, "variants")
    metrics = list(dict.fromkeys(rank.metric)) if len(rank) else []
    ncols = 2
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig, axes = plots.figure(nrows, ncols, width=7.0, height=4.0, squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    if not metrics:
        _empty(axes.flat[0], "no variant to compare with the faithful program")
    for ax, metric in zip(axes.flat, metrics, strict=False):
        r = rank[rank.metric == metric]
        r = r.assign(_key=r.effect.fillna(np.inf)).sort_values("_key", ascending=False)
        arm, lr = r.arm.iloc[0], r.lr.iloc[0]
        base = variants[(variants.arm == arm) & (variants.lr == lr)
                        & (variants.variant == "faithful")].iloc[0]
        y = np.arange(len(r))
        col = plots.color(arm)
        if metric.endswith("_median"):
            _fold_panel(ax, r, y, col, base)
        else:
            what = metric.rsplit("_", 1)[1]
            eff = r.effect.to_numpy() * 100
            err = np.array([eff - r.ci_low * 100, r.ci_high * 100 - eff])
            ax.barh(y, eff, color=col, alpha=0.8, height=0.65)
            ax.errorbar(eff, y, xerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.9)
            ax.axvline(0, color="black", linewidth=1.2)
            share = base[f"{what}_share"] * 100
            ax.set_xlabel(f"{what} rate, variant minus faithful (percentage points)")
            desc = "stuck (gradient exactly 0)" if what == "stuck" else \
                "failed (never reached threshold)"
            ax.set_title(f"{arm}, lr {lr:g}: {desc}\nline = faithful, {share:.1f}% of "
                         f"{int(base.n)} seeds; 95% Newcombe CI", fontsize=9.5)
        ax.set_yticks(y, [_label(v) for v in r.variant], fontsize=8.5)
        ax.set_ylim(-0.7, len(r) - 0.3)
        ax.grid(axis="y", visible=False)
    fig.suptitle("Causes ranked by effect against the faithful program (top = largest "
                 "improvement; left of the line = fewer failures / faster)")
    return plots.save(fig, out_dir / "ranking.png")


def _fold_panel(ax, r: pd.DataFrame, y: np.ndarray, col: str, base) -> None:
    """Horizontal fold-change bars on a log axis; censored estimates drawn as hatched bounds."""
    lo_lim, hi_lim = 1e-2, 1e1
    vals = np.r_[r.effect, r.ci_low, r.ci_high].astype(float)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size:
        lo_lim = min(lo_lim, 10 ** np.floor(np.log10(vals.min())))
        hi_lim = max(hi_lim, 10 ** np.ceil(np.log10(vals.max())))
    for yi, row in zip(y, r.itertuples(index=False), strict=True):
        if row.bound == "unknown" or not np.isfinite(row.effect):
            ax.text(1.15, yi, "both medians > budget", va="center", fontsize=7.5, color="0.35")
            continue
        hatch = None if row.bound == "exact" else "///"
        ax.barh(yi, row.effect - 1, left=1, color=col, alpha=0.8 if hatch is None else 0.35,
                height=0.65, hatch=hatch, edgecolor=col)
        lo = max(row.ci_low, lo_lim) if row.ci_low > 0 else lo_lim
        hi = min(row.ci_high, hi_lim) if np.isfinite(row.ci_high) else hi_lim
        ax.plot([lo, hi], [yi, yi], color="black", linewidth=0.9)
        if row.bound != "exact":
            marker = "<" if row.bound == "at_most" else ">"
            ax.plot(row.effect, yi, marker=marker, color="black", markersize=6)
    ax.axvline(1, color="black", linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlim(lo_lim, hi_lim)
    budget = int(base.epochs)
    med = f"> {budget}" if not np.isfinite(base["median"]) else f"{base['median']:.0f}"
    ax.set_xlabel("median epochs to threshold, variant / faithful (log scale)")
    ax.set_title(f"{base.arm}, lr {base.lr:g}: median epochs (line = faithful, {med})\n"
                 "CI >= 95%; hatched + arrow: a bound (a median > budget)", fontsize=9.5)


def _relu_outcomes_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "outcomes")
    t = t[t.arm.map(arm_kind) == "rectifier"]
    groups = t[["arm", "lr"]].drop_duplicates().to_records(index=False)
    fig, axes = plots.figure(max(1, len(groups)), 1, width=10.5, height=5.0, squeeze=False)
    if not len(groups):
        _empty(axes[0, 0], "no rectifier arm in this run")
    for ax, (arm, lr) in zip(axes[:, 0], groups, strict=False):
        g = t[(t.arm == arm) & (t.lr == lr)]
        order = _order(g.variant)
        x = np.arange(len(order))
        width = 0.8 / len(OUTCOME_STYLE)
        for j, (name, col) in enumerate(OUTCOME_STYLE.items()):
            rows = g[g.outcome == name].set_index("variant").loc[order]
            share = rows.share.to_numpy() * 100
            err = np.array([share - rows.ci_low * 100, rows.ci_high * 100 - share])
            ax.bar(x + (j - 1.5) * width, share, width, yerr=err, capsize=1.5, color=col,
                   label=name.replace("_", " "), error_kw={"linewidth": 0.7})
        ax.set_xticks(x, [_label(v) for v in order], rotation=25, ha="right", fontsize=8.5)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("share of seeds (%)")
        ax.set_ylim(0, 100)
        n, budget = int(g.n.iloc[0]), _cell_budget(tables_dir, arm, lr)
        ax.set_title(f"{arm} at lr {lr:g}: outcome of each variant, {n} seeds, {budget} epochs "
                     "(95% Wilson intervals)")
        plots.legend_outside(ax, title="outcome")
    return plots.save(fig, out_dir / "relu_outcomes.png")


def _cell_budget(tables_dir: Path, arm: str, lr: float) -> int:
    v = read_table(tables_dir, "variants")
    return int(v[(v.arm == arm) & (v.lr == lr)].epochs.max())


def _epochs_figure(tables_dir: Path, out_dir: Path) -> Path:
    v = read_table(tables_dir, "variants")
    v = v[v.arm.map(arm_kind) == "smooth"]
    groups = v[["arm", "lr"]].drop_duplicates().to_records(index=False)
    fig, axes = plots.figure(1, max(1, len(groups)), width=5.4 if len(groups) > 1 else 7.5,
                             height=4.6, squeeze=False, sharey=True)
    if not len(groups):
        _empty(axes[0, 0], "no tanh/sigmoid arm in this run")
    order = _order(v.variant)
    y = np.arange(len(order))[::-1]
    for ax, (arm, lr) in zip(axes[0], groups, strict=False):
        g = v[(v.arm == arm) & (v.lr == lr)].set_index("variant")
        budget = int(g.epochs.max())
        col = plots.color(arm)
        low = g.q25[np.isfinite(g.q25)]
        left = 10 ** np.floor(np.log10(max(1.0, low.min() / 1.5))) if len(low) else 1.0
        for yi, name in zip(y, order, strict=True):
            if name not in g.index:
                continue
            r = g.loc[name]
            q25, q75 = min(r.q25, budget), min(r.q75, budget)
            ax.plot([max(q25, left), q75], [yi, yi], color=col, alpha=0.3, linewidth=8,
                    solid_capstyle="butt")
            lo, hi = max(r.median_ci_low, left), min(r.median_ci_high, budget)
            ax.plot([lo, hi], [yi, yi], color="black", linewidth=1.1)
            if np.isfinite(r["median"]):
                ax.plot(r["median"], yi, "o", color=col, markersize=6, markeredgecolor="black")
            else:
                ax.plot(budget, yi, ">", color=col, markersize=8, markeredgecolor="black")
                ax.annotate(f"> {budget}", (budget, yi), xytext=(-6, 7),
                            textcoords="offset points", ha="right", fontsize=7.5)
            ax.annotate(f"{int(r.reached)}/{int(r.n)}", (1.0, yi),
                        xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", fontsize=7.5, va="center", color="0.3")
        ax.axvline(budget, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlim(left, budget * 1.5)
        _log_ticks(ax)
        ax.set_xlabel("epochs to reach the loss threshold (log scale)")
        ax.set_title(f"{arm}, lr {lr:g} (dashed: budget {budget} epochs)\n"
                     "right margin: seeds that reached it / seeds", fontsize=9.5)
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_yticks(y, [_label(k) for k in order])
    fig.suptitle("Epochs to the loss threshold: median (dot), 95% CI (line), IQR (band)")
    return plots.save(fig, out_dir / "epochs.png")


def _local_minimum_figure(tables_dir: Path, out_dir: Path) -> Path:
    lm = read_table(tables_dir, "local_minimum")
    pat = read_table(tables_dir, "dead_patterns")
    fig, (ax1, ax2) = plots.figure(1, 2, width=6.6, height=4.8)
    if not len(lm):
        _empty(ax1, "no rectifier arm in this run")
        _empty(ax2, "no rectifier arm in this run")
        return plots.save(fig, out_dir / "local_minimum.png")
    arm, lr = lm.arm.iloc[0], lm.lr.iloc[0]
    lm = lm[(lm.arm == arm) & (lm.lr == lr)].set_index("variant")
    order = _order(lm.index)
    lm = lm.loc[order]
    y = np.arange(len(lm))[::-1]
    left = np.zeros(len(lm))
    for cls in FAILURES:
        share = lm[f"{cls}_count"].to_numpy() / lm.n_seeds.to_numpy() * 100
        ax1.barh(y, share, left=left, color=FAILURE_COLORS[cls], height=0.7,
                 label=FAILURE_LABELS[cls])
        left += share
    for yi, end, (_, r) in zip(y, left, lm.iterrows(), strict=True):
        txt = (f"{int(r.zero_gradient_count)}/{int(r.n_failed)} = "
               f"{_pct(r.zero_gradient_share)}% [{_pct(r.zero_gradient_ci_low)}, "
               f"{_pct(r.zero_gradient_ci_high)}]" if r.n_failed else "none failed")
        ax1.annotate(txt, (end, yi), xytext=(4, 0), textcoords="offset points", va="center",
                     fontsize=7.5)
    ax1.set_yticks(y, [_label(v) for v in order], fontsize=8.5)
    ax1.set_xlim(0, 100)
    ax1.set_xlabel("seeds that never reached the threshold (% of all seeds)")
    ax1.set_title(f"{arm}, lr {lr:g}: the failed seeds at the last epoch\n"
                  "text: zero-gradient / failed = share [95% Wilson CI]", fontsize=9.5)
    ax1.grid(axis="y", visible=False)
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8)
    p = pat[(pat.variant == "faithful") & (pat.arm == arm) & (pat.lr == lr)]
    if len(p):
        agg = p.groupby("pattern", sort=False).agg(count=("count", "sum"),
                                                   dead_at_init=("dead_at_init", "sum"))
        agg = agg.sort_values("count")
        yy = np.arange(len(agg))
        init = agg.dead_at_init.to_numpy()
        later = agg["count"].to_numpy() - init
        ax2.barh(yy, init, color=plots.color(arm), height=0.65,
                 label="output already constant at epoch 0 (dead at initialisation)")
        ax2.barh(yy, later, left=init, color=plots.color(arm), alpha=0.35, height=0.65,
                 label="output not constant at epoch 0")
        for yi, c, k in zip(yy, agg["count"], init, strict=True):
            ax2.annotate(f"{int(c)} ({int(k)} at init)", (c, yi), xytext=(3, 0),
                         textcoords="offset points", va="center", fontsize=8)
        ax2.set_yticks(yy, list(agg.index), fontsize=8.5)
        ax2.set_xlim(0, agg["count"].max() * 1.3)
        ax2.set_xlabel("failed seeds of the faithful program (count)")
        ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8)
    else:
        _empty(ax2, "no failed seed in the faithful arm")
    ax2.set_title("Faithful program, failed seeds: layers whose units\nwere all dead at the "
                  "last epoch (z <= 0 on every sample)", fontsize=9.5)
    ax2.grid(axis="y", visible=False)
    fig.suptitle("The 'local minimum' claim: is the gradient of the seeds that fail exactly zero?")
    return plots.save(fig, out_dir / "local_minimum.png")


_STYLES = ("-", "--", ":", "-.")


def _stuck_vs_epoch_figure(tables_dir: Path, out_dir: Path) -> Path:
    s = read_table(tables_dir, "stuck_vs_epoch")
    fig, ax = plots.figure(width=8.6, height=4.6)
    if not len(s):
        _empty(ax, "no rectifier arm in this run")
        return plots.save(fig, out_dir / "stuck_vs_epoch.png")
    arm, lr = s.arm.iloc[0], s.lr.iloc[0]
    s = s[(s.arm == arm) & (s.lr == lr)]
    cmap = plots.plt.get_cmap("tab10")
    for i, variant in enumerate(_order(s.variant)):
        part = s[s.variant == variant].sort_values("epoch")
        x = part.epoch.to_numpy()
        c = cmap(i % 10)
        ax.fill_between(x, part.stuck_ci_low * 100, part.stuck_ci_high * 100, color=c,
                        alpha=0.12, linewidth=0)
        ax.plot(x, part.stuck_share * 100, color=c, linestyle=_STYLES[i % len(_STYLES)],
                marker="o", markersize=3, linewidth=1.5, label=_label(variant))
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel("epoch (0 = at initialisation; symmetric log scale)")
    ax.set_ylabel("stuck seeds (%): not converged,\nfull-data gradient exactly 0")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{arm}, lr {lr:g}: seeds at an exactly-zero gradient over training\n"
                 f"({int(s.n.iloc[0])} seeds per variant, 95% Wilson bands)")
    plots.legend_outside(ax, title="variant")
    return plots.save(fig, out_dir / "stuck_vs_epoch.png")


# ---- findings (from the CSV files only) -----------------------------------------------------


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
