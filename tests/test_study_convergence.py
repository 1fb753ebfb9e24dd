"""The convergence study in a small quick run, and its helpers against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from diagnostics.activations import ACTIVATIONS
from diagnostics.train import OUTCOMES
from studies.convergence import figures as study_figures
from studies.convergence import findings as study_findings
from studies.convergence import grid as study_grid
from studies.convergence import tables as study_tables
from studies.run.study import read_meta, read_table
from tests.quick import EPOCHS, SEEDS

OUTCOME_COLUMNS = [f"{o}_{k}" for o in OUTCOMES for k in ("count", "share", "ci_low", "ci_high")]
SUMMARY_COLUMNS = [
    "activation", "lr", "epochs", "threshold", "n", "reached", "median", "median_ci_low",
    "median_ci_high", "q25", "q75", *OUTCOME_COLUMNS, "min_loss_median", "diverged_epoch_median",
]


@pytest.fixture(scope="module")
def run(quick_run):
    """This study's folder of the shared quick run, and its meta."""
    return quick_run / "convergence", read_meta(quick_run / "convergence")


def test_files_and_columns(run):
    d, meta = run
    for name in ("survival", "medians", "loss_bands", "lr_grid"):
        assert (d / f"{name}.png").stat().st_size > 10_000
    assert sorted(meta["figures"]) == sorted(
        ["survival.png", "medians.png", "loss_bands.png", "lr_grid.png"])
    assert list(read_table(d, "medians").columns) == SUMMARY_COLUMNS
    assert list(read_table(d, "lr_grid").columns) == SUMMARY_COLUMNS
    assert list(read_table(d, "survival").columns) == ["activation", "lr", "epoch", "not_converged"]
    assert list(read_table(d, "loss_bands").columns) == [
        "activation", "lr", "epoch", "q25", "median", "q75", "n", "n_finite"]
    grid_cells = len(study_grid.GRID_ACTIVATIONS) * len(study_grid.GRID_LRS)
    assert meta["cells"] == len(ACTIVATIONS) + grid_cells


@pytest.mark.parametrize("table", ["medians", "lr_grid"])
def test_summaries_are_consistent(run, table):
    d, _ = run
    t = read_table(d, table)
    assert (t.n == SEEDS).all()
    counts = t[[f"{o}_count" for o in OUTCOMES]].sum(axis=1)
    assert (counts == t.n).all()
    shares = t[[f"{o}_share" for o in OUTCOMES]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    for o in OUTCOMES:
        assert (t[f"{o}_ci_low"] <= t[f"{o}_share"]).all()
        assert (t[f"{o}_share"] <= t[f"{o}_ci_high"]).all()
        np.testing.assert_allclose(t[f"{o}_share"] * t.n, t[f"{o}_count"])
    assert (t.reached == t.converged_count).all()  # diverged seeds never count as reached
    assert (t.median_ci_low <= t["median"]).all() and (t["median"] <= t.median_ci_high).all()
    assert (t.q25 <= t["median"]).all() and (t["median"] <= t.q75).all()
    # a finite median means at least half the seeds converged, within the budget
    fin = np.isfinite(t["median"])
    assert (t.reached[fin] >= t.n[fin] / 2).all()
    assert (t["median"][fin] <= t.epochs[fin]).all()
    # diverged seeds: a divergence epoch within the budget exactly when there are any
    assert (t.diverged_epoch_median.isna() == (t.diverged_count == 0)).all()
    blown = t[t.diverged_count > 0]
    assert (blown.diverged_epoch_median >= 1).all()
    assert (blown.diverged_epoch_median <= blown.epochs).all()


def test_main_grid_covers_every_activation(run):
    d, _ = run
    med = read_table(d, "medians")
    assert sorted(med.activation) == sorted(ACTIVATIONS)
    assert (med.lr == study_grid.MAIN_LR).all() and (med.epochs == EPOCHS).all()
    grid = read_table(d, "lr_grid")
    assert (grid.epochs == study_grid.grid_epochs(EPOCHS)).all()
    assert sorted(grid.groupby("activation").lr.apply(tuple).iloc[0]) == list(study_grid.GRID_LRS)
    assert set(grid.activation) == set(study_grid.GRID_ACTIVATIONS)


def test_survival_curves(run):
    d, _ = run
    surv = read_table(d, "survival")
    med = read_table(d, "medians")
    for act, s in surv.groupby("activation"):
        v = s.not_converged.to_numpy()
        assert v[0] == 1.0 and s.epoch.iloc[0] == 0
        assert np.all(np.diff(v) <= 1e-12), act
        assert np.all(np.diff(s.epoch.to_numpy()) >= 0)
        assert s.epoch.iloc[-1] == EPOCHS
        # censoring happens only at the budget, so the curve ends at the not-converged share
        r = med[med.activation == act].iloc[0]
        assert v[-1] == pytest.approx(1.0 - r.converged_share)


def test_loss_bands(run):
    d, _ = run
    b = read_table(d, "loss_bands")
    assert (b.n == SEEDS).all() and (b.n_finite <= b.n).all()
    assert (b.q25 <= b["median"]).all() and (b["median"] <= b.q75).all()
    assert b.epoch.min() >= 1 and b.epoch.max() == EPOCHS
    # where every seed is finite, no band value may be infinite
    full = b[b.n_finite == b.n]
    assert np.isfinite(full[["q25", "median", "q75"]].to_numpy()).all()


def test_grid_agrees_with_main_run(run):
    """Same seeds and configuration: the grid's lr 0.1 run is the main run's first epochs."""
    d, _ = run
    per_seed = read_table(d, "per_seed")
    grid = read_table(d, "lr_grid")
    budget = study_grid.grid_epochs(EPOCHS)
    for act in study_grid.GRID_ACTIVATIONS:
        p = per_seed[per_seed.activation == act]
        e = study_tables.effective_epochs(p)
        g = grid[(grid.activation == act) & (grid.lr == study_grid.MAIN_LR)].iloc[0]
        assert g.converged_count == int(((e >= 0) & (e <= budget)).sum())
        div = int(((p.diverged_epoch > 0) & (p.diverged_epoch <= budget)).sum())
        assert g.diverged_count == div


def test_findings(run):
    d, meta = run
    f = study_findings.findings(d)
    assert f.lr == study_grid.MAIN_LR and f.budget == EPOCHS and f.seeds == SEEDS
    assert f.threshold == pytest.approx(1e-3)
    assert sorted(f.fastest) == sorted(ACTIVATIONS)
    meds = [f.speeds[a].epochs.median for a in f.fastest]
    assert meds == sorted(meds)
    for s in f.speeds.values():
        assert s.epochs.n == SEEDS and s.converged.n == SEEDS
        # reached the threshold = converged, or reached it and diverged later
        assert s.converged.count <= s.epochs.reached <= s.converged.count + s.diverged.count
    assert {a for a, _ in f.grid} == set(study_grid.GRID_ACTIVATIONS)
    for act in study_grid.GRID_ACTIVATIONS:
        assert sorted(lr for a, lr in f.grid if a == act) == list(study_grid.GRID_LRS)
    for s in f.grid.values():
        assert 0.0 <= s.diverged.share <= 1.0 and s.epochs.budget == f.grid_budget
    assert set(f.best_lr) == set(study_grid.GRID_ACTIVATIONS)


# ---- helpers -------------------------------------------------------------------------------


def test_quantiles_with_inf_by_hand():
    q = study_tables.quantiles_with_inf
    # sorted [1, 2, 3, 4]: h = 0.75, 1.5, 2.25
    np.testing.assert_allclose(q([4, 1, 3, 2], (0.25, 0.5, 0.75)), [1.75, 2.5, 3.25])
    # [1, 2, inf, inf]: q25 = 1.75; median between 2 and inf -> inf; q75 between infs -> inf
    assert list(q([np.inf, 1, np.inf, 2], (0.25, 0.5, 0.75))) == [1.75, np.inf, np.inf]
    # odd n lands exactly on an order statistic, even when the next one is inf
    assert list(q([1, 5, np.inf], (0.0, 0.5, 1.0))) == [1.0, 5.0, np.inf]
    assert np.isnan(q([], (0.5,))).all()


def test_effective_epochs_censors_diverged():
    o = pd.DataFrame({"outcome": ["converged", "diverged", "diverged", "not_converged"],
                      "epochs_to_threshold": [10, 7, -1, -1]})
    assert study_tables.effective_epochs(o).tolist() == [10, -1, -1, -1]


def test_summarize_by_hand():
    o = pd.DataFrame({
        "activation": ["a"] * 7,
        "lr": [0.1] * 7,
        "outcome": ["converged"] * 4 + ["diverged", "not_converged", "stuck"],
        "epochs_to_threshold": [5, 9, 3, 7, 2, -1, -1],  # the diverged seed touched it first
        "min_loss": [1e-4, 1e-4, 1e-4, 1e-4, 1e-9, 0.5, 0.25],
        "diverged_epoch": [-1, -1, -1, -1, 11, -1, -1],
    })
    r = study_tables.summarize(o, ["activation", "lr"], budget=20).iloc[0]
    assert r.epochs == 20 and r.n == 7 and r.reached == 4
    # sorted effective times: 3, 5, 7, 9, inf, inf, inf -> median 9
    assert r["median"] == 9.0
    assert math.isinf(r.median_ci_low) or r.median_ci_low <= 9.0
    assert r.converged_count == 4 and r.diverged_count == 1 and r.stuck_count == 1
    assert r.converged_share == pytest.approx(4 / 7)
    assert r.min_loss_median == pytest.approx(1e-4)  # the diverged seed's 1e-9 is left out
    assert r.diverged_epoch_median == 11.0


def test_loss_bands_count_missing_seeds_as_inf():
    loss = pd.DataFrame({
        "activation": "a", "lr": 0.1,
        "seed": [0, 1, 2, 0, 1],  # seed 2 diverged after epoch 1
        "epoch": [1, 1, 1, 2, 2],
        "loss": [1.0, 2.0, 3.0, 0.5, np.inf],  # seed 1 hit inf at epoch 2
    })
    groups = pd.DataFrame({"activation": ["a", "a", "b"], "lr": [0.1, 0.1, 0.1]})
    b = study_tables.loss_bands_all_seeds(loss, groups, seeds=range(4), epochs=[1, 2])
    assert len(b) == 4  # group b has no loss rows at all (every seed diverged at once)
    assert (b[b.activation == "b"][["q25", "median", "q75"]] == np.inf).all(axis=None)
    b = b[b.activation == "a"]
    e1, e2 = b[b.epoch == 1].iloc[0], b[b.epoch == 2].iloc[0]
    # seed 3 diverged at epoch 1 and has no row at all: [1, 2, 3, inf]
    assert (e1.q25, e1["median"], e1.q75, e1.n, e1.n_finite) == (1.75, 2.5, np.inf, 4, 3)
    assert (e2.q25, e2["median"], e2.n, e2.n_finite) == (np.inf, np.inf, 4, 1)


def test_fastest_order_and_main_lr():
    m = pd.DataFrame({"activation": ["x", "y", "z", "w"],
                      "median": [np.inf, 50.0, np.inf, 50.0],
                      "converged_share": [0.1, 0.9, 0.4, 0.95]})
    assert study_figures.fastest_order(m) == ["w", "y", "z", "x"]
    assert study_grid.main_lr((0.003, 0.1, 0.3)) == 0.1
    assert study_grid.main_lr((0.5, 0.05, 0.01)) == 0.05
    assert study_grid.main_lr((0.2,)) == 0.2
    assert study_grid.grid_epochs(2000) == 1000 and study_grid.grid_epochs(1) == 1
    with pytest.raises(ValueError):
        study_grid.main_lr(())
