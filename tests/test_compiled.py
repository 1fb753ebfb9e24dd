"""The compiled engine (diagnostics/kernel.py) against the numpy reference engine.

Bit-identical where no transcendental function is involved: the kernel performs the numpy
engine's elementary operations (+ - * /, sqrt, comparisons: IEEE-exact) in the same order, so
relu, leaky_relu, identity and softsign agree to the last bit with every optimizer — Adam's and
RMSProp's sqrt and division included — every batching mode, both quirks and both dtypes.

Within a tolerance otherwise. exp, expm1 and tanh come from the kernel's own vectorizable routines
(within 0.97, 1.14 and 2.36 ulp of the true value, tests/test_kernel_math.py), log1p and pow from
the C library, and all of them from numpy's SIMD routines in the reference when the CPU has them:
the two differ by at most an ulp or two on some arguments (u = 1.1e-16 in float64). Such a
difference enters a parameter through one update scaled by lr * (a bounded gradient term) and is
then carried forward by the step map, whose Jacobian has norm <= 1 + lr * ||H||: over n updates the
accumulated difference is about n * (a few u) * growth. The runs below make 6 * 20 = 120 updates at
lr 0.01 on the question's data (growth ~ 1), so differences stay near 120 * 4u ~ 5e-14 of the
values' scale, comfortably inside the issue's 1e-12 (measured: <= 1e-14). The comparison is
relative to each seed's scale (its largest |value| in the compared array): a loss of 1e-9 is
computed from errors of 3e-5 and carries their absolute round-off, not 1e-12 of itself. float32
uses the same multiple of its unit round-off (6e-8): 5e-4. Unstable runs (a loss that grows 10x per
epoch) amplify an ulp without bound, so these runs are kept short and stable.
"""

from __future__ import annotations

import importlib
import re
import sys

import numpy as np
import pytest

from diagnostics.activations import ACTIVATIONS
from diagnostics.data import Dataset, question_data
from diagnostics.monitor import Monitor
from diagnostics.network import Layout
from diagnostics.optimizers import OPTIMIZERS
from diagnostics.presets import PRESETS
from diagnostics.train import ENGINES, train

train_module = importlib.import_module("diagnostics.train")  # the package exports train()

EXACT = {"identity", "relu", "leaky_relu", "softsign"}  # no transcendental function
RTOL = {"float64": 1e-12, "float32": 5e-4}
BATCHES = ["online", "shuffled", "full", 2, 4]
QUIRKS = {
    "fixed": {},
    "question": {"bias_update": "decay", "backprop_weights": "updated"},
}
SEEDS = 8


def _arrays(res):
    """Name -> seed-first array of everything the engines must agree on."""
    out = {"loss": res.loss.T, "final_loss": res.final_loss, "min_loss": res.min_loss}
    for l, (W, b) in enumerate(res.final_params):
        out[f"W{l + 1}"], out[f"b{l + 1}"] = W, b
    return out


def assert_engines_agree(cfg, seeds=SEEDS, exact=None, **kwargs):
    """Compiled vs numpy: identical outcomes; arrays bit-identical or within RTOL per seed."""
    exact = (
        {cfg.activation, cfg.output_activation or cfg.activation} <= EXACT
        if exact is None
        else exact
    )
    ref = train(cfg, seeds=seeds, engine="numpy", **kwargs)
    got = train(cfg, seeds=seeds, engine="compiled", **kwargs)
    assert got.engine == "compiled" and ref.engine == "numpy"
    np.testing.assert_array_equal(got.diverged_epoch, ref.diverged_epoch)
    np.testing.assert_array_equal(got.epochs_to_threshold, ref.epochs_to_threshold)
    np.testing.assert_array_equal(got.outcome, ref.outcome)
    assert got.epochs_run == ref.epochs_run
    for name, expected in _arrays(ref).items():
        actual = _arrays(got)[name]
        assert actual.dtype == expected.dtype, name
        if exact:
            np.testing.assert_array_equal(actual, expected, err_msg=name)
            continue
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=name)
        a = np.nan_to_num(actual.astype(np.float64)).reshape(actual.shape[0], -1)
        e = np.nan_to_num(expected.astype(np.float64)).reshape(expected.shape[0], -1)
        scale = np.abs(e).max(axis=1, keepdims=True)
        worst = (np.abs(a - e) / np.where(scale > 0, scale, 1.0)).max()
        assert worst <= RTOL[cfg.dtype], f"{name}: {worst:.3g} of the seed's scale"
    return ref, got


# ---- every table entry ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation(activation, dtype):
    cfg = PRESETS["fixed"].replace(activation=activation, lr=0.01, epochs=20, dtype=dtype)
    assert_engines_agree(cfg)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output", list(ACTIVATIONS))
def test_every_output_activation(output, dtype):
    cfg = PRESETS["question"].replace(
        activation="relu", output_activation=output, lr=0.01, epochs=20, dtype=dtype
    )
    assert_engines_agree(cfg)


@pytest.mark.parametrize("quirks", list(QUIRKS))
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_batch_mode_and_quirk_bit_identical(optimizer, batch, quirks):
    for dtype in ("float64", "float32"):
        cfg = PRESETS["fixed"].replace(
            activation="relu", optimizer=optimizer, batch=batch, lr=0.01, epochs=20,
            dtype=dtype, **QUIRKS[quirks],
        )
        assert_engines_agree(cfg)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_and_batch_mode_with_tanh(optimizer, batch):
    cfg = PRESETS["question"].replace(
        activation="tanh", optimizer=optimizer, batch=batch, lr=0.01, epochs=20
    )
    assert_engines_agree(cfg)


def test_faithful_preset_and_leaky_slope_and_larger_data():
    for activation in ("relu", "tanh", "sigmoid"):
        assert_engines_agree(PRESETS["question"].replace(activation=activation, epochs=30))
    assert_engines_agree(
        PRESETS["fixed"].replace(activation="leaky_relu", leaky_slope=0.2, epochs=30)
    )
    # 20 samples, 3 outputs: batch sums over more than 8 terms, several output units
    rng = np.random.default_rng(5)
    data = Dataset("d", rng.uniform(0, 1, (20, 3)), rng.uniform(0, 1, (20, 3)))
    for batch in ("full", 7, "shuffled"):
        cfg = PRESETS["fixed"].replace(
            layers=(3, 5, 4, 3), activation="relu", batch=batch, optimizer="adam", epochs=15,
            lr=0.003,
        )
        assert_engines_agree(cfg, data=data)


# Widths that cross the kernel's passes of up to four terms: sums over n_in = 9 (4 + 4 + 1),
# 6 (4 + 2), 5 (4 + 1) and 3 inputs in the forward pass, over n_out = 9, 6, 5 and 2 outputs in
# back-propagation, and the same chunks in the fused update of plain SGD on one sample.
WIDE = (3, 9, 6, 5, 2)


def _wide_chunks_data():
    rng = np.random.default_rng(7)
    return Dataset("d", rng.uniform(0, 1, (10, 3)), rng.uniform(0, 1, (10, 2)))


@pytest.mark.parametrize("quirks", list(QUIRKS))
@pytest.mark.parametrize("batch", ["online", "shuffled", 3, "full"], ids=str)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_widths_across_the_four_term_passes_bit_identical(optimizer, batch, quirks):
    cfg = PRESETS["fixed"].replace(
        layers=WIDE, activation="relu", optimizer=optimizer, batch=batch, lr=0.01, epochs=12,
        **QUIRKS[quirks],
    )
    assert_engines_agree(cfg, data=_wide_chunks_data())


@pytest.mark.parametrize("quirks", list(QUIRKS))
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "elu", "silu"])
def test_widths_across_the_four_term_passes_with_transcendentals(activation, quirks):
    # Xavier weights: with the fixed preset's draws some seeds of this network are unstable,
    # where an ulp grows without bound (in either engine's numbers against the other)
    cfg = PRESETS["fixed"].replace(
        layers=WIDE, activation=activation, init="xavier_normal", lr=0.01, epochs=12,
        **QUIRKS[quirks],
    )
    assert_engines_agree(cfg, data=_wide_chunks_data())


def test_loss_schedule_thresholds_and_monitor_match():
    cfg = PRESETS["fixed"].replace(activation="relu", lr=0.05, epochs=300)
    data = question_data()
    kwargs = dict(loss_epochs=[1, 7, 150, 299, 300], thresholds=(0.05, 1e-2))
    monitors = {}
    for engine in ENGINES:
        monitors[engine] = Monitor(cfg, data, range(12), record="all", every="log:15")
        res = train(cfg, data, 12, engine=engine, monitor=monitors[engine], **kwargs)
        assert res.loss.shape == (5, 12)
    ref, got = assert_engines_agree(cfg, seeds=12, **kwargs)
    for t in (0.05, 1e-2):
        np.testing.assert_array_equal(got.epochs_to[t], ref.epochs_to[t])
    a, b = monitors["compiled"], monitors["numpy"]
    np.testing.assert_array_equal(a.values, b.values)
    for key, col in a.events().items():
        np.testing.assert_array_equal(col, b.events()[key])


@pytest.mark.parametrize("case", ["diverging", "settling"])
def test_monitor_reads_the_same_epochs_in_both_engines(case, monkeypatch):
    """The compiled engine hands the monitor the parameters before each recorded epoch from
    inside the kernel (update_ratio): the same values as the numpy engine's copies, with seeds
    diverging in recorded epochs and with blocks that settle and catch up (relu: exact)."""
    monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", 8)  # several blocks
    if case == "diverging":
        cfg = PRESETS["question"].replace(output_activation="identity", lr=0.1, epochs=40)
        seeds, kw = list(range(30)), {}
    else:
        cfg, seeds, kw = SETTLING, SETTLING_SEEDS, {"until_settled": True}
    monitors, results = {}, {}
    for engine in ENGINES:
        monitors[engine] = Monitor(cfg, question_data(), seeds, record="all", every="every:1")
        results[engine] = train(cfg, question_data(), seeds, engine=engine,
                                monitor=monitors[engine], **kw)
    if case == "diverging":
        assert len(set(results["compiled"].diverged_epoch) - {-1}) > 1
    else:
        assert results["compiled"].epochs_run == results["numpy"].epochs_run < cfg.epochs
    a, b = monitors["compiled"], monitors["numpy"]
    ratio = [k for k, (_, name) in enumerate(a.rows) if name == "update_ratio"]
    assert np.isfinite(a.values[1:, ratio]).any()
    np.testing.assert_array_equal(a.values, b.values)


# ---- seed independence -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        {"activation": "tanh"},
        {"activation": "relu", "batch": "shuffled", "optimizer": "adam"},
        {"activation": "sigmoid", "batch": 3, "optimizer": "rmsprop"},
        {"activation": "relu", "batch": "full", "optimizer": "nesterov", "dtype": "float32"},
    ],
    ids=lambda c: "-".join(map(str, c.values())),
)
def test_seed_alone_equals_seed_inside_200_across_block_boundaries(case, monkeypatch):
    cfg = PRESETS["question"].replace(epochs=40, **case)
    monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", 64)  # blocks 0-63, 64-127, ...
    big = train(cfg, seeds=range(200))
    monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", 7)
    small_blocks = train(cfg, seeds=range(200))
    np.testing.assert_array_equal(big.loss, small_blocks.loss)
    for k in (0, 63, 64, 127, 128, 199):
        monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", None)
        alone = train(cfg, seeds=[k])
        np.testing.assert_array_equal(alone.loss[:, 0], big.loss[:, k])
        for (W, b), (Wb, bb) in zip(alone.final_params, big.final_params, strict=True):
            np.testing.assert_array_equal(W[0], Wb[k])
            np.testing.assert_array_equal(b[0], bb[k])
        assert alone.outcome[0] == big.outcome[k]


# ---- divergence --------------------------------------------------------------------------------


def test_divergence_is_detected_and_frozen_exactly_like_numpy(monkeypatch):
    cfg = PRESETS["fixed"].replace(activation="identity", lr=0.05, epochs=100)
    monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", 5)  # divergences inside blocks
    ref, got = assert_engines_agree(cfg, seeds=12)
    gone = got.diverged_epoch > 0
    assert 0 < gone.sum() < 12
    for k in np.flatnonzero(gone):
        e = got.diverged_epoch[k]
        assert np.isnan(got.loss[e:, k]).all() and np.isfinite(got.loss[: e - 1, k]).all()
        if e > 1:
            before = train(cfg.replace(epochs=int(e) - 1), seeds=[k]).final_params
        else:
            before = train(cfg.replace(epochs=1), seeds=[k]).initial_params
        for (W, b), (Wf, bf) in zip(before, got.final_params, strict=True):
            np.testing.assert_array_equal(W[0], Wf[k])
            np.testing.assert_array_equal(b[0], bf[k])
    everything = cfg.replace(lr=0.5, epochs=50)
    ref, got = assert_engines_agree(everything, seeds=6)
    assert (got.outcome == "diverged").all()
    assert got.epochs_run == ref.epochs_run == got.diverged_epoch.max()


# ---- until_settled -------------------------------------------------------------------------------

SETTLING = PRESETS["fixed"].replace(
    activation="relu", output_activation="relu", lr=0.1, epochs=3000
)
SETTLING_SEEDS = [s for s in range(40) if s not in (2, 17, 20, 30, 33)]  # converge or die


@pytest.mark.parametrize("engine", ENGINES)
def test_until_settled_stops_early_with_the_full_runs_outcomes(engine, monkeypatch):
    monkeypatch.setattr(train_module, "_BLOCK_OVERRIDE", 8)
    full = train(SETTLING, seeds=SETTLING_SEEDS, engine=engine)
    early = train(SETTLING, seeds=SETTLING_SEEDS, engine=engine, until_settled=True)
    assert full.epochs_run == 3000
    assert 1 <= early.epochs_run < 3000
    assert set(early.outcome) == {"converged", "stuck"}
    for name in ("outcome", "epochs_to_threshold"):
        np.testing.assert_array_equal(getattr(early, name), getattr(full, name), err_msg=name)
    stuck = early.outcome == "stuck"  # (converged seeds would have gone on improving)
    for name in ("max_abs_grad", "min_loss", "final_loss"):
        np.testing.assert_array_equal(getattr(early, name)[stuck], getattr(full, name)[stuck])
    E = early.epochs_run
    np.testing.assert_array_equal(early.loss[:E], full.loss[:E])
    assert np.isnan(early.loss[E:]).all()
    # the last epoch is the first at which everything was settled
    again = train(SETTLING, seeds=SETTLING_SEEDS, engine=engine, until_settled=True,
                  loss_epochs=[E])
    assert again.epochs_run == E
    for (W, b), (Wf, bf) in zip(early.final_params, full.final_params, strict=True):
        np.testing.assert_array_equal(W[stuck], Wf[stuck])  # frozen: nothing left to run
        np.testing.assert_array_equal(b[stuck], bf[stuck])


def test_until_settled_same_epoch_in_both_engines():
    a = train(SETTLING, seeds=SETTLING_SEEDS, engine="numpy", until_settled=True)
    b = train(SETTLING, seeds=SETTLING_SEEDS, engine="compiled", until_settled=True)
    assert a.epochs_run == b.epochs_run


@pytest.mark.parametrize("engine", ENGINES)
def test_zero_gradient_with_decaying_bias_is_not_settled(engine):
    """A dead output unit has a zero gradient, but b -= lr*b keeps changing it: not frozen."""
    cfg = PRESETS["question"].replace(activation="relu", epochs=60)
    layout = Layout(cfg.layers)
    res0 = train(cfg.replace(epochs=1), seeds=[0])
    params = [(W[0], b[0]) for W, b in res0.initial_params]
    W3, _ = params[-1]
    params[-1] = (-np.abs(W3), np.full(1, -1.0))
    initial = layout.pack([params], np.float64)
    res = train(cfg, seeds=[0], initial=initial, engine=engine, until_settled=True)
    assert res.outcome[0] == "stuck" and res.max_abs_grad[0] == 0.0
    assert res.epochs_run == 60
    # the same network without the decay is frozen after its first epoch
    fixed = cfg.replace(bias_update="gradient")
    res = train(fixed, seeds=[0], initial=initial, engine=engine, until_settled=True)
    assert res.outcome[0] == "stuck" and res.epochs_run == 1


def test_until_settled_with_minibatches_never_freezes():
    cfg = SETTLING.replace(batch=2, epochs=200)
    res = train(cfg, seeds=SETTLING_SEEDS[:6], until_settled=True)
    stuck = res.outcome == "stuck"
    assert stuck.any() and res.epochs_run == 200  # other batches may yet move a stuck seed


# ---- the engine argument -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["fortran", "Compiled", ""])
def test_unknown_engine_raises_naming_it_and_the_accepted_ones(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))) as info:
        train(PRESETS["question"].replace(epochs=1), seeds=1, engine=bad)
    assert "compiled, numpy, matmul" in str(info.value)


def test_default_engine_is_compiled():
    assert train(PRESETS["question"].replace(epochs=2), seeds=2).engine == "compiled"


# ---- the matmul path for wide layers -------------------------------------------------------------

# BLAS sums each product over n_in (or n_out, or the batch) in its own blocked order, with FMA,
# instead of index order: each contraction differs by at most ~n * u * sum|terms| (n <= 40 here,
# and the terms of these well-scaled layers add up without cancellation), carried through 10-20
# epochs of small steps as above: measured <= 1e-13 of each seed's scale; 1e-12 holds.


def _wide_data(n=24):
    rng = np.random.default_rng(11)
    X = rng.uniform(0, 1, (n, 2))
    return Dataset("add24", X, X.sum(axis=1, keepdims=True))


@pytest.mark.parametrize(
    "case",
    [
        {"activation": "relu", "batch": "full", "optimizer": "adam"},
        {"activation": "tanh", "batch": 6, "optimizer": "momentum"},
        {"activation": "relu", "batch": 8, "bias_update": "decay", "backprop_weights": "updated"},
        {"activation": "sigmoid", "batch": "online", "optimizer": "rmsprop"},
        {"activation": "relu", "batch": 4, "dtype": "float32"},
    ],
    ids=lambda c: "-".join(map(str, c.values())),
)
def test_matmul_path_agrees_with_numpy_to_roundoff(case):
    cfg = PRESETS["fixed"].replace(
        layers=(2, 40, 40, 1), init="xavier_normal", lr=0.01, epochs=12, **case
    )
    data = _wide_data()
    ref = train(cfg, data, 6, engine="numpy")
    got = train(cfg, data, 6, engine="matmul")
    assert got.engine == "matmul"
    np.testing.assert_array_equal(got.outcome, ref.outcome)
    rtol = RTOL[cfg.dtype]
    for name, expected in _arrays(ref).items():
        actual = _arrays(got)[name].astype(np.float64).reshape(6, -1)
        expected = expected.astype(np.float64).reshape(6, -1)
        scale = np.abs(expected).max(axis=1, keepdims=True)
        assert (np.abs(actual - expected) <= rtol * scale).all(), name


@pytest.mark.parametrize("case", [
    {"optimizer": "adam", "batch": "full"},
    {"bias_update": "decay", "backprop_weights": "updated", "batch": 8},
], ids=["adam", "quirks"])
def test_matmul_path_seed_by_seed_equals_all_seeds_at_once(monkeypatch, case):
    # the gradient and update of a layer go a few seeds at a time (STEP_BYTES); one seed at a
    # time must give the same numbers bit for bit: the same products (one matrix a seed) and
    # the same elementwise updates
    cfg = PRESETS["fixed"].replace(layers=(2, 40, 40, 1), init="xavier_normal", lr=0.01,
                                   epochs=8, **case)
    data = _wide_data()
    whole = train(cfg, data, 5, engine="matmul")
    monkeypatch.setattr(sys.modules["diagnostics.train"], "STEP_BYTES", 1)
    seed_by_seed = train(cfg, data, 5, engine="matmul")
    for name, expected in _arrays(whole).items():
        np.testing.assert_array_equal(_arrays(seed_by_seed)[name], expected, err_msg=name)


def test_compiled_chooses_matmul_for_batches_of_wide_layers_only():
    data = _wide_data()
    wide = PRESETS["fixed"].replace(layers=(2, 40, 40, 1), epochs=2)
    assert train(wide.replace(batch="full"), data, 2).engine == "matmul"
    assert train(wide.replace(batch=16), data, 2).engine == "matmul"
    assert train(wide.replace(batch=8), data, 2).engine == "compiled"
    assert train(wide, data, 2).engine == "compiled"  # one-sample steps: the kernel
    assert train(wide.replace(layers=(2, 8, 1), batch="full"), data, 2).engine == "compiled"
    # layers of 128 or more units: from 4 samples a step (and still not one-sample steps)
    very = wide.replace(layers=(2, 128, 1))
    assert train(very.replace(batch=4), data, 2).engine == "matmul"
    assert train(very.replace(batch=3), data, 2).engine == "compiled"
    assert train(very, data, 2).engine == "compiled"
    assert train(wide.replace(batch="full"), data, 2, engine="numpy").engine == "numpy"


@pytest.mark.parametrize("every", ["log:20", "every:7"])
def test_until_settled_with_a_monitor_stops_at_the_same_epoch(every):
    data = question_data()
    monitors, runs = {}, {}
    for engine in ("numpy", "compiled"):
        monitors[engine] = Monitor(SETTLING, data, SETTLING_SEEDS, record="all", every=every)
        runs[engine] = train(SETTLING, data, SETTLING_SEEDS, engine=engine, until_settled=True,
                             monitor=monitors[engine])
    assert runs["numpy"].epochs_run == runs["compiled"].epochs_run < SETTLING.epochs
    np.testing.assert_array_equal(runs["numpy"].loss, runs["compiled"].loss)
    np.testing.assert_array_equal(monitors["numpy"].values, monitors["compiled"].values)
