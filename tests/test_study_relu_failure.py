"""The relu_failure study in quick mode (files, columns, numbers that agree) and its helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from diagnostics import theory
from diagnostics.data import question_data
from diagnostics.presets import PRESETS
from studies.relu_failure import findings as study_findings
from studies.relu_failure import grid as study_grid
from studies.relu_failure import tables as study_tables
from studies.run.study import StudyOptions, read_meta
from studies.stats.intervals import mcnemar_exact, wilson_interval
from tests.quick import EPOCHS, SEEDS

TABLES = {
    "failure": ["factor", "value", "order", "is_baseline", "n", "epochs", "failure_share",
                "failure_ci_low", "failure_ci_high", "born_dead_share", "born_dead_ci_low",
                "born_dead_ci_high", "died_share", "died_ci_low", "died_ci_high", "other_share",
                "other_ci_low", "other_ci_high", "converged_share", "converged_ci_low",
                "converged_ci_high", "stuck_count", "diverged_count", "dead_initial_count"],
    "per_seed": ["factor", "value", "seed", "outcome", "epochs_to_threshold", "dead_initial",
                 "dead_final", "category"],
    "dead_layers": ["factor", "value", "when", "layer", "n", "mean_dead_fraction",
                    "all_dead_share", "all_dead_ci_low", "all_dead_ci_high"],
    "born_dead_theory": ["source", "width", "n_seeds", "unit_n", "unit_share", "unit_ci_low",
                         "unit_ci_high", "theory_p", "all_dead_count", "all_dead_share",
                         "all_dead_ci_low", "all_dead_ci_high", "theory_all_dead"],
    "born_dead_conditions": ["condition", "source", "init", "bias_init", "weight_std",
                             "bias_std", "same_scale", "unit_share", "unit_ci_low",
                             "unit_ci_high", "theory_p", "theory_in_ci"],
    "second_layer": ["n0", "n1", "unit_share", "unit_ci_low", "unit_ci_high",
                     "theory_whole_space"],
    "ranking": ["factor", "value", "is_baseline", *study_tables.RANK_COLS],
}
FIGURES = ("failure_by_factor.png", "born_dead_theory.png")
SHARES = ("failure", "born_dead", "died", "other", "converged")


@pytest.fixture(scope="module")
def run(quick_run):
    """This study's folder of the shared quick run, its tables and its meta."""
    target = quick_run / "relu_failure"
    tables = {name: pd.read_csv(target / f"{name}.csv") for name in TABLES}
    return target, tables, read_meta(target)


def test_every_promised_file_and_column(run):
    target, tables, meta = run
    for name, columns in TABLES.items():
        missing = set(columns) - set(tables[name].columns)
        assert not missing, f"{name}.csv lacks {missing}"
        assert len(tables[name]), f"{name}.csv is empty"
    for png in FIGURES:
        assert (target / png).stat().st_size > 10_000
    assert meta["figures"] == list(FIGURES)


def test_failure_split_is_a_partition_with_valid_intervals(run):
    _, t, _ = run
    f = t["failure"]
    assert (f.n == SEEDS).all() and (f.epochs == EPOCHS).all()
    parts = f.born_dead_count + f.died_count + f.other_count
    assert (parts == f.failure_count).all()
    assert (f.failure_count + f.converged_count == f.n).all()
    assert np.allclose(f.born_dead_share + f.died_share + f.other_share + f.converged_share, 1)
    for s in SHARES:
        assert np.allclose(f[f"{s}_share"], f[f"{s}_count"] / f.n)
        assert (f[f"{s}_ci_low"] >= 0).all() and (f[f"{s}_ci_high"] <= 1).all()
        assert (f[f"{s}_ci_low"] <= f[f"{s}_share"] + 1e-12).all()
        assert (f[f"{s}_share"] <= f[f"{s}_ci_high"] + 1e-12).all()
    assert (f.born_dead_count <= f.dead_initial_count).all()
    assert (f.dead_initial_count == f.born_dead_count + f.dead_initial_converged_count).all()
    assert (f.dead_initial_ci_low <= f.dead_initial_share).all()


def test_one_baseline_per_factor_and_it_is_the_same_cell(run):
    _, t, _ = run
    f = t["failure"]
    assert set(f.factor) == {"baseline", *study_grid.FACTORS}
    base = f[f.factor == "baseline"].iloc[0]
    for name, part in f[f.factor != "baseline"].groupby("factor"):
        assert part.is_baseline.sum() == 1, name
        assert sorted(part.order) == list(range(len(part))), name
        b = part[part.is_baseline].iloc[0]
        for s in SHARES:
            assert b[f"{s}_count"] == base[f"{s}_count"], (name, s)
    values = f[f.factor == "width"].sort_values("order").value.astype(str).tolist()
    assert values == ["1", "2", "4", "8", "16", "32"]
    leaky = f[f.factor == "leaky_slope"].sort_values("order").value.tolist()
    assert leaky == ["relu", "leaky 0.01", "leaky 0.1", "leaky 0.3"]


def test_per_seed_rows_add_up_to_the_failure_table(run):
    _, t, _ = run
    ps, f = t["per_seed"], t["failure"]
    ps = ps.assign(value=ps.value.astype(str))
    assert (ps.groupby(["factor", "value"]).size() == SEEDS).all()
    conv = ps.outcome == "converged"
    assert ((ps.category == "converged") == conv).all()
    assert (ps.category[~conv & ps.dead_initial] == "born_dead").all()
    assert (ps.category[~conv & ~ps.dead_initial & ps.dead_final] == "died").all()
    counts = ps.groupby(["factor", "value"]).category.value_counts().unstack(fill_value=0)
    own = f[~f.is_baseline | (f.factor == "baseline")].assign(value=lambda d: d.value.astype(str))
    for r in own.itertuples():
        row = counts.loc[(r.factor, r.value)]
        assert row.get("born_dead", 0) == r.born_dead_count
        assert row.get("died", 0) == r.died_count
        assert row.get("other", 0) == r.other_count
    # leaky units never make the output exactly constant here: no born-dead failures
    assert (f[f.value.astype(str).str.startswith("leaky")].born_dead_count == 0).all()


def test_dead_layers_are_fractions_and_cover_every_layer(run):
    _, t, _ = run
    d = t["dead_layers"]
    assert d.mean_dead_fraction.between(0, 1).all()
    assert (d.all_dead_share <= d.mean_dead_fraction + 1e-12).all()  # all dead => fraction 1
    for (_, value, _), part in d.groupby(["factor", "value", "when"]):
        n = int(part.n_layers.iloc[0])
        rectified = n - 1 if value == "identity" else n  # a linear output has no dead units
        assert sorted(part.layer) == list(range(1, rectified + 1)), value


def test_born_dead_theory_is_consistent(run):
    _, t, _ = run
    bw = t["born_dead_theory"]
    p = theory.dead_probability(question_data().X)
    assert np.allclose(bw.theory_p, p)
    assert np.allclose(bw.theory_all_dead, p ** bw.width)
    ens = bw[bw.source == "ensemble"].sort_values("width")
    assert ens.width.tolist() == list(range(1, study_grid.ENSEMBLE_WIDTH + 1))
    assert (ens.n_seeds == SEEDS * study_grid.ENSEMBLE_PER_SEED).all()
    assert (np.diff(ens.all_dead_count) <= 0).all()  # first n units all dead is nested in n
    assert (ens.unit_n == ens.n_seeds * ens.width).all()
    assert ens.all_dead_count.iloc[0] == ens.unit_count.iloc[0]  # n = 1: the same event
    tr = bw[bw.source == "trained"]
    assert sorted(tr.width) == [1, 2, 4, 8, 16, 32] and (tr.n_seeds == SEEDS).all()
    for frame in (bw, t["born_dead_conditions"], t["second_layer"]):
        assert (frame.unit_ci_low <= frame.unit_share + 1e-12).all()
        assert (frame.unit_share <= frame.unit_ci_high + 1e-12).all()


def test_conditions_and_second_layer_closed_forms(run):
    _, t, _ = run
    c = t["born_dead_conditions"]
    p = theory.dead_probability(question_data().X)
    same = c[c.same_scale]
    assert len(same) >= 3 and np.allclose(same.theory_p, p)  # scale invariance
    assert c[c.init == "rai"].theory_p.isna().all()
    assert c[c.bias_init == "constant"].theory_p.isna().all()
    second = t["second_layer"]
    assert second.n1.tolist() == [1, 2, 3]
    assert np.allclose(second.theory_whole_space, [1 / 4, 1 / 8, 5 / 64])


def test_findings_shape_and_order(run):
    target, t, _ = run
    f = study_findings.findings(target)
    b = f.baseline
    for r in (b.failed, b.born_dead, b.died, b.other):
        assert r.n == SEEDS and r.lo <= r.share <= r.hi
    assert b.born_dead.count + b.died.count + b.other.count == b.failed.count
    assert b.dead_initial.count >= b.born_dead.count
    assert {lv.factor for lv in f.levels} == set(study_grid.FACTORS)
    assert {lv.value for lv in f.levels if lv.factor == "lr"} == {
        "0.001", "0.003", "0.01", "0.03", "0.1"}
    assert len(f.levels) == len(t["failure"]) - 1  # every row but the baseline's own
    assert f.unit_dead_theory == pytest.approx(theory.dead_probability(question_data().X))
    m = f.unit_dead_measured
    assert m.lo <= m.share <= m.hi
    assert f.budget == EPOCHS and f.seeds == SEEDS and f.n_samples == 6
    assert f.layers == (2, 4, 4, 1)


def test_ranking_groups_every_change_and_the_program_once(run):
    target, t, _ = run
    r, ps = t["ranking"], t["per_seed"]
    assert len(r) == ps.groupby(["factor", "value"]).ngroups  # each change once, and the program
    assert r.is_baseline.sum() == 1
    assert (np.diff(r.share) >= 0).all() and (np.diff(r.group) >= 0).all()  # lowest first
    assert r.group.iloc[0] == 1 and set(np.diff(r.group)) <= {0, 1}
    leaders = r[r.name == r.leader]
    assert len(leaders) == r.group.nunique() and leaders.mcnemar_p.isna().all()
    members = r[r.name != r.leader]
    assert ((members.diff_lo <= 0) & (0 <= members.diff_hi)).all()  # indistinguishable
    lead_count = r.set_index("name")["count"]
    np.testing.assert_array_equal(  # paired: discordant seeds give the difference of counts
        members.variant_only - members.leader_only,
        members["count"].to_numpy() - lead_count[members.leader].to_numpy())
    f = study_findings.findings(target)
    assert [x.group for x in f.ranking] == r.group.tolist()
    assert sum(x.leader for x in f.ranking) == len(leaders)


def test_rank_groups_flips_with_the_pairing():
    """Synthetic seeds: 30% against 40% failures is ranked only when the pairs say so."""
    S = 100
    a = np.zeros(S, bool)
    a[:30] = True  # fails on seeds 0..29
    nested = a.copy()
    nested[30:40] = True  # the same 30 and 10 more: 0 vs 10 discordant seeds
    shifted = np.zeros(S, bool)
    shifted[20:60] = True  # 40 failures, 20 vs 30 discordant: no telling them apart
    # the independent Wilson intervals of 30% and 40% overlap either way
    assert wilson_interval(30, S)[1] > wilson_interval(40, S)[0]
    ranked = study_tables.rank_groups(["a", "b"], np.array([a, nested]))
    assert ranked.group.tolist() == [1, 2] and ranked.leader.tolist() == ["a", "b"]
    together = study_tables.rank_groups(["a", "b"], np.array([a, shifted]))
    assert together.group.tolist() == [1, 1] and together.leader.tolist() == ["a", "a"]
    row = together.iloc[1]
    assert (row.leader_only, row.variant_only) == (20, 30)
    assert row["diff"] == pytest.approx(0.1) and row.diff_lo < 0 < row.diff_hi
    assert row.mcnemar_p == pytest.approx(mcnemar_exact(20, 30))
    # a third variant that fails on every seed: a group of its own, after both
    worst = study_tables.rank_groups(["c", "a", "b"], np.array([np.ones(S, bool), a, shifted]))
    assert worst.name.tolist() == ["a", "b", "c"] and worst.group.tolist() == [1, 1, 2]
    # identical failures: one group, a difference of exactly 0
    same = study_tables.rank_groups(["a", "a2"], np.array([a, a]))
    assert same.group.tolist() == [1, 1] and same["diff"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        study_tables.rank_groups(["a"], np.array([a, a]))


# ---- helpers ---------------------------------------------------------------------------------


def test_unit_dead_probability_hand_values():
    axes = np.array([[1.0, 0.0], [0.0, 1.0]])
    # zero bias, data on both positive axes: w1 <= 0 and w2 <= 0, a quarter of the plane
    assert study_tables.unit_dead_probability(axes, 1.0, 0.0) == pytest.approx(0.25, abs=1e-6)
    # 1-D positive data, zero bias: dead iff w <= 0
    assert study_tables.unit_dead_probability(np.array([[1.0], [2.0]]), 3.0, 0.0) == pytest.approx(
        0.5, abs=1e-6)
    # a row at the origin gives z = b = 0 <= 0: it imposes nothing
    with_origin = np.vstack([axes, [0.0, 0.0]])
    p_origin = study_tables.unit_dead_probability(with_origin, 1.0, 0.0)
    assert p_origin == pytest.approx(0.25, abs=1e-6)
    # equal scales: the i.i.d. closed form, whatever the scale
    X = question_data().X
    p = theory.dead_probability(X)
    for s in (0.1, 1.0, 7.0):
        assert study_tables.unit_dead_probability(X, s, s) == pytest.approx(p, abs=1e-12)
    # unequal scales: the closed form on rescaled data; 1-D [-1, 1] with w ~ N(0, 1), b = N(0, 1)
    one_d = np.array([[-1.0], [1.0]])
    assert study_tables.unit_dead_probability(one_d, 1.0, 1.0) == pytest.approx(0.25)
    # w ~ N(0, 4): data effectively [-2, 2], p = 1/2 - 2 atan(2) / (2 pi)
    assert study_tables.unit_dead_probability(one_d, 2.0, 1.0) == pytest.approx(
        0.5 - math.atan(2.0) / math.pi)
    assert math.isnan(study_tables.unit_dead_probability(X, 1.0, math.nan))


def test_unit_dead_probability_against_monte_carlo_with_unequal_scales():
    X = question_data().X
    rng = np.random.default_rng(7)
    n = 200_000
    w = rng.normal(0.0, 0.5, size=(n, 2))
    b = rng.normal(0.0, 1.3, size=(n, 1))
    mc = float(np.mean(np.max(w @ X.T + b, axis=1) <= 0))
    se = math.sqrt(mc * (1 - mc) / n)
    assert abs(study_tables.unit_dead_probability(X, 0.5, 1.3) - mc) < 4 * se


def test_classify_partition():
    got = study_tables.classify([True, True, False, False, False, False],
                         [True, False, True, True, False, False],
                         [False, False, False, True, True, False])
    assert got.tolist() == ["converged", "converged", "born_dead", "born_dead", "died", "other"]


def test_first_units_all_dead_by_hand():
    dead = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 2, 3],
                         "unit": [0, 1, 2, 0, 2, 1, 0]})
    # seed 0: units 0,1,2; seed 1: 0,2; seed 2: 1; seed 3: 0
    assert study_tables.first_units_all_dead(dead, [1, 2, 3, 4]) == {1: 3, 2: 1, 3: 1, 4: 0}


def test_weight_std_values():
    assert study_grid.weight_std("standard_normal", 2, 4) == 1.0
    assert study_grid.weight_std("xavier_normal", 2, 4) == pytest.approx(math.sqrt(1 / 3))
    assert study_grid.weight_std("he_normal", 8, 3) == pytest.approx(0.5)
    assert math.isnan(study_grid.weight_std("rai", 2, 4))
    assert math.isnan(study_grid.weight_std("he_uniform", 2, 4))  # not Gaussian


def test_grid_honours_options_and_shares_the_baseline():
    opts = StudyOptions(lrs=(0.05,), activations=("relu", "elu"), seeds=3, epochs=5)
    base = study_grid.baseline(opts, 5)
    assert base == PRESETS["question"].replace(epochs=5)
    rows = study_grid.grid(opts, base)
    lr = [r for r in rows if r.factor == "lr"]
    assert [r.value for r in lr] == ["0.01", "0.05"] and lr[0].is_baseline
    act = [r for r in rows if r.factor == "activation"]
    assert [r.value for r in act] == ["relu", "elu"] and act[1].config.activation == "elu"
    depth = {r.value: r.config.layers for r in rows if r.factor == "depth"}
    assert depth["1"] == (2, 4, 1) and depth["10"] == (2, *(4,) * 10, 1)
    cells = study_grid.cells(opts)
    trained = [c for c in cells if c.label_dict["part"] == "trained"]
    assert len(trained) == len({c.labels for c in trained})  # the baseline is trained once
    assert sum(c.label_dict["factor"] == "baseline" for c in trained) == 1
    assert len(trained) == len(rows) - sum(r.is_baseline for r in rows) + 1
    assert all(c.seeds == (0, 3) and c.config.epochs == 5 for c in trained)
    custom = study_grid.grid(StudyOptions(layers=(2, 3, 5, 1)), base.replace(layers=(2, 3, 5, 1)))
    assert not any(r.is_baseline for r in custom if r.factor == "width")  # not on the axis
