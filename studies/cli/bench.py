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
torch        the PyTorch adapter (needs the torch extra), 100 seeds: every instrument on the
             default schedule against none (wall-time ratio, and the ratio inside the recorded
             run), and vmap over stacked seeds against a plain loop over seeds (seed-epochs/s),
             on the question's network and the digits MLP.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform

import numpy as np

from diagnostics.monitor import DEFAULT_EVERY
from diagnostics.presets import PRESETS
from studies.bench import engine_epochs, engine_vs_naive, executor_speedup, instruments_overhead
from studies.cli.options import HelpFormatter, parse_names, parse_number_list
from studies.registry import REPORT_STUDIES, STUDIES
from studies.run.estimate import run_estimate
from studies.run.study import StudyOptions

SECTIONS = ("engine", "instruments", "executor", "torch")
EXAMPLES = """examples:
  actdiag bench                                  # engine and instruments tables (about 2 min)
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
    p.add_argument("--sizes", default="1,100,1000,10000", help="ensemble sizes S (comma list)")
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
            epochs = engine_epochs(S, scale)
            one = run_estimate(config.replace(epochs=epochs), S, n_samples=6, n_columns=3,
                               loss_rows=1, flags={"seeds": f"--sizes (S = {S})",
                                                   "layers": "--sizes"})
            one.seconds *= args.repeats
            one.check(time_flags=f"--sizes (S = {S}) or --repeats {args.repeats}")
    return sections, sizes, scale


def run(args: argparse.Namespace) -> int:
    sections, sizes, scale = check(args)
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
