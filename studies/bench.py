"""Speed measurements behind ``actdiag bench``: each returns numbers, the command prints them."""

from __future__ import annotations

import shutil
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
from studies.run.stream import StreamedMonitor
from studies.run.study import DEFAULT_CHUNK_SEEDS


def instruments_overhead(S: int, epochs: int, repeats: int) -> dict:
    """Training alone against training with every instrument on the default schedule and its
    tables (metrics.parquet, events.csv) written, as ``actdiag train`` does it.

    Three runs per round, in an order that rotates: ``bare`` (no monitor), ``streamed`` (the
    monitor's passes and the metrics file on their own thread while training goes on, as
    ``actdiag train``), ``inline`` (observing in the training thread, then writing: the cost
    on one core). Wall and CPU seconds (``time.process_time``: every thread of the process);
    ``probing`` is the monitor's own time (its full passes and probes).
    """
    config = PRESETS["question"].replace(epochs=epochs)
    data = question_data()
    columns = config_columns(config)
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "streamed": [], "inline": []}
    probing, records = [], 0

    def timed(kind: str, tmp: Path) -> None:
        nonlocal records
        out = tmp / kind  # a new folder each time, as ``actdiag train --out`` makes it: on
        out.mkdir()  # ext4, a file renamed over an existing one is flushed (measured 80 ms)
        wall, cpu = time.perf_counter(), time.process_time()
        if kind == "bare":
            train(config, data, S, loss_epochs=[epochs])
        else:
            monitor = Monitor(config, data, range(S), "all", DEFAULT_EVERY,
                              keep=kind == "inline")  # actdiag train keeps none
            if kind == "streamed":
                with StreamedMonitor(monitor, out / "metrics.parquet", columns) as observer:
                    train(config, data, S, loss_epochs=[epochs], monitor=observer)
            else:
                train(config, data, S, loss_epochs=[epochs], monitor=monitor)
                write_metrics(out / "metrics.parquet", monitor, columns)
            write_events(out / "events.csv", monitor)
            probing.append(monitor.seconds)
            records = monitor.epochs.size
        runs[kind].append((time.perf_counter() - wall, time.process_time() - cpu))
        shutil.rmtree(out)

    kinds = list(runs)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for kind in kinds[r % 3:] + kinds[: r % 3]:
                timed(kind, Path(tmp))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in runs.items()}
    bare = runs["bare"]

    def ratio(kind: str, i: int) -> float:
        return statistics.median(x[i] / b[i] for x, b in zip(runs[kind], bare, strict=True))

    rounds = [w / b for (w, _), (b, _) in zip(runs["streamed"], bare, strict=True)]
    quartiles = statistics.quantiles(rounds, n=4) if len(rounds) > 1 else rounds * 3

    return {
        "S": S, "epochs": epochs, "records": records, "bare": med["bare"][0],
        "bare_cpu": med["bare"][1], "streamed": med["streamed"][0],
        "streamed_cpu": med["streamed"][1], "inline": med["inline"][0],
        "probing": statistics.median(probing),
        "ratio": ratio("streamed", 0), "cpu_ratio": ratio("streamed", 1),
        "ratio_q1": quartiles[0], "ratio_q3": quartiles[2],
        "inline_ratio": ratio("inline", 0),
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
