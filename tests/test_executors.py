"""Executors: identical results in this process, in worker processes and on Dask; resume."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from studies.cli import main
from studies.question import grid as study_grid
from studies.question import tables as study_tables
from studies.run.cells import run_cells, run_chunk
from studies.run.executors import Dask, Processes, Sequential, make_executor
from studies.run.study import StudyOptions

OPTS = StudyOptions(quick=True, seeds=12, epochs=60, activations=("relu", "tanh"),
                    lrs=(0.1,), cache_dir=None, progress=False)
KILL_MARKER = "ACTDIAG_TEST_KILL_MARKER"


def tables(executor, chunk_seeds, cache_dir=None, work=None) -> dict[str, pd.DataFrame]:
    results = run_cells(study_grid.cells(OPTS), cache_dir=cache_dir, progress=False,
                        executor=executor, chunk_seeds=chunk_seeds, work=work)
    return study_tables.tables(results, OPTS)


def csv_text(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    return {name: frame.to_csv(index=False) for name, frame in frames.items()}


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    return csv_text(tables(Sequential(), None))


def test_chunk_size_does_not_change_the_tables(reference):
    assert csv_text(tables(Sequential(), 5)) == reference


def test_processes_give_identical_tables(reference):
    assert csv_text(tables(Processes(2), 4)) == reference


def test_dask_local_cluster_gives_identical_tables(reference):
    pytest.importorskip("distributed")
    executor = Dask(None, workers=2)
    try:
        assert csv_text(tables(executor, 7)) == reference
    finally:
        executor.close()


def killing_run_chunk(cell):
    """run_chunk, except that the first worker to see seeds 4.. dies without a word."""
    marker = Path(os.environ[KILL_MARKER])
    if cell.seeds[0] == 4 and not marker.exists():
        marker.touch()
        os._exit(1)
    return run_chunk(cell)


def test_a_killed_worker_is_replaced_and_results_are_identical(reference, tmp_path, monkeypatch):
    monkeypatch.setenv(KILL_MARKER, str(tmp_path / "killed"))
    got = csv_text(tables(Processes(2), 4, work=killing_run_chunk))
    assert (tmp_path / "killed").exists()  # a worker really died
    assert got == reference


def test_rerun_resumes_from_the_cache_without_recomputing(reference, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    calls: list[tuple[int, int]] = []

    def counting(cell):
        calls.append(cell.seeds)
        if len(calls) == 3:
            raise KeyboardInterrupt  # an interruption after two finished chunks
        return run_chunk(cell)

    with pytest.raises(KeyboardInterrupt):
        tables(Sequential(), 4, cache_dir=cache, work=counting)
    finished = list(cache.rglob("*.npz"))
    assert len(finished) == 2
    assert not list(cache.rglob("*.tmp"))  # nothing half-written
    calls.clear()
    got = csv_text(tables(Sequential(), 4, cache_dir=cache, work=counting_ok(calls)))
    n_chunks = sum(len(c.chunks(4)) for c in study_grid.cells(OPTS))
    assert len(calls) == n_chunks - 2  # the two cached chunks were not recomputed
    assert got == reference


def counting_ok(calls):
    def run(cell):
        calls.append(cell.seeds)
        return run_chunk(cell)
    return run


def test_without_dask_the_cli_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code = main(["study", "question", "--quick", "--executor", "dask-local", "--out",
                 str(tmp_path / "out"), "--no-cache", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "pip install 'activation-diagnostics[dask]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_unknown_executor_and_missing_scheduler_are_errors():
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        make_executor("threads")
    with pytest.raises(ValueError, match="--scheduler"):
        make_executor("dask")
