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
    for layer in (1, 2, 3):
        np.testing.assert_allclose(
            got(m, "saturation_fraction", layer), expected[:, layer - 1], rtol=0, atol=1e-15,
            err_msg=f"{kind} layer {layer}",
        )


def _solved_thresholds() -> dict[str, float]:
    """|z| at which act'(z) = 1% of max act'(z), solved in closed form."""
    # tanh: 1 - tanh(z)^2 = 0.01  ->  tanh(z) = sqrt(0.99)
    tanh_z = math.atanh(math.sqrt(0.99))
    # sigmoid: s (1 - s) = 0.01 * 0.25  ->  s = (1 + sqrt(1 - 0.01)) / 2, z = log(s / (1 - s))
    s = (1.0 + math.sqrt(1.0 - 0.01)) / 2.0
    sig_z = math.log(s / (1.0 - s))
    # check the solutions by substitution
    assert abs((1.0 - math.tanh(tanh_z) ** 2) - 0.01) < 1e-12
    sg = 1.0 / (1.0 + math.exp(-sig_z))
    assert abs(sg * (1.0 - sg) - 0.0025) < 1e-12
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


def _fd_grads(params, acts, X, Y, h=1e-6):
    """Central differences of slow_loss over every W and b entry."""
    grads = []
    for W, b in params:
        gW, gb = np.zeros_like(W), np.zeros_like(b)
        for target, g in ((W, gW), (b, gb)):
            for idx in np.ndindex(target.shape):
                old = target[idx]
                target[idx] = old + h
                up = slow_loss(params, acts, X, Y)
                target[idx] = old - h
                down = slow_loss(params, acts, X, Y)
                target[idx] = old
                g[idx] = (up - down) / (2 * h)
        grads.append((gW, gb))
    return grads


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
    for s, params in enumerate(per_seed):
        fd = _fd_grads([(W.copy(), b.copy()) for W, b in params], acts, data.X, data.Y)
        zs, outs, dzs, dWs, dbs = slow_pass(params, acts, data.X, data.Y)
        for l in range(L):
            # the slow backprop is itself right
            np.testing.assert_allclose(dWs[l], fd[l][0], rtol=1e-5, atol=1e-8)
            np.testing.assert_allclose(dbs[l], fd[l][1], rtol=1e-5, atol=1e-8)
            what = f"{case} seed {s} layer {l + 1}"
            np.testing.assert_allclose(
                got(m, "grad_norm_W", l + 1)[s], np.linalg.norm(fd[l][0]), rtol=1e-6, err_msg=what
            )
            np.testing.assert_allclose(
                got(m, "grad_norm_b", l + 1)[s], np.linalg.norm(fd[l][1]), rtol=1e-6, err_msg=what
            )
            np.testing.assert_allclose(
                got(m, "grad_norm_z", l + 1)[s], np.linalg.norm(dzs[l]), rtol=1e-10, err_msg=what
            )
        ratio = np.linalg.norm(fd[0][0]) / np.linalg.norm(fd[-1][0])
        np.testing.assert_allclose(got(m, "grad_ratio", 0)[s], ratio, rtol=1e-6)
        np.testing.assert_allclose(
            got(m, "loss", 0)[s], slow_loss(params, acts, data.X, data.Y), rtol=1e-12
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
    """Row r of monitor m, seed column s, against slow_probes of the given parameters."""
    with np.errstate(over="ignore"):  # seeds about to diverge: inf norms, as in the engine
        slow = slow_probes(params, acts, DATA.X, DATA.Y, prev)
    rows = set(m.rows)
    expected_rows = set(slow)
    assert rows == expected_rows, (what, rows ^ expected_rows)
    zs = slow_pass(params, acts, DATA.X, DATA.Y)[0]
    L = len(params)
    for k, (layer, name) in enumerate(m.rows):
        value, want = m.values[r, k, s], slow[(layer, name)]
        if name in ("z_mean", "z_std"):
            atol = 1e-12 * max(1.0, np.abs(zs[layer - 1]).max())
        else:
            atol = 1e-13
        if name == "grad_ratio" and min(slow[(1, "grad_norm_W")], slow[(L, "grad_norm_W")]) < 1e-12:
            continue  # a ratio of round-off noise (a seed that fits exactly): nothing to compare
        np.testing.assert_allclose(
            value, want, rtol=1e-8, atol=atol, equal_nan=True,
            err_msg=f"{what}: layer {layer} {name}",
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
