"""A training run's files: config.json, loss.csv, outcomes.csv, params.npz, metrics, events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics.config import Config
from diagnostics.monitor import Monitor
from diagnostics.train import Result
from studies.run.estimate import WRITER_ROWS
from studies.run.files import write_csv, write_csv_chunks, write_json, write_with

CHUNK_ROWS = WRITER_ROWS  # rows of a table formatted at once (bounds the writer's memory)


def write_outputs(out: Path, result: Result, record: dict, monitor: Monitor | None = None) -> None:
    """config.json, loss.csv, outcomes.csv, params.npz (+ metrics.csv, events.csv), atomically.

    The long tables are streamed in chunks (``CHUNK_ROWS``): the memory they take while written
    is bounded, whatever the number of seeds and epochs.
    """
    if monitor is not None:
        write_metrics(out / "metrics.csv", monitor)
        write_csv(out / "events.csv", pd.DataFrame(monitor.events()))
    write_loss(out / "loss.csv", result)
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


def config_columns(config: Config) -> dict:
    """The configuration columns that lead every row of metrics.csv."""
    c = config
    return {
        "activation": c.activation,
        "output_activation": c.output_activation or c.activation,
        "init": c.init,
        "optimizer": c.optimizer,
        "lr": c.lr,
        "batch": str(c.batch),
    }


def _with_config(columns: dict, config: Config) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    for i, (name, value) in enumerate(config_columns(config).items()):
        frame.insert(i, name, value)
    return frame


def metrics_chunks(monitor: Monitor, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """metrics.csv in seed chunks: configuration columns, seed, epoch, layer, one per metric."""
    layers, _ = monitor.wide_layout()
    per_seed = max(1, monitor.epochs.size * len(layers))
    step = max(1, chunk_rows // per_seed)
    S = monitor.seeds.size
    for lo in range(0, max(S, 1), step):
        yield _with_config(monitor.wide(lo, lo + step), monitor.config)


def write_metrics(path: Path, monitor: Monitor, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Stream the monitor's values to ``path`` in the wide format, seed chunk by seed chunk."""
    return write_csv_chunks(path, metrics_chunks(monitor, chunk_rows))




def loss_chunks(result: Result, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """loss.csv (seed, epoch, loss; rows by epoch then seed) in chunks of recorded epochs."""
    R, S = result.loss.shape
    step = max(1, chunk_rows // max(S, 1))
    for lo in range(0, max(R, 1), step):
        loss = result.loss[lo : lo + step]
        keep = ~np.isnan(loss)
        yield pd.DataFrame({
            "seed": np.broadcast_to(result.seeds, loss.shape)[keep],
            "epoch": np.broadcast_to(result.loss_epochs[lo : lo + step, None], loss.shape)[keep],
            "loss": loss[keep],
        })


def write_loss(path: Path, result: Result, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Stream ``result.tidy("loss")``'s rows to ``path``, a chunk of epochs at a time."""
    return write_csv_chunks(path, loss_chunks(result, chunk_rows))


def summary(result: Result, out: Path | None = None, recorded: bool = False) -> str:
    """A few lines: what ran, outcome counts with shares, median epochs to threshold."""
    c, S = result.config, result.seeds.size
    out_act = c.activation if c.output_activation is None else c.output_activation
    E = result.epochs_run
    lines = [
        f"trained {S} seeds x {E} epochs in {result.seconds:.2f} s "
        f"({S * E / max(result.seconds, 1e-9):,.0f} seed-epochs/s, {result.engine} engine): "
        f"layers {','.join(map(str, c.layers))}, {c.activation} (output {out_act}), "
        f"{c.optimizer} lr {c.lr:g}, batch {c.batch}, data {result.data.name}"
    ]
    for name, n in result.counts().items():
        lines.append(f"  {name:<14}{n:>8}  {100 * n / S:5.1f}%")
    med = result.median_epochs_to_threshold()
    med_text = "never (fewer than half converged)" if np.isinf(med) else f"{med:g}"
    lines.append(f"  median epochs to threshold {c.threshold:g}: {med_text}")
    if E < c.epochs:
        lines.append(f"  stopped after epoch {E:,} of {c.epochs:,}: every seed had settled; "
                     "loss.csv has no rows after it")
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
