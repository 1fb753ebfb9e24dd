"""Speed measurements behind ``actdiag bench``: each returns numbers, the command prints them."""

from __future__ import annotations

import statistics
import time

from diagnostics.data import question_data
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.run.cells import Cell, run_cells
from studies.run.executors import Processes, Sequential
from studies.run.study import DEFAULT_CHUNK_SEEDS


def instruments_overhead(S: int, epochs: int, repeats: int) -> dict:
    """Run time with every instrument on the default schedule / run time with none."""
    config = PRESETS["question"].replace(epochs=epochs)
    data = question_data()
    bare, monitored, own, records = [], [], [], 0
    for r in range(repeats):
        for with_monitor in (r % 2 == 1, r % 2 == 0):  # alternate which runs first
            monitor = Monitor(config, data, range(S), "all", DEFAULT_EVERY) if with_monitor \
                else None
            seconds = train(config, data, S, loss_epochs=[epochs], monitor=monitor).seconds
            (monitored if with_monitor else bare).append(seconds)
            if monitor:
                records = monitor.epochs.size
                own.append(seconds / (seconds - monitor.seconds))
    ratios = [m / b for m, b in zip(monitored, bare, strict=True)]
    return {
        "S": S, "epochs": epochs, "records": records, "bare": statistics.median(bare),
        "monitored": statistics.median(monitored), "ratio": statistics.median(ratios),
        "own": statistics.median(own),
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
