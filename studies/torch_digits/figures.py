"""The torch_digits study's figures, drawn from its CSV tables only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies import plots
from studies.run.study import read_table

CAPTIONS = {
    "outcomes.png": (
        "Share of seeds of the PyTorch digits MLP ending converged, not converged, stuck (exactly "
        "zero gradient) or diverged, per activation, with 95% Wilson intervals: a failure is any "
        "seed that did not reach the loss threshold within the epoch budget."
    ),
    "loss_curves.png": (
        "Epoch loss (squared distance to the one-hot target, summed over the ten outputs) per "
        "activation: median and interquartile band over seeds; the dotted line is the threshold "
        "that counts as converged."
    ),
    "dead_fraction.png": (
        "Share of each hidden layer's units that are dead (pre-activation <= 0 on every image), "
        "mean over seeds, during training, for the rectifiers: how far the digits network is "
        "from the dead networks of the user's program."
    ),
    "gradient_profile.png": (
        "Per-layer gradient norm ||dL/dW_l|| (median and interquartile range over seeds) at "
        "initialisation and at the end: a profile that falls steeply towards layer 1 would be a "
        "vanishing gradient; a flat one is not."
    ),
}
LAYER_STYLES = ("-", "--", ":", "-.")


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    out = [_outcomes(tables_dir, out_dir), _loss(tables_dir, out_dir)]
    if len(read_table(tables_dir, "dead_fraction")):
        out.append(_dead(tables_dir, out_dir))
    if len(read_table(tables_dir, "gradient_profile")):
        out.append(_profile(tables_dir, out_dir))
    return out


def _label(act: str, lr: float, lrs: int) -> str:
    return act if lrs == 1 else f"{act}, lr {lr:g}"


def _outcomes(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "outcomes")
    groups = list(t[["activation", "lr"]].drop_duplicates().itertuples(index=False, name=None))
    lrs = t.lr.nunique()
    fig, ax = plots.figure(width=7.0, height=3.8)
    plots.outcome_bars(ax, t, groups, [_label(a, lr, lrs) for a, lr in groups])
    ax.set_title(f"Digits MLP in PyTorch: outcomes over {int(t.n.iloc[0])} seeds "
                 "(95% Wilson intervals)")
    return plots.save(fig, out_dir / "outcomes.png")


def _loss(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    threshold = float(read_table(tables_dir, "epochs_to_threshold").threshold.iloc[0])
    lrs = bands.lr.nunique()
    fig, ax = plots.figure(width=7.0, height=4.0)
    for (act, lr), b in bands.groupby(["activation", "lr"], sort=False):
        plots.band(ax, b.epoch, plots.positive(b.q25), plots.positive(b["median"]),
                   plots.positive(b.q75), label=f"{_label(act, lr, lrs)} ({int(b.n.max())} seeds)",
                   color=plots.color(act))
    ax.axhline(threshold, color="0.4", linewidth=0.8, linestyle=":")
    ax.annotate(f"threshold {threshold:g}", (1.0, threshold), xycoords=("axes fraction", "data"),
                fontsize=7, color="0.3", va="bottom", ha="right")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch loss (squared error, summed over outputs)")
    ax.set_title("Digits MLP: loss over training, median and interquartile band over seeds")
    plots.legend_outside(ax, title="activation")
    return plots.save(fig, out_dir / "loss_curves.png")


def _dead(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "dead_fraction")
    lrs = t.lr.nunique()
    fig, axes = plots.figure(2, 1, width=7.0, height=3.0, sharex=True, squeeze=False)
    ax, ax2 = axes[:, 0]
    for (act, lr, layer), p in t.groupby(["activation", "lr", "layer"], sort=False):
        style = LAYER_STYLES[(int(layer) - 1) % len(LAYER_STYLES)]
        label = f"{_label(act, lr, lrs)}, layer {int(layer)}"
        x = np.maximum(p.epoch, 0.5)  # epoch 0 (initialisation) drawn at 0.5 on the log axis
        ax.plot(x, p["mean"] * 100, color=plots.color(act), linestyle=style, marker="o",
                markersize=2.5, label=label)
        ax2.plot(x, p.any_share * 100, color=plots.color(act), linestyle=style, marker="o",
                 markersize=2.5, label=label)
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_ylim(bottom=0)
    ax2.set_xlabel("epoch (initialisation drawn at 0.5)")
    ax.set_ylabel("dead units, mean over seeds (% of layer)")
    ax.set_title("Dead units per hidden layer")
    ax2.set_ylabel("seeds with at least one dead unit (%)")
    ax2.set_title("Seeds with any dead unit in the layer")
    plots.suptitle(fig, "Digits MLP: dead units (pre-activation <= 0 on all 1797 images)")
    plots.legend_outside(ax)
    return plots.save(fig, out_dir / "dead_fraction.png")


def _profile(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "gradient_profile")
    t = t[t.metric == "grad_norm_W"]
    lrs = t.lr.nunique()
    whens = [w for w in ("initial", "final") if w in set(t.when)]
    fig, axes = plots.figure(1, len(whens), width=4.2, height=3.8, sharey=True, squeeze=False)
    for ax, when in zip(axes[0], whens, strict=True):
        part = t[t.when == when]
        groups = list(part.groupby(["activation", "lr"], sort=False))
        for k, ((act, lr), p) in enumerate(groups):
            x = p.layer + (k - (len(groups) - 1) / 2) * 0.06  # side by side, not on top
            ax.errorbar(x, p["median"], yerr=[p["median"] - p.q25, p.q75 - p["median"]],
                        color=plots.color(act), marker="o", capsize=3,
                        label=_label(act, lr, lrs))
        ax.set_yscale("log")
        ax.set_xticks(sorted(part.layer.unique()))
        ax.set_xlabel("layer (last = output)")
        ax.set_title(f"{when} (epoch {int(part.epoch.max())})")
    axes[0, 0].set_ylabel("||dL/dW_l|| (median, IQR over seeds)")
    plots.suptitle(fig, "Digits MLP: gradient norm per layer")
    plots.legend_outside(axes[0, -1], title="activation")
    return plots.save(fig, out_dir / "gradient_profile.png")
