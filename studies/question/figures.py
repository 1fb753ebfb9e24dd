"""The question study's figures, drawn from its CSV tables only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies import plots
from studies.run.study import read_table

from .tables import SAMPLE_SEEDS

CAPTIONS = {  # figure -> the line printed under it in the report: what to take from it
    "outcomes.png": (
        "Share of seeds of the user's program ending converged, not converged, stuck (exactly "
        "zero gradient) or diverged, per activation and learning rate; only activations whose "
        "units can switch off entirely (ReLU) can end stuck."
    ),
    "loss_curves.png": (
        "Epoch loss of the user's program, one median per final outcome (line style): compare how "
        "fast the converging seeds fall with the flat curves of the seeds that end stuck."
    ),
    "epochs_to_threshold.png": (
        "Cumulative share of seeds that reached the loss threshold, by epoch: the horizontal gap "
        "between curves is how many more epochs one activation needs; a curve's end height is its "
        "share converged within the budget."
    ),
    "long_run.png": (
        "The long run of the tanh and sigmoid programs on log-log axes: a straight falling line "
        "is a power law (the loss keeps shrinking without a floor); the dotted levels show how "
        "far it gets."
    ),
}


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """The figures whose data this run has (no long run: no long-run figure)."""
    out = [
        _outcomes_figure(tables_dir, out_dir),
        _loss_figure(tables_dir, out_dir),
        _epochs_figure(tables_dir, out_dir),
    ]
    if len(read_table(tables_dir, "long_outcomes")):
        out.append(_long_figure(tables_dir, out_dir))
    return out


def _budget_text(tables_dir: Path) -> str:
    """``20,000 epochs, converged: loss <= 0.001``: the main runs' budget and threshold."""
    ett = read_table(tables_dir, "epochs_to_threshold")
    ett = ett[ett.run == "main"]
    return (f"{int(ett.budget.max()):,} epochs, converged: loss <= "
            f"{float(ett.threshold.iloc[0]):g}")


OUTCOME_LINES = {"converged": "-", "not_converged": "--", "stuck": ":", "diverged": "-."}
MIN_BAND_SEEDS = 5  # outcome groups with fewer seeds get no band


def _outcomes_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "outcomes")
    groups = list(t[["activation", "lr"]].drop_duplicates().itertuples(index=False, name=None))
    fig, ax = plots.figure(width=9.0, height=4.5)
    plots.outcome_bars(ax, t, groups, [f"{a}\nlr {lr:g}" for a, lr in groups])
    plots.suptitle(fig, f"Outcomes of the user's program over {int(t.n.iloc[0])} seeds after "
                        f"{_budget_text(tables_dir)} (95% Wilson intervals)")
    return plots.save(fig, out_dir / "outcomes.png")


def _loss_figure(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    samples = read_table(tables_dir, "loss_samples")
    bands, samples = bands[bands.run == "main"], samples[samples.run == "main"]
    lrs = sorted(bands.lr.unique())
    fig, axes = plots.figure(1, len(lrs), width=5.0, height=4.0, sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs, strict=True):
        for act in bands.activation.unique():
            for outcome, part in bands[(bands.lr == lr) & (bands.activation == act)].groupby(
                    "outcome", sort=False):
                if part.n.max() < MIN_BAND_SEEDS:
                    continue  # too few seeds for a band
                ax.fill_between(part.epoch, plots.positive(part.q25), plots.positive(part.q75),
                                color=plots.color(act), alpha=0.15, linewidth=0)
                ax.plot(part.epoch, plots.positive(part["median"]), color=plots.color(act),
                        linestyle=OUTCOME_LINES.get(outcome, ":"), linewidth=1.6,
                        label=f"{act}, {outcome.replace('_', ' ')}")
            s = samples[(samples.lr == lr) & (samples.activation == act)]
            for _, one in s.groupby("seed"):
                ax.plot(one.epoch, plots.positive(one.loss), color=plots.color(act),
                        linewidth=0.5, alpha=0.45)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-10)  # below this it is round-off, not learning
        ax.set_xlabel("epoch")
        ax.set_title(f"lr {lr:g}")
    axes[0, 0].set_ylabel("epoch loss (mean squared error, floor 1e-10)")
    plots.suptitle(
        fig,
        f"Loss of the user's program by final outcome ({_budget_text(tables_dir)}): median "
        f"(line style = outcome) and interquartile band over seeds; thin lines = seeds "
        f"0-{SAMPLE_SEEDS - 1}"
    )
    plots.legend_outside(axes[0, -1])
    return plots.save(fig, out_dir / "loss_curves.png")


def _epochs_figure(tables_dir: Path, out_dir: Path) -> Path:
    per_seed = read_table(tables_dir, "per_seed")
    lrs = sorted(per_seed.lr.unique())
    fig, axes = plots.figure(1, len(lrs), width=5.0, height=3.8, sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs, strict=True):
        for act in per_seed.activation.unique():
            e = per_seed[(per_seed.lr == lr) & (per_seed.activation == act)].epochs_to_threshold
            n = len(e)
            reached = np.sort(e[e >= 0].to_numpy())
            if reached.size:
                ax.step(np.r_[reached, reached[-1]], np.r_[np.arange(1, reached.size + 1),
                        reached.size] / n * 100, where="post", color=plots.color(act),
                        label=f"{act} ({reached.size}/{n})")
            else:
                ax.plot([], [], color=plots.color(act), label=f"{act} (0/{n})")
        ax.set_xscale("log")
        ax.set_xlabel("epochs to reach the threshold")
        ax.set_title(f"lr {lr:g}")
        plots.legend_outside(ax, title="converged") if lr == lrs[-1] else ax.legend(
            loc="upper left", title="converged")
    axes[0, 0].set_ylabel("share of seeds converged (%)")
    axes[0, 0].set_ylim(0, 100)
    plots.suptitle(fig, f"Epochs to reach the loss threshold within {_budget_text(tables_dir)} "
                        "(cumulative share of all seeds)")
    return plots.save(fig, out_dir / "epochs_to_threshold.png")


def _long_figure(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    thresholds = read_table(tables_dir, "long_thresholds")
    bands = bands[(bands.run == "long") & (bands.outcome == "converged")]  # the tail is theirs
    fig, ax = plots.figure(width=9.0, height=5.0)
    for act in bands.activation.unique():
        b = bands[bands.activation == act]
        plots.band(ax, b.epoch, plots.positive(b.q25), plots.positive(b["median"]),
                   plots.positive(b.q75),
                   label=f"{act} (lr {b.lr.iloc[0]:g}, {int(b.n.max())} seeds)",
                   color=plots.color(act))
    for t in sorted(thresholds.threshold[thresholds.threshold > 0].unique()):
        ax.axhline(t, color="0.5", linewidth=0.6, linestyle=":")
        ax.annotate(f"{t:g}", (1.0, t), xycoords=("axes fraction", "data"), fontsize=7,
                    color="0.4", va="bottom", ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch loss (mean squared error)")
    budget = int(thresholds.budget.max())
    first = float(thresholds.threshold[thresholds.threshold > 0].max())
    ax.set_title(f"Long run of the user's program: {budget:,} epochs\nmedian and IQR over the "
                 f"seeds that reached loss <= {first:g} (dotted: the levels timed)")
    plots.legend_outside(ax, title="activation")
    return plots.save(fig, out_dir / "long_run.png")
