"""Tests of the streamed run files (studies.run.outputs) and of bounded memory: the metrics table
(Parquet, or CSV) in the wide format holds exactly Monitor.tidy()'s values, tables are written
one chunk at a time and atomically, the estimate of actdiag train counts the arrays the run
really stores, and train's default loss history is bounded."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from diagnostics.activations import ACTIVATIONS
from diagnostics.data import question_data
from diagnostics.monitor import Monitor, Recorder
from diagnostics.presets import PRESETS
from diagnostics.train import train
from studies.cli import build_parser, main
from studies.cli.train import plan
from studies.run.estimate import check_disk, run_estimate
from studies.run.files import write_arrow_csv, write_parquet_chunks
from studies.run.outputs import (
    config_columns,
    loss_chunks,
    metrics_chunks,
    recording_groups,
    write_events,
    write_loss,
    write_metrics,
)
from studies.run.stream import StreamedMonitor

DATA = question_data()
KEYS = ["seed", "epoch", "layer"]
SEEDS = [3, 1, 8, 6, 5, 11, 2, 7, 0]


@pytest.fixture(scope="module")
def run():
    """A small run with every instrument and some diverged seeds (nan after divergence)."""
    cfg = PRESETS["question"].replace(output_activation="identity", lr=0.1, epochs=40)
    m = Monitor(cfg, DATA, SEEDS, record="all", every="every:7")
    result = train(cfg, DATA, SEEDS, monitor=m)
    assert (result.diverged_epoch > 0).any() and (result.diverged_epoch < 0).any()
    return result, m


def read_wide(path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_wide_metrics_table_is_tidy_pivoted(run, tmp_path, fmt):
    _, m = run
    columns = config_columns(m.config)
    path = write_metrics(tmp_path / f"metrics.{fmt}", m, columns, fmt, chunk_rows=30)
    wide = read_wide(path)
    assert list(wide.columns[:9]) == [*columns, *KEYS]
    assert list(wide[KEYS].itertuples(index=False)) == sorted(  # in the order they are made
        wide[KEYS].itertuples(index=False),
        key=lambda r: (r.epoch, r.layer, SEEDS.index(r.seed)))
    got = wide.melt(id_vars=list(wide.columns[:9]), var_name="metric", value_name="value")
    got = got.dropna(subset=["value"]).set_index(KEYS + ["metric"])["value"].sort_index()
    want = pd.DataFrame(m.tidy()).set_index(KEYS + ["metric"])["value"].sort_index()
    pd.testing.assert_index_equal(got.index, want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())  # bit for bit, text or not
    assert set(wide["activation"]) == {"relu"} and set(wide["output_activation"]) == {"identity"}
    assert set(wide["lr"]) == {0.1} and set(wide["batch"]) == {"online"}
    # a network metric is empty on the layers and a layer metric on layer 0
    assert wide.loc[wide.layer > 0, "loss"].isna().all()
    assert wide.loc[wide.layer == 0, "weight_norm"].isna().all()


def test_wide_is_the_metrics_file_as_arrays(run, tmp_path):
    # Recorder.wide (numpy, nan where empty) and the file (Arrow, built from the same pieces
    # with nulls): the same rows and values; a slice of seeds, recordings and layers of wide is
    # the same slice of the whole
    _, m = run
    columns = config_columns(m.config)
    table = read_wide(write_metrics(tmp_path / "m.parquet", m, columns)).iloc[:, len(columns):]
    whole = pd.DataFrame(m.wide())
    pd.testing.assert_frame_equal(whole, table.reset_index(drop=True), check_dtype=False)
    part = pd.DataFrame(m.wide(2, 7, 1, 4, layers=[0, 2]))
    want = whole[whole.seed.isin(m.seeds[2:7]) & whole.epoch.isin(m.epochs[1:4])
                 & whole.layer.isin([0, 2])]
    pd.testing.assert_frame_equal(part, want.reset_index(drop=True))


def test_parquet_has_a_row_group_per_chunk_and_dictionary_configuration(run, tmp_path):
    _, m = run
    per_recording = len(SEEDS) * 4  # seeds x (layers 0..3): rows of one recording
    path = write_metrics(tmp_path / "metrics.parquet", m, config_columns(m.config),
                         chunk_rows=2 * per_recording)
    meta = pq.ParquetFile(path)
    # every 7 epochs of 40: each gap is more than 1% of the epochs, so a recording a chunk
    assert m.epochs.size == 7 and meta.num_row_groups == 7
    schema = meta.schema_arrow
    assert pa.types.is_dictionary(schema.field("activation").type)
    assert schema.field("seed").type == pa.int64() and schema.field("lr").type == pa.float64()
    assert all(schema.field(name).type == pa.float64() for name in schema.names[9:])
    assert [schema.field(name).nullable for name in schema.names] == [False] * 9 + [True] * (
        len(schema.names) - 9)  # only metrics may be empty


def _recorder(epochs, seeds=2):
    return Recorder([ACTIVATIONS["relu"]] * 3, range(seeds), np.asarray(epochs), "loss")


def test_recording_groups_fill_chunks_and_end_before_gaps():
    # 2 seeds x layer 0 only ("loss"): 2 rows a recording; 8 rows = 4 recordings a chunk
    assert recording_groups(_recorder(range(10)), 8) == [(0, 4), (4, 8), (8, 10)]
    # epochs 0-3 one apart, then gaps of 47 and 50 (> 1% of 100): those written alone
    assert recording_groups(_recorder([0, 1, 2, 3, 50, 100]), 20) == [(0, 4), (4, 5), (5, 6)]
    # gaps of 10 epochs: more than 1% of 30 (each alone), exactly 1% of 1000 (kept together)
    assert recording_groups(_recorder([0, 10, 20, 30], 1), 100) == [(r, r + 1) for r in range(4)]
    assert recording_groups(_recorder(range(0, 1001, 10), 1), 1000) == [(0, 101)]
    # a recording larger than a chunk is a group of its own
    assert recording_groups(_recorder(range(5), 100), 8) == [(r, r + 1) for r in range(5)]
    assert recording_groups(_recorder([]), 8) == []


def test_tables_are_written_one_bounded_chunk_at_a_time(run, tmp_path):
    result, m = run
    layers, _ = m.wide_layout()
    per_recording = len(SEEDS) * len(layers)
    dense = Monitor(m.config, DATA, SEEDS, record="all", every="every:1")
    train(m.config, DATA, SEEDS, monitor=dense)
    chunks = list(metrics_chunks(dense, config_columns(m.config), chunk_rows=3 * per_recording))
    assert len(chunks) == 14  # 41 recordings one epoch apart, 3 per chunk
    assert all(len(c) <= 3 * per_recording for c in chunks)
    # a recording larger than a chunk is cut by layer and then into chunks of seeds: 4 rows
    # a chunk, 3 chunks of the 9 seeds a layer, 4 layers, 7 recordings; the rows keep their order
    chunks = list(metrics_chunks(m, config_columns(m.config), chunk_rows=4))
    assert len(chunks) == 7 * 4 * 3 and all(len(c) <= 4 for c in chunks)
    assert [set(c["epoch"].to_pylist()) for c in chunks[:13]] == [{0}] * 12 + [{7}]
    assert [set(c["layer"].to_pylist()) for c in chunks[:4]] == [{0}] * 3 + [{1}]
    whole = pa.concat_tables(chunks).to_pandas()
    pd.testing.assert_frame_equal(  # the same rows as one chunk gives
        whole, pa.concat_tables(metrics_chunks(m, config_columns(m.config))).to_pandas())
    chunks = list(loss_chunks(result, chunk_rows=5 * result.seeds.size))
    assert len(chunks) == 8 and all(len(c) <= 5 * result.seeds.size for c in chunks)
    got = pd.read_csv(write_loss(tmp_path / "loss.csv", result, chunk_rows=17))
    pd.testing.assert_frame_equal(got, pd.DataFrame(result.tidy("loss")), check_dtype=False)


def test_events_csv_holds_the_monitors_events(run, tmp_path):
    _, m = run
    path = write_events(tmp_path / "events.csv", m)
    assert path.read_text().splitlines()[0] == "seed,epoch,layer,unit,event"  # as pandas writes
    got = pd.read_csv(path)
    want = pd.DataFrame(m.events())
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_chunked_writers_are_atomic(tmp_path):
    table = pa.table({"x": [1.0, 2.0]})

    def failing():
        yield table
        raise RuntimeError("interrupted")

    for write, name in ((write_parquet_chunks, "t.parquet"), (write_arrow_csv, "t.csv")):
        (tmp_path / name).write_text("the earlier file")
        with pytest.raises(RuntimeError):
            write(tmp_path / name, failing())
        assert (tmp_path / name).read_text() == "the earlier file"
        with pytest.raises(ValueError, match="no table"):
            write(tmp_path / name, iter(()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.parquet"]  # no temp left
    with pytest.raises(pa.ArrowInvalid):  # unquoted CSV refuses a string that needs quotes
        write_arrow_csv(tmp_path / "q.csv", [pa.table({"s": ["a,b"]})], quote=False)
    write_arrow_csv(tmp_path / "q.csv", [pa.table({"s": ["a,b"]})])
    assert pd.read_csv(tmp_path / "q.csv")["s"].tolist() == ["a,b"]


def test_estimate_of_train_counts_the_stored_arrays(run, tmp_path, monkeypatch):
    result, m = run
    rows = 2 * len(SEEDS) * 4  # a writer chunk of two recordings (seeds x layers 0..3)
    monkeypatch.setattr(sys.modules["studies.run.estimate"], "WRITER_ROWS", rows)
    held = Monitor(m.config, DATA, SEEDS, record="all", every="every:1", keep=False)
    est = run_estimate(result.config, result.seeds.size, n_samples=6, n_columns=3,
                       loss_rows=result.loss_epochs.size, record_rows=held.epochs.size,
                       probes=13, record_values=len(held.rows), streamed=True)
    parts = {k.split(" (")[0]: b for k, (b, _) in est.parts.items()}
    assert parts["the loss history"] == result.loss.nbytes
    # as actdiag train: recordings are held only until written, at most a chunk's and one more
    most, release = [], held.release
    held.release = lambda last: (most.append(len(held._held)), release(last))
    with StreamedMonitor(held, tmp_path / "m.parquet", config_columns(m.config),
                         chunk_rows=rows) as observer:
        train(m.config, DATA, SEEDS, monitor=observer)
    one = len(held.rows) * len(SEEDS) * 8  # bytes of one recording
    assert len(most) == held.epochs.size // 2 + 1 and max(most) == 2
    assert max(most) * one <= parts["instruments not yet written"] == 3 * one
    assert held._held == {}
    with pytest.raises(ValueError, match="keep=False"):
        held.metric("loss")  # values are not kept: the file has them


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


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_disk_estimate_bounds_the_files_and_refuses_what_cannot_fit(tmp_path, fmt, monkeypatch):
    out = tmp_path / "run"
    argv = ["--seeds", 40, "--epochs", 60, "--record", "all", "--metrics-format", fmt,
            "--out", out]
    p = _plan(*argv)
    main(["train", *map(str, argv), "--quiet"])
    files = {f.name: f.stat().st_size for f in out.iterdir()}
    need = check_disk(out, seeds=40, loss_rows=p["loss_epochs"].size,
                      record_rows=len(p["record_epochs"]) + 1, record_values=30, wide_rows=4,
                      metrics_format=fmt, flags={"record": "R", "loss": "L", "seeds": "S"})
    written = files[f"metrics.{fmt}"] + files["loss.csv"]
    assert written <= need <= 4 * written  # an upper bound, not a wild one
    free = type("usage", (), {"free": int(need)})()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    with pytest.raises(ValueError) as err:  # 90% of the free space is the limit
        _plan(*argv[:-1], tmp_path / "new" / "folder")
    msg = str(err.value)
    assert "\n" not in msg and f"metrics.{fmt}" in msg and "--record-every" in msg
    assert str(tmp_path) in msg and not (tmp_path / "new").exists()
