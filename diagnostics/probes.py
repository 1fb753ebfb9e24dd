"""Instruments: pure functions of one full pass over the dataset -> one value per seed.

Every probe is measured on a full pass over the whole dataset with the parameters as they are at
the recording epoch (standard back-propagation of the mean squared error over all samples, true
bias gradient), so values are comparable across batching modes and quirks. Norms are Frobenius
norms; L = (1/N) sum_n sum_o (y_hat - y)^2.

Layer probes (``layer`` = 1 .. n_layers, the output layer last):

- ``grad_norm_W``  ||dL/dW_l||;  ``grad_norm_b``  ||dL/db_l||.
- ``grad_norm_z``  ||dL/dz_l|| over units and samples: the back-propagated error at the layer's
  pre-activation.
- ``dead_fraction``  (ReLU family only) share of the layer's units whose pre-activation is <= 0 on
  every sample of the dataset. Such a unit passes no gradient to its incoming weights on any sample
  (for plain ReLU); compare keras-contrib's DeadReluDetector (a unit is dead when it outputs 0 on
  every training sample) — the same definition.
- ``saturation_fraction``  (saturating activations only) share of (unit, sample) pairs whose
  derivative is below 1% of the activation's maximum derivative: |z| > 5.99 for sigmoid
  (sigma' < 0.0025), |z| > 2.99 for tanh (1 - tanh^2 < 0.01). SageMaker Debugger's rule uses
  |z| > 9.5 for tanh; DeepDiagnosis |x| >= 5; ours is relative to the derivative, which is what
  scales the gradient.
- ``gain``  mean derivative act'(z) over (unit, sample) pairs: the factor by which the layer scales
  the back-propagated signal, on average.
- ``weight_norm``  ||W_l||;  ``update_ratio``  ||W_l(e) - W_l(e-1)|| / ||W_l(e)||: how much the
  last epoch's updates moved the weights, relative to their size (nan at epoch 0).
- ``z_mean``, ``z_std``  mean and standard deviation of the pre-activation over (unit, sample).

Network probes (``layer`` = 0):

- ``loss``  L at the recording epoch.
- ``grad_ratio``  ||dL/dW_1|| / ||dL/dW_last||: below 1, the first layer learns slower than the
  last.
- ``network_dead``  1.0 when the output is constant over the dataset (every output identical on all
  samples), else 0.0: such a network cannot fit anything.

Per-sample probe (not in ``PROBES``: the monitor stores one value per layer and seed, and this one
keeps the sample axis; a study calls it on the records it builds):

- ``output_slope``  act'(z_out) on every sample: the factor by which the output unit scales its
  own error before anything reaches the layers below. Ratios between layers (``grad_ratio``, the
  first / last ``grad_norm_z``) share this factor and cancel it; a sigmoid or tanh output near the
  top of its range has a small one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .network import seed_sum

Array = np.ndarray
SATURATION_LEVEL = 0.01  # saturated: act'(z) < SATURATION_LEVEL * max act'


@dataclass(frozen=True)
class LayerRecord:
    """One layer of one full pass, all seeds: arrays (units, N, S) or parameter views."""

    z: Array  # (n_out, N, S) pre-activation
    a: Array  # (n_out, N, S) activation
    gz: Array  # (n_out, N, S) act'(z)
    dz: Array  # (n_out, N, S) dL/dz
    W: Array  # (n_out, n_in, S)
    b: Array  # (n_out, S)
    dW: Array  # (n_out, n_in, S)
    db: Array  # (n_out, S)
    W_prev: Array | None  # (n_out, n_in, S) weights one epoch earlier; None at epoch 0
    act: Activation


@dataclass(frozen=True)
class NetworkRecord:
    """The whole pass: every layer plus the loss."""

    layers: list[LayerRecord]
    loss: Array  # (S,)


@dataclass(frozen=True)
class Probe:
    """An instrument: ``fn(record) -> (S,)``; ``applies(act)`` says whether it means anything."""

    name: str
    scope: str  # "layer" or "network"
    group: str  # the --record name that switches it on
    fn: Callable[..., Array]
    applies: Callable[[Activation], bool] = lambda act: True


def _norm(x: Array) -> Array:
    """Frobenius norm over every axis but the last (seeds)."""
    return np.sqrt(seed_sum(np.square(x)))


def _mean(x: Array) -> Array:
    """Mean over every axis but the last (seeds)."""
    return seed_sum(x) / (x.size // x.shape[-1])


def dead_units(r: LayerRecord) -> Array:
    """(n_out, S) True where the unit's pre-activation is <= 0 on every sample."""
    return (r.z <= 0).all(axis=1)


def dead_fraction(r: LayerRecord) -> Array:
    return _mean(dead_units(r))


def saturation_fraction(r: LayerRecord) -> Array:
    return _mean(np.abs(r.gz) < SATURATION_LEVEL * r.act.max_grad)


def gain(r: LayerRecord) -> Array:
    return _mean(r.gz)


def update_ratio(r: LayerRecord) -> Array:
    if r.W_prev is None:
        return np.full(r.W.shape[-1], np.nan)
    return _norm(r.W - r.W_prev) / _norm(r.W)


def z_mean(r: LayerRecord) -> Array:
    return _mean(r.z)


def z_std(r: LayerRecord) -> Array:
    return np.sqrt(_mean(np.square(r.z - _mean(r.z))))


def grad_ratio(n: NetworkRecord) -> Array:
    return _norm(n.layers[0].dW) / _norm(n.layers[-1].dW)


def network_dead(n: NetworkRecord) -> Array:
    out = n.layers[-1].a  # (n_out, N, S)
    constant = (out.max(axis=1) == out.min(axis=1)).all(axis=0)
    return constant.astype(np.float64)


PROBES: dict[str, Probe] = {
    "grad_norm_W": Probe("grad_norm_W", "layer", "grad_norm", lambda r: _norm(r.dW)),
    "grad_norm_b": Probe("grad_norm_b", "layer", "grad_norm", lambda r: _norm(r.db)),
    "grad_norm_z": Probe("grad_norm_z", "layer", "grad_norm", lambda r: _norm(r.dz)),
    "dead_fraction": Probe(
        "dead_fraction", "layer", "dead", dead_fraction, lambda act: act.rectifier
    ),
    "saturation_fraction": Probe(
        "saturation_fraction", "layer", "saturation", saturation_fraction,
        lambda act: act.saturating,
    ),
    "gain": Probe("gain", "layer", "saturation", gain),
    "weight_norm": Probe("weight_norm", "layer", "weights", lambda r: _norm(r.W)),
    "update_ratio": Probe("update_ratio", "layer", "weights", update_ratio),
    "z_mean": Probe("z_mean", "layer", "preact", z_mean),
    "z_std": Probe("z_std", "layer", "preact", z_std),
    "loss": Probe("loss", "network", "loss", lambda n: n.loss),
    "grad_ratio": Probe("grad_ratio", "network", "grad_norm", grad_ratio),
    "network_dead": Probe("network_dead", "network", "dead", network_dead),
}
GROUPS = tuple(dict.fromkeys(p.group for p in PROBES.values()))  # dead also records events


def output_slope(n: NetworkRecord) -> Array:
    """(N, S) act'(z) of the output layer on every sample, the mean over its units when there
    are several: dL/dz_out = dL/dy_hat * act'(z_out), so this is what the output unit multiplies
    its error by (tanh'(0) = 1, sigmoid'(0) = 1/4, relu' = 1 where z > 0 and 0 elsewhere)."""
    return n.layers[-1].gz.mean(axis=0)  # (n_out, N, S) -> (N, S); one unit: itself, exactly
