"""The ``corrected`` preset against the corrected program (studies/report/corrected_program.py).

The program is imported from its path and run as it is; the preset must reproduce its per-epoch
error seed for seed to within round-off, for each activation, and every field in which the preset
departs from ``question`` must be a ``# CHANGED:`` line of the file, so neither can drift alone.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

from diagnostics.activations import get_activation
from diagnostics.data import question_data
from diagnostics.network import Layout
from diagnostics.presets import PRESETS
from diagnostics.train import train
from tests.tolerances import gamma, libm_rel, two_sided

PROGRAM = Path(__file__).resolve().parents[1] / "studies" / "report" / "corrected_program.py"
SEEDS = (0, 1, 2, 3)
EPOCHS = 200
ACTIVATIONS = ("relu", "tanh", "sigmoid")


def load_program():
    spec = importlib.util.spec_from_file_location("corrected_program", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def program():
    return load_program()


class Magnitude:
    """A monitor: per epoch, the largest magnitude a rounded operation of a sample step combines.

    For each sample and layer: sum_i |W_oi a_i| + |b_o| (forward), sum_o |W_oi dz_o| (backward),
    and |W|, |b| (the update); the maximum over all of them, per epoch, in ``self.max``.
    """

    def __init__(self, config, data):
        self.epochs = np.arange(config.epochs + 1)
        self.layout = Layout(config.layers)
        L = self.layout.n_layers
        self.acts = [config.hidden_activation] * (L - 1) + [config.out_activation]
        self.X, self.Y = data.X, data.Y
        self.max = np.zeros(config.epochs + 1)

    def observe(self, epoch, theta, alive, prev):
        if alive.size == 0:
            return
        params = [(W[..., 0], b[:, 0]) for W, b in self.layout.views(theta[:, :1])]
        m = max(max(np.abs(W).max(), np.abs(b).max()) for W, b in params)
        for x, y in zip(self.X, self.Y, strict=True):
            a, zs, ins = x, [], []
            for (W, b), act in zip(params, self.acts, strict=True):
                ins.append(a)
                m = max(m, (np.abs(W) @ np.abs(a) + np.abs(b)).max())
                z = W @ a + b
                zs.append(z)
                a = act.fn(z)
            dz = 2 * (a - y) * self.acts[-1].grad(zs[-1], a)
            for l in range(len(params) - 1, 0, -1):
                W = params[l][0]
                m = max(m, (np.abs(W).T @ np.abs(dz)).max())
                dz = (W.T @ dz) * self.acts[l - 1].grad(zs[l - 1], self.acts[l - 1].fn(zs[l - 1]))
        self.max[epoch] = m


def loss_bound(config, loss, magnitude):
    """|engine loss - program loss| allowed per epoch: the round-off both may commit.

    The program and the preset do the same operations in the same order (forward, output error,
    back-propagation through the weights before their update, then W -= lr dW, b -= lr db per
    layer, output to input), except the order of the length-H sums (np.dot, possibly BLAS with
    FMA, vs the engine's sequential multiply-adds) and the libm kernels of tanh and exp. A sample
    step is a chain of at most OPS rounded operations per quantity: 3 layers forward and 3
    backward, each a dot of <= H + 1 terms and 2 more operations (bias or activation derivative,
    product), then 2 for the update; each is within gamma(OPS) of the exact step, relative to the
    magnitudes combined (<= M_e, recorded every epoch by ``Magnitude``), plus one libm result per
    layer and direction (6 libm_rel). To first order, with the training map not amplifying
    perturbations over these epochs (a converging run contracts; the margin by which the tested
    seeds stay inside shows there is no hidden growth), the K = 6 e steps of e epochs accumulate
    linearly, and the two computations differ by two_sided of that: on each prediction
        delta_e = 2 * 6 e * (gamma(OPS) + 6 libm_rel) * max(M_0..M_e).
    The epoch loss is mean_n err_n^2, so (Cauchy-Schwarz, mean |err_n| <= sqrt(loss))
        |loss_engine - loss_program| <= 2 sqrt(loss) delta_e + delta_e^2.
    """
    H = max(config.layers[1:-1])
    ops = 6 * (H + 1 + 2) + 2
    N = 6
    e = np.arange(1, config.epochs + 1)
    running_max = np.maximum.accumulate(magnitude)[1:]  # max(M_0..M_e), e = 1..E
    delta = two_sided(N * e * (gamma(ops) + 6 * libm_rel()) * running_max)
    return 2 * np.sqrt(np.abs(loss)) * delta + delta**2


def run_both(program, activation, seed, **change):
    config = PRESETS["corrected"].replace(activation=activation, epochs=EPOCHS, **change)
    magnitude = Magnitude(config, question_data())
    res = train(config, seeds=[seed], monitor=magnitude)
    expected = np.asarray(program.train(seed, activation, EPOCHS, program.LEARNING_RATE))
    return res.loss[:, 0], expected, loss_bound(config, expected, magnitude.max)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_preset_reproduces_program(program, activation):
    for seed in SEEDS:
        actual, expected, bound = run_both(program, activation, seed)
        assert expected.shape == (EPOCHS,) and np.isfinite(expected).all()
        diff = np.abs(actual - expected)
        assert (diff <= bound).all(), (
            f"{activation} seed {seed}: worst |diff| / bound = {(diff / bound).max():.3g} "
            f"at epoch {int(np.argmax(diff / bound)) + 1}"
        )


@pytest.mark.parametrize("change", [{"bias_update": "decay"}, {"backprop_weights": "updated"}])
def test_bound_catches_a_quirk_put_back(program, change):
    """The bound is tight enough to fail: the preset with one of the question's quirks back."""
    outside = []
    for seed in SEEDS[:2]:
        actual, expected, bound = run_both(program, "tanh", seed, **change)
        outside.append(bool((np.abs(actual - expected) > bound).any()))
    assert all(outside)


# ---- the file's CHANGED lines and the preset's changes ----------------------------------------

# Each Config field in which ``corrected`` departs from ``question`` -> the code that makes that
# change in the program; it must stand on a line marked ``# CHANGED:``.
FIELD_CODE = {
    "layers": "HIDDEN = 8",
    "bias_update": "self.biases -= lr * error_gradient",
    "backprop_weights": "input_gradient = np.dot(self.weights.T, error_gradient)",
    "output_activation": "Dense(HIDDEN, 1)]",
}


def changed_lines() -> list[str]:
    return [line for line in PROGRAM.read_text().splitlines() if "# CHANGED:" in line]


def test_every_preset_change_is_a_changed_line():
    question, corrected = PRESETS["question"], PRESETS["corrected"]
    differing = {
        f.name
        for f in dataclasses.fields(corrected)
        if getattr(corrected, f.name) != getattr(question, f.name)
    }
    assert differing == set(FIELD_CODE), "map each new preset change to its line in the program"
    lines = changed_lines()
    for field, code in FIELD_CODE.items():
        hits = [line for line in lines if code in line.split("#", 1)[0]]
        assert len(hits) == 1, f"{field}: no single '# CHANGED:' line with {code!r}"
        reason = hits[0].split("# CHANGED:", 1)[1].strip()
        assert len(reason) > 10, f"{field}: the CHANGED comment does not say why"


def test_program_constants_are_the_presets(program):
    corrected = PRESETS["corrected"]
    assert corrected.layers == (2, program.HIDDEN, program.HIDDEN, 1)
    assert corrected.lr == program.LEARNING_RATE and corrected.epochs == program.EPOCHS
    assert corrected.output_activation == "identity"
    assert not isinstance(program.build_network("tanh")[-1], program.Activation)
    data = question_data()
    assert np.array_equal(program.X.reshape(6, 2), data.X)
    assert np.array_equal(program.Y.reshape(6, 1), data.Y)
    # back-propagation before the update: the input gradient is taken before W changes
    source = inspect.getsource(program.Dense.backward)
    assert source.index("self.weights.T") < source.index("self.weights -=")
    for name in ACTIVATIONS:  # the switch reaches the engine's table under the same names
        get_activation(name)
        assert name in program.ACTIVATIONS
