"""Tolerances of the numerical tests, each derived from an error bound instead of chosen by hand.

Why: numpy's SIMD kernels (exp, tanh, sums, matmul) differ between CPU generations (SSE4.2 /
AVX2 / AVX-512) in their last bits, and the engine sums in another order than the slow loops of
the tests. So a test may compare two float results only to within what rounding can explain:

- ``U64``: float64 unit roundoff u = 2^-53; every +, -, *, /, sqrt is correctly rounded, i.e.
  fl(x op y) = (x op y)(1 + d), |d| <= u (IEEE 754). ``U32`` the same for float32.
- ``LIBM_ULPS``: numpy's transcendental kernels (exp, tanh, log, expm1, ...) are not correctly
  rounded; the SIMD ones are documented to within 4 ulp (numpy's release notes for the AVX-512F
  exp/log and the SVML-based float64 kernels give max errors <= 4 ulp; glibc's libm <= 2 ulp).
  One ulp of x is at most 2u|x|, so such a result is within ``LIBM_ULPS * 2u`` relative.
- ``gamma(n)``: Higham's gamma_n = n u / (1 - n u) ("Accuracy and Stability of Numerical
  Algorithms", 2nd ed., lemma 3.1): the relative error of a product of n rounded operations.
- ``sum_bound(n, abs_sum)``: a sum of n terms in *any* order (pairwise, blocked SIMD lanes,
  sequential) is within gamma_{n-1} * sum|terms| of the exact sum (Higham eq. 4.4). So two
  summations of the same terms differ by at most twice that.
- ``dot_bound(n, abs_dot)``: sum_i x_i y_i in any order, with or without FMA: gamma_n * sum|x_i y_i|
  (Higham eq. 3.5).

A comparison of two computed values ``a`` and ``b`` that are both within ``e`` of the exact value
may differ by ``2 e``: ``two_sided`` says so where a test uses it.
"""

from __future__ import annotations

import numpy as np

U64 = 2.0**-53  # float64 unit roundoff
U32 = 2.0**-24  # float32 unit roundoff
ULP64 = 2.0**-52  # float64 machine epsilon = 1 ulp of 1.0
LIBM_ULPS = 4  # numpy's SIMD exp / tanh / log are accurate to <= 4 ulp


def gamma(n: float, u: float = U64) -> float:
    """gamma_n = n u / (1 - n u): relative error bound of n chained rounded operations."""
    nu = n * u
    if nu >= 1:
        raise ValueError(f"gamma_{n} undefined: n u = {nu} >= 1")
    return nu / (1.0 - nu)


def libm_rel(u: float = U64) -> float:
    """Relative error bound of one numpy transcendental (exp, tanh, ...): LIBM_ULPS ulp."""
    return LIBM_ULPS * 2.0 * u


def sum_bound(n: int, abs_sum, u: float = U64):
    """|computed - exact| of a sum of n terms in any order, given abs_sum = sum |terms|."""
    return gamma(max(n - 1, 1), u) * abs_sum


def dot_bound(n: int, abs_dot, u: float = U64):
    """|computed - exact| of a dot product of length n, given abs_dot = sum |x_i y_i|."""
    return gamma(n, u) * abs_dot


def two_sided(bound):
    """Two results, each within ``bound`` of the exact value, differ by at most 2 * bound."""
    return 2 * bound


def norm_rtol(n: int, u: float = U64) -> float:
    """Relative error of sqrt(sum of n squares) of *identical* inputs, any summation order.

    The squares carry u each, the sum gamma_{n-1} (all terms >= 0, so relative), the sqrt halves
    the relative error and adds u: gamma_{n + 1} / 2 + u <= gamma_{n + 2}.
    """
    return gamma(n + 2, u)


def central_difference_atol(h: float, f_abs: float, d3_abs: float, u: float = U64,
                            f_rel: float | None = None) -> float:
    """|(f(x+h) - f(x-h)) / 2h - f'(x)| bound: truncation h^2/6 |f'''| + rounding.

    ``f_abs`` bounds |f| near x, ``d3_abs`` bounds |f'''| there (Taylor remainder), ``f_rel`` is
    the relative error of one evaluation of f (default: one libm call plus a few operations).
    Each evaluation is off by f_rel |f|; the difference of two divided by 2h: f_rel |f| / h. The
    step x +- h itself is rounded: |x| u of argument error changes f by |f'| |x| u, which is below
    f_rel |f| for the functions tested (|f'| |x| <~ |f|) and is covered by the factor 2 below.
    """
    if f_rel is None:
        f_rel = libm_rel(u) + gamma(4, u)
    return h * h / 6.0 * d3_abs + 2.0 * f_rel * f_abs / h


def cond_rel(kappa: float, rel: float) -> float:
    """Relative output error of a computation with condition number kappa and input error rel."""
    return kappa * rel


def fraction_atol(ambiguous: int, n: int) -> float:
    """A share k/n where ``ambiguous`` of the n items are decided by round-off: +-ambiguous/n."""
    return ambiguous / n


def finite_or(bound, fallback=0.0):
    """A bound that overflowed (diverging seeds) is replaced by ``fallback``."""
    bound = np.asarray(bound, dtype=float)
    return np.where(np.isfinite(bound), bound, fallback)


def assert_within(actual, desired, bound, err_msg: str = "") -> None:
    """|actual - desired| <= bound elementwise (bound may be an array: one per entry)."""
    actual, desired = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
    diff = np.abs(actual - desired)
    bad = ~(diff <= bound)
    if bad.any():
        bound = np.broadcast_to(bound, diff.shape)
        raise AssertionError(
            f"{err_msg}: {int(bad.sum())} of {diff.size} entries outside the bound; worst "
            f"|diff| / bound = {float((diff / bound)[bad].max()):.3g}; "
            f"diff {diff[bad][:5]}, bound {bound[bad][:5]}"
        )


__all__ = [
    "assert_within",
    "LIBM_ULPS", "U32", "U64", "ULP64", "central_difference_atol", "cond_rel", "dot_bound",
    "finite_or", "fraction_atol", "gamma", "libm_rel", "norm_rtol", "sum_bound", "two_sided",
]
