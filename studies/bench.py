"""Speed measurements behind ``actdiag bench``: each returns numbers, the command prints them."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from diagnostics.data import question_data
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.run.cells import Cell, run_cells
from studies.run.executors import Processes, Sequential
from studies.run.outputs import config_columns, write_events, write_metrics
from studies.run.study import DEFAULT_CHUNK_SEEDS


def instruments_overhead(S: int, epochs: int, repeats: int) -> dict:
    """Training alone against training + observing + writing the instruments' tables.

    Every instrument on the default schedule; the tables (metrics.parquet, events.csv) are
    written as ``actdiag train`` writes them, into a temporary folder. Runs alternate which goes
    first. ``probing`` is the monitor's own time (its full passes and probes) inside the
    observed run; the rest of that run's extra time is the training loop stopping at each
    recorded epoch.
    """
    config = PRESETS["question"].replace(epochs=epochs)
    data = question_data()
    bare, monitored, observe, probing, write, records = [], [], [], [], [], 0
    for r in range(repeats):
        for with_monitor in (r % 2 == 1, r % 2 == 0):  # alternate which runs first
            if not with_monitor:
                bare.append(train(config, data, S, loss_epochs=[epochs]).seconds)
                continue
            monitor = Monitor(config, data, range(S), "all", DEFAULT_EVERY)
            seconds = train(config, data, S, loss_epochs=[epochs], monitor=monitor).seconds
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                write_metrics(Path(tmp) / "metrics.parquet", monitor, config_columns(config))
                write_events(Path(tmp) / "events.csv", monitor)
            written = time.perf_counter() - started
            records = monitor.epochs.size
            monitored.append(seconds + written)
            observe.append(seconds)
            probing.append(monitor.seconds)
            write.append(written)
    ratios = [m / b for m, b in zip(monitored, bare, strict=True)]
    return {
        "S": S, "epochs": epochs, "records": records, "bare": statistics.median(bare),
        "observed": statistics.median(observe), "probing": statistics.median(probing),
        "written": statistics.median(write),
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


# --- the torch adapter: the instruments' overhead, and vmap against a loop over seeds ----------
# Needs the optional extra torch (and scikit-learn for the digits network); imported lazily.
# Wall time is taken around ``run_seeds``, which also reports the time spent observing
# (``monitor.seconds``); on a shared machine the ratio of two separate runs is noisy, the ratio
# inside one run (training plus observing over training alone) less so.

TORCH_QUESTION_LAYERS = (2, 4, 4, 1)
TORCH_DIGITS_LAYERS = (64, 32, 32, 10)


def torch_workloads(quick: bool = False) -> dict[str, dict]:
    """The question's network (online SGD) and the digits MLP (batches of 32), ReLU."""
    from torch import nn

    from diagnostics.data import load_data
    from diagnostics.torch_adapter import mlp

    return {
        "question 2-4-4-1 relu, online": dict(
            make_model=lambda: mlp(TORCH_QUESTION_LAYERS, nn.ReLU), data=question_data(),
            batch="online", lr=0.01, epochs=100 if quick else 1000,
            loop_epochs=10 if quick else 50,
        ),
        "digits 64-32-32-10 relu, batch 32": dict(
            make_model=lambda: mlp(TORCH_DIGITS_LAYERS, nn.ReLU), data=load_data("digits"),
            batch=32, lr=0.05, epochs=2 if quick else 5, loop_epochs=1,
        ),
    }


def torch_timed_run(w: dict, seeds: int, epochs: int, **kw) -> tuple[float, object]:
    """(wall seconds, result) of one ``run_seeds`` call on workload ``w`` (plain SGD)."""
    import torch

    from diagnostics.torch_adapter import run_seeds

    lr = w["lr"]
    started = time.perf_counter()
    res = run_seeds(w["make_model"], lambda p: torch.optim.SGD(p, lr=lr), w["data"], seeds,
                    epochs, batch=w["batch"], **kw)
    return time.perf_counter() - started, res


def torch_hook_overhead(w: dict, seeds: int = 100, every: str = DEFAULT_EVERY) -> dict:
    """Vectorized training with and without every instrument on ``every``: the time ratio."""
    plain, _ = torch_timed_run(w, seeds, w["epochs"], vectorize=True)
    recorded, res = torch_timed_run(w, seeds, w["epochs"], vectorize=True, record="all",
                                    record_every=every)
    return {
        "seeds": seeds, "epochs": w["epochs"], "schedule": every,
        "recordings": int(res.monitor.epochs.size),
        "plain_s": plain, "recorded_s": recorded, "ratio": recorded / plain,
        "observing_s": res.monitor.seconds,
        "ratio_inside_run": res.seconds / (res.seconds - res.monitor.seconds),
    }


def torch_vmap_vs_loop(w: dict, seeds: int = 100) -> dict:
    """Seed-epochs per second, vectorized (vmap) and one seed after another, no instruments."""
    vec, _ = torch_timed_run(w, seeds, w["loop_epochs"], vectorize=True)
    loop, _ = torch_timed_run(w, seeds, w["loop_epochs"], vectorize=False)
    n = seeds * w["loop_epochs"]
    return {"seeds": seeds, "epochs": w["loop_epochs"], "vmap_seed_epochs_per_s": n / vec,
            "loop_seed_epochs_per_s": n / loop, "speedup": loop / vec}


def torch_measure(seeds: int = 100, quick: bool = False) -> list[dict]:
    """Both measurements on every workload, one row each (with torch's thread count)."""
    import torch

    rows = []
    for name, w in torch_workloads(quick).items():
        torch_timed_run(w, 2, 1, vectorize=True, record="all")  # warm up both paths
        torch_timed_run(w, 2, 1, vectorize=False)
        threads = torch.get_num_threads()
        rows.append({"workload": name, "measure": "hook_overhead", "threads": threads}
                    | torch_hook_overhead(w, seeds))
        rows.append({"workload": name, "measure": "vmap_vs_loop", "threads": threads}
                    | torch_vmap_vs_loop(w, seeds))
    return rows
