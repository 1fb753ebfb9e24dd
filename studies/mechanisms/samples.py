"""The output unit's slope and the biases' size over training: a second pass of the programs.

The monitor of a cell (``diagnostics.monitor``) keeps one value per layer and seed. The output
unit's slope keeps the sample axis (``diagnostics.probes.output_slope``: act'(z_out) per sample,
so per target value), and the size of the biases is no probe. So the study trains the programs of
two of its cells once more, the ReLU program (``relu`` / ``sgd``) and the tanh and sigmoid ones
(``tail`` / ``as_written``, up to the budget), with ``SampleMonitor``: the same seeds, data,
configuration and engine, and training does not depend on what observes it, so these are the
cells' own runs, read at the same log-spaced epochs as the ReLU program's instruments. This runs
when the tables are built (it is not cached); it costs about as much as those cells' first budget.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from diagnostics import probes
from diagnostics.config import Config
from diagnostics.data import Dataset
from diagnostics.monitor import Monitor
from diagnostics.schedules import Schedule
from diagnostics.train import train
from studies.run.cells import Cell

Array = np.ndarray
RATIO_PROBES = "grad_norm_W,grad_norm_z"  # the layer ratios' norms


class SampleMonitor(Monitor):
    """A monitor that also keeps, at every recording, act'(z_out) per sample and ‖b_l‖ per layer.

    ``slope`` is ``(R, N, S)`` and ``bias`` ``(R, L, S)``, nan for seeds that diverged; the
    standard probes of ``record`` are kept as usual (``metric``).
    """

    def __init__(self, config: Config, data: Dataset, seeds: Iterable[int],
                 record: str = RATIO_PROBES, every: Schedule | str = "log:30"):
        super().__init__(config, data, seeds, record, every)
        R, S = self.epochs.size, self.seeds.size
        self.slope = np.full((R, data.n_samples, S), np.nan)
        self.bias = np.full((R, len(self.acts), S), np.nan)

    def record(self, epoch: int, net: probes.NetworkRecord, alive: Array) -> None:
        super().record(epoch, net, alive)
        r = int(np.searchsorted(self.epochs, epoch))
        self.slope[r][:, alive] = probes.output_slope(net)
        for l, layer in enumerate(net.layers):  # hypot: a norm whose squares do not underflow
            self.bias[r, l, alive] = np.hypot.reduce(np.abs(layer.b), axis=0)


def sample_run(cell: Cell, budget: int, every: Schedule) -> tuple[SampleMonitor, Dataset]:
    """Train ``cell``'s configuration for ``budget`` epochs on its seeds, observed by a
    ``SampleMonitor`` at the epochs of ``every``; the monitor and the data."""
    config = cell.config.replace(epochs=budget)
    data = cell.dataset()
    m = SampleMonitor(config, data, cell.seed_array, every=every)
    train(config, data, cell.seed_array, loss_epochs=[budget], monitor=m, engine=cell.engine)
    return m, data


def safe_ratio(num: Array, den: Array) -> Array:
    """num / den where den > 0, nan elsewhere (a dead layer: the ratio is undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def layer_ratios(m: SampleMonitor) -> dict[str, Array]:
    """``(R, S)`` per recording and seed: ``z`` = ‖∂L/∂z_1‖ / ‖∂L/∂z_H‖ (first / last hidden
    layer's back-propagated error), ``W`` = ‖∂L/∂W_1‖ / ‖∂L/∂W_out‖ (first / output layer's
    weight gradient). Both share the output's slope act'(z_out), which cancels."""
    L = len(m.acts)
    H = max(L - 1, 1)
    _, z1 = m.metric("grad_norm_z", 1)
    _, zH = m.metric("grad_norm_z", H)
    _, w1 = m.metric("grad_norm_W", 1)
    _, wL = m.metric("grad_norm_W", L)
    return {"z": safe_ratio(z1, zH), "W": safe_ratio(w1, wL)}


def decay_steps(config: Config, n_samples: int) -> int:
    """Bias updates per epoch: one per sample online, one per batch otherwise."""
    if config.batch in ("online", "shuffled"):
        return n_samples
    size = n_samples if config.batch == "full" else int(config.batch)
    return -(-n_samples // size)


def closed_form_factor(lr: float, steps: int) -> float:
    """(1 - lr)^steps: what ``steps`` updates b <- b - lr b multiply every bias by (exactly,
    before rounding); it underflows to 0 below the smallest float64."""
    return (1.0 - lr) ** steps
