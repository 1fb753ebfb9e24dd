"""A training run's files: config.json, loss.csv, outcomes.csv, params.npz, metrics, events.

The instruments' values go to ``metrics.parquet`` (or ``metrics.csv``): one wide table, written
chunk by chunk straight from the monitor's stored array through Arrow, so neither pandas nor text
formatting is on the path by default (``studies.run.stream`` writes it while training goes on).
``pandas.read_parquet`` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from diagnostics.config import Config
from diagnostics.monitor import EVENTS, Monitor, Recorder
from diagnostics.train import Result
from studies.run.estimate import WRITER_ROWS
from studies.run.files import (
    needs_quotes,
    write_arrow_csv,
    write_csv,
    write_json,
    write_parquet_chunks,
    write_with,
)

CHUNK_ROWS = WRITER_ROWS  # rows of a table built at once (bounds the writer's memory)
METRICS_FORMATS = ("parquet", "csv")  # --metrics-format; the file is metrics.<format>
KEY_COLUMNS = ("seed", "epoch", "layer")
RUN_FILES = ("config.json", "loss.csv", "outcomes.csv", "params.npz",
             *(f"metrics.{f}" for f in METRICS_FORMATS), "events.csv")  # all a train run writes
# Parquet pages are not compressed: measured on --record all of the question's network (22.8 M
# values, S = 10^4), snappy made the file 128 MB instead of 188 MB but took 0.33 s of CPU to
# write it against 0.21 s, and most of the float64 values do not compress. The key columns are
# delta-encoded (rows come by epoch, layer, seed: runs and steps of one, nearly free to store,
# and faster to encode than a dictionary); the configuration columns and the metrics that are
# shares of a few units (DICTIONARY_METRICS: a handful of distinct values) are dictionaries;
# the other metrics plain float64 (a dictionary on them costs more than it saves): 157 MB in
# all. Min/max statistics only for seed, epoch and layer, so a reader can skip row groups.
PARQUET_COMPRESSION = "none"
WRITE_BATCH_ROWS = 65_536  # rows the Parquet writer encodes a call (its default 1024: 10% slower)
DICTIONARY_METRICS = ("dead_fraction", "saturation_fraction", "network_dead")


def metrics_file(metrics_format: str) -> str:
    """The metrics table's file name for a format (``metrics.parquet``, ``metrics.csv``); a
    one-line ValueError naming ``--metrics-format`` for any other format."""
    if metrics_format not in METRICS_FORMATS:
        raise ValueError(f"--metrics-format {metrics_format!r} is invalid: use "
                         f"{' or '.join(METRICS_FORMATS)}")
    return f"metrics.{metrics_format}"


def write_outputs(out: Path, result: Result, record: dict, monitor: Monitor | None = None,
                  metrics_format: str = "parquet", streamed: bool = False) -> None:
    """config.json, loss.csv, outcomes.csv, params.npz (+ metrics.parquet or metrics.csv, and
    events.csv), atomically; ``streamed``: the metrics file was written during training
    (``studies.run.stream``) and is not written again.

    The long tables are streamed in chunks (``CHUNK_ROWS``): the memory they take while written
    is bounded, whatever the number of seeds and epochs.
    """
    if monitor is not None:
        if not streamed:
            write_metrics(out / metrics_file(metrics_format), monitor,
                          config_columns(monitor.config), metrics_format)
        write_events(out / "events.csv", monitor)
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
    """The configuration columns that lead every row of the metrics table."""
    c = config
    return {
        "activation": c.activation,
        "output_activation": c.output_activation or c.activation,
        "init": c.init,
        "optimizer": c.optimizer,
        "lr": c.lr,
        "batch": str(c.batch),
    }


def recording_groups(recorder: Recorder, chunk_rows: int = CHUNK_ROWS) -> list[tuple[int, int]]:
    """The recordings ``[first, last)`` the metrics table writes as one chunk, in order.

    Consecutive recordings while their rows fit in ``chunk_rows`` (one at least), and a group
    also ends before a gap of more than 1% of the recorded epochs: where recordings are sparse
    (late in a log schedule) each is written as soon as it is made, so a stream that writes
    during training (``studies.run.stream``) has little left to write when training ends.
    """
    layers, _ = recorder.wide_layout()
    epochs = recorder.epochs
    per_recording = max(1, recorder.seeds.size * len(layers))
    step = max(1, chunk_rows // per_recording)
    gap = max(1, int(epochs[-1]) // 100) if epochs.size else 1
    groups, first = [], 0
    for r in range(epochs.size):
        if r + 1 - first >= step or r + 1 == epochs.size or epochs[r + 1] - epochs[r] > gap:
            groups.append((first, r + 1))
            first = r + 1
    return groups


def metrics_chunks(recorder: Recorder, columns: dict, chunk_rows: int = CHUNK_ROWS,
                   groups: list[tuple[int, int]] | None = None) -> Iterator[pa.Table]:
    """The metrics table in chunks of at most ``chunk_rows`` rows: a chunk per group of
    recordings (``recording_groups``, or ``groups``), or, for a recording that alone does not
    fit, a chunk per layer and range of seeds (at least one seed a chunk), so that the rows
    keep their order. No recordings: one table with no rows.

    Columns: ``columns`` (one value each for the whole run: the configuration), then seed,
    epoch, layer and one per metric (``Recorder.wide``, rows by epoch, layer, seed), null where
    a metric does not apply to the layer or its value is nan.
    """
    groups = recording_groups(recorder, chunk_rows) if groups is None else groups
    if not groups:
        yield metrics_table(recorder, [], columns)  # no rows, every column
        return
    layers, _ = recorder.wide_layout()
    S = recorder.seeds.size
    for first, last in groups:
        if S * len(layers) <= chunk_rows:
            yield metrics_table(recorder, recorder.wide_pieces(first=first, last=last), columns)
            continue
        for r in range(first, last):
            for layer in layers:
                for lo in range(0, S, max(1, chunk_rows)):
                    pieces = recorder.wide_pieces(lo, lo + chunk_rows, r, r + 1, [layer])
                    yield metrics_table(recorder, pieces, columns)


def metrics_table(recorder: Recorder, pieces: Iterable, columns: dict) -> pa.Table:
    """An Arrow table of the wide table's ``pieces`` (``Recorder.wide_pieces``) after the
    constant ``columns``: strings as one-entry dictionaries (an index of zeros), numbers
    repeated. A metric column is the pieces' value arrays, unchanged (no copy), one after
    another, and nulls where the metric does not apply (or its value is nan). Only the metric
    columns are nullable (the others never are: no null levels to write).
    """
    _, metrics = recorder.wide_layout()
    keys: dict[str, list] = {"seed": [], "epoch": [], "layer": []}
    cols: list[list[pa.Array]] = [[] for _ in metrics]
    for epoch, layer, seeds, values in pieces:
        n = seeds.size
        keys["seed"].append(seeds)
        keys["epoch"].append(np.full(n, epoch, dtype=np.int64))
        keys["layer"].append(np.full(n, layer, dtype=np.int64))
        for col, v in zip(cols, values, strict=True):
            if v is None:
                col.append(pa.nulls(n, pa.float64()))
            else:
                nan = np.isnan(v)
                col.append(pa.array(v, mask=nan if nan.any() else None))
    n = sum(len(k) for k in keys["seed"])
    fields, arrays = [], []
    zeros = np.zeros(n, np.int32)  # every string column's index (Arrow arrays are immutable)
    for name, value in columns.items():
        if isinstance(value, str):
            array = pa.DictionaryArray.from_arrays(zeros, pa.array([value]))
        else:
            array = pa.array(np.full(n, value))
        fields.append(pa.field(name, array.type, nullable=False))
        arrays.append(array)
    for name, parts in keys.items():
        fields.append(pa.field(name, pa.int64(), nullable=False))
        arrays.append(pa.array(np.concatenate(parts) if parts else np.zeros(0, np.int64)))
    for name, parts in zip(metrics, cols, strict=True):
        fields.append(pa.field(name, pa.float64(), nullable=True))
        arrays.append(pa.chunked_array(parts, pa.float64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_metrics(path: Path, recorder: Recorder, columns: dict, metrics_format: str = "parquet",
                  chunk_rows: int = CHUNK_ROWS, chunks: Iterable[pa.Table] | None = None) -> Path:
    """Write the recorder's values to ``path`` as the wide table, chunk by chunk
    (``metrics_chunks``, or ``chunks`` when given: tables with its columns): Parquet (one row
    group per chunk) or CSV (the same columns, as text)."""
    metrics_file(metrics_format)  # refuses an unknown format before any work
    if chunks is None:
        chunks = metrics_chunks(recorder, columns, chunk_rows)
    if metrics_format == "csv":
        return write_arrow_csv(path, chunks, quote=needs_quotes(
            [*columns, *(v for v in columns.values() if isinstance(v, str))]))
    return write_parquet_chunks(path, chunks, compression=PARQUET_COMPRESSION,
                                use_dictionary=[*columns, *DICTIONARY_METRICS],
                                column_encoding=dict.fromkeys(KEY_COLUMNS, "DELTA_BINARY_PACKED"),
                                write_batch_size=WRITE_BATCH_ROWS,
                                write_statistics=list(KEY_COLUMNS))


def write_events(path: Path, recorder: Recorder) -> Path:
    """events.csv: seed, epoch, layer, unit, event (born_dead, died or revived)."""
    columns = recorder.events(codes=True)
    columns["event"] = pa.DictionaryArray.from_arrays(columns["event"], pa.array(EVENTS))
    return write_arrow_csv(path, [pa.table(columns)], quote=False)


def loss_chunks(result: Result, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """loss.csv (seed, epoch, loss; rows by epoch then seed) in chunks of recorded epochs."""
    R, S = result.loss.shape
    step = max(1, chunk_rows // max(S, 1))
    for lo in range(0, max(R, 1), step):
        loss = result.loss[lo : lo + step]
        keep = ~np.isnan(loss)
        yield pa.table({
            "seed": np.broadcast_to(result.seeds, loss.shape)[keep],
            "epoch": np.broadcast_to(result.loss_epochs[lo : lo + step, None], loss.shape)[keep],
            "loss": loss[keep],
        })


def write_loss(path: Path, result: Result, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Stream ``result.tidy("loss")``'s rows to ``path``, a chunk of epochs at a time."""
    return write_arrow_csv(path, loss_chunks(result, chunk_rows), quote=False)


def summary(result: Result, out: Path | None = None, recorded: bool = False,
            metrics_format: str = "parquet") -> str:
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
        extra = f", {metrics_file(metrics_format)}, events.csv" if recorded else ""
        lines.append(f"wrote {out}/config.json, loss.csv, outcomes.csv, params.npz{extra}")
    return "\n".join(lines)


def write_model_outputs(out: Path, result, record: dict, columns: dict,
                        metrics_format: str = "parquet") -> None:
    """A torch model's run (``torch_adapter.run_seeds``): the same files as ``write_outputs``;
    params.npz holds each named parameter as ``<name>_initial`` / ``<name>_final`` (seed axis
    first); ``columns`` go first in the metrics table (what the run's configuration was)."""
    monitor = result.monitor
    if monitor is not None:
        write_metrics(out / metrics_file(metrics_format), monitor, columns, metrics_format)
        write_events(out / "events.csv", monitor)
    write_csv(out / "loss.csv", pd.DataFrame(result.tidy("loss")))
    write_csv(out / "outcomes.csv", pd.DataFrame(result.tidy("outcomes")))
    arrays = {"seeds": result.seeds}
    for name, value in result.initial_params.items():
        arrays[f"{name}_initial"] = value
        arrays[f"{name}_final"] = result.final_params[name]
    write_with(out / "params.npz", lambda tmp: _save_npz(tmp, arrays))
    write_json(out / "config.json", record)
