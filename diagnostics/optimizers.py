"""Optimizers: one table, name -> Optimizer. All are element-wise, in place, PyTorch conventions.

``step(theta, g, state, t, hp, tmp)`` updates ``theta`` in place from the gradient ``g``;
``state`` holds arrays shaped like ``theta`` (the parameters' layout), ``t`` is the 1-based step
count, ``hp`` the hyperparameters and ``tmp`` a scratch array shaped like ``theta``. Because every
rule is element-wise, a step may be applied to the whole flat buffer or to one layer's slice of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Hyper:
    """Optimizer hyperparameters."""

    lr: float = 0.01  # learning rate
    momentum: float = 0.9  # heavy-ball / Nesterov coefficient mu
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.999  # Adam second-moment decay
    rms_decay: float = 0.99  # RMSProp squared-gradient decay (PyTorch's alpha)
    eps: float = 1e-8  # Adam / RMSProp denominator guard


@dataclass(frozen=True)
class Optimizer:
    """An update rule and the names of its state arrays."""

    name: str
    state: tuple[str, ...]
    step: Callable[..., None]
    rule: str  # the update, for docs and --help


def _sgd(theta, g, state, t, hp, tmp):
    np.multiply(g, hp.lr, out=tmp)  # theta -= lr * g, as the question writes it
    np.subtract(theta, tmp, out=theta)


def _momentum(theta, g, state, t, hp, tmp):
    v = state["velocity"]
    v *= hp.momentum
    v += g
    np.multiply(v, hp.lr, out=tmp)
    np.subtract(theta, tmp, out=theta)


def _nesterov(theta, g, state, t, hp, tmp):
    v = state["velocity"]
    v *= hp.momentum
    v += g
    np.multiply(v, hp.momentum, out=tmp)
    tmp += g
    tmp *= hp.lr
    np.subtract(theta, tmp, out=theta)


def _adam(theta, g, state, t, hp, tmp):
    m, v = state["m"], state["v"]
    np.multiply(g, 1.0 - hp.beta1, out=tmp)
    m *= hp.beta1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - hp.beta2
    v *= hp.beta2
    v += tmp
    # theta -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)
    np.divide(v, 1.0 - hp.beta2**t, out=tmp)
    np.sqrt(tmp, out=tmp)
    tmp += hp.eps
    np.divide(m, tmp, out=tmp)
    tmp *= hp.lr / (1.0 - hp.beta1**t)
    np.subtract(theta, tmp, out=theta)


def _rmsprop(theta, g, state, t, hp, tmp):
    s = state["square_avg"]
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - hp.rms_decay
    s *= hp.rms_decay
    s += tmp
    np.sqrt(s, out=tmp)
    tmp += hp.eps
    np.divide(g, tmp, out=tmp)
    tmp *= hp.lr
    np.subtract(theta, tmp, out=theta)


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer("sgd", (), _sgd, "theta -= lr*g"),
    "momentum": Optimizer("momentum", ("velocity",), _momentum, "v = mu*v + g; theta -= lr*v"),
    "nesterov": Optimizer(
        "nesterov", ("velocity",), _nesterov, "v = mu*v + g; theta -= lr*(g + mu*v)"
    ),
    "adam": Optimizer(
        "adam", ("m", "v"), _adam, "bias-corrected Adam (Kingma & Ba 2015)"
    ),
    "rmsprop": Optimizer(
        "rmsprop",
        ("square_avg",),
        _rmsprop,
        "s = a*s + (1-a)*g^2; theta -= lr*g/(sqrt(s) + eps)",
    ),
}


def get_optimizer(name: str) -> Optimizer:
    """Look up an optimizer by name."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def init_state(optimizer: Optimizer, theta: Array) -> dict[str, Array]:
    """Zero state arrays shaped like ``theta``."""
    return {name: np.zeros_like(theta) for name in optimizer.state}
