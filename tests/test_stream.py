"""Tests of the instruments' thread (studies.run.stream): observing and writing while training
goes on gives the same values, events and file as observing in line and writing afterwards; an
interruption or a failing writer leaves no partial file and never hangs training."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from diagnostics.data import question_data
from diagnostics.monitor import Monitor
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.run.outputs import config_columns, write_metrics
from studies.run.stream import StreamedMonitor

DATA = question_data()
SEEDS = [3, 1, 8, 6, 5, 11, 2, 7, 0]
# the question's network with a linear output at lr 0.1: some seeds diverge (their rows end)
DIVERGING = PRESETS["question"].replace(output_activation="identity", lr=0.1, epochs=40)


def _inline(config, fmt, path, chunk_rows, seeds=SEEDS, **kw):
    m = Monitor(config, DATA, seeds, record="all", every="every:3")
    result = train(config, DATA, seeds, monitor=m, **kw)
    write_metrics(path, m, config_columns(config), fmt, chunk_rows=chunk_rows)
    return result, m


def _streamed(config, fmt, path, chunk_rows, seeds=SEEDS, keep=True, **kw):
    m = Monitor(config, DATA, seeds, record="all", every="every:3", keep=keep)
    with StreamedMonitor(m, path, config_columns(config), fmt, chunk_rows) as observer:
        result = train(config, DATA, seeds, monitor=observer, **kw)
    return result, m


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("engine", ["compiled", "numpy"])
@pytest.mark.parametrize("chunk_rows", [9, 100, 10**6])  # a seed chunk, some recordings, all
@pytest.mark.parametrize("keep", [True, False])  # False: recordings dropped once written
def test_streamed_file_and_values_equal_writing_afterwards(tmp_path, fmt, engine, chunk_rows,
                                                           keep):
    a_res, a = _inline(DIVERGING, fmt, tmp_path / f"a.{fmt}", chunk_rows, engine=engine)
    b_res, b = _streamed(DIVERGING, fmt, tmp_path / f"b.{fmt}", chunk_rows, engine=engine,
                         keep=keep)
    assert (a_res.diverged_epoch > 0).any()  # rows that end early are part of the comparison
    if keep:
        np.testing.assert_array_equal(a.values, b.values)  # the same pass, same parameters
    else:
        assert b._held == {}  # every recording written and dropped
    for key, col in a.events().items():
        np.testing.assert_array_equal(col, b.events()[key])
    assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a.{fmt}", f"b.{fmt}"]  # no temp


class _OneAtATime(StreamedMonitor):
    """Training waits until the worker has observed each recording and handed its arrays
    back, so that every later recording is written into arrays already observed."""

    def __init__(self, *args):
        super().__init__(*args)
        self.handed_back = threading.Semaphore(0)

    def observe(self, *args):
        super().observe(*args)
        assert self.handed_back.acquire(timeout=60)

    def _done_with(self, *arrays):
        super()._done_with(*arrays)
        self.handed_back.release()


def test_train_fills_arrays_the_worker_hands_back(tmp_path):
    # no seed diverges: after the first recordings, the parameters (and those of the epoch
    # before) are written into arrays the worker has observed, and the values stay those of
    # observing in line (an array filled again too early would change them)
    config = PRESETS["question"].replace(epochs=30)
    inline = Monitor(config, DATA, SEEDS, record="all", every="every:1")
    train(config, DATA, SEEDS, monitor=inline)
    m = Monitor(config, DATA, SEEDS, record="all", every="every:1")
    seen: list[np.ndarray] = []  # held, so that an id is never that of a freed array
    observe = m.observe

    def spy(epoch, theta, alive, prev):
        seen.extend(a for a in (theta, prev) if a is not None)
        observe(epoch, theta, alive, prev)

    m.observe = spy
    with _OneAtATime(m, tmp_path / "m.parquet", config_columns(config)) as observer:
        train(config, DATA, SEEDS, monitor=observer)
    assert len(seen) == 2 * 30 + 1  # epoch 0 has no previous parameters
    assert len({id(a) for a in seen}) <= 4  # epoch 0's new array, epoch 1's copy, two more
    np.testing.assert_array_equal(m.values, inline.values)
    P, S = seen[0].shape  # a spare array of another shape is never handed out
    assert observer._spare and observer.buffer((P, S - 1), np.float64).shape == (P, S - 1)


def test_streamed_file_when_training_stops_once_settled(tmp_path):
    # as tests/test_compiled.py: seeds of the fixed ReLU network that converge or die
    config = PRESETS["fixed"].replace(activation="relu", output_activation="relu", lr=0.1,
                                      epochs=3000)
    seeds = [s for s in range(40) if s not in (2, 17, 20, 30, 33)]
    a_res, _ = _inline(config, "parquet", tmp_path / "a.parquet", 100, seeds, until_settled=True)
    b_res, _ = _streamed(config, "parquet", tmp_path / "b.parquet", 100, seeds,
                         until_settled=True)
    assert a_res.epochs_run == b_res.epochs_run < 3000  # recordings after it stay empty
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_an_interruption_leaves_the_earlier_file_and_stops_the_thread(tmp_path):
    path = tmp_path / "metrics.parquet"
    path.write_text("an earlier run's file")
    before = threading.active_count()

    def interrupt(epoch):
        if epoch >= 20:
            raise KeyboardInterrupt

    m = Monitor(DIVERGING, DATA, SEEDS, record="all", every="every:1")
    with pytest.raises(KeyboardInterrupt):
        with StreamedMonitor(m, path, config_columns(DIVERGING), chunk_rows=9) as observer:
            train(DIVERGING, DATA, SEEDS, monitor=observer, progress=interrupt)
    assert path.read_text() == "an earlier run's file"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.parquet"]  # no temp file left
    assert threading.active_count() == before


def test_a_failing_writer_is_raised_in_training_not_a_hang(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    m = Monitor(DIVERGING, DATA, SEEDS, record="all", every="every:1")
    with pytest.raises(OSError):  # the writer cannot make its file: training stops with it
        with StreamedMonitor(m, tmp_path / "file" / "metrics.parquet",
                             config_columns(DIVERGING)) as observer:
            train(DIVERGING, DATA, SEEDS, monitor=observer)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_abort_with_every_row_still_to_write_leaves_no_file(tmp_path):
    """Stopped after training (as Ctrl-C during the last writes): the file is not made."""
    m = Monitor(DIVERGING, DATA, SEEDS, record="all", every="every:1")
    observer = StreamedMonitor(m, tmp_path / "metrics.parquet", config_columns(DIVERGING),
                               chunk_rows=10**9)  # one chunk: nothing written before the end
    train(DIVERGING, DATA, SEEDS, monitor=observer)
    observer.abort()
    assert list(tmp_path.iterdir()) == []
    assert not observer._worker.is_alive()
