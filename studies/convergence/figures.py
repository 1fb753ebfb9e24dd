"""The convergence study's figures, drawn from its CSV tables only."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.lines import Line2D

from studies import plots
from studies.run.study import read_table

CAPTIONS = {  # figure -> the line printed under it in the report: what to take from it
    "survival.png": (
        "Share of seeds of the fixed network not yet at the threshold, by epoch (Kaplan- "
        "Meier): the lower and further left a curve, the faster that activation trains."
    ),
    "medians.png": (
        "Median epochs to the threshold on the fixed network, every activation at the same "
        "learning rate, with 95% intervals: overlapping intervals are not a ranking."
    ),
    "loss_bands.png": (
        "Loss of the fixed network over training, median and interquartile band per "
        "activation."
    ),
    "lr_grid.png": (
        "Median epochs to the threshold across learning rates on the fixed network: each "
        "activation's fastest learning rate, and where training diverges."
    ),
}


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """survival.png, medians.png, loss_bands.png and lr_grid.png, from the CSV files."""
    return [
        _survival_figure(tables_dir, out_dir),
        _medians_figure(tables_dir, out_dir),
        _loss_figure(tables_dir, out_dir),
        _lr_grid_figure(tables_dir, out_dir),
    ]


def fastest_order(medians: pd.DataFrame) -> list[str]:
    """Activations sorted by median epochs (inf last), ties by converged share, then name."""
    m = medians.assign(_med=medians["median"].fillna(np.inf))
    m = m.sort_values(["_med", "converged_share", "activation"], ascending=[True, False, True])
    return m.activation.tolist()


def _plain(value: float, _pos=None) -> str:
    """Tick label without powers of ten: 0.03, 200."""
    return f"{value:g}"


def _plain_2_5(value: float, _pos=None) -> str:
    """Minor-tick label for 2x and 5x a power of ten only, so labels do not crowd."""
    text = f"{value:g}"
    return text if text.lstrip("0.")[:1] in ("2", "5") else ""


def _fmt_epochs(value: float) -> str:
    return "∞" if not np.isfinite(value) else f"{value:.0f}"


def _survival_figure(tables_dir: Path, out_dir: Path) -> Path:
    surv = read_table(tables_dir, "survival")
    med = read_table(tables_dir, "medians")
    lr, budget, n = med.lr.iloc[0], int(med.epochs.iloc[0]), int(med.n.max())
    fig, ax = plots.figure(width=7.6, height=4.6)
    for act in fastest_order(med):
        s = surv[surv.activation == act]
        r = med[med.activation == act].iloc[0]
        x = np.maximum(s.epoch.to_numpy(), 1.0)  # epoch 0 -> 1 on the log axis (no update yet)
        label = f"{act}: {r.converged_count:.0f}/{r.n:.0f} conv."
        if r.diverged_count:
            label += f", {r.diverged_count:.0f} div."
        ax.step(x, s.not_converged * 100, where="post", color=plots.color(act), label=label,
                linewidth=1.6)
    ax.axhline(50, color="0.5", linewidth=0.7, linestyle=":")
    ax.annotate("median", (0.01, 50), xycoords=("axes fraction", "data"), ha="left",
                va="bottom", fontsize=7.5, color="0.4")
    ax.set_xscale("log")
    ax.set_xlim(1, budget)
    ax.set_ylim(0, 101)
    ax.set_xlabel("epoch (one pass over the 6 samples, online SGD)")
    ax.set_ylabel("seeds not yet converged (%)")
    ax.set_title(f"Seeds not yet at loss ≤ {med.threshold.iloc[0]:g} (Kaplan-Meier, {n} seeds, "
                 f"lr {lr:g})\ndiverged = never converged; censored at {budget} epochs",
                 fontsize=10)
    plots.legend_outside(ax, title="activation (fastest first)")
    return plots.save(fig, out_dir / "survival.png")


def _medians_figure(tables_dir: Path, out_dir: Path) -> Path:
    med = read_table(tables_dir, "medians")
    order = fastest_order(med)[::-1]  # fastest at the top
    budget = int(med.epochs.iloc[0])
    fig, ax = plots.figure(width=7.6, height=0.36 * len(order) + 1.6)
    for y, act in enumerate(order):
        r = med[med.activation == act].iloc[0]
        c = plots.color(act)
        hi = r.median_ci_high if np.isfinite(r.median_ci_high) else budget
        if np.isfinite(r.median_ci_low):  # otherwise the whole interval lies beyond the budget
            ax.plot([r.median_ci_low, hi], [y, y], color=c, linewidth=2.2, alpha=0.55,
                    solid_capstyle="butt")
        if not np.isfinite(r.median_ci_high) and np.isfinite(r.median_ci_low):
            ax.plot([budget], [y], marker=">", color=c, markersize=7, alpha=0.55)
        if np.isfinite(r["median"]):
            ax.plot([r["median"]], [y], "o", color=c, markersize=7)
            x_text = hi
        else:
            ax.plot([budget], [y], marker="$>$", color=c, markersize=9)
            x_text = budget
        note = f"{r.reached:.0f}/{r.n:.0f} conv."
        if r.diverged_count:
            note += f", {r.diverged_count:.0f} div."
        ax.annotate(note, (x_text, y), xytext=(8, 0), textcoords="offset points", va="center",
                    fontsize=7.5, color="0.3", annotation_clip=False)
    ax.axvline(budget, color="0.4", linewidth=0.8, linestyle="--")
    ax.annotate(f"budget {budget}", (budget, len(order) - 0.4), ha="right", va="bottom",
                fontsize=7.5, color="0.4", xytext=(-3, 0), textcoords="offset points")
    ax.set_yticks(range(len(order)), order)
    for label, act in zip(ax.get_yticklabels(), order, strict=True):
        label.set_color(plots.color(act))
    ax.set_xscale("log")
    lows = med.median_ci_low[np.isfinite(med.median_ci_low) & (med.median_ci_low > 0)]
    ax.set_xlim(left=max(1.0, 0.6 * lows.min()) if len(lows) else 1.0, right=budget * 1.15)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_plain))
    ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_plain_2_5))
    ax.set_ylim(-0.7, len(order) - 0.1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("median epochs to reach the loss threshold (log scale)")
    ax.set_title(f"Median epochs to loss ≤ {med.threshold.iloc[0]:g} with 95% CI, "
                 f"lr {med.lr.iloc[0]:g}, {int(med.n.max())} seeds\n"
                 "dot = median; bar = 95% CI; '>' = beyond the budget (not reached by half the "
                 "seeds)", fontsize=10)
    fig.get_layout_engine().set(w_pad=0.3)
    return plots.save(fig, out_dir / "medians.png")


def _loss_figure(tables_dir: Path, out_dir: Path) -> Path:
    bands = read_table(tables_dir, "loss_bands")
    med = read_table(tables_dir, "medians")
    order = fastest_order(med)
    ncols = min(4, len(order))
    nrows = math.ceil(len(order) / ncols)
    threshold = float(med.threshold.iloc[0])
    floor, ceiling = 1e-12, 1e3  # below: round-off; above (and +inf = diverged): the top edge
    parts = [
        f"Loss per activation (lr {med.lr.iloc[0]:g}, {int(med.n.max())} seeds): median and "
        f"interquartile band; dashed = threshold {threshold:g}; grey = other activations' "
        "medians.",
        f"Diverged seeds count as +inf loss; values are drawn clipped to [{floor:g}, "
        f"{ceiling:g}] (top edge = diverged or larger).",
    ]
    lines = [line for p in parts for line in textwrap.wrap(p, width=int(2.9 * ncols * 15))]
    # fixed margins instead of plots.figure's constrained layout, which costs seconds here
    size = (2.9 * ncols, 2.3 * nrows + 0.2 * len(lines))
    fig, axes = plt.subplots(nrows, ncols, figsize=size, sharex=True, sharey=True, squeeze=False)

    def clip(values) -> np.ndarray:
        return np.clip(np.asarray(values, dtype=float), floor, ceiling)

    for ax, act in zip(axes.flat, order, strict=False):
        for other in order:  # every activation's median in grey, for comparison
            if other != act:
                o = bands[bands.activation == other]
                m = plots.positive(o["median"])
                ax.plot(o.epoch, np.clip(np.where(m <= ceiling, m, np.nan), floor, None),
                        color="0.82", linewidth=0.7)
        b = bands[bands.activation == act]
        plots.band(ax, b.epoch, clip(b.q25), clip(b["median"]), clip(b.q75), label=act,
                   color=plots.color(act), alpha=0.25)
        ax.axhline(threshold, color="0.35", linewidth=0.7, linestyle="--")
        r = med[med.activation == act].iloc[0]
        extra = f", {r.diverged_share:.0%} div." if r.diverged_count else ""
        ax.set_title(f"{act} (median {_fmt_epochs(r['median'])} ep.{extra})",
                     color=plots.color(act), fontsize=9.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in axes.flat[len(order):]:
        ax.set_visible(False)
    axes[0, 0].set_ylim(floor / 3, ceiling * 3)
    axes[0, 0].yaxis.set_major_locator(ticker.LogLocator(base=10.0, numticks=6))
    axes[0, 0].yaxis.set_minor_locator(ticker.NullLocator())  # minor ticks on 12 log axes
    axes[0, 0].xaxis.set_minor_locator(ticker.NullLocator())  # cost seconds and add nothing
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("epoch loss (MSE)")
    plots.suptitle(fig, "\n".join(lines), fontsize=10)
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.1 / w, bottom=0.5 / h,
                        top=1 - (0.45 + 0.17 * len(lines)) / h, wspace=0.08, hspace=0.32)
    return plots.save(fig, out_dir / "loss_bands.png")


def _lr_grid_figure(tables_dir: Path, out_dir: Path) -> Path:
    grid = read_table(tables_dir, "lr_grid")
    fig, (ax, ax2) = plots.figure(1, 2, width=4.6, height=4.0)
    handles = []
    budget = int(grid.epochs.iloc[0]) if len(grid) else 1
    acts = fastest_order(grid.sort_values("lr").groupby("activation").first().reset_index()) \
        if len(grid) else []
    for i, act in enumerate(acts):
        g = grid[grid.activation == act].sort_values("lr")
        c = plots.color(act)
        fin = np.isfinite(g["median"]).to_numpy()
        y = np.where(fin, g["median"], np.nan)
        lo = np.where(np.isfinite(g.median_ci_low), g.median_ci_low, y)
        hi = np.where(np.isfinite(g.median_ci_high), g.median_ci_high, budget)
        ax.plot(g.lr, y, color=c, linewidth=1.5)
        ax.errorbar(g.lr[fin], y[fin], yerr=[y[fin] - lo[fin], hi[fin] - y[fin]], color=c,
                    marker="o", capsize=3, linestyle="none")
        ax.plot(g.lr[~fin], np.full((~fin).sum(), budget * 1.18 ** (i + 1)), linestyle="none",
                marker="^", color=c, markersize=7, markerfacecolor="none", markeredgewidth=1.5)
        for name, style, marker in (("converged", "-", "o"), ("diverged", "--", "x")):
            share = g[f"{name}_share"].to_numpy() * 100
            err = [share - g[f"{name}_ci_low"] * 100, g[f"{name}_ci_high"] * 100 - share]
            ax2.errorbar(g.lr, share, yerr=err, color=c, marker=marker, capsize=2,
                         linestyle=style, linewidth=1.4)
        handles.append(Line2D([], [], color=c, linewidth=2, label=act))
    reached = grid[np.isfinite(grid["median"])] if len(grid) else grid
    top = budget * 1.18 ** (len(acts) + 2)  # room for one row of '▵' per activation
    if len(reached):  # slope -1 through the highest median: epochs ∝ 1/lr (same lr × epochs)
        lrs = np.array(sorted(grid.lr.unique()))
        anchor = reached.loc[reached["median"].idxmax()]
        ax.plot(lrs, anchor["median"] * anchor.lr / lrs, color="0.5", linestyle=":",
                linewidth=1.2)
        lows = reached.median_ci_low[np.isfinite(reached.median_ci_low)]
        ax.set_ylim(max(1.0, 0.5 * lows.min()), top)
    else:
        ax.set_ylim(1.0, top)
    ax.axhline(budget, color="0.4", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("median epochs to loss threshold")
    ax.set_title(f"Median epochs to threshold (95% CI)\nbudget {budget} epochs (dashed)",
                 fontsize=10)
    ax2.set_xscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_plain))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_plain_2_5))
    for a in (ax, ax2):  # ticks at the grid's learning rates
        a.set_xticks(sorted(grid.lr.unique()), [f"{v:g}" for v in sorted(grid.lr.unique())])
        a.xaxis.set_minor_locator(ticker.NullLocator())
    ax2.set_ylim(-2, 102)
    ax2.set_xlabel("learning rate (log scale)")
    ax2.set_ylabel("share of seeds (%, 95% Wilson CI)")
    ax2.set_title(f"Converged and diverged within {budget} epochs", fontsize=10)
    n = int(grid.n.max()) if len(grid) else 0
    plots.suptitle(fig, f"Learning-rate grid on the fixed network ({n} seeds per point)")
    handles += [
        Line2D([], [], color="0.3", marker="o", linestyle="-", label="converged share"),
        Line2D([], [], color="0.3", marker="x", linestyle="--", label="diverged share"),
        Line2D([], [], color="0.3", marker="^", markerfacecolor="none", linestyle="none",
               label="median beyond budget\n(one row per activation)"),
        Line2D([], [], color="0.5", linestyle=":", label="epochs ∝ 1/lr (reference)"),
    ]
    ax2.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
               borderaxespad=0.0)
    return plots.save(fig, out_dir / "lr_grid.png")
