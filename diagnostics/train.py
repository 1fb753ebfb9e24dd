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
    backprop_layer,
    forward,
    full_gradient,
    layer_gradient,
    output_error,
)
from .optimizers import get_optimizer, init_state

Array = np.ndarray
OUTCOMES = ("converged", "not_converged", "stuck", "diverged")


class Monitor(Protocol):
    """What ``train`` calls at the epochs a monitor asks for (see ``diagnostics.monitor``)."""

    epochs: Array  # sorted epochs to observe; 0 = at initialisation

    def observe(self, epoch: int, theta: Array, alive: Array, prev: Array | None) -> None:
        """Read ``theta (n_params, S_alive)`` (``prev``: one epoch earlier, None at epoch 0).

        ``alive`` maps the columns to ensemble indices. Must not modify its arguments.
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
        self._bind()

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

    def keep(self, mask: Array) -> None:
        """Drop the seeds where ``mask`` is False from the ensemble."""
        self.theta = np.ascontiguousarray(self.theta[:, mask])
        self.state = {k: np.ascontiguousarray(v[:, mask]) for k, v in self.state.items()}
        self.seeds = self.seeds[mask]
        self._bind()

    def step(self, a0: Array, y: Array) -> None:
        """One update on one batch: forward, loss, then backward layer by layer."""
        params, grads, step = self.params, self.grads, self.optimizer.step
        ws = self.workspace(a0.shape[1])
        forward(params, self.acts, a0, ws)
        output_error(ws, self.acts, y, self.loss)
        self.t += 1
        for l in range(self.layout.n_layers - 1, -1, -1):
            layer_gradient(l, grads, a0, ws, bias=not self.decay)
            if self.decay:
                np.copyto(grads[l][1], params[l][1])  # the question's b -= lr * b
            if self.updated:  # update this layer, then back-propagate through the new weights
                theta, g, state, tmp = self.layer_update[l]
                step(theta, g, state, self.t, self.hyper, tmp)
            if l > 0:
                backprop_layer(l, params, self.acts, ws)
        if not self.updated:
            self.optimizer.step(self.theta, self.g, self.state, self.t, self.hyper, self.tmp)

    def epoch(self, epoch: int) -> Array:
        """Train one epoch; return each seed's epoch loss ``(S,)``."""
        self.loss.fill(0.0)
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


def train(
    config: Config,
    data: Dataset | None = None,
    seeds: int | Iterable[int] = 1,
    *,
    loss_epochs: Sequence[int] | Array | None = None,
    monitor: Monitor | None = None,
    progress: Callable[[int], None] | None = None,
    initial: Array | None = None,
    thresholds: Sequence[float] = (),
) -> Result:
    """Train one network per seed, all at once.

    Args:
        config: the run's configuration.
        data: the dataset (default: the question's six pairs).
        seeds: a count n (seeds 0..n-1) or the seeds themselves.
        loss_epochs: epochs (1..epochs) at which to keep the loss; default every epoch.
        monitor: called at ``monitor.epochs`` with the parameters (see ``diagnostics.monitor``).
        progress: called now and then with the number of epochs done (e.g. to move a bar).
        initial: optional initial parameters ``(n_params, S)`` instead of drawing them.
        thresholds: extra loss thresholds whose first epochs are recorded in ``epochs_to``.

    Returns:
        A ``Result`` with per-seed outcomes, loss history and initial/final parameters.
    """
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
    rec = np.arange(1, E + 1) if loss_epochs is None else np.asarray(loss_epochs, dtype=np.int64)
    if rec.size and (rec.min() < 1 or rec.max() > E):
        raise ValueError(f"loss epochs must lie in 1..{E}")
    rec_index = {int(e): r for r, e in enumerate(rec)}
    loss_hist = np.full((rec.size, S), np.nan)
    levels = sorted({config.threshold, *map(float, thresholds)})  # loss levels to time
    first_below = np.full((len(levels), S), -1, dtype=np.int64)  # first epoch at or below each
    diverged = np.full(S, -1, dtype=np.int64)
    final_loss = np.full(S, np.nan)
    min_loss = np.full(S, np.inf)
    final_theta = np.empty_like(theta0)
    alive = np.arange(S)
    engine = _Engine(config, data, theta0.copy(), seeds)
    watch = set() if monitor is None else {int(e) for e in monitor.epochs}
    prev = np.empty_like(theta0)
    every = max(1, E // 500)
    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if 0 in watch:
            monitor.observe(0, engine.theta, alive, None)
        for epoch in range(1, E + 1):
            np.copyto(prev, engine.theta)
            loss = engine.epoch(epoch)
            r = rec_index.get(epoch)
            if r is not None:
                loss_hist[r, alive] = loss
            min_loss[alive] = np.fmin(min_loss[alive], loss)
            for j, level in enumerate(levels):
                reached = (loss <= level) & (first_below[j, alive] < 0)
                if reached.any():
                    first_below[j, alive[reached]] = epoch
            bad = ~(np.isfinite(loss) & np.isfinite(engine.theta.sum(axis=0)))
            if bad.any():
                gone = alive[bad]
                diverged[gone] = epoch
                final_loss[gone] = loss[bad]
                final_theta[:, gone] = prev[:, bad]
                alive, loss = alive[~bad], loss[~bad]
                engine.keep(~bad)
                prev = np.ascontiguousarray(prev[:, ~bad])
                if alive.size == 0:
                    break
            if epoch in watch:
                monitor.observe(epoch, engine.theta, alive, prev)
            if progress is not None and (epoch % every == 0 or epoch == E):
                progress(epoch)
            last_loss = loss
        seconds = time.perf_counter() - started
        max_abs_grad = np.full(S, np.nan)
        if alive.size:
            final_loss[alive] = last_loss
            final_theta[:, alive] = engine.theta
            _, grad, _ = full_gradient(layout, engine.theta, engine.acts, data.X, data.Y)
            max_abs_grad[alive] = np.abs(grad).max(axis=0)
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
        final_loss=final_loss,
        min_loss=np.where(np.isinf(min_loss), np.nan, min_loss),
        max_abs_grad=max_abs_grad,
        loss_epochs=rec,
        loss=loss_hist,
        initial_params=layout.unpack(theta0),
        final_params=layout.unpack(final_theta),
        seconds=seconds,
        epochs_to={t: first_below[levels.index(t)] for t in sorted(set(map(float, thresholds)))},
    )
