"""The torch_digits study (PyTorch MLPs on the 8x8 digits), tiny: files, columns, numbers that add
up; and the run machinery's torch cells (``Cell.model``). Skipped without torch/scikit-learn."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from diagnostics.config import Config  # noqa: E402
from diagnostics.data import load_data  # noqa: E402
from diagnostics.schedules import Schedule  # noqa: E402
from studies.registry import REPORT_STUDIES, STUDIES  # noqa: E402
from studies.run.cells import Cell, run_cell, run_cells  # noqa: E402
from studies.run.executors import Processes  # noqa: E402
from studies.run.study import StudyOptions, read_meta, run_study  # noqa: E402
from studies.stats.summaries import OUTCOMES  # noqa: E402
from studies.torch_digits import findings as study_findings  # noqa: E402
from studies.torch_digits import grid as study_grid  # noqa: E402

TINY = StudyOptions(quick=True, seeds=5, epochs=3, cache_dir=None, progress=False)
TABLES = {
    "outcomes": ["activation", "lr", "outcome", "count", "n", "share", "ci_low", "ci_high"],
    "failure": ["activation", "lr", "n", "failure_count", "failure_share", "failure_ci_low",
                "failure_ci_high", "stuck_count", "diverged_count", "not_converged_count",
                "dead_initial_share", "median_final_loss"],
    "epochs_to_threshold": ["activation", "lr", "median", "threshold",
                            "budget"],
    "per_seed": ["activation", "lr", "seed", "outcome", "epochs_to_threshold", "final_loss",
                 "max_abs_grad"],
    "loss_bands": ["activation", "lr", "epoch", "q25", "median", "q75", "n"],
    "dead_fraction": ["activation", "lr", "layer", "epoch", "n", "mean", "any_share",
                      "all_share"],
    "saturation": ["activation", "lr", "layer", "epoch", "mean"],
    "gradient_profile": ["activation", "lr", "when", "epoch", "metric", "layer", "median"],
    "cells": ["activation", "lr", "layers", "epochs", "threshold", "seeds", "data", "model"],
}
FIGURES = ("outcomes.png", "loss_curves.png", "dead_fraction.png", "gradient_profile.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch_digits")
    meta = run_study(STUDIES["torch_digits"], TINY, out)
    target = out / "torch_digits"
    return target, {n: pd.read_csv(target / f"{n}.csv") for n in TABLES}, meta


def test_every_promised_file_and_column(run):
    target, tables, meta = run
    for name, columns in TABLES.items():
        missing = set(columns) - set(tables[name].columns)
        assert not missing, f"{name}.csv lacks {missing}"
        assert len(tables[name]), f"{name}.csv is empty"
    for png in FIGURES:
        assert (target / png).stat().st_size > 10_000
    assert meta["figures"] == list(FIGURES)
    assert read_meta(target)["cells"] == 3
    assert set(tables["cells"].model) == {"mlp"} and set(tables["cells"].data) == {"digits"}


def test_rates_add_up(run):
    _, t, _ = run
    o = t["outcomes"]
    assert set(o.outcome) == set(OUTCOMES)
    for _, part in o.groupby(["activation", "lr"]):
        assert part["count"].sum() == part.n.iloc[0] == TINY.seeds
        assert part.share.sum() == pytest.approx(1.0)
        assert (part.ci_low <= part.share).all() and (part.share <= part.ci_high).all()
    f = t["failure"].set_index("activation")
    conv = o[o.outcome == "converged"].set_index("activation")["count"]
    assert (f.failure_count + conv == f.n).all()
    assert (f.stuck_count + f.diverged_count + f.not_converged_count == f.failure_count).all()


def test_dead_fractions_are_fractions_for_the_rectifiers_only(run):
    _, t, _ = run
    d = t["dead_fraction"]
    assert set(d.activation) == {"relu", "leaky_relu"}  # tanh units cannot be dead
    for col in ("mean", "q25", "median", "q75", "any_share", "all_share"):
        assert d[col].between(0, 1).all(), col
    assert set(d.layer) == {1, 2} and 0 in set(d.epoch)
    s = t["saturation"]
    assert set(s.activation) == {"tanh"} and s["mean"].between(0, 1).all()
    assert (t["gradient_profile"]["median"] > 0).all()


def test_findings_are_read_from_the_tables(run):
    target, t, _ = run
    f = study_findings.findings(target)
    assert f.layers == (64, 32, 32, 10) and f.n_samples == 1797 and f.seeds == TINY.seeds
    assert f.runs == tuple((a, 0.1) for a in study_grid.ACTIVATIONS)
    for key in f.runs:
        assert f.failure[key].n == TINY.seeds
        assert sum(r.count for r in f.outcomes[key].values()) == TINY.seeds
    assert set(f.dead_fraction) == {("relu", 0.1), ("leaky_relu", 0.1)}
    assert set(f.grad_norm[("tanh", 0.1)]) == {1, 2, 3}


def test_the_report_does_not_run_it():
    assert "torch_digits" in STUDIES and "torch_digits" not in REPORT_STUDIES


# --- the run machinery: a cell naming a torch model -------------------------------------------

def _torch_cell(seeds=(0, 4), **kw) -> Cell:
    config = Config(layers=(2, 4, 4, 1), activation="relu", output_activation="identity",
                    lr=0.05, epochs=4, batch="online", threshold=1e-3)
    return Cell("torch_digits", (("activation", "relu"),), config, seeds, data="question",
                loss_every=Schedule.every(1), record="dead", record_every=Schedule.every(1),
                model="mlp", **kw)


def test_a_torch_cell_gives_the_engines_tables():
    r = run_cell(_torch_cell())
    assert list(r.outcomes.seed) == [0, 1, 2, 3]
    assert {"outcome", "epochs_to_threshold", "final_loss", "max_abs_grad"} <= set(r.outcomes)
    assert list(r.loss.columns[:3]) == ["activation", "seed", "epoch"]
    assert len(r.loss) == 4 * 4
    assert set(r.metrics.metric) >= {"dead_fraction", "network_dead"}
    assert r.metrics.value.between(0, 1).all()


def test_a_torch_cell_is_the_same_in_chunks_on_processes_and_cached(tmp_path):
    whole = run_cell(_torch_cell())
    cell = _torch_cell()
    got = run_cells([cell], cache_dir=tmp_path, progress=False, executor=Processes(2),
                    chunk_seeds=2)[0]
    pd.testing.assert_frame_equal(got.outcomes, whole.outcomes, check_exact=False, rtol=1e-12)
    again = run_cells([cell], cache_dir=tmp_path, progress=False, chunk_seeds=2)[0]
    pd.testing.assert_frame_equal(again.loss, got.loss)
    assert len(list((tmp_path / "torch_digits").glob("*.npz"))) == 2


def test_an_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown torch model 'nope'"):
        run_cell(replace(_torch_cell(), model="nope"))


def test_digits_data():
    d = load_data("digits")
    assert d.X.shape == (1797, 64) and d.Y.shape == (1797, 10)
    assert np.allclose(d.Y.sum(axis=1), 1.0)
    assert np.allclose(d.X.mean(axis=0), 0.0, atol=1e-12)


# --- actdiag train --model --------------------------------------------------------------------

def test_train_a_models_file_writes_an_engine_runs_files(tmp_path):
    import json
    from pathlib import Path

    from studies.cli import main

    model = Path(__file__).parent / "data" / "tiny_model.py"
    out = tmp_path / "run"
    code = main(["train", "--model", f"{model}:make_model", "--seeds", "0-5", "--epochs", "20",
                 "--lr", "0.05", "--record", "dead,grad_norm", "--record-every", "every:5",
                 "--out", str(out), "--quiet"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "loss.csv", "outcomes.csv",
                                               "params.npz", "metrics.parquet", "events.csv"}
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert list(outcomes.seed) == list(range(6))
    assert set(outcomes.outcome) <= set(OUTCOMES)
    loss = pd.read_csv(out / "loss.csv")
    assert len(loss) == 6 * 20 and (loss.loss >= 0).all()
    metrics = pd.read_parquet(out / "metrics.parquet")  # wide, as an engine run's
    assert list(metrics.columns[:7]) == ["model", "optimizer", "lr", "batch", "seed", "epoch",
                                         "layer"]
    assert set(metrics.epoch) == {0, 5, 10, 15, 20} and set(metrics.seed) == set(range(6))
    assert metrics.dead_fraction.dropna().between(0, 1).all()
    assert metrics.network_dead.notna().sum() == 6 * 5  # layer 0: one row per seed and epoch
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["function"] == "make_model" and config["model"]["lr"] == 0.05
    assert config["seeds"] == "6" and config["data"]["spec"] == "question"
    params = np.load(out / "params.npz")
    assert params["0.weight_initial"].shape == (6, 4, 2)
