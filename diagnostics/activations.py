"""Activation functions: one table, name -> Activation.

Every entry gives the function and its derivative with respect to the *pre-activation* z.
``grad(z, a, out)`` also receives ``a = fn(z)`` so that sigmoid and tanh can reuse it. No entry
emits an overflow warning for large |z|, and relu, tanh and sigmoid are computed with exactly the
operations of the question's program so that the faithful preset matches it to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
_GELU_C = math.sqrt(2.0 / math.pi)
_LECUN_A, _LECUN_B = 1.7159, 2.0 / 3.0


@dataclass(frozen=True)
class Activation:
    """An activation function and its derivative d fn / d z."""

    name: str
    fn: Callable[..., Array]  # fn(z, out=None) -> a
    grad: Callable[..., Array]  # grad(z, a, out=None) -> d a / d z at z, with a = fn(z)
    max_grad: float  # sup_z |fn'(z)|: saturation is measured relative to it
    saturating: bool  # fn' -> 0 for large |z| on both sides (sigmoid, tanh, ...)
    rectifier: bool  # a ReLU-family unit that can be "dead" (z <= 0 on every sample)
    params: dict[str, float] = field(default_factory=dict)  # shape parameters, e.g. slope

    def __call__(self, z: Array) -> Array:
        return self.fn(z)


def _logistic(z: Array) -> Array:
    """sigma(z) for any z without overflow: exp(-|z|) never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---- kernels -------------------------------------------------------------------------------


def _identity(z, out=None):
    if out is None:
        return np.array(z, dtype=np.result_type(z, np.float32), copy=True)
    np.copyto(out, z)
    return out


def _identity_grad(z, a, out=None):
    if out is None:
        return np.ones_like(z)
    out.fill(1.0)
    return out


def _sigmoid(z, out=None):
    # the question's 1.0 / (1 + exp(-z)), bit for bit; exp overflows to inf for z << 0,
    # where 1 / inf = 0 is the right answer, so that overflow is silenced
    with np.errstate(over="ignore"):
        out = np.exp(-z, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)


def _sigmoid_grad(z, a, out=None):
    out = np.subtract(1.0, a, out=out)
    return np.multiply(a, out, out=out)


def _tanh(z, out=None):
    return np.tanh(z, out=out)


def _tanh_grad(z, a, out=None):
    # the question's 1.0 - tanh(z) ** 2
    out = np.multiply(a, a, out=out)
    return np.subtract(1.0, out, out=out)


def _relu(z, out=None):
    return np.maximum(0, z, out=out)


def _relu_grad(z, a, out=None):
    if out is None:
        return (z > 0).astype(z.dtype)
    return np.greater(z, 0, out=out)  # bool -> float cast on store


def _leaky_relu(slope):
    def fn(z, out=None):
        out = np.multiply(z, slope, out=out)
        return np.maximum(z, out, out=out)  # valid for 0 <= slope <= 1

    def grad(z, a, out=None):
        gt = z > 0
        if out is None:
            out = np.empty_like(z)
        out.fill(slope)
        np.copyto(out, 1.0, where=gt)
        return out

    return fn, grad


def _elu(alpha, scale=1.0):
    def fn(z, out=None):
        neg = np.expm1(np.minimum(z, 0.0))
        neg *= alpha
        out = np.where(z > 0, z, neg) if out is None else _where_into(out, z > 0, z, neg)
        if scale != 1.0:
            out *= scale
        return out

    def grad(z, a, out=None):
        neg = np.exp(np.minimum(z, 0.0))
        neg *= alpha * scale
        pos = scale
        if out is None:
            return np.where(z > 0, pos, neg)
        return _where_into(out, z > 0, pos, neg)

    return fn, grad


def _where_into(out, cond, x, y):
    np.copyto(out, y)
    np.copyto(out, x, where=cond)
    return out


def _softplus(z, out=None):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
    out = np.log1p(np.exp(-np.abs(z)), out=out)
    out += np.maximum(z, 0.0)
    return out


def _softplus_grad(z, a, out=None):
    g = _logistic(z)
    if out is None:
        return g
    np.copyto(out, g)
    return out


def _gelu(z, out=None):
    # tanh approximation (Hendrycks & Gimpel 2016); |z| clamped at 50 inside the cubic only,
    # where tanh(.) is already +-1 exactly
    zc = np.clip(z, -50.0, 50.0)
    inner = np.tanh(_GELU_C * (zc + 0.044715 * zc**3))
    inner += 1.0
    inner *= 0.5
    return np.multiply(z, inner, out=out)


def _gelu_grad(z, a, out=None):
    zc = np.clip(z, -50.0, 50.0)
    t = np.tanh(_GELU_C * (zc + 0.044715 * zc**3))
    dinner = _GELU_C * (1.0 + 3 * 0.044715 * zc**2)
    g = 0.5 * (1.0 + t) + 0.5 * zc * (1.0 - t * t) * dinner
    if out is None:
        return g
    np.copyto(out, g)
    return out


def _silu(z, out=None):
    return np.multiply(z, _logistic(z), out=out)


def _silu_grad(z, a, out=None):
    s = _logistic(z)
    g = s * (1.0 + z * (1.0 - s))
    if out is None:
        return g
    np.copyto(out, g)
    return out


def _softsign(z, out=None):
    d = np.abs(z)
    d += 1.0
    return np.divide(z, d, out=out)


def _softsign_grad(z, a, out=None):
    # 1 / (1 + |z|)^2, squared after the division so that it cannot overflow
    d = np.abs(z)
    d += 1.0
    out = np.divide(1.0, d, out=out)
    return np.multiply(out, out, out=out)


def _lecun_tanh(z, out=None):
    out = np.multiply(z, _LECUN_B, out=out)
    np.tanh(out, out=out)
    out *= _LECUN_A
    return out


def _lecun_tanh_grad(z, a, out=None):
    # d/dz A tanh(Bz) = A B (1 - tanh(Bz)^2) = A B - (B/A) a^2
    out = np.multiply(a, a, out=out)
    out *= -_LECUN_B / _LECUN_A
    out += _LECUN_A * _LECUN_B
    return out


def leaky_relu(slope: float = 0.01) -> Activation:
    """Leaky ReLU max(z, slope*z), 0 <= slope < 1."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky slope {slope!r} is out of range: use 0 <= slope < 1")
    fn, grad = _leaky_relu(slope)
    return Activation("leaky_relu", fn, grad, 1.0, False, True, {"slope": slope})


def _peak(fn, grad) -> float:
    """sup |grad| on a fine grid over [-10, 10] (where the peak lies for gelu and silu)."""
    z = np.linspace(-10.0, 10.0, 200_001)
    return float(np.abs(grad(z, fn(z))).max())


_elu_fn, _elu_grad = _elu(1.0)
_selu_fn, _selu_grad = _elu(_SELU_ALPHA, _SELU_SCALE)

ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation("identity", _identity, _identity_grad, 1.0, False, False),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_grad, 0.25, True, False),
    "tanh": Activation("tanh", _tanh, _tanh_grad, 1.0, True, False),
    "relu": Activation("relu", _relu, _relu_grad, 1.0, False, True),
    "leaky_relu": leaky_relu(0.01),
    "elu": Activation("elu", _elu_fn, _elu_grad, 1.0, False, False),
    "selu": Activation("selu", _selu_fn, _selu_grad, _SELU_SCALE * _SELU_ALPHA, False, False),
    "softplus": Activation("softplus", _softplus, _softplus_grad, 1.0, False, False),
    "gelu": Activation("gelu", _gelu, _gelu_grad, _peak(_gelu, _gelu_grad), False, False),
    "silu": Activation("silu", _silu, _silu_grad, _peak(_silu, _silu_grad), False, False),
    "softsign": Activation("softsign", _softsign, _softsign_grad, 1.0, True, False),
    "lecun_tanh": Activation(
        "lecun_tanh", _lecun_tanh, _lecun_tanh_grad, _LECUN_A * _LECUN_B, True, False
    ),
}
ALIASES = {"swish": "silu", "linear": "identity", "scaled_tanh": "lecun_tanh"}


def get_activation(name: str, *, leaky_slope: float | None = None) -> Activation:
    """Look up an activation by name (aliases: swish, linear, scaled_tanh).

    Args:
        name: a key of ``ACTIVATIONS`` or an alias.
        leaky_slope: negative-side slope for ``leaky_relu`` (default 0.01).

    Returns:
        The table entry.
    """
    key = ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        valid = ", ".join([*ACTIVATIONS, *ALIASES])
        raise ValueError(f"unknown activation {name!r}: use one of {valid}")
    if key == "leaky_relu" and leaky_slope is not None:
        return leaky_relu(leaky_slope)
    return ACTIVATIONS[key]
