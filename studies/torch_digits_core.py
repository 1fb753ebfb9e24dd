"""The computation of a "torch_digits" study: seeded MLPs on scikit-learn's 8x8 digits, in torch.

Pure functions returning tidy columns (dicts of numpy arrays); packaging as a study (grid, CSV,
figures, findings) is left to the study layer. Needs the optional extras torch and scikit-learn.

Data: ``sklearn.datasets.load_digits`` (1797 images, 64 pixels, shipped with scikit-learn), each
pixel standardized over the dataset (constant pixels left at 0).

Loss: regression to the one-hot target with the toolkit's loss L = (1/N) sum_n sum_o (y_hat - y)^2,
not cross-entropy. The probes (``loss``, ``grad_norm_*``, ``grad_ratio``) are defined for that
loss, and an outcome threshold on it means the same thing as in every other study (the squared
distance of the output from its target); with cross-entropy the instruments would measure another
gradient than the numpy engine's and "converged" would need a different scale. The network's
output is linear, as for any regression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
LAYERS = (64, 32, 32, 10)
ACTIVATIONS = ("relu", "leaky_relu", "tanh")  # torch modules in torch_module()


@dataclass(frozen=True)
class DigitsSetup:
    """One cell of the study."""

    activation: str = "relu"  # relu | leaky_relu | tanh
    seeds: int = 100  # seeds 0 .. seeds-1
    epochs: int = 30  # passes over the 1797 images
    batch: int = 32  # minibatch size (the engine's per-seed shuffled order)
    lr: float = 0.05  # SGD learning rate
    momentum: float = 0.0  # SGD momentum
    threshold: float = 0.05  # converged once an epoch's loss <= threshold
    record: str | None = "all"  # instruments, None for none
    record_every: str = "log:20"  # their schedule


def digits_data():
    """The 8x8 digits as a ``Dataset``: X (1797, 64) standardized, Y (1797, 10) one-hot."""
    from sklearn.datasets import load_digits

    from diagnostics.data import Dataset

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    Y = np.eye(10)[y]
    return Dataset("digits", X, Y)


def torch_module(name: str):
    """The torch activation class for an activation name of this study."""
    from torch import nn

    table = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}
    if name not in table:
        raise ValueError(f"activation {name!r} is invalid: use one of {', '.join(table)}")
    return table[name]


def make_mlp(layers: Sequence[int], activation: str) -> Callable:
    """make_model() for run_seeds: PyTorch's default initialisation of each Linear."""
    from diagnostics.torch_adapter import mlp

    act = torch_module(activation)
    return lambda: mlp(layers, act)


def run_cell(setup: DigitsSetup, data=None, vectorize: bool | None = None):
    """Train the cell's seeds; return the ``TorchResult``."""
    import torch

    from diagnostics.torch_adapter import run_seeds

    data = digits_data() if data is None else data
    return run_seeds(
        make_mlp(LAYERS, setup.activation),
        lambda p: torch.optim.SGD(p, lr=setup.lr, momentum=setup.momentum),
        data,
        setup.seeds,
        setup.epochs,
        batch=setup.batch,
        threshold=setup.threshold,
        record=setup.record,
        record_every=setup.record_every,
        vectorize=vectorize,
    )


def _with(cols: dict[str, Array], **extra) -> dict[str, Array]:
    n = len(next(iter(cols.values())))
    return {k: np.full(n, v) for k, v in extra.items()} | cols


def _concat(frames: list[dict[str, Array]]) -> dict[str, Array]:
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def run_study(
    activations: Sequence[str] = ACTIVATIONS, setup: DigitsSetup = DigitsSetup()
) -> dict[str, dict[str, Array]]:
    """Every activation with the same setup: tidy ``outcomes``, ``loss`` and ``metrics``.

    Each frame carries an ``activation`` column first; columns otherwise as
    ``Result.tidy`` and ``Monitor.tidy``.
    """
    from dataclasses import replace

    data = digits_data()
    frames: dict[str, list] = {"outcomes": [], "loss": [], "metrics": []}
    for name in activations:
        res = run_cell(replace(setup, activation=name), data)
        frames["outcomes"].append(_with(res.tidy("outcomes"), activation=name))
        frames["loss"].append(_with(res.tidy("loss"), activation=name))
        if setup.record:
            frames["metrics"].append(_with(res.tidy("metrics"), activation=name))
    return {k: _concat(v) for k, v in frames.items() if v}
