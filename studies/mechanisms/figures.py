"""The mechanisms study's figures, drawn from its CSV tables only; one caption per figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from studies import plots
from studies.run.study import read_table

from .grid import INITS, MOMENTUM, VARIANT_LABELS

CAPTIONS = {  # figure -> the one line printed under it
    "asymptote.png": "Share of seeds that reached the loss threshold by each epoch: the program "
                     "as written, with its targets moved inside the output's range, and with a "
                     "linear output unit, on the same seeds; grey: a single linear neuron at "
                     "the same learning rate.",
    "tail.png": "Median epoch loss of the long run on log-log axes (band: interquartile range "
                "over seeds), the power law fitted over the last decade (median exponent over "
                "seeds, 95% bootstrap CI) and the slope -1 theory predicts for a bounded output "
                "chasing its asymptote.",
    "momentum.png": "Outcomes of the ReLU program with plain SGD, heavy-ball momentum at the same "
                    "learning rate and momentum at lr x (1 - beta), on the same seeds (95% "
                    "Wilson intervals; rescued/killed: paired seeds against plain SGD).",
    "dead_output.png": "Left: share of seeds whose output unit is dead (<= 0 on every sample) "
                       "before the first update, by initialisation, beside first-layer units "
                       "and their closed form. Right: the trained program's seeds, converged or "
                       "failed born dead / died in training / failed while alive.",
    "output_slope.png": "Top: the output unit's slope act'(z) per target value over training "
                        "(median over seeds; ReLU: mean, the share of seeds whose output is on). "
                        "Bottom: the slope on the largest target beside the ratios between "
                        "layers, which cancel it: the factor that shrinks is the output's own.",
    "bias_decay.png": "The bias line b -= lr * b: the size of each layer's biases (median over "
                      "seeds) against |b(0)| (1 - lr)^(updates): they agree to round-off down "
                      "to the smallest normal float64, below which round-off stops the decay.",
}
VARIANT_STYLE = {"as_written": "-", "halved_targets": "--", "linear_output": ":"}
OUTCOMES = ("converged", "not_converged", "stuck", "diverged")
SPLIT = {  # relu_failures category -> (colour, label)
    "converged": (plots.OUTCOME_COLORS["converged"], "converged"),
    "born_dead": (plots.OUTCOME_COLORS["born_dead"], "failed: born dead (output constant at "
                                                     "init)"),
    "died": (plots.OUTCOME_COLORS["died"], "failed: died in training"),
    "alive": (plots.OUTCOME_COLORS["other"], "failed while alive (or diverged)"),
}


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """asymptote.png, tail.png, momentum.png, dead_output.png, output_slope.png,
    bias_decay.png (those whose data ran)."""
    out = []
    if len(read_table(tables_dir, "asymptote")):
        out.append(_asymptote_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "tail_fit")):
        out.append(_tail_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "momentum")):
        out.append(_momentum_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "dead_output_init")):
        out.append(_dead_output_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "output_slope")):
        out.append(_output_slope_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "bias_decay")):
        out.append(_bias_figure(tables_dir, out_dir))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _arms(frame) -> list[tuple[str, float]]:
    return list(dict.fromkeys(zip(frame.activation, frame.lr.astype(float), strict=True)))


def _asymptote_figure(tables_dir: Path, out_dir: Path) -> Path:
    a = read_table(tables_dir, "asymptote")
    surv = read_table(tables_dir, "asymptote_survival")
    arms = _arms(a)
    fig, axes = plots.figure(1, len(arms), width=5.2, height=4.3, squeeze=False, sharey=True)
    budget, threshold = int(a.budget.iloc[0]), float(a.threshold.iloc[0])
    for ax, (act, lr) in zip(axes[0], arms, strict=True):
        rows = a[(a.activation == act) & (a.lr == lr)]
        for r in rows.itertuples():
            s = surv[(surv.activation == act) & (surv.lr == lr) & (surv.variant == r.variant)]
            label = f"{VARIANT_LABELS[r.variant]}: {int(r.reached_count)}/{int(r.n)}"
            if r.variant != "as_written":
                label += f"\n  rescued {int(r.rescued)}, killed {int(r.killed)}, " \
                         f"McNemar p = {r.mcnemar_p:.2g}"
            ax.step(s.epoch.clip(lower=1), 100 * (1 - s.not_converged), where="post",
                    color=plots.color(act), linestyle=VARIANT_STYLE.get(r.variant, "-"),
                    linewidth=1.8, label=label)
        lin = surv[(surv.activation == "identity") & (surv.lr == lr)
                   & (surv.variant == "as_written")]
        if len(lin):
            ax.step(lin.epoch.clip(lower=1), 100 * (1 - lin.not_converged), where="post",
                    color="0.55", linewidth=1.2, label="single linear neuron (as written)")
        ax.axvline(budget, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlim(1, budget * 1.3)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("epoch (log scale; dashed: budget)")
        ax.set_title(f"{act}, lr {lr:g} ({int(rows.n.iloc[0])} seeds)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False)
    axes[0, 0].set_ylabel("seeds that reached the threshold (%)")
    fig.suptitle(f"The output's asymptote: epochs to loss <= {threshold:g} (user's units) within "
                 f"{budget:,} epochs")
    return plots.save(fig, out_dir / "asymptote.png")


def _tail_figure(tables_dir: Path, out_dir: Path) -> Path:
    fit = read_table(tables_dir, "tail_fit")
    bands = read_table(tables_dir, "tail_loss")
    arms = _arms(fit)
    fig, axes = plots.figure(1, len(arms), width=5.2, height=4.3, squeeze=False)
    for ax, (act, lr) in zip(axes[0], arms, strict=True):
        f = fit[(fit.activation == act) & (fit.lr == lr)].iloc[0]
        b = bands[(bands.activation == act) & (bands.lr == lr)]
        col = plots.color(act)
        plots.band(ax, b.epoch, plots.positive(b.q25), plots.positive(b["median"]),
                   plots.positive(b.q75), label="median loss, IQR over seeds", color=col)
        lo, hi = float(f.fit_from), float(f.fit_to)
        ax.axvspan(lo, hi, color="0.9", zorder=0, label="fit window (last decade)")
        t = np.geomspace(lo, hi, 20)
        anchor = float(f.loss_median_from)
        if np.isfinite(f.k_median):
            ax.plot(t, anchor * (t / lo) ** f.k_median, color="black", linewidth=1.6,
                    label=f"fit: k = {f.k_median:.2f} [{f.k_ci_low:.2f}, {f.k_ci_high:.2f}]"
                          f"\n({int(f.fitted)}/{int(f.n)} seeds still decreasing)")
        ax.plot(t, anchor * (t / lo) ** f.theory_k, color="black", linestyle="--",
                linewidth=1.2, label=f"theory: k = {f.theory_k:g} (squared error ~ 1/t)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (log scale)")
        ax.set_title(f"{act}, lr {lr:g}: {int(f.budget):,} epochs, {int(f.n)} seeds")
        ax.legend(loc="lower left", fontsize=8)
    axes[0, 0].set_ylabel("epoch loss, mean squared error (log scale)")
    fig.suptitle("The tail's law: loss ∝ t^k over the last decade of a long run")
    return plots.save(fig, out_dir / "tail.png")


def _momentum_figure(tables_dir: Path, out_dir: Path) -> Path:
    m = read_table(tables_dir, "momentum")
    arms = _arms(m)
    fig, axes = plots.figure(len(arms), 1, width=9.5, height=4.4, squeeze=False)
    for ax, (act, lr) in zip(axes[:, 0], arms, strict=True):
        rows = m[(m.activation == act) & (m.lr == lr)].reset_index(drop=True)
        x = np.arange(len(rows))
        width = 0.8 / len(OUTCOMES)
        for j, name in enumerate(OUTCOMES):
            share = rows[f"{name}_share"].to_numpy() * 100
            err = np.array([share - rows[f"{name}_ci_low"] * 100,
                            rows[f"{name}_ci_high"] * 100 - share])
            ax.bar(x + (j - 1.5) * width, share, width, yerr=err, capsize=2,
                   color=plots.OUTCOME_COLORS[name], label=name.replace("_", " "),
                   error_kw={"linewidth": 0.8})
        ticks = []
        for r in rows.itertuples():
            text = f"{VARIANT_LABELS[r.variant]}\n(lr {r.step_lr:g}"
            if r.variant != "sgd":  # heavy ball: steps grow towards lr / (1 - beta)
                text += f"; long-run step {r.step_lr / (1 - MOMENTUM):.2g}"
            text += ")"
            if r.variant != "sgd":
                text += (f"\nstuck: +{int(r.stuck_rescued)} / -{int(r.stuck_killed)}, "
                         f"p = {r.stuck_mcnemar_p:.1g}\nconverged: +{int(r.converged_rescued)}"
                         f" / -{int(r.converged_killed)}, p = {r.converged_mcnemar_p:.1g}")
            ticks.append(text)
        ax.set_xticks(x, ticks, fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, 100)
        ax.set_ylabel("share of seeds (%)")
        ax.set_title(f"{act} program, lr {lr:g}: {int(rows.n.iloc[0])} seeds, "
                     f"{int(rows.budget.iloc[0]):,} epochs, threshold "
                     f"{float(rows.threshold.iloc[0]):g} (95% Wilson intervals)\n"
                     "under each variant: seeds rescued (+) / killed (-) against plain SGD on "
                     "the same seeds, exact McNemar p", fontsize=10)
        plots.legend_outside(ax, title="outcome")
    fig.suptitle("Momentum at a matched step: v <- beta v + g, theta <- theta - lr v "
                 "(the program's bias decay passes through v too)")
    return plots.save(fig, out_dir / "momentum.png")


def _dead_output_figure(tables_dir: Path, out_dir: Path) -> Path:
    d = read_table(tables_dir, "dead_output_init")
    f = read_table(tables_dir, "relu_failures")
    fig, (ax1, ax2) = plots.figure(1, 2, width=5.6, height=4.6)
    act, lr = _arms(d)[0]
    part = d[(d.activation == act) & (d.lr == lr)].set_index("init")
    order = [i for i in INITS if i in part.index]
    x = np.arange(len(order))
    col = plots.color(act)
    for off, prefix, alpha, label in ((-0.2, "output_dead", 1.0, "output unit dead"),
                                      (0.2, "layer1_unit_dead", 0.4, "a first-layer unit dead")):
        share = part.loc[order, f"{prefix}_share"].to_numpy() * 100
        err = np.array([share - part.loc[order, f"{prefix}_ci_low"] * 100,
                        part.loc[order, f"{prefix}_ci_high"] * 100 - share])
        ax1.bar(x + off, share, 0.4, yerr=err, capsize=3, color=col, alpha=alpha, label=label,
                error_kw={"linewidth": 0.9})
        top = part.loc[order, f"{prefix}_ci_high"].to_numpy() * 100
        for xi, s, t in zip(x + off, share, top, strict=True):
            ax1.annotate(f"{s:.1f}%", (xi, t), xytext=(0, 3), textcoords="offset points",
                         ha="center", fontsize=7.5)
    theory = part.loc[order, "layer1_unit_theory"].to_numpy() * 100
    ok = np.isfinite(theory)
    ax1.scatter(x[ok] + 0.2, theory[ok], marker="_", s=500, color="black", zorder=3,
                label="closed form (first layer, N(0,1) w and b)")
    ax1.set_xticks(x, [VARIANT_LABELS[i].replace(" (the question)", "\n(the question)")
                       .replace(", zero", ",\nzero") for i in order], fontsize=8)
    ax1.grid(axis="x", visible=False)
    ax1.set_ylim(0, 100)
    ax1.set_ylabel("share at initialisation (%)")
    ax1.set_title(f"Before the first update ({int(part.n.iloc[0]):,} seeds, "
                  f"{part.layers.iloc[0]} {act})", fontsize=10)
    ax1.legend(loc="upper right", fontsize=8)
    r = f[(f.activation == act) & (f.lr == lr)].iloc[0]
    left = 0.0
    for name, (colour, label) in SPLIT.items():
        share = float(r[f"{name}_share"]) * 100
        ax2.barh(0, share, left=left, color=colour, height=0.5,
                 label=f"{label}: {int(r[f'{name}_count'])} "
                       f"[{_pct(r[f'{name}_ci_low'])}, {_pct(r[f'{name}_ci_high'])}]")
        if share >= 6:
            ax2.text(left + share / 2, 0, f"{share:.0f}%", ha="center", va="center",
                     fontsize=9)
        left += share
    ax2.set_xlim(0, 100)
    ax2.set_ylim(-0.5, 0.5)
    ax2.set_yticks([])
    ax2.grid(axis="y", visible=False)
    ax2.set_xlabel("share of seeds (%)")
    cells = read_table(tables_dir, "cells")
    threshold = float(cells[cells.part == "relu"].threshold.min())
    ax2.set_title(f"The trained program: {int(r.n)} seeds, {int(r.budget):,} epochs, lr {lr:g};"
                  f"\nconverged: loss <= {threshold:g}", fontsize=10)
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, frameon=False,
               title="count [95% Wilson CI]")
    fig.suptitle("Dead output at initialisation and the trained program's failures")
    return plots.save(fig, out_dir / "dead_output.png")


FACTOR_STYLE = {  # the bottom row of output_slope.png: one line style per factor
    "slope": {"linewidth": 2.4, "linestyle": (0, (1, 1))},
    "z": {"color": "0.15", "linewidth": 1.5, "linestyle": "-"},
    "W": {"color": "0.15", "linewidth": 1.5, "linestyle": "--"},
    "level": {"color": "0.6", "linewidth": 0.8, "linestyle": "-."},
}
INIT_X = 0.5  # where epoch 0 (before the first update) sits on a log epoch axis


def _epoch_axis(ax, budget: int) -> None:
    """Log epochs with epoch 0 drawn at INIT_X and labelled as the initialisation."""
    ax.set_xscale("log")
    ax.set_xlim(INIT_X * 0.8, budget * 1.25)
    ticks = [INIT_X, *[10.0**k for k in range(0, int(np.log10(budget)) + 1)]]
    ax.set_xticks(ticks, ["init", *[f"{t:,.0f}" for t in ticks[1:]]])
    ax.minorticks_off()
    ax.set_xlabel("epoch (log scale)")


def _x(epochs) -> np.ndarray:
    return np.where(np.asarray(epochs, dtype=float) > 0, epochs, INIT_X)


def _shade(colour: str, k: int, n: int) -> tuple:
    """The activation's colour, from pale (k = 0) to full (k = n - 1)."""
    from matplotlib.colors import to_rgb

    w = 0.65 * (1 - k / max(n - 1, 1))
    return tuple(c * (1 - w) + w for c in to_rgb(colour))


def _output_slope_figure(tables_dir: Path, out_dir: Path) -> Path:
    s = read_table(tables_dir, "output_slope")
    r = read_table(tables_dir, "layer_ratios")
    order = {"tanh": 0, "sigmoid": 1}  # the report's order; rectifiers last, for contrast
    arms = sorted(_arms(s), key=lambda a: (order.get(a[0], 2), a))
    fig, axes = plots.figure(2, len(arms), width=4.4, height=3.6, squeeze=False)
    budget = int(s.epoch.max())
    targets = sorted(s.target.unique())
    for col, (act, lr) in enumerate(arms):
        part = s[(s.activation == act) & (s.lr == lr)]
        colour = plots.color(act)
        rectifier = act == "relu" or part["median"].isin([0.0, 1.0]).all()
        stat = "mean" if rectifier else "median"
        ax = axes[0, col]
        for k, t in enumerate(targets):
            p = part[part.target == t].sort_values("epoch")
            top = k == len(targets) - 1
            if top and not rectifier:
                ax.fill_between(_x(p.epoch), plots.positive(p.q25), plots.positive(p.q75),
                                color=colour, alpha=0.15, linewidth=0)
            ax.plot(_x(p.epoch), plots.positive(p[stat]), color=_shade(colour, k, len(targets)),
                    linewidth=2.2 if top else 1.4,
                    label=f"target {t:g}" + (" (largest; band: IQR)" if top and not rectifier
                                             else ""))
        top_slope = float(part.max_slope.iloc[0])
        ax.axhline(top_slope, color="0.4", linestyle=":", linewidth=1.0,
                   label=f"largest possible slope: {top_slope:g}")
        ax.set_yscale("log")
        ax.set_ylim(min(0.01, np.nanmin(plots.positive(part[stat])) / 1.5), 1.6)
        _epoch_axis(ax, budget)
        ax.set_ylabel(f"act'(z_out), {stat} over seeds")
        ax.set_title(f"{act}, lr {lr:g}: output slope per target", color=colour,
                     fontweight="bold")
        ax.legend(loc="lower left", fontsize=7.5)
        ax = axes[1, col]
        big = part[part.target == targets[-1]].sort_values("epoch")
        ax.plot(_x(big.epoch), plots.positive(big[stat]), color=colour, **FACTOR_STYLE["slope"])
        rows = r[(r.activation == act) & (r.lr == lr)]
        for q in ("z", "W"):
            p = rows[rows.quantity == q].sort_values("epoch")
            ax.plot(_x(p.epoch), plots.positive(p["median"]), **FACTOR_STYLE[q])
        ax.axhline(1.0, color="0.6", linewidth=0.8)
        ax.axhline(0.1, **FACTOR_STYLE["level"])
        ax.set_yscale("log")
        _epoch_axis(ax, budget)
        ax.set_ylabel("factor (median over seeds)")
        ax.set_title(f"{act}: the factors the error is scaled by", fontsize=10)
    labels = {"slope": f"output slope on the largest target, {targets[-1]:g} (colour of the "
                       "activation; ReLU: mean)",
              "z": "back-propagated error, hidden layer 1 / last hidden layer",
              "W": "weight gradient, layer 1 / output layer",
              "level": "0.1: below it the verdict calls the gradient vanishing"}
    handles = [Line2D([], [], **({"color": "0.5"} | FACTOR_STYLE[k])) for k in labels]
    fig.legend(handles, list(labels.values()), loc="outside lower center", ncols=2,
               fontsize=8.5, title="bottom row")
    n = ", ".join(f"{a} {int(r[(r.activation == a) & (r.lr == lr)].n.max()):,}"
                  for a, lr in arms)
    plots.suptitle(fig, f"The output unit's slope over training beside the ratios between layers"
                        f"\nthe program as written, {budget:,} epochs; seeds: {n}")
    return plots.save(fig, out_dir / "output_slope.png")


LAYER_MARKERS = ("o", "s", "^", "D", "v", "P")
SUBNORMAL = 2.0**-1074  # the smallest positive float64


def _bias_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "bias_decay")
    lrs = sorted(set(t.lr.astype(float)))
    fig, axes = plots.figure(1, len(lrs), width=5.8, height=4.8, squeeze=False)
    tiny = float(np.finfo(np.float64).tiny)
    for ax, lr in zip(axes[0], lrs, strict=True):
        part = t[t.lr == lr]
        acts = list(dict.fromkeys(part.activation))
        budget = int(part.epoch.max())
        per_epoch = float(part.steps.max()) / max(budget, 1)  # updates per epoch
        e = np.linspace(0, budget, 400)
        for layer in sorted(part.layer.unique()):
            marker = LAYER_MARKERS[(layer - 1) % len(LAYER_MARKERS)]
            b0 = float(part[part.layer == layer].initial_median.iloc[0])
            log_line = np.log10(b0) + per_epoch * e * np.log10(1 - lr)  # (400,)
            keep = log_line > np.log10(SUBNORMAL)  # what float64 can hold
            ax.plot(e[keep], 10.0 ** log_line[keep], color="black", linewidth=1.0,
                    label="closed form: median |b(0)| (1 − lr)^(updates)" if layer == 1
                    else None)
            for k, act in enumerate(acts):
                p = part[(part.layer == layer) & (part.activation == act)].sort_values("epoch")
                ax.plot(p.epoch, plots.positive(p.measured_median), linestyle="none",
                        marker=marker, markersize=7 - 2.5 * k, color=plots.color(act),
                        mfc="none" if k else plots.color(act), label=f"{act}, layer {layer}")
        low = float(np.nanmin(plots.positive(part.measured_median)))
        if low < tiny:
            ax.axhline(tiny, color="0.5", linestyle=":", linewidth=1.0)
            ax.annotate(f"smallest normal float64, {tiny:.1e}: below it lr·b rounds\n"
                        f"to 0 and the decay stops (at {low:.1e})", (budget, tiny),
                        xytext=(0, 6), textcoords="offset points", ha="right", fontsize=8)
        top = float(part.measured_median.max())
        ax.set_yscale("log")
        ax.set_ylim(max(low / 1e6, SUBNORMAL), top * 1e6)
        ax.set_xlabel("epoch")
        ax.set_ylabel("‖b_l‖, median over seeds (log scale)")
        both = (f"{' and '.join(acts)} programs (the same biases)" if len(acts) > 1
                else f"{acts[0]} program")
        ax.set_title(f"lr {lr:g}: {both}\n{int(part.n.max()):,} seeds, {budget:,} epochs of "
                     f"{per_epoch:g} updates", fontsize=10)
        ax.legend(loc="upper right", fontsize=7.5, ncols=2 if len(acts) > 1 else 1)
    plots.suptitle(fig, "The bias line b -= lr * b: every bias shrinks by (1 − lr) at each "
                        "update and never learns; measured against the closed form")
    return plots.save(fig, out_dir / "bias_decay.png")
