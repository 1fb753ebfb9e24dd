"""Figure style shared by every study: one colour per activation, titled and labelled axes,
legends outside the data, PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diagnostics.activations import ACTIVATIONS  # noqa: E402
from studies.run.files import write_with  # noqa: E402

# one colour per activation, the same in every figure: Okabe-Ito first, then tab10's others;
# an activation beyond them takes the next of tab20's, and the import fails rather than reuse one
_PALETTE = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#A6761D",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
]
# outcomes and failure kinds: a palette of their own, disjoint from the activations'
OUTCOME_COLORS: dict[str, str] = {
    "converged": "#4DAC26", "not_converged": "#F1B6DA", "stuck": "#B2182B", "diverged": "#5E3C99",
    "born_dead": "#B2182B", "died": "#EF8A62", "other": "#92C5DE",
    "zero_gradient": "#B2182B", "constant_output": "#EF8A62", "output_varies": "#92C5DE",
}
_FIRST = ("relu", "tanh", "sigmoid")
_ORDER = [*_FIRST, *(n for n in ACTIVATIONS if n not in _FIRST)]


def _activation_colors() -> dict[str, str]:
    from matplotlib.colors import to_hex

    extra = [to_hex(c) for c in plt.get_cmap("tab20").colors]
    pool = [*_PALETTE, *(c for c in extra if c not in _PALETTE)]
    pool = [c for c in pool if c not in OUTCOME_COLORS.values()]
    if len(_ORDER) > len(pool):
        raise RuntimeError(f"{len(_ORDER)} activations but only {len(pool)} distinct colours")
    return dict(zip(_ORDER, pool, strict=False))


ACTIVATION_COLORS: dict[str, str] = _activation_colors()

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 8.5,
        "font.size": 9.5,
    }
)


def color(activation: str) -> str:
    """The activation's colour (every activation of the table has its own)."""
    return ACTIVATION_COLORS[activation]


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0, **kw):
    """A figure with constrained layout (so outside legends are kept in the canvas)."""
    return plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), layout="constrained", **kw
    )


def suptitle(fig, text: str, **kw) -> None:
    """A figure title wrapped to the figure's width, so no word is cut off at the edges."""
    import textwrap

    chars = max(30, int(fig.get_figwidth() * 11))  # about 11 characters per inch at 9.5 pt
    lines = [textwrap.fill(line, chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), **kw)


def legend_outside(ax, **kw) -> None:
    """Legend to the right of the axes, where it cannot cover data (none if nothing is
    labelled, e.g. a tiny run with no band drawn)."""
    if "handles" not in kw and not ax.get_legend_handles_labels()[0]:
        return
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def band(ax, x, lo, mid, hi, *, label: str, color: str, alpha: float = 0.2) -> None:
    """Median line with an interquartile band."""
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)
    ax.plot(x, mid, color=color, label=label, linewidth=1.6)


def outcome_bars(ax, table, groups, tick_labels: list[str]) -> None:
    """One bar per outcome (share of seeds, %, with its 95% interval) for each (activation, lr)
    of ``groups``, from a table of outcome shares (activation, lr, outcome, share, ci_low,
    ci_high); the tick labels are coloured by activation."""
    names = ("converged", "not_converged", "stuck", "diverged")
    width = 0.8 / len(names)
    x = np.arange(len(groups))
    for j, name in enumerate(names):
        rows = [table[(table.activation == a) & (table.lr == lr) & (table.outcome == name)]
                .iloc[0] for a, lr in groups]
        share = np.array([r.share for r in rows]) * 100
        err = np.array([[r.share - r.ci_low, r.ci_high - r.share] for r in rows]).T * 100
        ax.bar(x + (j - (len(names) - 1) / 2) * width, share, width, yerr=err, capsize=2,
               color=OUTCOME_COLORS[name], label=name.replace("_", " "),
               error_kw={"linewidth": 0.8})
    ax.set_xticks(x, tick_labels)
    for label, (a, _) in zip(ax.get_xticklabels(), groups, strict=True):
        label.set_color(color(a))
    ax.set_ylabel("share of seeds (%)")
    ax.set_ylim(0, 105)
    legend_outside(ax, title="outcome")


def save(fig, path: Path) -> Path:
    """Write the figure as PNG atomically and close it."""
    write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)


def positive(values) -> np.ndarray:
    """Values with non-positive entries as nan, for log axes."""
    v = np.asarray(values, dtype=float)
    return np.where(v > 0, v, np.nan)
