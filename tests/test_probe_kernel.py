"""The compiled probe pass (diagnostics/probe_kernel.py) against the numpy pass of the monitor.

Bit-identical where no transcendental function is involved: the pass performs the numpy pass's
elementary operations (+ - * /, sqrt, comparisons: IEEE-exact) in the same order, so with relu,
leaky_relu, identity and softsign in every layer every probe and every event agrees to the last
bit, for every shape below (one to 100 samples, one seed to several blocks; numpy's einsum for the
weight gradient summed the samples in order in every case tried). weight_norm and update_ratio
read only the parameters: bit-identical with any activation.

Within an error bound otherwise (``bounds``): the two passes' exp / tanh / log1p differ (the
kernel's routines within 2.36 ulp, numpy's within LIBM_ULPS), so each activation value and
derivative may differ by a few ulp of its scale; the bound carries that difference through the
network to first order, layer by layer, in the max norm over units and samples, with the network's
own weights and values as the numpy pass computed them, and then through each probe's formula.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from diagnostics.activations import ACTIVATIONS, Activation
from diagnostics.config import Config
from diagnostics.data import Dataset, question_data
from diagnostics.monitor import Monitor
from diagnostics.network import Layout, full_gradient
from diagnostics.presets import PRESETS
from diagnostics.probe_kernel import PROBE_CODES, ProbePass, probe_block
from diagnostics.probes import PROBES, SATURATION_LEVEL
from diagnostics.train import ENGINES, train
from tests.tolerances import LIBM_ULPS, U64, fraction_atol, gamma, norm_rtol, two_sided

EXACT = {"identity", "relu", "leaky_relu", "softsign"}  # no transcendental function
QUESTION = question_data()
# An activation value or derivative of the two passes differs by at most EVAL_REL times its
# scale: the kernel's exp / expm1 / tanh within 2.36 ulp (call it 3), numpy's within LIBM_ULPS,
# and up to 4 further roundings in the formulas around them (gelu's 0.5 * (1 + t), z * inner...),
# one ulp = 2u each.
EVAL_REL = (3 + LIBM_ULPS + 4) * 2 * U64


def _random_data(N: int, n_in: int, n_out: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(f"random{N}", rng.normal(size=(N, n_in)), rng.normal(size=(N, n_out)))


def _params(layers, S: int, seed: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(theta, prev): random parameters and a nearby earlier epoch's."""
    rng = np.random.default_rng(seed)
    P = Layout(layers).n_params
    theta = scale * rng.normal(size=(P, S))
    return theta, theta + 0.05 * rng.normal(size=(P, S))


def observe_both(cfg, data, thetas, alive=None):
    """A numpy and a compiled monitor fed the same recordings: ``thetas`` is a list over epochs
    0, 1, ... of parameter buffers (each recording passes the previous one as prev); ``alive``
    their columns among 100 seeds (default: all of theirs)."""
    S = thetas[0].shape[1]
    n_seeds = S if alive is None else 100
    alive = np.arange(S) if alive is None else alive
    out = []
    for compiled in (False, True):
        m = Monitor(cfg, data, range(n_seeds), "all", "all", compiled=compiled)
        assert m.compiled == compiled
        for e, theta in enumerate(thetas):
            m.observe(e, theta, alive, thetas[e - 1] if e else None)
        out.append(m)
    return out


def assert_exact(ref: Monitor, got: Monitor) -> None:
    np.testing.assert_array_equal(got.values, ref.values)  # nan where nan
    for key, col in ref.events().items():
        np.testing.assert_array_equal(got.events()[key], col, err_msg=key)


# ---- the bound for transcendental activations -------------------------------------------------


def _grad_lipschitz(act: Activation) -> tuple[float, float]:
    """(sup |act''| away from 0, the jump of act' at 0). Each difference quotient of act' on a
    grid equals act'' somewhere between (mean value theorem), so the grid's largest is at most
    the sup; the sup exceeds it by at most the spacing (1e-4) times sup |act'''| (< 10 for every
    entry), covered by the margin 1e-3."""
    lo, hi = np.linspace(-60.0, -1e-9, 600_001), np.linspace(1e-9, 60.0, 600_001)
    quot = [np.abs(np.diff(act.grad(z, act.fn(z))) / np.diff(z)).max() for z in (lo, hi)]
    tiny = np.array([-1e-300, 1e-300])
    left, right = act.grad(tiny, act.fn(tiny))
    return float(max(quot)) * 1.01 + 1e-3, float(abs(right - left))


def bounds(cfg: Config, data: Dataset, theta: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """(layer, probe) -> per seed bound on |compiled - numpy| for this theta (see the module
    docstring). Errors e_z, e_a, e_g, e_dz are absolute, max over units and samples, per seed."""
    L = len(cfg.layers) - 1
    acts = [cfg.hidden_activation] * (L - 1) + [cfg.out_activation]
    layout = Layout(cfg.layers)
    _, grad, ws = full_gradient(layout, theta, acts, data.X, data.Y)
    params, grads = layout.views(theta), layout.views(grad)
    N = data.n_samples
    a_prev = np.broadcast_to(data.X.T[:, :, None], (cfg.layers[0], N, theta.shape[1]))

    def mx(x):  # max over every axis but the seeds
        return np.abs(x).reshape(-1, x.shape[-1]).max(axis=0)

    e_z, e_a, e_g, amb_z = [], [], [], []
    ez = np.zeros(theta.shape[1])
    inputs = [a_prev]
    for l, ((W, b), act) in enumerate(zip(params, acts, strict=True)):
        z, a, g = ws.z[l], ws.a[l], ws.gz[l]
        if l > 0:  # the contraction of inputs that differ by e_a, each side rounded (gamma_n)
            n_in = W.shape[1]
            terms = np.einsum("ois,ibs->obs", np.abs(W), np.abs(ws.a[l - 1])) + np.abs(b)[:, None]
            ez = np.abs(W).sum(axis=1).max(axis=0) * e_a[-1] + two_sided(
                gamma(n_in + 1) * mx(terms))
            inputs.append(ws.a[l - 1])
        Lg, jump = _grad_lipschitz(act)
        near0 = (np.abs(z) <= ez).reshape(-1, z.shape[-1]).any(axis=0)  # act' may jump there
        e_z.append(ez)
        amb_z.append(near0)
        e_a.append(EVAL_REL * mx(np.abs(a) + np.abs(z)) + act.max_grad * ez)
        # act' from a (tanh: 1 - a^2) or from exp (gelu: up to |z|^3 times its error)
        e_g.append(EVAL_REL * mx((1 + np.abs(z)) ** 3) * max(1.0, act.max_grad) + Lg * ez
                   + np.where(near0, jump, 0.0))
    # backward: dz_L = (a - y) (2 / N) g; dz_l = (W^T dz_{l+1}) g_l
    c2 = 2.0 if N == 1 else 2.0 / N
    err = ws.a[-1] - data.Y.T[:, :, None]
    e_dz = [None] * L
    e_dz[-1] = c2 * (e_a[-1] * mx(ws.gz[-1]) + mx(err) * e_g[-1] + e_a[-1] * e_g[-1]) + \
        two_sided(gamma(3) * c2 * mx(err * ws.gz[-1]))
    for l in range(L - 1, 0, -1):
        W = params[l][0]
        back = np.abs(W).sum(axis=0).max(axis=0) * e_dz[l]  # |W^T| e_dz, max column sum
        wdz = np.einsum("ois,obs->ibs", W, ws.dz[l])
        rnd = two_sided(gamma(W.shape[0] + 1) * mx(
            np.einsum("ois,obs->ibs", np.abs(W), np.abs(ws.dz[l])) * np.abs(ws.gz[l - 1])))
        e_dz[l - 1] = back * mx(ws.gz[l - 1]) + (mx(wdz) + back) * e_g[l - 1] + rnd
    out = {}
    for l, act in enumerate(acts):
        z, g, dz = ws.z[l], ws.gz[l], ws.dz[l]
        n_out, n_in = params[l][0].shape[:2]
        count = n_out * N
        dW, db = grads[l]
        nW, nb, nz = (np.sqrt((x**2).reshape(-1, x.shape[-1]).sum(axis=0)) for x in (dW, db, dz))
        ap = inputs[l]
        e_ap = e_a[l - 1] if l else 0.0
        e_dW = N * (e_dz[l] * mx(ap) + mx(dz) * e_ap + e_dz[l] * e_ap) + two_sided(
            gamma(N) * mx(np.einsum("obs,ibs->ois", np.abs(dz), np.abs(ap))))
        rn = two_sided(norm_rtol(count + n_out * n_in))
        out[(l + 1, "grad_norm_W")] = np.sqrt(n_out * n_in) * e_dW + rn * nW
        out[(l + 1, "grad_norm_b")] = np.sqrt(n_out) * N * e_dz[l] + two_sided(
            gamma(N) * np.sqrt(n_out) * mx(np.abs(dz).sum(axis=1))) + rn * nb
        out[(l + 1, "grad_norm_z")] = np.sqrt(count) * e_dz[l] + rn * nz
        out[(l + 1, "gain")] = e_g[l] + two_sided(gamma(count + 1) * mx(g))
        out[(l + 1, "z_mean")] = e_z[l] + two_sided(gamma(count + 1) * mx(z))
        # std is 1-Lipschitz in the rms of the change; its own rounding: 2 count + 4 operations
        out[(l + 1, "z_std")] = e_z[l] + two_sided(gamma(2 * count + 4) * 2 * mx(z))
        out[(l + 1, "weight_norm")] = 0.0  # the parameters only: exact
        out[(l + 1, "update_ratio")] = 0.0
        # a share: items whose side of the threshold round-off can change count +-1 / n each
        zmax = z.max(axis=1)  # (n_out, S)
        dead_amb = ((zmax >= -e_z[l]) & (zmax <= e_z[l])).sum(axis=0)
        out[(l + 1, "dead_fraction")] = fraction_atol(dead_amb, n_out)
        thr = SATURATION_LEVEL * act.max_grad
        sat_amb = (np.abs(np.abs(g) - thr) <= e_g[l]).reshape(-1, g.shape[-1]).sum(axis=0)
        out[(l + 1, "saturation_fraction")] = fraction_atol(sat_amb, count)
    n_last = params[-1][0].shape[0]
    out[(0, "loss")] = n_last * (2 * mx(err) * e_a[-1] + e_a[-1] ** 2) + two_sided(
        gamma(n_last * N + 2) * n_last * mx(err) ** 2)
    x, y = (np.sqrt((grads[k][0] ** 2).reshape(-1, theta.shape[1]).sum(axis=0)) for k in (0, -1))
    dx, dy = out[(1, "grad_norm_W")], out[(L, "grad_norm_W")]
    with np.errstate(divide="ignore", invalid="ignore"):  # no bound while y - dy may be 0
        ratio = (dx + x / y * dy) / (y - dy) + two_sided(U64 * x / y)
        out[(0, "grad_ratio")] = np.where(dy < y, ratio, np.inf)
    # constant output: may differ only where the outputs' spread is within round-off
    spread = (ws.a[-1].max(axis=1) - ws.a[-1].min(axis=1)).max(axis=0)
    out[(0, "network_dead")] = np.where(spread <= 2 * e_a[-1], 1.0, 0.0)
    return out


def assert_within_bounds(cfg, data, thetas, ref: Monitor, got: Monitor) -> None:
    for r, theta in enumerate(thetas):
        bound = bounds(cfg, data, theta)
        for k, row in enumerate(ref.rows):
            a, e = got.values[r, k], ref.values[r, k]
            b = np.broadcast_to(np.where(np.isnan(bound[row]), np.inf, bound[row]), a.shape)
            # no bound (a ratio of round-off-sized norms, as 0 / 0 in one pass and 1e-15 / 1e-14
            # in the other where a saturated gelu's tanh is -1 or -1 + ulp): nan may differ
            sure = np.isfinite(b)
            np.testing.assert_array_equal(np.isnan(a[sure]), np.isnan(e[sure]), err_msg=str(row))
            diff = np.abs(np.nan_to_num(a) - np.nan_to_num(e))
            bad = ~(diff <= b)
            assert not bad.any(), (
                f"epoch {r} {row}: |diff| {diff[bad][:3]} > bound {b[bad][:3]}")
    for key, col in ref.events().items():
        np.testing.assert_array_equal(got.events()[key], col, err_msg=key)


# ---- the table of probes -----------------------------------------------------------------------


def test_every_probe_has_a_code_and_the_codes_are_distinct():
    assert set(PROBE_CODES) == set(PROBES)
    assert sorted(PROBE_CODES.values()) == list(range(len(PROBES)))


# ---- bit-identical: no transcendental function --------------------------------------------------

SHAPES = {  # name -> (layers, data)
    "question": ((2, 4, 4, 1), QUESTION),
    "3-layer-2-out": ((3, 5, 4, 2), _random_data(7, 3, 2, 1)),
    "width-1": ((2, 1, 1, 1), _random_data(5, 2, 1, 2)),
    "one-sample": ((2, 3, 2), _random_data(1, 2, 2, 3)),
    "33-samples": ((2, 4, 3, 1), _random_data(33, 2, 1, 4)),
}


@pytest.mark.parametrize("S", [1, 2, 7, 1030], ids=lambda s: f"S{s}")
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("hidden,output", [
    ("relu", "relu"), ("relu", "identity"), ("leaky_relu", "leaky_relu"),
    ("identity", "relu"), ("softsign", "softsign"),
])
def test_bit_identical_without_transcendentals(hidden, output, shape, S):
    layers, data = SHAPES[shape]
    cfg = Config(layers=layers, activation=hidden, output_activation=output, epochs=3)
    theta, prev = _params(layers, S, seed=S + len(layers))
    ref, got = observe_both(cfg, data, [prev, theta, theta])  # epoch 2: zero update
    assert_exact(ref, got)
    ratio = [k for k, r in enumerate(ref.rows) if r[1] == "update_ratio"]
    assert np.isnan(got.values[0, ratio]).all()  # no prev at epoch 0
    assert (got.values[2, ratio] == 0.0).all()  # ||W - W|| / ||W|| with W != 0


def test_float32_bit_identical_and_in_float32():
    cfg = PRESETS["question"].replace(epochs=2, dtype="float32")
    theta, prev = (x.astype(np.float32) for x in _params(cfg.layers, 600, seed=5))
    ref, got = observe_both(cfg, QUESTION, [prev, theta])
    assert_exact(ref, got)
    # computed in float32: a norm of float32 values is a float32 number
    k = ref.rows.index((1, "weight_norm"))
    v = got.values[1, k]
    np.testing.assert_array_equal(v, v.astype(np.float32).astype(np.float64))


def test_alive_columns_and_seed_blocks_do_not_change_a_seed():
    """Columns written are the alive ones; a seed's values do not depend on its block."""
    layers, data = SHAPES["3-layer-2-out"]
    cfg = Config(layers=layers, activation="tanh", output_activation="sigmoid", epochs=2)
    theta, prev = _params(layers, 50, seed=9)
    alive = np.arange(0, 100, 2)  # every other seed of 100
    m = Monitor(cfg, data, range(100), "all", "all")
    m.observe(1, theta, alive, prev)
    assert np.isnan(m.values[1][:, 1::2]).all()
    for block in (1, 3, 512):
        pp = ProbePass(cfg, data, m.acts, m.rows, block=block)
        values = np.full((len(m.rows), 100), np.nan)
        pp(theta, prev, alive, values)
        np.testing.assert_array_equal(values, m.values[1])


def test_block_size_halves_for_large_scratch_only():
    assert probe_block((2, 4, 4, 1), 4, 8) == 512
    big = probe_block((64, 32, 32, 10), 1797, 8)  # digits-sized: about 8 MB per seed
    assert 1 <= big < 512
    P = 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    per_seed = (4 * (64 + 32 + 32 + 10) * 1797 + 2 * P + 16 + 16) * 8
    assert big * per_seed <= 64 << 20 < 2 * big * per_seed


# ---- hand-built cases ---------------------------------------------------------------------------


def _pack(layers, per_seed):
    return Layout(layers).pack(per_seed, np.float64)


def test_zero_gradient_gives_a_nan_ratio_and_dead_everything():
    """All weights and biases 0 with relu: z = 0 on every sample, so every unit is dead
    (z <= 0), a = 0, act' = 0: every gradient is 0, grad_ratio = 0 / 0 = nan, the output is the
    constant 0 (network_dead 1), and the loss is the mean of y^2 (summed in order, then / N)."""
    layers = (2, 4, 4, 1)
    cfg = PRESETS["question"].replace(epochs=1)
    zero = [(np.zeros((o, i)), np.zeros(o)) for i, o in zip(layers[:-1], layers[1:], strict=True)]
    theta = _pack(layers, [zero, zero])
    ref, got = observe_both(cfg, QUESTION, [theta])
    assert_exact(ref, got)
    v = dict(zip(got.rows, got.values[0], strict=True))
    assert np.isnan(v[(0, "grad_ratio")]).all()
    assert (v[(0, "network_dead")] == 1.0).all()
    total = 0.0
    for y in QUESTION.Y[:, 0]:
        total += y * y
    np.testing.assert_array_equal(v[(0, "loss")], total / QUESTION.n_samples)
    for l in (1, 2, 3):
        assert (v[(l, "dead_fraction")] == 1.0).all()
        assert (v[(l, "grad_norm_W")] == 0.0).all() and (v[(l, "gain")] == 0.0).all()
        assert np.isnan(v[(l, "update_ratio")]).all()
    ev = got.events()
    assert set(ev["event"]) == {"born_dead"} and len(ev["seed"]) == 2 * 9


def test_dead_units_network_dead_and_events_died_revived():
    """Hidden unit 0 dead (W = -1, b = -10: z <= -10 on inputs in [0, 1]) then alive (b = +10),
    unit 1 alive then dead: one died and one revived event, same in both passes."""
    layers = (2, 2, 1)
    cfg = Config(layers=layers, activation="relu", output_activation="identity", epochs=2)

    def net(b0, b1):
        return [(np.full((2, 2), -1.0), np.array([b0, b1])), (np.ones((1, 2)), np.zeros(1))]

    thetas = [_pack(layers, [net(-10, 10)]), _pack(layers, [net(-10, 10)]),
              _pack(layers, [net(10, -10)])]
    ref, got = observe_both(cfg, QUESTION, thetas)
    assert_exact(ref, got)
    v = got.metric("dead_fraction", 1)[1][:, 0]
    np.testing.assert_array_equal(v, [0.5, 0.5, 0.5])
    rows = sorted(zip(got.events()["epoch"], got.events()["unit"], got.events()["event"],
                      strict=True))
    assert rows == [(0, 0, "born_dead"), (2, 0, "revived"), (2, 1, "died")]


def test_saturated_tanh_units():
    """tanh with W = 10, b = 10 on inputs in [0, 1]: z >= 10 on every sample, act' = 1 - tanh^2
    < 1e-8 < 0.01: saturation 1.0; W = 0, b = 0: act' = 1, saturation 0.0."""
    layers = (2, 3, 1)
    cfg = Config(layers=layers, activation="tanh", output_activation="identity", epochs=1)
    hot = [(np.full((3, 2), 10.0), np.full(3, 10.0)), (np.ones((1, 3)), np.zeros(1))]
    cold = [(np.zeros((3, 2)), np.zeros(3)), (np.ones((1, 3)), np.zeros(1))]
    theta = _pack(layers, [hot, cold])
    ref, got = observe_both(cfg, QUESTION, [theta])
    assert_within_bounds(cfg, QUESTION, [theta], ref, got)
    np.testing.assert_array_equal(got.metric("saturation_fraction", 1)[1][0], [1.0, 0.0])


# ---- every table entry, within the bound --------------------------------------------------------


@pytest.mark.parametrize("shape", ["question", "3-layer-2-out", "one-sample"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_hidden_activation(activation, shape):
    layers, data = SHAPES[shape]
    cfg = Config(layers=layers, activation=activation, output_activation="identity", epochs=2)
    theta, prev = _params(layers, 300, seed=11, scale=2.0)
    ref, got = observe_both(cfg, data, [prev, theta])
    if activation in EXACT:
        assert_exact(ref, got)
    assert_within_bounds(cfg, data, [prev, theta], ref, got)


@pytest.mark.parametrize("shape", ["question", "3-layer-2-out"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_output_activation(activation, shape):
    layers, data = SHAPES[shape]
    cfg = Config(layers=layers, activation="relu", output_activation=activation, epochs=2)
    theta, prev = _params(layers, 300, seed=12, scale=2.0)
    ref, got = observe_both(cfg, data, [prev, theta])
    if activation in EXACT:
        assert_exact(ref, got)
    assert_within_bounds(cfg, data, [prev, theta], ref, got)


def test_fallback_and_the_reference_stay_reachable():
    cfg = PRESETS["question"].replace(epochs=1)
    assert Monitor(cfg, QUESTION, range(2)).compiled
    assert not Monitor(cfg, QUESTION, range(2), compiled=False).compiled
    odd = Activation("cube", lambda z, out=None: z**3, lambda z, a, out=None: 3 * z**2, 1.0,
                     False, False)
    assert not ProbePass.supports([odd], np.float64)
    assert not ProbePass.supports([ACTIVATIONS["relu"]], np.float16)
    assert ProbePass.supports(list(ACTIVATIONS.values()), np.float32)


# ---- attached to training, both engines ---------------------------------------------------------


class Both:
    """A monitor for ``train`` that feeds one numpy and one compiled monitor the same recordings
    and keeps each recording's parameters (for the bound)."""

    def __init__(self, cfg, S: int, every: str):
        self.ref, self.got = (Monitor(cfg, QUESTION, range(S), "all", every, compiled=c)
                              for c in (False, True))
        self.epochs = self.ref.epochs
        self.thetas: list[np.ndarray] = []

    def observe(self, epoch, theta, alive, prev):
        assert alive.size == theta.shape[1]
        self.ref.observe(epoch, theta, alive, prev)
        self.got.observe(epoch, theta, alive, prev)
        self.thetas.append(theta.copy())


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_monitor_during_training_matches_the_numpy_pass(activation, engine):
    assert engine in ENGINES
    cfg = PRESETS["question"].replace(activation=activation, epochs=60)
    both = Both(cfg, 40, "log:10")
    train(cfg, QUESTION, 40, engine=engine, monitor=both)
    assert len(both.thetas) == both.epochs.size > 5
    if activation == "relu":
        assert_exact(both.ref, both.got)
    else:
        assert_within_bounds(cfg, QUESTION, both.thetas, both.ref, both.got)


def test_numpy_pass_in_chunks_of_scattered_columns_equals_the_compiled_pass(monkeypatch):
    """The numpy pass cut into OBSERVE_SEEDS = 7 chunks of scattered alive columns, against the
    compiled pass on the same columns: relu, so bit-identical."""
    monkeypatch.setattr(sys.modules["diagnostics.monitor"], "OBSERVE_SEEDS", 7)
    cfg = PRESETS["question"].replace(epochs=2)
    theta, prev = _params(cfg.layers, 40, seed=21)
    alive = np.sort(np.random.default_rng(0).choice(100, size=40, replace=False))
    ref, got = observe_both(cfg, QUESTION, [prev, theta], alive=alive)
    assert_exact(ref, got)
    assert set(ref._ws) <= set(range(1, 8)) and not got._ws  # the numpy pass did run in chunks


def test_a_subclass_reading_records_gets_the_numpy_pass():
    class Capture(Monitor):
        def record(self, epoch, net, alive):
            super().record(epoch, net, alive)
            self.net = net

    cfg = PRESETS["question"].replace(epochs=1)
    m = Capture(cfg, QUESTION, range(3))
    assert not m.compiled
    m.observe(0, _params(cfg.layers, 3, seed=1)[0], np.arange(3))
    assert m.net.layers[0].z.shape == (4, 6, 3)


def test_the_pass_releases_the_gil():
    """Observations may run on a second thread while training goes on; no fast-math (it would
    reassociate the sums the bit-identity rests on)."""
    from diagnostics.probe_kernel import probe_pass

    options = probe_pass.targetoptions
    assert options["nogil"] and options["error_model"] == "numpy" and not options.get("fastmath")
