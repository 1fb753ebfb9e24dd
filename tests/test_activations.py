"""Tests of diagnostics.activations: derivatives, out= forms, numerical range, table flags, and
the bit-for-bit agreement of relu / tanh / sigmoid with the question's program.

Expected values come from the mathematics (central differences, limits, closed forms), never from
the module's own formulas.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

from diagnostics.activations import ACTIVATIONS, Activation, get_activation

from .tolerances import (
    LIBM_ULPS,
    assert_within,
    central_difference_atol,
    gamma,
    libm_rel,
    two_sided,
)

# every table entry (ids = names), plus leaky_relu at the slopes a study may ask for
CASES: list[tuple[str, Activation]] = [(name, act) for name, act in ACTIVATIONS.items()]
CASES += [
    (f"leaky_relu[{s}]", get_activation("leaky_relu", leaky_slope=s)) for s in (0.0, 0.2, 0.5)
]
IDS = [c[0] for c in CASES]
ACTS = [c[1] for c in CASES]

# entries whose derivative (or its derivative) jumps at z = 0
KINKED = {"relu", "leaky_relu", "elu", "selu"}
# softsign's f'' = -2 sign(z) / (1 + |z|)^3 jumps at 0: a central difference there is off by h
# (no f^(3) bound holds across the jump), so the stencil is kept off 0 as for the kinks
F2_JUMP = {"softsign"}

SELU_LAMBDA = 1.0507009873554805  # Klambauer et al. 2017, eq. (14)
SELU_ALPHA = 1.6732632423543772
LECUN_A, LECUN_B = 1.7159, 2.0 / 3.0  # LeCun et al. 1998, "Efficient BackProp", sec. 4.4

# sup |f^(3)| on [-6, 6] (away from z = 0 for the kinked ones), for the truncation error of a
# central difference: sigmoid s'(1 - 6s + 6s^2) peaks at z = 0 (1/8); tanh 2 sech^2 (3t^2 - 1) at
# 0 (2); elu / selu alpha e^z (lambda alpha) as z -> 0-; softplus = sigmoid'' (1 / (6 sqrt 3));
# softsign 6 / (1 + |z|)^4 (6); lecun_tanh 2 A B^3; gelu and silu have no short closed form: their
# sups (0.78, 0.31, by a third difference on a 1e-4 grid) are rounded up to 1.
D3_SUP = {
    "identity": 0.0, "relu": 0.0, "leaky_relu": 0.0, "sigmoid": 0.125, "tanh": 2.0, "elu": 1.0,
    "selu": SELU_LAMBDA * SELU_ALPHA, "softplus": 1.0 / (6.0 * math.sqrt(3.0)), "gelu": 1.0,
    "silu": 1.0, "softsign": 6.0, "lecun_tanh": 2.0 * LECUN_A * LECUN_B**3,
}
# Error of one evaluation of any table entry, relative to the size of its intermediates (|z| + 1
# bounds them all): at most two libm calls (gelu: zc**3 and tanh) and ten rounded operations.
# The same for grad, whose intermediates are at most 3 (1 + |z|)^3 (gelu's 0.5 z dinner).
EVAL_REL = 2 * libm_rel() + gamma(10)


def fd_bound(act: Activation, z: np.ndarray, h: float, size=None) -> np.ndarray:
    """|grad - central difference| bound at z: the difference's truncation and rounding
    (tolerances.central_difference_atol), plus the analytic grad's own rounding."""
    if size is None:
        size = 1.0 + np.abs(z) + h
    fd = central_difference_atol(h, size, D3_SUP[act.name], f_rel=EVAL_REL)
    return fd + EVAL_REL * 3.0 * (1.0 + np.abs(z)) ** 3


@contextmanager
def strict_fp():
    """Every warning is an error; overflow / invalid / divide-by-zero raise.

    Underflow stays ignored (numpy's default): exp(-1e6) == 0 and subnormal results are the
    correctly rounded answers, and numpy never reports them unless asked to.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


def slope_of(act: Activation) -> float:
    return act.params.get("slope", 0.01)


# --- derivative --------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_grad_matches_central_difference(act):
    z = np.linspace(-6.0, 6.0, 1201)  # step 0.01, contains 0
    if act.name in KINKED | F2_JUMP:
        z = z[np.abs(z) > 1e-3]
    h = 1e-6
    numeric = (act.fn(z + h) - act.fn(z - h)) / (2 * h)
    analytic = act.grad(z, act.fn(z))
    # rounding 2 EVAL_REL (1 + |z|) / h <= 4e-8 at |z| = 6; truncation h^2/6 |f^(3)| <= 1e-12
    assert_within(analytic, numeric, fd_bound(act, z, h), act.name)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_grad_one_sided_limits_at_the_kink(act):
    """Just either side of 0 the derivative is the side's slope (relu: 0 | 1, selu: λα | λ)."""
    z = np.array([-1e-9, 1e-9])
    h = 1e-12
    numeric = (act.fn(z + h) - act.fn(z - h)) / (2 * h)
    # The stencil stays on one side of 0. Rounding / h is large at h = 1e-12: EVAL_REL times the
    # intermediates' size / h ~ 4e-3 for the smooth entries (sigmoid's 1 + e^-z = 2). The kinked
    # ones are ~1e-9 near 0 (relu, leaky's slope z, elu's expm1), so relative to |f(z +- h)| their
    # bound is ~1e-12: there the test tells the sides' slopes 0 | 1, 0.01 | 1, λα | λ.
    size = np.maximum(np.abs(act.fn(z + h)), np.abs(act.fn(z - h))) + np.abs(z) + h
    if act.name not in KINKED:
        size = np.maximum(size, 1.0)
    assert_within(act.grad(z, act.fn(z)), numeric, fd_bound(act, z, h, size), act.name)


# --- out= form, no mutation -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_out_form_writes_into_out_and_equals_allocating_form(act, dtype):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((5, 33)) * 4).astype(dtype)
    z[0, :3] = [0.0, -0.0, 1e-30]
    z_before = z.copy()

    a = act.fn(z)
    assert np.array_equal(z, z_before), "fn modified its input"
    assert a.shape == z.shape and a.dtype == dtype
    out = np.full_like(z, np.nan)
    res = act.fn(z, out=out)
    assert res is out
    assert np.array_equal(out, a)
    assert np.array_equal(z, z_before), "fn(out=) modified its input"

    a_before = a.copy()
    g = act.grad(z, a)
    assert np.array_equal(z, z_before) and np.array_equal(a, a_before), "grad modified an input"
    assert g.shape == z.shape and g.dtype == dtype
    gout = np.full_like(z, np.nan)
    res = act.grad(z, a, out=gout)
    assert res is gout
    assert np.array_equal(gout, g)
    assert np.array_equal(z, z_before) and np.array_equal(a, a_before)


# --- numerical range --------------------------------------------------------------------------


def extreme_inputs(dtype) -> np.ndarray:
    if dtype == np.float64:
        huge, tiny = 1e300, 5e-324
    else:
        # 1e300 is not a float32; 1e38 is the same order of magnitude as float32's max
        huge, tiny = 1e38, 1e-45
    mags = [huge, 1e6, 1e3, 1e-30, tiny]
    return np.array([*mags, *(-m for m in mags), 0.0, -0.0], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_no_warnings_and_finite_at_extreme_inputs(act, dtype):
    # Caught earlier: a float32 exp overflow below z = -89 (sigmoid, softplus, silu) and
    # softsign's grad squaring 1 + |z| before dividing (overflow above |z| ~ 1.3e154).
    z = extreme_inputs(dtype)
    with strict_fp():
        a = act.fn(z)
        g = act.grad(z, a)
        a_out = act.fn(z, out=np.empty_like(z))
        g_out = act.grad(z, a, out=np.empty_like(z))
    for arr in (a, g, a_out, g_out):
        assert arr.dtype == dtype
        assert np.isfinite(arr).all(), arr


# |z| >= 1e3: size of the terms whose difference is the asymptote (fn, grad), where it is not
# relative to the limit itself: tanh' = 1 - t^2, sigmoid's a (1 - a), lecun's AB - (B/A) a^2, and
# gelu's grad 0.5 (1 + t) + 0.5 zc (1 - t^2) c (1 + 0.134 zc^2) with |zc| = 50 (<= 6.8e3)
CANCEL = {
    "sigmoid": (1.0, 1.0), "tanh": (1.0, 1.0), "softplus": (1.0, 1.0),
    "lecun_tanh": (LECUN_A, 2.0 * LECUN_A * LECUN_B),
    "gelu": (0.0, 1.0 + 0.5 * 50.0 * math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * 2500.0)),
}


def limits(act: Activation, z: float) -> tuple[float, float]:
    """(fn(z), fn'(z)) for |z| >= 1e3, from each function's asymptotes (exact to ~1e-300)."""
    neg = z < 0
    lin = (z, 1.0)
    table = {
        "identity": lin,
        "sigmoid": (0.0, 0.0) if neg else (1.0, 0.0),
        "tanh": (-1.0, 0.0) if neg else (1.0, 0.0),
        "relu": (0.0, 0.0) if neg else lin,
        "leaky_relu": (slope_of(act) * z, slope_of(act)) if neg else lin,
        "elu": (-1.0, 0.0) if neg else lin,
        "selu": (-SELU_LAMBDA * SELU_ALPHA, 0.0) if neg else (SELU_LAMBDA * z, SELU_LAMBDA),
        "softplus": (0.0, 0.0) if neg else lin,  # log(1 + e^z) -> max(z, 0)
        "gelu": (0.0, 0.0) if neg else lin,  # z * Phi(z)
        "silu": (0.0, 0.0) if neg else lin,  # z * sigmoid(z), z e^z -> 0
        # z / (1 + |z|) and 1 / (1 + |z|)^2 approach their limits only like 1/|z|: exact forms
        "softsign": (z / (1 + abs(z)), 1 / (1 + abs(z)) / (1 + abs(z))),
        "lecun_tanh": (-LECUN_A, 0.0) if neg else (LECUN_A, 0.0),
    }
    if act.name not in table:
        pytest.fail(f"no asymptotes written for {act.name!r}: add them to limits()")
    return table[act.name]


@pytest.mark.parametrize("z", [-1e300, -1e6, -1e3, 1e3, 1e6, 1e300])
@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_values_at_extreme_inputs_are_the_asymptotes(act, z):
    # Caught earlier: a clamped sigmoid made silu(-1e306) = -98.6 instead of ~0.
    x = np.array([z])
    with np.errstate(over="ignore"):  # warnings are the business of the test above
        a = act.fn(x)
        g = act.grad(x, a)
    fa, fg = limits(act, z)
    ca, cg = CANCEL.get(act.name, (0.0, 0.0))
    if act.name == "gelu" and z < 0:
        ca = abs(z)  # z * 0.5 * (1 + tanh): the 1 + tanh(-huge) cancels, off by 4 ulp of 1 * |z|
    # the limits are exact to ~1e-300 (e^-1000), so the bound is the evaluation's rounding:
    # relative to the limit, plus EVAL_REL times the terms that cancel to it (CANCEL), plus an
    # exp(-|z|) that underflows (|z| >= 1e3 > 745) to within LIBM_ULPS subnormal ulps of 0,
    # multiplied by up to |z| (silu)
    sub = LIBM_ULPS * 2.0**-1074 * 2.0 * (1.0 + abs(z))
    assert_within(a, [fa], EVAL_REL * (abs(fa) + ca) + sub, f"{act.name}({z})")
    assert_within(g, [fg], EVAL_REL * (abs(fg) + cg) + sub, f"{act.name}'({z})")


# --- table flags --------------------------------------------------------------------------------


def numeric_derivative(act: Activation, z: np.ndarray) -> np.ndarray:
    h = 1e-6
    return (act.fn(z + h) - act.fn(z - h)) / (2 * h)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_max_grad_is_the_supremum_of_the_derivative(act):
    # a fine grid, plus points hugging both sides of 0 (selu's sup is approached at 0-)
    z = np.concatenate([np.linspace(-20.0, 20.0, 400_001), [-1e-5, -3e-6, 3e-6, 1e-5]])
    z = z[np.abs(z) > 2e-6]  # keep the finite-difference stencil off the kink
    sup = float(np.max(np.abs(numeric_derivative(act, z))))
    # off by: the difference's error (fd_bound at |z| = 20, ~1e-7); a smooth peak falls between
    # grid points (step 1e-4; f'' = 0 there: (5e-5)^2 / 2 sup|f^(3)|); a sup at a kink of f' at 0
    # (selu's lambda alpha e^z at 0-, softsign's cusp) is seen at |z| = 3e-6 at best: off by
    # |f''(0+-)| 3e-6, with |f''(0+-)| <= 2 (softsign 2, selu lambda alpha = 1.76)
    h = 1e-6
    atol = (fd_bound(act, np.array(20.0), h) + 2.0 * 3e-6
            + (5e-5) ** 2 / 2 * D3_SUP[act.name])
    assert act.max_grad == pytest.approx(sup, rel=0, abs=float(atol))


def test_max_grad_closed_forms():
    # sup of the derivative where one exists in closed form
    expected = {
        "identity": 1.0,
        "sigmoid": 0.25,  # s(1-s) at s = 1/2
        "tanh": 1.0,
        "relu": 1.0,
        "leaky_relu": 1.0,
        "elu": 1.0,
        "selu": SELU_LAMBDA * SELU_ALPHA,  # lambda * alpha * e^z as z -> 0-
        "softplus": 1.0,
        "softsign": 1.0,
        "lecun_tanh": LECUN_A * LECUN_B,
    }
    for name, value in expected.items():
        # exact: the table holds these very constants (the same literals, the same product)
        assert ACTIVATIONS[name].max_grad == value, name


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_saturating_flag(act):
    ratio = np.abs(numeric_derivative(act, np.array([-20.0, 20.0]))) / act.max_grad
    # round-off cannot decide this: the ratios are < 4e-8 (sigmoid, tanh, ...), 0.0023 (softsign)
    # or >= 0.6 on one side (the rest; leaky_relu's 0.01 side does not matter, its other is 1)
    assert act.saturating == bool(np.all(ratio < 0.01)), ratio


def test_saturating_entries_are_the_squashing_ones():
    flagged = {name for name, act in ACTIVATIONS.items() if act.saturating}
    assert flagged == {"sigmoid", "tanh", "softsign", "lecun_tanh"}


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_rectifier_flag_is_exactly_the_relu_family(act):
    assert act.rectifier == (act.name in {"relu", "leaky_relu"})


def test_leaky_slope_is_recorded_and_used():
    for s in (0.0, 0.2, 0.5):
        act = get_activation("leaky_relu", leaky_slope=s)
        assert act.name == "leaky_relu" and act.params["slope"] == s
        z = np.array([-3.0, -0.5, 0.5, 3.0])
        np.testing.assert_array_equal(act.fn(z), [-3.0 * s, -0.5 * s, 0.5, 3.0])
        np.testing.assert_array_equal(act.grad(z, act.fn(z)), [s, s, 1.0, 1.0])
    assert get_activation("leaky_relu").params["slope"] == 0.01


# --- the question's kernels, bit for bit ----------------------------------------------------


def question_inputs() -> np.ndarray:
    rng = np.random.default_rng(2024)
    return np.concatenate(
        [
            np.linspace(-700.0, 700.0, 140_001),
            rng.standard_normal(50_000),
            rng.standard_normal(20_000) * 30,
            [0.0, -0.0, 5e-324, -5e-324],
        ]
    )


# the user's program, verbatim
QUESTION = {
    "relu": (lambda x: np.maximum(0, x), lambda y: np.where(y > 0, 1, 0)),
    "tanh": (lambda x: np.tanh(x), lambda y: 1.0 - (np.tanh(y) ** 2)),
    "sigmoid": (
        lambda x: 1.0 / (1 + np.exp(-x)),
        lambda y: (1.0 / (1 + np.exp(-y))) * (1 - (1.0 / (1 + np.exp(-y)))),
    ),
}


@pytest.mark.parametrize("name", list(QUESTION))
def test_faithful_kernels_equal_the_question_bit_for_bit(name):
    z = question_inputs()
    q_fn, q_grad = QUESTION[name]
    with np.errstate(over="ignore"):
        want_a, want_g = q_fn(z), q_grad(z)
    act = ACTIVATIONS[name]
    a = act.fn(z)
    assert np.array_equal(a, want_a)
    assert np.array_equal(act.fn(z, out=np.empty_like(z)), want_a)
    assert np.array_equal(act.grad(z, a), want_g)
    assert np.array_equal(act.grad(z, a, out=np.empty_like(z)), want_g)


# --- literature constants -----------------------------------------------------------------------


def test_lecun_tanh_maps_plus_minus_one_to_plus_minus_one():
    # LeCun 1998 chose A = 1.7159, B = 2/3 so that f(±1) = ±1
    act = ACTIVATIONS["lecun_tanh"]
    # 0.01: the claim is about the 4-digit constant A (f(1) = 0.999997), not round-off
    np.testing.assert_allclose(act.fn(np.array([-1.0, 1.0])), [-1.0, 1.0], atol=0.01)
    # 1 * B is exact; np.tanh and math.tanh each within LIBM_ULPS, times A rounded once each
    want = LECUN_A * math.tanh(LECUN_B)
    assert act.fn(np.array([1.0]))[0] == pytest.approx(want, rel=two_sided(libm_rel() + gamma(1)))


def test_selu_keeps_a_standard_normal_at_mean_zero_variance_one():
    # Klambauer et al. 2017: (0, 1) is the fixed point of the mean / variance map
    z = np.random.default_rng(11).standard_normal(1_000_000)
    a = ACTIVATIONS["selu"].fn(z)
    # sampling, not round-off: the standard errors of mean and variance at n = 1e6 are ~1e-3 and
    # ~1.5e-3, so 0.01 is 7 sigma (and the seed is fixed); round-off of the sums is ~1e-10
    assert abs(a.mean()) < 0.01
    assert abs(a.var() - 1.0) < 0.01


# --- lookup ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, target", [("swish", "silu"), ("linear", "identity"), ("scaled_tanh", "lecun_tanh")]
)
def test_aliases(alias, target):
    assert get_activation(alias) is ACTIVATIONS[target]


def test_names_resolve_to_their_entries():
    for name, act in ACTIVATIONS.items():
        assert get_activation(name) is act
        assert act.name == name


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="relux") as info:
        get_activation("relux")
    message = str(info.value)
    for name in [*ACTIVATIONS, "swish", "linear", "scaled_tanh"]:
        assert name in message


@pytest.mark.parametrize("slope", [-0.1, 1.0, 1.5, float("nan")])
def test_invalid_leaky_slope_raises(slope):
    with pytest.raises(ValueError, match="slope"):
        get_activation("leaky_relu", leaky_slope=slope)
