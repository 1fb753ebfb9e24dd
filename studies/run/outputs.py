"""A training run's files: config.json, loss.csv, outcomes.csv, params.npz, metrics, events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.monitor import Monitor
from diagnostics.train import Result
from studies.run.files import write_csv, write_json, write_with


def write_outputs(out: Path, result: Result, record: dict, monitor: Monitor | None = None) -> None:
    """config.json, loss.csv, outcomes.csv, params.npz (+ metrics.csv, events.csv), atomically."""
    if monitor is not None:
        write_csv(out / "metrics.csv", metrics_frame(monitor))
        write_csv(out / "events.csv", pd.DataFrame(monitor.events()))
    write_csv(out / "loss.csv", pd.DataFrame(result.tidy("loss")))
    write_csv(out / "outcomes.csv", pd.DataFrame(result.tidy("outcomes")))
    arrays = {"seeds": result.seeds}
    for l, ((w0, b0), (w1, b1)) in enumerate(
        zip(result.initial_params, result.final_params, strict=True), start=1
    ):
        arrays |= {f"W{l}_initial": w0, f"b{l}_initial": b0, f"W{l}_final": w1, f"b{l}_final": b1}
    write_with(out / "params.npz", lambda tmp: _save_npz(tmp, arrays))
    write_json(out / "config.json", record)


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def metrics_frame(monitor: Monitor) -> pd.DataFrame:
    """The monitor's tidy rows with the configuration columns first."""
    c = monitor.config
    frame = pd.DataFrame(monitor.tidy())
    config_cols = {
        "activation": c.activation,
        "output_activation": c.output_activation or c.activation,
        "init": c.init,
        "optimizer": c.optimizer,
        "lr": c.lr,
        "batch": str(c.batch),
    }
    for i, (name, value) in enumerate(config_cols.items()):
        frame.insert(i, name, value)
    return frame


def summary(result: Result, out: Path | None = None, recorded: bool = False) -> str:
    """A few lines: what ran, outcome counts with shares, median epochs to threshold."""
    c, S = result.config, result.seeds.size
    out_act = c.activation if c.output_activation is None else c.output_activation
    lines = [
        f"trained {S} seeds x {c.epochs} epochs in {result.seconds:.2f} s "
        f"({S * c.epochs / max(result.seconds, 1e-9):,.0f} seed-epochs/s): "
        f"layers {','.join(map(str, c.layers))}, {c.activation} (output {out_act}), "
        f"{c.optimizer} lr {c.lr:g}, batch {c.batch}, data {result.data.name}"
    ]
    for name, n in result.counts().items():
        lines.append(f"  {name:<14}{n:>8}  {100 * n / S:5.1f}%")
    med = result.median_epochs_to_threshold()
    med_text = "never (fewer than half converged)" if np.isinf(med) else f"{med:g}"
    lines.append(f"  median epochs to threshold {c.threshold:g}: {med_text}")
    if out is not None:
        extra = ", metrics.csv, events.csv" if recorded else ""
        lines.append(f"wrote {out}/config.json, loss.csv, outcomes.csv, params.npz{extra}")
    return "\n".join(lines)


def write_model_outputs(out: Path, result, record: dict, columns: dict) -> None:
    """A torch model's run (``torch_adapter.run_seeds``): the same files as ``write_outputs``;
    params.npz holds each named parameter as ``<name>_initial`` / ``<name>_final`` (seed axis
    first); ``columns`` go first in metrics.csv (what the run's configuration was)."""
    monitor = result.monitor
    if monitor is not None:
        frame = pd.DataFrame(monitor.tidy())
        for i, (name, value) in enumerate(columns.items()):
            frame.insert(i, name, value)
        write_csv(out / "metrics.csv", frame)
        write_csv(out / "events.csv", pd.DataFrame(monitor.events()))
    write_csv(out / "loss.csv", pd.DataFrame(result.tidy("loss")))
    write_csv(out / "outcomes.csv", pd.DataFrame(result.tidy("outcomes")))
    arrays = {"seeds": result.seeds}
    for name, value in result.initial_params.items():
        arrays[f"{name}_initial"] = value
        arrays[f"{name}_final"] = result.final_params[name]
    write_with(out / "params.npz", lambda tmp: _save_npz(tmp, arrays))
    write_json(out / "config.json", record)
