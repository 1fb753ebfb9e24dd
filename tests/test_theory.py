"""Closed forms in diagnostics.theory against hand values and independent Monte Carlo."""

import math

import numpy as np
import pytest

from diagnostics import theory

QUESTION_X = np.array([[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]])


def mc_dead(X: np.ndarray, n_draws: int, seed: int) -> tuple[float, float]:
    """Fraction of (w, b) ~ N(0, I) with w·x + b ≤ 0 on every row of X, and its standard error."""
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(seed)
    dead = 0
    chunk = 100_000
    for start in range(0, n_draws, chunk):
        m = min(chunk, n_draws - start)
        w = rng.normal(size=(m, X.shape[1]))
        b = rng.normal(size=(m, 1))
        dead += int(np.sum(np.max(w @ X.T + b, axis=1) <= 0))
    p = dead / n_draws
    return p, math.sqrt(p * (1 - p) / n_draws)


# --- dead_probability, d = 1 -------------------------------------------------------------------


def test_one_d_data_over_minus_one_to_one_is_a_quarter():
    X = np.linspace(-1.0, 1.0, 9)[:, None]
    assert abs(theory.dead_probability(X) - 0.25) < 1e-12


def test_one_d_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(123)
    X = rng.uniform(-0.3, 2.0, size=(12, 1))
    p_mc, se = mc_dead(X, 400_000, seed=1)
    assert abs(theory.dead_probability(X) - p_mc) < 4 * se


def test_one_d_single_point_is_a_half():
    assert theory.dead_probability(np.array([[3.7]])) == pytest.approx(0.5, abs=1e-15)


# --- dead_probability, d = 2 -------------------------------------------------------------------


def _clouds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = rng.uniform(-1.0, 2.0, size=15)
    return {
        "question_six_points": QUESTION_X,
        "gaussian_cloud": rng.normal(size=(25, 2)),
        "offset_uniform_cloud": rng.uniform([1.0, -3.0], [2.5, -0.5], size=(40, 2)),
        "collinear": np.column_stack([t, 2.0 * t - 0.5]),
        "single_point": np.array([[0.4, -1.2]] * 3),
        "two_points": np.array([[0.0, 0.0], [1.0, 1.0]]),
    }


@pytest.mark.parametrize("name", list(_clouds()))
def test_two_d_closed_form_matches_monte_carlo(name):
    X = _clouds()[name]
    p_mc, se = mc_dead(X, 400_000, seed=2)
    assert abs(theory.dead_probability(X) - p_mc) < 4 * se


def test_two_d_square_matches_girard_area():
    # Data covering [-1, 1]^2: the dead cone is {|w1| + |w2| <= -b}, the cone over the spherical
    # square with vertices (±1, 0, -1)/√2, (0, ±1, -1)/√2. At (1, 0, -1)/√2 the tangents towards
    # its two neighbours are (-1/2, ±1, -1/2)/√2, whose cosine is (1/4 - 1 + 1/4)/(3/2) = -1/3, so
    # each angle is acos(-1/3). Girard: area = 4·acos(-1/3) - 2π; p = area / 4π.
    X = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [0.2, -0.3]])
    expected = (4 * math.acos(-1.0 / 3.0) - 2 * math.pi) / (4 * math.pi)
    assert abs(theory.dead_probability(X) - expected) < 1e-12


def test_two_d_segment_on_an_axis_equals_the_one_d_value():
    # Points (x, 0), x in [-1, 1]: w2 never matters, so p is the 1-D value 1/4.
    X = np.column_stack([np.linspace(-1.0, 1.0, 6), np.zeros(6)])
    assert abs(theory.dead_probability(X) - 0.25) < 1e-12


def test_two_d_single_point_is_a_half():
    assert abs(theory.dead_probability(np.array([[5.0, -2.0]])) - 0.5) < 1e-12


@pytest.mark.parametrize("name", ["question_six_points", "gaussian_cloud", "collinear"])
def test_interior_points_and_row_order_do_not_change_p(name):
    X = _clouds()[name]
    rng = np.random.default_rng(11)
    # Convex combinations of the rows lie inside the hull.
    weights = rng.dirichlet(np.ones(len(X)), size=30)
    bigger = rng.permutation(np.vstack([X, weights @ X]))
    assert abs(theory.dead_probability(bigger) - theory.dead_probability(X)) < 1e-12


def test_one_d_interior_points_do_not_change_p():
    X = np.array([[-0.5], [1.5]])
    bigger = np.vstack([X, np.array([[0.0], [0.3], [1.2]])])
    assert abs(theory.dead_probability(bigger) - theory.dead_probability(X)) < 1e-12


# --- dead_probability, d >= 3 (Monte Carlo) ----------------------------------------------------


def test_three_d_monte_carlo_matches_embedded_two_d_closed_form():
    # A zero third feature makes w3 irrelevant, so p equals the 2-D closed form.
    X3 = np.column_stack([QUESTION_X, np.zeros(len(QUESTION_X))])
    n = 400_000
    p_exact = theory.dead_probability(QUESTION_X)
    p_mc = theory.dead_probability(X3, n_samples=n, seed=5)
    assert abs(p_mc - p_exact) < 4 * math.sqrt(p_exact * (1 - p_exact) / n)


def test_three_d_monte_carlo_is_reproducible_and_seeded():
    X = np.random.default_rng(0).normal(size=(10, 3))
    a = theory.dead_probability(X, n_samples=20_000, seed=3)
    b = theory.dead_probability(X, n_samples=20_000, seed=3)
    c = theory.dead_probability(X, n_samples=20_000, seed=4)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    "bad",
    [np.array([0.1, 0.2]), np.zeros((0, 2)), np.array([[0.1, np.nan]]), np.array([[np.inf]])],
    ids=["1-D", "no rows", "nan", "inf"],
)
def test_dead_probability_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="X must"):
        theory.dead_probability(bad)


# --- layers ------------------------------------------------------------------------------------


def test_all_dead_probability_hand_cases():
    assert theory.all_dead_probability(0.25, 3) == pytest.approx(1 / 64, rel=1e-15)
    assert theory.all_dead_probability(0.5, 0) == 1.0
    assert theory.all_dead_probability(0.0, 4) == 0.0
    with pytest.raises(ValueError, match="p must"):
        theory.all_dead_probability(1.5, 2)
    with pytest.raises(ValueError, match="width"):
        theory.all_dead_probability(0.5, -1)


@pytest.mark.parametrize(
    ("n0", "n1", "expected"),
    [(1, 1, 1 / 4), (3, 1, 1 / 4), (2, 2, 1 / 8), (4, 3, 1 / 16), (1, 2, 3 / 16), (2, 3, 5 / 64)],
)
def test_second_layer_dead_probability_hand_cases(n0, n1, expected):
    assert theory.second_layer_dead_probability(n0, n1) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("n0", "n1"), [(1, 3), (2, 5), (0, 1)])
def test_second_layer_dead_probability_rejects_uncovered_cases(n0, n1):
    with pytest.raises(ValueError, match="n1"):
        theory.second_layer_dead_probability(n0, n1)


@pytest.mark.parametrize("n1", [1, 2])
def test_second_layer_formula_matches_monte_carlo_for_scalar_input(n1):
    # n0 = 1: y(x) = c + sum_i v_i relu(w_i x + b_i) is piecewise linear with kinks at -b_i/w_i,
    # so y <= 0 on all of R exactly when y <= 0 at every kink, y does not rise as x -> +inf
    # (sum of v_i w_i over w_i > 0 is <= 0) and does not rise as x -> -inf (sum over w_i < 0 >= 0).
    n = 1_000_000
    rng = np.random.default_rng(21)
    w, b, v = (rng.normal(size=(n, n1)) for _ in range(3))
    c = rng.normal(size=(n, 1))
    kinks = -b / w  # (n, n1)
    y_at_kinks = c + np.einsum(
        "si,sik->sk", v, np.maximum(w[:, :, None] * kinks[:, None, :] + b[:, :, None], 0.0)
    )  # (n, n1)
    right_slope = np.sum(v * w * (w > 0), axis=1)
    left_slope = np.sum(v * w * (w < 0), axis=1)
    dead = np.all(y_at_kinks <= 0, axis=1) & (right_slope <= 0) & (left_slope >= 0)
    p_mc = dead.mean()
    se = math.sqrt(p_mc * (1 - p_mc) / n)
    assert abs(theory.second_layer_dead_probability(1, n1) - p_mc) < 4 * se


# --- vanishing gradients -----------------------------------------------------------------------


def test_sigmoid_chain_bound_values_and_vectorization():
    assert theory.sigmoid_chain_bound(0) == 1.0
    assert theory.sigmoid_chain_bound(3) == pytest.approx(1 / 64, rel=1e-15)
    np.testing.assert_allclose(theory.sigmoid_chain_bound(np.arange(4)), [1, 1 / 4, 1 / 16, 1 / 64])
    with pytest.raises(ValueError, match="depth"):
        theory.sigmoid_chain_bound(-1)


def test_sigmoid_chain_derivative_never_exceeds_bound():
    # d/dx of sigmoid applied `depth` times (unit weights), by the chain rule.
    x = np.linspace(-6.0, 6.0, 241)
    a, derivative = x.copy(), np.ones_like(x)
    for depth in range(1, 8):
        s = 1.0 / (1.0 + np.exp(-a))
        derivative *= s * (1.0 - s)
        a = s
        assert np.all(derivative <= theory.sigmoid_chain_bound(depth) * (1 + 1e-12))


def _weights(init: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if init == "uniform_1_over_sqrt_n":
        return rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), size=(n, n))
    if init == "xavier":
        return rng.normal(0.0, math.sqrt(1 / n), size=(n, n))
    return rng.normal(0.0, math.sqrt(2 / n), size=(n, n))  # he


_DERIVATIVES = {"tanh": lambda z: 1 - np.tanh(z) ** 2, "relu": lambda z: (z > 0).astype(float)}


@pytest.mark.parametrize(("activation", "init"), list(theory.BACKPROP_VARIANCE_FACTORS))
def test_backprop_variance_factor_matches_one_simulated_layer(activation, init):
    # delta_in = W^T (act'(z) * delta_out) through a wide layer; z small for tanh (near-linear
    # regime at initialisation), standard normal for ReLU (only its sign matters).
    n, batch = 400, 400
    rng = np.random.default_rng(0)
    W = _weights(init, n, rng)
    z = rng.normal(scale=1e-3 if activation == "tanh" else 1.0, size=(n, batch))
    delta_out = rng.normal(size=(n, batch))
    delta_in = W.T @ (_DERIVATIVES[activation](z) * delta_out)
    ratio = delta_in.var() / delta_out.var()
    assert ratio == pytest.approx(theory.backprop_variance_factor(activation, init), rel=0.05)


def test_backprop_variance_factor_hand_values_and_error():
    assert theory.backprop_variance_factor("tanh", "uniform_1_over_sqrt_n") == pytest.approx(1 / 3)
    assert theory.backprop_variance_factor("relu", "xavier") == 0.5
    assert theory.backprop_variance_factor("relu", "he") == 1.0
    with pytest.raises(ValueError, match="supported.*'relu', 'he'"):
        theory.backprop_variance_factor("sigmoid", "he")
