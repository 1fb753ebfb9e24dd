"""The chunk cache: finished chunks of cells on disk, in a data format, checked before use.

One entry per chunk, ``<cache>/<study>/<key>.npz``, written atomically. It holds plain arrays
only (one per table column; strings as fixed-width unicode) and a JSON header: the entry's key,
its seed range, each table's columns with their dtypes and row count, and the sha256 of all of
it. It is read with ``allow_pickle=False``: no pickle anywhere, so an entry cannot run code.
An entry that is not loadable, whose checksum or key does not match, whose columns, shapes or
dtypes differ from its header, or whose seeds are not the chunk's, is deleted and recomputed.

The key (``cell_key``) hashes everything that determines a chunk's result: every field of the
cell except ``roles`` (what the study uses it for), the source of ``diagnostics/`` (the engine
and its instruments), of ``studies/run/`` (this code) and of the study package that builds the
cell (``studies/<cell.study>/``), all ``.py`` files recursively, and the numpy version (and
torch's, for a cell that names a torch model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from studies.run.files import write_with

DEFAULT_CACHE = Path("runs/cache")
FORMAT = "actdiag-chunk/1"
SUFFIX = ".npz"
_HERE = Path(__file__).resolve().parent  # studies/run
STUDIES_ROOT = _HERE.parent  # studies/: the study packages live here
DIAGNOSTICS_ROOT = _HERE.parent.parent / "diagnostics"
NOT_IN_KEY = ("roles",)  # Cell fields that do not change the result


# --- the key ---------------------------------------------------------------------------------


@cache
def source_hash(root: str) -> str:
    """sha256 of every .py file under ``root`` (recursively): names and bytes."""
    h = hashlib.sha256()
    base = Path(root)
    if base.is_dir():
        for path in sorted(base.rglob("*.py")):
            h.update(str(path.relative_to(base)).encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def code_version(study: str) -> dict:
    """Hashes of the code a cell of ``study`` depends on, and the numpy version."""
    return {
        "diagnostics": source_hash(str(DIAGNOSTICS_ROOT)),
        "run": source_hash(str(_HERE)),
        "study": source_hash(str(STUDIES_ROOT / study)) if study.isidentifier() else "",
        "numpy": np.__version__,
    }


def cell_key(cell) -> str:
    """Hash of a cell's result-determining fields and of the code that computes it."""
    fields = {
        f.name: getattr(cell, f.name)
        for f in dataclasses.fields(cell) if f.name not in NOT_IN_KEY
    }
    fields["config"] = cell.config.to_dict()
    payload = {"cell": fields, "code": code_version(cell.study)}
    if getattr(cell, "model", None) is not None:  # a torch cell: torch's version matters too
        payload["torch"] = _torch_version()
    text = json.dumps(payload, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _torch_version() -> str:
    """The installed torch's version, without importing it ('' when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return ""


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if dataclasses.is_dataclass(value):
        return {"__type__": type(value).__name__, **{
            f.name: getattr(value, f.name) for f in dataclasses.fields(value)}}
    return repr(value)




# --- writing ---------------------------------------------------------------------------------


class Uncacheable(Exception):
    """A table holds something the data format cannot keep (it is then simply not cached)."""


def _column(series: pd.Series) -> tuple[np.ndarray, str, str]:
    """(array, dtype recorded, kind) of one column: numbers/bools as they are, strings as <U."""
    if series.dtype.kind in "biuf":
        return np.ascontiguousarray(series.to_numpy()), str(series.dtype), "num"
    values = series.tolist()
    if not all(isinstance(v, str) for v in values):
        raise Uncacheable(f"column {series.name!r} holds values that are not text")
    arr = np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")
    return arr, str(series.dtype), "str"


def _digest(header: dict, arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def store(path: Path, key: str, seeds: tuple[int, int], tables: Mapping[str, pd.DataFrame],
          seconds: float) -> bool:
    """Write one chunk's tables atomically; False (nothing written) if they cannot be kept."""
    arrays: dict[str, np.ndarray] = {}
    described: dict[str, dict | None] = {}
    try:
        for t, (table, frame) in enumerate(tables.items()):
            if frame.shape == (0, 0):
                described[table] = None  # an empty DataFrame(): nothing recorded
                continue
            if len(set(frame.columns)) != frame.shape[1]:
                raise Uncacheable("repeated column names")
            cols = []
            for j, name in enumerate(frame.columns):
                arr, dtype, kind = _column(frame[name])
                arrays[f"t{t}c{j}"] = arr
                cols.append([str(name), dtype, kind, arr.dtype.str])
            described[table] = {"rows": len(frame), "columns": cols}
    except Uncacheable:
        return False
    header = {"format": FORMAT, "key": key, "seeds": [int(seeds[0]), int(seeds[1])],
              "seconds": float(seconds), "tables": described}
    header["sha256"] = _digest(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_with(path, save)
    return True


# --- reading ---------------------------------------------------------------------------------


class BadEntry(Exception):
    """The entry fails a check: it is removed and the chunk recomputed."""


def load(path: Path, key: str, seeds: tuple[int, int]
         ) -> tuple[dict[str, pd.DataFrame], float] | None:
    """The tables and seconds of a checked entry; None (and the file removed) if it fails."""
    if not path.exists():
        return None
    try:
        return _load(path, key, seeds)
    except (BadEntry, OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError, json.JSONDecodeError, RecursionError, MemoryError):
        path.unlink(missing_ok=True)
        return None


def _load(path: Path, key: str, seeds: tuple[int, int]):
    with np.load(path, allow_pickle=False) as npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise BadEntry("not an npz archive")
        arrays = {name: npz[name] for name in npz.files}
    raw = arrays.pop("header", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise BadEntry("no header")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadEntry("unknown format")
    if header.get("key") != key:
        raise BadEntry("another key's entry")
    if header.get("seeds") != [int(seeds[0]), int(seeds[1])]:
        raise BadEntry("another seed range")
    digest = header.pop("sha256", None)
    if digest != _digest(header, arrays):
        raise BadEntry("checksum mismatch")
    frames: dict[str, pd.DataFrame] = {}
    expected_names = set()
    for t, (table, spec) in enumerate(header["tables"].items()):
        if spec is None:
            frames[table] = pd.DataFrame()
            continue
        rows = spec["rows"]
        columns = {}
        for j, (name, dtype, kind, stored) in enumerate(spec["columns"]):
            arr = arrays[f"t{t}c{j}"]
            expected_names.add(f"t{t}c{j}")
            if arr.shape != (rows,) or arr.dtype.str != stored:
                raise BadEntry("a column's shape or dtype differs from the header")
            if kind == "num":
                if arr.dtype != np.dtype(dtype):
                    raise BadEntry("numeric dtype mismatch")
                columns[name] = pd.Series(arr, dtype=dtype)
            elif kind == "str" and arr.dtype.kind == "U":
                columns[name] = pd.Series(arr.astype(object), dtype=dtype)
            else:
                raise BadEntry("unknown column kind")
        frames[table] = pd.DataFrame(columns)
    if expected_names != set(arrays):
        raise BadEntry("unexpected arrays")
    outcomes = frames.get("outcomes")
    if outcomes is None or "seed" not in outcomes or not np.array_equal(
        outcomes["seed"].to_numpy(), np.arange(*seeds)
    ):
        raise BadEntry("the outcomes are not the chunk's seeds")
    return frames, float(header["seconds"])


def remove_legacy(cache_dir: Path) -> None:
    """Delete entries of the old pickle format (never loaded: pickle can run code)."""
    for path in Path(cache_dir).glob("*/*.pkl"):
        path.unlink(missing_ok=True)
