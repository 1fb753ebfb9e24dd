"""Closed forms in diagnostics.theory against hand values and independent Monte Carlo."""

import math

import numpy as np
import pytest

from diagnostics import theory

from .tolerances import dot_bound, gamma, libm_rel, norm_rtol, sum_bound, two_sided

# d = 1: p = 0.5 - (atan(max) - atan(min)) / 2 pi. Each atan (<= pi/2) within LIBM_ULPS, the
# difference, 2 pi and the division one rounding each, the final subtraction one more:
# |error| <= (pi libm_rel + 3 u pi) / 2 pi + u <= libm_rel + gamma(4).
P1_ERR = libm_rel() + gamma(4)


def p2_err(n_vertices: int) -> float:
    """|error| of the d = 2 closed form with at most n_vertices hull vertices.

    The lifted vertices (x, y, 1) are normalised (norm_rtol(3) each), each edge's angle is
    arctan2(|a x b|, a . b) of unit vectors: the cross and dot products carry dot_bound(3, 1) and
    the normalisations 2 norm_rtol(3); arctan2 of (sin, cos) with sin^2 + cos^2 = 1 passes those
    absolute errors through unamplified and adds LIBM_ULPS of the angle (<= pi). The perimeter
    sums n of them (sum_bound, total <= 2 pi); / 4 pi and 0.5 - add three roundings.
    """
    angle = 2 * (dot_bound(3, 1.0) + 2 * norm_rtol(3)) + libm_rel() * math.pi
    perimeter = n_vertices * angle + sum_bound(n_vertices, 2 * math.pi)
    return perimeter / (4 * math.pi) + gamma(3)


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
    assert abs(theory.dead_probability(X) - 0.25) <= P1_ERR


def test_one_d_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(123)
    X = rng.uniform(-0.3, 2.0, size=(12, 1))
    p_mc, se = mc_dead(X, 400_000, seed=1)
    assert abs(theory.dead_probability(X) - p_mc) < 4 * se


def test_one_d_single_point_is_a_half():
    # exact: atan(3.7) - atan(3.7) = 0, and 0.5 - 0 / (2 pi) = 0.5
    assert theory.dead_probability(np.array([[3.7]])) == 0.5


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
    # expected itself: acos (1.91) within LIBM_ULPS, 4 acos - 2 pi cancels terms of size 7.7 and
    # 6.3 (a few roundings of 14), / 4 pi: (8 libm_rel + gamma(4) 14) / 4 pi
    exp_err = (8 * libm_rel() + gamma(4) * 14.0) / (4 * math.pi)
    assert abs(theory.dead_probability(X) - expected) <= p2_err(4) + exp_err


def test_two_d_segment_on_an_axis_equals_the_one_d_value():
    # Points (x, 0), x in [-1, 1]: w2 never matters, so p is the 1-D value 1/4.
    X = np.column_stack([np.linspace(-1.0, 1.0, 6), np.zeros(6)])
    assert abs(theory.dead_probability(X) - 0.25) <= p2_err(len(X))


def test_two_d_single_point_is_a_half():
    # exact: one vertex, a x a = 0 exactly, arctan2(0, a . a > 0) = 0, so p = 0.5 - 0
    assert theory.dead_probability(np.array([[5.0, -2.0]])) == 0.5


@pytest.mark.parametrize("name", ["question_six_points", "gaussian_cloud", "collinear"])
def test_interior_points_and_row_order_do_not_change_p(name):
    X = _clouds()[name]
    rng = np.random.default_rng(11)
    # Convex combinations of the rows lie inside the hull.
    weights = rng.dirichlet(np.ones(len(X)), size=30)
    bigger = rng.permutation(np.vstack([X, weights @ X]))
    # each side within p2_err of its exact value; a rounded combination (dot_bound(len(X)) of the
    # data's size) may sit just outside the hull and add a vertex: the perimeter grows by at most
    # twice that distance on the sphere (lifting by (x, y, 1) / |.| does not enlarge it), / 4 pi
    outside = 30 * 2 * dot_bound(len(X), float(np.abs(X).max())) / (4 * math.pi)
    tol = two_sided(p2_err(len(bigger))) + outside
    assert abs(theory.dead_probability(bigger) - theory.dead_probability(X)) <= tol


def test_one_d_interior_points_do_not_change_p():
    X = np.array([[-0.5], [1.5]])
    bigger = np.vstack([X, np.array([[0.0], [0.3], [1.2]])])
    # exact: the same max and min, so the same two atan calls and operations
    assert theory.dead_probability(bigger) == theory.dead_probability(X)


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
    assert theory.all_dead_probability(0.25, 3) == pytest.approx(1 / 64, rel=libm_rel())  # pow
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
    # exact: powers of 2 and 2^n0 + 1 are exact, and the one division is correctly rounded, as is
    # the literal's
    assert theory.second_layer_dead_probability(n0, n1) == expected


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
    # np.power (SIMD on some targets) within LIBM_ULPS
    assert theory.sigmoid_chain_bound(3) == pytest.approx(1 / 64, rel=libm_rel())
    np.testing.assert_allclose(theory.sigmoid_chain_bound(np.arange(4)), [1, 1 / 4, 1 / 16, 1 / 64],
                               rtol=libm_rel())
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
        # s (1 - s) <= 1/4 for any s; each computed factor is 2 roundings above at most, the
        # product 1 more per layer: gamma(3 depth); the bound's np.power within LIBM_ULPS
        slack = (1 + gamma(3 * depth)) * (1 + libm_rel())
        assert np.all(derivative <= theory.sigmoid_chain_bound(depth) * slack)


def _weights(init: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """An n x n layer drawn by hand from each initializer's published distribution."""
    if init == "lecun_uniform":
        return rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), size=(n, n))
    if init == "xavier_normal":  # 2 / (fan_in + fan_out) = 1/n for a square layer
        return rng.normal(0.0, math.sqrt(1 / n), size=(n, n))
    if init == "standard_normal":
        return rng.normal(0.0, 1.0, size=(n, n))
    return rng.normal(0.0, math.sqrt(2 / n), size=(n, n))  # he_normal


_DERIVATIVES = {"tanh": lambda z: 1 - np.tanh(z) ** 2, "relu": lambda z: (z > 0).astype(float)}
PUBLISHED = [("tanh", "lecun_uniform"), ("relu", "xavier_normal"), ("relu", "he_normal"),
             ("relu", "standard_normal")]


@pytest.mark.parametrize(("activation", "init"), PUBLISHED)
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
    # sampling error of one 400 x 400 draw (a few %), not round-off (~1e-13 of the sums)
    expected = theory.backprop_variance_factor(activation, init, width=n)
    assert ratio == pytest.approx(expected, rel=0.05)


def test_backprop_variance_factor_hand_values_and_error():
    # the published factors (Glorot & Bengio 2010; He et al. 2015), from the initializer table's
    # variance: n * Var * E[act'^2] is three roundings, so within gamma(3)
    rel = gamma(3)
    assert theory.backprop_variance_factor("tanh", "lecun_uniform") == pytest.approx(1 / 3, rel=rel)
    assert theory.backprop_variance_factor("relu", "xavier_normal") == pytest.approx(0.5, rel=rel)
    assert theory.backprop_variance_factor("relu", "he_normal") == pytest.approx(1.0, rel=rel)
    assert theory.backprop_variance_factor("relu", "standard_normal", width=16) == 8.0
    for activation, init in (("sigmoid", "he_normal"), ("tanh", "standard_normal"),
                             ("relu", "orthogonal")):
        with pytest.raises(ValueError, match="no variance factor"):
            theory.backprop_variance_factor(activation, init)
