"""Recording instruments during training: *when* to probe and collecting the rows.

A ``Monitor`` is handed to ``train(..., monitor=m)``. At each epoch of its schedule (epoch 0, at
initialisation, is always included) it runs one full pass over the dataset with the current
parameters, applies the selected probes (``diagnostics.probes``) and stores one value per layer and
seed in an array made at the first recording, so memory is fixed by the schedule's length, not
the epoch budget (with ``keep=False``, only the recordings not yet written are held).
It only reads the parameters: training is bit-identical with or without it. The pass is compiled
by default (``diagnostics.probe_kernel``: the same values, seed block by seed block, without the
GIL); ``compiled=False`` runs the numpy reference (``network.full_gradient`` and the probes).

With the ``dead`` group it also tracks every ReLU-family unit and records per-unit events:
``born_dead`` (dead at initialisation), ``died`` (alive at the previous recording, dead now) and
``revived`` (dead at the previous recording, alive now); their resolution is the schedule's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from .config import Config
from .data import Dataset
from .network import Layout, Workspace, full_gradient
from .probes import GROUPS, PROBES, LayerRecord, NetworkRecord, dead_units
from .schedules import Schedule, schedule

Array = np.ndarray
DEFAULT_EVERY = "log:100"
DEFAULT_SCHEDULE = Schedule.log(100)  # the same, as an object
EVENTS = ("born_dead", "died", "revived")  # the per-unit events, by code 0, 1, 2
# Seeds per full pass of a monitor: the pass's arrays (z, a, act'(z), dL/dz) stay in the cache
# while the probes read them. Measured on the question's network: a recording of 10^5 seeds
# takes 60 ms in chunks of 2048-16384 seeds against 80-115 ms at once; at 10^4 no difference.
OBSERVE_SEEDS = 4096


def select_probes(record: str | Iterable[str]) -> list[str]:
    """Probe names for ``record``: ``all``, or a comma list of groups and probe names."""
    names = record.split(",") if isinstance(record, str) else list(record)
    names = [n.strip() for n in names if n.strip()]
    picked: list[str] = []
    for n in names:
        if n == "all":
            picked.extend(PROBES)
        elif n in GROUPS:
            picked.extend(p.name for p in PROBES.values() if p.group == n)
        elif n in PROBES:
            picked.append(n)
        else:
            valid = ", ".join(dict.fromkeys(["all", *GROUPS, *PROBES]))
            raise ValueError(f"unknown instrument {n!r}: use a comma list of {valid}")
    if not picked:
        raise ValueError("no instrument selected: use all, or a comma list of groups or probes")
    return list(dict.fromkeys(picked))


def probe_rows(acts, names: Iterable[str]) -> list[tuple[int, str]]:
    """The (layer, probe) pairs recorded for these activations: what each recording stores per
    seed (layer 0 = the whole network; a probe only on the layers it applies to)."""
    acts = list(acts)
    rows: list[tuple[int, str]] = []
    for name in names:
        probe = PROBES[name]
        if probe.scope == "network":
            rows.append((0, name))
        else:
            rows.extend((l + 1, name) for l, act in enumerate(acts) if probe.applies(act))
    return rows


class Recorder:
    """Probe values on a schedule, stored per (epoch, row, seed); rows are (layer, probe).

    The storage and bookkeeping half of a monitor, independent of the engine that produced the
    records: ``record`` applies the selected probes to a ``NetworkRecord`` of one full pass.
    ``Monitor`` (the numpy engine) and ``diagnostics.torch_adapter`` (PyTorch) both build on it.

    Args:
        acts: the activation of each layer (``Activation`` entries), the output layer last.
        seeds: the run's seeds (the order of the ensemble).
        epochs: the epochs to record (0 = at initialisation), sorted.
        record: ``all`` or a comma list of groups and probe names.
        keep: keep every recording (``values``, ``tidy``, ``metric``, ``wide``); False holds
            each recording only until ``release`` (a writer that streams them to a file, as
            ``actdiag train``), so memory does not grow with the number of recordings.
    """

    def __init__(self, acts, seeds: Iterable[int], epochs: Array, record: str | Iterable[str],
                 keep: bool = True):
        self.acts = list(acts)
        L = len(self.acts)
        self.seeds = np.asarray(list(seeds), dtype=np.int64)
        self.epochs = np.asarray(epochs, dtype=np.int64)
        self._index = {int(e): r for r, e in enumerate(self.epochs)}
        names = select_probes(record)
        self.rows = probe_rows(self.acts, names)  # (layer, probe); layer 0 = whole network
        self.keep = keep
        self._values: Array | None = None  # (recordings, rows, seeds); made when first used
        self._held: dict[int, Array] = {}  # keep=False: recording -> (rows, seeds) until released
        self._released = 0  # keep=False: recordings [0, _released) were released
        self.track_events = "dead_fraction" in names or "network_dead" in names
        self._rect_layers = [l for l in range(L) if self.acts[l].rectifier]
        self._dead: dict[int, Array] = {}  # layer -> (units, S) state at the previous recording
        self._first = 0  # the epoch of the first recording (its dead units were born dead)
        self._events: list[tuple[Array, ...]] = []
        self.seconds = 0.0  # time spent observing, to measure the monitor's own cost

    @property
    def values(self) -> Array:
        """``(recordings, rows, seeds)`` probe values, nan where nothing was recorded.

        Allocated at the first use, not with the recorder: on the thread that observes (a
        second one, in ``actdiag train``), where filling the pages costs training nothing.
        """
        if not self.keep:
            raise ValueError("this recorder keeps each recording only until it is written "
                             "(keep=False): read the metrics file")
        if self._values is None:
            shape = (self.epochs.size, len(self.rows), self.seeds.size)
            self._values = np.full(shape, np.nan)
        return self._values

    def recording(self, r: int) -> Array:
        """``(rows, seeds)`` values of recording ``r`` (an index into ``epochs``), nan where
        nothing was recorded; written in place by the passes."""
        if self.keep:
            return self.values[r]
        if r < self._released:
            raise ValueError(f"recording {r} (epoch {self.epochs[r]}) was released")
        held = self._held.get(r)
        if held is None:
            held = self._held[r] = np.full((len(self.rows), self.seeds.size), np.nan)
        return held

    def release(self, last: int) -> None:
        """With ``keep=False``, drop recordings ``[0, last)`` (their rows were written)."""
        if not self.keep:
            for r in [r for r in self._held if r < last]:
                del self._held[r]
            self._released = max(self._released, last)

    @staticmethod
    def _columns(alive: Array) -> slice | Array:
        """``alive`` (increasing ensemble indices) as an index into the seed axis: a slice when
        it is a run of consecutive indices (every seed alive, or a chunk of them), else itself."""
        if alive.size and alive[-1] - alive[0] + 1 == alive.size:
            return slice(int(alive[0]), int(alive[-1]) + 1)
        return alive

    def record(self, epoch: int, net: NetworkRecord, alive: Array) -> None:
        """Apply the selected probes to one full pass; ``alive`` (increasing ensemble indices)
        maps its seeds to columns."""
        values = self.recording(self._index[int(epoch)])  # (rows, S)
        cols = self._columns(alive)
        layers = net.layers
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # 0/0 -> nan, quietly
            for k, (layer, name) in enumerate(self.rows):
                values[k, cols] = PROBES[name].fn(net if layer == 0 else layers[layer - 1])
        if self.track_events:
            self._update_events(epoch, {l: dead_units(layers[l]) for l in self._rect_layers},
                                alive)

    def _update_events(self, epoch: int, dead_masks, alive: Array) -> None:
        """Events from ``dead_masks[l]``, layer l's dead units ``(units, S_alive)``, for each
        rectifier layer l."""
        cols = self._columns(alive)
        for l in self._rect_layers:
            dead = dead_masks[l]
            if l not in self._dead:
                self._dead[l] = np.zeros((dead.shape[0], self.seeds.size), dtype=bool)
                self._first = int(epoch)
            state = self._dead[l]
            if epoch == self._first:  # the first recording: every dead unit was born dead
                unit, col = np.nonzero(dead)
                kind = np.zeros(unit.size, dtype=np.int8)
            else:  # a change since the previous recording: died if dead now, else revived
                unit, col = np.nonzero(dead != state[:, cols])
                kind = np.where(dead[unit, col], 1, 2).astype(np.int8)
            state[:, cols] = dead
            if unit.size:
                self._events.append((alive[col], int(epoch), l + 1, unit, kind))

    def tidy(self) -> dict[str, Array]:
        """Columns seed, epoch, layer, metric, value (layer 0 = whole network; no nan rows)."""
        r, k, s = np.nonzero(~np.isnan(self.values))
        layer = np.array([row[0] for row in self.rows], dtype=np.int64)
        metric = np.array([row[1] for row in self.rows], dtype=object)
        return {
            "seed": self.seeds[s],
            "epoch": self.epochs[r],
            "layer": layer[k],
            "metric": metric[k].astype(str),
            "value": self.values[r, k, s],
        }

    def wide_layout(self) -> tuple[list[int], list[str]]:
        """``(layers, metrics)`` of the wide table: its layer values and metric columns."""
        layers = sorted({layer for layer, _ in self.rows})
        metrics = list(dict.fromkeys(name for _, name in self.rows))
        return layers, metrics

    def wide_pieces(self, lo: int = 0, hi: int | None = None, first: int = 0,
                    last: int | None = None, layers: Iterable[int] | None = None,
                    ) -> Iterator[tuple[int, int, Array, list[Array | None]]]:
        """The wide table (``wide``) in pieces, in its row order, without copying what need
        not be: for each recording ``first:last`` (indices into ``epochs``) and each of
        ``layers`` (default all), ``(epoch, layer, seeds, values)``. ``seeds``: those of
        ``lo:hi`` that have a row (a seed with no value on the layer, one that diverged, has
        none); ``values``: per metric column (``wide_layout``) its values for those seeds (a
        view of the stored row where every seed has one), or None where the metric does not
        apply to the layer."""
        S, R = self.seeds.size, self.epochs.size
        hi = S if hi is None else min(hi, S)
        lo = min(lo, hi)
        last = R if last is None else min(last, R)
        first = min(first, last)
        all_layers, metrics = self.wide_layout()
        picked = all_layers if layers is None else [l for l in all_layers if l in set(layers)]
        mi = {name: i for i, name in enumerate(metrics)}
        on = {l: [(k, mi[name]) for k, (layer, name) in enumerate(self.rows) if layer == l]
              for l in picked}
        for r in range(first, last):
            recording = self.values[r] if self.keep else self.recording(r)
            for layer in picked:
                rows = [recording[k, lo:hi] for k, _ in on[layer]]
                empty = np.isnan(rows[0])
                for row in rows[1:]:
                    empty &= np.isnan(row)
                kept = np.flatnonzero(~empty) if empty.any() else None
                values: list[Array | None] = [None] * len(metrics)
                for (_, m), row in zip(on[layer], rows, strict=True):
                    values[m] = row if kept is None else row[kept]
                seeds = self.seeds[lo:hi] if kept is None else self.seeds[lo:hi][kept]
                yield int(self.epochs[r]), layer, seeds, values

    def wide(self, lo: int = 0, hi: int | None = None, first: int = 0,
             last: int | None = None, layers: Iterable[int] | None = None) -> dict[str, Array]:
        """Columns seed, epoch, layer, then one per metric, for the recordings ``first:last``
        (indices into ``epochs``), ensemble positions ``lo:hi`` and ``layers`` (default all).

        One row per (epoch, layer, seed) in that order: recording by recording, as they are
        made (a writer can stream the table while training goes on), and within one the seeds
        of each layer together, layer 0 (the network metrics) first, so a metric column holds
        long runs of values and of empties. A metric that does not apply to a layer is nan
        there, and rows with no value at all (a seed after it diverged) are left out. The same
        values as ``tidy()``, pivoted (``wide_pieces``, joined).
        """
        _, metrics = self.wide_layout()
        keys: dict[str, list[Array]] = {"seed": [], "epoch": [], "layer": []}
        cols: list[list[Array]] = [[] for _ in metrics]
        for epoch, layer, s, values in self.wide_pieces(lo, hi, first, last, layers):
            keys["seed"].append(s)
            keys["epoch"].append(np.full(s.size, epoch, dtype=np.int64))
            keys["layer"].append(np.full(s.size, layer, dtype=np.int64))
            for col, v in zip(cols, values, strict=True):
                col.append(np.full(s.size, np.nan) if v is None else v)
        out = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in keys.items()}
        return out | {name: np.concatenate(col) if col else np.zeros(0)
                      for name, col in zip(metrics, cols, strict=True)}

    def events(self, codes: bool = False) -> dict[str, Array]:
        """Columns seed, epoch, layer, unit, event for every born_dead / died / revived, by
        seed, epoch, layer and unit; ``codes``: event as its index into ``EVENTS`` (int8)."""
        if not self._events:
            empty = np.zeros(0, dtype=np.int64)
            return {"seed": empty, "epoch": empty, "layer": empty, "unit": empty,
                    "event": np.zeros(0, dtype=np.int8 if codes else str)}
        seed_idx, epochs, layers, units, kinds = zip(*self._events, strict=True)
        sizes = [u.size for u in units]
        seed_idx, unit, kind = (np.concatenate(c) for c in (seed_idx, units, kinds))
        epoch = np.repeat(np.asarray(epochs, dtype=np.int64), sizes)
        layer = np.repeat(np.asarray(layers, dtype=np.int64), sizes)
        order = np.lexsort((unit, layer, epoch, seed_idx))
        kind = kind[order].astype(np.int8)
        return {"seed": self.seeds[seed_idx[order]], "epoch": epoch[order],
                "layer": layer[order], "unit": unit[order].astype(np.int64),
                "event": kind if codes else np.array(EVENTS)[kind]}

    def metric(self, name: str, layer: int | None = None) -> tuple[Array, Array]:
        """``(epochs (R,), values (R, S))`` of one metric (one layer; 0 = network)."""
        for k, (lay, n) in enumerate(self.rows):
            if n == name and (layer is None or lay == layer):
                return self.epochs, self.values[:, k, :]
        raise ValueError(f"metric {name!r} (layer {layer}) was not recorded")


class Monitor(Recorder):
    """Probe a training run on a schedule; results as tidy columns.

    Args:
        config: the run's configuration (layers, activations, epochs).
        data: the dataset the full passes use.
        seeds: the run's seeds (the order of ``train``'s ensemble).
        record: ``all`` or a comma list of groups (grad_norm, dead, saturation, weights, preact,
            loss) and probe names.
        every: a schedule (``diagnostics.schedules``), default ``log:100``.
        keep: keep every recording (default); False: only until ``release`` (see ``Recorder``).
        compiled: run the pass compiled (``diagnostics.probe_kernel``, the default) where it
            supports the configuration, else the numpy pass (``full_gradient`` and the probes of
            ``diagnostics.probes``: the reference). A subclass that overrides ``record`` gets
            the numpy pass, whose records it reads. ``self.compiled`` says which runs.
    """

    def __init__(
        self,
        config: Config,
        data: Dataset,
        seeds: Iterable[int],
        record: str | Iterable[str] = "all",
        every: str | int | Schedule = DEFAULT_EVERY,
        compiled: bool = True,
        keep: bool = True,
    ):
        self.config = config
        self.layout = Layout(config.layers)
        L = self.layout.n_layers
        acts = [config.hidden_activation] * (L - 1) + [config.out_activation]
        epochs = np.union1d([0], schedule(every, config.epochs, first=0)).astype(np.int64)
        super().__init__(acts, seeds, epochs, record, keep)
        self.X, self.Y = data.X, data.Y
        self._ws: dict[int, Workspace] = {}  # a workspace per chunk size in use
        from .probe_kernel import ProbePass  # numba, imported when a monitor is made

        self.compiled = (compiled and type(self).record is Recorder.record
                         and ProbePass.supports(self.acts, config.dtype))
        self._pass = ProbePass(config, data, self.acts, self.rows) if self.compiled else None

    def observe(self, epoch: int, theta: Array, alive: Array, prev: Array | None = None) -> None:
        """Probe ``theta (n_params, S_alive)``; ``alive`` maps its columns to ensemble indices.

        The numpy pass and its probes run on ``OBSERVE_SEEDS`` seeds at a time (every probe is
        per seed, so the values are the same), which keeps their arrays in the cache; the
        compiled pass takes every seed at once and blocks them itself.
        """
        started = time.perf_counter()
        if self._pass is not None:
            self._observe(epoch, theta, alive, prev)
            self.seconds += time.perf_counter() - started
            return
        n, used = alive.size, set()
        for lo in range(0, n, OBSERVE_SEEDS):
            part = slice(lo, min(n, lo + OBSERVE_SEEDS))
            if n > OBSERVE_SEEDS:
                theta_part = np.ascontiguousarray(theta[:, part])
                prev_part = None if prev is None else np.ascontiguousarray(prev[:, part])
            else:
                theta_part, prev_part = theta, prev
            used.add(theta_part.shape[1])
            self._observe(epoch, theta_part, alive[part], prev_part)
        self._ws = {S: ws for S, ws in self._ws.items() if S in used}
        self.seconds += time.perf_counter() - started

    def _observe(self, epoch: int, theta: Array, alive: Array, prev: Array | None) -> None:
        if self._pass is not None:
            values = self.recording(self._index[int(epoch)])  # (rows, S), written in place
            dead = self._pass(theta, prev, alive, values, masks=self.track_events)
            if dead is not None:
                self._update_events(epoch, dead, alive)
            return
        S = theta.shape[1]
        loss, grad, ws = full_gradient(
            self.layout, theta, self.acts, self.X, self.Y, self._ws.get(S)
        )
        self._ws[S] = ws
        params = self.layout.views(theta)
        grads = self.layout.views(grad)
        olds = self.layout.views(prev) if prev is not None else [(None, None)] * len(params)
        layers = [
            LayerRecord(ws.z[l], ws.a[l], ws.gz[l], ws.dz[l], W, b, dW, db, W_prev, self.acts[l])
            for l, ((W, b), (dW, db), (W_prev, _)) in enumerate(
                zip(params, grads, olds, strict=True)
            )
        ]
        self.record(epoch, NetworkRecord(layers, loss), alive)
