"""``actdiag train``: train an ensemble of seeds and write config, loss, outcomes and parameters."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import sys
import textwrap
import time
from pathlib import Path

from diagnostics.activations import ACTIVATIONS
from diagnostics.config import Config
from diagnostics.data import check_layers, load_data, spec_size
from diagnostics.initializers import BIAS_INITS, INITIALIZERS
from diagnostics.monitor import DEFAULT_EVERY, Monitor, probe_rows, select_probes
from diagnostics.optimizers import OPTIMIZERS
from diagnostics.presets import PRESETS, get_preset
from diagnostics.probes import GROUPS, PROBES
from diagnostics.schedules import SCHEDULE_FORMS, Schedule
from diagnostics.train import ENGINES, train
from studies.cli.options import (
    SEEDS_FORMS,
    HelpFormatter,
    format_seeds,
    parse_layers,
    parse_seeds,
)
from studies.run.estimate import (
    Estimate,
    check_disk,
    checked_schedule,
    run_estimate,
    schedule_count,
    seed_count,
)
from studies.run.files import check_output_dir, foreign_entries
from studies.run.outputs import (
    RUN_FILES,
    config_columns,
    metrics_file,
    summary,
    write_outputs,
)
from studies.run.progress import epoch_bar
from studies.run.stream import StreamedMonitor

AUTO_LOSS_ROWS = 2_000_000  # --loss-every auto: every epoch up to this many rows, else log:500

# flag -> (Config field, type, help)
CONFIG_FLAGS: dict[str, tuple[str, object, str]] = {
    "--activation": ("activation", str, f"hidden activation: {', '.join(ACTIVATIONS)}"),
    "--output-activation": (
        "output_activation",
        str,
        "output activation, or 'same' for the hidden one (the question)",
    ),
    "--leaky-slope": ("leaky_slope", float, "negative-side slope of leaky_relu (0.01)"),
    "--layers": ("layers", str, "units per layer, inputs first (2,4,4,1)"),
    "--init": ("init", str, f"weight init: {', '.join(INITIALIZERS)}"),
    "--bias-init": ("bias_init", str, f"bias init: {', '.join(BIAS_INITS)}"),
    "--bias-scale": ("bias_scale", float, "std of normal biases, or the constant value (1.0)"),
    "--rng": ("rng", str, "legacy = np.random.seed(k) draws (question) | pcg64"),
    "--optimizer": ("optimizer", str, f"{', '.join(OPTIMIZERS)}"),
    "--lr": ("lr", float, "learning rate"),
    "--momentum": ("momentum", float, "momentum / nesterov coefficient (0.9)"),
    "--beta1": ("beta1", float, "Adam beta1 (0.9)"),
    "--beta2": ("beta2", float, "Adam beta2 (0.999)"),
    "--rms-decay": ("rms_decay", float, "RMSProp decay (0.99)"),
    "--eps": ("eps", float, "Adam / RMSProp epsilon (1e-8)"),
    "--epochs": ("epochs", int, "passes over the data"),
    "--batch": ("batch", str, "online (data order) | shuffled (online, per seed) | full | B"),
    "--bias-update": ("bias_update", str, "gradient | decay (the question's b -= lr*b)"),
    "--backprop-weights": (
        "backprop_weights",
        str,
        "current | updated (the question: back-propagate through already-updated weights)",
    ),
    "--dtype": ("dtype", str, "float64 | float32"),
    "--threshold": ("threshold", float, "converged once the epoch's MSE <= this (1e-3)"),
    "--stuck-tol": ("stuck_tol", float, "stuck when every |full-data gradient| <= this (0)"),
}


def _preset_values(field: str) -> str:
    """'(default: 5000)' or '(default: question 0.01, fixed 0.1)': each preset's value."""
    values = {name: getattr(config, field) for name, config in PRESETS.items()}
    shown = {n: ("same" if v is None and field == "output_activation" else
                 ",".join(map(str, v)) if isinstance(v, tuple) else str(v))
             for n, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"(default: {next(iter(shown.values()))})"
    return "(default: " + ", ".join(f"{n} {v}" for n, v in shown.items()) + ")"


EXAMPLES = """examples:
  actdiag train --preset question --seeds 1000          # the user's ReLU program, 1000 seeds
  actdiag train --preset fixed --activation tanh --lr 0.1 --record all --out runs/tanh
  actdiag train --config runs/tanh/config.json --seeds 0-99   # rerun a run on other seeds
  actdiag train --model my_net.py:make_model --data my.csv --epochs 200 --lr 0.05 --record all
"""


def add_engine_args(parser: argparse.ArgumentParser, *, preset_default: str = "question") -> None:
    """The flags every engine-backed command shares (config, data)."""
    g = parser.add_argument_group("configuration (flags override the preset)")
    g.add_argument(
        "--preset",
        default=preset_default,
        help="starting configuration: " + "; ".join(
            f"{n} (epochs {c.epochs}, lr {c.lr:g}, {c.activation}, bias update {c.bias_update})"
            for n, c in PRESETS.items()) + f" (default: {preset_default})",
    )
    g.add_argument("--config", metavar="FILE", help="start from a run's config.json instead")
    for flag, (field, kind, text) in CONFIG_FLAGS.items():
        text = re.sub(r" \([0-9.,e-]+\)$", "", text)  # the presets' values follow
        g.add_argument(flag, type=kind, default=None, help=f"{text} {_preset_values(field)}")
    d = parser.add_argument_group("data")
    d.add_argument(
        "--data",
        default=None,
        help="question (default) | add:N[:LOW:HIGH[:SEED]] | path to a CSV file",
    )
    d.add_argument("--inputs", default=None, help="CSV input columns, names or 0-based indices")
    d.add_argument("--targets", default=None, help="CSV target columns (default: the last)")


def config_from_args(args: argparse.Namespace) -> tuple[Config, dict, dict]:
    """Config, data spec and saved run record (from --config, else empty) the flags describe.

    Precedence: the preset, then a saved config.json, then explicit flags.
    """
    saved: dict = {}
    if args.config is not None:
        saved = _read_saved(args.config)
        try:
            config = Config.from_dict(saved["config"])
        except ValueError as exc:
            raise ValueError(f"config file {args.config!r}: {exc}") from None
    else:
        config = get_preset(args.preset)
    changes = {}
    for flag, (field, _kind, _text) in CONFIG_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            changes[field] = value
    if "layers" in changes:
        changes["layers"] = parse_layers(changes["layers"])
    if changes.get("output_activation") == "same":
        changes["output_activation"] = None
    config = config.replace(**changes) if changes else config
    data_spec = dict(saved.get("data", {"spec": "question", "inputs": None, "targets": None}))
    if args.data is not None:
        data_spec = {"spec": args.data, "inputs": None, "targets": None}
    for key in ("inputs", "targets"):
        if getattr(args, key) is not None:
            columns = [c.strip() for c in getattr(args, key).split(",")]
            if not all(columns):
                raise ValueError(
                    f"--{key} {getattr(args, key)!r} is invalid: use a comma list of column "
                    "names or 0-based indices"
                )
            data_spec[key] = columns
    return config, data_spec, saved


def load_data_spec(spec: dict):
    """Load the dataset a data spec names."""
    return load_data(spec["spec"], inputs=spec.get("inputs"), targets=spec.get("targets"))


# config.json entries besides "config": name -> (accepted types, what to say)
SAVED_ENTRIES = {
    "data": ((dict,), "an object with spec, inputs, targets"),
    "seeds": ((str, int), f"seeds as text: {SEEDS_FORMS}"),
    "loss_every": ((str,), f"a schedule: auto, {SCHEDULE_FORMS}"),
    "record": ((str, type(None)), "null or a comma list of instruments"),
    "record_every": ((str, type(None)), f"null or a schedule: {SCHEDULE_FORMS}"),
    "command": ((str,), "the command line, as text"),
    "engine": ((str,), f"the engine that ran: {', '.join(ENGINES)} (informative)"),
    "epochs_run": ((int,), "epochs actually run (informative)"),
}


def _read_saved(path: str) -> dict:
    if not str(path).strip():
        raise ValueError(f"--config {path!r} is empty: give a run's config.json")
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path!r} not found") from None
    except IsADirectoryError:
        raise ValueError(f"config file {path!r} is a directory; use a run's config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:80]
        raise ValueError(f"config file {path!r} is not readable JSON ({reason})") from None
    if not isinstance(saved, dict) or "config" not in saved:
        kind = type(saved).__name__ if not isinstance(saved, dict) else "object without 'config'"
        raise ValueError(
            f"config file {path!r} holds a JSON {kind}; use a run's config.json (an object with "
            "a 'config' entry)"
        )
    for key, (types, what) in SAVED_ENTRIES.items():
        if key in saved and (not isinstance(saved[key], types) or isinstance(saved[key], bool)):
            raise ValueError(f"config file {path!r}: {key} {saved[key]!r} is invalid: use {what}")
    unknown = sorted(set(saved) - set(SAVED_ENTRIES) - {"config"})
    if unknown:
        raise ValueError(
            f"config file {path!r}: unknown entry {unknown[0]!r}: use config, "
            + ", ".join(SAVED_ENTRIES)
        )
    data = saved.get("data")
    if data is not None:
        extra = sorted(set(data) - {"spec", "inputs", "targets"})
        if "spec" not in data or extra:
            raise ValueError(
                f"config file {path!r}: data {data!r} is invalid: use an object with spec, "
                "inputs, targets"
            )
        if not isinstance(data["spec"], str):
            raise ValueError(
                f"config file {path!r}: data spec {data['spec']!r} is invalid: use 'question', "
                "'add:N[:LOW:HIGH[:SEED]]' or a CSV path (a string)"
            )
        for key in ("inputs", "targets"):
            cols = data.get(key)
            if cols is not None and not (
                isinstance(cols, list) and cols and all(isinstance(c, str) for c in cols)
            ):
                raise ValueError(
                    f"config file {path!r}: data {key} {cols!r} is invalid: use null or a list "
                    "of column names"
                )
    return saved


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an ensemble of seeds and write loss, outcomes and parameters",
        description=textwrap.fill(
            "Train one network per seed, all at once, and write DIR/config.json (enough to rerun "
            "with --config), DIR/loss.csv (seed, epoch, loss), DIR/outcomes.csv (seed, outcome, "
            "epochs_to_threshold, final_loss) and DIR/params.npz (initial and final weights and "
            "biases, seed axis first). Outcomes: converged (epoch MSE <= threshold), diverged "
            "(non-finite loss or parameters; frozen), stuck (not converged and the full-data "
            "gradient is exactly zero), not_converged (still moving at the end)."
        ),
        epilog=EXAMPLES, formatter_class=HelpFormatter,
    )
    add_engine_args(p)
    r = p.add_argument_group("run")
    r.add_argument("--seeds", default=None, help=f"{SEEDS_FORMS} (default: 100)")
    r.add_argument("--out", default=None, help="output directory (default runs/train-TIME)")
    r.add_argument(
        "--loss-every",
        default=None,
        help=f"when to keep the loss: auto (every epoch up to {AUTO_LOSS_ROWS:,} rows, else "
        f"log:500) | {SCHEDULE_FORMS} (default: auto)",
    )
    r.add_argument(
        "--record",
        default=None,
        help="instruments to record into metrics.parquet (see --metrics-format) and events.csv: "
        f"all, or a comma list of groups ({', '.join(GROUPS)}) and probes ({', '.join(PROBES)}) "
        "(default: none). They are measured and written on a second thread while training goes "
        "on, rows by epoch, then layer, then seed",
    )
    r.add_argument(
        "--metrics-format",
        default="parquet",
        help="the instruments' table: parquet (metrics.parquet; pandas.read_parquet reads it) | "
        "csv (metrics.csv: the same columns as text, several times larger and slower to write) "
        "(default: parquet)",
    )
    r.add_argument(
        "--record-every",
        default=None,
        help=f"when to record instruments (epoch 0 always): {SCHEDULE_FORMS} "
        f"(default: {DEFAULT_EVERY})",
    )
    r.add_argument("--engine", default="compiled", choices=ENGINES,
                   help="compiled: the numba kernel (fast); numpy: the readable reference; "
                   "matmul: batched matrix products (wide layers). Results agree to round-off")
    r.add_argument("--until-settled", action="store_true",
                   help="stop as soon as every seed has converged, diverged or is frozen (no "
                   "update can change it); loss.csv then has no rows after that epoch")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    r.add_argument(
        "--model", default=None, metavar="FILE.py:FUNCTION",
        help="train your own PyTorch model instead of the engine's network: FUNCTION() returns "
        "an nn.Module (torch.manual_seed(seed) runs before each call); plain SGD at --lr "
        "(default 0.01), --epochs (default 1000), --batch (default online); with --data, "
        "--seeds, --threshold, --record, --record-every, --metrics-format, --loss-every, --out. "
        "Needs pip install 'activation-diagnostics[torch]'",
    )
    p.set_defaults(run=run)


def _pick(flag_value, saved: dict, key: str, default):
    """The flag's value when given (even empty), else the saved run's, else the default."""
    if flag_value is not None:
        return flag_value
    value = saved.get(key)
    return default if value is None else value


def plan(args: argparse.Namespace) -> dict:
    """Everything ``train`` will do, checked before anything is trained, allocated or written."""
    config, data_spec, saved = config_from_args(args)
    seeds_text = str(_pick(args.seeds, saved, "seeds", "100"))
    n_seeds = seed_count(seeds_text)
    if n_seeds < 1 or not seeds_text.strip():
        parse_seeds(seeds_text)  # raises the message naming the accepted forms
    size = spec_size(data_spec["spec"])
    if size is not None:
        Estimate({f"the data ({size[0]} samples of {data_spec['spec']})":
                  (3.0 * size[0] * size[1] * 8, "--data")}, 0.0).check()
    data = load_data_spec(data_spec)
    check_layers(data, config.layers)
    if isinstance(config.batch, int) and config.batch > data.n_samples:
        raise ValueError(
            f"batch {config.batch} is larger than the {data.n_samples} samples of {data.name}: "
            f"use online, shuffled, full or a size from 1 to {data.n_samples}"
        )
    loss_spec = str(_pick(args.loss_every, saved, "loss_every", "auto"))
    metrics_file(args.metrics_format)  # checks --metrics-format
    record_spec = _pick(args.record, saved, "record", None)
    record_every = str(_pick(args.record_every, saved, "record_every", DEFAULT_EVERY))
    probes = len(select_probes(record_spec)) if record_spec is not None else 0
    L = len(config.layers) - 1
    acts = [config.hidden_activation] * (L - 1) + [config.out_activation]
    rows = probe_rows(acts, select_probes(record_spec)) if probes else []  # (layer, probe)
    values = len(rows)
    E = config.epochs
    if loss_spec == "auto":
        loss_spec = "every:1" if n_seeds * E <= AUTO_LOSS_ROWS else "log:500"
    loss_rows = schedule_count(loss_spec, E, first=1, flag="--loss-every")
    record_rows = schedule_count(record_every, E, flag="--record-every") + 1
    estimate = run_estimate(
        config, n_seeds, n_samples=data.n_samples, n_columns=data.n_inputs + data.n_outputs,
        loss_rows=loss_rows, record_rows=record_rows if probes else 0, probes=probes,
        loss_spec=f"--loss-every {loss_spec}", record_spec=f"--record-every {record_every}",
        streamed=True, record_values=values,
    )
    estimate.check()
    # now cheap to materialise
    seeds = parse_seeds(seeds_text)
    loss_epochs = checked_schedule(loss_spec, E, first=1, flag="--loss-every")
    record_epochs = checked_schedule(record_every, E, flag="--record-every")
    out = _check_out(args.out)
    check_disk(out if out is not None else Path("runs"), seeds=n_seeds, loss_rows=loss_rows,
               record_rows=record_rows if probes else 0, record_values=values,
               wide_rows=len({layer for layer, _ in rows}), metrics_format=args.metrics_format,
               flags={"record": "--record-every or --record", "loss": "--loss-every",
                      "seeds": "--seeds"},
               record_spec=f"--record-every {record_every}", loss_spec=f"--loss-every {loss_spec}")
    return dict(config=config, data_spec=data_spec, data=data, seeds=seeds, loss_spec=loss_spec,
                loss_epochs=loss_epochs, record_spec=record_spec, record_every=record_every,
                record_epochs=record_epochs, out=out, estimate=estimate)


def _check_out(out_text: str | None) -> Path | None:
    """--out checked (None: a new runs/train-TIME folder, made when writing)."""
    if out_text is None:
        check_output_dir("runs", "--out")
        return None
    out = check_output_dir(out_text)
    foreign = foreign_entries(out, lambda name, is_dir: name in RUN_FILES and not is_dir)
    if foreign:
        raise ValueError(
            f"--out {out_text!r} holds {foreign[0]!r}, which train did not write: give a new or "
            "empty directory, or one of an earlier train run"
        )
    return out


def _make_out(out: Path | None) -> tuple[Path, list[Path]]:
    """The run's folder, made now (a new runs/train-TIME when ``out`` is None), and the folders
    this made, outermost first (removed again if training does not finish)."""
    if out is None:
        made = [] if Path("runs").exists() else [Path("runs")]
        out = new_run_dir()
        return out, [*made, out]
    made = [q for q in (out, *out.parents) if not q.exists()][::-1]
    out.mkdir(parents=True, exist_ok=True)
    return out, made


def _observer(monitor: Monitor | None, out: Path, metrics_format: str):
    """What ``train`` observes with: the monitor on its own thread, writing the metrics file
    into ``out`` as it goes (``studies.run.stream``); nothing without a monitor."""
    if monitor is None:
        return contextlib.nullcontext()
    return StreamedMonitor(monitor, out / metrics_file(metrics_format),
                           config_columns(monitor.config), metrics_format)


def new_run_dir(root: Path = Path("runs")) -> Path:
    """A fresh runs/train-TIME[-K] folder, created exclusively (two runs never share one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in itertools.count():
        path = root / (f"train-{stamp}" if k == 0 else f"train-{stamp}-{k}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "model", None) is not None:
        from studies.cli.train_model import run as run_model

        return run_model(args, _check_out, load_data_spec, new_run_dir)
    p = plan(args)
    config, seeds = p["config"], p["seeds"]
    monitor = (
        Monitor(config, p["data"], seeds, p["record_spec"],
                Schedule.at(*p["record_epochs"]) if len(p["record_epochs"]) else Schedule.never(),
                keep=False)  # each recording is held until its rows are written
        if p["record_spec"] is not None else None
    )
    out, made = p["out"], []
    if monitor is not None:  # the metrics file is written while training goes on
        out, made = _make_out(out)
    try:
        with _observer(monitor, out, args.metrics_format) as observer, \
                epoch_bar(config.epochs, enabled=not args.quiet, desc=f"{seeds.size} seeds") as bar:
            result = train(
                config, p["data"], seeds, loss_epochs=p["loss_epochs"], monitor=observer,
                progress=bar, engine=args.engine, until_settled=args.until_settled,
            )
    except BaseException:
        for path in reversed(made):  # the folders made for this run, if nothing else is there
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        raise
    record = {
        "config": config.to_dict(),
        "data": p["data_spec"],
        "seeds": format_seeds(seeds),
        "loss_every": p["loss_spec"],
        "record": p["record_spec"],
        "record_every": p["record_every"] if p["record_spec"] is not None else None,
        "command": "actdiag " + " ".join(getattr(args, "argv", sys.argv[1:])),
        "engine": result.engine,
        "epochs_run": int(result.epochs_run),  # < epochs: stopped once every seed settled
    }
    out = out if out is not None else new_run_dir()
    write_outputs(out, result, record, monitor, args.metrics_format, streamed=True)
    written = {"config.json", "loss.csv", "outcomes.csv", "params.npz"}
    if monitor is not None:
        written |= {metrics_file(args.metrics_format), "events.csv"}
    for name in set(RUN_FILES) - written:  # an earlier run's files must not pass for this one's
        (out / name).unlink(missing_ok=True)
    if not args.quiet:
        print(summary(result, out, monitor is not None, args.metrics_format))
    return 0

