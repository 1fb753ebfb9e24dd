"""Study ``question``: the user's program, faithfully, over many seeds.

ReLU, tanh and sigmoid at learning rates 0.01 and 0.1 (1000 seeds, 5000 epochs each): outcome
shares, loss curves, epochs-to-threshold distributions. Plus a long run of tanh and sigmoid at
lr 0.1 (200 seeds, 100,000 epochs) to test "more than 100,000 epochs" and "never exactly zero".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.presets import PRESETS

from . import plots
from .base import StudyOptions, read_table
from .runner import Cell, CellResult, concat
from .summaries import epochs_summary, loss_bands, outcome_shares, proportion

NAME = "question"
TITLE = "The user's program, faithfully, over many seeds"
ACTIVATIONS = ("relu", "tanh", "sigmoid")
LRS = (0.01, 0.1)
LONG_ACTIVATIONS = ("tanh", "sigmoid")
LONG_LR = 0.1
LONG_THRESHOLDS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-8)
SAMPLE_SEEDS = 6  # individual seeds drawn thin in the loss-curve figure


def budgets(opts: StudyOptions) -> tuple[int, int]:
    """(main epochs, long-run epochs): 5000 and 100,000 by default."""
    epochs = opts.pick("epochs", 5000, 1000)
    return epochs, (20 if not opts.quick else 3) * epochs


def cells(opts: StudyOptions) -> list[Cell]:
    seeds = opts.pick("seeds", 1000, 100)
    epochs, long_epochs = budgets(opts)
    long_seeds = opts.pick("seeds", 200, 30)
    base = PRESETS["question"]
    if opts.layers:
        base = base.replace(layers=opts.layers)
    out = []
    for act in opts.pick("activations", ACTIVATIONS):
        for lr in opts.pick("lrs", LRS):
            out.append(Cell(
                NAME, (("run", "main"), ("activation", act), ("lr", lr)),
                base.replace(activation=act, lr=lr, epochs=epochs), (0, seeds),
                loss_every="log:200", record="dead", record_every="log:40",
                thresholds=LONG_THRESHOLDS[1:], **opts.data_kwargs(),
            ))
    for act in [a for a in opts.pick("activations", ACTIVATIONS) if a in LONG_ACTIVATIONS]:
        out.append(Cell(
            NAME, (("run", "long"), ("activation", act), ("lr", LONG_LR)),
            base.replace(activation=act, lr=LONG_LR, epochs=long_epochs), (0, long_seeds),
            loss_every="log:300", thresholds=LONG_THRESHOLDS[1:], **opts.data_kwargs(),
        ))
    return out


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    outcomes = concat(results, "outcomes")
    loss = concat(results, "loss")
    by = ["run", "activation", "lr"]
    main = outcomes[outcomes.run == "main"]
    long = outcomes[outcomes.run == "long"]
    samples = loss[loss.seed < SAMPLE_SEEDS]
    metrics = concat(results, "metrics")
    dead = pd.DataFrame()
    if len(metrics):
        first, last = metrics.epoch.min(), metrics.groupby(by).epoch.transform("max")
        m = metrics[(metrics.metric == "network_dead") & ((metrics.epoch == first)
                                                          | (metrics.epoch == last))]
        m = m.assign(when=np.where(m.epoch == first, "initial", "final"))
        dead = (m.groupby([*by, "when"]).value.agg(["mean", "size"])
                .rename(columns={"mean": "share_dead_network", "size": "n"}).reset_index())
    return {
        "outcomes": outcome_shares(main, by),
        "epochs_to_threshold": epochs_summary(main, by).assign(
            threshold=PRESETS["question"].threshold, budget=budgets(opts)[0]
        ),
        "per_seed": main.drop(columns=["run"]),
        "loss_bands": loss_bands(loss, by),
        "loss_samples": samples,
        "long_thresholds": _long_thresholds(long).assign(budget=budgets(opts)[1]),
        "long_outcomes": long.drop(columns=["run"]),
        "dead_networks": dead,
    }


def _long_thresholds(long: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (act, lr), part in long.groupby(["activation", "lr"], sort=False):
        for t in LONG_THRESHOLDS:
            col = "epochs_to_threshold" if t == LONG_THRESHOLDS[0] else f"epochs_to_{t:g}"
            summary = epochs_summary(part.assign(_e=part[col]), [], "_e").iloc[0].to_dict()
            rows.append({"activation": act, "lr": lr, "threshold": t} | summary)
        rows.append({"activation": act, "lr": lr, "threshold": 0.0}
                    | {"reached": int((part.min_loss == 0).sum()), "n": len(part)}
                    | {f"reached_{k}": v for k, v in proportion(
                        int((part.min_loss == 0).sum()), len(part)).items()
                       if k in ("share", "ci_low", "ci_high")})
    return pd.DataFrame(rows)


# ---- figures (from the CSV files only) -----------------------------------------------------


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    return [
        _outcomes_figure(tables_dir, out_dir),
        _loss_figure(tables_dir, out_dir),
        _epochs_figure(tables_dir, out_dir),
        _long_figure(tables_dir, out_dir),
    ]


OUTCOME_STYLE = {
    "converged": "#009E73", "not_converged": "#E69F00", "stuck": "#D55E00", "diverged": "#000000",
}


def _outcomes_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "outcomes")
    groups = t[["activation", "lr"]].drop_duplicates().to_records(index=False)
    fig, ax = plots.figure(width=7.5, height=4.0)
    width = 0.8 / len(OUTCOME_STYLE)
    x = np.arange(len(groups))
    for j, (name, col) in enumerate(OUTCOME_STYLE.items()):
        rows = [t[(t.activation == a) & (t.lr == lr) & (t.outcome == name)].iloc[0]
                for a, lr in groups]
        share = np.array([r.share for r in rows]) * 100
        err = np.array([[r.share - r.ci_low, r.ci_high - r.share] for r in rows]).T * 100
        ax.bar(x + (j - 1.5) * width, share, width, yerr=err, capsize=2, color=col,
               label=name.replace("_", " "), error_kw={"linewidth": 0.8})
    ax.set_xticks(x, [f"{a}\nlr {lr:g}" for a, lr in groups])
    for label, (a, _) in zip(ax.get_xticklabels(), groups, strict=True):
        label.set_color(plots.color(a))
    ax.set_ylabel("share of seeds (%)")
    ax.set_ylim(0, 100)
    n = int(t.n.iloc[0])
    ax.set_title(f"Outcomes of the user's program over {n} seeds (95% Wilson intervals)")
    plots.legend_outside(ax, title="outcome")
    return plots.save(fig, out_dir / "outcomes.png")


def _loss_figure(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    samples = read_table(tables_dir, "loss_samples")
    bands, samples = bands[bands.run == "main"], samples[samples.run == "main"]
    lrs = sorted(bands.lr.unique())
    fig, axes = plots.figure(1, len(lrs), width=5.0, height=4.0, sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs, strict=True):
        for act in bands.activation.unique():
            b = bands[(bands.lr == lr) & (bands.activation == act)]
            plots.band(ax, b.epoch, plots.positive(b.q25), plots.positive(b["median"]),
                       plots.positive(b.q75), label=f"{act} median, IQR", color=plots.color(act))
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
    fig.suptitle("Loss of the user's program: median and interquartile band over seeds, "
                 f"thin lines = seeds 0-{SAMPLE_SEEDS - 1}")
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
    fig.suptitle("Epochs to reach the loss threshold (cumulative share of all seeds)")
    return plots.save(fig, out_dir / "epochs_to_threshold.png")


def _long_figure(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    thresholds = read_table(tables_dir, "long_thresholds")
    bands = bands[bands.run == "long"]
    fig, ax = plots.figure(width=7.0, height=4.2)
    for act in bands.activation.unique():
        b = bands[bands.activation == act]
        plots.band(ax, b.epoch, plots.positive(b.q25), plots.positive(b["median"]),
                   plots.positive(b.q75), label=f"{act} (lr {b.lr.iloc[0]:g})",
                   color=plots.color(act))
    for t in sorted(thresholds.threshold[thresholds.threshold > 0].unique()):
        ax.axhline(t, color="0.5", linewidth=0.6, linestyle=":")
        ax.annotate(f"{t:g}", (1.0, t), xycoords=("axes fraction", "data"), fontsize=7,
                    color="0.4", va="bottom", ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch loss (mean squared error)")
    n = int(read_table(tables_dir, "long_outcomes").groupby("activation").size().iloc[0]) \
        if len(bands) else 0
    ax.set_title(f"Long run of the user's program: median and IQR over {n} seeds")
    plots.legend_outside(ax, title="activation")
    return plots.save(fig, out_dir / "long_run.png")


# ---- findings (from the CSV files only) ----------------------------------------------------


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
