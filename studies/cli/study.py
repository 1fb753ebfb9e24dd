"""``actdiag study NAME`` and ``actdiag report``: run studies into a reports directory."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from diagnostics.activations import get_activation
from diagnostics.data import spec_size
from diagnostics.train import ENGINES
from studies.cli.options import HelpFormatter, parse_layers, parse_number_list
from studies.registry import REPORT_STUDIES, STUDIES, findings_in, get_study
from studies.report import write_report
from studies.run.cache import DEFAULT_CACHE
from studies.run.estimate import Estimate, cells_estimate
from studies.run.executors import EXECUTORS, make_executor
from studies.run.files import check_output_dir, foreign_entries
from studies.run.study import (
    DEFAULT_CHUNK_SEEDS,
    STUDY_FILE_SUFFIXES,
    StudyOptions,
    missing_needs,
    run_studies,
)

CANONICAL_OUT = "reports"  # where a default, full `actdiag report` writes (the committed copy)
RUN_OPTIONS = ("quick", "seeds", "epochs", "activations", "layers", "lrs", "data", "inputs",
               "targets", "engine")  # options that change what is computed (to round-off)

STUDY_EXAMPLES = """examples:
  actdiag study causes --quick                   # into runs/report-quick/causes/
  actdiag study question                         # the full study, into reports/question/
  actdiag study convergence --activations relu,tanh --seeds 100 --out runs/conv
"""
REPORT_EXAMPLES = """examples:
  actdiag report                                 # every study and reports/REPORT.md
  actdiag report --quick                         # fewer seeds: runs/report-quick/
  actdiag report --executor dask --scheduler tcp://HOST:8786 --seeds 100000 --out runs/big
"""


def _add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs, same figures")
    p.add_argument(
        "--out", default=None,
        help=f"output directory (default: {CANONICAL_OUT} for the default run; with options "
        "that change the run, runs/report-OPTIONS, e.g. runs/report-quick)",
    )
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per cell (default: each study's own, e.g. question 1000)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epoch budget per cell (default: each study's own, e.g. question 5000)")
    p.add_argument("--activations", default=None,
                   help="comma list of activations to compare (default: each study's own)")
    p.add_argument("--layers", default=None, help="network shape, inputs first, e.g. 2,4,4,1")
    p.add_argument("--lrs", default=None, help="comma list of learning rates")
    p.add_argument(
        "--data", default="question", help="question | add:N[:LOW:HIGH[:SEED]] | a CSV path"
    )
    p.add_argument("--inputs", default=None, help="CSV input columns")
    p.add_argument("--targets", default=None, help="CSV target columns")
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE),
        help="where finished chunks are kept so an interrupted run resumes",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute every cell")
    p.add_argument(
        "--executor", default="processes",
        help="where cells run: processes (one per core), sequential, "
        "dask (an existing cluster: with --scheduler), dask-local (a new LocalCluster)",
    )
    p.add_argument("--workers", type=int, default=None,
                   help="worker count (default: one per core)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, tcp://HOST:PORT")
    p.add_argument(
        "--chunk-seeds", type=int, default=DEFAULT_CHUNK_SEEDS,
        help="split cells into chunks of this many seeds; results do not depend on it",
    )
    p.add_argument("--engine", default="compiled", choices=ENGINES,
                   help="compiled: the numba kernel; numpy: the readable reference (slower); "
                   "results agree to round-off")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def _names(text: str, flag: str, check) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(","))
    if not text.strip() or not all(names):
        raise ValueError(f"{flag} {text!r} is invalid: use a comma list of names")
    for name in names:
        check(name)
    repeated = [n for n in names if names.count(n) > 1]
    if repeated:
        raise ValueError(f"{flag} {text!r} lists {repeated[0]!r} twice: list each one once")
    return names


def options_from_args(args: argparse.Namespace) -> StudyOptions:
    """Validated StudyOptions from the flags (the data is checked, and loaded if small)."""
    for flag in ("seeds", "epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value} is invalid: use a positive integer")
    activations = None
    if args.activations is not None:
        activations = _names(args.activations, "--activations", get_activation)
    lrs = None
    if args.lrs is not None:
        lrs = tuple(parse_number_list(args.lrs, "--lrs"))
        if len(set(lrs)) != len(lrs):
            raise ValueError(f"--lrs {args.lrs!r} repeats a rate: list each one once")
    columns = {}
    for key in ("inputs", "targets"):
        text = getattr(args, key)
        if text is not None:
            columns[key] = tuple(c.strip() for c in text.split(","))
            if not all(columns[key]):
                raise ValueError(
                    f"--{key} {text!r} is invalid: use a comma list of column names or indices"
                )
    size = spec_size(args.data)
    if size is not None:
        Estimate({f"the data ({size[0]} samples of {args.data})": (3.0 * size[0] * 3 * 8,
                                                                    "--data")}, 0.0).check()
    opts = StudyOptions(
        quick=args.quick,
        seeds=args.seeds,
        epochs=args.epochs,
        activations=activations,
        layers=parse_layers(args.layers) if args.layers is not None else None,
        lrs=lrs,
        data=args.data,
        inputs=columns.get("inputs"),
        targets=columns.get("targets"),
        cache_dir=None if args.no_cache else args.cache,
        progress=not args.quiet,
        engine=args.engine,
    )
    n_in, n_out = opts.io_shape()  # validates the data early, before any work
    if opts.layers and (opts.layers[0] != n_in or opts.layers[-1] != n_out):
        raise ValueError(
            f"--layers {','.join(map(str, opts.layers))} takes {opts.layers[0]} inputs and "
            f"{opts.layers[-1]} outputs, but the data has {n_in} inputs and {n_out} targets"
        )
    return opts


def default_out(args: argparse.Namespace) -> str:
    """reports/ for the default run; runs/report-OPTIONS when options change what is computed."""
    parts = []
    for name in RUN_OPTIONS:
        value = getattr(args, name)
        if name == "quick":
            if value:
                parts.append("quick")
        elif name == "data":
            if value != "question":
                parts.append("data-" + Path(value).stem if not value.startswith("add:")
                             else value.replace(":", "_"))
        elif name == "engine":
            if value != "compiled":
                parts.append(f"engine-{value}")
        elif value is not None:
            parts.append(f"{name}-{value}".replace(",", "_"))
    if not parts:
        return CANONICAL_OUT
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(parts))[:80].strip("._-") or "custom"
    return str(Path("runs") / f"report-{slug}")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run one study: CSV tables and PNG figures in OUT/NAME/",
        description="Run one study. Studies: " + ", ".join(STUDIES) + ".",
        epilog=STUDY_EXAMPLES, formatter_class=HelpFormatter,
    )
    p.add_argument("name", help=", ".join(STUDIES))
    _add_study_args(p)
    p.set_defaults(run=run_one)
    r = sub.add_parser(
        "report",
        help="run every study and write OUT/REPORT.md (the main job)",
        description=(
            "Run every study (" + ", ".join(REPORT_STUDIES) + ") and write their tables and "
            "figures and OUT/REPORT.md, which answers the question's two questions from this "
            "run's numbers. Finished cells are cached, so an interrupted report resumes."
        ),
        epilog=REPORT_EXAMPLES, formatter_class=HelpFormatter,
    )
    _add_study_args(r)
    r.set_defaults(run=run_report)


def _check_out(out: str, names: tuple[str, ...], report: bool) -> Path:
    """--out writable, and every study folder in it one that a study wrote (or absent)."""
    path = check_output_dir(out)
    for name in names:
        target = path / name
        if target.exists() and not target.is_dir():
            raise ValueError(f"--out {out!r} holds a file {name!r} where the study's folder goes")
        foreign = foreign_entries(
            target, lambda n, is_dir: not is_dir and Path(n).suffix in STUDY_FILE_SUFFIXES)
        if foreign:
            raise ValueError(
                f"--out {out!r}: {name}/ holds {foreign[0]!r}, which no study wrote; it would be "
                "replaced: give another --out"
            )
    if report and (path / "REPORT.md").is_dir():
        raise ValueError(f"--out {out!r} holds a folder REPORT.md where the report goes")
    return path


def plan(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """Everything a study or report run will do, checked before any work or any file."""
    studies = [get_study(n) for n in names]
    for study in studies:
        missing = missing_needs(study)
        if missing:
            raise ValueError(missing)
    if args.executor not in EXECUTORS:
        raise ValueError(f"unknown executor {args.executor!r}: use one of {', '.join(EXECUTORS)}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is invalid: use a positive integer")
    if args.chunk_seeds < 1:
        raise ValueError(f"--chunk-seeds {args.chunk_seeds} is invalid: use a positive integer")
    if args.executor == "dask" and not (args.scheduler or "").strip():
        raise ValueError("--executor dask needs --scheduler tcp://HOST:PORT")
    opts = options_from_args(args)
    workers = 1 if args.executor == "sequential" else (args.workers or os.cpu_count() or 1)
    cells = [c for s in studies for c in s.cells(opts)]
    sizes = {}
    for cell in cells:
        if cell.data not in sizes:
            d = cell.dataset()
            sizes[cell.data] = (d.n_samples, d.n_inputs + d.n_outputs)
    estimate = cells_estimate(cells, chunk_seeds=args.chunk_seeds, workers=workers,
                              data_sizes=sizes)
    epochs = f"--epochs {args.epochs}" if args.epochs else "--epochs"
    seeds = f"--seeds {args.seeds}" if args.seeds else "--seeds"
    estimate.check(workers=workers, time_flags=f"{epochs} or {seeds} (or use --quick)")
    out = args.out if args.out is not None else default_out(args)
    out_path = _check_out(out, names, report=len(names) > 1)
    if opts.cache_dir is not None:
        check_output_dir(opts.cache_dir, "--cache")
    return {"studies": studies, "opts": opts, "out": out_path, "estimate": estimate}


def _run(args: argparse.Namespace, names: tuple[str, ...]) -> tuple[dict, Path]:
    p = plan(args, names)
    out = p["out"]
    executor = make_executor(args.executor, workers=args.workers, scheduler=args.scheduler)
    try:
        metas = run_studies(p["studies"], p["opts"], out, executor=executor,
                            chunk_seeds=args.chunk_seeds)
    finally:
        executor.close()
    if not args.quiet:
        for name, m in metas.items():
            print(f"{name}: {m['cells']} cells, {m['seed_epochs']:,} seed-epochs, "
                  f"{m['train_seconds']:.1f} s of training -> {out / name}/")
    return metas, out


def run_one(args: argparse.Namespace) -> int:
    _run(args, (args.name,))
    return 0


def run_report(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _, out = _run(args, REPORT_STUDIES)
    findings, metas = findings_in(out)
    path = write_report(out, findings, metas, wall_seconds=time.perf_counter() - started)
    if not args.quiet:
        print(f"wrote {path} ({time.perf_counter() - started:.1f} s)")
    return 0
