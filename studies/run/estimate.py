"""What a run will cost, estimated before any work: memory and time, and refusal when it cannot fit.

Nothing here allocates in proportion to the request: seeds, schedules and datasets are counted
from their specs, so ``--seeds 1000000000`` or ``--loss-every log:1000000000000`` is refused in
microseconds instead of exhausting the machine. The estimates are deliberately rough and lean
towards *allowing* a run: memory is a lower-bound sketch of the arrays the engine, the monitor
and the tables hold at once (``actdiag train`` streams its tables to files in chunks, so only
its stored arrays grow with the run; a study's cells hold long tables whole); time assumes a
fast machine. A run is refused only when even that cannot fit: more memory than a safety
fraction of what is available, or more than ``MAX_DAYS`` of computing.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diagnostics.config import Config
from diagnostics.schedules import SCHEDULE_FORMS, Schedule, schedule

MEMORY_FRACTION = 0.7  # refuse a run that needs more than this share of the available memory
MAX_DAYS = 7.0  # refuse a run estimated (on a fast machine) to take longer than this
STEP_SECONDS = 2e-6  # at least this per update step (numpy call overhead), fast machine
SEED_WORK_SECONDS = 5e-10  # at least this per seed x sample x parameter x epoch, fast machine
CHUNK_BYTES = 4096  # bookkeeping per chunk of a cell (its Cell, future, cache path)
ROW_BYTES = 8  # one numeric cell of a table
WRITER_ROWS = 200_000  # rows a streaming table writer builds at once (studies.run.outputs)
# parameter copies that may wait for the instruments' thread (studies.run.stream): the default
# log schedule asks for most of its recordings in the first few epochs, faster than the thread
# measures and writes them, and it catches up later; a bound in bytes, not in recordings
STREAM_BYTES = 256 * 2**20
# parameter arrays the thread has observed and hands back for training to fill again (a new
# array costs its page faults: measured, 10^4 seeds x 37 parameters, 0.28 ms to fill a new one,
# 0.06 ms a used one; the training thread's time between kernel calls at 76 recordings went
# from 35 to 20 ms, of about 800)
SPARE_ARRAYS = 4
KEPT = ("the loss", "instruments", "per-seed")  # parts of a cell's result kept after it ran


def available_memory() -> int:
    """Bytes of memory available to a new computation (MemAvailable, else free pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3  # unknown: assume a modest machine


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 2 * 365 * 86400:
        return f"{s / 86400:.0f} days"
    return f"{s / (365 * 86400):.3g} years"


# --- schedules, counted without materialising them -------------------------------------------


def _parse_schedule(spec, flag: str) -> tuple[str, object]:
    """(kind, arg) of a schedule spec, validated the way ``diagnostics.schedules`` reads it."""
    if isinstance(spec, Schedule):
        spec = str(spec)
    if spec is None or spec == "none":
        return "none", None
    text = str(spec).strip()
    bad = ValueError(f"{flag} {text!r} is invalid: use {SCHEDULE_FORMS}")
    kind, _, arg = text.partition(":")
    if not arg:
        kind, arg = ("list", text) if "," in text else ("every", text)
        if text == "all":
            kind, arg = "every", "1"
    if kind in ("every", "log"):
        if not arg.strip().isdigit() or int(arg) < 1:
            raise bad
        return kind, int(arg)
    if kind == "list":
        parts = [p.strip() for p in arg.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise bad
        return kind, [int(p) for p in parts]
    raise bad


def schedule_count(spec, budget: int, *, first: int = 0, flag: str = "schedule") -> int:
    """How many epochs ``spec`` selects in ``[first, budget]`` (an upper bound), cheaply."""
    kind, arg = _parse_schedule(spec, flag)
    span = max(0, budget - first + 1)
    if kind == "none":
        return 0
    if kind == "every":
        return min(span, budget // arg + 2)
    if kind == "log":
        return min(span, arg + 1)
    return len(set(arg))


def checked_schedule(spec, budget: int, *, first: int = 0, flag: str = "schedule"):
    """``schedule(spec, budget, first)``, refusing listed epochs beyond the budget, never slow.

    A ``log:N`` with N far beyond the budget selects every epoch; it is computed with the
    smallest N that gives the same epochs, so a huge N costs nothing.
    """
    kind, arg = _parse_schedule(spec, flag)
    if kind == "list":
        beyond = sorted(e for e in arg if e > budget)
        if beyond:
            raise ValueError(
                f"{flag} {spec!s} asks for epoch {beyond[0]}, beyond the epoch budget of "
                f"{budget}: list epochs from {first} to {budget}"
            )
        if all(e < first for e in arg):
            raise ValueError(
                f"{flag} {spec!s} selects no epoch: list epochs from {first} to {budget}"
            )
    if kind == "log":
        # geomspace points closer than 1 apart hit every integer: beyond this N nothing changes
        cover = int(budget * math.log(budget + 1)) + 4
        if arg > cover:
            spec = f"log:{cover}"
    return schedule(spec, budget, first=first)


# --- seeds, counted -------------------------------------------------------------------------


def seed_count(spec) -> int:
    """How many seeds a --seeds spec names (a count, ranges A-B, comma lists), cheaply."""
    text = str(spec).strip()
    if text.isdigit():
        return int(text)
    total = 0
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        if sep and a.isdigit() and b.isdigit():
            total += max(0, int(b) - int(a) + 1)
        else:
            total += 1
    return total


# --- the estimate ----------------------------------------------------------------------------


@dataclass
class Estimate:
    """Bytes per part (each with the flags that reduce it) and seconds of computing."""

    parts: dict[str, tuple[float, str]]  # what -> (bytes, flags that reduce it)
    seconds: float
    label: str = ""  # what is computed, e.g. "100 seeds x 5000 epochs"

    @property
    def bytes(self) -> float:
        return sum(b for b, _ in self.parts.values())

    def __add__(self, other: Estimate) -> Estimate:
        parts = dict(self.parts)
        for k, (b, flags) in other.parts.items():
            parts[k] = (parts.get(k, (0.0, flags))[0] + b, flags)
        return Estimate(parts, self.seconds + other.seconds, self.label or other.label)

    def check(self, *, workers: int = 1, time_flags: str = "--epochs or --seeds") -> None:
        """Raise a one-line ValueError if the run cannot fit this machine's memory or a week."""
        limit = MEMORY_FRACTION * available_memory()
        if self.bytes > limit:
            what, (b, flags) = max(self.parts.items(), key=lambda kv: kv[1][0])
            raise ValueError(
                f"this run needs about {human_bytes(self.bytes)} of memory, mostly {what} "
                f"({human_bytes(b)}), more than {MEMORY_FRACTION:.0%} of the "
                f"{human_bytes(limit / MEMORY_FRACTION)} available: reduce {flags}"
            )
        seconds = self.seconds / max(1, workers)
        if seconds > MAX_DAYS * 86400:
            what = f" ({self.label})" if self.label else ""
            raise ValueError(
                f"this run{what} would take at least {human_seconds(seconds)} of computing even "
                f"on a fast machine, beyond the limit of {MAX_DAYS:g} days: reduce {time_flags}"
            )


# the files of a train run, per value or row (upper bounds): a metric value is at most a plain
# float64 in metrics.parquet (its pages are not compressed) and 24 characters and a comma as
# text; a Parquet row's keys are delta-encoded (the seed at most 8 bytes, epoch and layer, in
# runs, next to nothing) and its configuration run-length encoded (measured, --record all of
# the question's network at S = 10^4: 157 MB for 22.8 M values in 3.0 M rows, under 7 bytes a
# value all included; at 10^5 seeds x 200 epochs 1.32 GB for 192 M values)
PARQUET_VALUE_BYTES = 8
CSV_VALUE_BYTES = 25
METRICS_ROW_BYTES = {"parquet": 12, "csv": 80}  # keys and configuration of a row
LOSS_ROW_BYTES = 45  # seed, epoch, loss in loss.csv
DISK_FRACTION = 0.9  # of the free space on the output's file system


def check_disk(where: Path, *, seeds: int, loss_rows: int, record_rows: int,
               record_values: int, wide_rows: int, metrics_format: str, flags: dict,
               record_spec: str = "", loss_spec: str = "") -> float:
    """Refuse, in one line, a train run whose files would not fit the free disk space; return
    their estimated size in bytes. ``wide_rows``: rows of the metrics table per seed and
    recording (its layers); ``where``: the output folder (it need not exist yet); the specs
    name the schedules in the message."""
    per_value = PARQUET_VALUE_BYTES if metrics_format == "parquet" else CSV_VALUE_BYTES
    parts = {
        f"metrics.{metrics_format} ({record_rows} recordings{record_spec and ' of ' + record_spec}"
        f" x {seeds} seeds x {record_values} values)": (
            1.0 * record_rows * seeds * (record_values * per_value
                                         + wide_rows * METRICS_ROW_BYTES[metrics_format]),
            flags["record"]),
        f"loss.csv ({loss_rows} epochs{loss_spec and ' of ' + loss_spec} x {seeds} seeds)": (
            1.0 * loss_rows * seeds * LOSS_ROW_BYTES, flags["loss"]),
    }
    need = sum(b for b, _ in parts.values())
    existing = Path(where).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > DISK_FRACTION * free:
        what, (b, reduce) = max(parts.items(), key=lambda kv: kv[1][0])
        raise ValueError(
            f"this run writes about {human_bytes(need)}, mostly {what} ({human_bytes(b)}), more "
            f"than {DISK_FRACTION:.0%} of the {human_bytes(free)} free on {existing}: reduce "
            f"{reduce} or {flags['seeds']}")
    return need


def n_params(layers: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(layers[:-1], layers[1:], strict=False))


def steps_per_epoch(batch, n_samples: int) -> int:
    if batch == "full":
        return 1
    if batch in ("online", "shuffled"):
        return n_samples
    return max(1, math.ceil(n_samples / int(batch)))


def batch_rows(batch, n_samples: int) -> int:
    if batch == "full":
        return n_samples
    if batch in ("online", "shuffled"):
        return 1
    return min(n_samples, int(batch))


def stream_depth(n_params: int, seeds: int) -> int:
    """Observations (the parameters and those of the epoch before) that may wait for the
    instruments' thread: as many as ``STREAM_BYTES`` holds, at least two."""
    return max(2, STREAM_BYTES // (2 * n_params * seeds * ROW_BYTES))


def run_estimate(
    config: Config,
    seeds: int,
    *,
    n_samples: int,
    n_columns: int,
    loss_rows: int,
    record_rows: int = 0,
    probes: int = 0,
    labels: int = 0,
    flags: dict[str, str] | None = None,
    loss_spec: str = "",
    record_spec: str = "",
    streamed: bool = False,
    record_values: int | None = None,
) -> Estimate:
    """Memory and time of training ``seeds`` seeds of ``config`` with its outputs kept.

    Args:
        config: the configuration (layers, batch, epochs).
        seeds: number of seeds trained at once.
        n_samples, n_columns: the dataset's size (inputs + targets).
        loss_rows: epochs at which the loss is kept; record_rows: epochs the instruments record.
        probes: instruments recorded; labels: label columns added to every tidy row.
        flags: the command's flags that reduce each part (keys: seeds, layers, data, loss, record,
            epochs).
        streamed: the tables are streamed to files in chunks (``actdiag train``): only the
            stored arrays (loss history, instrument values) grow with the run, plus one chunk
            of the writer. Otherwise (a study's cells) the long tables are held whole.
        record_values: values each recording stores per seed (``Recorder.rows``), when known;
            else ``probes x (layers + 1)``, an upper bound.
    """
    f = {"seeds": "--seeds", "layers": "--layers", "data": "--data", "loss": "--loss-every",
         "record": "--record-every or --record", "epochs": "--epochs", **(flags or {})}
    S, P, U = seeds, n_params(config.layers), sum(config.layers)
    N = n_samples
    L = len(config.layers) - 1
    B = batch_rows(config.batch, N)
    width = 3 + labels  # seed, epoch, value + labels
    values = probes * (L + 1) if record_values is None else record_values
    if streamed:
        loss_bytes = 1.0 * loss_rows * S * ROW_BYTES  # the history array only
        # the recordings made but not yet written (Recorder keep=False): one writer chunk's
        # worth and the one being made
        held = min(record_rows, max(1, WRITER_ROWS // max(1, S * (L + 1))) + 1)
        record_bytes = 1.0 * held * values * S * ROW_BYTES
        record_label = f"instruments not yet written ({S} seeds x {held} recordings"
    else:  # the arrays and the long tables built from them
        loss_bytes = 3.0 * loss_rows * S * width * ROW_BYTES
        record_bytes = 3.0 * record_rows * probes * (L + 1) * S * (width + 3) * ROW_BYTES
        record_label = f"instruments ({S} seeds x {record_rows} epochs"
    parts = {
        f"parameters ({S} seeds x {P} parameters)": (
            14.0 * P * S * ROW_BYTES, f"{f['seeds']} or {f['layers']}"),
        f"activations ({S} seeds x {U} units x {max(B, N)} samples)": (
            4.0 * U * (B + N) * S * ROW_BYTES, f"{f['seeds']}, {f['layers']} or {f['data']}"),
        f"the data ({N} samples)": (3.0 * N * n_columns * ROW_BYTES, f["data"]),
        f"the loss history ({S} seeds x {loss_rows} epochs{loss_spec and ' of ' + loss_spec})": (
            loss_bytes, f"{f['loss']} or {f['seeds']}"),
        f"{record_label}{record_spec and ' of ' + record_spec} x {values} values)": (
            record_bytes, f"{f['record']} or {f['seeds']}"),
        f"per-seed outcomes ({S} seeds)": (S * (20 + labels) * ROW_BYTES, f["seeds"]),
    }
    if streamed:
        # one chunk of a table being written: its block of values, the Arrow columns and the
        # row group the Parquet (or CSV) writer encodes (measured: 60-95 MB for 200,000 rows
        # of --record all on the question's network)
        parts["the table writer (one chunk)"] = (
            2.0 * WRITER_ROWS * (width + 6 + max(values, 1)) * ROW_BYTES, f["seeds"])
        if probes:
            # parameters queued for the thread that observes and writes (studies.run.stream):
            # theta and the epoch before, for the waiting observations and the one in work,
            # and the arrays handed back
            parts[f"observations queued ({S} seeds x {P} parameters)"] = (
                ((stream_depth(P, S) + 1) * 2.0 + SPARE_ARRAYS) * P * S * ROW_BYTES, f["seeds"])
        if probes:  # per-unit events: at most one born_dead per unit, and some died / revived
            parts[f"instrument events ({S} seeds x {U} units)"] = (
                3.0 * 5 * U * S * ROW_BYTES, f"{f['record']} or {f['seeds']}")
    if config.batch not in ("online", "full"):
        parts[f"shuffle orders ({S} seeds x {N} samples)"] = (
            3.0 * N * S * ROW_BYTES, f"{f['seeds']} or {f['data']}")
    steps = steps_per_epoch(config.batch, N) * config.epochs
    seconds = steps * STEP_SECONDS + float(S) * config.epochs * N * P * SEED_WORK_SECONDS
    return Estimate(parts, seconds, f"{S} seeds x {config.epochs} epochs")


def cells_estimate(cells: Sequence, *, chunk_seeds: int | None, workers: int,
                   data_sizes: dict[str, tuple[int, int]]) -> Estimate:
    """Memory and time of a grid of cells run in chunks on ``workers`` workers.

    Every cell's tables stay in memory until the studies write theirs, so they add up; the
    engine's working arrays exist for one chunk per worker at a time.
    """
    from diagnostics.monitor import select_probes

    flags = {"seeds": "--seeds", "loss": "--epochs", "record": "--epochs",
             "layers": "--layers or --chunk-seeds"}
    total = Estimate({}, 0.0)
    working, working_what = 0.0, ""
    n_chunks = 0
    for cell in cells:
        S = int(cell.seeds[1] - cell.seeds[0])
        size = min(S, chunk_seeds or S)
        n_chunks += -(-S // max(1, size))
        N, cols = data_sizes[cell.data]
        E = cell.config.epochs
        probes = len(select_probes(cell.record)) if cell.record else 0
        kw = dict(n_samples=N, n_columns=cols, labels=len(cell.labels), probes=probes,
                  loss_rows=schedule_count(cell.loss_every, E, first=1),
                  record_rows=schedule_count(cell.record_every, E) + 1 if probes else 0,
                  flags=flags)
        whole = run_estimate(cell.config, S, **kw)
        chunk = run_estimate(cell.config, size, **kw)
        kept = {k: v for k, v in whole.parts.items() if k.startswith(KEPT)}
        total = total + Estimate(kept, whole.seconds)
        mine = {k: b for k, (b, _) in chunk.parts.items() if not k.startswith(KEPT)}
        if sum(mine.values()) > working:
            working, working_what = sum(mine.values()), max(mine, key=mine.get)
    if cells:
        total.label = (f"{len(cells)} cells of up to {max(c.seeds[1] - c.seeds[0] for c in cells)}"
                       f" seeds x {max(c.config.epochs for c in cells)} epochs")
    total.parts["chunk bookkeeping"] = (n_chunks * float(CHUNK_BYTES), "--chunk-seeds or --seeds")
    total.parts[f"working arrays of {workers} workers, each mostly {working_what}"] = (
        working * max(1, workers), "--layers, --chunk-seeds or --workers")
    return total
