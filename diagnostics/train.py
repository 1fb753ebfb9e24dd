"""The training loop: an ensemble of seeds, the question's quirks, divergence masking, outcomes.

Each epoch's loss is what the question's program prints: the mean over samples of the squared
error of each sample's prediction *at the moment that sample is trained on* (before its update).
Seeds whose loss or parameters become non-finite are marked diverged at that epoch, their
parameters frozen at the last finite values, and they leave the ensemble; the others are untouched,
because every operation is element-wise along the seed axis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .config import Config
from .data import Dataset, check_layers, question_data
from .initializers import draw_ensemble
from .network import (
    Layout,
    Workspace,
    backward,
    forward,
    full_gradient,
    output_error,
)
from .optimizers import get_optimizer, init_state
from .schedules import Schedule, schedule

Array = np.ndarray
OUTCOMES = ("converged", "not_converged", "stuck", "diverged")
SEGMENT_WORK = 400_000_000  # parameter-sample updates per kernel call (about 0.1-1 s of work)
ENGINES = ("compiled", "numpy", "matmul")
# "compiled" runs batches of >= MATMUL_MIN_BATCH samples through layers >= MATMUL_MIN_WIDTH wide
# by batched matmul. Measured (2-W-W-1 on 64 samples, 128 seeds, single-thread BLAS, medians of
# interleaved runs): matmul/kernel 1.1-1.9x at B = 16-32, 1.6-3.3x at B = 64, for W = 32 and 256,
# relu and tanh, and 1.7-1.9x for 2-16-16-1 and ten layers of 16 on 64 samples (studies/speed.py);
# at B = 4-8 the kernel wins or ties (0.5-1.4x), with one-sample steps it wins at every width,
# and for 2-4-4-1 always. Layers of 128 or more units take matmul from B = 4 on (measured, 256
# seeds, full batch, 40-100 epochs, after the matmul path updates each layer in place: W = 128,
# B = 4, 6, 8: 1.11x, 1.29x, 1.56x; W = 256, B = 2, 4, 6: 0.86x, 1.10x, 1.44x; W = 64, B = 6:
# 0.81x). With multithreaded BLAS on a busy machine, small batched products can be far slower
# (threads contend): set OMP_NUM_THREADS=1 (one process per core, as the executors).
MATMUL_MIN_WIDTH, MATMUL_MIN_BATCH = 16, 16
MATMUL_WIDE_WIDTH, MATMUL_WIDE_BATCH = 128, 4
STEP_BYTES = 1 << 20  # the matmul path's gradient-and-update chunk (about half an L2 cache)


class Monitor(Protocol):
    """What ``train`` calls at the epochs a monitor asks for (see ``diagnostics.monitor``)."""

    epochs: Array  # sorted epochs to observe; 0 = at initialisation

    def observe(self, epoch: int, theta: Array, alive: Array, prev: Array | None) -> None:
        """Read ``theta (n_params, S_alive)`` (``prev``: one epoch earlier, None at epoch 0).

        ``alive`` maps the columns to ensemble indices. The arrays are the monitor's: ``train``
        passes copies it does not write to afterwards, so a monitor may keep them (to observe
        on another thread, say) but must not modify them. A monitor may also have a method
        ``buffer(shape, dtype) -> Array``: the compiled engine then fills the arrays it returns
        (ones the monitor has finished with, say, whose pages are already mapped) instead of
        new ones.
        """


@dataclass
class Result:
    """Everything a run produced, per seed (arrays indexed like ``seeds``)."""

    config: Config
    data: Dataset
    seeds: Array  # (S,) the seeds
    outcome: Array  # (S,) one of OUTCOMES
    epochs_to_threshold: Array  # (S,) first epoch with loss <= threshold, -1 if never
    diverged_epoch: Array  # (S,) epoch at which loss or parameters became non-finite, -1 if never
    final_loss: Array  # (S,) loss of the last epoch trained (non-finite for diverged seeds)
    min_loss: Array  # (S,) smallest finite epoch loss reached
    max_abs_grad: Array  # (S,) max |full-data gradient| at the end (nan for diverged seeds)
    loss_epochs: Array  # (R,) epochs at which loss was recorded
    loss: Array  # (R, S) the epoch loss; nan after a seed diverged
    initial_params: list[tuple[Array, Array]]  # per layer (W (S, o, i), b (S, o))
    final_params: list[tuple[Array, Array]]  # same; diverged seeds: last finite values
    seconds: float = 0.0  # wall time of the training loop
    epochs_to: dict[float, Array] = field(default_factory=dict)  # extra thresholds -> (S,)
    epochs_run: int = 0  # epochs trained (< config.epochs only with until_settled)
    engine: str = "compiled"  # the engine that ran it (ENGINES; compiled may choose matmul)

    def counts(self) -> dict[str, int]:
        """Number of seeds per outcome, in OUTCOMES order."""
        return {name: int((self.outcome == name).sum()) for name in OUTCOMES}

    def median_epochs_to_threshold(self) -> float:
        """Median over all seeds of epochs to threshold (inf if half or more never got there)."""
        e = np.where(self.epochs_to_threshold >= 0, self.epochs_to_threshold, np.inf)
        return float(np.median(e)) if e.size else float("nan")

    def tidy(self, table: str = "outcomes") -> dict[str, Array]:
        """Long-format columns, ready for ``pandas.DataFrame(result.tidy(...))``.

        ``outcomes``: seed, outcome, epochs_to_threshold, final_loss, min_loss, diverged_epoch,
        and ``epochs_to_<t>`` for each extra threshold t.
        ``loss``: seed, epoch, loss (rows after a seed diverged are left out).
        """
        if table == "outcomes":
            return {
                "seed": self.seeds,
                "outcome": self.outcome,
                "epochs_to_threshold": self.epochs_to_threshold,
                "final_loss": self.final_loss,
                "min_loss": self.min_loss,
                "diverged_epoch": self.diverged_epoch,
            } | {f"epochs_to_{t:g}": e for t, e in self.epochs_to.items()}
        if table == "loss":
            R, S = self.loss.shape
            keep = ~np.isnan(self.loss)
            return {
                "seed": np.broadcast_to(self.seeds, (R, S))[keep],
                "epoch": np.broadcast_to(self.loss_epochs[:, None], (R, S))[keep],
                "loss": self.loss[keep],
            }
        raise ValueError(f"unknown table {table!r}: use outcomes or loss")


def as_seeds(seeds: int | Iterable[int]) -> Array:
    """An int n means seeds 0..n-1; otherwise the given seeds (non-negative, unique)."""
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seed count {seeds} is invalid: use a positive integer")
        return np.arange(int(seeds), dtype=np.int64)
    arr = np.asarray(list(seeds), dtype=np.int64)
    if arr.size == 0 or (arr < 0).any() or np.unique(arr).size != arr.size:
        raise ValueError("seeds must be a non-empty list of unique non-negative integers")
    return arr


def shuffle_order(seeds: Array, epoch: int, n: int) -> Array:
    """Per-seed permutation of n samples for one epoch, ``(n, S)``, from (seed, epoch) alone."""
    s = seeds.astype(np.uint64)[None, :]
    key = _splitmix64(_splitmix64(s) ^ np.uint64(epoch))
    keys = _splitmix64(key + np.arange(n, dtype=np.uint64)[:, None])
    return np.argsort(keys, axis=0, kind="stable")


def _splitmix64(x: Array) -> Array:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Engine:
    """The mutable training state of the seeds still alive."""

    def __init__(self, config: Config, data: Dataset, theta: Array, seeds: Array):
        self.config = config
        self.layout = Layout(config.layers)
        L = self.layout.n_layers
        self.acts = [config.hidden_activation] * (L - 1) + [config.out_activation]
        self.optimizer = get_optimizer(config.optimizer)
        self.hyper = config.hyper
        self.dtype = theta.dtype
        self.XT = np.ascontiguousarray(data.X.T, dtype=self.dtype)  # (n_in, N)
        self.YT = np.ascontiguousarray(data.Y.T, dtype=self.dtype)  # (n_out, N)
        self.N = data.n_samples
        self.samples = [  # one-sample views (n, 1, 1) of the data, in order
            (self.XT[:, n : n + 1, None], self.YT[:, n : n + 1, None]) for n in range(self.N)
        ]
        self.decay = config.bias_update == "decay"
        self.updated = config.backprop_weights == "updated"
        self.t = 0  # optimizer steps taken
        self.theta = theta
        self.state = init_state(self.optimizer, theta)
        self.seeds = seeds
        self.track = False  # until_settled: note which seeds any step changed this epoch
        self.moved = np.zeros(theta.shape[1], dtype=bool)
        self._bind()

    def frozen(self) -> Array:
        """Seeds no step of the last epoch changed (parameters and state; Adam also m = 0)."""
        if not self.track:
            return np.zeros(self.theta.shape[1], dtype=bool)
        still = ~self.moved
        if "m" in self.state:
            still &= (self.state["m"] == 0).all(axis=0)
        return still

    def _bind(self) -> None:
        """(Re)build views and workspaces for the current number of seeds."""
        S = self.theta.shape[1]
        self.g = np.empty_like(self.theta)
        self.tmp = np.empty_like(self.theta)
        self.params = self.layout.views(self.theta)
        self.grads = self.layout.views(self.g)
        self.layer_update = [  # per-layer (theta, g, state, tmp) views for per-layer steps
            (self.theta[sl], self.g[sl], {k: v[sl] for k, v in self.state.items()}, self.tmp[sl])
            for sl in self.layout.layer_slices
        ]
        self.loss = np.zeros(S, dtype=self.dtype)
        self.workspaces: dict[int, Workspace] = {}
        self.S = S

    def workspace(self, B: int) -> Workspace:
        if B not in self.workspaces:
            self.workspaces[B] = Workspace(self.layout, B, self.S, self.dtype)
        return self.workspaces[B]

    def copy_theta(self, out: Array | None = None) -> Array:
        """A copy of ``theta`` ``(n_params, S)``, into ``out`` (an earlier copy of the same
        shape) when given: a plain copy in the engine's own layout."""
        if out is None or out.shape != self.theta.shape:
            out = np.empty_like(self.theta)
        np.copyto(out, self.theta)
        return out

    def keep(self, mask: Array) -> None:
        """Drop the seeds where ``mask`` is False from the ensemble."""
        self.theta = np.ascontiguousarray(self.theta[:, mask])
        self.state = {k: np.ascontiguousarray(v[:, mask]) for k, v in self.state.items()}
        self.seeds = self.seeds[mask]
        self.moved = self.moved[mask]
        self._bind()

    def _quirks(self, l: int) -> None:
        """The question's quirks at layer l, between its gradient and the error passed back."""
        if self.decay:
            np.copyto(self.grads[l][1], self.params[l][1])  # the question's b -= lr * b
        if self.updated:  # update this layer, then back-propagate through the new weights
            theta, g, state, tmp = self.layer_update[l]
            self.optimizer.step(theta, g, state, self.t, self.hyper, tmp)

    def step(self, a0: Array, y: Array) -> None:
        """One update on one batch: forward, loss, then backward layer by layer."""
        params, grads = self.params, self.grads
        ws = self.workspace(a0.shape[1])
        if self.track:
            before = [self.theta.copy(), *(v.copy() for v in self.state.values())]
        forward(params, self.acts, a0, ws)
        output_error(ws, self.acts, y, self.loss)
        self.t += 1
        backward(params, self.acts, a0, ws, grads, bias=not self.decay,
                 after_layer=self._quirks if (self.decay or self.updated) else None)
        if not self.updated:
            self.optimizer.step(self.theta, self.g, self.state, self.t, self.hyper, self.tmp)
        if self.track:
            for old, new in zip(before, [self.theta, *self.state.values()], strict=True):
                self.moved |= (old != new).any(axis=0)

    def epoch(self, epoch: int) -> Array:
        """Train one epoch; return each seed's epoch loss ``(S,)``."""
        self.loss.fill(0.0)
        self.moved[:] = False
        batch, N, XT, YT = self.config.batch, self.N, self.XT, self.YT
        if batch == "online":
            for x, y in self.samples:
                self.step(x, y)
        elif batch == "full":
            self.step(XT[:, :, None], YT[:, :, None])
        else:
            size = 1 if batch == "shuffled" else int(batch)
            order = shuffle_order(self.seeds, epoch, N)  # (N, S)
            for start in range(0, N, size):
                idx = order[start : start + size]  # (B, S)
                self.step(XT[:, idx], YT[:, idx])
        return self.loss / N


class _MatmulEngine:
    """Wide layers: parameters seed-first ``(S, n_params)``, contractions by batched matmul.

    Same training loop, quirks and optimizers as ``_Engine`` (whose ``epoch`` it reuses); the
    layer products go to BLAS one seed's matrix at a time, which sums in blocks (and may fuse
    multiply-adds), so results agree with the other engines to round-off, not bit for bit.
    """

    epoch = _Engine.epoch

    def __init__(self, config: Config, data: Dataset, theta: Array, seeds: Array):
        self.config = config
        self.layout = Layout(config.layers)
        self.acts = _acts(config)
        self.optimizer = get_optimizer(config.optimizer)
        self.hyper = config.hyper
        dtype = theta.dtype
        self.XT = np.ascontiguousarray(data.X.T, dtype=dtype)  # (n_in, N)
        self.YT = np.ascontiguousarray(data.Y.T, dtype=dtype)  # (n_out, N)
        self.N = data.n_samples
        self.samples = [
            (self.XT[:, n : n + 1, None], self.YT[:, n : n + 1, None]) for n in range(self.N)
        ]
        self.decay = config.bias_update == "decay"
        self.updated = config.backprop_weights == "updated"
        self.t = 0
        self.T = np.ascontiguousarray(theta.T)  # (S, n_params)
        self.state = {name: np.zeros_like(self.T) for name in self.optimizer.state}
        self.seeds = seeds
        self.track = False
        self.moved = np.zeros(self.T.shape[0], dtype=bool)
        self._bind()

    @property
    def theta(self) -> Array:
        """``(n_params, S)`` view, the other engines' layout."""
        return self.T.T

    def _views(self, buf: Array) -> list[tuple[Array, Array]]:
        S = buf.shape[0]
        out = []
        for (n_out, n_in), ws, bs in zip(
            self.layout.shapes, self.layout.w_slices, self.layout.b_slices, strict=True
        ):
            W = np.lib.stride_tricks.as_strided(
                buf[:, ws], (S, n_out, n_in), (buf.strides[0], n_in * buf.itemsize, buf.itemsize)
            )
            out.append((W, buf[:, bs]))  # (S, o, i) and (S, o) views
        return out

    def _bind(self) -> None:
        self.g = np.zeros_like(self.T)
        self.tmp = np.empty_like(self.T)
        self.params = self._views(self.T)
        self.grads = self._views(self.g)
        self.layer_update = [
            (self.T[:, sl], self.g[:, sl], {k: v[:, sl] for k, v in self.state.items()},
             self.tmp[:, sl])
            for sl in self.layout.layer_slices
        ]
        self.loss = np.zeros(self.T.shape[0], dtype=self.T.dtype)
        # seeds per gradient-and-update chunk: a layer's gradient, parameters and scratch for
        # them within STEP_BYTES, so they stay in the cache between the two
        self.step_seeds = [max(1, STEP_BYTES // (3 * (sl.stop - sl.start) * self.T.itemsize))
                           for sl in self.layout.layer_slices]

    def copy_theta(self, out: Array | None = None) -> Array:
        """``_Engine.copy_theta``: the ``(n_params, S)`` view of a seed-first copy."""
        if out is None or out.shape != self.theta.shape or not out.T.flags.c_contiguous:
            out = np.empty_like(self.T).T
        np.copyto(out.T, self.T)
        return out

    def keep(self, mask: Array) -> None:
        self.T = np.ascontiguousarray(self.T[mask])
        self.state = {k: np.ascontiguousarray(v[mask]) for k, v in self.state.items()}
        self.seeds = self.seeds[mask]
        self.moved = self.moved[mask]
        self._bind()

    def frozen(self) -> Array:
        if not self.track:
            return np.zeros(self.T.shape[0], dtype=bool)
        still = ~self.moved
        if "m" in self.state:
            still &= (self.state["m"] == 0).all(axis=1)
        return still

    def step(self, a0: Array, y: Array) -> None:
        """One update: forward, loss, backward (batched matmul over seeds), update."""
        params, grads, acts, step = self.params, self.grads, self.acts, self.optimizer.step
        if self.track:
            before = [self.T.copy(), *(v.copy() for v in self.state.values())]
        a_in = np.moveaxis(a0, -1, 0)  # (S or 1, n_in, B)
        zs, outs = [], []
        a = a_in
        for (W, b), act in zip(params, acts, strict=True):
            z = np.matmul(W, a)  # (S, o, B)
            z += b[:, :, None]
            a = act.fn(z)
            zs.append(z)
            outs.append(a)
        err = a - np.moveaxis(y, -1, 0)
        self.loss += (err * err).sum(axis=(1, 2))
        B = err.shape[2]
        dz = err * (2.0 if B == 1 else 2.0 / B)
        dz *= acts[-1].grad(zs[-1], outs[-1])
        self.t += 1
        for l in range(len(params) - 1, -1, -1):
            a_prev = a_in if l == 0 else outs[l - 1]
            W, b = params[l]
            dW, db = grads[l]
            back = None
            if l > 0 and not self.updated:  # through the weights before this step's update
                back = np.matmul(np.swapaxes(W, 1, 2), dz)
            # the gradient and the update of this layer, a few seeds at a time, so that the
            # gradient is read back from the cache (the optimizers are elementwise: updating
            # layer by layer and seed by seed is the whole-array update, value for value)
            theta, g, state, tmp = self.layer_update[l]
            step_seeds = self.step_seeds[l]
            for lo in range(0, dz.shape[0], step_seeds):
                c = slice(lo, lo + step_seeds)
                a_c = a_prev if a_prev.shape[0] == 1 else a_prev[c]
                np.matmul(dz[c], np.swapaxes(a_c, 1, 2), out=dW[c])
                if self.decay:
                    np.copyto(db[c], b[c])
                else:
                    np.sum(dz[c], axis=2, out=db[c])
                step(theta[c], g[c], {k: v[c] for k, v in state.items()}, self.t, self.hyper,
                     tmp[c])
            if l > 0:
                if back is None:  # the faithful quirk: through the updated weights
                    back = np.matmul(np.swapaxes(W, 1, 2), dz)
                dz = back
                dz *= acts[l - 1].grad(zs[l - 1], outs[l - 1])
        if self.track:
            for old, new in zip(before, [self.T, *self.state.values()], strict=True):
                self.moved |= (old != new).any(axis=1)


@dataclass
class _Run:
    """What a training loop hands back to ``train``: per-seed arrays indexed like ``seeds``."""

    loss_hist: Array  # (R, S)
    first_below: Array  # (levels, S)
    diverged: Array  # (S,)
    final_loss: Array  # (S,)
    min_loss: Array  # (S,)
    final_theta: Array  # (n_params, S)
    alive: Array  # ensemble indices of the seeds that did not diverge, ascending
    epochs_run: int


def _acts(config: Config) -> list:
    L = len(config.layers) - 1
    return [config.hidden_activation] * (L - 1) + [config.out_activation]


def _can_freeze(config: Config) -> bool:
    """A step-by-step fixed point over one epoch is one forever (see ``train``'s until_settled):
    every batch that can occur was seen, i.e. not minibatches of shuffled samples."""
    return config.batch in ("online", "shuffled", "full", 1)


def _numpy_loop(config, data, theta0, seeds, rec, levels, watch, monitor, progress,
                until_settled, matmul=False) -> _Run:
    """The reference loop: the whole ensemble one epoch at a time with ``_Engine``."""
    S, E = seeds.size, config.epochs
    rec_index = {int(e): r for r, e in enumerate(rec)}
    loss_hist = np.full((rec.size, S), np.nan)
    first_below = np.full((len(levels), S), -1, dtype=np.int64)  # first epoch at or below each
    thr = levels.index(config.threshold)
    diverged = np.full(S, -1, dtype=np.int64)
    final_loss = np.full(S, np.nan)
    min_loss = np.full(S, np.inf)
    final_theta = np.empty_like(theta0)
    alive = np.arange(S)
    engine = (_MatmulEngine if matmul else _Engine)(config, data, theta0.copy(), seeds)
    engine.track = until_settled and _can_freeze(config)
    prev = None  # the parameters before this epoch (a copy in the engine's own layout)
    every = max(1, E // 500)
    epochs_run = 0
    if 0 in watch:
        monitor.observe(0, engine.theta.copy(), alive, None)
    for epoch in range(1, E + 1):
        prev = engine.copy_theta(prev)
        loss = engine.epoch(epoch)
        epochs_run = epoch
        r = rec_index.get(epoch)
        if r is not None:
            loss_hist[r, alive] = loss
        min_loss[alive] = np.fmin(min_loss[alive], loss)
        for j, level in enumerate(levels):
            reached = (loss <= level) & (first_below[j, alive] < 0)
            if reached.any():
                first_below[j, alive[reached]] = epoch
        final_loss[alive] = loss
        bad = ~(np.isfinite(loss) & np.isfinite(engine.theta.sum(axis=0)))
        if bad.any():
            gone = alive[bad]
            diverged[gone] = epoch
            final_theta[:, gone] = prev[:, bad]
            alive = alive[~bad]
            engine.keep(~bad)
            prev = prev[:, ~bad]  # for the monitor; the next epoch copies into a new one
            if alive.size == 0:
                break
        if epoch in watch:
            monitor.observe(epoch, engine.theta.copy(), alive, prev.copy())
        if progress is not None and (epoch % every == 0 or epoch == E):
            progress(epoch)
        if until_settled and ((first_below[thr, alive] >= 0) | engine.frozen()).all():
            break
    final_theta[:, alive] = engine.theta
    return _Run(loss_hist, first_below, diverged, final_loss, min_loss, final_theta, alive,
                epochs_run)


def _compiled_loop(config, data, theta0, seeds, rec, levels, watch, monitor, progress,
                   until_settled) -> _Run:
    """The numba kernel in segments: it returns to Python only where the monitor observes
    (and now and then for ``progress``); with ``until_settled`` each block stops once settled
    and the others are then brought to the last block's epoch."""
    from .kernel import Blocks

    E = config.epochs
    blocks = Blocks(config, data, theta0, seeds, rec, levels, E, block=_BLOCK_OVERRIDE)
    stops = {e for e in watch if 1 <= e <= E} | {E}
    if progress is not None:
        chunk = max(1, E // 100)
        stops |= set(range(chunk, E, chunk))
    # bounded work per kernel call, so that Ctrl-C and SIGTERM are answered within about a second
    work = seeds.size * Layout(config.layers).n_params * data.n_samples
    chunk = max(1, SEGMENT_WORK // max(work, 1))
    stops |= set(range(chunk, E, chunk))
    buffer = getattr(monitor, "buffer", None) or (lambda shape, dtype: np.empty(shape, dtype))
    if monitor is not None and 0 in watch:
        theta, alive = blocks.live(buffer)
        monitor.observe(0, theta, alive, None)
    epochs_run = E

    def advance(e: int, snapshot: Array | None = None) -> bool:
        """Bring every block to epoch e; with until_settled, True once all have settled (and
        then every block is at the epoch where the last one settled: ``epochs_run``).
        ``snapshot``: filled by whichever call runs a block's epoch e (see ``Blocks.run``)."""
        nonlocal epochs_run
        blocks.run(e, stop_settled=until_settled, snapshot=snapshot)
        if not until_settled:
            return False
        if (blocks.settled >= 0).all():
            epochs_run = int(blocks.epoch.max())
            blocks.run(epochs_run, snapshot=snapshot)  # blocks settled earlier catch up
            return True
        blocks.run(e, snapshot=snapshot)  # blocks that settled within this segment catch up
        return False

    for stop in sorted(stops):
        # the monitor also reads the parameters of the epoch before: the kernel copies them
        # out as it starts epoch `stop`, by ensemble index
        snap = buffer(theta0.shape, theta0.dtype) if stop in watch and stop > 1 else None
        settled = advance(stop, snap)
        if stop in watch and epochs_run >= stop:
            theta, alive = blocks.live(buffer)
            if alive.size:
                if stop == 1:
                    prev = theta0[:, alive]
                else:  # seeds that diverged in this epoch are no longer among the alive
                    prev = snap if alive.size == snap.shape[1] else snap[:, alive]
                monitor.observe(stop, theta, alive, prev)
        if progress is not None:
            progress(min(stop, epochs_run))
        if settled or (blocks.alive == 0).all():
            break
    final_theta = blocks.final()
    alive = np.flatnonzero(blocks.diverged < 0)
    if (blocks.alive == 0).all():
        epochs_run = int(blocks.diverged.max())
    return _Run(blocks.loss_hist, blocks.first_below, blocks.diverged, blocks.final_loss,
                blocks.min_loss, final_theta, alive, epochs_run)


def _wide(config: Config, data: Dataset) -> bool:
    """Whether the matmul path beats the kernel (see MATMUL_MIN_WIDTH)."""
    batch = config.batch
    B = data.n_samples if batch == "full" else 1 if batch in ("online", "shuffled") else batch
    B, width = min(B, data.n_samples), max(config.layers)
    return ((B >= MATMUL_MIN_BATCH and width >= MATMUL_MIN_WIDTH)
            or (B >= MATMUL_WIDE_BATCH and width >= MATMUL_WIDE_WIDTH))


def _matmul_loop(*args) -> _Run:
    return _numpy_loop(*args, matmul=True)


_BLOCK_OVERRIDE: int | None = None  # seeds per kernel block (tests set it to split ensembles)


LOSS_HISTORY_LIMIT = 25_000_000  # values (200 MB) train keeps by default (loss_epochs=None)


def loss_history_epochs(loss_epochs, seeds: int, epochs: int) -> Array:
    """The epochs ``train`` keeps the loss at (see its ``loss_epochs``), checked."""
    if loss_epochs is None:
        if seeds * epochs > LOSS_HISTORY_LIMIT:
            raise ValueError(
                f"keeping the loss of every epoch would take {seeds:,} seeds x {epochs:,} epochs "
                f"= {seeds * epochs * 8 / 1e9:.1f} GB, above the default limit of "
                f"{LOSS_HISTORY_LIMIT * 8 / 1e6:.0f} MB: pass loss_epochs, e.g. 'log:500' or "
                "the epochs you need"
            )
        return np.arange(1, epochs + 1, dtype=np.int64)
    if isinstance(loss_epochs, (str, Schedule)):
        return schedule(loss_epochs, epochs, first=1)
    rec = np.asarray(loss_epochs, dtype=np.int64)
    if rec.size and (rec.min() < 1 or rec.max() > epochs):
        raise ValueError(f"loss epochs must lie in 1..{epochs}")
    return rec


def train(
    config: Config,
    data: Dataset | None = None,
    seeds: int | Iterable[int] = 1,
    *,
    loss_epochs: Sequence[int] | Array | str | Schedule | None = None,
    monitor: Monitor | None = None,
    progress: Callable[[int], None] | None = None,
    initial: Array | None = None,
    thresholds: Sequence[float] = (),
    engine: str = "compiled",
    until_settled: bool = False,
) -> Result:
    """Train one network per seed, all at once.

    Args:
        config: the run's configuration.
        data: the dataset (default: the question's six pairs).
        seeds: a count n (seeds 0..n-1) or the seeds themselves.
        loss_epochs: epochs (1..epochs) at which to keep the loss, or a schedule
            (``"log:500"``, ``Schedule.every(10)``; see ``diagnostics.schedules``). The default,
            None, keeps every epoch when that history holds at most ``LOSS_HISTORY_LIMIT``
            values (seeds x epochs, 8 bytes each: 200 MB) and otherwise raises a ValueError
            naming its size, so that a default never allocates gigabytes silently; pass a
            schedule (or the explicit epochs) to keep more.
        monitor: called at ``monitor.epochs`` with the parameters (see ``diagnostics.monitor``).
        progress: called now and then with the number of epochs done (e.g. to move a bar).
        initial: optional initial parameters ``(n_params, S)`` instead of drawing them.
        thresholds: extra loss thresholds whose first epochs are recorded in ``epochs_to``.
        engine: ``compiled`` (the numba kernel, ``diagnostics.kernel``; or the ``matmul``
            path for batches of wide layers, where that is faster), ``numpy`` (the readable
            reference in this module) or ``matmul`` (seed-first layout, batched matmul). The
            kernel agrees with numpy bit for bit where no transcendental function is involved
            and to round-off otherwise; matmul reorders sums, so it agrees to round-off.
        until_settled: stop after the first epoch at which every seed is settled: converged,
            diverged, or frozen — a whole epoch in which no step changed any parameter or
            optimizer-state value, in a batching mode where that means no later step can
            (online, shuffled or full; for Adam also m = 0). A dead-ReLU seed is frozen; a
            seed with a zero gradient whose biases still decay (``bias_update=decay``) or
            whose momentum still moves it is not, since it can still change (and revive).
            Unrun epochs' losses stay nan; ``Result.epochs_run`` says how many ran.

    Returns:
        A ``Result`` with per-seed outcomes, loss history and initial/final parameters.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is invalid: use one of {', '.join(ENGINES)}")
    data = question_data() if data is None else data
    check_layers(data, config.layers)
    seeds = as_seeds(seeds)
    layout = Layout(config.layers)
    dtype = np.dtype(config.dtype)
    if initial is None:
        draws = draw_ensemble(
            config.layers, seeds, config.init, config.bias_init, config.bias_scale, config.rng
        )
        theta0 = layout.pack(draws, dtype)
    else:
        theta0 = np.array(initial, dtype=dtype, copy=True)
        if theta0.shape != (layout.n_params, seeds.size):
            raise ValueError(
                f"initial parameters have shape {theta0.shape}, expected "
                f"{(layout.n_params, seeds.size)}"
            )
    S, E = seeds.size, config.epochs
    rec = loss_history_epochs(loss_epochs, S, E)
    levels = sorted({config.threshold, *map(float, thresholds)})  # loss levels to time
    watch = set() if monitor is None else {int(e) for e in monitor.epochs}
    if engine == "compiled" and _wide(config, data):
        engine = "matmul"
    loop = {"compiled": _compiled_loop, "numpy": _numpy_loop, "matmul": _matmul_loop}[engine]
    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        run = loop(config, data, theta0, seeds, rec, levels, watch, monitor, progress,
                   until_settled)
        seconds = time.perf_counter() - started
        max_abs_grad = np.full(S, np.nan)
        if run.alive.size:
            live = np.ascontiguousarray(run.final_theta[:, run.alive])
            _, grad, _ = full_gradient(layout, live, _acts(config), data.X, data.Y)
            max_abs_grad[run.alive] = np.abs(grad).max(axis=0)
    first_below, diverged = run.first_below, run.diverged
    to_threshold = first_below[levels.index(config.threshold)]
    outcome = np.full(S, "not_converged", dtype=object)
    outcome[max_abs_grad <= config.stuck_tol] = "stuck"
    outcome[to_threshold >= 0] = "converged"
    outcome[diverged >= 0] = "diverged"
    return Result(
        config=config,
        data=data,
        seeds=seeds,
        outcome=outcome.astype(str),
        epochs_to_threshold=to_threshold,
        diverged_epoch=diverged,
        final_loss=run.final_loss,
        min_loss=np.where(np.isinf(run.min_loss), np.nan, run.min_loss),
        max_abs_grad=max_abs_grad,
        loss_epochs=rec,
        loss=run.loss_hist,
        initial_params=layout.unpack(theta0),
        final_params=layout.unpack(run.final_theta),
        seconds=seconds,
        epochs_to={t: first_below[levels.index(t)] for t in sorted(set(map(float, thresholds)))},
        epochs_run=run.epochs_run,
        engine=engine,
    )
