"""The causes study's figures, drawn from its CSV tables only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from studies import plots
from studies.run.study import read_table

from .grid import VARIANT_LABELS, VARIANTS, arm_kind

# what a failed seed (never reached the threshold, did not diverge) looks like at the end
FAILURES = ("zero_gradient", "constant_output", "output_varies")
FAILURE_LABELS = {
    "zero_gradient": "gradient exactly zero (every parameter)",
    "constant_output": "gradient non-zero, output constant (dead network)",
    "output_varies": "gradient non-zero, output varies",
}
FAILURE_COLORS = {k: plots.OUTCOME_COLORS[k] for k in FAILURES}
OUTCOME_STYLE = {k: plots.OUTCOME_COLORS[k] for k in ("converged", "not_converged", "stuck",
                                                     "diverged")}


CAPTIONS = {  # figure -> the line printed under it in the report: what to take from it
    "ranking.png": (
        "Each change to the program against the program as written, on the same seeds: bars left "
        "of the line mean fewer stuck or failed ReLU seeds (top) or fewer epochs for the smooth "
        "activations (bottom); hatched bars with arrows are bounds."
    ),
    "relu_outcomes.png": (
        "Outcome of each variant of the ReLU program on the same seeds: which changes remove the "
        "stuck seeds (exactly zero gradient) and which add to them."
    ),
    "epochs.png": (
        "Median epochs to the loss threshold per variant for the smooth activations (dot, 95% "
        "interval, interquartile band): the variant furthest left is the single change that helps "
        "most."
    ),
    "local_minimum.png": (
        "What the ReLU seeds that failed look like at the end: an exactly zero gradient or a "
        "constant output (dead networks) against a varying output (left), and which layers are "
        "wholly dead, from initialisation or later (right)."
    ),
    "stuck_vs_epoch.png": (
        "Share of ReLU seeds with an exactly zero gradient over training, per variant: a falling "
        "line means stuck seeds came back to life (in the program, the shrinking biases can "
        "revive a unit)."
    ),
}


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
                         f"{int(base.n)} seeds; 95% paired Newcombe CI", fontsize=9.5)
        ax.set_yticks(y, [_label(v) for v in r.variant], fontsize=8.5)
        ax.set_ylim(-0.7, len(r) - 0.3)
        ax.grid(axis="y", visible=False)
    plots.suptitle(fig, "Causes ranked by effect against the faithful program (top = largest "
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
    plots.suptitle(fig, "Epochs to the loss threshold: median (dot), 95% CI (line), IQR (band)")
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
    plots.suptitle(
        fig,
        "The 'local minimum' claim: is the gradient of the seeds that fail exactly zero?"
    )
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
