"""The chunk cache cannot be fooled or used to run code, and its key cannot go stale.

Each corruption of a cached entry is detected, the entry removed and recomputed, and the final
tables are identical to a clean run's. Editing a study's source, or any Cell field but roles,
changes the key. A hung worker is detected and its chunk rerun.
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies.question import grid as study_grid
from studies.question import tables as study_tables
from studies.run import cache
from studies.run.cells import run_cells, run_chunk
from studies.run.executors import Processes, Sequential
from studies.run.study import StudyOptions

OPTS = StudyOptions(quick=True, seeds=6, epochs=40, activations=("relu", "tanh"), lrs=(0.1,),
                    cache_dir=None, progress=False)
CHUNK = 3
HANG_MARKER = "ACTDIAG_TEST_HANG_MARKER"


def run(cache_dir, work=None, executor=None) -> dict[str, str]:
    results = run_cells(study_grid.cells(OPTS), cache_dir=cache_dir, progress=False,
                        executor=executor or Sequential(), chunk_seeds=CHUNK, work=work)
    return {n: f.to_csv(index=False) for n, f in study_tables.tables(results, OPTS).items()}


def counting(calls: list):
    def work(cell):
        calls.append(cell.seeds)
        return run_chunk(cell)
    return work


@pytest.fixture(scope="module")
def clean() -> dict[str, str]:
    return run(None)


@pytest.fixture
def filled(tmp_path, clean) -> Path:
    """A cache holding every chunk of the grid (and the run that filled it matches ``clean``)."""
    assert run(tmp_path) == clean
    return tmp_path


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*.npz"))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def change_one_float(path: Path) -> None:
    """Rewrite the entry with one loss value changed, as a valid npz with the old header."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name, arr in arrays.items():
        if name != "header" and arr.dtype == np.float64 and arr.size:
            arr = arr.copy()
            arr[0] = np.nextafter(arr[0], np.inf)
            arrays[name] = arr
            break
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def pickle_instead(path: Path) -> None:
    """A valid file of the wrong type: a pickle that would run code if it were unpickled."""
    path.write_bytes(pickle.dumps({"os.system": "echo pwned"}))


def other_npz(path: Path) -> None:
    """A valid npz without our header."""
    with open(path, "wb") as fh:
        np.savez(fh, seed=np.arange(3))


def empty(path: Path) -> None:
    path.write_bytes(b"")


CORRUPTIONS = {
    "flipped-byte": flip_byte,
    "changed-float": change_one_float,
    "truncated": truncate,
    "pickle-file": pickle_instead,
    "npz-of-another-kind": other_npz,
    "empty": empty,
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_a_corrupted_entry_is_removed_and_recomputed(corrupt, filled, clean):
    victim = entries(filled)[1]
    corrupt(victim)
    calls: list = []
    assert run(filled, work=counting(calls)) == clean
    assert len(calls) == 1  # exactly the damaged chunk was recomputed
    assert victim.exists()  # ... and stored again, now valid
    assert cache.load(victim, victim.stem, calls[0]) is not None


def test_an_entry_copied_over_another_keys_file_is_not_used(filled, clean):
    first, second = entries(filled)[:2]
    shutil.copyfile(first, second)
    calls: list = []
    assert run(filled, work=counting(calls)) == clean
    assert len(calls) == 1


def test_an_entry_with_a_recomputed_checksum_but_other_seeds_is_not_used(filled, clean):
    """Even a forged entry (right key, valid checksum) must hold the chunk's own seeds."""
    victim = entries(filled)[0]
    with np.load(victim, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    import json

    header = json.loads(arrays.pop("header").tobytes())
    header.pop("sha256")
    header["seeds"] = [100, 103]
    header["sha256"] = cache._digest(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(victim, "wb") as fh:
        np.savez(fh, **arrays)
    calls: list = []
    assert run(filled, work=counting(calls)) == clean
    assert len(calls) == 1


def test_no_pickle_anywhere_in_the_cache(filled):
    legacy = filled / "question" / "0123.pkl"
    legacy.write_bytes(pickle.dumps(1))
    run(filled)
    assert not list(filled.rglob("*.pkl"))
    for path in entries(filled):
        with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
            for name in npz.files:
                assert npz[name].dtype != object


def test_cached_frames_equal_the_computed_ones(tmp_path):
    cells = study_grid.cells(OPTS)[:1]
    fresh = run_cells(cells, cache_dir=tmp_path, progress=False, chunk_seeds=None)[0]
    again = run_cells(cells, cache_dir=tmp_path, progress=False, chunk_seeds=None,
                      work=lambda c: pytest.fail("recomputed"))[0]
    for table in ("outcomes", "loss", "metrics", "events"):
        pd.testing.assert_frame_equal(getattr(again, table), getattr(fresh, table))


# --- the key ---------------------------------------------------------------------------------


def test_editing_a_studys_source_changes_the_key(tmp_path, monkeypatch, filled, clean):
    copy = tmp_path / "studies_copy"
    shutil.copytree(cache.STUDIES_ROOT / "question", copy / "question")
    monkeypatch.setattr(cache, "STUDIES_ROOT", copy)
    cache.source_hash.cache_clear()
    cell = study_grid.cells(OPTS)[0]
    before = cell.key()
    with open(copy / "question" / "grid.py", "a", encoding="utf-8") as fh:
        fh.write("\n# an edit to the study's cell code\n")
    cache.source_hash.cache_clear()
    try:
        assert cell.key() != before
        calls: list = []
        assert run(filled, work=counting(calls)) == clean
        assert len(calls) == len(entries(filled)) // 2  # every chunk missed, and was recomputed
    finally:
        cache.source_hash.cache_clear()


@pytest.mark.parametrize("root", ["DIAGNOSTICS_ROOT", "_HERE"], ids=["diagnostics", "run"])
def test_editing_the_engine_or_run_code_changes_the_key(root, tmp_path, monkeypatch):
    original = getattr(cache, root)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, root, copy)
    cache.source_hash.cache_clear()
    cell = study_grid.cells(OPTS)[0]
    before = cell.key()
    nested = copy / "deeper"
    nested.mkdir()
    (nested / "x.py").write_text("X = 1\n")  # recursive: a file in a subfolder counts
    cache.source_hash.cache_clear()
    try:
        assert cell.key() != before
    finally:
        cache.source_hash.cache_clear()


def test_every_cell_field_but_roles_is_in_the_key(monkeypatch):
    cell = study_grid.cells(OPTS)[0]
    key = cell.key()
    assert replace(cell, roles=("anything",)).key() == key
    changed = {
        "study": "other", "labels": (("activation", "x"),), "config": cell.config.replace(lr=0.5),
        "seeds": (0, 2), "data": "add:6", "loss_every": type(cell.loss_every).every(3),
        "record": None, "record_every": type(cell.record_every).at(0, 5),
        "thresholds": (0.5,), "model": "mlp",
    }
    for name, value in changed.items():
        assert replace(cell, **{name: value}).key() != key, name
    monkeypatch.setattr(np, "__version__", "0.0.0")
    assert cell.key() != key  # numpy's version too


def test_a_torch_cells_key_covers_the_torch_version(monkeypatch):
    cell = replace(study_grid.cells(OPTS)[0], model="mlp")
    key = cell.key()
    monkeypatch.setattr(cache, "_torch_version", lambda: "0.0.0")
    assert cell.key() != key
    assert replace(cell, model=None).key() == replace(cell, model=None).key()


# --- workers ---------------------------------------------------------------------------------


HANG_SECONDS = 600  # how long the hung worker sleeps: a run that waited it out was not rescued


def hanging_run_chunk(cell):
    """run_chunk, except that the first worker to see seeds 3.. hangs."""
    marker = Path(os.environ[HANG_MARKER])
    if cell.seeds[0] == 3 and not marker.exists():
        marker.touch()
        time.sleep(HANG_SECONDS)
    return run_chunk(cell)


def test_a_hung_worker_is_detected_and_its_chunk_rerun(clean, tmp_path, monkeypatch):
    monkeypatch.setenv(HANG_MARKER, str(tmp_path / "hung"))
    started = time.monotonic()
    # min_timeout: a healthy chunk here takes well under a second, but a worker's first chunk
    # loads numba's cache (written by ``clean``, which ran in this process first) and a loaded
    # machine can stretch that several-fold; 10 s stays far from both that and the hang
    got = run(None, work=hanging_run_chunk, executor=Processes(2, min_timeout=10.0))
    assert (tmp_path / "hung").exists()  # a worker really hung
    assert got == clean
    # not a speed check: only a run that waited for the hung worker to wake can take this long
    assert time.monotonic() - started < HANG_SECONDS
