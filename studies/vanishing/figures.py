"""The vanishing study's figures, drawn from its CSV tables only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from studies import plots
from studies.run.study import read_table

from .grid import ACTIVATIONS, INITS

CLIP = 0.01  # the gradient heatmaps' colour range: these quantiles of all plotted values
ZERO_CMAP = ListedColormap(["0.55"])  # cells whose median gradient is exactly zero
INIT_STYLE = {
    "standard_normal": "-", "xavier_normal": "--", "he_normal": ":", "lecun_uniform": "-.",
}


CAPTIONS = {  # figure -> the line printed under it in the report: what to take from it
    "ratio_vs_depth.png": (
        "Gradient of the first layer relative to the last at initialisation, against depth (deep "
        "networks of fixed width, not the question's): ratios of order one mean no vanishing; the "
        "black lines are the published per-layer factors."
    ),
    "per_layer_profile.png": (
        "Per-layer gradient norms at initialisation in the deepest network: how the gradient "
        "changes layer by layer for each activation and initialisation."
    ),
    "per_layer_factor.png": (
        "The measured per-layer factor of the back-propagated gradient against the published "
        "theory values and the mean-field bound."
    ),
    "heatmap_grad.png": (
        "Weight-gradient norm per layer during training of the deepest network: which layers "
        "receive a gradient, and for how long."
    ),
    "heatmap_saturation.png": (
        "Share of saturated units per layer during training of the deepest network, for the "
        "activation and initialisation pairs that saturate at all (the others are named in the "
        "title)."
    ),
}


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
                        style=INIT_STYLE.get(init, "-"), label=f"{init}")
                if p.theory.notna().any():
                    ax.plot(p.depth, p.theory, color="black", linewidth=1.1,
                            linestyle=INIT_STYLE.get(init, "-"),
                            label=f"theory, {init}: ‖∂L/∂z‖² × "
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
    plots.suptitle(
        fig,
        "First-to-last gradient ratio at initialisation vs depth: median (line) and "
        f"interquartile band over {n} seeds\nbelow 1 = the first layer gets a smaller "
        "gradient than the last; black = theory (Glorot & Bengio 2010; He et al. 2015),\n"
        "which is about the mean of ‖∂L/∂z‖²: the median of a product of random "
        "per-layer factors lies somewhat below it"
    )
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
                        style=INIT_STYLE.get(init, "-"), label=init)
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
                            label=f"theory slope, {init}: "
                                  f"‖∂L/∂z‖² × {_fraction(f.theory.iloc[0])} per layer")
                elif act == "sigmoid" and init == "xavier_normal":
                    b = f.mean_field_bound.iloc[0]
                    ax.plot(layers, anchor.iloc[0] * b ** ((depth - layers) / 2), color="0.45",
                            linewidth=1.3, linestyle=(0, (1, 1)),
                            label=f"theory bound, {init}: σ' ≤ 1/4, n·Var[w] = 1"
                                  f"\n→ ‖∂L/∂z‖² × at most {_fraction(b)} per layer")
            ax.axvline(depth + 0.5, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_yscale("log")
            ax.set_xlabel(f"layer l\n(1 = next to the inputs, {depth + 1} = output)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(act, color=plots.color(act), fontweight="bold")
        _row_legend(axes[row])
    plots.suptitle(
        fig,
        f"Per-layer gradient norms at initialisation, {depth} hidden layers: median and "
        f"interquartile band over {n} seeds\nblack = theory slope anchored at the last "
        "hidden layer; dotted vertical line = hidden | output"
    )
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
        ax.set_yticks(range(len(rows)), [f"{a} / {i}" for a, i in rows])
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
    left_out = []
    if saturation:  # a pair that never saturates would be a blank panel: named, not drawn
        peak = t.groupby(["activation", "init"])[column].transform("max")
        left_out = sorted({f"{a}/{i}" for a, i in zip(t.activation[peak <= 0], t.init[peak <= 0],
                                                        strict=True)})
        if (peak > 0).any():
            t = t[peak > 0]
    left_out = []
    if saturation:  # a pair that never saturates would be a blank panel: named, not drawn
        peak = t.groupby(["activation", "init"])[column].transform("max")
        left_out = sorted({f"{a}/{i}" for a, i in zip(t.activation[peak <= 0], t.init[peak <= 0],
                                                        strict=True)})
        if (peak > 0).any():
            t = t[peak > 0]
    acts = _ordered(t.activation, ACTIVATIONS)
    inits = _ordered(t.init, INITS)
    epochs = np.sort(t.epoch.unique())  # one column per recording, shared by every panel
    nrows, ncols = max(len(acts), 1), max(len(inits), 1)
    # wider panels when there are few, so that the title and the colour bar stay readable; a
    # third title line when some pairs are left out
    fig, axes = _panels(nrows, ncols, panel=(max(3.0, 6.0 / ncols), 2.1 if nrows > 1 else 3.0),
                        left=0.7, right=1.6, top=1.0 if left_out else 0.7, bottom=0.55,
                        wgap=0.12, hgap=0.45, sharex=True, sharey=True)
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
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
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
            ax.set_title(f"{act} / {init}", color=plots.color(act))
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
    never = f"\nnever saturated (not drawn): {', '.join(left_out)}" if left_out else ""
    plots.suptitle(
        fig,
        f"{what.capitalize()} per layer during training, {depth} hidden layers, median "
        f"over {n} seeds (online SGD, fixed preset){never}"
    )
    return plots.save(fig, out_dir / name)
