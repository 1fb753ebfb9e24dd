"""Tests of the streamed run files (studies.run.outputs) and of bounded memory: metrics.csv in
the wide format holds exactly Monitor.tidy()'s values, tables are written one chunk at a time,
the estimate of actdiag train counts the arrays the run really stores, and train's default loss
history is bounded."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from diagnostics.data import question_data
from diagnostics.monitor import Monitor
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.cli import build_parser
from studies.cli.train import plan
from studies.run.estimate import run_estimate
from studies.run.outputs import loss_chunks, metrics_chunks, write_loss, write_metrics

DATA = question_data()
KEYS = ["seed", "epoch", "layer"]


@pytest.fixture(scope="module")
def run():
    """A small run with every instrument and some diverged seeds (nan after divergence)."""
    cfg = PRESETS["question"].replace(output_activation="identity", lr=0.1, epochs=40)
    seeds = [3, 1, 8, 6, 5, 11, 2, 7, 0]
    m = Monitor(cfg, DATA, seeds, record="all", every="every:7")
    result = train(cfg, DATA, seeds, monitor=m)
    assert (result.diverged_epoch > 0).any() and (result.diverged_epoch < 0).any()
    return result, m


def test_wide_metrics_csv_is_tidy_pivoted(run, tmp_path):
    _, m = run
    path = write_metrics(tmp_path / "metrics.csv", m, chunk_rows=30)  # several seed chunks
    wide = pd.read_csv(path)
    assert list(wide.columns[6:9]) == KEYS
    assert list(wide[["seed", "epoch", "layer"]].itertuples(index=False)) == sorted(
        wide[["seed", "epoch", "layer"]].itertuples(index=False),
        key=lambda r: ([3, 1, 8, 6, 5, 11, 2, 7, 0].index(r.seed), r.epoch, r.layer))
    got = wide.melt(id_vars=list(wide.columns[:9]), var_name="metric", value_name="value")
    got = got.dropna(subset=["value"]).set_index(KEYS + ["metric"])["value"].sort_index()
    want = pd.DataFrame(m.tidy()).set_index(KEYS + ["metric"])["value"].sort_index()
    pd.testing.assert_index_equal(got.index, want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())  # bit for bit
    assert set(wide["activation"]) == {"relu"} and set(wide["output_activation"]) == {"identity"}


def test_tables_are_written_one_bounded_chunk_at_a_time(run, tmp_path):
    result, m = run
    layers, _ = m.wide_layout()
    chunks = list(metrics_chunks(m, chunk_rows=3 * m.epochs.size * len(layers)))
    assert len(chunks) == 3  # 9 seeds, 3 per chunk
    assert all(len(c) <= 3 * m.epochs.size * len(layers) for c in chunks)
    chunks = list(loss_chunks(result, chunk_rows=5 * result.seeds.size))
    assert len(chunks) == 8 and all(len(c) <= 5 * result.seeds.size for c in chunks)
    got = pd.read_csv(write_loss(tmp_path / "loss.csv", result, chunk_rows=17))
    pd.testing.assert_frame_equal(got, pd.DataFrame(result.tidy("loss")), check_dtype=False)


def test_estimate_of_train_counts_the_stored_arrays(run):
    result, m = run
    est = run_estimate(result.config, result.seeds.size, n_samples=6, n_columns=3,
                       loss_rows=result.loss_epochs.size, record_rows=m.epochs.size,
                       probes=13, record_values=len(m.rows), streamed=True)
    parts = {k.split(" (")[0]: b for k, (b, _) in est.parts.items()}
    assert parts["the loss history"] == result.loss.nbytes
    assert parts["instruments"] == m.values.nbytes


def _plan(*argv):
    return plan(build_parser().parse_args(["train", *map(str, argv)]))


def test_streamed_run_is_allowed_and_one_that_cannot_fit_refused_in_one_line(tmp_path):
    p = _plan("--seeds", 100_000, "--epochs", 200, "--record", "all", "--out", tmp_path / "a")
    assert p["estimate"].bytes < 4e9
    with pytest.raises(ValueError) as err:
        _plan("--seeds", 10_000_000, "--epochs", 200, "--record", "all", "--out", tmp_path / "b")
    msg = str(err.value)
    assert "\n" not in msg and "needs about" in msg and "GB" in msg and "--seeds" in msg
    assert not (tmp_path / "b").exists()


def test_default_loss_history_is_bounded(monkeypatch):
    cfg = PRESETS["question"].replace(epochs=20)
    monkeypatch.setattr(sys.modules["diagnostics.train"], "LOSS_HISTORY_LIMIT", 50)
    with pytest.raises(ValueError, match=r"3 seeds x 20 epochs .* pass loss_epochs"):
        train(cfg, DATA, 3)
    assert train(cfg, DATA, 2).loss.shape == (20, 2)  # 40 values: every epoch, as before
    res = train(cfg, DATA, 3, loss_epochs="log:5")  # a schedule is accepted
    assert res.loss.shape == (res.loss_epochs.size, 3) and res.loss_epochs[-1] == 20
    with pytest.raises(ValueError, match="1..20"):
        train(cfg, DATA, 3, loss_epochs=[0, 5])
