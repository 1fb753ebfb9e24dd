"""The mechanisms study's figures, drawn from its CSV tables only; one caption per figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies import plots
from studies.run.study import read_table

from .grid import INITS, VARIANT_LABELS

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
    """asymptote.png, tail.png, momentum.png, dead_output.png (those whose data ran)."""
    out = []
    if len(read_table(tables_dir, "asymptote")):
        out.append(_asymptote_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "tail_fit")):
        out.append(_tail_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "momentum")):
        out.append(_momentum_figure(tables_dir, out_dir))
    if len(read_table(tables_dir, "dead_output_init")):
        out.append(_dead_output_figure(tables_dir, out_dir))
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
            text = f"{VARIANT_LABELS[r.variant]}\n(step lr {r.step_lr:g})"
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
