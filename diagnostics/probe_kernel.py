"""The monitor's full pass, compiled: every probe of ``diagnostics.probes`` in one numba pass.

``probes.py`` is the readable reference: ``network.full_gradient`` materialises z, a, act'(z) and
dL/dz as ``(units, N, S)`` arrays for the whole ensemble, and each probe reads them in its own
numpy pass. ``probe_pass`` computes the same values seed block by seed block: a block's parameters
are copied into a contiguous ``(P, block)`` array and its per-sample records (rows ``unit * N +
sample``, the input units first, as in ``kernel.py`` with ``Bm = N``) live in small scratch arrays
that stay in the cache while the forward pass, the backward pass and every selected probe read
them; the seed loop is innermost, so LLVM vectorizes it. It releases the GIL.

Where the time goes (the pass is bound by the traffic of its rows and a fixed cost per pass):
while a block runs, the next block's columns of ``theta`` and ``prev`` are prefetched (read
from memory in 4 KB pieces of each row, they took about 1 of 2.7 ms per recording at 2-4-4-1,
S = 10^4); rows of arrays addressed at an offset (``theta``, ``prev``, ``values``, ``dead`` at
the block's columns) are read and written through 1-d views, whose index needs no per-element
wraparound check (with it, such a loop ran up to twice as long); for identity, relu and
leaky_relu the activation and its derivative are computed in the pass that ends a unit's sum
(the other activations take a second pass over z, through the engine's routine); the last eight
terms of a weight gradient take one pass; the unit and deviation sums add four rows per pass.

Arithmetic is the numpy pass's, operation for operation and in the same order, through the
compiled engine's own routines (``kernel._forward_unit``, ``_dot4``, ``_tail``,
``_backprop_unit``): a pre-activation is the contraction summed in index order, then ``+ b``; the
activation and its derivative are the engine's (applied to z as ``fn(1 * z + -0.0)``, an exact
identity; ``_cheap`` repeats the engine's selects for identity, relu and leaky_relu); a weight
gradient sums its samples in order (as numpy's einsum did in every case tested: 1 to 100
samples, 1 to 600 seeds), starting from the first product rather than from 0, which can change
only the sign of a zero, squared away by the norm; the probes' sums
(``network.seed_sum``) add rows in index order starting from 0; norms are the sqrt of those
sums; means divide by the count in the parameters' dtype, shares (dead, saturated) are counts
divided in float64, as numpy's bool sums are. So the values are bit-identical to the numpy pass
wherever no transcendental function is involved, and otherwise differ by the engines' exp / tanh
/ log1p results (an ulp or two, see ``kernel.py``), carried through the network.

Every activation of the table and both dtypes are supported (``supports``); a monitor falls back
to the numpy pass only for a parameter dtype other than float32 / float64 or an activation the
compiled engine does not know (``ACT_CODES``), which the table's entries never are, and for a
``Monitor`` subclass that overrides ``record`` (it reads the numpy pass's records).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .kernel import (
    ACT_CODES,
    K_N,
    K_NZERO,
    K_ONE,
    K_SLOPE,
    K_ZERO,
    _backprop_unit,
    _dot4,
    _forward_unit,
    _like,
    _rows4,
    _tail,
    constants,
)
from .network import Layout
from .probes import SATURATION_LEVEL

Array = np.ndarray

(
    GRAD_NORM_W, GRAD_NORM_B, GRAD_NORM_Z, DEAD_FRACTION, SATURATION_FRACTION, GAIN, WEIGHT_NORM,
    UPDATE_RATIO, Z_MEAN, Z_STD, LOSS, GRAD_RATIO, NETWORK_DEAD,
) = range(13)
PROBE_CODES = {
    "grad_norm_W": GRAD_NORM_W,
    "grad_norm_b": GRAD_NORM_B,
    "grad_norm_z": GRAD_NORM_Z,
    "dead_fraction": DEAD_FRACTION,
    "saturation_fraction": SATURATION_FRACTION,
    "gain": GAIN,
    "weight_norm": WEIGHT_NORM,
    "update_ratio": UPDATE_RATIO,
    "z_mean": Z_MEAN,
    "z_std": Z_STD,
    "loss": LOSS,
    "grad_ratio": GRAD_RATIO,
    "network_dead": NETWORK_DEAD,
}
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

# Seeds per block, measured again after the changes above (the pass alone, every probe, prev
# given, ms per recording): 2-4-4-1 relu, the question's 6 samples, S = 10^4: 256: 1.83, 512:
# 1.55, 1024: 1.60; 2-16-16-1 tanh, S = 1024: 256: 1.48, 512: 1.45, 1024: 2.68; 2-64-64-1 relu,
# S = 256: 128: 4.33, 256 (the whole ensemble): 3.72. Before them (S = 10^4, every probe, prev
# given, ms per recording, one core of an AVX-512 EPYC with other work running): 2-4-4-1 relu
# on the question's 4 samples: 64: 4.05,
# 128: 3.57, 256: 2.26, 512: 2.05, 1024: 2.00, 2048: 3.04 (numpy pass 8.3); 2-16-16-1 tanh: 64:
# 29.4, 128: 22.3, 256: 20.5, 512: 18.8, 1024: 19.9, 2048: 26.8 (numpy 47); 2-64-64-1 relu: 64:
# 348, 256: 331, 512: 317, 1024: 330 (numpy 653). Each pass over a row of seeds has a fixed cost,
# so long rows win until a pass's few rows leave the caches near the core; the whole block's
# scratch need not fit (at 2-16-16-1 it is 6 MB). A cap keeps large datasets' scratch bounded.
BLOCK_SEEDS = 512  # seeds per block ...
BLOCK_BYTES = 64 << 20  # ... halved while a block's scratch exceeds this


@intrinsic
def _prefetch(typingctx, ary, i, j):
    """Ask the cache for the line holding ``ary[i, j]`` (a hint: no effect on any value)."""
    if not (isinstance(ary, types.Array) and ary.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        arr = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, v, t, types.intp)
                for v, t in zip(args[1:], sig.args[1:], strict=True)]
        ptr = builder.bitcast(cgutils.get_item_pointer(context, builder, aryty, arr, inds),
                              cgutils.voidptr_t)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        # llvmlite names it for its LLVM: llvm.prefetch.p0 (opaque pointers) or .p0i8
        fn = builder.module.declare_intrinsic("llvm.prefetch", [cgutils.voidptr_t], fnty)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return types.void(ary, i, j), codegen


# ---- the pass ------------------------------------------------------------------------------------
# Per layer and seed, the pass keeps running sums in the parameters' dtype, ``ST[k, l, s]``, and
# counts, ``CT[k, l, s]``; each is added to in numpy's order (rows of ``seed_sum`` in index order,
# starting from 0) by three passes over each four (unit, sample) rows of the block's records,
# so that a layer's probes cost the same however many of them are selected.
(T_Z, T_Z_DEV, T_GZ, T_DZ, T_DB, T_DW, T_W, T_STEP) = range(8)  # sums of z, (z - mean)^2,
# act'(z), dz^2, db^2, dW^2, W^2, (W - W_prev)^2
N_SUMS = 8
C_DEAD, C_SATURATED = 0, 1  # dead units, saturated (unit, sample) pairs


@njit(cache=True, error_model="numpy")
def _cheap(code, z, zero, one, slope):
    """(fn(z), fn'(z)) for identity (0), relu (3) and leaky_relu (4), as
    ``kernel._forward_last`` computes them."""
    if code == 3:  # np.maximum(0, z): nan propagates; z > 0
        return (zero if z <= zero else z), (one if z > zero else zero)
    if code == 4:  # np.maximum(z, z * slope)
        y = z * slope
        return (z if (z >= y or z != z) else y), (one if z > zero else slope)
    return z, one


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_cheap(code, Z, A, GZ, r, W, p, X, q, sq, k, bo, n, c):
    """Z[r] = sum_j W[p+j] X[q + j sq] (j = 0..k-1, in order) + W[bo], A[r] = fn(z) and GZ[r] =
    fn'(z), the last four terms, the bias and fn in one pass, for the activations of
    ``_cheap``."""
    j = 0
    while k - j > 4:
        _dot4(Z, r, W, p + j, 1, X, q + j * sq, sq, j == 0, n)
        j += 4
    m, first = k - j, j == 0
    zero, one, nz, slope = c[K_ZERO], c[K_ONE], c[K_NZERO], c[K_SLOPE]
    p0, p1, p2, p3 = _rows4(p + j, 1, m)
    q0, q1, q2, q3 = _rows4(q + j * sq, sq, m)
    for s in range(n):
        z = _tail(first, m, Z[r, s], W[p0, s] * X[q0, s], W[p1, s] * X[q1, s],
                  W[p2, s] * X[q2, s], W[p3, s] * X[q3, s], nz)
        z = z + W[bo, s]
        Z[r, s] = z
        A[r, s], GZ[r, s] = _cheap(code, z, zero, one, slope)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(Wb, ONE, A, Z, GZ, shapes, w_off, b_off, uo, ui, acts, N, n, c):
    """z = sum_i W[o, i] a[i] (i = 0, 1, ...) + b into Z, then a = fn(z) into A and fn'(z)
    into GZ, every layer, unit and sample (rows unit * N + sample): in the pass that ends the
    sum for the activations of ``_cheap``, else in a second pass."""
    for l in range(shapes.shape[0]):
        n_out, n_in, code = shapes[l, 0], shapes[l, 1], acts[l]
        cheap = code == 0 or code == 3 or code == 4
        for o in range(n_out):
            for b in range(N):
                r = (uo[l] + o) * N + b
                if cheap:
                    _forward_cheap(code, Z, A, GZ, r, Wb, w_off[l] + o * n_in, A, ui[l] * N + b,
                                   N, n_in, b_off[l] + o, n, c)
                    continue
                _forward_unit(0, Z, GZ, r, Wb, w_off[l] + o * n_in, A, ui[l] * N + b, N, n_in,
                              b_off[l] + o, n, c)
                # fn(z * 1 + -0.0): both operations are exact, so this is fn(z)
                _forward_unit(code, A, GZ, r, ONE, 0, Z, r, 0, 1, 1, n, c)


@njit(cache=True, nogil=True, error_model="numpy")
def _output_error(A, GZ, DZ, YT, loss, row0, n_last, N, n, c):
    """loss = (0 + sum_(o, b) (a - y)^2) / N; dL/dz_out = ((a - y) * c2) * fn'(z), c2 = 2 / N
    (2 for one sample), as ``network.output_error``."""
    zero = c[K_ZERO]
    c2 = _like(2.0 if N == 1 else 2.0 / N, zero)
    for o in range(n_last):
        for b in range(N):
            r = (row0 + o) * N + b
            y = YT[o, b]
            first = o == 0 and b == 0
            for s in range(n):
                e = A[r, s] - y
                acc = (zero if first else loss[s]) + e * e
                loss[s] = acc
                DZ[r, s] = (e * c2) * GZ[r, s]
    for s in range(n):
        loss[s] = loss[s] / c[K_N]


@njit(cache=True, nogil=True, error_model="numpy")
def _weight_gradient_squares(ST, l, T, DZ, A, uo, ui, n_out, n_in, N, n, c):
    """ST[T_DW, l] = sum over (o, i) of dW^2, dW[o, i] = sum_b dz[o, b] a[i, b] (b in order,
    four terms per pass, the last eight in one; the einsum of ``network.outer_sum``), without
    storing dW."""
    zero, nz = c[K_ZERO], c[K_NZERO]
    for o in range(n_out):
        d0 = (uo + o) * N
        for i in range(n_in):
            a0 = (ui + i) * N
            j = 0
            while N - j > 8:
                _dot4(T, 0, DZ, d0 + j, 1, A, a0 + j, 1, j == 0, n)
                j += 4
            # the last 1..8 terms: k4 of them as _dot4 adds them (_tail with four terms is
            # _dot4's arithmetic), then the other m as _tail does
            k4 = 4 if N - j > 4 else 0
            m, first, start = N - j - k4, j == 0, o == 0 and i == 0
            e0, e1, e2, e3 = d0 + j, d0 + j + 1, d0 + j + 2, d0 + j + 3
            f0, f1, f2, f3 = a0 + j, a0 + j + 1, a0 + j + 2, a0 + j + 3
            p0, p1, p2, p3 = _rows4(d0 + j + k4, 1, m)
            q0, q1, q2, q3 = _rows4(a0 + j + k4, 1, m)
            if k4:
                for s in range(n):
                    g = _tail(first, 4, T[0, s], DZ[e0, s] * A[f0, s], DZ[e1, s] * A[f1, s],
                              DZ[e2, s] * A[f2, s], DZ[e3, s] * A[f3, s], nz)
                    g = _tail(False, m, g, DZ[p0, s] * A[q0, s], DZ[p1, s] * A[q1, s],
                              DZ[p2, s] * A[q2, s], DZ[p3, s] * A[q3, s], nz)
                    ST[T_DW, l, s] = (zero if start else ST[T_DW, l, s]) + g * g
            else:
                for s in range(n):
                    g = _tail(first, m, T[0, s], DZ[p0, s] * A[q0, s], DZ[p1, s] * A[q1, s],
                              DZ[p2, s] * A[q2, s], DZ[p3, s] * A[q3, s], nz)
                    ST[T_DW, l, s] = (zero if start else ST[T_DW, l, s]) + g * g


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(Wb, A, GZ, DZ, ST, T, shapes, w_off, uo, ui, N, n, c):
    """Each layer's sum of dW^2, from the output back, and dL/dz of the layer below through its
    weights: ``network.backward`` without the update."""
    for l in range(shapes.shape[0] - 1, -1, -1):
        n_out, n_in = shapes[l, 0], shapes[l, 1]
        _weight_gradient_squares(ST, l, T, DZ, A, uo[l], ui[l], n_out, n_in, N, n, c)
        if l > 0:
            for i in range(n_in):
                for b in range(N):
                    _backprop_unit(DZ, (ui[l] + i) * N + b, Wb, w_off[l] + i, n_in, DZ,
                                   uo[l] * N + b, N, n_out, GZ, n, c)


@njit(cache=True, error_model="numpy")
def _add4(first, m, acc, zero, t0, t1, t2, t3, nz):
    """(first ? 0 : acc) + t0 + t1 + t2 + t3, left to right, the terms j >= m replaced by
    nz = -0.0 (an exact identity of +): four rows of a sum added in one pass, in order."""
    v = (zero if first else acc) + t0
    v = v + (t1 if m > 1 else nz)
    v = v + (t2 if m > 2 else nz)
    return v + (t3 if m > 3 else nz)


@njit(cache=True, nogil=True, error_model="numpy")
def _unit_sums(ST, CT, l, Z, GZ, DZ, row0, n_out, N, thr, db, flag, dead, unit0, col, n, c):
    """Over the (unit, sample) rows of layer l (from row0 * N), in order: the sums of z,
    act'(z) and dz^2 and the saturated pairs (|act'(z)| < thr); per unit db = sum_b dz (its
    square summed) and dead = z <= 0 on every sample (counted, and into ``dead[unit0 + o,
    col:]`` when ``dead`` has rows). Up to four rows per pass (``_add4``), and three arrays at
    most per loop, so that LLVM's run-time overlap checks stay few enough for it to vectorize
    every loop."""
    zero, nz = c[K_ZERO], c[K_NZERO]
    sz, sg, sd, sb = ST[T_Z, l], ST[T_GZ, l], ST[T_DZ, l], ST[T_DB, l]
    n_dead, n_sat = CT[C_DEAD, l], CT[C_SATURATED, l]
    for o in range(n_out):
        for b in range(0, N, 4):
            m = min(4, N - b)
            r0, r1, r2, r3 = _rows4((row0 + o) * N + b, 1, m)
            first, fb = o == 0 and b == 0, b == 0
            for s in range(n):
                z0, z1, z2, z3 = Z[r0, s], Z[r1, s], Z[r2, s], Z[r3, s]
                sz[s] = _add4(first, m, sz[s], zero, z0, z1, z2, z3, nz)
                f = (z0 <= zero) & (z1 <= zero) & (z2 <= zero) & (z3 <= zero)  # rows clamped
                flag[s] = f & (fb or flag[s])
            for s in range(n):
                g0, g1, g2, g3 = GZ[r0, s], GZ[r1, s], GZ[r2, s], GZ[r3, s]
                sg[s] = _add4(first, m, sg[s], zero, g0, g1, g2, g3, nz)
                k = ((abs(g0) < thr) + (m > 1 and abs(g1) < thr) + (m > 2 and abs(g2) < thr)
                     + (m > 3 and abs(g3) < thr))
                n_sat[s] = (0 if first else n_sat[s]) + k
            for s in range(n):
                d0, d1, d2, d3 = DZ[r0, s], DZ[r1, s], DZ[r2, s], DZ[r3, s]
                sd[s] = _add4(first, m, sd[s], zero, d0 * d0, d1 * d1, d2 * d2, d3 * d3, nz)
                db[s] = _add4(fb, m, db[s], zero, d0, d1, d2, d3, nz)
        fo = o == 0
        for s in range(n):
            v = db[s]
            sb[s] = (zero if fo else sb[s]) + v * v
            n_dead[s] = (0 if fo else n_dead[s]) + flag[s]
        if dead.shape[0] > 0:
            out = dead[unit0 + o, col:col + n]
            for s in range(n):
                out[s] = flag[s]


@njit(cache=True, nogil=True, error_model="numpy")
def _weight_sums(ST, l, Wb, prev, lo, has_prev, w0, w1, n, c):
    """ST[T_W, l] = sum W^2 and ST[T_STEP, l] = sum (W - W_prev)^2 over weight rows w0..w1,
    W_prev read from ``prev`` at the block's columns (from ``lo``)."""
    zero = c[K_ZERO]
    sw, st = ST[T_W, l], ST[T_STEP, l]
    for p in range(w0, w1):
        first = p == w0
        if has_prev:
            old = prev[p, lo:lo + n]  # a 1-d view: its index needs no wraparound check
            for s in range(n):
                w = Wb[p, s]
                d = w - old[s]
                sw[s] = (zero if first else sw[s]) + w * w
                st[s] = (zero if first else st[s]) + d * d
        else:
            for s in range(n):
                w = Wb[p, s]
                sw[s] = (zero if first else sw[s]) + w * w


@njit(cache=True, nogil=True, error_model="numpy")
def _deviation_sums(ST, l, Z, r0, r1, count, mean, n, c):
    """ST[T_Z_DEV, l] = sum (z - mean)^2 over rows r0..r1 (four per pass, ``_add4``), mean =
    ST[T_Z, l] / count."""
    zero, nz = c[K_ZERO], c[K_NZERO]
    dev = ST[T_Z_DEV, l]
    for s in range(n):
        mean[s] = ST[T_Z, l, s] / count
    for r in range(r0, r1, 4):
        m = min(4, r1 - r)
        q0, q1, q2, q3 = _rows4(r, 1, m)
        first = r == r0
        for s in range(n):
            u = mean[s]
            d0, d1, d2, d3 = Z[q0, s] - u, Z[q1, s] - u, Z[q2, s] - u, Z[q3, s] - u
            dev[s] = _add4(first, m, dev[s], zero, d0 * d0, d1 * d1, d2 * d2, d3 * d3, nz)


@njit(cache=True, nogil=True, error_model="numpy")
def _probe_row(code, layer, ST, CT, A, loss, shapes, uo, has_prev, N, res, n, c):
    """res[s] (float64) = probe ``code`` of ``layer`` (0 = the network), computed in the dtype
    from the sums as ``diagnostics.probes`` computes it."""
    L = shapes.shape[0]
    l = max(layer - 1, 0)
    n_out = shapes[l, 0]
    count = _like(np.float64(n_out * N), c[K_ZERO])  # numpy: x / python int, in the dtype
    if code == LOSS:
        for s in range(n):
            res[s] = loss[s]
    elif code == GRAD_RATIO:  # ||dW_1|| / ||dW_last||
        for s in range(n):
            res[s] = np.sqrt(ST[T_DW, 0, s]) / np.sqrt(ST[T_DW, L - 1, s])
    elif code == NETWORK_DEAD:  # every output equal on all samples (nan is never equal)
        for s in range(n):
            res[s] = 1.0
        for o in range(shapes[L - 1, 0]):
            r = (uo[L - 1] + o) * N
            for b in range(N):
                for s in range(n):
                    res[s] = res[s] if A[r + b, s] == A[r, s] else 0.0
    elif code == GRAD_NORM_W or code == GRAD_NORM_B or code == GRAD_NORM_Z or code == WEIGHT_NORM:
        k = T_DW if code == GRAD_NORM_W else T_DB if code == GRAD_NORM_B else (
            T_DZ if code == GRAD_NORM_Z else T_W)
        for s in range(n):
            res[s] = np.sqrt(ST[k, l, s])
    elif code == UPDATE_RATIO:
        for s in range(n):
            v = np.sqrt(ST[T_STEP, l, s]) / np.sqrt(ST[T_W, l, s])
            res[s] = v if has_prev else np.nan
    elif code == GAIN or code == Z_MEAN:
        k = T_GZ if code == GAIN else T_Z
        for s in range(n):
            res[s] = ST[k, l, s] / count
    elif code == Z_STD:
        for s in range(n):
            res[s] = np.sqrt(ST[T_Z_DEV, l, s] / count)
    else:  # the shares: integer counts divided in float64, as numpy's bool sums
        k = C_DEAD if code == DEAD_FRACTION else C_SATURATED
        total = np.float64(n_out if code == DEAD_FRACTION else n_out * N)
        for s in range(n):
            res[s] = np.float64(CT[k, l, s]) / total


@njit(cache=True, nogil=True, error_model="numpy")
def probe_pass(theta, prev, has_prev, cols, values, dead, XT, YT, shapes, w_off, b_off, uo, ui,
               acts, sat, row_layer, row_code, c, block):
    """Every row's probe for every seed of ``theta (P, S)``, written to ``values[k, cols[s]]``.

    ``prev (P, S)`` the parameters one epoch earlier (read only if ``has_prev``); ``dead
    (units, S)`` (every layer's units, the first layer's first; no rows: not wanted) gets the
    per-unit dead masks; row k is probe ``row_code[k]`` (``PROBE_CODES``) of layer
    ``row_layer[k]`` (1-based; 0 = the network). ``XT (n_in, N)``, ``YT (n_out, N)`` the data;
    the layout arrays as ``kernel.Blocks``; ``sat`` each layer's saturation threshold; ``c`` the
    engine's constant vector. Seeds go in blocks of ``block``.
    """
    P, S = theta.shape
    L = shapes.shape[0]
    N = XT.shape[1]
    n_in0 = shapes[0, 1]
    rows = uo[L - 1] + shapes[L - 1, 0]
    Sb = max(1, min(block, S))
    dtype = theta.dtype
    one, nz = c[K_ONE], c[K_NZERO]
    line = 64 // theta.itemsize  # values per cache line
    backward, layers, std = False, dead.shape[0] > 0, False
    for k in range(row_code.shape[0]):
        code = row_code[k]
        backward |= code in (GRAD_NORM_W, GRAD_NORM_B, GRAD_NORM_Z, GRAD_RATIO)
        layers |= row_layer[k] > 0
        std |= code == Z_STD
    A = np.zeros((rows * N, Sb), dtype=dtype)
    Z = np.zeros((rows * N, Sb), dtype=dtype)
    GZ = np.zeros((rows * N, Sb), dtype=dtype)
    DZ = np.zeros((rows * N, Sb), dtype=dtype)
    Wb = np.zeros((P, Sb), dtype=dtype)
    ONE = np.zeros((2, Sb), dtype=dtype)
    T = np.zeros((1, Sb), dtype=dtype)
    ST = np.zeros((N_SUMS, L, Sb), dtype=dtype)
    CT = np.zeros((2, L, Sb), dtype=np.int64)
    loss = np.zeros(Sb, dtype=dtype)
    mean = np.zeros(Sb, dtype=dtype)
    db = np.zeros(Sb, dtype=dtype)
    res = np.zeros(Sb, dtype=np.float64)
    flag = np.zeros(Sb, dtype=np.bool_)
    for s in range(Sb):
        ONE[0, s] = one
        ONE[1, s] = nz
    for i in range(n_in0):  # the inputs, the same for every seed
        for b in range(N):
            x = XT[i, b]
            for s in range(Sb):
                A[i * N + b, s] = x
    for lo in range(0, S, Sb):
        n = min(Sb, S - lo)
        nxt = min(Sb, S - lo - n)  # the next block's seeds, fetched while this one runs
        for p in range(P):
            src = theta[p, lo:lo + n]
            for s in range(n):
                Wb[p, s] = src[s]
            for s in range(0, nxt, line):
                _prefetch(theta, p, lo + n + s)
            for s in range(0, nxt if has_prev else 0, line):
                _prefetch(prev, p, lo + n + s)
        _forward(Wb, ONE, A, Z, GZ, shapes, w_off, b_off, uo, ui, acts, N, n, c)
        _output_error(A, GZ, DZ, YT, loss, uo[L - 1], shapes[L - 1, 0], N, n, c)
        if backward:
            _backward(Wb, A, GZ, DZ, ST, T, shapes, w_off, uo, ui, N, n, c)
        if layers:
            for l in range(L):
                n_out, n_in = shapes[l, 0], shapes[l, 1]
                _unit_sums(ST, CT, l, Z, GZ, DZ, uo[l], n_out, N, sat[l], db, flag, dead,
                           uo[l] - n_in0, lo, n, c)
                _weight_sums(ST, l, Wb, prev, lo, has_prev, w_off[l], w_off[l] + n_out * n_in, n, c)
                if std:
                    count = _like(np.float64(n_out * N), one)
                    _deviation_sums(ST, l, Z, uo[l] * N, (uo[l] + n_out) * N, count, mean, n, c)
        c0 = cols[lo]
        run = cols[lo + n - 1] - c0 == n - 1  # consecutive columns (every seed alive): a copy
        for s in range(1, n if run else 0):
            run &= cols[lo + s] == c0 + s
        for k in range(row_code.shape[0]):
            _probe_row(row_code[k], row_layer[k], ST, CT, A, loss, shapes, uo, has_prev, N, res,
                       n, c)
            if run:
                out = values[k, c0:c0 + n]
                for s in range(n):
                    out[s] = res[s]
            else:
                for s in range(n):
                    values[k, cols[lo + s]] = res[s]


# ---- the Python side -----------------------------------------------------------------------------


def probe_block(layers: Sequence[int], n_samples: int, itemsize: int) -> int:
    """Seeds per block: ``BLOCK_SEEDS``, halved while the block's scratch (z, a, act'(z), dL/dz
    per unit and sample, parameters and previous parameters) exceeds ``BLOCK_BYTES``."""
    P = sum(o * i + o for i, o in zip(layers[:-1], layers[1:], strict=True))
    per_seed = (4 * sum(layers) * n_samples + 2 * P + 4 * len(layers) + 16) * itemsize
    block = BLOCK_SEEDS
    while block > 1 and block * per_seed > BLOCK_BYTES:
        block //= 2
    return block


class ProbePass:
    """The compiled full pass for one network and dataset, writing rows of probe values.

    Args:
        config: the run's configuration (layers, dtype, leaky slope).
        data: the dataset of the full pass.
        acts: each layer's activation (``Activation`` entries), the output layer last.
        rows: the (layer, probe name) rows to fill, as ``monitor.probe_rows`` gives them.
        block: seeds per block (default: ``probe_block``).
    """

    def __init__(self, config, data, acts: Sequence, rows: Iterable[tuple[int, str]],
                 block: int | None = None):
        dtype = np.dtype(config.dtype)
        layout = Layout(config.layers)
        if (data.X.shape[1], data.Y.shape[1]) != (config.layers[0], config.layers[-1]):
            raise ValueError(
                f"dataset {data.name!r} has {data.X.shape[1]} inputs and {data.Y.shape[1]} "
                f"outputs; the layers {config.layers} need {config.layers[0]} and "
                f"{config.layers[-1]}")
        self.dtype = dtype
        self.shapes = np.array(layout.shapes, dtype=np.int64)
        self.w_off = np.array([s.start for s in layout.w_slices], dtype=np.int64)
        self.b_off = np.array([s.start for s in layout.b_slices], dtype=np.int64)
        units = np.cumsum([0, *config.layers])
        self.uo = units[1:-1].astype(np.int64)  # first unit row of each layer's outputs
        self.ui = units[:-2].astype(np.int64)  # ... and of its inputs
        self.n_units = int(units[-1] - units[1])  # units of every layer, inputs excluded
        self.acts = np.array([ACT_CODES[a.name] for a in acts], dtype=np.int64)
        # saturated: |act'(z)| < level * max act', the threshold in the dtype (numpy casts the
        # Python float to the array's dtype before comparing)
        self.sat = np.array([SATURATION_LEVEL * a.max_grad for a in acts]).astype(dtype)
        rows = list(rows)
        self.row_layer = np.array([layer for layer, _ in rows], dtype=np.int64)
        self.row_code = np.array([PROBE_CODES[name] for _, name in rows], dtype=np.int64)
        N = data.n_samples
        self.c = constants(config, N, dtype)
        self.XT = np.ascontiguousarray(data.X.T, dtype=dtype)
        self.YT = np.ascontiguousarray(data.Y.T, dtype=dtype)
        self.block = probe_block(config.layers, N, dtype.itemsize) if block is None else block
        self.unit_rows = [slice(int(u - units[1]), int(u - units[1] + o))
                          for u, (o, _) in zip(self.uo, layout.shapes, strict=True)]

    @staticmethod
    def supports(acts: Sequence, dtype) -> bool:
        """Whether the compiled pass handles these activations and this parameter dtype."""
        return np.dtype(dtype) in DTYPES and all(a.name in ACT_CODES for a in acts)

    def __call__(self, theta: Array, prev: Array | None, cols: Array, values: Array,
                 masks: bool = False) -> list[Array] | None:
        """Fill ``values[k, cols]`` (``values (rows, S_all)`` float64, C-contiguous) for the
        seeds of ``theta (P, S)``; with ``masks``, return each layer's dead units (units, S)."""
        theta = np.ascontiguousarray(theta, dtype=self.dtype)
        has_prev = prev is not None
        prev = np.ascontiguousarray(prev, dtype=self.dtype) if has_prev else theta
        S = theta.shape[1]
        dead = np.zeros((self.n_units if masks else 0, S), dtype=np.bool_)
        probe_pass(theta, prev, has_prev, np.ascontiguousarray(cols, dtype=np.int64), values,
                   dead, self.XT, self.YT, self.shapes, self.w_off, self.b_off, self.uo,
                   self.ui, self.acts, self.sat, self.row_layer, self.row_code, self.c,
                   self.block)
        return [dead[rows] for rows in self.unit_rows] if masks else None
