"""The relu_failure study's figures, drawn from its CSV tables only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from studies import plots
from studies.run.study import read_table

from .grid import ACTIVATION_FACTOR, FACTORS

CATEGORY_STYLE = {  # failure category -> (colour, legend label); stuck-like is vermillion
    "born_dead": (plots.OUTCOME_COLORS["born_dead"], "born dead (output constant at init)"),
    "died": (plots.OUTCOME_COLORS["died"], "died (output constant at the end only)"),
    "other": (plots.OUTCOME_COLORS["other"], "other (output still varies, or diverged)"),
}


CAPTIONS = {  # figure -> the line printed under it in the report: what to take from it
    "failure_by_factor.png": (
        "ReLU failures when one factor of the program changes at a time, split into born dead "
        "(constant output before the first update), died during training and failed while alive: "
        "the height of the born-dead part is the share the initialisation decides."
    ),
    "born_dead_theory.png": (
        "Dead ReLU units at initialisation against the closed form: one first-layer unit (a), a "
        "whole first layer (b), by initialisation (c), and the second layer on the data against "
        "all of input space (d)."
    ),
}


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """failure_by_factor.png and born_dead_theory.png, from the CSV tables."""
    return [_failure_figure(tables_dir, out_dir), _theory_figure(tables_dir, out_dir)]


def _tick(value: str) -> str:
    return str(value).replace("_", "\n", 1) if len(str(value)) > 8 else str(value)


def _failure_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "failure")
    t = t[t.factor != "baseline"]
    names = list(dict.fromkeys(t.factor))
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plots.figure(nrows, ncols, width=3.6, height=3.3, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        part = t[t.factor == name].sort_values("order")
        x = np.arange(len(part))
        bottom = np.zeros(len(part))
        for c, (col, label) in CATEGORY_STYLE.items():
            share = part[f"{c}_share"].to_numpy() * 100
            ax.bar(x, share, 0.7, bottom=bottom, color=col, label=label, edgecolor="white",
                   linewidth=0.5)
            bottom += share
        f = part.failure_share.to_numpy() * 100
        base = part.is_baseline.to_numpy(dtype=bool)
        if base.any():
            ax.bar(x[base], f[base], 0.7, fill=False, edgecolor="black", linewidth=1.6,
                   label="baseline: the question's program")
        err = np.array([f - part.failure_ci_low * 100, part.failure_ci_high * 100 - f])
        ax.errorbar(x, f, yerr=err, fmt="none", ecolor="black", elinewidth=1.0, capsize=3,
                    label="all failures, 95% Wilson CI")
        ax.set_xticks(x, [_tick(v) for v in part.value])
        factor = FACTORS.get(name, ACTIVATION_FACTOR)
        ax.set_title(factor.title)
        ax.set_xlabel(factor.axis)
        ax.set_ylim(0, 100)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("seeds that failed (%)")
    n, epochs = int(t.n.iloc[0]), int(t.epochs.iloc[0])
    base = read_table(tables_dir, "cells").query("factor == 'baseline'").iloc[0]
    plots.suptitle(fig, "ReLU failures, one factor at a time around the question's program "
                   f"({base.layers}, {base.init} init, {base.optimizer} lr {base.lr:g}; {n} seeds, "
                   f"{epochs} epochs per bar)")
    legend: dict = {}
    for ax in axes.flat[:len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=3,
               frameon=False)
    return plots.save(fig, out_dir / "failure_by_factor.png")


def _errorbar(ax, x, share, lo, hi, **kw) -> None:
    ax.errorbar(x, share, yerr=[np.asarray(share) - lo, np.asarray(hi) - share], capsize=2,
                ms=4, **kw)


def _theory_figure(tables_dir: Path, out_dir: Path) -> Path:
    bw = read_table(tables_dir, "born_dead_theory")
    cond = read_table(tables_dir, "born_dead_conditions")
    second = read_table(tables_dir, "second_layer")
    relu = plots.color("relu")
    ens = bw[bw.source == "ensemble"].sort_values("width")
    trained = bw[bw.source == "trained"].sort_values("width")
    n_ens = int(ens.n_seeds.iloc[0])
    p = float(ens.theory_p.iloc[0])
    fig, axes = plots.figure(2, 2, width=6.0, height=4.4, squeeze=False)

    ax = axes[0, 0]
    widest = ens.iloc[-1]
    ax.axhspan(widest.unit_ci_low, widest.unit_ci_high, color=relu, alpha=0.2, linewidth=0,
               label=f"init-only ensemble ({int(widest.unit_n):,} units), 95% CI")
    ax.axhline(p, color="black", linestyle="--", linewidth=1, label=f"closed form p = {p:.4f}")
    if len(trained):
        _errorbar(ax, trained.width, trained.unit_share, trained.unit_ci_low,
                  trained.unit_ci_high, fmt="s", color=relu,
                  label="trained width cells at epoch 0, 95% CI")
    lo = min(float(widest.unit_ci_low), p, *trained.unit_ci_low)
    hi = max(float(widest.unit_ci_high), p, *trained.unit_ci_high)
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.7 * (hi - lo))  # headroom for the legend
    ax.set_xscale("log", base=2)
    ax.set_xlabel("first-layer width n (units)")
    ax.set_ylabel("share of first-layer units dead at init")
    ax.set_title("(a) one first-layer unit is dead on the data")
    ax.legend(loc="upper center", fontsize=8)

    ax = axes[0, 1]
    ax.plot(ens.width, ens.theory_all_dead, color="black", linestyle="--", linewidth=1,
            label="closed form pⁿ")
    seen = ens[ens.all_dead_count > 0]
    _errorbar(ax, seen.width, seen.all_dead_share, seen.all_dead_ci_low, seen.all_dead_ci_high,
              fmt="o", color=relu, label=f"init-only ensemble: first n of {int(ens.width.max())}"
              f" units,\n{n_ens:,} seeds, 95% CI")
    none = ens[ens.all_dead_count == 0]
    if len(none):
        ax.plot(none.width, none.all_dead_ci_high, ":", color=relu,
                label="ensemble: none seen, 95% upper bound")
    if len(trained):
        ts = trained[trained.all_dead_count > 0]
        _errorbar(ax, ts.width, ts.all_dead_share, ts.all_dead_ci_low, ts.all_dead_ci_high,
                  fmt="s", color=relu, mfc="white",
                  label=f"trained cells ({int(trained.n_seeds.iloc[0])} seeds), 95% CI")
        tn = trained[trained.all_dead_count == 0]
        ax.scatter(tn.width, tn.all_dead_ci_high, marker="v", s=22, color="0.45",
                   label="trained cells: none seen, 95% upper bound")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(1e-7, 1.5)
    ax.set_xlabel("first-layer width n (units)")
    ax.set_ylabel("share of seeds with the whole first layer dead")
    ax.set_title("(b) the whole first layer is dead at init")
    ax.legend(loc="lower left", fontsize=8)  # p^n falls from the upper left: that corner is free

    ax = axes[1, 0]
    y = np.arange(len(cond))[::-1]
    ax.errorbar(cond.unit_share, y, xerr=[cond.unit_share - cond.unit_ci_low,
                cond.unit_ci_high - cond.unit_share], fmt="o", ms=4, color=relu, capsize=2,
                zorder=3, label="measured, 95% Wilson CI")
    ok = cond.theory_p.notna().to_numpy()
    ax.scatter(cond.theory_p[ok], y[ok], marker="x", s=45, color="black", zorder=2,
               label="closed form on rescaled data\n(Gaussian w and b only)")
    ax.set_yticks(y, [f"{c}\n{s}" for c, s in zip(cond.condition, cond.source, strict=True)],
                  fontsize=7.5)
    right = max(0.85, float(cond.unit_ci_high.max()) + 0.4)
    ax.set_xlim(0, right)  # Gaussian p <= 1/2: the legend sits to the right of every point
    ax.set_xlabel("share of first-layer units dead at init")
    ax.set_title("(c) by initialisation: measured vs closed form")
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[1, 1]
    x = second.n1.to_numpy()
    _errorbar(ax, x, second.unit_share, second.unit_ci_low, second.unit_ci_high, fmt="o-",
              color=relu, label=f"measured: dead on the data\n({int(second.n_seeds.iloc[0]):,}"
              " seeds), 95% CI")
    ax.plot(x, second.theory_whole_space, "x--", color="black",
            label="Brownlowe et al. 2024:\ndead on all of Rⁿ⁰")
    ax.set_xticks(x)
    top = max(float(second.unit_ci_high.max()), float(second.theory_whole_space.max()))
    ax.set_ylim(0, min(1.0, top * 1.6))  # headroom for the legend
    ax.set_xlabel(f"first-layer width n1 (units; n0 = {int(second.n0.iloc[0])} inputs)")
    ax.set_ylabel("share of second-layer units dead at init")
    ax.set_title("(d) second layer: the data patch vs all of the input space")
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    plots.suptitle(fig, "Dead ReLU units at initialisation, measured vs closed form "
                 "(the question's data; N(0,1) weights and biases unless stated)")
    return plots.save(fig, out_dir / "born_dead_theory.png")
