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

# every table entry (ids = names), plus leaky_relu at the slopes a study may ask for
CASES: list[tuple[str, Activation]] = [(name, act) for name, act in ACTIVATIONS.items()]
CASES += [
    (f"leaky_relu[{s}]", get_activation("leaky_relu", leaky_slope=s)) for s in (0.0, 0.2, 0.5)
]
IDS = [c[0] for c in CASES]
ACTS = [c[1] for c in CASES]

# entries whose derivative (or its derivative) jumps at z = 0
KINKED = {"relu", "leaky_relu", "elu", "selu"}

SELU_LAMBDA = 1.0507009873554805  # Klambauer et al. 2017, eq. (14)
SELU_ALPHA = 1.6732632423543772
LECUN_A, LECUN_B = 1.7159, 2.0 / 3.0  # LeCun et al. 1998, "Efficient BackProp", sec. 4.4


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
    if act.name in KINKED:
        z = z[np.abs(z) > 1e-3]
    h = 1e-6
    numeric = (act.fn(z + h) - act.fn(z - h)) / (2 * h)
    analytic = act.grad(z, act.fn(z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_grad_one_sided_limits_at_the_kink(act):
    """Just either side of 0 the derivative is the side's slope (relu: 0 | 1, selu: λα | λ)."""
    z = np.array([-1e-9, 1e-9])
    h = 1e-12
    numeric = (act.fn(z + h) - act.fn(z - h)) / (2 * h)
    np.testing.assert_allclose(act.grad(z, act.fn(z)), numeric, rtol=1e-3, atol=1e-3)


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
    np.testing.assert_allclose(a, [fa], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(g, [fg], rtol=1e-9, atol=1e-9)


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
    assert act.max_grad == pytest.approx(sup, rel=1e-3)


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
        assert ACTIVATIONS[name].max_grad == pytest.approx(value, rel=1e-9), name


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_saturating_flag(act):
    ratio = np.abs(numeric_derivative(act, np.array([-20.0, 20.0]))) / act.max_grad
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
    np.testing.assert_allclose(act.fn(np.array([-1.0, 1.0])), [-1.0, 1.0], atol=0.01)
    assert act.fn(np.array([1.0]))[0] == pytest.approx(LECUN_A * math.tanh(LECUN_B), rel=1e-12)


def test_selu_keeps_a_standard_normal_at_mean_zero_variance_one():
    # Klambauer et al. 2017: (0, 1) is the fixed point of the mean / variance map
    z = np.random.default_rng(11).standard_normal(1_000_000)
    a = ACTIVATIONS["selu"].fn(z)
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
