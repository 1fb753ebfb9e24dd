"""The compiled engine: one numba kernel trains blocks of seeds through whole runs of epochs.

Layout (private to this module, chosen by measurement): the ensemble is cut into blocks of
``block`` seeds; a block's parameters are one contiguous ``(n_params, block)`` array with the seed
axis innermost, so every loop over seeds is a unit-stride loop that LLVM vectorizes, and a block's
parameters, optimizer state and per-layer records stay in cache for the whole run. The kernel
loops blocks (outer) × epochs × steps × layers, fusing forward, loss, backward and update: each
pass over a block's row of seeds does as much as its registers allow (up to four terms of a sum,
then the bias, the activation and its derivative; for plain SGD on one sample, an input unit's
weight updates together with the back-propagated error through them), because a pass costs a
fixed ~50 ns plus the traffic of the rows it touches.

Arithmetic is the numpy engine's (``diagnostics.network``, ``diagnostics.optimizers``,
``diagnostics.activations``), operation for operation and in the same order: contractions are
summed in index order starting from the first product, ``x += t`` is one rounding of ``x + t``,
nothing is fused or reassociated (no fastmath; LLVM does not contract a separate multiply and add
into an FMA without it). Every operation is element-wise along the seed axis, so a seed's numbers
are independent of the block size and of the other seeds. Elementary operations (+ - * / sqrt,
comparisons) are IEEE-exact, so the two engines agree bit for bit wherever no transcendental
function is involved; ``exp``, ``expm1`` and ``tanh`` come from the vectorizable routines below
(within 0.97, 1.14 and 2.36 ulp), ``log1p`` (softplus) and ``pow`` (gelu) from the C library,
numpy's from its own SIMD routines or the C library: they differ by an ulp or two on some
arguments.

Constants are passed in an array of the parameters' dtype (``consts``), so float32 runs compute
in float32 exactly as numpy does with Python scalars (NEP 50: the scalar is cast to float32).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

Array = np.ndarray

ACT_CODES = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "elu": 5,
    "selu": 6,
    "softplus": 7,
    "gelu": 8,
    "silu": 9,
    "softsign": 10,
    "lecun_tanh": 11,
}
OPT_CODES = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3, "rmsprop": 4}

# slots of the dtype constant vector
(
    K_ZERO, K_ONE, K_HALF, K_SLOPE, K_ELU_GRAD, K_SELU_ALPHA, K_SELU_SCALE, K_SELU_GRAD,
    K_GELU_C, K_GELU_K, K_GELU_3K, K_FIFTY, K_LECUN_A, K_LECUN_B, K_LECUN_NBA, K_LECUN_AB,
    K_LR, K_MU, K_B1, K_1MB1, K_B2, K_1MB2, K_RHO, K_1MRHO, K_EPS, K_N, K_TWO, K_THREE,
    K_NZERO,
) = range(29)
N_CONSTS = 29


def constants(config, n_samples: int, dtype) -> Array:
    """The kernel's constant vector for ``config``, each value cast to ``dtype`` as numpy does."""
    from .activations import _GELU_C, _LECUN_A, _LECUN_B, _SELU_ALPHA, _SELU_SCALE

    hp = config.hyper
    c = np.zeros(N_CONSTS, dtype=np.float64)
    c[K_ONE], c[K_HALF], c[K_TWO], c[K_THREE], c[K_NZERO] = 1.0, 0.5, 2.0, 3.0, -0.0
    c[K_SLOPE] = config.leaky_slope
    c[K_ELU_GRAD] = 1.0 * 1.0  # elu: alpha * scale
    c[K_SELU_ALPHA], c[K_SELU_SCALE] = _SELU_ALPHA, _SELU_SCALE
    c[K_SELU_GRAD] = _SELU_ALPHA * _SELU_SCALE
    c[K_GELU_C], c[K_GELU_K], c[K_GELU_3K], c[K_FIFTY] = _GELU_C, 0.044715, 3 * 0.044715, 50.0
    c[K_LECUN_A], c[K_LECUN_B] = _LECUN_A, _LECUN_B
    c[K_LECUN_NBA], c[K_LECUN_AB] = -_LECUN_B / _LECUN_A, _LECUN_A * _LECUN_B
    c[K_LR], c[K_MU] = hp.lr, hp.momentum
    c[K_B1], c[K_1MB1], c[K_B2], c[K_1MB2] = hp.beta1, 1.0 - hp.beta1, hp.beta2, 1.0 - hp.beta2
    c[K_RHO], c[K_1MRHO], c[K_EPS] = hp.rms_decay, 1.0 - hp.rms_decay, hp.eps
    c[K_N] = n_samples
    return c.astype(dtype)


# ---- exp, expm1 and tanh, vectorizable ---------------------------------------------------------
# The C library's exp, expm1 and tanh are calls LLVM cannot vectorize (~5-10 ns each, most of the
# kernel's time with such units). These are written in + - * / and selects, plus integer
# operations on the bits of a float (``_f64_bits``, ``_bits_f64``: reinterpretations, free), so
# LLVM vectorizes them. The scheme is Cody-Waite: x = k ln2 + r with k = round(x / ln2),
# |r| <= ln2/2 (+ 2e-16; k ln2_hi is exact for |k| < 2^21 and x - k ln2_hi is exact), then
# expm1(r) by its Taylor polynomial to degree 13,
#   expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!),
# whose truncation error is at most |r|^14/14! e^|r| = 5.7e-18 |r| (0.05 ulp relative) for
# |r| <= 0.3466, evaluated by Estrin's scheme (three independent groups of four terms) rather than
# Horner's: the same operation count with a third of the dependent chain, measured 1.4x faster in
# a vectorized loop; its rounding errors stay below a few u |r|^2 / 2, well under an ulp of |r|.
# 2^k is built in the exponent bits: y = x / ln2 + 1.5 * 2^52 holds k in its low mantissa bits,
# so 2^k = bits((bits(y) - bits(1.5 * 2^52) + 1023) << 52). Accuracy, measured against long-double
# exp/expm1/tanh over 6e6 arguments each (uniform, log-uniform over every binade in range, and the
# edges: +-0, subnormals, overflow and underflow thresholds, +-inf, nan; tests/test_kernel_math.py
# repeats it on 1e6): ``_exp`` at most 0.97 ulp (subnormal results: within their absolute ulp;
# numpy's exp 0.72), ``_expm1_neg`` 1.14 ulp (numpy's expm1 0.51), ``_tanh`` 2.36 ulp (numpy's
# tanh 1.17); the largest parts are the final rounding and, in tanh, the division. They
# compute in float64 for both dtypes; callers cast the result to the dtype (``_like``) before
# using it further, so float32 arithmetic around them stays float32 as in numpy.


@intrinsic
def _f64_bits(typingctx, x):
    """The bits of a float64 as an int64 (a reinterpretation, no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, i):
    """The float64 with the bits of an int64."""
    if i != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _like(typingctx, x, like):
    """x cast to the type of ``like`` (float64 -> float32 rounds once, as numpy's cast)."""

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[0], sig.args[0], sig.return_type)

    return like(x, like), codegen


_INVLN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01  # ln2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_RINT = 6755399441055744.0  # 1.5 * 2^52: (y + _RINT) - _RINT rounds y to an integer
_RINT_BITS = 0x4338000000000000  # its bits: bits(y + _RINT) - _RINT_BITS is that integer
_C3, _C4, _C5, _C6 = 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0
_C7, _C8, _C9, _C10 = 1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0, 1.0 / 3628800.0
_C11, _C12, _C13 = 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0


@njit(cache=True, error_model="numpy")
def _reduce(x):
    """(k, r, expm1(r)) with x = k ln2 + r, |r| <= ln2/2 (k as an int64; nan: r = nan)."""
    y = x * _INVLN2 + _RINT
    k = y - _RINT
    r = (x - k * _LN2_HI) - k * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    q0 = (0.5 + _C3 * r) + r2 * (_C4 + _C5 * r)
    q1 = (_C6 + _C7 * r) + r2 * (_C8 + _C9 * r)
    q2 = (_C10 + _C11 * r) + r2 * (_C12 + _C13 * r)
    em = r + r2 * (q0 + r4 * (q1 + r4 * q2))
    return _f64_bits(y) - _RINT_BITS, r, em


@njit(cache=True, error_model="numpy")
def _pow2(k):
    """2^k for integer -1022 <= k <= 1023, exactly."""
    return _bits_f64((k + 1023) << 52)


@njit(cache=True, error_model="numpy")
def _expm1_small(x):
    """expm1(x) for -40 <= x <= 40 (nan propagates): 2^k expm1(r) + (2^k - 1), where the product
    is exact and so is 2^k - 1 for -53 <= k <= 53; beyond, |expm1| rounds to 1 or is huge."""
    k, r, em = _reduce(x)
    s = _pow2(k)
    return s * em + (s - 1.0)


@njit(cache=True, error_model="numpy")
def _exp(x):
    """exp(x) in float64 for every x, within 0.97 ulp: (1 + expm1(r)) 2^k1 2^k2, k1 + k2 = k,
    so that results near overflow and subnormal results take one rounding; x > 710 gives inf,
    x < -746 gives 0 (nan stays nan)."""
    x = np.float64(x)
    x = 710.0 if x > 710.0 else x
    x = -746.0 if x < -746.0 else x
    k, r, em = _reduce(x)
    k1 = k >> 1
    return ((1.0 + em) * _pow2(k1)) * _pow2(k - k1)


@njit(cache=True, error_model="numpy")
def _expm1_neg(x):
    """expm1(x) for x <= 0 (nan stays nan), within 1.14 ulp; expm1(x < -40) rounds to -1."""
    x = np.float64(x)
    return _expm1_small(-40.0 if x < -40.0 else x)


@njit(cache=True, error_model="numpy")
def _tanh(z):
    """tanh(z) in float64, within 2.36 ulp: tanh|z| = e / (e + 2), e = expm1(2|z|) (no
    cancellation at small z); |z| >= 20 gives 1 (1 - tanh 20 < u/2); tanh(+-0) = +-0."""
    x = np.float64(z)
    a = abs(x)
    a = 20.0 if a > 20.0 else a
    e = _expm1_small(a + a)
    return math.copysign(e / (e + 2.0), x)


# ---- contractions, fused: up to four terms per pass over the seeds ------------------------------
# A pass over a block's row of seeds goes through L1/L2; doing several terms of a sum, the bias,
# the activation and its derivative in one pass saves passes without changing any rounding: the
# terms are still added one at a time, in index order, starting from the first product. The last
# pass of a sum takes m = 1..4 terms with loads from in-range rows only (indices clamped to the
# last term) and replaces terms j >= m by -0.0, which is an exact identity of + (x + -0.0 == x
# for every x, signed zeros and nan included); so one branch-free loop serves every m, and LLVM
# vectorizes it without the masked loads a per-term branch would cost.


@njit(cache=True, error_model="numpy")
def _dot4(out, r, X, p, sp, Y, q, sq, first, n):
    """out[r] = (first ? 0 : out[r]) + X[p] Y[q] + X[p+sp] Y[q+sq] + ... (four terms)."""
    p1, p2, p3 = p + sp, p + 2 * sp, p + 3 * sp
    q1, q2, q3 = q + sq, q + 2 * sq, q + 3 * sq
    if first:
        for s in range(n):
            z = X[p, s] * Y[q, s]
            z = z + X[p1, s] * Y[q1, s]
            z = z + X[p2, s] * Y[q2, s]
            z = z + X[p3, s] * Y[q3, s]
            out[r, s] = z
    else:
        for s in range(n):
            z = out[r, s] + X[p, s] * Y[q, s]
            z = z + X[p1, s] * Y[q1, s]
            z = z + X[p2, s] * Y[q2, s]
            z = z + X[p3, s] * Y[q3, s]
            out[r, s] = z


@njit(cache=True, error_model="numpy")
def _tail(first, m, z0, t0, t1, t2, t3, nz):
    """(first ? t0 : z0 + t0) + t1 + t2 + t3, the terms j >= m replaced by nz = -0.0."""
    z = z0 + t0
    z = t0 if first else z
    z = z + (t1 if m > 1 else nz)
    z = z + (t2 if m > 2 else nz)
    return z + (t3 if m > 3 else nz)


@njit(cache=True, error_model="numpy")
def _rows4(p, sp, m):
    """Rows p + j sp for j = 0..3, clamped to the last of m terms."""
    return p, p + min(1, m - 1) * sp, p + min(2, m - 1) * sp, p + min(3, m - 1) * sp


# ---- activations: fn and grad, as in diagnostics/activations.py ---------------------------------


@njit(cache=True, error_model="numpy")
def _logistic(z, one):
    """sigma(z) = 1 / (1 + e) or e / (1 + e), e = exp(-|z|), as diagnostics.activations."""
    e = _like(_exp(-abs(z)), one)
    d = one + e
    return one / d if z >= 0 else e / d


@njit(cache=True, error_model="numpy")
def _clip50(x, fifty):
    if x < -fifty:
        return -fifty
    if x > fifty:
        return fifty
    return x


@njit(cache=True, error_model="numpy")
def _forward_last(code, A, GZ, r, W, p, X, q, sq, m, first, bo, n, c):
    """The last m <= 4 terms of unit row r's sum (W rows p.., X rows q, q+sq, ...; A[r] holds
    the earlier terms unless ``first``), + bias W[bo]: z; then A[r] = fn(z), GZ[r] = fn'(z)."""
    zero, one, nz = c[K_ZERO], c[K_ONE], c[K_NZERO]
    p0, p1, p2, p3 = _rows4(p, 1, m)
    q0, q1, q2, q3 = _rows4(q, sq, m)
    if code == 0:
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            A[r, s] = z + W[bo, s]
            GZ[r, s] = one
    elif code == 1:  # 1.0 / (1 + exp(-z)); a * (1 - a)
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            e = _like(_exp(-z), one)
            e = e + one
            A[r, s] = one / e
            a = A[r, s]
            GZ[r, s] = a * (one - a)
    elif code == 2:  # tanh; 1 - a*a
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            A[r, s] = _tanh(z)
            a = A[r, s]
            GZ[r, s] = one - a * a
    elif code == 3:  # np.maximum(0, z): nan propagates; z > 0
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            A[r, s] = zero if z <= zero else z
            GZ[r, s] = one if z > zero else zero
    elif code == 4:  # np.maximum(z, z * slope)
        slope = c[K_SLOPE]
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            y = z * slope
            A[r, s] = z if (z >= y or z != z) else y
            GZ[r, s] = one if z > zero else slope
    elif code == 5 or code == 6:
        # where(z > 0, z, alpha * expm1(min(z, 0))) [* scale];
        # where(z > 0, scale, alpha * scale * exp(min(z, 0)))
        alpha = one if code == 5 else c[K_SELU_ALPHA]
        k = c[K_ELU_GRAD] if code == 5 else c[K_SELU_GRAD]
        pos = one if code == 5 else c[K_SELU_SCALE]
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            mz = zero if z >= zero else z
            neg = _like(_expm1_neg(mz), one)
            neg = neg * alpha
            v = z if z > zero else neg
            if code == 6:
                v = v * c[K_SELU_SCALE]
            A[r, s] = v
            neg = _like(_exp(mz), one)
            neg = neg * k
            GZ[r, s] = pos if z > zero else neg
    elif code == 7:  # log1p(exp(-|z|)) + max(z, 0); logistic(z)
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            v = math.log1p(_like(_exp(-abs(z)), one))
            A[r, s] = v + (zero if z <= zero else z)
            GZ[r, s] = _logistic(z, one)
    elif code == 8:
        # z * (0.5 * (1 + t)), t = tanh(C (zc + k zc^3));
        # 0.5 (1 + t) + 0.5 zc (1 - t^2) C (1 + 3k zc^2)
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            zc = _clip50(z, c[K_FIFTY])
            A[r, s] = _tanh(c[K_GELU_C] * (zc + c[K_GELU_K] * math.pow(zc, c[K_THREE])))
            t = A[r, s]
            inner = t + one
            inner = inner * c[K_HALF]
            A[r, s] = z * inner
            dinner = c[K_GELU_C] * (one + c[K_GELU_3K] * (zc * zc))
            GZ[r, s] = c[K_HALF] * (one + t) + c[K_HALF] * zc * (one - t * t) * dinner
    elif code == 9:  # z * s; s (1 + z (1 - s)), s = logistic(z)
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            sg = _logistic(z, one)
            A[r, s] = z * sg
            GZ[r, s] = sg * (one + z * (one - sg))
    elif code == 10:  # z / (1 + |z|); (1 / (1 + |z|))^2
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            d = abs(z)
            d = d + one
            A[r, s] = z / d
            qd = one / d
            GZ[r, s] = qd * qd
    else:  # lecun_tanh: A tanh(B z); A B - (B / A) a^2
        for s in range(n):
            z = _tail(first, m, A[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                      W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
            z = z + W[bo, s]
            A[r, s] = _tanh(z * c[K_LECUN_B])
            a = A[r, s] * c[K_LECUN_A]
            A[r, s] = a
            a = A[r, s]
            v = a * a
            v = v * c[K_LECUN_NBA]
            GZ[r, s] = v + c[K_LECUN_AB]


@njit(cache=True, error_model="numpy")
def _forward_unit(code, A, GZ, r, W, p, X, q, sq, k, bo, n, c):
    """A[r] = fn(sum_j W[p+j] X[q + j sq] (j = 0..k-1, in order) + W[bo]), GZ[r] = fn'(.);
    A[r] holds the partial sums of a long one (loading it when ``first`` costs no extra line:
    the row is about to be written)."""
    j = 0
    while k - j > 4:
        _dot4(A, r, W, p + j, 1, X, q + j * sq, sq, j == 0, n)
        j += 4
    _forward_last(code, A, GZ, r, W, p + j, X, q + j * sq, sq, k - j, j == 0, bo, n, c)


@njit(cache=True, error_model="numpy")
def _backprop_unit(DZ, r, W, p, sp, D, q, sq, k, GZ, n, c):
    """DZ[r] = (sum_j W[p + j sp] D[q + j sq], j = 0..k-1 in order) * GZ[r]."""
    j = 0
    while k - j > 4:
        _dot4(DZ, r, W, p + j * sp, sp, D, q + j * sq, sq, j == 0, n)
        j += 4
    m, first, nz = k - j, j == 0, c[K_NZERO]
    p0, p1, p2, p3 = _rows4(p + j * sp, sp, m)
    q0, q1, q2, q3 = _rows4(q + j * sq, sq, m)
    for s in range(n):
        z = _tail(first, m, DZ[r, s], W[p0, s] * D[q0, s], W[p1, s] * D[q1, s],
                  W[p2, s] * D[q2, s], W[p3, s] * D[q3, s], nz)
        DZ[r, s] = z * GZ[r, s]


# ---- optimizers: one rule over rows r0..r1, as in diagnostics/optimizers.py ---------------------


@njit(cache=True, error_model="numpy")
def _update(opt, theta, g, state, r0, r1, n, c, hs, track, moved):
    """Update rows r0..r1 of ``theta`` in place; ``moved[s]`` |= anything changed (if track)."""
    lr = c[K_LR]
    for p in range(r0, r1):
        if opt == 0:  # theta -= lr * g
            for s in range(n):
                tmp = g[p, s] * lr
                old = theta[p, s]
                new = old - tmp
                theta[p, s] = new
                if track:
                    moved[s] |= new != old
        elif opt == 1 or opt == 2:  # (nesterov) momentum
            mu = c[K_MU]
            for s in range(n):
                v0 = state[0, p, s]
                v = v0 * mu
                v = v + g[p, s]
                state[0, p, s] = v
                if opt == 1:
                    tmp = v * lr
                else:
                    tmp = v * mu
                    tmp = tmp + g[p, s]
                    tmp = tmp * lr
                old = theta[p, s]
                new = old - tmp
                theta[p, s] = new
                if track:
                    moved[s] |= (new != old) | (v != v0)
        elif opt == 3:  # adam; hs = (1 - beta2^t, lr / (1 - beta1^t)) in the dtype
            for s in range(n):
                gv = g[p, s]
                tmp = gv * c[K_1MB1]
                m0 = state[0, p, s]
                m = m0 * c[K_B1]
                m = m + tmp
                tmp = gv * gv
                tmp = tmp * c[K_1MB2]
                v0 = state[1, p, s]
                v = v0 * c[K_B2]
                v = v + tmp
                state[0, p, s] = m
                state[1, p, s] = v
                tmp = v / hs[0]
                tmp = np.sqrt(tmp)
                tmp = tmp + c[K_EPS]
                tmp = m / tmp
                tmp = tmp * hs[1]
                old = theta[p, s]
                new = old - tmp
                theta[p, s] = new
                if track:
                    moved[s] |= (new != old) | (m != m0) | (v != v0)
        else:  # rmsprop
            for s in range(n):
                gv = g[p, s]
                tmp = gv * gv
                tmp = tmp * c[K_1MRHO]
                q0 = state[0, p, s]
                q = q0 * c[K_RHO]
                q = q + tmp
                state[0, p, s] = q
                tmp = np.sqrt(q)
                tmp = tmp + c[K_EPS]
                tmp = gv / tmp
                tmp = tmp * lr
                old = theta[p, s]
                new = old - tmp
                theta[p, s] = new
                if track:
                    moved[s] |= (new != old) | (q != q0)


# ---- plain SGD on one-sample steps, the gradient fused into the update -------------------------


@njit(cache=True, error_model="numpy")
def _sgd_weights(theta, p, m, D, d, X, q, sq, lr, n):
    """theta[p + j] -= (D[d] * X[q + j sq]) * lr for j < m (m = 4, 2 or 1): g = dz a, one sample."""
    if m == 4:
        q1, q2, q3 = q + sq, q + 2 * sq, q + 3 * sq
        for s in range(n):
            dz = D[d, s]
            theta[p, s] = theta[p, s] - (dz * X[q, s]) * lr
            theta[p + 1, s] = theta[p + 1, s] - (dz * X[q1, s]) * lr
            theta[p + 2, s] = theta[p + 2, s] - (dz * X[q2, s]) * lr
            theta[p + 3, s] = theta[p + 3, s] - (dz * X[q3, s]) * lr
    elif m == 2:
        q1 = q + sq
        for s in range(n):
            dz = D[d, s]
            theta[p, s] = theta[p, s] - (dz * X[q, s]) * lr
            theta[p + 1, s] = theta[p + 1, s] - (dz * X[q1, s]) * lr
    else:
        for s in range(n):
            theta[p, s] = theta[p, s] - (D[d, s] * X[q, s]) * lr


@njit(cache=True, error_model="numpy")
def _sgd_biases(theta, p, m, decay, D, d, sd, lr, n):
    """theta[p + j] -= g * lr for j < m (m = 4 or 1), g = theta[p + j] (``decay``, the question's
    b -= lr * b) or D[d + j sd] (dz, one sample)."""
    if decay and m == 4:
        for s in range(n):
            theta[p, s] = theta[p, s] - theta[p, s] * lr
            theta[p + 1, s] = theta[p + 1, s] - theta[p + 1, s] * lr
            theta[p + 2, s] = theta[p + 2, s] - theta[p + 2, s] * lr
            theta[p + 3, s] = theta[p + 3, s] - theta[p + 3, s] * lr
    elif decay:
        for s in range(n):
            theta[p, s] = theta[p, s] - theta[p, s] * lr
    elif m == 4:
        d1, d2, d3 = d + sd, d + 2 * sd, d + 3 * sd
        for s in range(n):
            theta[p, s] = theta[p, s] - D[d, s] * lr
            theta[p + 1, s] = theta[p + 1, s] - D[d1, s] * lr
            theta[p + 2, s] = theta[p + 2, s] - D[d2, s] * lr
            theta[p + 3, s] = theta[p + 3, s] - D[d3, s] * lr
    else:
        for s in range(n):
            theta[p, s] = theta[p, s] - D[d, s] * lr


@njit(cache=True, error_model="numpy")
def _sgd_backprop(theta, p, sp, m, D, d, sd, A, ai, lr, DZ, r, GZ, first, last, updated, n):
    """Weights W[o, i] (rows p + j sp, j < m = 4, 2 or 1) of one input i: W -= (dz_o a_i) lr,
    and dz_prev[i] (row r) += W dz_o over them (the new W if ``updated``), in order; the first
    chunk starts the sum, the last multiplies it by fn'(z_prev[i]) (GZ[r])."""
    if m == 4:
        p1, p2, p3 = p + sp, p + 2 * sp, p + 3 * sp
        d1, d2, d3 = d + sd, d + 2 * sd, d + 3 * sd
        for s in range(n):
            a = A[ai, s]
            w0, w1, w2, w3 = theta[p, s], theta[p1, s], theta[p2, s], theta[p3, s]
            e0, e1, e2, e3 = D[d, s], D[d1, s], D[d2, s], D[d3, s]
            v0 = w0 - (e0 * a) * lr
            v1 = w1 - (e1 * a) * lr
            v2 = w2 - (e2 * a) * lr
            v3 = w3 - (e3 * a) * lr
            theta[p, s], theta[p1, s], theta[p2, s], theta[p3, s] = v0, v1, v2, v3
            t = (v0 if updated else w0) * e0
            acc = DZ[r, s] + t
            acc = t if first else acc
            acc = acc + (v1 if updated else w1) * e1
            acc = acc + (v2 if updated else w2) * e2
            acc = acc + (v3 if updated else w3) * e3
            dz = acc * GZ[r, s]
            DZ[r, s] = dz if last else acc
    elif m == 2:
        p1, d1 = p + sp, d + sd
        for s in range(n):
            a = A[ai, s]
            w0, w1 = theta[p, s], theta[p1, s]
            e0, e1 = D[d, s], D[d1, s]
            v0 = w0 - (e0 * a) * lr
            v1 = w1 - (e1 * a) * lr
            theta[p, s], theta[p1, s] = v0, v1
            t = (v0 if updated else w0) * e0
            acc = DZ[r, s] + t
            acc = t if first else acc
            acc = acc + (v1 if updated else w1) * e1
            dz = acc * GZ[r, s]
            DZ[r, s] = dz if last else acc
    else:
        for s in range(n):
            w0, e0 = theta[p, s], D[d, s]
            v0 = w0 - (e0 * A[ai, s]) * lr
            theta[p, s] = v0
            t = (v0 if updated else w0) * e0
            acc = DZ[r, s] + t
            acc = t if first else acc
            dz = acc * GZ[r, s]
            DZ[r, s] = dz if last else acc


@njit(cache=True, error_model="numpy")
def _sgd_layer(theta, wo, bo, n_out, n_in, DZ, d, A, a, Bm, decay, updated, back, lr, GZ, n):
    """One layer's plain-SGD update from a one-sample step (dz rows d + o Bm, inputs a + i Bm)
    and, with ``back``, dz of its inputs (rows a + i Bm) through the old or ``updated`` weights."""
    if back:
        for i in range(n_in):
            o = 0
            while o < n_out:
                m = 4 if n_out - o >= 4 else 2 if n_out - o >= 2 else 1
                _sgd_backprop(theta, wo + o * n_in + i, n_in, m, DZ, d + o * Bm, Bm, A,
                              a + i * Bm, lr, DZ, a + i * Bm, GZ, o == 0, o + m == n_out,
                              updated, n)
                o += m
    else:
        for o in range(n_out):
            i = 0
            while i < n_in:
                m = 4 if n_in - i >= 4 else 2 if n_in - i >= 2 else 1
                _sgd_weights(theta, wo + o * n_in + i, m, DZ, d + o * Bm, A, a + i * Bm, Bm,
                             lr, n)
                i += m
    o = 0
    while o < n_out:
        m = 4 if n_out - o >= 4 else 1
        _sgd_biases(theta, bo + o, m, decay, DZ, d + o * Bm, Bm, lr, n)
        o += m


# ---- one step on one batch -------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _step(theta, g, state, A, GZ, DZ, Y, loss, acc, B, Bm, n, L, shapes, w_off, b_off, uo,
          ui, acts, opt, decay, updated, c, c2, hs, track, moved):
    """Forward, loss, backward and update for one batch of B samples (rows unit*Bm + b)."""
    # forward: z = sum_i W[o, i] a[i] (i = 0, 1, ...) + b; a = fn(z), and fn'(z) for backward
    for l in range(L):
        n_out, n_in = shapes[l, 0], shapes[l, 1]
        wo, bo, code = w_off[l], b_off[l], acts[l]
        for o in range(n_out):
            for bb in range(B):
                _forward_unit(code, A, GZ, (uo[l] + o) * Bm + bb, theta, wo + o * n_in, A,
                              ui[l] * Bm + bb, Bm, n_in, bo + o, n, c)
    # output error: loss += sum_(o, b) err^2; dz = err * (2 / B) * fn'(z)
    lo = L - 1
    n_last = shapes[lo, 0]
    if n_last * B == 1:  # one term: loss + acc is loss + err^2
        r = uo[lo] * Bm
        for s in range(n):
            e = A[r, s] - Y[0, s]
            loss[s] = loss[s] + e * e
            DZ[r, s] = (e * c2) * GZ[r, s]
    else:
        for o in range(n_last):
            for bb in range(B):
                r = (uo[lo] + o) * Bm + bb
                yr = o * Bm + bb
                first = o == 0 and bb == 0
                for s in range(n):
                    e = A[r, s] - Y[yr, s]
                    sq = e * e
                    sq2 = acc[s] + sq
                    acc[s] = sq if first else sq2
                    DZ[r, s] = (e * c2) * GZ[r, s]
        for s in range(n):
            loss[s] = loss[s] + acc[s]
    # backward, last layer first; plain SGD on one sample updates as it goes (before or after
    # back-propagating through the layer, as the quirk says: the same numbers as updating all
    # layers at the end), anything else computes the gradient first
    fast = opt == 0 and B == 1 and not track
    for l in range(L - 1, -1, -1):
        n_out, n_in = shapes[l, 0], shapes[l, 1]
        wo, bo = w_off[l], b_off[l]
        if fast:  # one pass per input unit: update its weights and back-propagate through them
            _sgd_layer(theta, wo, bo, n_out, n_in, DZ, uo[l] * Bm, A, ui[l] * Bm, Bm, decay,
                       updated, l > 0, c[K_LR], GZ, n)
            continue
        _gradients(g, theta, DZ, A, B, Bm, n_out, n_in, wo, bo, uo[l], ui[l], decay, n, c)
        if updated:
            _update(opt, theta, g, state, wo, bo + n_out, n, c, hs, track, moved)
        if l > 0:  # dz_prev[i] = (sum_o W[o, i] dz[o]) * fn'(z_prev[i])
            for i in range(n_in):
                for bb in range(B):
                    _backprop_unit(DZ, (ui[l] + i) * Bm + bb, theta, wo + i, n_in, DZ,
                                   uo[l] * Bm + bb, Bm, n_out, GZ, n, c)
    if not updated and not fast:
        _update(opt, theta, g, state, 0, theta.shape[0], n, c, hs, track, moved)


@njit(cache=True, error_model="numpy")
def _gradients(g, theta, DZ, A, B, Bm, n_out, n_in, wo, bo, uo, ui, decay, n, c):
    """One layer's gradient rows: dW = sum_b dz a^T, db = sum_b dz (or b, ``decay``)."""
    for o in range(n_out):
        d0 = (uo + o) * Bm
        for i in range(n_in):
            p = wo + o * n_in + i
            a0 = (ui + i) * Bm
            if B == 1:
                for s in range(n):
                    g[p, s] = DZ[d0, s] * A[a0, s]
            else:  # einsum: 0 + sum_b dz a, b = 0, 1, ...
                for s in range(n):
                    g[p, s] = c[K_ZERO]
                for bb in range(B):
                    for s in range(n):
                        g[p, s] = g[p, s] + DZ[d0 + bb, s] * A[a0 + bb, s]
        if decay:  # the question's b -= lr * b
            for s in range(n):
                g[bo + o, s] = theta[bo + o, s]
        else:
            for s in range(n):
                g[bo + o, s] = DZ[d0, s]
            for bb in range(1, B):
                for s in range(n):
                    g[bo + o, s] = g[bo + o, s] + DZ[d0 + bb, s]


@njit(cache=True, error_model="numpy")
def _splitmix64(x):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, error_model="numpy")
def _swap(x, j, k):
    t = x[j]
    x[j] = x[k]
    x[k] = t


# ---- the whole run ----------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", nogil=True)  # other threads run while it trains
def run(theta_b, state_b, cols_b, seeds_b, alive_b, epoch_b, settled_b, e_end, stop_settled,
        shapes, w_off, b_off, uo, ui, acts, opt, decay, updated, shuffle, size, c, levels,
        thr_j, hyper64, XT, YT, rec_row, loss_hist, first_below, min_loss, diverged, final_loss,
        snap, snap_on):
    """Train every block from its own epoch ``epoch_b[k]`` up to ``e_end``.

    Per block k: parameters ``theta_b[k] (P, Sb)``, optimizer state ``state_b[k] (K, P, Sb)``,
    ensemble index of each column ``cols_b[k]``, seed of each column ``seeds_b[k]`` (uint64, for
    the shuffle), and ``alive_b[k]`` columns still training (the first ones: a seed that diverges
    is frozen at its parameters from the start of that epoch and swapped behind them). Loss
    history, first epoch at or below each level, min/final loss and divergence epoch are written
    per ensemble index. With ``stop_settled`` a block stops after the first epoch at which each
    of its live seeds has converged or is frozen (see ``train``); ``settled_b[k]`` gets that epoch.
    With ``snap_on``, ``snap (P, S)`` gets each live seed's parameters as they are before its
    epoch ``e_end`` (what a monitor compares the epoch's update with), by ensemble index.
    """
    nb, P, Sb = theta_b.shape
    L = shapes.shape[0]
    N = XT.shape[1]
    n_in0 = shapes[0, 1]
    n_out_last = shapes[L - 1, 0]
    Bm = size if size < N else N
    rows = uo[L - 1] + n_out_last
    A = np.zeros((rows * Bm, Sb), dtype=theta_b.dtype)
    GZ = np.zeros_like(A)
    DZ = np.zeros_like(A)
    Y = np.zeros((n_out_last * Bm, Sb), dtype=theta_b.dtype)
    g = np.zeros((P, Sb), dtype=theta_b.dtype)
    prev = np.zeros((P, Sb), dtype=theta_b.dtype)
    loss = np.zeros(Sb, dtype=theta_b.dtype)
    acc = np.zeros(Sb, dtype=theta_b.dtype)
    total = np.zeros(Sb, dtype=theta_b.dtype)
    moved = np.zeros(Sb, dtype=np.bool_)
    hs = np.ones(2, dtype=theta_b.dtype)
    c2s = np.zeros(Bm + 1, dtype=theta_b.dtype)  # 2.0 if B == 1 else 2.0 / B, in the dtype
    for B in range(1, Bm + 1):
        c2s[B] = 2.0 if B == 1 else 2.0 / B
    order = np.zeros((N, Sb), dtype=np.int64)
    keys = np.zeros(N, dtype=np.uint64)
    n_steps = (N + size - 1) // size
    track = stop_settled and ((not shuffle) or size == 1)
    b1, b2, lr64 = hyper64[0], hyper64[1], hyper64[2]
    for k in range(nb):
        if stop_settled and settled_b[k] >= 0:
            continue
        theta = theta_b[k]
        state = state_b[k]
        cols = cols_b[k]
        seeds = seeds_b[k]
        for e in range(epoch_b[k] + 1, e_end + 1):
            n = alive_b[k]
            if n == 0:
                epoch_b[k] = e_end
                break
            for p in range(P):
                for s in range(n):
                    prev[p, s] = theta[p, s]
            if snap_on and e == e_end:
                for p in range(P):
                    for s in range(n):
                        snap[p, cols[s]] = theta[p, s]
            for s in range(n):
                loss[s] = c[K_ZERO]
                moved[s] = False
            if shuffle:  # diagnostics.train.shuffle_order, per column
                for s in range(n):
                    key = _splitmix64(_splitmix64(seeds[s]) ^ np.uint64(e))
                    for j in range(N):
                        keys[j] = _splitmix64(key + np.uint64(j))
                    perm = np.argsort(keys, kind="mergesort")
                    for j in range(N):
                        order[j, s] = perm[j]
            for step in range(n_steps):
                start = step * size
                B = min(size, N - start)
                for bb in range(B):  # gather this step's inputs and targets per column
                    if shuffle:
                        for s in range(n):
                            smp = order[start + bb, s]
                            for i in range(n_in0):
                                A[i * Bm + bb, s] = XT[i, smp]
                            for o in range(n_out_last):
                                Y[o * Bm + bb, s] = YT[o, smp]
                    else:
                        smp = start + bb
                        for i in range(n_in0):
                            x = XT[i, smp]
                            for s in range(n):
                                A[i * Bm + bb, s] = x
                        for o in range(n_out_last):
                            y = YT[o, smp]
                            for s in range(n):
                                Y[o * Bm + bb, s] = y
                if opt == 3:
                    t = float((e - 1) * n_steps + step + 1)
                    hs[0] = 1.0 - math.pow(b2, t)
                    hs[1] = lr64 / (1.0 - math.pow(b1, t))
                _step(theta, g, state, A, GZ, DZ, Y, loss, acc, B, Bm, n, L, shapes,
                      w_off, b_off, uo, ui, acts, opt, decay, updated, c, c2s[B], hs, track,
                      moved)
            # epoch end: record, time the levels, detect divergence (seeds in any order)
            r = rec_row[e]
            for s in range(n):
                total[s] = theta[0, s]
            for p in range(1, P):
                for s in range(n):
                    total[s] = total[s] + theta[p, s]
            all_settled = True
            for s in range(n - 1, -1, -1):
                j = cols[s]
                v = loss[s] / c[K_N]
                v64 = np.float64(v)
                if r >= 0:
                    loss_hist[r, j] = v64
                if not (v64 >= min_loss[j]):  # np.fmin: a nan never replaces a number
                    if v64 == v64 or min_loss[j] != min_loss[j]:
                        min_loss[j] = v64
                for lev in range(levels.shape[0]):
                    if v <= levels[lev] and first_below[lev, j] < 0:
                        first_below[lev, j] = e
                final_loss[j] = v64
                if not (np.isfinite(v) and np.isfinite(total[s])):
                    diverged[j] = e
                    last = alive_b[k] - 1
                    for p in range(P):
                        theta[p, s] = prev[p, s]
                        _swap(theta[p], s, last)
                        for q in range(state.shape[0]):
                            _swap(state[q, p], s, last)
                    _swap(cols, s, last)
                    _swap(seeds, s, last)
                    alive_b[k] = last
                elif stop_settled and all_settled:
                    if first_below[thr_j, j] < 0:
                        frozen = track and not moved[s]
                        if frozen and opt == 3:  # Adam's step depends on t unless m == 0
                            for p in range(P):
                                if state[0, p, s] != 0:
                                    frozen = False
                        all_settled = frozen
            epoch_b[k] = e
            if stop_settled and all_settled:
                settled_b[k] = e
                break


# ---- the Python side: blocks in, blocks out ------------------------------------------------------

# Seeds per block, measured (tanh, online SGD, kernel alone, interleaved medians; one core with
# 48 KiB L1, 1 MiB L2 and a shared 32 MiB L3): every pass over a row of seeds has a fixed cost
# (~50 ns: loop set-up and the run-time checks that its rows do not overlap), so longer rows win
# until the block's rows no longer stay in the caches near the core. 2-4-4-1 (0.66 MB per 1024
# seeds): 256: 5.5, 512: 8.4, 768: 8.9, 1024: 9.6, 1536: 9.6, 2048: 8.9 M seed-epochs/s;
# 2-16-16-1 (3.9 MB per 1024): 256: 1.05, 512: 1.07, 1024: 1.13 M; 2-64-64-1 (10 MB per 256):
# 128: 81 k, 256: 87 k, 512: 64 k, 1024: 39 k.
BLOCK_SEEDS = 1024  # at most this many seeds per block ...
BLOCK_BYTES = 12 << 20  # ... halved while the rows every step touches exceed this ...
MIN_BLOCK_SEEDS = 128  # ... but not below this


@njit(cache=True, nogil=True)
def _join_blocks(theta_b, out):
    """out[:, k * sb + s] = theta_b[k, :, s] for the seeds s of every block k (blocks holding
    the ensemble in order, the last one possibly part full): one copy, without the GIL."""
    nb, P, sb = theta_b.shape
    S = out.shape[1]
    for k in range(nb):
        lo = k * sb
        n = min(sb, S - lo)
        for p in range(P):
            src, dst = theta_b[k, p], out[p, lo:lo + n]  # 1-d views: no wraparound checks
            for s in range(n):
                dst[s] = src[s]


def block_seeds(config, n_samples: int, S: int) -> int:
    """Seeds per block: ``BLOCK_SEEDS``, fewer when a block would not stay in cache."""
    from .optimizers import get_optimizer

    layers = config.layers
    P = sum(o * i + o for i, o in zip(layers[:-1], layers[1:], strict=True))
    K = len(get_optimizer(config.optimizer).state)
    batch = config.batch
    Bm = n_samples if batch == "full" else 1 if batch in ("online", "shuffled") else batch
    Bm = min(Bm, n_samples)
    # parameters, optimizer state, and a, fn'(z), dz and partial sums per unit and sample
    per_seed = (P * (1 + K) + 4 * sum(layers) * Bm) * np.dtype(config.dtype).itemsize
    sb = BLOCK_SEEDS
    while sb > MIN_BLOCK_SEEDS and sb * per_seed > BLOCK_BYTES:
        sb //= 2
    return max(1, min(sb, S))


class Blocks:
    """An ensemble cut into blocks of seeds, trained by ``run`` in segments of epochs."""

    def __init__(self, config, data, theta0: Array, seeds: Array, rec: Array, levels, E: int,
                 block: int | None = None):
        from .network import Layout
        from .optimizers import get_optimizer

        dtype = theta0.dtype
        P, S = theta0.shape
        self.P, self.S, self.E = P, S, E
        self.sb = block_seeds(config, data.n_samples, S) if block is None else int(block)
        sb = self.sb
        nb = -(-S // sb)
        K = len(get_optimizer(config.optimizer).state)
        self.theta = np.zeros((nb, P, sb), dtype)
        self.state = np.zeros((nb, max(K, 1), P, sb), dtype)
        self.cols = np.full((nb, sb), -1, dtype=np.int64)
        self.seeds = np.zeros((nb, sb), dtype=np.uint64)
        self.alive = np.zeros(nb, dtype=np.int64)
        for k in range(nb):
            lo, hi = k * sb, min(S, (k + 1) * sb)
            self.theta[k, :, : hi - lo] = theta0[:, lo:hi]
            self.cols[k, : hi - lo] = np.arange(lo, hi)
            self.seeds[k, : hi - lo] = seeds[lo:hi].astype(np.uint64)
            self.alive[k] = hi - lo
        self.epoch = np.zeros(nb, dtype=np.int64)
        self.settled = np.full(nb, -1, dtype=np.int64)
        layout = Layout(config.layers)
        L = layout.n_layers
        self.shapes = np.array(layout.shapes, dtype=np.int64)
        self.w_off = np.array([s.start for s in layout.w_slices], dtype=np.int64)
        self.b_off = np.array([s.start for s in layout.b_slices], dtype=np.int64)
        units = np.cumsum([0, *config.layers])
        self.uo = units[1:-1].astype(np.int64)  # first row-unit of layer l's outputs
        self.ui = units[:-2].astype(np.int64)  # ... and of its inputs
        names = [config.hidden_activation.name] * (L - 1) + [config.out_activation.name]
        self.acts = np.array([ACT_CODES[a] for a in names], dtype=np.int64)
        self.opt = OPT_CODES[config.optimizer]
        self.decay = config.bias_update == "decay"
        self.updated = config.backprop_weights == "updated"
        batch, N = config.batch, data.n_samples
        self.shuffle = batch not in ("online", "full")
        self.size = 1 if batch in ("online", "shuffled") else N if batch == "full" else int(batch)
        self.c = constants(config, N, dtype)
        self.levels = np.asarray(levels, dtype=np.float64).astype(dtype)  # compared in the dtype
        self.thr_j = list(levels).index(config.threshold)
        hp = config.hyper
        self.hyper64 = np.array([hp.beta1, hp.beta2, hp.lr], dtype=np.float64)
        self.XT = np.ascontiguousarray(data.X.T, dtype=dtype)
        self.YT = np.ascontiguousarray(data.Y.T, dtype=dtype)
        self.rec_row = np.full(E + 1, -1, dtype=np.int64)
        self.rec_row[rec] = np.arange(rec.size)
        self.loss_hist = np.full((rec.size, S), np.nan)
        self.first_below = np.full((len(levels), S), -1, dtype=np.int64)
        self.min_loss = np.full(S, np.inf)
        self.diverged = np.full(S, -1, dtype=np.int64)
        self.final_loss = np.full(S, np.nan)
        self._no_snapshot = np.zeros((1, 1), dtype)

    def run(self, e_end: int, stop_settled: bool = False, snapshot: Array | None = None) -> None:
        """Train every block up to epoch ``e_end`` (with ``stop_settled``: or until settled);
        ``snapshot (P, S)``: filled with the live seeds' parameters before epoch ``e_end``."""
        snap = self._no_snapshot if snapshot is None else snapshot
        run(self.theta, self.state, self.cols, self.seeds, self.alive, self.epoch, self.settled,
            int(e_end), bool(stop_settled), self.shapes, self.w_off, self.b_off, self.uo,
            self.ui, self.acts, self.opt, self.decay, self.updated, self.shuffle, self.size,
            self.c, self.levels, self.thr_j, self.hyper64, self.XT, self.YT, self.rec_row,
            self.loss_hist, self.first_below, self.min_loss, self.diverged, self.final_loss,
            snap, snapshot is not None)

    def live(self, buffer=None) -> tuple[Array, Array]:
        """``(theta (P, S_alive), alive)``: parameters of the live seeds, in ensemble order;
        ``buffer(shape, dtype)`` gives the array to fill when every seed is alive (default: a
        new one)."""
        if int(self.alive.sum()) == self.S:  # no seed diverged: blocks hold seeds in order
            shape, dtype = (self.P, self.S), self.theta.dtype
            theta = np.empty(shape, dtype) if buffer is None else buffer(shape, dtype)
            _join_blocks(self.theta, theta)
            return theta, np.arange(self.S)
        cols = np.concatenate([self.cols[k, : self.alive[k]] for k in range(len(self.alive))])
        theta = np.concatenate(
            [self.theta[k, :, : self.alive[k]] for k in range(len(self.alive))], axis=1
        )
        order = np.argsort(cols)
        return np.ascontiguousarray(theta[:, order]), cols[order]

    def final(self) -> Array:
        """All parameters ``(P, S)`` in ensemble order (diverged seeds: frozen values)."""
        out = np.empty((self.P, self.S), dtype=self.theta.dtype)
        for k in range(self.theta.shape[0]):
            n = int((self.cols[k] >= 0).sum())
            out[:, self.cols[k, :n]] = self.theta[k, :, :n]
        return out
