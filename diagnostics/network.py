"""The ensemble network: S independent multilayer perceptrons in one vectorized computation.

Layout (private to the engine, chosen by measurement): all parameters of all seeds live in one
flat buffer ``theta`` of shape ``(n_params, S)`` with the seed axis last and contiguous; layer l's
weights are the view ``W (n_out, n_in, S)`` and its bias ``b (n_out, S)``. Activations carry a
batch axis: ``z, a (n_units, B, S)``; inputs shared by all seeds are ``(n_in, B, 1)``.

Forward and backward are two mirrored loops over the layers. Every operation is element-wise
along the seed axis (contractions are written as loops of multiply-adds over the small unit axes),
so seed k's numbers do not depend on which other seeds share the ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .activations import Activation

Array = np.ndarray
PRODUCT_MAX_SEEDS = 4096  # one-sample contractions use a product buffer up to this many seeds


class Layout:
    """Where each layer's W and b live in the flat ``(n_params, S)`` buffer."""

    def __init__(self, layers: Sequence[int]):
        self.layers = tuple(int(n) for n in layers)
        self.shapes = list(zip(self.layers[1:], self.layers[:-1], strict=True))  # (n_out, n_in)
        self.w_slices, self.b_slices, self.layer_slices = [], [], []
        offset = 0
        for n_out, n_in in self.shapes:
            start = offset
            self.w_slices.append(slice(offset, offset + n_out * n_in))
            offset += n_out * n_in
            self.b_slices.append(slice(offset, offset + n_out))
            offset += n_out
            self.layer_slices.append(slice(start, offset))
        self.n_params = offset

    @property
    def n_layers(self) -> int:
        return len(self.shapes)

    def views(self, buf: Array) -> list[tuple[Array, Array]]:
        """Per-layer ``(W (n_out, n_in, S), b (n_out, S))`` views into ``buf (n_params, S)``."""
        S = buf.shape[1]
        return [
            (buf[ws].reshape(n_out, n_in, S), buf[bs])
            for (n_out, n_in), ws, bs in zip(self.shapes, self.w_slices, self.b_slices, strict=True)
        ]

    def pack(self, per_seed: Sequence[Sequence[tuple[Array, Array]]], dtype) -> Array:
        """Flat buffer ``(n_params, S)`` from a list (over seeds) of ``[(W, b), ...]``."""
        buf = np.empty((self.n_params, len(per_seed)), dtype=dtype)
        for s, params in enumerate(per_seed):
            for (w, b), ws, bs in zip(params, self.w_slices, self.b_slices, strict=True):
                buf[ws, s] = w.ravel()
                buf[bs, s] = b
        return buf

    def unpack(self, buf: Array) -> list[tuple[Array, Array]]:
        """Seed-first copies ``[(W (S, n_out, n_in), b (S, n_out)), ...]`` of ``buf``."""
        return [
            (np.ascontiguousarray(np.moveaxis(w, -1, 0)), np.ascontiguousarray(b.T))
            for w, b in self.views(buf)
        ]


class Workspace:
    """Preallocated per-layer records for a batch of B samples and S seeds."""

    def __init__(self, layout: Layout, B: int, S: int, dtype):
        units = layout.layers[1:]
        self.B, self.S = B, S
        self.z = [np.empty((n, B, S), dtype) for n in units]  # pre-activations
        self.a = [np.empty((n, B, S), dtype) for n in units]  # activations
        self.gz = [np.empty((n, B, S), dtype) for n in units]  # act'(z)
        self.dz = [np.empty((n, B, S), dtype) for n in units]  # dL/dz
        self.tmp = np.empty((max(layout.layers), B, S), dtype)
        self.err = np.empty((units[-1], B, S), dtype)  # prediction - target
        # (n_out, n_in, S) products for one-sample contractions as multiply + sum: 2 calls
        # instead of 2n - 1, measured faster up to a few thousand seeds (slower beyond); the
        # same order of summation either way. With one seed numpy may sum pairwise: loops.
        self.prod: list[Array | None] = [None] * layout.n_layers
        if B == 1 and 1 < S <= PRODUCT_MAX_SEEDS:
            flat = np.empty(max(o * i for o, i in layout.shapes) * S, dtype)
            self.prod = [flat[: o * i * S].reshape(o, i, S) for o, i in layout.shapes]


def contract(W: Array, a: Array, out: Array, tmp: Array, prod: Array | None = None) -> Array:
    """out[o, b, s] = sum_i W[o, i, s] * a[i, b, s], summed in order i = 0, 1, ..."""
    n_out, n_in = W.shape[:2]
    if prod is not None:  # one sample, S > 1: numpy reduces axis 1 in order i = 0, 1, ...
        np.multiply(W, a[None, :, 0, :], out=prod)
        np.sum(prod, axis=1, out=out[:, 0, :])
        return out
    np.multiply(W[:, 0, None, :], a[0], out=out)
    t = tmp[:n_out]
    for i in range(1, n_in):
        np.multiply(W[:, i, None, :], a[i], out=t)
        out += t
    return out


def contract_transposed(
    W: Array, dz: Array, out: Array, tmp: Array, prod: Array | None = None
) -> Array:
    """out[i, b, s] = sum_o W[o, i, s] * dz[o, b, s] (back-propagation through W)."""
    n_out, n_in = W.shape[:2]
    if prod is not None:
        np.multiply(W, dz[:, None, 0, :], out=prod)
        np.sum(prod, axis=0, out=out[:, 0, :])
        return out
    np.multiply(W[0, :, None, :], dz[0], out=out)
    t = tmp[:n_in]
    for o in range(1, n_out):
        np.multiply(W[o, :, None, :], dz[o], out=t)
        out += t
    return out


def _two_seeds(x: Array) -> Array:
    """x itself, or with its single seed column repeated once.

    numpy sums along a non-seed axis in one fixed order as long as the seed axis is the
    innermost and longer than 1; with one seed it may switch to pairwise summation. Reductions
    therefore never run on one seed, so a seed's numbers do not depend on the ensemble's size.
    """
    return np.repeat(x, 2, axis=-1) if x.shape[-1] == 1 else x


def seed_sum(x: Array) -> Array:
    """Sum over every axis but the last (seeds), in an order that does not depend on S."""
    S = x.shape[-1]
    return _two_seeds(x.reshape(-1, S)).sum(axis=0)[:S]


def outer_sum(dz: Array, a: Array, out: Array) -> Array:
    """out[o, i, s] = sum_b dz[o, b, s] * a[i, b, s] (the weight gradient)."""
    if dz.shape[1] == 1:
        return np.multiply(dz[:, None, 0, :], a[None, :, 0, :], out=out)
    S = dz.shape[2]
    a = np.broadcast_to(a, (a.shape[0], dz.shape[1], S))
    if S == 1:
        np.copyto(out, np.einsum("obs,ibs->ois", _two_seeds(dz), _two_seeds(a))[..., :1])
        return out
    return np.einsum("obs,ibs->ois", dz, a, out=out)


def batch_sum(dz: Array, out: Array) -> Array:
    """out[o, s] = sum_b dz[o, b, s] (the bias gradient)."""
    if dz.shape[1] == 1:
        np.copyto(out, dz[:, 0, :])
    elif dz.shape[2] == 1:
        np.copyto(out, _two_seeds(dz).sum(axis=1)[:, :1])
    else:
        np.sum(dz, axis=1, out=out)
    return out


def forward(
    params: list[tuple[Array, Array]], acts: Sequence[Activation], a0: Array, ws: Workspace
) -> Array:
    """Fill ``ws.z`` and ``ws.a`` layer by layer; return the output ``(n_out, B, S)``."""
    a = a0
    for l, ((W, b), act) in enumerate(zip(params, acts, strict=True)):
        z = contract(W, a, ws.z[l], ws.tmp, ws.prod[l])
        z += b[:, None, :]
        a = act.fn(z, out=ws.a[l])
    return a


def output_error(ws: Workspace, acts: Sequence[Activation], y: Array, loss: Array) -> None:
    """Add each seed's summed squared error to ``loss (S,)``; set ``ws.dz[-1]`` = dL/dz_out.

    The loss of a batch is the mean over its samples of sum_o (y_hat - y)^2, so
    dL/dy_hat = 2 (y_hat - y) / B, times act'(z) at the output.
    """
    err = np.subtract(ws.a[-1], y, out=ws.err)  # (n_out, B, S)
    sq = np.multiply(err, err, out=ws.tmp[: err.shape[0]])
    loss += sq[0, 0] if sq.shape[0] * sq.shape[1] == 1 else seed_sum(sq)
    B = err.shape[1]
    dz = np.multiply(err, 2.0 if B == 1 else 2.0 / B, out=ws.dz[-1])
    dz *= acts[-1].grad(ws.z[-1], ws.a[-1], out=ws.gz[-1])


def backprop_layer(
    l: int,
    params: list[tuple[Array, Array]],
    acts: Sequence[Activation],
    ws: Workspace,
) -> None:
    """Set ``ws.dz[l - 1]`` = (W_l^T dz_l) * act'(z_{l-1}), with W_l as it is now."""
    W = params[l][0]
    dz_prev = contract_transposed(W, ws.dz[l], ws.dz[l - 1], ws.tmp, ws.prod[l])
    dz_prev *= acts[l - 1].grad(ws.z[l - 1], ws.a[l - 1], out=ws.gz[l - 1])


def layer_gradient(
    l: int, grads: list[tuple[Array, Array]], a0: Array, ws: Workspace, bias: bool = True
) -> None:
    """Set layer l's ``(dW, db)`` views in ``grads`` from ``ws.dz[l]`` and its input."""
    a_prev = a0 if l == 0 else ws.a[l - 1]
    dW, db = grads[l]
    outer_sum(ws.dz[l], a_prev, dW)
    if bias:
        batch_sum(ws.dz[l], db)


def backward(
    params: list[tuple[Array, Array]],
    acts: Sequence[Activation],
    a0: Array,
    ws: Workspace,
    grads: list[tuple[Array, Array]],
    *,
    bias: bool = True,
    after_layer: Callable[[int], None] | None = None,
) -> None:
    """Walk the layers from the output back: each layer's ``(dW, db)`` into ``grads``, then
    ``after_layer(l)`` (the training loop updates there), then the error into layer l - 1
    through W_l as it is at that moment. Needs ``ws.dz[-1]`` set (``output_error``)."""
    for l in range(len(params) - 1, -1, -1):
        layer_gradient(l, grads, a0, ws, bias=bias)
        if after_layer is not None:
            after_layer(l)
        if l > 0:
            backprop_layer(l, params, acts, ws)


def full_gradient(
    layout: Layout,
    theta: Array,
    acts: Sequence[Activation],
    X: Array,
    Y: Array,
    ws: Workspace | None = None,
) -> tuple[Array, Array, Workspace]:
    """Loss and gradient over the whole dataset by standard back-propagation.

    L = (1/N) sum_n sum_o (y_hat_n - y_n)^2, with the current weights and the true bias gradient.

    Args:
        layout: the parameter layout.
        theta: parameters ``(n_params, S)``.
        acts: the activation of each layer.
        X: inputs ``(N, n_in)``; Y: targets ``(N, n_out)``.
        ws: a workspace for B = N to reuse (a new one is made when None).

    Returns:
        ``(loss (S,), grad (n_params, S), ws)``; ``ws`` holds z, a, act'(z) and dL/dz per layer.
    """
    S = theta.shape[1]
    N = X.shape[0]
    if ws is None or ws.B != N or ws.S != S:
        ws = Workspace(layout, N, S, theta.dtype)
    a0 = np.ascontiguousarray(X.T, dtype=theta.dtype)[:, :, None]
    y = np.ascontiguousarray(Y.T, dtype=theta.dtype)[:, :, None]
    params = layout.views(theta)
    grad = np.empty_like(theta)
    grads = layout.views(grad)
    loss = np.zeros(S, dtype=theta.dtype)
    forward(params, acts, a0, ws)
    output_error(ws, acts, y, loss)
    loss /= N
    backward(params, acts, a0, ws, grads)
    return loss, grad, ws
