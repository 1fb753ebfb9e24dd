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

# one colour per activation, the same in every figure (Okabe-Ito first, then tab10)
_PALETTE = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#A6761D",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
]
_FIRST = ("relu", "tanh", "sigmoid")
_ORDER = [*_FIRST, *(n for n in ACTIVATIONS if n not in _FIRST)]
ACTIVATION_COLORS: dict[str, str] = dict(zip(_ORDER, _PALETTE, strict=False))

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
    """The activation's colour."""
    return ACTIVATION_COLORS.get(activation, "#444444")


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0, **kw):
    """A figure with constrained layout (so outside legends are kept in the canvas)."""
    return plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), layout="constrained", **kw
    )


def legend_outside(ax, **kw) -> None:
    """Legend to the right of the axes, where it cannot cover data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def band(ax, x, lo, mid, hi, *, label: str, color: str, alpha: float = 0.2) -> None:
    """Median line with an interquartile band."""
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)
    ax.plot(x, mid, color=color, label=label, linewidth=1.6)


def save(fig, path: Path) -> Path:
    """Write the figure as PNG atomically and close it."""
    write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)


def positive(values) -> np.ndarray:
    """Values with non-positive entries as nan, for log axes."""
    v = np.asarray(values, dtype=float)
    return np.where(v > 0, v, np.nan)
