"""Closed forms the studies overlay on measurements (numpy + stdlib only).

Sources are listed in shared/REFERENCES.md; each function's docstring names its own.
"""

from __future__ import annotations

import math

import numpy as np

from .initializers import get_initializer

# E[act'(z)^2] at initialisation, where the derivative is known without the weights' size:
# ReLU passes half of a symmetric input (He et al. 2015); tanh is linear near 0 (Glorot & Bengio
# 2010, small weights). Var[w] comes from the initializer table.
SQUARED_SLOPE: dict[str, float] = {"relu": 0.5, "tanh": 1.0}
TANH_LINEAR_REGIME = 1.0  # tanh' ~ 1 only while n·Var[w] keeps pre-activations of unit scale

_MC_CHUNK_ELEMENTS = 4_000_000  # largest (draws × rows) block the Monte Carlo holds at once


def _validated_data(X: np.ndarray) -> np.ndarray:
    """Return X as a float64 (n, d) array, or raise ValueError naming the problem."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (n, d); got shape {X.shape}")
    if X.shape[0] < 1:
        raise ValueError(f"X must have at least one row; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must contain only finite values; found NaN or inf")
    return X


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """z-component of (a − o) × (b − o); > 0 for a counter-clockwise turn."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _convex_hull_2d(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of 2-D points, counter-clockwise (Andrew's monotone chain).

    Collinear points on an edge are dropped. A single distinct point gives one vertex; collinear
    input gives the two end points.

    Args:
        points: array of shape (n, 2), n ≥ 1.

    Returns:
        Array of shape (h, 2), 1 ≤ h ≤ n.
    """
    unique = np.unique(np.asarray(points, dtype=np.float64), axis=0)  # sorted by (x, y)
    pts = [(float(x), float(y)) for x, y in unique]
    if len(pts) <= 2:
        return np.array(pts)
    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _spherical_perimeter(vertices: np.ndarray) -> float:
    """Sum of great-circle arcs between consecutive unit vectors, closing the loop."""
    nxt = np.roll(vertices, -1, axis=0)
    sin = np.linalg.norm(np.cross(vertices, nxt), axis=1)
    cos = np.einsum("ij,ij->i", vertices, nxt)
    return float(np.sum(np.arctan2(sin, cos)))


def _dead_probability_monte_carlo(X: np.ndarray, n_samples: int, seed: int) -> float:
    """Fraction of n_samples standard-normal (w, b) with w·x_i + b ≤ 0 on every row of X."""
    lifted = np.hstack([X, np.ones((X.shape[0], 1))])  # (n, d + 1)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MC_CHUNK_ELEMENTS // lifted.shape[0])
    dead = 0
    for start in range(0, n_samples, chunk):
        m = min(chunk, n_samples - start)
        v = rng.standard_normal((m, lifted.shape[1]))  # (m, d + 1)
        dead += int(np.count_nonzero(np.all(v @ lifted.T <= 0.0, axis=1)))
    return dead / n_samples


def dead_probability(X: np.ndarray, *, n_samples: int = 200_000, seed: int = 0) -> float:
    """P(w·x_i + b ≤ 0 for every row x_i of X) for (w, b) i.i.d. N(0, σ²), any common σ.

    The dead set is the polar cone of the lifted data {(x_i, 1)}, so p is its solid angle over the
    whole sphere (shared/REFERENCES.md, "Dead ReLU units at initialisation"):

    - d = 0: p = 1/2 (the unit is the bias alone).
    - d = 1: p = 1/2 − (atan max X − atan min X) / (2π); data spanning [−1, 1] gives 1/4.
    - d = 2: p = 1/2 − P / (4π), P the perimeter of the spherical polygon on the normalised lifted
      convex-hull vertices (x_i, 1)/‖(x_i, 1)‖; a single point gives P = 0 and collinear data an
      arc traversed twice, P = 2 × its length.
    - d ≥ 3: no closed form here; a Monte Carlo estimate from n_samples draws of
      np.random.default_rng(seed), standard error √(p(1 − p)/n_samples).

    Args:
        X: data of shape (n, d), n ≥ 1, finite.
        n_samples: Monte Carlo draws, used only when d ≥ 3.
        seed: Monte Carlo seed, used only when d ≥ 3.

    Returns:
        The probability p in [0, 1/2].
    """
    X = _validated_data(X)
    d = X.shape[1]
    if d == 0:
        return 0.5
    if d == 1:
        span = math.atan(float(X.max())) - math.atan(float(X.min()))
        return 0.5 - span / (2.0 * math.pi)
    if d == 2:
        hull = _convex_hull_2d(X)  # (h, 2), counter-clockwise
        lifted = np.hstack([hull, np.ones((hull.shape[0], 1))])  # (h, 3)
        lifted /= np.linalg.norm(lifted, axis=1, keepdims=True)
        return 0.5 - _spherical_perimeter(lifted) / (4.0 * math.pi)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples}")
    return _dead_probability_monte_carlo(X, int(n_samples), seed)


def all_dead_probability(p: float, width: int) -> float:
    """P(all `width` independent units dead) = p ** width (the dead count is Binomial(width, p))."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1]; got {p}")
    if width < 0:
        raise ValueError(f"width must be a non-negative integer; got {width}")
    return float(p) ** width


def second_layer_dead_probability(n0: int, n1: int) -> float:
    """P(a 2nd-layer ReLU is inactive on all of R^n0): 1/2^(n1+1) if n1 ≤ n0, else see below.

    (2^n0 + 1) / 4^(n0+1) when n1 = n0 + 1. Symmetric i.i.d. weights and biases, n0 inputs, n1
    first-layer units (Brownlowe et al. 2024, "Stably unactivated neurons in ReLU neural networks").
    """
    if n0 < 1 or n1 < 1:
        raise ValueError(f"n0 and n1 must be positive integers; got n0={n0}, n1={n1}")
    if n1 <= n0:
        return 1.0 / 2.0 ** (n1 + 1)
    if n1 == n0 + 1:
        return (2.0**n0 + 1.0) / 4.0 ** (n0 + 1)
    raise ValueError(f"closed form known only for n1 <= n0 or n1 == n0 + 1; got n0={n0}, n1={n1}")


def sigmoid_chain_bound(depth: float | np.ndarray) -> float | np.ndarray:
    """Upper bound (1/4)^depth on a sigmoid chain's derivative, since σ'(z) = σ(1 − σ) ≤ 1/4.

    Multiply by the product of the weight magnitudes for the full bound. Vectorized over depth.
    """
    depth_arr = np.asarray(depth, dtype=np.float64)
    if np.any(depth_arr < 0) or not np.all(np.isfinite(depth_arr)):
        raise ValueError(f"depth must be finite and non-negative; got {depth!r}")
    bound = np.power(0.25, depth_arr)
    return float(bound) if bound.ndim == 0 else bound


def backprop_variance_factor(activation: str, init: str, width: int = 100) -> float:
    """Per-layer factor n·Var[w]·E[act'(z)²] on the back-propagated variance at initialisation.

    Var[w] is the initializer table's, for a square layer of ``width`` units. tanh with
    lecun_uniform, U(±1/√n): 1/3 (Glorot & Bengio 2010); ReLU with xavier_normal, Var = 1/n: 1/2,
    with he_normal, Var = 2/n: 1 (He et al. 2015).
    """
    spread = get_initializer(init).variance
    n_var = width * spread(width, width) if spread is not None else math.inf
    if activation not in SQUARED_SLOPE or spread is None or (
        activation == "tanh" and n_var > TANH_LINEAR_REGIME
    ):
        raise ValueError(
            f"no variance factor for ({activation!r}, {init!r}): use relu with an i.i.d. "
            f"initializer, or tanh with n·Var[w] <= {TANH_LINEAR_REGIME:g}"
        )
    return n_var * SQUARED_SLOPE[activation]
