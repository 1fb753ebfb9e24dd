"""Speed measurements behind ``actdiag bench``: each returns numbers, the command prints them."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from diagnostics.data import question_data
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.run.cells import Cell, run_cells
from studies.run.executors import Processes, Sequential
from studies.run.files import write_csv
from studies.run.outputs import write_metrics
from studies.run.study import DEFAULT_CHUNK_SEEDS


def instruments_overhead(S: int, epochs: int, repeats: int) -> dict:
    """Training alone against training + observing + writing the instruments' tables.

    Every instrument on the default schedule; the tables (metrics.csv, events.csv) are written
    as ``actdiag train`` writes them, into a temporary folder. Runs alternate which goes first.
    """
    config = PRESETS["question"].replace(epochs=epochs)
    data = question_data()
    bare, monitored, observe, write, records = [], [], [], [], 0
    for r in range(repeats):
        for with_monitor in (r % 2 == 1, r % 2 == 0):  # alternate which runs first
            if not with_monitor:
                bare.append(train(config, data, S, loss_epochs=[epochs]).seconds)
                continue
            monitor = Monitor(config, data, range(S), "all", DEFAULT_EVERY)
            seconds = train(config, data, S, loss_epochs=[epochs], monitor=monitor).seconds
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                write_metrics(Path(tmp) / "metrics.csv", monitor)
                write_csv(Path(tmp) / "events.csv", pd.DataFrame(monitor.events()))
            written = time.perf_counter() - started
            records = monitor.epochs.size
            monitored.append(seconds + written)
            observe.append(seconds)
            write.append(written)
    ratios = [m / b for m, b in zip(monitored, bare, strict=True)]
    return {
        "S": S, "epochs": epochs, "records": records, "bare": statistics.median(bare),
        "observed": statistics.median(observe), "written": statistics.median(write),
        "monitored": statistics.median(monitored), "ratio": statistics.median(ratios),
        "train_ratio": statistics.median([o / b for o, b in zip(observe, bare, strict=True)]),
    }


def executor_speedup(cells: list[Cell], workers: int | None) -> dict:
    """Wall time of ``cells`` in this process and on local processes (no cache)."""
    times = {}
    for executor in (Sequential(), Processes(workers)):
        started = time.perf_counter()
        run_cells(cells, cache_dir=None, progress=False, executor=executor,
                  chunk_seeds=DEFAULT_CHUNK_SEEDS)
        times[executor.name] = (time.perf_counter() - started, executor.workers)
    seq, (par, n) = times["sequential"][0], times["processes"]
    return {"cells": len(cells), "sequential": seq, "processes": par, "workers": n,
            "speedup": seq / par}
