"""Running a study: a grid of cells (configuration x seeds) -> tidy frames, cached per chunk.

A ``Cell`` is pure data: a configuration, a data spec, seeds, and what to record; with ``model`` set
it names a registered torch model (``diagnostics.torch_adapter.TORCH_MODELS``, built as the
configuration describes), trained by ``torch_adapter.run_config`` instead of the numpy engine, with
the same tables. ``run_cell`` turns it into a ``CellResult`` of tidy DataFrames (outcomes, loss,
metrics, events) carrying the cell's label columns, rows in a canonical order (by seed, then epoch,
...). ``run_cells`` splits cells into chunks of seeds, runs the chunks on an executor (this process,
local processes or Dask), and caches every finished chunk as it arrives (``studies.run.cache``:
plain arrays with a checksum, keyed by a hash of the chunk and of the code that computes it): an
interrupted run resumes where it stopped, a code change invalidates what it could have changed, and
because seeds are independent and rows are sorted, the merged frames are identical whatever the
chunk size or the executor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.config import Config
from diagnostics.data import load_data
from diagnostics.monitor import DEFAULT_SCHEDULE, Monitor
from diagnostics.schedules import Schedule
from diagnostics.train import train
from studies.run import cache
from studies.run.cache import DEFAULT_CACHE
from studies.run.estimate import run_estimate, schedule_count
from studies.run.executors import Sequential
from studies.run.progress import bar, epoch_bar

__all__ = ["DEFAULT_CACHE", "Cell", "CellResult", "run_cells", "run_cell", "run_chunk", "concat"]


@dataclass(frozen=True)
class Cell:
    """One configuration trained on a set of seeds, and what to keep from it."""

    study: str  # the study it belongs to
    labels: tuple[tuple[str, object], ...]  # label columns, e.g. (("activation", "relu"),)
    config: Config  # the training configuration
    seeds: tuple[int, int]  # seeds range(start, stop)
    data: str = "question"  # data spec (diagnostics.data.load_data)
    inputs: tuple[str, ...] | None = None  # CSV input columns
    targets: tuple[str, ...] | None = None  # CSV target columns
    loss_every: Schedule = Schedule.log(200)  # loss history schedule (epochs >= 1)
    record: str | None = None  # instruments (diagnostics.monitor.select_probes) or None
    record_every: Schedule = DEFAULT_SCHEDULE  # instrument schedule (epoch 0 always)
    thresholds: tuple[float, ...] = ()  # extra thresholds -> epochs_to_<t> columns
    roles: tuple = ()  # what the study uses the cell for (its own records; not in the result)
    engine: str = "compiled"  # diagnostics.train's engine (equal results to round-off)
    model: str | None = None  # a torch model name (torch_adapter.TORCH_MODELS); None: the engine

    @property
    def label_dict(self) -> dict:
        return dict(self.labels)

    def dataset(self):
        """The cell's dataset."""
        return load_data(self.data, inputs=self.inputs, targets=self.targets)

    @property
    def seed_array(self) -> np.ndarray:
        return np.arange(*self.seeds, dtype=np.int64)

    def chunks(self, size: int | None) -> list[Cell]:
        """This cell split into cells of at most ``size`` consecutive seeds."""
        start, stop = self.seeds
        if not size or stop - start <= size:
            return [self]
        return [replace(self, seeds=(a, min(a + size, stop))) for a in range(start, stop, size)]

    def cost(self) -> float:
        """A rough relative cost (epochs x updates per epoch x numpy calls), for scheduling."""
        c = self.config
        steps = 1 if c.batch == "full" else 6  # the question's data size; a guide only
        seeds = self.seeds[1] - self.seeds[0]
        return c.epochs * steps * sum(c.layers) * (1 + seeds / 2000)

    def key(self) -> str:
        """Hash of everything that determines the result, including the code (see cache)."""
        return cache.cell_key(self)

    def seconds_estimate(self) -> float:
        """A fast machine's time for this cell (or chunk): a lower bound, for timeouts."""
        E = self.config.epochs
        n, cols = _data_size(self.data, self.inputs, self.targets)
        return run_estimate(self.config, self.seeds[1] - self.seeds[0], n_samples=n,
                            n_columns=cols, loss_rows=schedule_count(self.loss_every, E, first=1)
                            ).seconds


@lru_cache(maxsize=32)
def _data_size(data: str, inputs, targets) -> tuple[int, int]:
    d = load_data(data, inputs=inputs, targets=targets)
    return d.n_samples, d.n_inputs + d.n_outputs


@dataclass
class CellResult:
    """Tidy frames of one cell; each carries the cell's label columns first."""

    cell: Cell  # the cell (or chunk of seeds) these frames come from
    outcomes: pd.DataFrame
    loss: pd.DataFrame
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    @property
    def labels(self) -> dict:
        """The cell's label columns."""
        return self.cell.label_dict


SORT_KEYS = {  # canonical row order of each table: chunking and executors cannot change it
    "outcomes": ["seed"],
    "loss": ["seed", "epoch"],
    "metrics": ["seed", "epoch", "layer", "metric"],
    "events": ["seed", "epoch", "layer", "unit", "event"],
}
TABLES = tuple(SORT_KEYS)


def _labelled(columns: dict, labels: dict, table: str) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    if len(frame):
        frame = frame.sort_values(SORT_KEYS[table], kind="stable", ignore_index=True)
    for i, (name, value) in enumerate(labels.items()):
        frame.insert(i, name, value)
    return frame


def run_cell(cell: Cell, progress: bool = False) -> CellResult:
    """Train the cell's seeds (with its instruments) and return its tidy frames."""
    data = cell.dataset()
    seeds = cell.seed_array
    epochs = cell.config.epochs
    if cell.model is not None:
        result = _run_torch(cell, data, seeds)
        monitor = result.monitor
    else:
        monitor = (
            Monitor(cell.config, data, seeds, cell.record, cell.record_every)
            if cell.record else None
        )
        loss_epochs = cell.loss_every.epochs(epochs, first=1)
        with epoch_bar(epochs, enabled=progress, desc=_describe(cell)) as moved:
            result = train(
                cell.config, data, seeds, loss_epochs=loss_epochs, monitor=monitor,
                progress=moved, thresholds=cell.thresholds, engine=cell.engine,
            )
    labels = cell.label_dict
    outcomes = result.tidy("outcomes") | {"max_abs_grad": result.max_abs_grad}
    return CellResult(
        cell=cell,
        outcomes=_labelled(outcomes, labels, "outcomes"),
        loss=_labelled(result.tidy("loss"), labels, "loss"),
        metrics=_labelled(monitor.tidy(), labels, "metrics") if monitor else pd.DataFrame(),
        events=_labelled(monitor.events(), labels, "events") if monitor else pd.DataFrame(),
        seconds=result.seconds,
    )


def _run_torch(cell: Cell, data, seeds):
    """The cell's torch model trained by ``torch_adapter.run_config`` (torch imported here only)."""
    import multiprocessing

    import torch

    from diagnostics.torch_adapter import run_config

    if multiprocessing.parent_process() is not None:  # a pool worker: already one per core
        torch.set_num_threads(1)
    return run_config(cell.model, cell.config, data, seeds, loss_every=cell.loss_every,
                      record=cell.record, record_every=cell.record_every,
                      thresholds=cell.thresholds)


def run_chunk(cell: Cell) -> CellResult:
    """``run_cell`` without progress bars: what a worker process runs."""
    return run_cell(cell, progress=False)


def merge(cell: Cell, parts: Sequence[CellResult]) -> CellResult:
    """``cell``'s result from its chunks (given in seed order)."""
    if len(parts) == 1:
        return parts[0]
    frames = {}
    for table in TABLES:
        pieces = [getattr(p, table) for p in parts if len(getattr(p, table))]
        frames[table] = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    return CellResult(cell=cell, seconds=sum(p.seconds for p in parts), **frames)


def _describe(cell: Cell) -> str:
    return " ".join(f"{v}" for _, v in cell.labels)[:40]


def run_cells(
    cells: Sequence[Cell],
    *,
    cache_dir: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    desc: str = "",
    executor=None,
    chunk_seeds: int | None = None,
    work: Callable[[Cell], CellResult] | None = None,
) -> list[CellResult]:
    """Run every cell (finished chunks come from the cache); results in the cells' order.

    Args:
        cells: the grid.
        cache_dir: where finished chunks are kept (None: no cache).
        progress: progress bars (per chunk; per epoch too when running in this process).
        desc: the bar's label.
        executor: ``executors.Sequential()`` (default), ``Processes(n)`` or ``Dask(...)``.
        chunk_seeds: split cells into chunks of at most this many seeds (None: whole cells).
        work: what runs one chunk (default ``run_chunk``; a picklable module-level function).
    """
    executor = executor or Sequential()
    chunks = [cell.chunks(chunk_seeds) for cell in cells]
    flat = [c for parts in chunks for c in parts]
    if cache_dir is not None:
        cache.remove_legacy(Path(cache_dir))
    keys = [None if cache_dir is None else c.key() for c in flat]
    paths = [None if k is None else Path(cache_dir) / c.study / f"{k}{cache.SUFFIX}"
             for c, k in zip(flat, keys, strict=True)]
    results: list[CellResult | None] = [
        _load(p, k, c) for p, k, c in zip(paths, keys, flat, strict=True)]
    todo = sorted((i for i, r in enumerate(results) if r is None), key=lambda i: -flat[i].cost())
    in_process = isinstance(executor, Sequential)
    with bar(None, total=len(flat), desc=desc or "cells", enabled=progress) as moved:
        moved.update(len(flat) - len(todo))
        fn = work or ((lambda c: run_cell(c, progress)) if in_process else run_chunk)
        costs = [] if in_process else [flat[i].seconds_estimate() for i in todo]
        stream = executor.submit_all(fn, [flat[i] for i in todo],
                                     **({"costs": costs} if costs else {}))
        try:
            for k, result in stream:
                i = todo[k]
                if paths[i] is not None:
                    cache.store(paths[i], keys[i], flat[i].seeds,
                                {t: getattr(result, t) for t in TABLES}, result.seconds)
                results[i] = result
                moved.update(1)
        except BaseException as exc:
            done = sum(r is not None for r in results)
            where = f"cached in {cache_dir}" if cache_dir is not None else "finished (no cache)"
            exc.add_note(f"{done} of {len(flat)} chunks {where}")
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the executor's workers at once if we did not finish
    out, pos = [], 0
    for cell, parts in zip(cells, chunks, strict=True):
        out.append(merge(cell, results[pos:pos + len(parts)]))
        pos += len(parts)
    return out


def _load(path: Path | None, key: str | None, cell: Cell) -> CellResult | None:
    """The cached result of chunk ``cell``, if a checked entry exists."""
    if path is None:
        return None
    found = cache.load(path, key, cell.seeds)
    if found is None:
        return None
    frames, seconds = found
    return CellResult(cell=cell, seconds=seconds, **{t: frames[t] for t in TABLES})


def concat(results: Sequence[CellResult], table: str) -> pd.DataFrame:
    """One frame from the same table of every cell."""
    frames = [getattr(r, table) for r in results if len(getattr(r, table))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
