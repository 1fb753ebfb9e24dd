"""Tests of diagnostics.optimizers: the first two steps of every rule against arithmetic done by
hand (plain Python floats, PyTorch's conventions), state layout, element-wise slicing, and lookup.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from diagnostics.optimizers import OPTIMIZERS, Hyper, get_optimizer, init_state

from .tolerances import assert_within, gamma, two_sided

# Two optimizer steps are at most ~20 rounded operations each (Adam: two averages, two bias
# corrections with beta^t, a sqrt, a divide, the update), 40 in all, in the engine and again in
# the hand-worked Python: each side within gamma_40 of the exact value *relative to the size of
# the operands* (theta ~ 2; an update that cancels to 0, RMSprop's first step here, has no
# relative accuracy), hence the atol scaled by max |theta|.
STEP_OPS = 40

HP = Hyper(lr=0.1, momentum=0.9, beta1=0.9, beta2=0.999, rms_decay=0.99, eps=1e-8)
THETA0 = [1.0, -2.0]
G1 = [0.5, 0.25]
G2 = [-1.0, 0.5]


# --- the rules by hand, one coordinate at a time ------------------------------------------------


def hand_sgd(theta, g1, g2):
    # theta1 = theta - lr g1 = [1 - 0.05, -2 - 0.025]    = [0.95, -2.025]
    # theta2 = theta1 - lr g2 = [0.95 + 0.1, -2.025 - 0.05] = [1.05, -2.075]
    t1 = theta - 0.1 * g1
    return t1, t1 - 0.1 * g2


def hand_momentum(theta, g1, g2):
    # PyTorch heavy ball: v = mu v + g, theta -= lr v
    # v1 = g1 = [0.5, 0.25];                    theta1 = [0.95, -2.025]
    # v2 = 0.9 v1 + g2 = [0.45 - 1, 0.225 + 0.5] = [-0.55, 0.725]
    # theta2 = theta1 - 0.1 v2 = [0.95 + 0.055, -2.025 - 0.0725] = [1.005, -2.0975]
    v1 = g1
    t1 = theta - 0.1 * v1
    v2 = 0.9 * v1 + g2
    return t1, t1 - 0.1 * v2


def hand_nesterov(theta, g1, g2):
    # PyTorch Nesterov: v = mu v + g, theta -= lr (g + mu v)
    # v1 = [0.5, 0.25]; g1 + 0.9 v1 = [0.95, 0.475]; theta1 = [0.905, -2.0475]
    # v2 = [-0.55, 0.725]; g2 + 0.9 v2 = [-1 - 0.495, 0.5 + 0.6525] = [-1.495, 1.1525]
    # theta2 = [0.905 + 0.1495, -2.0475 - 0.11525] = [1.0545, -2.16275]
    v1 = g1
    t1 = theta - 0.1 * (g1 + 0.9 * v1)
    v2 = 0.9 * v1 + g2
    return t1, t1 - 0.1 * (g2 + 0.9 * v2)


def hand_adam(theta, g1, g2):
    # Kingma & Ba 2015, Algorithm 1:
    #   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
    #   theta -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    # t = 1: m = 0.1 g1, v = 0.001 g1^2, so m_hat = g1, v_hat = g1^2 and the step is
    #   lr * g1 / (|g1| + eps) = ~0.1 * sign(g1)          -> theta1 ~ [0.9, -2.1]
    # t = 2: m = 0.9 * 0.1 g1 + 0.1 g2 = [0.045 - 0.1, 0.0225 + 0.05] = [-0.055, 0.0725]
    #        v = 0.999 * 0.001 g1^2 + 0.001 g2^2 = [0.00024975 + 0.001, 0.0000624375 + 0.00025]
    #          = [0.00124975, 0.0003124375]
    #        m_hat = m / 0.19 = [-0.28947, 0.38158];  v_hat = v / 0.001999 = [0.62519, 0.15630]
    #        step = 0.1 * m_hat / sqrt(v_hat) = [-0.036610, 0.096518]
    #        theta2 ~ [0.9 + 0.036610, -2.1 - 0.096518] = [0.936610, -2.196518]
    m1 = 0.1 * g1
    v1 = 0.001 * g1 * g1
    t1 = theta - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + 1e-8)
    m2 = 0.9 * m1 + 0.1 * g2
    v2 = 0.999 * v1 + 0.001 * g2 * g2
    bc1 = 1 - 0.9**2  # 0.19
    bc2 = 1 - 0.999**2  # 0.001999
    return t1, t1 - 0.1 * (m2 / bc1) / (math.sqrt(v2 / bc2) + 1e-8)


def hand_rmsprop(theta, g1, g2):
    # PyTorch RMSprop (alpha = rms_decay, eps outside the sqrt, no bias correction):
    #   s = a s + (1-a) g^2;  theta -= lr g / (sqrt(s) + eps)
    # t = 1: s = 0.01 g1^2 = [0.0025, 0.000625], sqrt(s) = [0.05, 0.025] = |g1| / 10
    #        step = 0.1 * 10 sign(g1) = [1, 1]                  -> theta1 ~ [0.0, -3.0]
    # t = 2: s = 0.99 s + 0.01 g2^2 = [0.002475 + 0.01, 0.00061875 + 0.0025]
    #          = [0.012475, 0.00311875];  sqrt(s) = [0.111692, 0.0558458]
    #        g2 / sqrt(s) = [-8.95323, 8.95323]  (g2 = [-2, 2] * g1, so s = 4.99 * 0.01 g1^2
    #        and g2 / sqrt(s) = +-2 / sqrt(0.0499) in both coordinates)
    #        theta2 ~ [0.0 + 0.895323, -3.0 - 0.895323] = [0.895323, -3.895323]
    s1 = 0.01 * g1 * g1
    t1 = theta - 0.1 * g1 / (math.sqrt(s1) + 1e-8)
    s2 = 0.99 * s1 + 0.01 * g2 * g2
    return t1, t1 - 0.1 * g2 / (math.sqrt(s2) + 1e-8)


HAND = {
    "sgd": hand_sgd,
    "momentum": hand_momentum,
    "nesterov": hand_nesterov,
    "adam": hand_adam,
    "rmsprop": hand_rmsprop,
}
# the same two steps, rounded by hand, to catch a slip in the Python above
APPROX = {
    "sgd": ([0.95, -2.025], [1.05, -2.075]),
    "momentum": ([0.95, -2.025], [1.005, -2.0975]),
    "nesterov": ([0.905, -2.0475], [1.0545, -2.16275]),
    "adam": ([0.9, -2.1], [0.936610, -2.196518]),
    "rmsprop": ([0.0, -3.0], [0.895323, -3.895323]),
}


def expected_two_steps(name):
    if name not in HAND:
        pytest.fail(f"no hand-worked steps for optimizer {name!r}: add them to HAND")
    pairs = [HAND[name](t, a, b) for t, a, b in zip(THETA0, G1, G2, strict=True)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def run_steps(name, theta, grads, hp=HP):
    opt = OPTIMIZERS[name]
    state = init_state(opt, theta)
    out = []
    for t, g in enumerate(grads, start=1):
        tmp = np.full_like(theta, np.nan)  # the rule must not read scratch it has not written
        opt.step(theta, g, state, t, hp, tmp)
        out.append(theta.copy())
    return out, state


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_first_two_steps_by_hand(name):
    theta = np.array(THETA0)
    g1, g2 = np.array(G1), np.array(G2)
    (t1, t2), _ = run_steps(name, theta, [g1, g2])
    want1, want2 = expected_two_steps(name)
    scale = max(abs(x) for x in [*THETA0, *want1, *want2])
    tol = two_sided(gamma(STEP_OPS)) * scale
    np.testing.assert_allclose(t1, want1, rtol=0, atol=tol)
    np.testing.assert_allclose(t2, want2, rtol=0, atol=tol)
    approx1, approx2 = APPROX[name]
    # APPROX is written to 6 decimals: half a unit of the last written digit, not round-off
    np.testing.assert_allclose(want1, approx1, atol=1e-6)
    np.testing.assert_allclose(want2, approx2, atol=1e-6)
    assert np.array_equal(g1, G1) and np.array_equal(g2, G2), "step modified the gradient"


def test_adam_and_rmsprop_eps_enters_outside_the_sqrt():
    # with eps = 0.1 the placement is visible: t = 1 Adam step = lr g / (|g| + eps)
    hp = Hyper(lr=1.0, eps=0.1)
    (t1,), _ = run_steps("adam", np.array([0.0]), [np.array([0.3])], hp)
    # a handful of operations each side (no cancellation: all terms positive): relative
    assert t1[0] == pytest.approx(-0.3 / (0.3 + 0.1), rel=two_sided(gamma(STEP_OPS)))
    # RMSprop: s = (1 - 0.99) 0.09 = 0.0009, sqrt = 0.03, step = 0.3 / (0.03 + 0.1)
    (t1,), _ = run_steps("rmsprop", np.array([0.0]), [np.array([0.3])], hp)
    assert t1[0] == pytest.approx(-0.3 / (0.03 + 0.1), rel=two_sided(gamma(STEP_OPS)))


def test_every_optimizer_has_hand_values():
    assert set(OPTIMIZERS) == set(HAND) == set(APPROX)


# --- state --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_arrays_are_zero_and_shaped_like_theta(name, dtype):
    opt = OPTIMIZERS[name]
    theta = np.arange(12, dtype=dtype).reshape(3, 4) + 1
    state = init_state(opt, theta)
    assert set(state) == set(opt.state)
    for arr in state.values():
        assert arr.shape == theta.shape and arr.dtype == dtype
        assert not arr.any()
        assert not np.shares_memory(arr, theta)
    arrays = list(state.values())
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)


def test_state_names():
    expected = {
        "sgd": set(),
        "momentum": {"velocity"},
        "nesterov": {"velocity"},
        "adam": {"m", "v"},
        "rmsprop": {"square_avg"},
    }
    assert {n: set(o.state) for n, o in OPTIMIZERS.items()} == expected


def test_state_after_two_steps():
    # momentum v2 = 0.9 g1 + g2 = [-0.55, 0.725]; Adam m2, v2 as worked out in hand_adam;
    # RMSprop s2 = [0.012475, 0.00311875] as in hand_rmsprop
    # each state is a short sum of terms of size |g| (m, velocity) or g^2 (v, square_avg) with
    # coefficients <= 1; the decimal literals are rounded once more (u). Bound: a few roundings
    # relative to the terms' magnitude (the velocity's 0.45 - 1.0 partly cancels).
    g_mag = np.abs(G1) + np.abs(G2)
    g2_mag = np.square(G1) + np.square(G2)
    tol = two_sided(gamma(8))
    _, state = run_steps("momentum", np.array(THETA0), [np.array(G1), np.array(G2)])
    assert_within(state["velocity"], [0.9 * 0.5 - 1.0, 0.9 * 0.25 + 0.5], tol * g_mag, "velocity")
    _, state = run_steps("adam", np.array(THETA0), [np.array(G1), np.array(G2)])
    assert_within(state["m"], [-0.055, 0.0725], tol * g_mag, "m")
    assert_within(state["v"], [0.00124975, 0.0003124375], tol * g2_mag, "v")
    _, state = run_steps("rmsprop", np.array(THETA0), [np.array(G1), np.array(G2)])
    assert_within(state["square_avg"], [0.012475, 0.00311875], tol * g2_mag, "square_avg")


# --- element-wise: slices of a flat buffer --------------------------------------------------


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_on_two_slices_equals_step_on_the_whole_buffer(name):
    opt = OPTIMIZERS[name]
    rng = np.random.default_rng(3)
    theta0 = rng.standard_normal(23)
    grads = [rng.standard_normal(23) for _ in range(4)]
    cut = 9

    whole = theta0.copy()
    s_whole = init_state(opt, whole)
    tmp_whole = np.empty_like(whole)
    parts = theta0.copy()
    s_parts = init_state(opt, parts)
    tmp_parts = np.empty_like(parts)
    for t, g in enumerate(grads, start=1):
        opt.step(whole, g, s_whole, t, HP, tmp_whole)
        for sl in (slice(0, cut), slice(cut, None)):
            state = {k: v[sl] for k, v in s_parts.items()}  # views into the flat state
            opt.step(parts[sl], g[sl], state, t, HP, tmp_parts[sl])
    assert np.array_equal(whole, parts)
    for k in s_whole:
        assert np.array_equal(s_whole[k], s_parts[k]), k
    assert not np.array_equal(whole, theta0)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_works_in_place_on_a_2d_layer_view(name):
    # one layer's (fan_out, fan_in) weights as a view of the flat buffer
    opt = OPTIMIZERS[name]
    rng = np.random.default_rng(5)
    flat = rng.standard_normal(20)
    g = rng.standard_normal(20)
    orig = flat.copy()
    ref = flat.copy()
    s_ref = init_state(opt, ref)
    opt.step(ref, g, s_ref, 1, HP, np.empty_like(ref))
    s_flat = init_state(opt, flat)
    view = flat[4:16].reshape(3, 4)
    state = {k: v[4:16].reshape(3, 4) for k, v in s_flat.items()}
    opt.step(view, g[4:16].reshape(3, 4), state, 1, HP, np.empty((3, 4)))
    assert np.array_equal(flat[4:16], ref[4:16])
    assert not np.array_equal(flat[4:16], orig[4:16])
    assert np.array_equal(flat[:4], orig[:4]) and np.array_equal(flat[16:], orig[16:])


def test_sgd_is_theta_minus_lr_g_bit_for_bit():
    rng = np.random.default_rng(8)
    for lr in (0.1, 0.01, 0.3, 1e-3):
        theta = rng.standard_normal((7, 5))
        g = rng.standard_normal((7, 5)) * 10
        want = theta - lr * g
        opt = OPTIMIZERS["sgd"]
        opt.step(theta, g, init_state(opt, theta), 1, Hyper(lr=lr), np.empty_like(theta))
        assert np.array_equal(theta, want)


# --- lookup ---------------------------------------------------------------------------------------


def test_get_optimizer_returns_the_table_entry():
    for name, opt in OPTIMIZERS.items():
        assert get_optimizer(name) is opt
        assert opt.name == name


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match="adamw") as info:
        get_optimizer("adamw")
    for name in OPTIMIZERS:
        assert name in str(info.value)
