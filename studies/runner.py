"""Running a study: a grid of cells (configuration x seeds) -> tidy frames, cached per cell.

A ``Cell`` is pure data: a configuration, a data spec, seeds, and what to record. ``run_cell`` turns
it into a ``CellResult`` of tidy DataFrames (outcomes, loss, metrics, events) carrying the cell's
label columns. Finished cells are cached on disk (pickle, written atomically), keyed by a hash of
the cell and of the engine's source code, so an interrupted study resumes where it stopped and a
code change invalidates what it could have changed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import diagnostics
from diagnostics.config import Config
from diagnostics.data import load_data
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.schedules import schedule
from diagnostics.train import train

from .io import write_with
from .progress import bar, epoch_bar

DEFAULT_CACHE = Path("runs/cache")


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
    loss_every: str = "log:200"  # loss history schedule (epochs >= 1)
    record: str | None = None  # instruments (diagnostics.monitor.select_probes) or None
    record_every: str = DEFAULT_EVERY  # instrument schedule (epoch 0 always)
    thresholds: tuple[float, ...] = ()  # extra thresholds -> epochs_to_<t> columns

    @property
    def label_dict(self) -> dict:
        return dict(self.labels)

    @property
    def seed_array(self) -> np.ndarray:
        return np.arange(*self.seeds, dtype=np.int64)

    def key(self) -> str:
        """Hash of everything that determines the result, including the engine's code."""
        payload = {
            "cell": [
                self.study, [list(x) for x in self.labels], self.config.to_dict(),
                list(self.seeds), self.data, self.inputs, self.targets, self.loss_every,
                self.record, self.record_every, list(self.thresholds),
            ],
            "code": code_version(),
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class CellResult:
    """Tidy frames of one cell; each carries the cell's label columns first."""

    labels: dict
    outcomes: pd.DataFrame
    loss: pd.DataFrame
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0


@cache
def code_version() -> str:
    """Hash of the diagnostics package's source files (the engine and its instruments)."""
    h = hashlib.sha256(diagnostics.__version__.encode())
    for path in sorted(Path(diagnostics.__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _labelled(columns: dict, labels: dict) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    for i, (name, value) in enumerate(labels.items()):
        frame.insert(i, name, value)
    return frame


def run_cell(cell: Cell, progress: bool = False) -> CellResult:
    """Train the cell's seeds (with its instruments) and return its tidy frames."""
    data = load_data(cell.data, inputs=cell.inputs, targets=cell.targets)
    seeds = cell.seed_array
    epochs = cell.config.epochs
    monitor = (
        Monitor(cell.config, data, seeds, cell.record, cell.record_every) if cell.record else None
    )
    loss_epochs = schedule(cell.loss_every, epochs, first=1)
    with epoch_bar(epochs, enabled=progress, desc=_describe(cell)) as moved:
        result = train(
            cell.config, data, seeds, loss_epochs=loss_epochs, monitor=monitor,
            progress=moved, thresholds=cell.thresholds,
        )
    labels = cell.label_dict
    outcomes = result.tidy("outcomes") | {"max_abs_grad": result.max_abs_grad}
    return CellResult(
        labels=labels,
        outcomes=_labelled(outcomes, labels),
        loss=_labelled(result.tidy("loss"), labels),
        metrics=_labelled(monitor.tidy(), labels) if monitor else pd.DataFrame(),
        events=_labelled(monitor.events(), labels) if monitor else pd.DataFrame(),
        seconds=result.seconds,
    )


def _describe(cell: Cell) -> str:
    return " ".join(f"{v}" for _, v in cell.labels)[:40]


def run_cells(
    cells: Sequence[Cell],
    *,
    cache_dir: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    desc: str = "",
    runner: Callable[[Cell, bool], CellResult] = run_cell,
) -> list[CellResult]:
    """Run every cell (from the cache when it is there), in order."""
    results = []
    for cell in bar(cells, total=len(cells), desc=desc or "cells", enabled=progress):
        path = None if cache_dir is None else Path(cache_dir) / cell.study / f"{cell.key()}.pkl"
        if path is not None and path.exists():
            try:
                with open(path, "rb") as fh:
                    results.append(pickle.load(fh))
                continue
            except (OSError, EOFError, pickle.UnpicklingError):
                path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
        result = runner(cell, progress)
        if path is not None:
            write_with(path, lambda tmp, r=result: tmp.write_bytes(pickle.dumps(r, protocol=5)))
        results.append(result)
    return results


def concat(results: Sequence[CellResult], table: str) -> pd.DataFrame:
    """One frame from the same table of every cell."""
    frames = [getattr(r, table) for r in results if len(getattr(r, table))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
