"""The compiled engine's own exp, expm1 and tanh (diagnostics/kernel.py) against long double.

The references are the C library's long-double functions (64-bit significand, each within about
an ulp of *its* precision, 2^-11 of a float64 ulp), so a float64 result's error in ulps is measured
to about 1e-3 ulp. The arguments: uniform over the whole range, log-uniform over every binade
(both signs), and the edges — +-0, subnormals, the overflow and underflow thresholds and their
neighbours, +-inf and nan. The kernel's comments state the maxima measured on 6e6 arguments per
function (0.97, 1.14 and 2.36 ulp); the bounds asserted here round them up (1.0, 1.2, 2.4), so that
another sample of arguments cannot fail on the third digit. ``ulp_errors`` measures them.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from diagnostics.kernel import _exp, _expm1_neg, _tanh

LD = np.longdouble
F64_MAX = np.finfo(np.float64).max
TINY = np.finfo(np.float64).smallest_subnormal


@njit(cache=True, error_model="numpy")
def _apply_exp(x, out):
    for s in range(x.size):
        out[s] = _exp(x[s])


@njit(cache=True, error_model="numpy")
def _apply_expm1_neg(x, out):
    for s in range(x.size):
        out[s] = _expm1_neg(x[s])


@njit(cache=True, error_model="numpy")
def _apply_tanh(x, out):
    for s in range(x.size):
        out[s] = _tanh(x[s])


def arguments(n: int, lo: float, hi: float, seed: int = 0) -> np.ndarray:
    """n arguments in [lo, hi]: half uniform, half log-uniform in magnitude over every binade
    from the smallest subnormal up (with the signs the interval allows), plus the edges."""
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(lo, hi, n // 2)
    top = max(abs(lo), abs(hi))
    mag = np.exp2(rng.uniform(-1074.0, np.log2(top), n - n // 2))
    if lo < 0 < hi:
        sign = rng.choice([-1.0, 1.0], mag.size)
    else:
        sign = np.full(mag.size, np.sign(hi or lo))
    logu = np.clip(sign * mag, lo, hi)
    edges = [0.0, -0.0, TINY, -TINY, 1e-300, -1e-300, 2.0**-1022, -(2.0**-1022), 1e-8, -1e-8,
             lo, hi, np.nextafter(lo, hi), np.nextafter(hi, lo)]
    edges = [e for e in edges if lo <= e <= hi]
    return np.concatenate([uniform, logu, edges])


def ulp_errors(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in ulps of the float64 nearest to ref (ref in long double); for subnormal
    results that is the subnormal spacing, an absolute ulp."""
    near = ref.astype(np.float64)
    ulp = np.spacing(np.abs(near)).astype(LD)
    return np.abs(got.astype(LD) - ref) / ulp


def _check(apply, ref_fn, x, bound):
    got = np.empty_like(x)
    apply(x, got)
    ref = ref_fn(x.astype(LD))
    finite = np.isfinite(ref) & (np.abs(ref) <= F64_MAX)
    err = ulp_errors(got[finite], ref[finite])
    assert err.max() <= bound, f"max {float(err.max()):.3f} ulp at x = {x[finite][err.argmax()]!r}"
    return got


N = 1_000_000


def test_exp_within_its_stated_ulps_everywhere():
    # every argument: overflow above log(max) = 709.78, subnormal results below -708.40,
    # zero below log(smallest subnormal / 2) = -745.13
    x = arguments(N, -760.0, 720.0)
    got = _check(_apply_exp, np.exp, x, 1.0)  # stated: 0.97
    ref = np.exp(x.astype(LD))
    assert (got[ref > F64_MAX] == np.inf).all()
    assert (got[x < -745.2] == 0.0).all()
    special = np.array([np.inf, -np.inf, np.nan, 709.782712893384, 709.7827128933841,
                        -745.1332191019411, -745.1332191019412, 0.0, -0.0])
    out = np.empty_like(special)
    _apply_exp(special, out)
    assert out[0] == np.inf and out[1] == 0.0 and np.isnan(out[2])
    assert out[3] == np.exp(709.782712893384) and out[4] == np.inf  # the last finite one, then inf
    assert out[5] == TINY and out[6] == 0.0  # the smallest subnormal, then 0 (round to even)
    assert out[7] == 1.0 and out[8] == 1.0


def test_expm1_of_nonpositive_arguments_within_its_stated_ulps():
    x = arguments(N, -800.0, 0.0)
    got = _check(_apply_expm1_neg, np.expm1, x, 1.2)  # stated: 1.14
    assert (got[x < -40.0] == -1.0).all()
    special = np.array([-np.inf, np.nan, 0.0, -TINY])
    out = np.empty_like(special)
    _apply_expm1_neg(special, out)
    assert out[0] == -1.0 and np.isnan(out[1]) and out[2] == 0.0 and out[3] == -TINY


def test_tanh_within_its_stated_ulps_and_odd_with_signed_zeros():
    x = arguments(N, -30.0, 30.0)
    got = _check(_apply_tanh, np.tanh, x, 2.4)  # stated: 2.36
    np.testing.assert_array_equal(np.abs(got[np.abs(x) >= 20]), 1.0)
    neg = np.empty_like(x)
    _apply_tanh(-x, neg)
    np.testing.assert_array_equal(neg, -got)  # odd, to the bit
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300])
    out = np.empty_like(special)
    _apply_tanh(special, out)
    assert np.signbit(out[1]) and not np.signbit(out[0]) and out[0] == 0.0
    assert out[2] == 1.0 and out[3] == -1.0 and np.isnan(out[4]) and out[5] == 1e-300


@pytest.mark.parametrize("name", ["exp", "expm1_neg", "tanh"])
def test_error_measure_sees_a_one_ulp_error(name):
    """ulp_errors reports 1 for a result one float64 step away from a float64-exact reference."""
    ref = np.array([1.5, 0.75, 3.0e-310], dtype=LD)
    got = np.nextafter(ref.astype(np.float64), np.inf)
    np.testing.assert_array_equal(ulp_errors(got, ref), [1.0, 1.0, 1.0])
