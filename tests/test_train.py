"""Tests of the engine: network gradient, ensemble independence, divergence, outcomes, batching,
float32 and Config validation."""

from __future__ import annotations

import re
import warnings
import zlib

import numpy as np
import pytest

from diagnostics.activations import ACTIVATIONS
from diagnostics.config import Config
from diagnostics.data import Dataset, question_data
from diagnostics.network import Layout, full_gradient
from diagnostics.presets import PRESETS
from diagnostics.train import OUTCOMES, shuffle_order, train
from tests.reference import draw_params, train_reference
from tests.tolerances import U32, assert_within, dot_bound, gamma, libm_rel, two_sided

# Engine against a per-sample reference over a training trajectory. One update is about 40
# dependent roundings, so each step adds at most gamma(40) ~ 4.4e-15 of the values' size; over
# the longest trajectory here (1,800 updates) that is ~8e-12 if training does not amplify
# differences. It does, mildly and not provably (the update map's Jacobian products along the
# path), so RTOL allows about a hundredfold on top: 1e-9. ATOL covers values that converge to 0
# (losses near 1e-14): 1e-12 is far below any difference a real bug makes (1e-3 and up).
RTOL, ATOL = 1e-9, 1e-12


def assert_roundoff(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    assert np.isfinite(expected).all(), f"{what}: the reference itself is not finite"
    bad = ~(np.abs(actual - expected) <= RTOL * np.abs(expected) + ATOL)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} values differ beyond round-off; first: engine "
            f"{actual.ravel()[i]!r} vs reference {expected.ravel()[i]!r}"
        )


def seed_params(params, s: int):
    """Seed s of ``[(W (S, o, i), b (S, o)), ...]``."""
    return [(W[s], b[s]) for W, b in params]


def assert_same_seed(res_a, a: int, res_b, b: int) -> None:
    """Seed column a of res_a and column b of res_b are bit-identical (loss and final params)."""
    assert np.array_equal(res_a.loss[:, a], res_b.loss[:, b], equal_nan=True)
    for (Wa, ba), (Wb, bb) in zip(
        seed_params(res_a.final_params, a), seed_params(res_b.final_params, b), strict=True
    ):
        assert np.array_equal(Wa, Wb)
        assert np.array_equal(ba, bb)


# ---- (1) the network's gradient against finite differences --------------------------------------

KINKED = {"relu", "leaky_relu", "selu", "elu"}  # skip points within reach of z = 0


def _forward_loss(layers, params, act, X, Y) -> float:
    """mean over samples of sum over outputs of (y_hat - y)^2, one network, plain numpy."""
    a = X.T  # (n_in, N)
    for W, b in params:
        a = act.fn(W @ a + b[:, None])
    return float(((a - Y.T) ** 2).sum(axis=0).mean())


# one evaluation of a table activation: at most two libm calls and ten roundings, relative to the
# size of its intermediates (<= 2 (1 + |z|), see test_activations.EVAL_REL)
ACT_REL = 2 * libm_rel() + gamma(10)


def _forward_out(params, act, X):
    a = X.T
    for W, b in params:
        a = act.fn(W @ a + b[:, None])
    return a


def _forward_loss_error(params, act, X, Y) -> float:
    """Bound on |computed - exact| of _forward_loss (and of the engine's loss, any order).

    Running error analysis: z = W a + b is a dot product of n_in + 1 terms (dot_bound of their
    magnitudes) plus the input's error through |W|; f adds ACT_REL of its intermediates and passes
    z's error on times sup|f'| = act.max_grad. The loss sums N * n_out squares of (a - y): each
    term off by 2 |a - y| (e_a + u (|a| + |y|)), plus the sum's and the mean's roundings.
    """
    a, ea = X.T, np.zeros_like(X.T)
    for W, b in params:
        z = W @ a + b[:, None]
        ez = dot_bound(W.shape[1] + 1, np.abs(W) @ np.abs(a) + np.abs(b)[:, None])
        ez += np.abs(W) @ ea
        a = act.fn(z)
        ea = act.max_grad * ez + ACT_REL * 2.0 * (1.0 + np.abs(z))
    r = a - Y.T
    e = 2.0 * np.abs(r) * (ea + gamma(1) * (np.abs(a) + np.abs(Y.T)))
    sq = r**2
    return float(e.sum() / len(X) + gamma(sq.size + 2) * sq.sum() / len(X))


@pytest.mark.parametrize("layers", [(2, 4, 4, 1), (3, 5, 2), (2, 3, 3, 3, 2)], ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_full_gradient_matches_finite_differences(name, layers):
    act = ACTIVATIONS[name]
    layout = Layout(layers)
    acts = [act] * layout.n_layers
    rng = np.random.default_rng(zlib.crc32(f"{name}{layers}".encode()))  # stable per case
    S, N, h = 3, 5, 1e-6
    for _ in range(100):  # random points; redraw the rare one that sits near a kink
        theta = rng.standard_normal((layout.n_params, S)) * 0.8
        X = rng.standard_normal((N, layers[0]))
        Y = rng.standard_normal((N, layers[-1]))
        loss, grad, ws = full_gradient(layout, theta, acts, X, Y)
        if name not in KINKED or min(np.abs(z).min() for z in ws.z) > 1e-3:
            break
    else:
        pytest.fail("no random point away from the kinks")
    assert loss.shape == (S,) and grad.shape == theta.shape
    # the loss is the mean over samples of the summed squared error
    e_loss = np.empty(S)
    for s in range(S):
        params = seed_params(layout.unpack(theta), s)
        e_loss[s] = _forward_loss_error(params, act, X, Y)
        # the engine and the plain loop each within e_loss of the exact loss
        want = _forward_loss(layers, params, act, X, Y)
        assert loss[s] == pytest.approx(want, rel=0, abs=two_sided(e_loss[s]))
    # central differences over every parameter, all seeds at once, with the third difference
    # (step H) that bounds the truncation h^2/6 |L'''| (doubled for L''' varying over the stencil,
    # plus that difference's own rounding 6 e_L / 2H^3)
    H = 1e-4

    def shifted(p, dx):
        t = theta.copy()
        t[p] += dx
        return full_gradient(layout, t, acts, X, Y)[0]

    fd, d3 = np.empty_like(theta), np.empty_like(theta)
    for p in range(layout.n_params):
        fd[p] = (shifted(p, h) - shifted(p, -h)) / (2 * h)
        d3[p] = np.abs(shifted(p, 2 * H) - 2 * shifted(p, H) + 2 * shifted(p, -H)
                       - shifted(p, -2 * H)) / (2 * H**3)
    d3 = 2.0 * (d3 + 6.0 * e_loss / (2 * H**3))
    # fd: each loss within e_loss (e_loss / h after the division); theta +- h rounded (u |theta|)
    fd_err = e_loss / h + h * h / 6.0 * d3 + gamma(1) * np.abs(theta) / h * np.abs(fd)
    # the analytic gradient: a sum of products along paths of at most 2 L factors, each factor
    # within ACT_REL plus sup|f''| (<= 2 for every table entry, softsign at 0) times z's error;
    # bounded by its terms' magnitude M (row/column sums of |W|, sup|f'|, |y_hat| + |y|)
    grad_err = np.empty(S)
    for s in range(S):
        params = seed_params(layout.unpack(theta), s)
        mag = 2.0 * (np.abs(_forward_out(params, act, X)) + np.abs(Y.T)).max()
        e_z = 0.0
        a_max = max(1.0, float(np.abs(X).max()))
        for W, b in params:
            mag *= max(1.0, act.max_grad * float(np.abs(W).sum(axis=0).max()))
            e_z = dot_bound(W.shape[1] + 1, float(np.abs(W).sum(axis=1).max()) * a_max
                            + float(np.abs(b).max())) + float(np.abs(W).sum(axis=1).max()) * e_z
            a_max = max(a_max, act.max_grad * (float(np.abs(W).sum(axis=1).max()) * a_max
                                               + float(np.abs(b).max())))
        mag *= a_max
        n_ops = 2 * len(params) * (max(layers) + 2)
        grad_err[s] = mag * (gamma(n_ops) + 2 * len(params) * (ACT_REL + 2.0 * e_z))
    assert_within(grad, fd, fd_err + grad_err, name)


# ---- (2) ensemble independence -------------------------------------------------------------------

INDEPENDENCE = {
    "question-relu": PRESETS["question"].replace(activation="relu"),
    "question-tanh": PRESETS["question"].replace(activation="tanh"),
    "shuffled-adam": PRESETS["question"].replace(batch="shuffled", optimizer="adam"),
    "batch2-adam": PRESETS["question"].replace(batch=2, optimizer="adam"),
    # Batches of 3+ samples once broke this for S = 1: with a length-1 seed axis numpy sums the
    # batch axis in another order (einsum, pairwise sums). Reductions now never run on one seed.
    "full-tanh": PRESETS["question"].replace(activation="tanh", batch="full"),
    "batch4-tanh": PRESETS["question"].replace(activation="tanh", batch=4),
}


@pytest.mark.parametrize("case", list(INDEPENDENCE))
def test_seed_alone_equals_seed_in_ensemble_of_1000(case):
    cfg = INDEPENDENCE[case].replace(epochs=60, dtype="float64")
    big = train(cfg, seeds=range(1000))
    for k in (0, 1, 500, 999):
        alone = train(cfg, seeds=[k])
        assert np.array_equal(alone.initial_params[0][0][0], big.initial_params[0][0][k])
        assert_same_seed(alone, 0, big, k)
        assert alone.outcome[0] == big.outcome[k]
        assert alone.epochs_to_threshold[0] == big.epochs_to_threshold[k]


# ---- (3) divergence ------------------------------------------------------------------------------


def _train_no_warnings(cfg, seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow, invalid) fails the test
        return train(cfg, seeds=seeds)


def test_huge_learning_rate_diverges_without_warnings():
    cfg = PRESETS["fixed"].replace(activation="tanh", lr=5.0, epochs=40)
    res = _train_no_warnings(cfg, range(6))
    assert (res.outcome == "diverged").all()
    data = question_data()
    for s in range(6):
        e = int(res.diverged_epoch[s])
        assert 1 <= e <= 40
        assert np.isfinite(res.loss[: e - 1, s]).all()
        assert np.isnan(res.loss[e:, s]).all()
        assert not np.isfinite(res.final_loss[s])
        assert np.isnan(res.max_abs_grad[s])
        for W, b in seed_params(res.final_params, s):
            assert np.isfinite(W).all() and np.isfinite(b).all()
        # the reference blows up at the same epoch (its loss is first non-finite at e or e + 1)
        ref, _ = train_reference(
            draw_params(cfg.layers, s),
            data.X,
            data.Y,
            activation="tanh",
            output_activation="identity",
            lr=5.0,
            epochs=e + 1,
            bias_update="gradient",
            backprop_weights="current",
        )
        assert_roundoff(res.loss[: e - 1, s], ref[: e - 1], f"seed {s}")
        assert not np.isfinite(ref[e - 1 :]).all()
    identity = _train_no_warnings(cfg.replace(activation="identity"), range(6))
    assert (identity.diverged_epoch >= 1).all()


def test_divergence_masking_leaves_other_seeds_untouched():
    cfg = PRESETS["fixed"].replace(activation="tanh", lr=0.3, epochs=100)
    seeds = np.arange(12)
    res = _train_no_warnings(cfg, seeds)
    gone = res.diverged_epoch > 0
    assert 0 < gone.sum() < len(seeds), res.counts()  # a mixed ensemble
    kept = seeds[~gone]
    only = _train_no_warnings(cfg, kept)
    assert (only.diverged_epoch == -1).all()
    for j, k in enumerate(kept):
        assert_same_seed(only, j, res, k)
        assert np.isfinite(res.loss[:, k]).all()
    for k in seeds[gone]:
        e = int(res.diverged_epoch[k])
        assert res.outcome[k] == "diverged"
        assert np.isfinite(res.loss[: e - 1, k]).all() and np.isnan(res.loss[e:, k]).all()
        # frozen at the last finite values: the parameters after epoch e - 1
        before = train(cfg.replace(epochs=e - 1), seeds=[k])
        assert before.diverged_epoch[0] == -1
        for (W, b), (Wf, bf) in zip(
            seed_params(res.final_params, k), seed_params(before.final_params, 0), strict=True
        ):
            assert np.isfinite(W).all() and np.isfinite(b).all()
            assert np.array_equal(W, Wf) and np.array_equal(b, bf)


# ---- (4) outcomes --------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["question", "fixed-relu-output"])
def test_dead_output_unit_is_stuck(preset):
    cfg = (
        PRESETS["question"]
        if preset == "question"
        else PRESETS["fixed"].replace(output_activation="relu")
    ).replace(activation="relu", epochs=100)
    layout = Layout(cfg.layers)
    per_seed = [[(W, b[:, 0]) for W, b in draw_params(cfg.layers, k)] for k in (0, 1)]
    W3, b3 = per_seed[0][-1]
    # hidden ReLU outputs are >= 0, so a negative W3 and b3 keep the output's z < 0 on every
    # sample whatever the hidden layers do (the bias decay only shrinks b3 towards 0-)
    per_seed[0][-1] = (-np.abs(W3), np.full_like(b3, -1.0))
    initial = layout.pack(per_seed, np.float64)
    res = train(cfg, seeds=[0, 1], initial=initial)
    assert res.outcome[0] == "stuck"
    assert res.max_abs_grad[0] == 0.0
    assert res.epochs_to_threshold[0] == -1
    Y = question_data().Y
    assert np.allclose(res.loss[:, 0], (Y**2).mean())  # predicts 0 throughout
    W_final = res.final_params[-1][0][0]
    assert np.array_equal(W_final, -np.abs(W3))  # no gradient reached the output weights
    assert np.array_equal(res.initial_params[-1][1][0], [-1.0])
    assert sum(res.counts().values()) == 2


def test_converged_outcome_and_first_epoch():
    cfg = PRESETS["fixed"].replace(activation="tanh", lr=0.1, epochs=200)
    S = 10
    res = train(cfg, seeds=range(S))
    counts = res.counts()
    assert list(counts) == list(OUTCOMES)
    assert sum(counts.values()) == S
    assert counts["converged"] >= 1
    for s in range(S):
        below = np.flatnonzero(res.loss[:, s] <= cfg.threshold)
        first = int(res.loss_epochs[below[0]]) if below.size else -1
        assert res.epochs_to_threshold[s] == first
        assert (res.outcome[s] == "converged") == (first > 0)
        if first > 1:
            assert res.loss[first - 2, s] > cfg.threshold
        assert res.final_loss[s] == res.loss[-1, s]
    for name in OUTCOMES:
        assert counts[name] == int((res.outcome == name).sum())


# ---- (5) batching modes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, activation", [("question", "tanh"), ("fixed", "tanh"), ("fixed", "relu")]
)
def test_full_batch_matches_reference(preset, activation):
    cfg = PRESETS[preset].replace(activation=activation, lr=0.1, epochs=200, batch="full")
    res = train(cfg, seeds=range(6))
    data = question_data()
    for s in range(6):
        loss, params = train_reference(
            draw_params(cfg.layers, s),
            data.X,
            data.Y,
            activation=activation,
            output_activation=cfg.output_activation,
            lr=cfg.lr,
            epochs=cfg.epochs,
            bias_update=cfg.bias_update,
            backprop_weights=cfg.backprop_weights,
            batch="full",
        )
        assert_roundoff(res.loss[:, s], loss, f"seed {s} loss")
        for (W, b), (rW, rb) in zip(seed_params(res.final_params, s), params, strict=True):
            assert_roundoff(W, rW, f"seed {s} W")
            assert_roundoff(b, rb, f"seed {s} b")


@pytest.mark.parametrize(
    "preset, activation, lr", [("fixed", "identity", 0.005), ("question", "tanh", 0.1)]
)
def test_shuffled_matches_reference_with_engine_order(preset, activation, lr):
    cfg = PRESETS[preset].replace(activation=activation, lr=lr, epochs=80, batch="shuffled")
    seeds = np.array([3, 0, 11, 7])
    res = train(cfg, seeds=seeds)
    data = question_data()
    online = train(cfg.replace(batch="online"), seeds=seeds)
    assert not np.array_equal(res.loss, online.loss)  # the order matters and was used
    for j, k in enumerate(seeds):

        def order(epoch, j=j):
            return shuffle_order(seeds, epoch, data.n_samples)[:, j]

        loss, params = train_reference(
            draw_params(cfg.layers, int(k)),
            data.X,
            data.Y,
            activation=activation,
            output_activation=cfg.output_activation,
            lr=lr,
            epochs=cfg.epochs,
            bias_update=cfg.bias_update,
            backprop_weights=cfg.backprop_weights,
            order=order,
        )
        assert_roundoff(res.loss[:, j], loss, f"seed {k} loss")
        for (W, b), (rW, rb) in zip(seed_params(res.final_params, j), params, strict=True):
            assert_roundoff(W, rW, f"seed {k} W")
            assert_roundoff(b, rb, f"seed {k} b")


def test_shuffle_order_is_a_per_seed_per_epoch_permutation():
    N, E = 6, 20
    seeds = np.arange(1000)
    orders = np.stack([shuffle_order(seeds, e, N) for e in range(1, E + 1)])  # (E, N, S)
    assert orders.shape == (E, N, 1000)
    # every sample exactly once per epoch, for every seed
    assert (np.sort(orders, axis=1) == np.arange(N)[None, :, None]).all()
    # differs across seeds (6! = 720 orders; 1000 seeds should use most of them) ...
    distinct_per_epoch = [len({tuple(c) for c in orders[e].T}) for e in range(E)]
    assert min(distinct_per_epoch) > 500
    # ... and across epochs for a seed
    distinct_per_seed = [len({tuple(orders[e, :, s]) for e in range(E)}) for s in range(50)]
    assert min(distinct_per_seed) >= 15
    # the same for a seed whatever the ensemble around it
    for k in (0, 17, 999):
        for e in (1, 2, 20):
            alone = shuffle_order(np.array([k]), e, N)[:, 0]
            assert np.array_equal(alone, orders[e - 1, :, k])
            assert np.array_equal(alone, shuffle_order(np.array([5, k + 1000, k]), e, N)[:, 2])


# ---- (6) float32 ---------------------------------------------------------------------------------


def test_float32_tracks_float64():
    cfg = PRESETS["question"].replace(activation="tanh", epochs=50)
    r64 = train(cfg, seeds=range(8))
    r32 = train(cfg.replace(dtype="float32"), seeds=range(8))
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in r32.final_params)
    assert not np.array_equal(r32.loss, r64.loss)  # it really ran in float32
    # float32's u32 = 2^-24 amplified by the dependent operations: 50 epochs x 6 online updates,
    # each a chain of ~45 roundings (three layers of <= 5-term dot products and tanh forward, the
    # same backward, the update), first order and without growth by the dynamics (tanh' <= 1,
    # lr = 0.01): gamma(300 * 45, u32) ~ 8e-4 of the quantities' size; float64's share is 2^-29
    # of that. Parameters relative to the layer's largest entry (a single weight may cancel).
    rtol = gamma(50 * 6 * 45, U32)
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=rtol, atol=0)
    for (W32, b32), (W64, b64) in zip(r32.final_params, r64.final_params, strict=True):
        np.testing.assert_allclose(W32, W64, rtol=rtol, atol=rtol * float(np.abs(W64).max()))
        np.testing.assert_allclose(b32, b64, rtol=rtol, atol=rtol * float(np.abs(b64).max()))


# ---- (7) invalid configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, shown",
    [
        ({"activation": "relux"}, "relux"),
        ({"output_activation": "softmaxx"}, "softmaxx"),
        ({"init": "he_normall"}, "he_normall"),
        ({"optimizer": "adamw2"}, "adamw2"),
        ({"lr": 0.0}, "lr 0.0"),
        ({"lr": -0.5}, "lr -0.5"),
        ({"epochs": 0}, "epochs 0"),
        ({"batch": 0}, "batch 0"),
        ({"batch": "minibatch"}, "minibatch"),
        ({"bias_update": "shrink"}, "shrink"),
        ({"dtype": "float16"}, "float16"),
    ],
    ids=lambda v: str(v),
)
def test_invalid_config_raises_value_error_naming_the_value(change, shown):
    with pytest.raises(ValueError, match=re.escape(shown)):
        PRESETS["question"].replace(**change)
    with pytest.raises(ValueError, match=re.escape(shown)):
        Config(**change)


def test_layers_mismatching_the_data_raise():
    with pytest.raises(ValueError, match=re.escape("3,4,1")):
        train(Config(layers=(3, 4, 1), epochs=1))
    with pytest.raises(ValueError, match=re.escape("2,4,2")):
        train(Config(layers=(2, 4, 2), epochs=1))
    data = Dataset("three", np.ones((4, 3)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="three"):
        train(Config(layers=(2, 4, 1), epochs=1), data=data)
