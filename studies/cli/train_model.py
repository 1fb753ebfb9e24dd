"""``actdiag train --model FILE.py:FUNCTION``: train the user's own PyTorch model over seeds.

``FUNCTION()`` (no arguments) returns an ``nn.Module``; ``torch.manual_seed(seed)`` runs before
each call. Training is ``diagnostics.torch_adapter.run_seeds`` with plain SGD at ``--lr``; the
files are those of an engine run (config.json describes the model spec instead of a Config).
Everything -- torch present, the file, the function, the model's shape against the data, every
option -- is checked before any training.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from pathlib import Path

from diagnostics.data import spec_size
from diagnostics.monitor import DEFAULT_EVERY, select_probes
from studies.cli.options import format_seeds, parse_seeds
from studies.run.estimate import Estimate, checked_schedule
from studies.run.outputs import RUN_FILES, metrics_file

INSTALL = "pip install 'activation-diagnostics[torch]'"
DEFAULTS = {"epochs": 1000, "lr": 0.01, "batch": "online", "threshold": 1e-3}
# train flags that describe the numpy engine's network, not a torch model
ENGINE_ONLY = ("config", "activation", "output_activation", "leaky_slope", "layers", "init",
               "bias_init", "bias_scale", "rng", "optimizer", "momentum", "beta1", "beta2",
               "rms_decay", "eps", "bias_update", "backprop_weights", "dtype", "stuck_tol")


def load_maker(spec: str):
    """``make_model`` from ``FILE.py:FUNCTION``; ValueError (one line) when it cannot be."""
    path_text, sep, func = str(spec).rpartition(":")
    if not sep or not path_text or not func.isidentifier():
        raise ValueError(f"--model {spec!r} is invalid: use FILE.py:FUNCTION, e.g. "
                         "model.py:make_model")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"--model {spec!r}: file {path_text!r} not found")
    if func not in _top_level_names(path):
        raise ValueError(f"--model {spec!r}: {path_text!r} has no function {func!r}")
    if importlib.util.find_spec("torch") is None:
        raise ValueError(f"--model needs torch, which is not installed: {INSTALL}")
    name = f"actdiag_user_model_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--model {spec!r}: {path_text!r} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file failed to run: say where, in one line
        raise ValueError(f"--model {spec!r}: importing {path_text!r} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    maker = getattr(module, func, None)
    if not callable(maker):
        raise ValueError(f"--model {spec!r}: {path_text!r} has no function {func!r}")
    return maker


def _top_level_names(path: Path) -> set[str]:
    """Names a Python file defines or imports at its top level (read, not run)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError) as exc:
        raise ValueError(f"--model: {str(path)!r} is not readable Python ({exc})") from None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _check_model(maker, spec: str, data, seed: int) -> None:
    """One model built and run on one sample: a Module whose output fits the targets."""
    import torch
    from torch import nn

    torch.manual_seed(int(seed))
    try:
        model = maker()
    except Exception as exc:
        raise ValueError(f"--model {spec!r}: calling it failed: {type(exc).__name__}: "
                         f"{exc}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model {spec!r} returned a {type(model).__name__}, not a "
                         "torch.nn.Module")
    model = model.double()
    try:
        with torch.no_grad():
            out = model(torch.as_tensor(data.X[:1]))
    except Exception as exc:
        raise ValueError(f"--model {spec!r} does not take the data's {data.n_inputs} inputs: "
                         f"{type(exc).__name__}: {exc}") from None
    if tuple(out.shape) != (1, data.n_outputs):
        raise ValueError(f"--model {spec!r} gives outputs of shape {tuple(out.shape[1:])} per "
                         f"sample, but the data has {data.n_outputs} targets")


def plan(args: argparse.Namespace, check_out, load_data_spec) -> dict:
    """Everything ``train --model`` will do, checked before any training or file
    (``check_out`` and ``load_data_spec``: ``train``'s own checks of --out and --data)."""
    given = [f for f in ENGINE_ONLY if getattr(args, f, None) is not None]
    if given or any(a == "--preset" or a.startswith("--preset=") for a in
                    getattr(args, "argv", [])):
        flag = "--" + (given[0] if given else "preset").replace("_", "-")
        raise ValueError(f"{flag} describes the engine's network and does not apply with "
                         "--model (use --data, --seeds, --epochs, --lr, --batch, --threshold, "
                         "--record, --record-every, --metrics-format, --loss-every, --out)")
    epochs = args.epochs if args.epochs is not None else DEFAULTS["epochs"]
    lr = args.lr if args.lr is not None else DEFAULTS["lr"]
    threshold = args.threshold if args.threshold is not None else DEFAULTS["threshold"]
    if epochs < 1:
        raise ValueError(f"--epochs {epochs} is invalid: use a positive integer")
    if not lr > 0:
        raise ValueError(f"--lr {lr} is invalid: use a positive number")
    if not threshold >= 0:
        raise ValueError(f"--threshold {threshold} is invalid: use a number >= 0")
    batch = args.batch if args.batch is not None else DEFAULTS["batch"]
    if batch.isdigit() and int(batch) > 0:
        batch = int(batch)
    elif batch not in ("online", "shuffled", "full"):
        raise ValueError(f"--batch {args.batch!r} is invalid: use online, shuffled, full or a "
                         "positive size")
    seeds = parse_seeds(args.seeds if args.seeds is not None else "100")
    data_spec = {"spec": args.data or "question", "inputs": None, "targets": None}
    for key in ("inputs", "targets"):
        if getattr(args, key) is not None:
            cols = [c.strip() for c in getattr(args, key).split(",")]
            if not all(cols):
                raise ValueError(f"--{key} {getattr(args, key)!r} is invalid: use a comma list "
                                 "of column names or 0-based indices")
            data_spec[key] = cols
    size = spec_size(data_spec["spec"])
    if size is not None:
        Estimate({f"the data ({size[0]} samples of {data_spec['spec']})":
                  (3.0 * size[0] * size[1] * 8, "--data")}, 0.0).check()
    data = load_data_spec(data_spec)
    if isinstance(batch, int) and batch > data.n_samples:
        raise ValueError(f"batch {batch} is larger than the {data.n_samples} samples of "
                         f"{data.name}: use online, shuffled, full or a size from 1 to "
                         f"{data.n_samples}")
    loss_spec = args.loss_every if args.loss_every not in (None, "auto") else (
        "every:1" if seeds.size * epochs <= 2_000_000 else "log:500")
    checked_schedule(loss_spec, epochs, first=1, flag="--loss-every")
    record_every = args.record_every or DEFAULT_EVERY
    metrics_file(args.metrics_format)  # checks --metrics-format
    if args.record is not None:
        select_probes(args.record)
        checked_schedule(record_every, epochs, flag="--record-every")
    out = check_out(args.out)
    maker = load_maker(args.model)
    _check_model(maker, args.model, data, seeds[0])
    return dict(maker=maker, data=data, data_spec=data_spec, seeds=seeds, epochs=epochs, lr=lr,
                batch=batch, threshold=threshold, loss_spec=loss_spec, record=args.record,
                record_every=record_every, out=out)


def run(args: argparse.Namespace, check_out, load_data_spec, new_run_dir) -> int:
    """``train --model``; the last three are ``train``'s own helpers (see ``plan``)."""
    p = plan(args, check_out, load_data_spec)  # every check first, torch's presence included
    import torch

    from diagnostics.torch_adapter import run_seeds
    from studies.run.outputs import write_model_outputs

    lr = p["lr"]
    result = run_seeds(
        p["maker"], lambda params: torch.optim.SGD(params, lr=lr), p["data"], p["seeds"],
        p["epochs"], batch=p["batch"], threshold=p["threshold"], loss_every=p["loss_spec"],
        record=p["record"], record_every=p["record_every"],
    )
    record = {
        "model": {"spec": args.model, "file": str(Path(args.model.rpartition(":")[0]).resolve()),
                  "function": args.model.rpartition(":")[2], "optimizer": "torch.optim.SGD",
                  "lr": lr, "epochs": p["epochs"], "batch": str(p["batch"]),
                  "threshold": p["threshold"], "dtype": "float64",
                  "torch": torch.__version__, "vectorized": bool(result.vectorized)},
        "data": p["data_spec"],
        "seeds": format_seeds(p["seeds"]),
        "loss_every": p["loss_spec"],
        "record": p["record"],
        "record_every": p["record_every"] if p["record"] is not None else None,
        "command": "actdiag " + " ".join(getattr(args, "argv", sys.argv[1:])),
    }
    out = p["out"] if p["out"] is not None else new_run_dir()
    write_model_outputs(out, result, record, {"model": args.model, "optimizer": "sgd",
                                              "lr": lr, "batch": str(p["batch"])},
                        args.metrics_format)
    written = {"config.json", "loss.csv", "outcomes.csv", "params.npz"}
    if p["record"] is not None:
        written |= {metrics_file(args.metrics_format), "events.csv"}
    for name in set(RUN_FILES) - written:
        (out / name).unlink(missing_ok=True)
    if not args.quiet:
        S = p["seeds"].size
        counts = ", ".join(f"{k} {v}" for k, v in result.counts().items())
        print(f"trained {S} seeds of {args.model} x {p['epochs']} epochs in "
              f"{result.seconds:.2f} s ({'vmap' if result.vectorized else 'loop'}): {counts}\n"
              f"wrote {out}/{', '.join(sorted(written))}")
    return 0

