"""Weight and bias initialisations: one table each, drawn per seed from that seed alone.

A weight initializer maps ``(rng, fan_in, fan_out)`` to a ``(fan_out, fan_in)`` array, where
``rng`` is a ``np.random.Generator`` or, for the faithful preset, a ``np.random.RandomState``
(both offer ``standard_normal``, ``uniform`` and ``beta``). Parameters are drawn layer by layer,
weights then bias, from one stream per seed: with ``rng="legacy"`` and the standard normal
initialisation this is exactly ``np.random.seed(k)`` followed by the question's ``randn`` calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
RAI_SIGMA = 0.6007  # Lu et al. 2019, randomized asymmetric initialisation


@dataclass(frozen=True)
class Initializer:
    """A weight distribution; ``with_bias`` ones also draw the bias (as the last column).

    ``variance(fan_in, fan_out)`` is Var[w] for the i.i.d. ones (None otherwise): the one place
    a spread is declared; the draw of a Gaussian or uniform initializer is derived from it, and
    the theory and the studies read it here.
    """

    name: str
    draw: Callable[..., Array]  # draw(rng, fan_in, fan_out) -> (fan_out, fan_in [+1])
    formula: str  # the distribution, for docs, figures and --help
    with_bias: bool = False
    variance: Callable[[int, int], float] | None = None  # Var[w](fan_in, fan_out), i.i.d. only
    gaussian: bool = False  # weights are normal (the dead-unit closed form needs it)

    def std(self, fan_in: int, fan_out: int) -> float:
        """Standard deviation of one weight (nan when the weights are not i.i.d.)."""
        return math.sqrt(self.variance(fan_in, fan_out)) if self.variance else math.nan


def _normal(name: str, variance: Callable[[int, int], float], formula: str) -> Initializer:
    def draw(rng, fan_in, fan_out):
        return rng.standard_normal((fan_out, fan_in)) * math.sqrt(variance(fan_in, fan_out))

    return Initializer(name, draw, formula, variance=variance, gaussian=True)


def _uniform(name: str, variance: Callable[[int, int], float], formula: str) -> Initializer:
    def draw(rng, fan_in, fan_out):
        r = math.sqrt(3.0 * variance(fan_in, fan_out))  # U(-r, r) has variance r^2 / 3
        return rng.uniform(-r, r, (fan_out, fan_in))

    return Initializer(name, draw, formula, variance=variance)


def _standard_normal(rng, fan_in, fan_out):
    return rng.standard_normal((fan_out, fan_in))  # same stream as np.random.randn


def _orthogonal(rng, fan_in, fan_out):
    # Saxe et al. 2014: Q of the QR of a Gaussian matrix, signs fixed so Q is Haar-distributed
    a = rng.standard_normal((max(fan_out, fan_in), min(fan_out, fan_in)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if fan_out >= fan_in else q.T


def _rai(rng, fan_in, fan_out):
    # Lu, Shin, Su, Karniadakis 2019: (w, b) ~ N(0, sigma^2 / fan_in) jointly, then one random
    # entry of each neuron's (w, b) replaced by a Beta(2, 1) draw
    v = rng.standard_normal((fan_out, fan_in + 1)) * (RAI_SIGMA / math.sqrt(fan_in))
    for j in range(fan_out):
        v[j, int(rng.uniform(0, fan_in + 1))] = rng.beta(2.0, 1.0)
    return v


INITIALIZERS: dict[str, Initializer] = {
    "standard_normal": Initializer(
        "standard_normal", _standard_normal, "N(0, 1) (the question)",
        variance=lambda i, o: 1.0, gaussian=True,
    ),
    "xavier_normal": _normal("xavier_normal", lambda i, o: 2.0 / (i + o),
                             "N(0, 2/(fan_in+fan_out))"),
    "xavier_uniform": _uniform("xavier_uniform", lambda i, o: 2.0 / (i + o),
                               "U(+-sqrt(6/(fan_in+fan_out)))"),
    "he_normal": _normal("he_normal", lambda i, o: 2.0 / i, "N(0, 2/fan_in)"),
    "he_uniform": _uniform("he_uniform", lambda i, o: 2.0 / i, "U(+-sqrt(6/fan_in))"),
    "lecun_normal": _normal("lecun_normal", lambda i, o: 1.0 / i, "N(0, 1/fan_in)"),
    "lecun_uniform": _uniform("lecun_uniform", lambda i, o: 1.0 / (3.0 * i),
                              "U(+-1/sqrt(fan_in))"),
    "orthogonal": Initializer("orthogonal", _orthogonal, "orthogonal (Haar), gain 1"),
    "rai": Initializer(
        "rai", _rai, "randomized asymmetric (Lu et al. 2019), draws the bias too", with_bias=True
    ),
}
INIT_ALIASES = {
    "normal": "standard_normal",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}

BIAS_INITS: dict[str, Callable[..., Array]] = {
    # draw(rng, n, scale) -> (n,): scale is the std for "normal", the value for "constant"
    "normal": lambda rng, n, scale: rng.standard_normal((n, 1))[:, 0] * scale,
    "zero": lambda rng, n, scale: np.zeros(n),
    "constant": lambda rng, n, scale: np.full(n, float(scale)),
}
RNGS = ("legacy", "pcg64")


def get_initializer(name: str) -> Initializer:
    """Look up a weight initializer by name (aliases: glorot_*, kaiming_*, normal)."""
    key = INIT_ALIASES.get(name, name)
    if key not in INITIALIZERS:
        valid = ", ".join([*INITIALIZERS, *INIT_ALIASES])
        raise ValueError(f"unknown init {name!r}: use one of {valid}")
    return INITIALIZERS[key]


def check_bias_init(name: str) -> None:
    """Raise ValueError unless ``name`` is a key of ``BIAS_INITS``."""
    if name not in BIAS_INITS:
        raise ValueError(f"unknown bias init {name!r}: use one of {', '.join(BIAS_INITS)}")


def make_rng(
    kind: str, seed: int, reuse: np.random.RandomState | None = None
) -> np.random.RandomState | np.random.Generator:
    """The per-seed stream: ``legacy`` = np.random.RandomState(seed), ``pcg64`` = default_rng.

    ``reuse``, a RandomState, is re-seeded instead of building a new one (100x cheaper, same
    stream as ``np.random.seed(seed)``).
    """
    if kind == "legacy":
        if reuse is None:
            return np.random.RandomState(seed)
        reuse.seed(seed)
        return reuse
    if kind == "pcg64":
        return np.random.default_rng(seed)
    raise ValueError(f"unknown rng {kind!r}: use one of {', '.join(RNGS)}")


def draw_parameters(
    layers: Sequence[int],
    seed: int,
    init: str = "standard_normal",
    bias_init: str = "normal",
    bias_scale: float = 1.0,
    rng: str = "legacy",
    *,
    reuse: np.random.RandomState | None = None,
) -> list[tuple[Array, Array]]:
    """Draw one network's ``[(W, b), ...]`` from seed alone, layer by layer, W before b.

    Args:
        layers: units per layer, inputs first, e.g. (2, 4, 4, 1).
        seed: the seed; the stream is ``make_rng(rng, seed)``.
        init: weight initializer name (``INITIALIZERS``).
        bias_init: ``normal`` (std ``bias_scale``), ``zero`` or ``constant`` (``bias_scale``).
        bias_scale: std of normal biases, or the constant value.
        rng: ``legacy`` (the question's ``np.random.seed``) or ``pcg64``.
        reuse: a RandomState to re-seed for ``legacy`` draws (see ``make_rng``).

    Returns:
        For each layer, W with shape (fan_out, fan_in) and b with shape (fan_out,), float64.
    """
    initializer = get_initializer(init)
    check_bias_init(bias_init)
    stream = make_rng(rng, seed, reuse)
    params = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:], strict=True):
        w = initializer.draw(stream, fan_in, fan_out)
        if initializer.with_bias:
            w, b = w[:, :-1], w[:, -1]
        else:
            b = BIAS_INITS[bias_init](stream, fan_out, bias_scale)
        params.append((np.ascontiguousarray(w, dtype=np.float64), np.asarray(b, np.float64)))
    return params


def draw_ensemble(
    layers: Sequence[int],
    seeds: Sequence[int],
    init: str = "standard_normal",
    bias_init: str = "normal",
    bias_scale: float = 1.0,
    rng: str = "legacy",
) -> list[list[tuple[Array, Array]]]:
    """``draw_parameters`` for each seed, in order (each from its own seed alone)."""
    reuse = np.random.RandomState(0) if rng == "legacy" else None
    return [
        draw_parameters(layers, int(k), init, bias_init, bias_scale, rng, reuse=reuse)
        for k in seeds
    ]
