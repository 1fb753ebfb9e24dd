"""The compiled engine: one numba kernel trains blocks of seeds through whole runs of epochs.

Layout (private to this module, chosen by measurement): the ensemble is cut into blocks of
``block`` seeds; a block's parameters are one contiguous ``(n_params, block)`` array with the seed
axis innermost, so every loop over seeds is a unit-stride loop that LLVM vectorizes, and a block's
parameters, optimizer state and per-layer records stay in cache for the whole run. The kernel
loops blocks (outer) × epochs × steps × layers, fusing forward, loss, backward and update.

Arithmetic is the numpy engine's (``diagnostics.network``, ``diagnostics.optimizers``,
``diagnostics.activations``), operation for operation and in the same order: contractions are
summed in index order starting from the first product, ``x += t`` is one rounding of ``x + t``,
nothing is fused or reassociated (no fastmath; LLVM does not contract a separate multiply and add
into an FMA without it). Every operation is element-wise along the seed axis, so a seed's numbers
are independent of the block size and of the other seeds. Elementary operations (+ - * / sqrt,
comparisons) are IEEE-exact, so the two engines agree bit for bit wherever no transcendental
function is involved; ``exp``/``expm1``/``log1p``/``pow`` come from the C library here and
``tanh`` from ``_tanh`` below (within 2.4 ulp), numpy's from its own SIMD routines or the C
library, which differ by an ulp or two on some arguments.

Constants are passed in an array of the parameters' dtype (``consts``), so float32 runs compute
in float32 exactly as numpy does with Python scalars (NEP 50: the scalar is cast to float32).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
) = range(28)
N_CONSTS = 28


def constants(config, n_samples: int, dtype) -> Array:
    """The kernel's constant vector for ``config``, each value cast to ``dtype`` as numpy does."""
    from .activations import _GELU_C, _LECUN_A, _LECUN_B, _SELU_ALPHA, _SELU_SCALE

    hp = config.hyper
    c = np.zeros(N_CONSTS, dtype=np.float64)
    c[K_ONE], c[K_HALF], c[K_TWO], c[K_THREE] = 1.0, 0.5, 2.0, 3.0
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


# ---- tanh, vectorizable ----------------------------------------------------------------------
# The C library's tanh is a call LLVM cannot vectorize and costs ~10 ns, most of the kernel's
# time with tanh units. This one is written in + - * / and selects only, so LLVM vectorizes it:
# tanh|z| = e / (e + 2) with e = expm1(2|z|) (no cancellation at small z), expm1 by Cody-Waite
# reduction 2|z| = k ln2 + r, |r| <= ln2/2, a degree-13 Taylor polynomial (truncation < 1e-17
# relative) and e = 2^k expm1(r) + (2^k - 1), both terms exact. Measured against long-double
# tanh on 4e6 points: at most 2.4 ulp (glibc's tanh: 2.1; numpy's SIMD tanh: 1.2). It is computed
# in float64 for both dtypes; callers store it to the dtype before using it further, so float32
# arithmetic around it stays float32 as in numpy.

_INVLN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01  # ln2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_RINT = 6755399441055744.0  # 1.5 * 2^52: (y + _RINT) - _RINT rounds y to an integer


@njit(cache=True, error_model="numpy", inline="always")
def _expm1_small(x):
    """expm1(x) for 0 <= x <= 44 (nan propagates)."""
    k = (x * _INVLN2 + _RINT) - _RINT
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = 1.0 / 479001600.0 + r * p
    p = 1.0 / 39916800.0 + r * p
    p = 1.0 / 3628800.0 + r * p
    p = 1.0 / 362880.0 + r * p
    p = 1.0 / 40320.0 + r * p
    p = 1.0 / 5040.0 + r * p
    p = 1.0 / 720.0 + r * p
    p = 1.0 / 120.0 + r * p
    p = 1.0 / 24.0 + r * p
    p = 1.0 / 6.0 + r * p
    p = 0.5 + r * p
    em = r + (r * r) * p
    s = 1.0  # 2^k for integer 0 <= k <= 63 from exact power-of-two factors
    c = k >= 32.0
    s = s * (4294967296.0 if c else 1.0)
    k = k - (32.0 if c else 0.0)
    c = k >= 16.0
    s = s * (65536.0 if c else 1.0)
    k = k - (16.0 if c else 0.0)
    c = k >= 8.0
    s = s * (256.0 if c else 1.0)
    k = k - (8.0 if c else 0.0)
    c = k >= 4.0
    s = s * (16.0 if c else 1.0)
    k = k - (4.0 if c else 0.0)
    c = k >= 2.0
    s = s * (4.0 if c else 1.0)
    k = k - (2.0 if c else 0.0)
    s = s * (2.0 if k >= 1.0 else 1.0)
    return s * em + (s - 1.0)


@njit(cache=True, error_model="numpy", inline="always")
def _tanh(z):
    """tanh(z) in float64, within 2.4 ulp; tanh(+-0) = +-0, tanh(nan) = nan."""
    x = np.float64(z)
    a = abs(x)
    b = a if a < 22.0 else 22.0  # tanh(22) rounds to 1
    e = _expm1_small(b + b)
    t = e / (e + 2.0)
    t = t if a < 22.0 else 1.0
    return t if x > 0 else (-t if x < 0 else x)


# ---- activations: fn and grad over one row of seeds, as in diagnostics/activations.py ----------


@njit(cache=True, error_model="numpy")
def _logistic(z, one):
    e = math.exp(-abs(z))
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


@njit(cache=True, error_model="numpy")
def _act_row(code, z, a, r, n, c):
    """a[r, :n] = fn(z[r, :n])."""
    zero, one = c[K_ZERO], c[K_ONE]
    if code == 0:
        for s in range(n):
            a[r, s] = z[r, s]
    elif code == 1:  # 1.0 / (1 + exp(-z))
        for s in range(n):
            e = math.exp(-z[r, s])
            e = e + one
            a[r, s] = one / e
    elif code == 2:
        for s in range(n):
            a[r, s] = _tanh(z[r, s])
    elif code == 3:  # np.maximum(0, z): nan propagates
        for s in range(n):
            x = z[r, s]
            a[r, s] = zero if x <= zero else x
    elif code == 4:  # np.maximum(z, z * slope)
        slope = c[K_SLOPE]
        for s in range(n):
            x = z[r, s]
            y = x * slope
            a[r, s] = x if (x >= y or x != x) else y
    elif code == 5 or code == 6:  # where(z > 0, z, alpha * expm1(min(z, 0))) [* scale]
        alpha = one if code == 5 else c[K_SELU_ALPHA]
        for s in range(n):
            x = z[r, s]
            m = zero if x >= zero else x
            neg = math.expm1(m)
            neg = neg * alpha
            v = x if x > zero else neg
            if code == 6:
                v = v * c[K_SELU_SCALE]
            a[r, s] = v
    elif code == 7:  # log1p(exp(-|z|)) + max(z, 0)
        for s in range(n):
            x = z[r, s]
            v = math.log1p(math.exp(-abs(x)))
            a[r, s] = v + (zero if x <= zero else x)
    elif code == 8:  # z * (0.5 * (1 + tanh(C (zc + k zc^3))))
        for s in range(n):
            x = z[r, s]
            zc = _clip50(x, c[K_FIFTY])
            a[r, s] = _tanh(c[K_GELU_C] * (zc + c[K_GELU_K] * math.pow(zc, c[K_THREE])))
            inner = a[r, s] + one
            inner = inner * c[K_HALF]
            a[r, s] = x * inner
    elif code == 9:
        for s in range(n):
            x = z[r, s]
            a[r, s] = x * _logistic(x, one)
    elif code == 10:
        for s in range(n):
            x = z[r, s]
            d = abs(x)
            d = d + one
            a[r, s] = x / d
    else:  # lecun_tanh: A tanh(B z)
        for s in range(n):
            a[r, s] = _tanh(z[r, s] * c[K_LECUN_B])
            a[r, s] = a[r, s] * c[K_LECUN_A]


@njit(cache=True, error_model="numpy")
def _clip50(x, fifty):
    if x < -fifty:
        return -fifty
    if x > fifty:
        return fifty
    return x


@njit(cache=True, error_model="numpy")
def _grad_row(code, z, a, g, r, n, c):
    """g[r, :n] = fn'(z[r, :n]) given a = fn(z)."""
    zero, one = c[K_ZERO], c[K_ONE]
    if code == 0:
        for s in range(n):
            g[r, s] = one
    elif code == 1:  # a * (1 - a)
        for s in range(n):
            t = one - a[r, s]
            g[r, s] = a[r, s] * t
    elif code == 2:  # 1 - a*a
        for s in range(n):
            t = a[r, s] * a[r, s]
            g[r, s] = one - t
    elif code == 3:
        for s in range(n):
            g[r, s] = one if z[r, s] > zero else zero
    elif code == 4:
        slope = c[K_SLOPE]
        for s in range(n):
            g[r, s] = one if z[r, s] > zero else slope
    elif code == 5 or code == 6:  # where(z > 0, scale, alpha * scale * exp(min(z, 0)))
        k = c[K_ELU_GRAD] if code == 5 else c[K_SELU_GRAD]
        pos = one if code == 5 else c[K_SELU_SCALE]
        for s in range(n):
            x = z[r, s]
            m = zero if x >= zero else x
            neg = math.exp(m)
            neg = neg * k
            g[r, s] = pos if x > zero else neg
    elif code == 7:
        for s in range(n):
            g[r, s] = _logistic(z[r, s], one)
    elif code == 8:
        for s in range(n):
            zc = _clip50(z[r, s], c[K_FIFTY])
            g[r, s] = _tanh(c[K_GELU_C] * (zc + c[K_GELU_K] * math.pow(zc, c[K_THREE])))
            t = g[r, s]
            dinner = c[K_GELU_C] * (one + c[K_GELU_3K] * (zc * zc))
            g[r, s] = c[K_HALF] * (one + t) + c[K_HALF] * zc * (one - t * t) * dinner
    elif code == 9:  # s (1 + z (1 - s))
        for s in range(n):
            x = z[r, s]
            sg = _logistic(x, one)
            g[r, s] = sg * (one + x * (one - sg))
    elif code == 10:  # (1 / (1 + |z|))^2
        for s in range(n):
            d = abs(z[r, s])
            d = d + one
            q = one / d
            g[r, s] = q * q
    else:  # A B - (B / A) a^2
        for s in range(n):
            v = a[r, s] * a[r, s]
            v = v * c[K_LECUN_NBA]
            g[r, s] = v + c[K_LECUN_AB]


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


# ---- one step on one batch -------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _step(theta, g, state, A, Z, GZ, DZ, Y, loss, acc, B, Bm, n, L, shapes, w_off, b_off, uo,
          ui, acts, opt, decay, updated, c, c2, hs, track, moved):
    """Forward, loss, backward and update for one batch of B samples (rows unit*Bm + b)."""
    # forward: z = sum_i W[o, i] a[i] (i = 0, 1, ...) + b; a = fn(z)
    for l in range(L):
        n_out, n_in = shapes[l, 0], shapes[l, 1]
        wo, bo, code = w_off[l], b_off[l], acts[l]
        for o in range(n_out):
            p = wo + o * n_in
            for bb in range(B):
                r = (uo[l] + o) * Bm + bb
                src = ui[l] * Bm + bb
                for s in range(n):
                    Z[r, s] = theta[p, s] * A[src, s]
                for i in range(1, n_in):
                    q = src + i * Bm
                    for s in range(n):
                        Z[r, s] = Z[r, s] + theta[p + i, s] * A[q, s]
                for s in range(n):
                    Z[r, s] = Z[r, s] + theta[bo + o, s]
                _act_row(code, Z, A, r, n, c)
    # output error: loss += sum_(o, b) err^2; dz = err * (2 / B) * fn'(z)
    lo = L - 1
    n_last = shapes[lo, 0]
    for o in range(n_last):
        for bb in range(B):
            r = (uo[lo] + o) * Bm + bb
            yr = o * Bm + bb
            first = o == 0 and bb == 0
            for s in range(n):
                e = A[r, s] - Y[yr, s]
                sq = e * e
                acc[s] = sq if first else acc[s] + sq
                DZ[r, s] = e * c2
            _grad_row(acts[lo], Z, A, GZ, r, n, c)
            for s in range(n):
                DZ[r, s] = DZ[r, s] * GZ[r, s]
    for s in range(n):
        loss[s] = loss[s] + acc[s]
    # backward, last layer first
    for l in range(L - 1, -1, -1):
        n_out, n_in = shapes[l, 0], shapes[l, 1]
        wo, bo = w_off[l], b_off[l]
        for o in range(n_out):
            d0 = (uo[l] + o) * Bm
            for i in range(n_in):
                p = wo + o * n_in + i
                a0 = (ui[l] + i) * Bm
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
        if updated:  # update this layer, then back-propagate through the new weights
            _update(opt, theta, g, state, wo, bo + n_out, n, c, hs, track, moved)
        if l > 0:  # dz_prev[i] = (sum_o W[o, i] dz[o]) * fn'(z_prev[i])
            code = acts[l - 1]
            for i in range(n_in):
                for bb in range(B):
                    r = (ui[l] + i) * Bm + bb
                    d = uo[l] * Bm + bb
                    for s in range(n):
                        DZ[r, s] = theta[wo + i, s] * DZ[d, s]
                    for o in range(1, n_out):
                        p = wo + o * n_in + i
                        q = d + o * Bm
                        for s in range(n):
                            DZ[r, s] = DZ[r, s] + theta[p, s] * DZ[q, s]
                    _grad_row(code, Z, A, GZ, r, n, c)
                    for s in range(n):
                        DZ[r, s] = DZ[r, s] * GZ[r, s]
    if not updated:
        _update(opt, theta, g, state, 0, theta.shape[0], n, c, hs, track, moved)


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


@njit(cache=True, error_model="numpy")
def run(theta_b, state_b, cols_b, seeds_b, alive_b, epoch_b, settled_b, e_end, stop_settled,
        shapes, w_off, b_off, uo, ui, acts, opt, decay, updated, shuffle, size, c, levels,
        thr_j, hyper64, XT, YT, rec_row, loss_hist, first_below, min_loss, diverged, final_loss):
    """Train every block from its own epoch ``epoch_b[k]`` up to ``e_end``.

    Per block k: parameters ``theta_b[k] (P, Sb)``, optimizer state ``state_b[k] (K, P, Sb)``,
    ensemble index of each column ``cols_b[k]``, seed of each column ``seeds_b[k]`` (uint64, for
    the shuffle), and ``alive_b[k]`` columns still training (the first ones: a seed that diverges
    is frozen at its parameters from the start of that epoch and swapped behind them). Loss
    history, first epoch at or below each level, min/final loss and divergence epoch are written
    per ensemble index. With ``stop_settled`` a block stops after the first epoch at which each
    of its live seeds has converged or is frozen (see ``train``); ``settled_b[k]`` gets that epoch.
    """
    nb, P, Sb = theta_b.shape
    L = shapes.shape[0]
    N = XT.shape[1]
    n_in0 = shapes[0, 1]
    n_out_last = shapes[L - 1, 0]
    Bm = size if size < N else N
    rows = uo[L - 1] + n_out_last
    A = np.zeros((rows * Bm, Sb), dtype=theta_b.dtype)
    Z = np.zeros_like(A)
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
                _step(theta, g, state, A, Z, GZ, DZ, Y, loss, acc, B, Bm, n, L, shapes,
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

# Seeds per block, measured (tanh, 2-W-W-1, interleaved medians on a 1 MiB-L2 core): longer
# seed loops amortize each row's loop overhead, up to the point where the block leaves L2.
# 2-4-4-1: 8: 0.37, 32: 1.2, 128: 2.2, 512: 3.0, 2048: 2.7 M seed-epochs/s; 2-16-16-1 best
# at 128 (0.29 M; 512: 0.26 M); 2-64-64-1 best at 128 (13.6 k; 8: 8.5 k, 512: 8.1 k).
BLOCK_SEEDS = 512  # at most this many seeds per block ...
BLOCK_BYTES = 5 << 18  # ... halved while a block's working set exceeds this ...
MIN_BLOCK_SEEDS = 128  # ... but not below this


def block_seeds(config, n_samples: int, S: int) -> int:
    """Seeds per block: ``BLOCK_SEEDS``, fewer when a block would not stay in cache."""
    from .optimizers import get_optimizer

    layers = config.layers
    P = sum(o * i + o for i, o in zip(layers[:-1], layers[1:], strict=True))
    K = len(get_optimizer(config.optimizer).state)
    batch = config.batch
    Bm = n_samples if batch == "full" else 1 if batch in ("online", "shuffled") else batch
    Bm = min(Bm, n_samples)
    per_seed = (P * (3 + K) + 4 * sum(layers) * Bm) * np.dtype(config.dtype).itemsize
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

    def run(self, e_end: int, stop_settled: bool = False) -> None:
        """Train every block up to epoch ``e_end`` (with ``stop_settled``: or until settled)."""
        run(self.theta, self.state, self.cols, self.seeds, self.alive, self.epoch, self.settled,
            int(e_end), bool(stop_settled), self.shapes, self.w_off, self.b_off, self.uo,
            self.ui, self.acts, self.opt, self.decay, self.updated, self.shuffle, self.size,
            self.c, self.levels, self.thr_j, self.hyper64, self.XT, self.YT, self.rec_row,
            self.loss_hist, self.first_below, self.min_loss, self.diverged, self.final_loss)

    def live(self) -> tuple[Array, Array]:
        """``(theta (P, S_alive), alive)``: parameters of the live seeds, in ensemble order."""
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
