"""``actdiag train``: train an ensemble of seeds and write config, loss, outcomes and parameters."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from diagnostics.activations import ACTIVATIONS
from diagnostics.config import Config
from diagnostics.data import check_layers, load_data
from diagnostics.initializers import BIAS_INITS, INITIALIZERS
from diagnostics.monitor import DEFAULT_EVERY, Monitor
from diagnostics.optimizers import OPTIMIZERS
from diagnostics.presets import PRESETS, get_preset
from diagnostics.probes import GROUPS, PROBES
from diagnostics.schedules import SCHEDULE_FORMS, schedule
from diagnostics.train import train
from studies.cli.options import SEEDS_FORMS, format_seeds, parse_layers, parse_seeds
from studies.run.outputs import summary, write_outputs
from studies.run.progress import epoch_bar

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


def add_engine_args(parser: argparse.ArgumentParser, *, preset_default: str = "question") -> None:
    """The flags every engine-backed command shares (config, data)."""
    g = parser.add_argument_group("configuration (flags override the preset)")
    g.add_argument(
        "--preset",
        default=preset_default,
        help=f"starting configuration: {', '.join(PRESETS)} (default {preset_default})",
    )
    g.add_argument("--config", metavar="FILE", help="start from a run's config.json instead")
    for flag, (_field, kind, text) in CONFIG_FLAGS.items():
        g.add_argument(flag, type=kind, default=None, help=text)
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
    if args.config:
        saved = _read_saved(args.config)
        config = Config.from_dict(saved["config"])
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
            data_spec[key] = [c.strip() for c in getattr(args, key).split(",")]
    return config, data_spec, saved


def load_data_spec(spec: dict):
    """Load the dataset a data spec names."""
    return load_data(spec["spec"], inputs=spec.get("inputs"), targets=spec.get("targets"))


def _read_saved(path: str) -> dict:
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path!r} not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"config file {path!r} is not readable JSON ({exc})") from None
    if not isinstance(saved, dict) or "config" not in saved:
        raise ValueError(f"config file {path!r} has no 'config' entry; use a run's config.json")
    return saved


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an ensemble of seeds and write loss, outcomes and parameters",
        description=(
            "Train one network per seed, all at once, and write DIR/config.json (enough to rerun "
            "with --config), DIR/loss.csv (seed, epoch, loss), DIR/outcomes.csv (seed, outcome, "
            "epochs_to_threshold, final_loss) and DIR/params.npz (initial and final weights and "
            "biases, seed axis first). Outcomes: converged (epoch MSE <= threshold), diverged "
            "(non-finite loss or parameters; frozen), stuck (not converged and the full-data "
            "gradient is exactly zero), not_converged (still moving at the end)."
        ),
    )
    add_engine_args(p)
    r = p.add_argument_group("run")
    r.add_argument("--seeds", default=None, help=f"{SEEDS_FORMS} (default 100)")
    r.add_argument("--out", default=None, help="output directory (default runs/train-TIME)")
    r.add_argument(
        "--loss-every",
        default=None,
        help=f"when to keep the loss: auto (every epoch up to {AUTO_LOSS_ROWS:,} rows, else "
        f"log:500) | {SCHEDULE_FORMS}",
    )
    r.add_argument(
        "--record",
        default=None,
        help="instruments to record into metrics.csv and events.csv: all, or a comma list of "
        f"groups ({', '.join(GROUPS)}) and probes ({', '.join(PROBES)}); default none",
    )
    r.add_argument(
        "--record-every",
        default=None,
        help=f"when to record instruments (epoch 0 always): {SCHEDULE_FORMS} "
        f"(default {DEFAULT_EVERY})",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config, data_spec, saved = config_from_args(args)
    seeds_text = args.seeds or saved.get("seeds", "100")
    seeds = parse_seeds(seeds_text)
    data = load_data_spec(data_spec)
    check_layers(data, config.layers)
    loss_spec = args.loss_every or saved.get("loss_every", "auto")
    if loss_spec == "auto":
        loss_spec = "every:1" if seeds.size * config.epochs <= AUTO_LOSS_ROWS else "log:500"
    loss_epochs = schedule(loss_spec, config.epochs, first=1)
    out = Path(args.out or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")

    record_spec = args.record or saved.get("record")
    record_every = args.record_every or saved.get("record_every") or DEFAULT_EVERY
    schedule(record_every, config.epochs)  # a bad schedule is an error even with nothing to record
    monitor = Monitor(config, data, seeds, record_spec, record_every) if record_spec else None
    with epoch_bar(config.epochs, enabled=not args.quiet, desc=f"{seeds.size} seeds") as bar:
        result = train(
            config, data, seeds, loss_epochs=loss_epochs, monitor=monitor, progress=bar
        )
    record = {
        "config": config.to_dict(),
        "data": data_spec,
        "seeds": format_seeds(seeds),
        "loss_every": loss_spec,
        "record": record_spec,
        "record_every": record_every if record_spec else None,
        "command": "actdiag " + " ".join(getattr(args, "argv", sys.argv[1:])),
    }
    write_outputs(out, result, record, monitor)
    if not args.quiet:
        print(summary(result, out, monitor is not None))
    return 0
