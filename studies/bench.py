"""``actdiag bench``: measured speed, printed as tables.

engine       the engine against the user's one-network-at-a-time loop: both run the question's
             2-4-4-1 network with online SGD over the six samples, faithful quirks on, in one
             process, interleaved (naive, engine, naive, engine, ...) so that machine load hits
             both alike; each figure is the median over repeats. Times cover the training loop
             only (initial draws excluded on both sides).
instruments  the question's program (ReLU, 5000 epochs) at S = 10,000 with every instrument on
             the default schedule, divided by the same run with none; interleaved, median ratio.
executor     the cells of the default report (every study), no cache, run in this process and
             then on local worker processes (one per core): wall times and the speed-up. Takes
             as long as two reports (about a quarter of that with --quick).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from diagnostics.data import question_data
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.naive import run_program
from diagnostics.presets import PRESETS
from diagnostics.train import train

from .options import parse_names, parse_number_list

SECTIONS = ("engine", "instruments", "executor")
NAIVE_EPOCHS = 300  # one seed, this many epochs, per naive measurement
ENGINE_SEED_EPOCHS = 2_000_000  # engine work per measurement (epochs = this / S, within limits)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure engine speed against the naive per-sample loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", default="1,100,1000,10000", help="ensemble sizes S (comma list)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per size (3)")
    p.add_argument("--activation", default="tanh", help="tanh | relu | sigmoid (tanh)")
    p.add_argument("--dtype", default="float64", help="engine dtype: float64 | float32")
    p.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke test")
    p.add_argument(
        "--only", default="engine,instruments",
        help=f"sections to run: {', '.join(SECTIONS)} (default engine,instruments)",
    )
    p.add_argument("--workers", type=int, default=None, help="executor section: worker count")
    p.set_defaults(run=run)


def engine_vs_naive(
    sizes: list[int], repeats: int, activation: str, dtype: str, scale: float = 1.0
) -> list[dict]:
    """Seed-epochs per second of both, per ensemble size; median over interleaved repeats."""
    config = PRESETS["question"].replace(activation=activation, dtype=dtype)
    naive_epochs = max(10, int(NAIVE_EPOCHS * scale))
    rows = []
    for S in sizes:
        epochs = int(min(5000 * scale, max(20, ENGINE_SEED_EPOCHS * scale // S)))
        cfg = config.replace(epochs=epochs)
        naive, engine = [], []
        for r in range(repeats):
            t = time.perf_counter()
            run_program(r, activation, naive_epochs, config.lr)
            naive.append(naive_epochs / (time.perf_counter() - t))
            result = train(cfg, seeds=S, loss_epochs=[epochs])
            engine.append(S * epochs / result.seconds)
        n, e = statistics.median(naive), statistics.median(engine)
        rows.append({"S": S, "epochs": epochs, "naive": n, "engine": e, "ratio": e / n})
    return rows


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


def executor_speedup(quick: bool, workers: int | None) -> dict:
    """Wall time of the report's cells in this process and on local processes (no cache)."""
    from .base import DEFAULT_CHUNK_SEEDS, StudyOptions
    from .executors import Processes, Sequential
    from .runner import run_cells
    from .study_cmd import STUDY_NAMES, study_module

    opts = StudyOptions(quick=quick, cache_dir=None, progress=False)
    cells = [c for name in STUDY_NAMES for c in study_module(name).cells(opts)]
    times = {}
    for executor in (Sequential(), Processes(workers)):
        started = time.perf_counter()
        run_cells(cells, cache_dir=None, progress=False, executor=executor,
                  chunk_seeds=DEFAULT_CHUNK_SEEDS)
        times[executor.name] = (time.perf_counter() - started, executor.workers)
    seq, (par, n) = times["sequential"][0], times["processes"]
    return {"cells": len(cells), "sequential": seq, "processes": par, "workers": n,
            "speedup": seq / par}


def run(args: argparse.Namespace) -> int:
    sections = parse_names(args.only, SECTIONS, "--only")
    sizes = [int(s) for s in parse_number_list(args.sizes, "--sizes", int)]
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats} is invalid: use a positive integer")
    if args.activation not in ("tanh", "relu", "sigmoid"):
        raise ValueError(f"--activation {args.activation!r} is invalid: use tanh, relu or sigmoid")
    if args.dtype not in ("float64", "float32"):
        raise ValueError(f"--dtype {args.dtype!r} is invalid: use float64 or float32")
    scale = 0.1 if args.quick else 1.0
    if "engine" in sections:
        _print_engine(args, sizes, scale)
    if "instruments" in sections:
        row = instruments_overhead(10_000, int(5000 * scale), args.repeats)
        print(
            f"\ninstruments overhead: question program (relu), S = {row['S']:,}, "
            f"{row['epochs']} epochs, every instrument on {DEFAULT_EVERY} ({row['records']} "
            f"recordings incl. epoch 0)\n"
            f"  without {row['bare']:.2f} s, with {row['monitored']:.2f} s, "
            f"ratio {row['ratio']:.3f} (median of {args.repeats}; separate runs, so machine "
            f"noise of a few % shows)\n  within the monitored runs: run time / (run time - time "
            f"spent observing) = {row['own']:.3f}"
        )
    if "executor" in sections:
        row = executor_speedup(args.quick, args.workers)
        print(
            f"\nexecutor: the {'quick' if args.quick else 'default'} report's {row['cells']} "
            f"cells, no cache\n  in-process {row['sequential']:.1f} s, {row['workers']} local "
            f"processes {row['processes']:.1f} s, speed-up {row['speedup']:.2f}x"
        )
    return 0


def _print_engine(args: argparse.Namespace, sizes: list[int], scale: float) -> None:
    print(
        f"engine vs naive: question program, 2-4-4-1 {args.activation}, online SGD, 6 samples, "
        f"{args.dtype}; numpy {np.__version__}, Python {platform.python_version()}, "
        f"median of {args.repeats} interleaved repeats"
    )
    print(f"{'S':>7} {'epochs':>7} {'naive seed-ep/s':>16} {'engine seed-ep/s':>17} {'ratio':>8}")
    for row in engine_vs_naive(sizes, args.repeats, args.activation, args.dtype, scale):
        print(
            f"{row['S']:>7} {row['epochs']:>7} {row['naive']:>16,.0f} {row['engine']:>17,.0f} "
            f"{row['ratio']:>7.1f}x"
        )
