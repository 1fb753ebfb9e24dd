"""What a study is, and running one: cells -> cached results -> CSV tables -> figures.

A ``Study`` is a name, a title and four functions:

- ``cells(opts) -> list[Cell]``: the grid;
- ``tables(results, opts) -> dict[str, DataFrame]``: tidy tables, written as ``<name>.csv``;
- ``figures(tables_dir, out_dir) -> list[Path]``: PNGs drawn from those CSV files only;
- ``findings(tables_dir)``: the numbers the report quotes, read from the CSV files only.

Running and plotting are joined only by files, so a figure can be restyled without retraining.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.data import load_data
from studies.run.cells import DEFAULT_CACHE, Cell, CellResult, run_cells
from studies.run.files import foreign_entries, write_csv, write_json
from studies.run.setup import setup_table

DEFAULT_CHUNK_SEEDS = 1000  # cells with more seeds are split; smaller chunks lose speed
STUDY_FILE_SUFFIXES = (".csv", ".png", ".json")  # what a study folder holds (tables, figures, meta)


@dataclass(frozen=True)
class StudyOptions:
    """User choices shared by every study; None means the study's own default."""

    quick: bool = False  # fewer seeds and epochs, same figures (for a check in under a minute)
    seeds: int | None = None  # seeds per cell
    epochs: int | None = None  # epoch budget per cell
    activations: tuple[str, ...] | None = None  # activations to compare
    layers: tuple[int, ...] | None = None  # network shape, inputs first
    lrs: tuple[float, ...] | None = None  # learning rates
    data: str = "question"  # data spec
    inputs: tuple[str, ...] | None = None  # CSV input columns
    targets: tuple[str, ...] | None = None  # CSV target columns
    cache_dir: str | None = str(DEFAULT_CACHE)  # None: no cache
    progress: bool = True  # progress bars
    engine: str = "compiled"  # compiled (numba kernel) | numpy (the readable reference)

    def pick(self, name: str, default, quick_default=None):
        """The user's value for ``name``, else the (quick) default."""
        value = getattr(self, name)
        if value is not None:
            return value
        return quick_default if (self.quick and quick_default is not None) else default

    def data_kwargs(self) -> dict:
        """Cell fields for the data."""
        return {"data": self.data, "inputs": self.inputs, "targets": self.targets}

    def io_shape(self) -> tuple[int, int]:
        """(n_inputs, n_outputs) of the chosen data."""
        d = load_data(self.data, inputs=self.inputs, targets=self.targets)
        return d.n_inputs, d.n_outputs

    def with_(self, **changes) -> StudyOptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class Study:
    """A study: its grid, its tables, its figures and its findings."""

    name: str  # folder and command name
    title: str  # one line, for the report
    cells: Callable[[StudyOptions], list[Cell]]  # the grid
    tables: Callable[[list[CellResult], StudyOptions], dict[str, pd.DataFrame]]
    figures: Callable[[Path, Path], list[Path]]  # (tables_dir, out_dir) -> PNG paths
    findings: Callable[[Path], object]  # tables_dir -> the numbers the report quotes
    captions: dict[str, str] = field(default_factory=dict)  # figure file -> caption
    needs: tuple[str, ...] = ()  # optional modules it imports when run (checked before work)
    extra: str = ""  # the pip extra that installs them

    @classmethod
    def of(cls, grid, tables, figures, findings) -> Study:
        """A study from its package's four modules: ``grid`` (NAME, TITLE, cells), ``tables``
        (tables), ``figures`` (figures, CAPTIONS) and ``findings`` (findings)."""
        return cls(name=grid.NAME, title=grid.TITLE, cells=grid.cells, tables=tables.tables,
                   figures=figures.figures, findings=findings.findings,
                   captions=figures.CAPTIONS)


def missing_needs(study: Study) -> str | None:
    """One line naming what to install when a module ``study`` needs is absent, else None."""
    import importlib.util

    absent = [m for m in study.needs if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    what = f"'activation-diagnostics[{study.extra}]'" if study.extra else " ".join(absent)
    return f"study {study.name} needs {', '.join(absent)}: pip install {what}"


def run_studies(
    studies: list[Study],
    opts: StudyOptions,
    out_dir: Path,
    *,
    executor=None,
    chunk_seeds: int | None = DEFAULT_CHUNK_SEEDS,
) -> dict[str, dict]:
    """Run studies into ``out_dir/<NAME>/``: tables (CSV), figures (PNG), meta.json.

    The cells of all the studies go to the executor together, largest first, so that workers
    stay busy; then each study's tables and figures are written from its own cells.
    """
    started = time.perf_counter()
    plans = {s.name: [replace(c, engine=opts.engine) for c in s.cells(opts)] for s in studies}
    results = run_cells(
        [c for cells in plans.values() for c in cells],
        cache_dir=None if opts.cache_dir is None else Path(opts.cache_dir),
        progress=opts.progress,
        desc=",".join(plans)[:30],
        executor=executor,
        chunk_seeds=chunk_seeds,
    )
    computed = time.perf_counter() - started
    metas, pos = {}, 0
    for study in studies:
        cells = plans[study.name]
        mine, pos = results[pos : pos + len(cells)], pos + len(cells)
        final = Path(out_dir) / study.name
        target = _partial_dir(final)
        try:
            for name, frame in study.tables(mine, opts).items():
                write_csv(target / f"{name}.csv", frame)
            write_csv(target / "cells.csv", setup_table(mine))
            figures = study.figures(target, target)
            metas[study.name] = meta = {
                "study": study.name,
                "title": study.title,
                "cells": len(cells),
                "seeds_total": int(sum(c.seeds[1] - c.seeds[0] for c in cells)),
                "seed_epochs": int(sum((c.seeds[1] - c.seeds[0]) * c.config.epochs
                                       for c in cells)),
                "train_seconds": round(sum(r.seconds for r in mine), 2),
                "run_wall_seconds": round(computed, 2),
                "executor": getattr(executor, "name", "sequential"),
                "workers": getattr(executor, "workers", 1),
                "options": {k: v for k, v in asdict(opts).items() if k not in ("progress",)},
                "versions": versions(),
                "figures": [p.name for p in figures],
                "captions": {p.name: study.captions.get(p.name, "") for p in figures},
            }
            write_json(target / "meta.json", meta)
            _swap_in(target, final)
        finally:
            shutil.rmtree(target, ignore_errors=True)
    return metas


def _partial_dir(final: Path) -> Path:
    """A fresh sibling folder to write a study into; stale ones of dead runs are removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        pid = stale.name.rpartition("-")[2]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", suffix=f"-{os.getpid()}",
                                 dir=final.parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(new: Path, final: Path) -> None:
    """Replace ``final`` by the completed folder ``new`` (the old one moved aside, then removed).

    Refuses to remove a ``final`` that holds anything a study does not write.
    """
    if final.exists():
        if not final.is_dir():
            raise ValueError(f"{final} is a file where the study's folder goes")
        foreign = foreign_entries(
            final, lambda n, is_dir: not is_dir and Path(n).suffix in STUDY_FILE_SUFFIXES)
        if foreign:
            raise ValueError(
                f"{final} holds {foreign[0]!r}, which no study wrote: not replacing it")
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(new, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, final)
    os.chmod(final, 0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run_study(study: Study, opts: StudyOptions, out_dir: Path, **kw) -> dict:
    """Run one study (see ``run_studies``); returns its meta."""
    return run_studies([study], opts, out_dir, **kw)[study.name]


def versions() -> dict:
    """Python and package versions, for the method section."""
    import matplotlib

    import diagnostics

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
        "activation-diagnostics": diagnostics.__version__,
    }


def read_meta(tables_dir: Path) -> dict:
    """A study's meta.json."""
    return json.loads((Path(tables_dir) / "meta.json").read_text(encoding="utf-8"))


def read_table(tables_dir: Path, name: str) -> pd.DataFrame:
    """One of a study's CSV tables."""
    path = Path(tables_dir) / f"{name}.csv"
    if not path.exists():
        raise ValueError(f"table {path} is missing: run the study first")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a table with no rows and no columns: nothing was measured
        return pd.DataFrame()
