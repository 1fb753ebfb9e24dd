"""``actdiag bench``: measured speed, printed as tables.

engine       the user's one-network-at-a-time loop against the numpy engine and the compiled
             engine: the question's network (tanh, lr 0.1, online SGD, faithful quirks,
             float64) at each ensemble size S, in one process, every contender once per round
             in a shuffled order so that machine load hits all alike; medians over rounds.
             Times cover the training loop only (initial draws excluded on all sides).
scaling      wide and deep networks (2-W-W-1 for W = 4, 16, 64, 256; ten hidden layers of 16),
             online and full batch on the question's data, and full batch on 64 samples:
             the numpy engine, the compiled kernel, the batched-matmul path and, if torch is
             installed, the same SGD written with torch.bmm over the seed axis (one thread).
compile      numba's compile time from scratch, from its on-disk cache, and in memory.
instruments  the question's program (ReLU, 1000 epochs) at S = 10,000 with every instrument on
             the default schedule and its tables written (metrics.parquet, events.csv), as
             actdiag train does it (on a second thread) and all in one thread, divided by the
             same run with none: wall and CPU time; interleaved, median ratio over 5 rounds
             per --repeats (each run in a new folder, as actdiag train writes into one).
executor     the cells of the default report (every study), no cache, run in this process and
             then on local worker processes (one per core): wall times and the speed-up. Takes
             as long as two reports (about a quarter of that with --quick).
torch        the PyTorch adapter (needs the torch extra), 100 seeds: every instrument on the
             default schedule against none (wall-time ratio, and the ratio inside the recorded
             run), and vmap over stacked seeds against a plain loop over seeds (seed-epochs/s),
             on the question's network and the digits MLP.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform

import numpy as np

from diagnostics.monitor import DEFAULT_EVERY
from diagnostics.presets import PRESETS
from studies.bench import executor_speedup, instruments_overhead
from studies.cli.options import HelpFormatter, parse_names, parse_number_list
from studies.registry import REPORT_STUDIES, STUDIES
from studies.run.estimate import run_estimate
from studies.run.study import StudyOptions
from studies.speed import (
    compile_times,
    engine_epochs,
    program_vs_engines,
    scaling,
    torch_available,
)

INSTRUMENT_ROUNDS = 5  # rounds of the instruments section per --repeats
SECTIONS = ("engine", "scaling", "compile", "instruments", "executor", "torch")
ENGINE_WORK = 2e6  # seed-epochs per numpy measurement (the compiled engine gets five times this)
SCALING_WORK = 4e7  # parameter-seed-epochs per scaling measurement
EXAMPLES = """examples:
  OMP_NUM_THREADS=1 actdiag bench                # engine and instruments tables (single thread)
  actdiag bench --only scaling                   # wide and deep networks
  actdiag bench --quick --sizes 1,100            # a smoke test in seconds
  actdiag bench --only executor --quick          # the process pool's speed-up
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure engine speed against the naive per-sample loop",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--sizes", default="1,100,1000,10000,100000",
                   help="ensemble sizes S (comma list)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per size")
    p.add_argument("--activation", default="tanh", help="tanh | relu | sigmoid")
    p.add_argument("--dtype", default="float64", help="engine dtype: float64 | float32")
    p.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke test")
    p.add_argument(
        "--only", default="engine,instruments",
        help=f"sections to run: {', '.join(SECTIONS)}",
    )
    p.add_argument("--workers", type=int, default=None,
                   help="executor section: worker count (default: one per core)")
    p.set_defaults(run=run)


def check(args: argparse.Namespace) -> tuple[list[str], list[int], float]:
    """Sections, sizes and scale, every flag checked and the work estimated, before any run."""
    sections = parse_names(args.only, SECTIONS, "--only")
    if len(set(sections)) != len(sections):
        raise ValueError(f"--only {args.only!r} repeats a section: list each one once")
    sizes = [int(s) for s in parse_number_list(args.sizes, "--sizes", int)]
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats} is invalid: use a positive integer")
    if args.activation not in ("tanh", "relu", "sigmoid"):
        raise ValueError(f"--activation {args.activation!r} is invalid: use tanh, relu or sigmoid")
    if args.dtype not in ("float64", "float32"):
        raise ValueError(f"--dtype {args.dtype!r} is invalid: use float64 or float32")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is invalid: use a positive integer")
    scale = 0.1 if args.quick else 1.0
    if "torch" in sections and importlib.util.find_spec("torch") is None:
        raise ValueError("--only torch needs torch: pip install 'activation-diagnostics[torch]'")
    if "engine" in sections:
        config = PRESETS["question"]
        for S in sizes:
            epochs = engine_epochs(5 * ENGINE_WORK * scale, S)
            one = run_estimate(config.replace(epochs=epochs), S, n_samples=6, n_columns=3,
                               loss_rows=1, flags={"seeds": f"--sizes (S = {S})",
                                                   "layers": "--sizes"})
            one.seconds *= args.repeats
            one.check(time_flags=f"--sizes (S = {S}) or --repeats {args.repeats}")
    if "instruments" in sections:  # three trainings a round (none, streamed, in line)
        one = run_estimate(PRESETS["question"].replace(epochs=int(1000 * scale)), 10_000,
                           n_samples=6, n_columns=3, loss_rows=1,
                           flags={"seeds": "--repeats", "layers": "--repeats"})
        one.seconds *= 3 * INSTRUMENT_ROUNDS * args.repeats
        one.check(time_flags=f"--repeats {args.repeats}")
    return sections, sizes, scale


def run(args: argparse.Namespace) -> int:
    sections, sizes, scale = check(args)
    if "engine" in sections:
        _print_engine(args, sizes, scale)
    if "scaling" in sections:
        _print_scaling(args, scale)
    if "compile" in sections:
        c = compile_times()
        print(f"\ncompile: numba kernel from scratch {c['compile']:.1f} s, from the on-disk "
              f"cache {c['cache_warm']:.2f} s, already in memory {1000 * c['in_memory']:.1f} ms")
    if "instruments" in sections:
        rounds = INSTRUMENT_ROUNDS * args.repeats  # one ratio varies by +-10% on a VM
        row = instruments_overhead(10_000, int(1000 * scale), rounds)
        print(
            f"\ninstruments overhead: question program (relu), S = {row['S']:,}, "
            f"{row['epochs']} epochs, every instrument on {DEFAULT_EVERY} ({row['records']} "
            f"recordings incl. epoch 0), metrics.parquet and events.csv written, "
            f"median of {rounds} rounds\n"
            f"  training alone {row['bare']:.2f} s (CPU {row['bare_cpu']:.2f} s)\n"
            f"  as actdiag train does it, instruments on their own thread: "
            f"{row['streamed']:.2f} s (CPU {row['streamed_cpu']:.2f} s; the monitor's passes "
            f"and probes {row['probing']:.2f} s)\n"
            f"  all in the training thread, written afterwards: {row['inline']:.2f} s\n"
            f"  with instruments / training alone: {row['ratio']:.2f}x wall time (middle half "
            f"of the rounds {row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}x), "
            f"{row['cpu_ratio']:.2f}x CPU time ({row['inline_ratio']:.2f}x on one thread)"
        )
    if "executor" in sections:
        opts = StudyOptions(quick=args.quick, cache_dir=None, progress=False)
        cells = [c for n in REPORT_STUDIES for c in STUDIES[n].cells(opts)]
        row = executor_speedup(cells, args.workers)
        print(
            f"\nexecutor: the {'quick' if args.quick else 'default'} report's {row['cells']} "
            f"cells, no cache\n  in-process {row['sequential']:.1f} s, {row['workers']} local "
            f"processes {row['processes']:.1f} s, speed-up {row['speedup']:.2f}x"
        )
    if "torch" in sections:
        _print_torch(args)
    return 0


def _print_torch(args: argparse.Namespace) -> None:
    from studies.bench import torch_measure

    rows = torch_measure(100, args.quick)
    print(f"\ntorch adapter: 100 seeds, float64, plain SGD, {rows[0]['threads']} torch threads "
          "(overhead target: at most 1.2x on the question network)")
    for r in rows:
        if r["measure"] == "hook_overhead":
            print(f"  {r['workload']}: every instrument on {r['schedule']} ({r['recordings']} "
                  f"recordings over {r['epochs']} epochs): without {r['plain_s']:.2f} s, with "
                  f"{r['recorded_s']:.2f} s, ratio {r['ratio']:.2f}x (inside the recorded run "
                  f"{r['ratio_inside_run']:.2f}x)")
        else:
            print(f"  {r['workload']}: {r['epochs']} epochs, vmap "
                  f"{r['vmap_seed_epochs_per_s']:,.0f} seed-epochs/s, loop over seeds "
                  f"{r['loop_seed_epochs_per_s']:,.0f} seed-epochs/s, {r['speedup']:.1f}x")


def _print_engine(args: argparse.Namespace, sizes: list[int], scale: float) -> None:
    rows = program_vs_engines(sizes, args.repeats, ENGINE_WORK * scale)
    print(
        f"engine: the question's 2-4-4-1 network, tanh, lr 0.1, online SGD, 6 samples, float64; "
        f"{_machine()}; seed-epochs per second, median of {args.repeats} shuffled rounds"
    )
    print(f"{'S':>8} {'your loop':>11} {'numpy':>12} {'compiled':>12} {'numpy x':>8} "
          f"{'compiled x':>11}")
    for r in rows:
        print(f"{r['S']:>8,} {r['program']:>11,.0f} {r['numpy']:>12,.0f} {r['compiled']:>12,.0f} "
              f"{r['numpy_x']:>7.1f}x {r['compiled_x']:>10.1f}x")


def _print_scaling(args: argparse.Namespace, scale: float) -> None:
    rows = scaling(rounds=args.repeats, work=SCALING_WORK * scale)
    rows += scaling(rounds=args.repeats, work=SCALING_WORK * scale, batches=("full",), samples=64)
    missing = "n/a (torch not installed)"
    torch_width = 11 if torch_available() else len(missing)
    print(f"\nscaling: the fixed preset (tanh hidden, linear output), 256 seeds; {_machine()}; "
          f"seed-epochs per second, median of {args.repeats} shuffled rounds; torch: plain SGD "
          "with torch.bmm over the seed axis, 1 thread (a speed reference, not an engine)")
    print(f"{'network':>12} {'samples':>8} {'batch':>7} {'params':>8} {'numpy':>11} "
          f"{'kernel':>11} {'matmul':>11} {'torch':>{torch_width}}  fastest")
    for r in rows:
        torch_cell = missing if r["torch"] is None else f"{r['torch']:,.0f}"
        print(f"{r['network']:>12} {r['samples']:>8} {r['batch']:>7} {r['params']:>8,} "
              f"{r['numpy']:>11,.0f} {r['kernel']:>11,.0f} {r['matmul']:>11,.0f} "
              f"{torch_cell:>{torch_width}}  {r['best']}")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{cpu}, numpy {np.__version__}, BLAS threads "
            f"{os.environ.get('OMP_NUM_THREADS', 'default')}, load {os.getloadavg()[0]:.1f}")
