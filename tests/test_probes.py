"""Tests of diagnostics.probes (through Monitor.observe, which builds the full-pass records).

Expected values come from hand-built networks (weights chosen so that exactly k of n ReLUs are
dead, tanh / sigmoid pushed to |z| = 10, ...), from central differences of the full-data loss, and
from a slow one-network-at-a-time reference written here in plain numpy (``slow_probes``), which
is also checked against the finite differences.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib

import numpy as np
import pytest

from diagnostics import probes
from diagnostics.activations import ACTIVATIONS
from diagnostics.config import Config
from diagnostics.data import Dataset, question_data
from diagnostics.monitor import Monitor
from diagnostics.network import Layout
from diagnostics.presets import PRESETS
from diagnostics.train import train

from .tolerances import (
    U64,
    assert_within,
    dot_bound,
    finite_or,
    fraction_atol,
    gamma,
    libm_rel,
    norm_rtol,
    sum_bound,
    two_sided,
)

DATA = question_data()
# the question's six inputs: sums x1 + x2 = 0.3, 0.8, 0.6, 1.0, 1.0, 0.7; x2 = .2 .3 .4 .7 .5 .3
X_Q = np.array([[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]])
Y_Q = np.array([[0.3], [0.8], [0.6], [1.0], [1.0], [0.7]])


# ---- a slow reference: one network at a time, one sample at a time ------------------------------


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


# name -> (f, f', max f')
SLOW_ACTS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float), 1.0),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2, 1.0),
    "sigmoid": (_sig, lambda z: _sig(z) * (1.0 - _sig(z)), 0.25),
    "identity": (lambda z: z.copy(), np.ones_like, 1.0),
}
# name -> (sup |f''|, relative error of one evaluation of f): for the error bounds below.
# tanh'' = -2 tanh sech^2 peaks at 4 / (3 sqrt 3); sigma'' = sigma' (1 - 2 sigma) at 1 / (6 sqrt 3).
# tanh is one libm call; sigmoid 1 / (1 + exp(-z)) one exp, an add and a divide.
SLOW_ERR = {
    "relu": (0.0, 0.0),
    "tanh": (4.0 / (3.0 * math.sqrt(3.0)), libm_rel()),
    "sigmoid": (1.0 / (6.0 * math.sqrt(3.0)), libm_rel() + gamma(2)),
    "identity": (0.0, 0.0),
}
SLOW_RECTIFIERS = {"relu"}
SLOW_SATURATING = {"tanh", "sigmoid"}


def slow_loss(params, acts, X, Y) -> float:
    """L = (1/N) sum_n sum_o (y_hat - y)^2, one sample at a time."""
    total = 0.0
    for x, y in zip(X, Y, strict=True):
        a = x
        for (W, b), name in zip(params, acts, strict=True):
            a = SLOW_ACTS[name][0](W @ a + b)
        total += float(((a - y) ** 2).sum())
    return total / len(X)


def slow_pass(params, acts, X, Y):
    """Per-sample forward and backward: z, a, dL/dz per layer (units, N), dW, db per layer."""
    N, L = len(X), len(params)
    zs = [np.zeros((W.shape[0], N)) for W, _ in params]
    outs = [np.zeros((W.shape[0], N)) for W, _ in params]
    dzs = [np.zeros((W.shape[0], N)) for W, _ in params]
    dWs = [np.zeros_like(W) for W, _ in params]
    dbs = [np.zeros_like(b) for _, b in params]
    for n in range(N):
        a = X[n]
        for l, ((W, b), name) in enumerate(zip(params, acts, strict=True)):
            z = W @ a + b
            a = SLOW_ACTS[name][0](z)
            zs[l][:, n], outs[l][:, n] = z, a
        delta = 2.0 / N * (outs[-1][:, n] - Y[n]) * SLOW_ACTS[acts[-1]][1](zs[-1][:, n])
        for l in range(L - 1, -1, -1):
            dzs[l][:, n] = delta
            a_prev = X[n] if l == 0 else outs[l - 1][:, n]
            dWs[l] += np.outer(delta, a_prev)
            dbs[l] += delta
            if l > 0:
                delta = (params[l][0].T @ delta) * SLOW_ACTS[acts[l - 1]][1](zs[l - 1][:, n])
    return zs, outs, dzs, dWs, dbs


def act_errors(name, z, a, ez):
    """Bounds on the error of f(z) and f'(z) when z is off by at most ez.

    All four activations are monotone and their derivatives are even with a peak at 0 (or a
    step), so the extremes over [z - ez, z + ez] are at its ends (or at the point nearest 0):
    a tight bound, unlike sup|f'| ez (a tanh at z = 1e11 off by 1e5 is still exactly 1). Plus the
    evaluation's own error (f_rel |a|; f' from a: 2 |a| f_rel |a| + 3 roundings).
    """
    f, fp, _ = SLOW_ACTS[name]
    _, f_rel = SLOW_ERR[name]
    with np.errstate(over="ignore", invalid="ignore"):
        ea = np.maximum(np.abs(f(z + ez) - a), np.abs(f(z - ez) - a)) + 2 * f_rel * np.abs(a)
        g = fp(z)
        if name in SLOW_RECTIFIERS:
            # a step: decided by round-off (error 1) only if z is within ez of the kink
            eg = ((z - ez <= 0) & (z + ez > 0)).astype(float)
        elif name in SLOW_SATURATING:
            near = np.where(np.abs(z) <= ez, 0.0, np.abs(z) - ez)
            eg = np.maximum(np.abs(fp(near) - g), np.abs(fp(np.abs(z) + ez) - g))
            eg += 2.0 * f_rel * np.abs(a) + gamma(3) * np.abs(g)
        else:
            eg = np.zeros_like(z)
    return ea, eg


def slow_error_bounds(params, acts, X, Y):
    """First-order bounds on the rounding error of z, dL/dz, dW, db and y_hat (running error
    analysis, Higham ch. 3), valid for any summation order and any SIMD kernel within LIBM_ULPS.

    With ``ez = 0`` for an exact input (the data) and exact zeros staying exact (a dead ReLU's
    output), a unit whose inputs are all exactly 0 gets z = b with no error at all.

    Every quantity is a sum of products of the inputs and weights; its error is bounded by the
    rounding of each operation (``dot_bound`` etc.) times the *magnitudes* of the terms, not the
    size of the result. That is what matters near convergence: dL/dz_out = 2/N (y_hat - y) f'
    is a difference of two O(1) numbers that cancel to ~1e-9, and its error is ~u |y_hat|, so a
    gradient of 1e-9 can have a relative error of 1e-7 whatever rtol says. Errors are propagated
    through the layers with the sup of |f'| (Lipschitz) and of |f''| (for f'(z)).

    Returns ``(ez, edz, edW, edb, eyhat)`` with the shapes of slow_pass's z, dz, dW, db, y_hat.
    """
    N, L = len(X), len(params)
    zs, outs, dzs, _, _ = slow_pass(params, acts, X, Y)
    ez = [np.zeros_like(z) for z in zs]
    ea = [np.zeros_like(z) for z in zs]
    eg = [np.zeros_like(z) for z in zs]
    for l, ((W, b), name) in enumerate(zip(params, acts, strict=True)):
        a_prev = X.T if l == 0 else outs[l - 1]
        ea_prev = np.zeros_like(a_prev) if l == 0 else ea[l - 1]
        n_in = W.shape[1]
        # z = W a + b: a dot product of n_in + 1 terms; the input's error carried through |W|
        ez[l] = dot_bound(n_in + 1, np.abs(W) @ np.abs(a_prev) + np.abs(b)[:, None])
        ez[l] += np.abs(W) @ ea_prev
        ea[l], eg[l] = act_errors(name, zs[l], outs[l], ez[l])
    y_hat, y = outs[-1], Y.T
    g_out = SLOW_ACTS[acts[-1]][1](zs[-1])
    # dL/dz_out = 2/N (y_hat - y) f'(z_out): the subtraction's error is relative to |y_hat| + |y|
    edz = [None] * L
    edz[-1] = 2.0 / N * (
        (ea[-1] + gamma(3) * (np.abs(y_hat) + np.abs(y))) * np.abs(g_out)
        + np.abs(y_hat - y) * eg[-1]
    )
    for l in range(L - 1, 0, -1):
        W = params[l][0]
        back = np.abs(W).T @ np.abs(dzs[l])
        g = SLOW_ACTS[acts[l - 1]][1](zs[l - 1])
        edz[l - 1] = (
            (np.abs(W).T @ edz[l] + dot_bound(W.shape[0], back) + gamma(1) * back) * np.abs(g)
            + back * eg[l - 1]
        )
    edW, edb = [], []
    for l in range(L):
        a_prev = X.T if l == 0 else outs[l - 1]
        ea_prev = np.zeros_like(a_prev) if l == 0 else ea[l - 1]
        # dW = sum_n dz_n a_n^T: N products; db = sum_n dz_n
        edW.append(edz[l] @ np.abs(a_prev).T + np.abs(dzs[l]) @ ea_prev.T
                   + dot_bound(N, np.abs(dzs[l]) @ np.abs(a_prev).T))
        edb.append(edz[l].sum(axis=1) + sum_bound(N, np.abs(dzs[l]).sum(axis=1)))
    return ez, edz, edW, edb, ea[-1]


def slow_tolerances(params, acts, X, Y, slow) -> dict[tuple[int, str], tuple[float, float]]:
    """(rtol, atol) for each probe of one network: engine and slow loop each within the bound of
    slow_error_bounds, so they differ by two_sided(bound). ``None`` where round-off could decide
    the value (a ratio of two norms that are both at their rounding floor)."""
    ez, edz, edW, edb, eyhat = slow_error_bounds(params, acts, X, Y)
    zs, outs, dzs, _, _ = slow_pass(params, acts, X, Y)
    N = len(X)
    tol: dict[tuple[int, str], tuple[float, float] | None] = {}
    nrm = np.linalg.norm
    for l, name in enumerate(acts):
        k, z, W = l + 1, zs[l], params[l][0]
        n_z = z.size
        # norms: ||x + e|| - ||x|| <= ||e||; the norm's own rounding is relative (norm_rtol)
        for probe, err, size in (
            ("grad_norm_W", edW[l], W.size), ("grad_norm_b", edb[l], W.shape[0]),
            ("grad_norm_z", edz[l], n_z),
        ):
            tol[(k, probe)] = (two_sided(norm_rtol(size)), two_sided(nrm(err)))
        # the same W in both: only the order of the sum of squares differs
        tol[(k, "weight_norm")] = (two_sided(norm_rtol(W.size)), 0.0)
        # W - W_prev is the same elementwise subtraction in both (W_prev is bit-identical by
        # design, see test_update_ratio_...): two norms of identical arrays, divided
        tol[(k, "update_ratio")] = (two_sided(2 * norm_rtol(W.size) + gamma(1)), 0.0)
        # the mean of n_z values each off by ez, summed in any order
        e_mean = ez[l].mean() + sum_bound(n_z, np.abs(z).sum()) / n_z
        tol[(k, "z_mean")] = (0.0, two_sided(e_mean))
        # std is 1-Lipschitz in max|dz|; its own rounding: a sum of n_z squares (relative),
        # the subtraction of the mean (u |z|), the sqrt
        e_std = ez[l].max() + e_mean + gamma(n_z + 4) * np.abs(z).max()
        tol[(k, "z_std")] = (0.0, two_sided(e_std))
        g = SLOW_ACTS[name][1](z)
        eg = act_errors(name, z, outs[l], ez[l])[1]
        tol[(k, "gain")] = (0.0, two_sided(eg.mean() + sum_bound(n_z, np.abs(g).sum()) / n_z))
        if name in SLOW_SATURATING:
            # a (unit, sample) pair whose |f'| is within its error of the 1% level may count or not
            level = 0.01 * SLOW_ACTS[name][2]
            ambiguous = int((np.abs(np.abs(g) - level) <= two_sided(eg)).sum())
            tol[(k, "saturation_fraction")] = (0.0, fraction_atol(ambiguous, n_z))
        if name in SLOW_RECTIFIERS:
            # a unit is dead when z <= 0 on every sample: ambiguous if no sample is clearly
            # positive but some z is within its error of 0 (an exactly computed z, e.g. z = b
            # behind a dead layer, never is)
            e2 = two_sided(ez[l])
            near = ~(z - e2 > 0).any(axis=1) & (z + e2 > 0).any(axis=1)
            tol[(k, "dead_fraction")] = (0.0, fraction_atol(int(near.sum()), z.shape[0]))
    # loss = (1/N) sum (y_hat - y)^2: the squares move by 2 |y_hat - y| e_yhat, the sum is of
    # non-negative terms (relative gamma), the /N is one more rounding
    y_hat, y = outs[-1], Y.T
    e_loss = (2.0 * np.abs(y_hat - y) * eyhat).sum() / N
    tol[(0, "loss")] = (two_sided(gamma(y_hat.size + 3)), two_sided(e_loss))
    # grad_ratio = n1 / nL with n1, nL each within e1, eL (absolute) and their rounding: the
    # ratio is off by (e1 + r eL) / (nL - eL). Where nL is not well above eL (a seed that fits
    # to rounding: both norms are noise) the ratio is whatever round-off makes it: no comparison.
    L = len(params)
    n1, nL = slow[(1, "grad_norm_W")], slow[(L, "grad_norm_W")]
    r1, e1 = tol[(1, "grad_norm_W")]
    rL, eL = tol[(L, "grad_norm_W")]
    e1, eL = e1 + r1 * n1, eL + rL * nL
    if not (np.isfinite(nL) and nL > 4 * eL):
        tol[(0, "grad_ratio")] = None
    else:
        r = n1 / nL
        tol[(0, "grad_ratio")] = (gamma(1), (e1 + r * eL) / (nL - eL))
    # network_dead compares outputs with ==: exact in both when a layer is entirely dead (every
    # output is then the same expression of the same biases); a live output that is constant to
    # within rounding would be ambiguous and is not present in these ensembles
    tol[(0, "network_dead")] = (0.0, 0.0)
    return tol


def slow_probes(params, acts, X, Y, prev=None) -> dict[tuple[int, str], float]:
    """Every probe of the probes docstring for one network, as {(layer, name): value}."""
    zs, outs, dzs, dWs, dbs = slow_pass(params, acts, X, Y)
    out: dict[tuple[int, str], float] = {}
    for l, name in enumerate(acts):
        z, W = zs[l], params[l][0]
        g = SLOW_ACTS[name][1](z)
        k = l + 1
        out[(k, "grad_norm_W")] = math.sqrt((dWs[l] ** 2).sum())
        out[(k, "grad_norm_b")] = math.sqrt((dbs[l] ** 2).sum())
        out[(k, "grad_norm_z")] = math.sqrt((dzs[l] ** 2).sum())
        if name in SLOW_RECTIFIERS:
            dead = [all(z[u, n] <= 0 for n in range(z.shape[1])) for u in range(z.shape[0])]
            out[(k, "dead_fraction")] = sum(dead) / len(dead)
        if name in SLOW_SATURATING:
            level = 0.01 * SLOW_ACTS[name][2]
            out[(k, "saturation_fraction")] = float((np.abs(g) < level).mean())
        out[(k, "gain")] = float(g.mean())
        out[(k, "weight_norm")] = math.sqrt((W**2).sum())
        out[(k, "update_ratio")] = (
            math.nan
            if prev is None
            else math.sqrt(((W - prev[l][0]) ** 2).sum()) / math.sqrt((W**2).sum())
        )
        out[(k, "z_mean")] = float(z.mean())
        out[(k, "z_std")] = float(np.sqrt(((z - z.mean()) ** 2).mean()))
    out[(0, "loss")] = slow_loss(params, acts, X, Y)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[(0, "grad_ratio")] = float(
            np.float64(math.sqrt((dWs[0] ** 2).sum())) / np.float64(math.sqrt((dWs[-1] ** 2).sum()))
        )
    y_hat = outs[-1]
    out[(0, "network_dead")] = float(all(len(set(row)) == 1 for row in y_hat.tolist()))
    return out


def acts_of(config: Config) -> list[str]:
    n = len(config.layers) - 1
    last = config.activation if config.output_activation is None else config.output_activation
    return [config.activation] * (n - 1) + [last]


def observe_once(config, per_seed, data=DATA, record="all") -> Monitor:
    """A monitor that observed the hand-made networks ``per_seed`` once, at epoch 0."""
    theta = Layout(config.layers).pack(per_seed, np.float64)
    m = Monitor(config, data, range(len(per_seed)), record=record, every="none")
    m.observe(0, theta, np.arange(len(per_seed)))
    return m


def got(m: Monitor, name: str, layer: int) -> np.ndarray:
    """(S,) values of one metric at the monitor's first recorded epoch."""
    epochs, values = m.metric(name, layer)
    assert epochs[0] == 0
    return values[0]


# ---- dead units ---------------------------------------------------------------------------------

# layer 1 rows (inputs are the question's x, all positive):
DEAD_1 = ([-1.0, -1.0], -0.1)  # z = -(x1 + x2) - 0.1 < 0 on every sample
ALIVE_1 = ([1.0, 1.0], 0.0)  # z = x1 + x2 >= 0.3 on every sample
ONE_SAMPLE_1 = ([0.0, 1.0], -0.6)  # z = x2 - 0.6 > 0 only on sample (0.3, 0.7): NOT dead
ZERO_1 = ([0.0, 0.0], 0.0)  # z = 0 exactly on every sample: dead (z <= 0)


def _row_deeper(n_in: int, dead: bool):
    """Rows for layers after the first (inputs a >= 0): dead z <= -0.1, alive z >= 0.1."""
    return (np.full(n_in, -1.0), -0.1) if dead else (np.full(n_in, 1.0), 0.1)


def build_dead(layers, dead_counts, out_dead, shift=0):
    """One network: ``dead_counts[h]`` dead units in hidden layer h, the output dead or not.

    Dead units sit at rotated positions; in layer 1 one of the alive units (when there is one
    besides a fully alive one) is alive on a single sample only, and one dead unit has z == 0.
    """
    params = []
    for h, (n_in, n_out) in enumerate(zip(layers[:-2], layers[1:-1], strict=True)):
        k = dead_counts[h]
        dead_pos = {(j + shift + h) % n_out for j in range(k)}
        W, b = np.empty((n_out, n_in)), np.empty(n_out)
        alive_seen = dead_seen = 0
        for u in range(n_out):
            if h == 0:
                if u in dead_pos:
                    row = ZERO_1 if dead_seen == 1 else DEAD_1
                    dead_seen += 1
                else:
                    row = ONE_SAMPLE_1 if alive_seen == 1 else ALIVE_1
                    alive_seen += 1
            else:
                row = _row_deeper(n_in, u in dead_pos)
            W[u], b[u] = row
        params.append((W, b))
    W, b = _row_deeper(layers[-2], out_dead)
    params.append((W[None, :], np.array([b])))
    return params


@pytest.mark.parametrize(
    "layers", [(2, 4, 4, 1), (2, 5, 3, 1), (2, 3, 1), (2, 2, 3, 2, 1)], ids=str
)
def test_dead_fraction_is_k_over_n(layers):
    hidden = layers[1:-1]
    cases = list(itertools.product(*[range(n + 1) for n in hidden], [False, True]))
    per_seed = [build_dead(layers, c[:-1], c[-1], shift=s) for s, c in enumerate(cases)]
    cfg = Config(layers=layers, activation="relu")  # ReLU output too (the question)
    m = observe_once(cfg, per_seed)
    for h, n in enumerate(hidden):
        expected = np.array([c[h] / n for c in cases])
        np.testing.assert_array_equal(got(m, "dead_fraction", h + 1), expected, f"layer {h + 1}")
    expected_out = np.array([float(c[-1]) for c in cases])
    np.testing.assert_array_equal(got(m, "dead_fraction", len(layers) - 1), expected_out)
    # the output is constant over the dataset exactly when some layer is entirely dead
    expected_net = np.array(
        [float(c[-1] or any(k == n for k, n in zip(c[:-1], hidden, strict=True))) for c in cases]
    )
    np.testing.assert_array_equal(got(m, "network_dead", 0), expected_net)


def test_unit_alive_on_one_sample_is_not_dead():
    cfg = Config(layers=(2, 1, 1), activation="relu", output_activation="identity")
    out = (np.ones((1, 1)), np.zeros(1))
    nets = [[(np.array([w]), np.array([b])), out] for w, b in (ONE_SAMPLE_1, DEAD_1, ZERO_1)]
    m = observe_once(cfg, nets)
    np.testing.assert_array_equal(got(m, "dead_fraction", 1), [0.0, 1.0, 1.0])
    # alive on one sample: the identity output differs on that sample -> not constant
    np.testing.assert_array_equal(got(m, "network_dead", 0), [0.0, 1.0, 1.0])


def test_dead_units_pure_function_on_a_hand_made_record():
    # z (units=3, N=4, S=2): unit 0 <= 0 everywhere (with exact zeros), unit 1 positive on one
    # sample only, unit 2 positive everywhere (seed 0) / negative everywhere (seed 1)
    z = np.zeros((3, 4, 2))
    z[0] = [[0.0, -1.0], [-2.0, 0.0], [0.0, 0.0], [-0.5, -3.0]]
    z[1] = [[-1.0, -1.0], [-1.0, -1.0], [1e-12, -1.0], [-1.0, 5e-300]]
    z[2] = [[1.0, -1.0], [2.0, -2.0], [3.0, -1e-300], [4.0, -4.0]]
    zeros = np.zeros_like(z)
    r = probes.LayerRecord(
        z, np.maximum(z, 0), (z > 0).astype(float), zeros, np.zeros((3, 2, 2)),
        np.zeros((3, 2)), np.zeros((3, 2, 2)), np.zeros((3, 2)), None, ACTIVATIONS["relu"],
    )
    expected = [[True, True], [False, False], [False, True]]
    np.testing.assert_array_equal(probes.dead_units(r), expected)
    np.testing.assert_array_equal(probes.dead_fraction(r), [1 / 3, 2 / 3])


def test_network_dead_is_zero_for_a_live_tanh_network_and_one_for_a_constant_one():
    cfg = Config(layers=(2, 2, 1), activation="tanh", output_activation="identity")
    W1 = np.array([[1.0, 1.0], [0.5, -1.0]])
    live = [(W1, np.zeros(2)), (np.array([[1.0, 1.0]]), np.zeros(1))]
    const = [(np.zeros((2, 2)), np.array([0.3, -0.2])), (np.array([[1.0, 1.0]]), np.zeros(1))]
    # output weights zero: the output is its bias on every sample
    flat = [(W1, np.zeros(2)), (np.zeros((1, 2)), np.ones(1))]
    m = observe_once(cfg, [live, const, flat])
    np.testing.assert_array_equal(got(m, "network_dead", 0), [0.0, 1.0, 1.0])


# ---- saturation ---------------------------------------------------------------------------------

# layer 1 unit z = 20 x2 - 6 on the six samples: -2, 0, 2, 8, 4, 0 -> |z| > 2.99 (tanh) on two
# samples (8, 4); |z| > 5.99 (sigmoid) on one (8)
MIXED_ROW = ([0.0, 20.0], -6.0)


def _const_layer(n_out, n_in, biases):
    return np.zeros((n_out, n_in)), np.array(biases, dtype=float)


def build_saturation(kind: str):
    """Seeds: all |z| = 10 (+/-), all z = 0, a mixed case."""
    plus_minus = [
        _const_layer(4, 2, [10, -10, 10, -10]),
        _const_layer(4, 4, [-10, 10, -10, 10]),
        _const_layer(1, 4, [10]),
    ]
    negative = [
        _const_layer(4, 2, [-10] * 4), _const_layer(4, 4, [-10] * 4), _const_layer(1, 4, [-10])
    ]
    zero = [_const_layer(4, 2, [0] * 4), _const_layer(4, 4, [0] * 4), _const_layer(1, 4, [0])]
    W1, b1 = _const_layer(4, 2, [MIXED_ROW[1], 10, -10, 0])
    W1[0] = MIXED_ROW[0]
    mixed = [(W1, b1), _const_layer(4, 4, [10, 0, 0, 0]), _const_layer(1, 4, [0])]
    if kind == "tanh":
        expected_mixed = [(2 + 6 + 6 + 0) / 24, 1 / 4, 0.0]
    else:
        expected_mixed = [(1 + 6 + 6 + 0) / 24, 1 / 4, 0.0]
    per_seed = [plus_minus, negative, zero, mixed]
    expected = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], expected_mixed])
    return per_seed, expected  # expected (S, layer)


@pytest.mark.parametrize("kind", ["tanh", "sigmoid"])
def test_saturation_fraction_hand_built(kind):
    per_seed, expected = build_saturation(kind)
    cfg = Config(layers=(2, 4, 4, 1), activation=kind)  # the same activation at the output
    m = observe_once(cfg, per_seed)
    # exact: |z| is 0, 2, 4, 8 or 10, far from the thresholds 2.99 / 5.99 (no rounding of z or
    # f' can move a pair across), and a count / n is one correctly rounded division in both
    for layer in (1, 2, 3):
        np.testing.assert_array_equal(
            got(m, "saturation_fraction", layer), expected[:, layer - 1],
            err_msg=f"{kind} layer {layer}",
        )


def _solved_thresholds() -> dict[str, float]:
    """|z| at which act'(z) = 1% of max act'(z), solved in closed form."""
    # tanh: 1 - tanh(z)^2 = 0.01  ->  tanh(z) = sqrt(0.99)
    tanh_z = math.atanh(math.sqrt(0.99))
    # sigmoid: s (1 - s) = 0.01 * 0.25  ->  s = (1 + sqrt(1 - 0.01)) / 2, z = log(s / (1 - s))
    s = (1.0 + math.sqrt(1.0 - 0.01)) / 2.0
    sig_z = math.log(s / (1.0 - s))
    # check the solutions by substitution. atanh / log are evaluated at arguments near 1 where
    # they are ill-conditioned: kappa = |x f'(x) / f(x)| ~ 1 / (1 - sqrt .99) ~ 200 for atanh; the
    # substitution back through tanh / exp is well-conditioned again, so the residual is about
    # kappa * a few u. 1e3 * LIBM-rounding leaves room for that and is still 1e9 below the 1e-3
    # that a wrong formula (e.g. 1% of 1 for sigmoid) would give.
    tol = 1e3 * libm_rel()
    assert abs((1.0 - math.tanh(tanh_z) ** 2) - 0.01) < tol
    sg = 1.0 / (1.0 + math.exp(-sig_z))
    assert abs(sg * (1.0 - sg) - 0.0025) < tol
    return {"tanh": tanh_z, "sigmoid": sig_z}


def test_documented_thresholds_are_one_percent_of_max_derivative():
    doc = probes.__doc__
    documented = {}
    for name in ("sigmoid", "tanh"):
        match = re.search(r"\|z\| > ([0-9.]+) for " + name, doc)
        assert match, f"probes docstring gives no |z| threshold for {name}"
        documented[name] = float(match.group(1))
    solved = _solved_thresholds()
    assert documented == {"sigmoid": 5.99, "tanh": 2.99}
    for name in documented:
        assert abs(documented[name] - solved[name]) < 0.01, (name, documented[name], solved[name])


@pytest.mark.parametrize("kind", ["tanh", "sigmoid"])
def test_saturation_switches_at_the_solved_threshold(kind):
    t = _solved_thresholds()[kind]
    d = 2e-3
    cfg = Config(layers=(2, 4, 1), activation=kind, output_activation="identity")
    out = (np.ones((1, 4)), np.zeros(1))
    above = [_const_layer(4, 2, [t + d, -(t + d), t + 10 * d, -(t + 10 * d)]), out]
    below = [_const_layer(4, 2, [t - d, -(t - d), t - 10 * d, -(t - 10 * d)]), out]
    half = [_const_layer(4, 2, [t + d, -(t - d), t - d, -(t + d)]), out]
    m = observe_once(cfg, [above, below, half])
    np.testing.assert_array_equal(got(m, "saturation_fraction", 1), [1.0, 0.0, 0.5])


# ---- gradient norms against finite differences --------------------------------------------------

GRAD_CASES = {
    "tanh-identity": ((2, 4, 4, 1), "tanh", "identity", None),
    "sigmoid-sigmoid": ((2, 4, 4, 1), "sigmoid", None, None),
    "relu-identity": ((2, 4, 4, 1), "relu", "identity", None),
    "relu-relu": ((2, 4, 4, 1), "relu", None, None),
    "tanh-3-5-2": ((3, 5, 2), "tanh", "identity", 7),
    "sigmoid-2-3-3-3-2": ((2, 3, 3, 3, 2), "sigmoid", "identity", 5),
}


def _random_params(rng, layers):
    return [
        (rng.standard_normal((o, i)) * 0.9, rng.standard_normal(o) * 0.5)
        for i, o in zip(layers[:-1], layers[1:], strict=True)
    ]


FD_H = 1e-6  # central-difference step: truncation h^2 f^(3) / 6 ~ 1e-12, rounding e_L / h ~ 1e-9
FD_H3 = 1e-4  # step of the third difference that estimates f^(3) (moves z < 1e-3: no ReLU kink)


def _loss_error(params, acts, X, Y) -> float:
    """Bound on the rounding error of one slow_loss evaluation (see slow_tolerances' loss)."""
    _, _, _, _, eyhat = slow_error_bounds(params, acts, X, Y)
    outs = slow_pass(params, acts, X, Y)[1]
    y_hat, y = outs[-1], Y.T
    e = (2.0 * np.abs(y_hat - y) * eyhat).sum() / len(X)
    return e + gamma(y_hat.size + 3) * float(((y_hat - y) ** 2).sum()) / len(X)


def _fd_grads(params, acts, X, Y, h=FD_H):
    """Central differences of slow_loss over every W and b entry, and a bound on their error.

    Error of one entry: the two losses are each off by e_L (rounding), so their difference / 2h
    by e_L / h; the Taylor remainder is h^2 / 6 |f^(3)|, with |f^(3)| estimated from a third
    difference at step FD_H3 (plus that difference's own rounding 6 e_L / (2 FD_H3^3); doubled
    as a margin for f^(3) varying over the stencil); x + h is itself rounded, so the step differs
    from h by up to u |x| (relative u |x| / h on the derivative).
    """
    e_L = _loss_error(params, acts, X, Y)
    grads, errs = [], []
    for W, b in params:
        gW, gb = np.zeros_like(W), np.zeros_like(b)
        eW, eb = np.zeros_like(W), np.zeros_like(b)
        for target, g, e in ((W, gW, eW), (b, gb, eb)):
            for idx in np.ndindex(target.shape):
                old = target[idx]

                def f(dx, target=target, idx=idx, old=old):
                    target[idx] = old + dx
                    return slow_loss(params, acts, X, Y)

                up, down = f(h), f(-h)
                H = FD_H3
                d3 = abs(f(2 * H) - 2 * f(H) + 2 * f(-H) - f(-2 * H)) / (2 * H**3)
                d3 = 2.0 * (d3 + 6.0 * e_L / (2 * H**3))
                target[idx] = old
                g[idx] = (up - down) / (2 * h)
                e[idx] = e_L / h + h * h / 6.0 * d3 + U64 * abs(old) / h * abs(g[idx])
        grads.append((gW, gb))
        errs.append((eW, eb))
    return grads, errs


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_grad_norms_match_finite_differences(case):
    layers, hidden, output, n_samples = GRAD_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    if n_samples is None:
        data = DATA
    else:
        data = Dataset(case, rng.uniform(-1, 1, (n_samples, layers[0])),
                       rng.uniform(-1, 1, (n_samples, layers[-1])))
    cfg = Config(layers=layers, activation=hidden, output_activation=output)
    acts = acts_of(cfg)
    per_seed = []
    while len(per_seed) < 3:  # redraw networks with a ReLU pre-activation near its kink
        params = _random_params(rng, layers)
        zs = slow_pass(params, acts, data.X, data.Y)[0]
        if "relu" in acts and min(np.abs(z).min() for z in zs) < 1e-3:
            continue
        if "relu" in acts and hidden == "relu" and output == "relu" and zs[-1].max() <= 0:
            continue  # keep the ReLU output alive so the gradients are not all zero
        per_seed.append(params)
    m = observe_once(cfg, per_seed, data=data)
    L = len(layers) - 1
    nrm = np.linalg.norm
    for s, params in enumerate(per_seed):
        fd, fd_err = _fd_grads([(W.copy(), b.copy()) for W, b in params], acts, data.X, data.Y)
        zs, outs, dzs, dWs, dbs = slow_pass(params, acts, data.X, data.Y)
        _, edz, edW, edb, _ = slow_error_bounds(params, acts, data.X, data.Y)
        for l in range(L):
            # the slow backprop is itself right: within the fd error plus its own rounding
            what = f"{case} seed {s} layer {l + 1}"
            assert_within(dWs[l], fd[l][0], fd_err[l][0] + edW[l], f"{what} dW")
            assert_within(dbs[l], fd[l][1], fd_err[l][1] + edb[l], f"{what} db")
            # | ||g_engine|| - ||fd|| | <= ||g_engine - g|| + ||fd - g||, plus the norm's rounding
            for probe, d, e_fd, e_an in (("grad_norm_W", fd[l][0], fd_err[l][0], edW[l]),
                                         ("grad_norm_b", fd[l][1], fd_err[l][1], edb[l])):
                np.testing.assert_allclose(
                    got(m, probe, l + 1)[s], nrm(d), rtol=two_sided(norm_rtol(d.size)),
                    atol=nrm(e_fd) + nrm(e_an), err_msg=f"{what} {probe}",
                )
            # two analytic computations of dL/dz: each within edz
            np.testing.assert_allclose(
                got(m, "grad_norm_z", l + 1)[s], nrm(dzs[l]),
                rtol=two_sided(norm_rtol(dzs[l].size)), atol=two_sided(nrm(edz[l])),
                err_msg=what,
            )
        # ratio r = n1 / nL with n1, nL off by e1, eL: r off by (e1 + r eL) / (nL - eL)
        n1, nL = nrm(fd[0][0]), nrm(fd[-1][0])
        e1 = nrm(fd_err[0][0]) + nrm(edW[0]) + two_sided(norm_rtol(fd[0][0].size)) * n1
        eL = nrm(fd_err[-1][0]) + nrm(edW[-1]) + two_sided(norm_rtol(fd[-1][0].size)) * nL
        assert nL > 4 * eL, (case, s, nL, eL)  # random networks: far from the rounding floor
        ratio = n1 / nL
        np.testing.assert_allclose(got(m, "grad_ratio", 0)[s], ratio, rtol=gamma(2),
                                   atol=(e1 + ratio * eL) / (nL - eL))
        np.testing.assert_allclose(
            got(m, "loss", 0)[s], slow_loss(params, acts, data.X, data.Y),
            rtol=0, atol=two_sided(_loss_error(params, acts, data.X, data.Y)),
        )


def test_grad_norm_z_of_the_output_is_the_scaled_error():
    # one identity output unit: dL/dz_n = 2/N (y_hat_n - y_n); hidden W = 0, so y_hat = b_out
    cfg = Config(layers=(2, 3, 1), activation="tanh", output_activation="identity")
    params = [(np.zeros((3, 2)), np.zeros(3)), (np.ones((1, 3)), np.array([2.0]))]
    m = observe_once(cfg, [params])
    expected = 2.0 / 6 * math.sqrt(sum((2.0 - y) ** 2 for y in Y_Q[:, 0]))
    np.testing.assert_allclose(got(m, "grad_norm_z", 2), [expected], rtol=1e-14)
    np.testing.assert_allclose(got(m, "grad_norm_b", 2), [2.0 / 6 * sum(2.0 - Y_Q[:, 0])],
                               rtol=1e-14)
    # the hidden units' dL/dz = dz_out * 1 * tanh'(0) = dz_out per unit
    np.testing.assert_allclose(got(m, "grad_norm_z", 1), [math.sqrt(3) * expected], rtol=1e-14)
    np.testing.assert_allclose(got(m, "loss", 0), [sum((2.0 - y) ** 2 for y in Y_Q[:, 0]) / 6],
                               rtol=1e-14)


# ---- every instrument against the slow per-seed loop, on trained ensembles ----------------------


def seed_params(params, s):
    return [(W[s], b[s]) for W, b in params]


def assert_matches_slow(m, r, s, params, acts, prev, what):
    """Row r of monitor m, seed column s, against slow_probes of the given parameters, to within
    the rounding-error bounds of slow_tolerances (no fixed rtol: near convergence the gradients
    are differences of O(1) numbers and carry an error far above rtol * their size)."""
    with np.errstate(over="ignore", invalid="ignore"):  # seeds about to diverge: inf norms
        slow = slow_probes(params, acts, DATA.X, DATA.Y, prev)
        tols = slow_tolerances(params, acts, DATA.X, DATA.Y, slow)
    rows = set(m.rows)
    expected_rows = set(slow)
    assert rows == expected_rows, (what, rows ^ expected_rows)
    for k, (layer, name) in enumerate(m.rows):
        value, want = m.values[r, k, s], slow[(layer, name)]
        if tols[(layer, name)] is None:
            continue  # grad_ratio of a seed whose last-layer gradient is rounding noise
        rtol, atol = tols[(layer, name)]
        # a bound that overflowed (a seed about to diverge) only allows the same inf / nan
        atol = float(finite_or(atol))
        np.testing.assert_allclose(
            value, want, rtol=rtol, atol=atol, equal_nan=True,
            err_msg=f"{what}: layer {layer} {name} (rtol {rtol:.3g}, atol {atol:.3g})",
        )


def params_at(cfg, seeds, epochs: list[int]) -> dict[int, object]:
    """Final parameters of separate (unmonitored) trainings to each epoch count."""
    return {e: train(cfg.replace(epochs=e), DATA, seeds) for e in epochs}


def test_instruments_match_slow_loop_relu_mixed_outcomes():
    cfg = PRESETS["question"].replace(activation="relu", lr=0.1, epochs=300)
    seeds = np.arange(30)
    rec = [0, 1, 100, 299, 300]
    m = Monitor(cfg, DATA, seeds, record="all", every="list:" + ",".join(map(str, rec)))
    res = train(cfg, DATA, seeds, monitor=m)
    counts = res.counts()
    assert counts["converged"] > 0 and counts["stuck"] > 0, counts  # a mixed ensemble
    assert list(m.epochs) == rec
    runs = params_at(cfg, seeds, [1, 99, 100, 299])
    params = {0: res.initial_params, 300: res.final_params}
    params.update({e: r.final_params for e, r in runs.items()})
    acts = acts_of(cfg)
    for r, e in enumerate(rec):
        for s in range(seeds.size):
            prev = seed_params(params[e - 1], s) if e - 1 in params else None
            if e > 0 and prev is None:
                continue
            here = seed_params(params[e], s)
            assert_matches_slow(m, r, s, here, acts, prev, f"epoch {e} seed {s}")
    # update_ratio at 100 needs epoch 99, which the schedule skips: train passes it anyway
    assert np.isfinite(m.metric("update_ratio", 1)[1][2]).all()


def test_instruments_match_slow_loop_with_diverging_seeds():
    cfg = PRESETS["fixed"].replace(activation="tanh", lr=0.3, epochs=100)
    seeds = np.arange(30)
    res = train(cfg, DATA, seeds)
    d = res.diverged_epoch
    assert 0 < (d > 0).sum() < seeds.size, res.counts()
    first = int(d[d > 0].min())
    rec = sorted({0, 1, first - 1, first, first + 1, int(d.max()), 100})
    m = Monitor(cfg, DATA, seeds, record="all", every="list:" + ",".join(map(str, rec)))
    res_m = train(cfg, DATA, seeds, monitor=m)
    np.testing.assert_array_equal(res_m.diverged_epoch, d)
    need = sorted({e for e in rec if 0 < e < 100} | {e - 1 for e in rec if e > 1})
    runs = params_at(cfg, seeds, need)
    params = {0: res.initial_params, **{e: r.final_params for e, r in runs.items()}}
    params[100] = res.final_params
    acts = acts_of(cfg)
    checked = 0
    for r, e in enumerate(rec):
        for s in range(seeds.size):
            if 0 < d[s] <= e:  # gone: nothing recorded for it any more
                assert np.isnan(m.values[r, :, s]).all(), (e, s)
                continue
            if e > 0 and e in runs:
                assert runs[e].diverged_epoch[s] == -1
            prev = seed_params(params[e - 1], s) if e > 0 else None
            here = seed_params(params[e], s)
            assert_matches_slow(m, r, s, here, acts, prev, f"epoch {e} seed {s}")
            checked += 1
    assert checked > 2 * seeds.size


def test_update_ratio_against_separately_trained_epochs():
    cfg = PRESETS["question"].replace(activation="tanh", lr=0.1, epochs=40)
    seeds = [3, 8, 21]
    m = Monitor(cfg, DATA, seeds, record="update_ratio", every="list:1,17,40")
    train(cfg, DATA, seeds, monitor=m)
    for e in (1, 17, 40):
        before = train(cfg.replace(epochs=e - 1), DATA, seeds) if e > 1 else None
        after = train(cfg.replace(epochs=e), DATA, seeds)
        W_before = train(cfg.replace(epochs=1), DATA, seeds).initial_params if e == 1 else None
        for layer in (1, 2, 3):
            for j in range(len(seeds)):
                W_e = after.final_params[layer - 1][0][j]
                if before is None:
                    W_prev = W_before[layer - 1][0][j]
                else:
                    W_prev = before.final_params[layer - 1][0][j]
                want = np.linalg.norm(W_e - W_prev) / np.linalg.norm(W_e)
                value = m.metric("update_ratio", layer)[1][list(m.epochs).index(e), j]
                np.testing.assert_allclose(value, want, rtol=1e-12, err_msg=f"e {e} layer {layer}")
    # at initialisation there is no previous epoch
    assert np.isnan(m.metric("update_ratio", 1)[1][0]).all()


# ---- the output unit's slope (a per-sample probe) ----------------------------------------------


class _Capture(Monitor):
    """A monitor that keeps the last full-pass record it saw."""

    def record(self, epoch, net, alive):
        super().record(epoch, net, alive)
        self.net = net


# the output's pre-activation z = w x1 + 0 * a2 + b through a ReLU hidden layer that copies x1
# (x1 > 0 on every sample): w = 2 and b = -1 give z = 0 exactly on the samples with x1 = 0.5
OUTPUT_CASES = {  # name -> (w, b): z = w x1 + b on every sample
    "mixed": (2.0, -1.0),  # z = -0.8, 0, -0.6, -0.4, 0, -0.2
    "zero": (0.0, 0.0),  # z = 0 on every sample
    "saturated": (2.0, 10.0),  # z in [10.2, 11]
    "negative": (2.0, -11.0),  # z in [-10.8, -10]
}
CLOSED_SLOPES = {  # act'(z) written independently of the engine's formulas
    "tanh": lambda z: 1.0 / np.cosh(z) ** 2,
    "sigmoid": lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2,
    "relu": lambda z: (z > 0).astype(float),
}


@pytest.mark.parametrize("kind", list(CLOSED_SLOPES))
def test_output_slope_hand_built(kind):
    cfg = Config(layers=(2, 2, 1), activation="relu", output_activation=kind)
    hidden = (np.array([[1.0, 0.0], [0.0, 0.0]]), np.zeros(2))  # a = (x1, 0)
    nets = [[hidden, (np.array([[w, 0.0]]), np.array([b]))] for w, b in OUTPUT_CASES.values()]
    m = _Capture(cfg, DATA, range(len(nets)), record="grad_norm_z", every="none")
    m.observe(0, Layout(cfg.layers).pack(nets, np.float64), np.arange(len(nets)))
    got_slope = probes.output_slope(m.net)  # (N, S)
    assert got_slope.shape == (6, len(nets))
    z = np.stack([w * X_Q[:, 0] + b for w, b in OUTPUT_CASES.values()], axis=1)  # (N, S)
    np.testing.assert_array_equal(m.net.layers[-1].z[0], z)  # the same three rounded operations
    want = CLOSED_SLOPES[kind](z)
    a = SLOW_ACTS[kind][0](z)
    _, bound = act_errors(kind, z, a, np.zeros_like(z))  # z is exact: the evaluations' error
    closed_err = 4 * libm_rel() * want + gamma(4) * want  # cosh / exp and three more roundings
    assert_within(got_slope, want, two_sided(bound + closed_err), f"{kind} slopes")
    # exact where z = 0: tanh'(0) = 1, sigmoid'(0) = 1/4, relu'(0) = 0 (z > 0 is required)
    at_zero = {"tanh": 1.0, "sigmoid": 0.25, "relu": 0.0}[kind]
    zero = z == 0
    assert zero.sum() == 2 + 6  # two samples of "mixed", every sample of "zero"
    np.testing.assert_array_equal(got_slope[zero], at_zero)
    # saturated at z >= 10: below 1e-8 (tanh) and 5e-5 (sigmoid); a ReLU's slope stays exactly 1
    sat, neg = got_slope[:, 2], got_slope[:, 3]
    if kind == "relu":
        np.testing.assert_array_equal(sat, 1.0)
        np.testing.assert_array_equal(neg, 0.0)
    else:
        assert sat.max() < {"tanh": 1e-8, "sigmoid": 5e-5}[kind]
        assert neg.max() < {"tanh": 1e-8, "sigmoid": 5e-5}[kind]


def test_output_slope_is_the_mean_over_output_units():
    gz = np.zeros((2, 3, 2))  # (units, N, S)
    gz[0] = [[1.0, 0.25], [0.5, 0.0], [0.0, 1.0]]
    gz[1] = [[0.0, 0.25], [0.5, 1.0], [1.0, 1.0]]
    zeros = np.zeros_like(gz)
    layer = probes.LayerRecord(zeros, zeros, gz, zeros, np.zeros((2, 1, 2)), np.zeros((2, 2)),
                               np.zeros((2, 1, 2)), np.zeros((2, 2)), None, ACTIVATIONS["tanh"])
    got_slope = probes.output_slope(probes.NetworkRecord([layer], np.zeros(2)))
    np.testing.assert_array_equal(got_slope, [[0.5, 0.25], [0.5, 0.5], [0.5, 1.0]])
    assert "output_slope" not in probes.PROBES  # a per-sample probe: not in the per-layer table
