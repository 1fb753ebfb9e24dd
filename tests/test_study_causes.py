"""The causes study in a small quick run, and its helpers against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diagnostics.train import OUTCOMES
from studies.causes import findings as study_findings
from studies.causes import grid as study_grid
from studies.causes import tables as study_tables
from studies.run.study import StudyOptions, read_meta, read_table
from tests.quick import EPOCHS, SEEDS

RELU_VARIANTS = [v for v, (_, applies) in study_grid.VARIANTS.items()]
SMOOTH_VARIANTS = [v for v, (_, applies) in study_grid.VARIANTS.items() if applies == "all"]
TABLES = {
    "variants": [
        "variant", "arm", "activation", "lr", "epochs", "layers", "threshold", "n",
        *[f"{o}_{k}" for o in (*OUTCOMES, "failed") for k in ("count", "share", "ci_low",
                                                              "ci_high")],
        "median", "median_ci_low", "median_ci_high", "q25", "q75", "reached", "reached_share",
        "reached_ci_low", "reached_ci_high", "note",
    ],
    "outcomes": ["variant", "arm", "activation", "lr", "outcome", "count", "n", "share",
                 "ci_low", "ci_high"],
    "per_seed": ["variant", "arm", "activation", "lr", "seed", "outcome", "epochs_to_threshold",
                 "final_loss", "max_abs_grad", "max_weight_grad", "dead_at_init", "dead_at_end",
                 "gradient", "failure", "pattern"],
    "local_minimum": [
        "variant", "arm", "activation", "lr", "n_seeds", "n_failed", "n_stuck_outcome",
        "zero_gradient_count", "zero_gradient_share", "zero_gradient_ci_low",
        "zero_gradient_ci_high", "nonzero_gradient_count", "constant_output_count",
        "output_varies_count", "bias_only_count", "weights_count",
        "nonzero_max_abs_grad_median", "output_varies_final_loss_median",
        "failed_final_loss_median", "dead_at_init_count", "dead_at_init_share",
        "dead_at_init_ci_low", "dead_at_init_ci_high", "zero_gradient_dead_at_init_count",
        "dead_at_end_count", "dead_at_end_share", "dead_at_end_ci_low", "dead_at_end_ci_high",
    ],
    "dead_patterns": ["variant", "arm", "activation", "lr", "pattern", "failure", "count",
                      "dead_at_init", "share_of_failed"],
    "stuck_vs_epoch": ["variant", "arm", "activation", "lr", "epoch", "n", "stuck_count",
                       "stuck_share", "stuck_ci_low", "stuck_ci_high", "revived_count"],
    "ranking": ["variant", "arm", "lr", "vs", "metric", "unit", "effect", "ci_low", "ci_high",
                "bound", "baseline", "value", "budget", "rescued", "killed", "mcnemar_p", "size"],
}
FIGURES = ["ranking.png", "relu_outcomes.png", "epochs.png", "local_minimum.png",
           "stuck_vs_epoch.png"]


@pytest.fixture(scope="module")
def run(quick_run):
    """This study's folder of the shared quick run, and its meta."""
    return quick_run / "causes", read_meta(quick_run / "causes")


def _ok_ci(low, est, high) -> bool:
    low, est, high = (np.asarray(x, dtype=float) for x in (low, est, high))
    return bool(np.all((low <= est + 1e-12) & (est <= high + 1e-12)))


# ---- files, columns, grid ---------------------------------------------------------------------


def test_files_and_columns(run):
    d, meta = run
    for name, columns in TABLES.items():
        assert list(read_table(d, name).columns) == columns, name
    for name in FIGURES:
        assert (d / name).stat().st_size > 10_000
    assert sorted(meta["figures"]) == sorted(FIGURES)
    assert meta["cells"] == len(RELU_VARIANTS) + 2 * len(SMOOTH_VARIANTS)


def test_grid_follows_the_variants_and_options():
    cells = study_grid.cells(StudyOptions(quick=True, seeds=5, epochs=10))
    by_arm = {}
    for c in cells:
        by_arm.setdefault(c.label_dict["arm"], []).append(c)
    assert [c.label_dict["variant"] for c in by_arm["relu"]] == RELU_VARIANTS
    assert [c.label_dict["variant"] for c in by_arm["tanh"]] == SMOOTH_VARIANTS
    leaky = next(c for c in by_arm["relu"] if c.label_dict["variant"] == "leaky_relu")
    assert leaky.config.activation == "leaky_relu" and leaky.config.leaky_slope == 0.01
    assert all(c.config.lr == 0.01 for c in by_arm["relu"])
    assert all(c.config.lr == 0.1 for c in by_arm["sigmoid"])
    faithful = by_arm["relu"][0].config
    assert faithful.bias_update == "decay" and faithful.backprop_weights == "updated"
    all_fixed = next(c for c in by_arm["relu"] if c.label_dict["variant"] == "all_fixed").config
    assert (all_fixed.bias_update, all_fixed.backprop_weights, all_fixed.output_activation,
            all_fixed.init, all_fixed.bias_init) == ("gradient", "current", "identity",
                                                      "xavier_normal", "zero")
    assert all(c.record for c in by_arm["relu"]) and not any(c.record for c in by_arm["tanh"])
    assert all(c.seeds == (0, 5) and c.config.epochs == 10 for c in cells)
    custom = study_grid.cells(StudyOptions(activations=("tanh",), lrs=(0.05, 0.2),
                                      layers=(2, 3, 1), seeds=4, epochs=7))
    assert {c.label_dict["arm"] for c in custom} == {"tanh"}
    assert len(custom) == 2 * len(SMOOTH_VARIANTS)
    assert {c.config.lr for c in custom} == {0.05, 0.2}
    assert all(c.config.layers == (2, 3, 1) for c in custom)


# ---- numbers agree with each other ------------------------------------------------------------


def test_variants_are_consistent(run):
    d, _ = run
    v = read_table(d, "variants")
    assert (v.n == SEEDS).all() and (v.epochs == EPOCHS).all()
    counts = v[[f"{o}_count" for o in OUTCOMES]].sum(axis=1)
    assert (counts == v.n).all()
    np.testing.assert_allclose(v[[f"{o}_share" for o in OUTCOMES]].sum(axis=1), 1.0)
    for o in (*OUTCOMES, "failed"):
        assert _ok_ci(v[f"{o}_ci_low"], v[f"{o}_share"], v[f"{o}_ci_high"]), o
        np.testing.assert_allclose(v[f"{o}_share"] * v.n, v[f"{o}_count"])
    assert (v.failed_count == v.n - v.converged_count).all()
    assert (v.reached == v.converged_count).all()
    assert _ok_ci(v.median_ci_low, v["median"], v.median_ci_high)
    assert _ok_ci(v.reached_ci_low, v.reached_share, v.reached_ci_high)
    assert (v[v.arm != "relu"].stuck_count == 0).all()  # tanh/sigmoid never have zero gradient
    o = read_table(d, "outcomes")
    np.testing.assert_allclose(o.groupby(["variant", "arm", "lr"]).share.sum(), 1.0)
    assert _ok_ci(o.ci_low, o.share, o.ci_high)


def test_per_seed_classification(run):
    d, _ = run
    ps = read_table(d, "per_seed").fillna({"failure": ""})
    assert len(ps) == SEEDS * len(RELU_VARIANTS)
    assert (ps.groupby("variant").seed.nunique() == SEEDS).all()
    live = ps[ps.outcome != "diverged"]
    assert ((live.gradient == "zero") == (live.max_abs_grad == 0)).all()
    assert (live[live.gradient == "bias_only"].max_weight_grad == 0).all()
    assert (live[live.gradient == "weights"].max_weight_grad > 0).all()
    failed = ps.outcome.isin(["stuck", "not_converged"])
    assert (ps[~failed].failure == "").all()
    assert ((ps.outcome == "stuck") == (ps.failure == "zero_gradient")).all()
    assert (ps[ps.failure == "constant_output"].dead_at_end == 1).all()
    assert (ps[ps.failure == "output_varies"].dead_at_end == 0).all()
    # a ReLU output unit that is dead makes the output constant (zero) on every sample
    out_dead = ps[ps.pattern.str.contains("output dead") & (ps.activation == "relu")]
    assert (out_dead.dead_at_end == 1).all()
    # leaky units below zero on every sample count as "dead" but still pass 0.01 x the gradient
    assert (ps[ps.activation == "leaky_relu"].gradient != "zero").all()
    assert (ps[ps.variant == "fix_output_activation"].pattern.str.contains("output").sum() == 0)


def test_local_minimum_table(run):
    d, _ = run
    lm = read_table(d, "local_minimum").set_index("variant")
    v = read_table(d, "variants")
    v = v[v.arm == "relu"].set_index("variant")
    assert list(lm.index) == RELU_VARIANTS
    assert (lm.n_seeds == SEEDS).all()
    assert (lm.n_failed == v.loc[lm.index].stuck_count + v.loc[lm.index].not_converged_count).all()
    assert (lm.zero_gradient_count == lm.n_stuck_outcome).all()  # stuck_tol = 0
    assert (lm.zero_gradient_count + lm.nonzero_gradient_count == lm.n_failed).all()
    assert (lm.bias_only_count + lm.weights_count == lm.nonzero_gradient_count).all()
    assert (lm.constant_output_count + lm.output_varies_count
            == lm.nonzero_gradient_count).all()
    some = lm[lm.n_failed > 0]
    assert _ok_ci(some.zero_gradient_ci_low, some.zero_gradient_share,
                  some.zero_gradient_ci_high)
    assert (lm.zero_gradient_dead_at_init_count <= lm.dead_at_init_count).all()
    assert (lm.dead_at_init_count <= lm.n_failed).all()
    pat = read_table(d, "dead_patterns")
    per_variant = pat.groupby("variant")["count"].sum()
    for variant, n_failed in lm.n_failed.items():
        assert per_variant.get(variant, 0) == n_failed
    assert (pat.dead_at_init <= pat["count"]).all()
    np.testing.assert_allclose(pat.groupby("variant").share_of_failed.sum(), 1.0)


def test_stuck_vs_epoch_ends_at_the_outcome(run):
    d, _ = run
    s = read_table(d, "stuck_vs_epoch")
    v = read_table(d, "variants")
    v = v[v.arm == "relu"].set_index("variant")
    assert set(s.epoch) >= {0, EPOCHS // 2, EPOCHS}
    assert (s.n == SEEDS).all()
    assert _ok_ci(s.stuck_ci_low, s.stuck_share, s.stuck_ci_high)
    end = s[s.epoch == EPOCHS].set_index("variant")
    assert (end.stuck_count == v.loc[end.index].stuck_count).all()
    assert (s[s.epoch == 0].revived_count == 0).all()
    # with the true gradient and no momentum nothing moves a zero-gradient network
    plain = s[s.variant == "fix_bias_update"].sort_values("epoch")
    assert (plain.revived_count == 0).all()
    assert (np.diff(plain.stuck_count.to_numpy()) >= 0).all()


def test_ranking_matches_variants(run):
    d, _ = run
    r = read_table(d, "ranking")
    v = read_table(d, "variants").set_index(["variant", "arm"])
    assert set(r.metric) == {"relu_stuck", "relu_failed", "tanh_median", "sigmoid_median"}
    assert not (r.variant == "faithful").any()
    for row in r[r.metric.isin(["relu_stuck", "relu_failed"])].itertuples():
        what = row.metric.split("_")[1]
        expect = v.loc[(row.variant, "relu"), f"{what}_share"] - v.loc[
            ("faithful", "relu"), f"{what}_share"]
        assert row.effect == pytest.approx(expect)
        assert row.ci_low <= row.effect <= row.ci_high
    fold = r[r.metric.str.endswith("_median")]
    assert set(fold.bound) <= {"exact", "at_most", "at_least", "unknown"}
    assert fold[fold.bound == "unknown"].effect.isna().all()
    known = fold[fold.bound != "unknown"]
    assert (known.effect > 0).all() and (known.ci_low <= known.ci_high).all()
    for _, part in r.groupby("metric", sort=False):  # sorted by size within a metric
        sizes = part["size"].dropna().to_numpy()
        assert (np.diff(sizes) <= 1e-12).all()


def test_findings(run):
    d, _ = run
    f = study_findings.findings(d)
    assert set(f.variants) == set(RELU_VARIANTS)
    faithful = f.variants["faithful"]
    v = read_table(d, "variants")
    for (arm, lr), a in faithful.arms.items():
        row = v[(v.variant == "faithful") & (v.arm == arm) & (v.lr == lr)].iloc[0]
        assert a.n == SEEDS and a.budget == EPOCHS
        assert (a.stuck.count, a.converged.count, a.failed.count) == (
            row.stuck_count, row.converged_count, row.failed_count)
        for r in (a.stuck, a.converged, a.failed):
            assert r.lo <= r.share <= r.hi
        assert a.epochs.n == SEEDS and a.epochs.reached == row.reached
    assert f.arm("leaky_relu", "tanh") is None  # relu arm only
    fail = f.failures_of("faithful", "relu")
    assert fail.zero_gradient + fail.bias_only_gradient + fail.weights_gradient == fail.failed
    assert fail.zero_gradient + fail.constant_output + fail.output_varies == fail.failed
    assert sum(fail.patterns.values()) == fail.failed
    assert fail.zero_gradient == faithful.arms[("relu", 0.01)].stuck.count
    assert len(f.ranking) == len(read_table(d, "ranking"))
    for r in f.ranking:
        assert r.metric in ("stuck", "failed", "median")
        if r.metric != "median":  # paired counts: at most every seed, and a valid p-value
            assert 0 <= r.rescued + r.killed <= SEEDS and 0 < r.p_value <= 1
    assert f.quirk_variants == tuple(n for n in RELU_VARIANTS if n.startswith("fix_"))
    assert f.layers == (2, 4, 4, 1) and f.threshold == pytest.approx(1e-3)


# ---- helpers against hand-computed values -----------------------------------------------------


def test_fold_change_with_censoring():
    inf = math.inf
    assert study_tables.fold_change((100, 80, 120), (200, 150, 260), 1000) == pytest.approx(
        (0.5, 80 / 260, 120 / 150, "exact"))
    effect, lo, hi, bound = study_tables.fold_change((100, 80, 120), (inf, 900, inf), 1000)
    assert (effect, lo, bound) == (pytest.approx(0.1), 0.0, "at_most")
    assert hi == pytest.approx(120 / 900)
    effect, lo, hi, bound = study_tables.fold_change((inf, inf, inf), (100, 80, 120), 1000)
    assert (effect, bound, hi) == (pytest.approx(10.0), "at_least", inf)
    assert lo == pytest.approx(1000 / 120)
    effect, lo, hi, bound = study_tables.fold_change((inf, 900, inf), (inf, inf, inf), 1000)
    assert math.isnan(effect) and bound == "unknown" and (lo, hi) == (0.0, inf)


def test_dead_pattern_names():
    assert study_tables.dead_pattern({1: 0.5, 2: 1.0, 3: 1.0}, 3) == "hidden 2 + output dead"
    assert study_tables.dead_pattern({1: 1.0, 2: 0.0, 3: 0.0}, 3) == "hidden 1 dead"
    assert study_tables.dead_pattern({1: 0.25, 2: 0.5}, 3) == "no layer all dead"
    assert study_tables.dead_pattern({1: 0.0, 2: 1.0}, 3) == "hidden 2 dead"  # identity output
    assert study_tables.dead_pattern({}, 3) == "no dead-unit probe"
    assert study_tables.dead_pattern({1: 1.0}, 1) == "output dead"


def test_gradient_and_failure_classes():
    assert study_tables.gradient_class(0.0, 0.0) == "zero"
    assert study_tables.gradient_class(1.47, 0.0) == "bias_only"
    assert study_tables.gradient_class(1e-53, 1e-53) == "weights"
    assert study_tables.failure_class("stuck", "zero", 1) == "zero_gradient"
    assert study_tables.failure_class("not_converged", "bias_only", 1) == "constant_output"
    assert study_tables.failure_class("not_converged", "weights", 0) == "output_varies"
    assert study_tables.failure_class("converged", "weights", 0) == ""
    assert study_tables.failure_class("diverged", "diverged", 0) == ""


def test_record_epochs():
    assert study_grid.record_epochs(1) == [0, 1]
    e = study_grid.record_epochs(2000)
    assert e[0] == 0 and e[-1] == 2000 and 1000 in e and 1 in e
    assert e == sorted(set(e)) and len(e) <= 13
