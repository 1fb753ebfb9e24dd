"""``actdiag study NAME`` and ``actdiag report``: run studies into a reports directory."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from diagnostics.activations import get_activation
from studies.cli.options import parse_layers, parse_number_list
from studies.registry import STUDIES, findings_in, get_study
from studies.report import write_report
from studies.run.cells import DEFAULT_CACHE
from studies.run.executors import make_executor
from studies.run.study import DEFAULT_CHUNK_SEEDS, StudyOptions, run_studies


def _add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs, same figures")
    p.add_argument("--out", default="reports", help="output directory (default reports)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell (study default)")
    p.add_argument("--epochs", type=int, default=None, help="epoch budget per cell")
    p.add_argument("--activations", default=None, help="comma list of activations to compare")
    p.add_argument("--layers", default=None, help="network shape, inputs first, e.g. 2,4,4,1")
    p.add_argument("--lrs", default=None, help="comma list of learning rates")
    p.add_argument(
        "--data", default="question", help="question | add:N[:LOW:HIGH[:SEED]] | a CSV path"
    )
    p.add_argument("--inputs", default=None, help="CSV input columns")
    p.add_argument("--targets", default=None, help="CSV target columns")
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE),
        help=f"where finished cells are kept so an interrupted run resumes ({DEFAULT_CACHE})",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute every cell")
    p.add_argument(
        "--executor", default="processes",
        help="where cells run: processes (default, one per core), sequential, "
        "dask (an existing cluster: with --scheduler), dask-local (a new LocalCluster)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker count (default: cores)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, tcp://HOST:PORT")
    p.add_argument(
        "--chunk-seeds", type=int, default=DEFAULT_CHUNK_SEEDS,
        help=f"split cells into chunks of this many seeds ({DEFAULT_CHUNK_SEEDS}); results "
        "do not depend on it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from_args(args: argparse.Namespace) -> StudyOptions:
    """Validated StudyOptions from the flags."""
    for flag in ("seeds", "epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value} is invalid: use a positive integer")
    activations = None
    if args.activations:
        activations = tuple(a.strip() for a in args.activations.split(",") if a.strip())
        for name in activations:
            get_activation(name)
    opts = StudyOptions(
        quick=args.quick,
        seeds=args.seeds,
        epochs=args.epochs,
        activations=activations,
        layers=parse_layers(args.layers) if args.layers else None,
        lrs=tuple(parse_number_list(args.lrs, "--lrs")) if args.lrs else None,
        data=args.data,
        inputs=tuple(args.inputs.split(",")) if args.inputs else None,
        targets=tuple(args.targets.split(",")) if args.targets else None,
        cache_dir=None if args.no_cache else args.cache,
        progress=not args.quiet,
    )
    n_in, n_out = opts.io_shape()  # validates the data early, before any work
    if opts.layers and (opts.layers[0] != n_in or opts.layers[-1] != n_out):
        raise ValueError(
            f"--layers {','.join(map(str, opts.layers))} takes {opts.layers[0]} inputs and "
            f"{opts.layers[-1]} outputs, but the data has {n_in} inputs and {n_out} targets"
        )
    return opts


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run one study: CSV tables and PNG figures in OUT/NAME/",
        description="Run one study. Studies: " + ", ".join(STUDIES) + ".",
    )
    p.add_argument("name", help=", ".join(STUDIES))
    _add_study_args(p)
    p.set_defaults(run=run_one)
    r = sub.add_parser(
        "report",
        help="run every study and write OUT/REPORT.md (the main job)",
        description=(
            "Run every study and write their tables and figures and OUT/REPORT.md, which answers "
            "the question's two questions from this run's numbers. Finished cells are cached, so "
            "an interrupted report resumes."
        ),
    )
    _add_study_args(r)
    r.set_defaults(run=run_report)


def _run(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    studies = [get_study(n) for n in names]
    opts = options_from_args(args)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is invalid: use a positive integer")
    if args.chunk_seeds < 1:
        raise ValueError(f"--chunk-seeds {args.chunk_seeds} is invalid: use a positive integer")
    executor = make_executor(args.executor, workers=args.workers, scheduler=args.scheduler)
    try:
        metas = run_studies(studies, opts, Path(args.out), executor=executor,
                            chunk_seeds=args.chunk_seeds)
    finally:
        executor.close()
    if not args.quiet:
        for name, m in metas.items():
            print(f"{name}: {m['cells']} cells, {m['seed_epochs']:,} seed-epochs, "
                  f"{m['train_seconds']:.1f} s of training -> {Path(args.out) / name}/")
    return metas


def run_one(args: argparse.Namespace) -> int:
    _run(args, (args.name,))
    return 0


def run_report(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _run(args, tuple(STUDIES))
    out = Path(args.out)
    findings, metas = findings_in(out)
    path = write_report(out, findings, metas, wall_seconds=time.perf_counter() - started)
    if not args.quiet:
        print(f"wrote {path} ({time.perf_counter() - started:.1f} s)")
    return 0
