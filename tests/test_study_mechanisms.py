"""The mechanisms study in the shared quick run, and its helpers against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from diagnostics.data import question_data
from diagnostics.initializers import draw_ensemble
from diagnostics.presets import PRESETS
from diagnostics.train import OUTCOMES, train
from studies.mechanisms import findings as study_findings
from studies.mechanisms import grid as study_grid
from studies.mechanisms import samples
from studies.mechanisms import tables as study_tables
from studies.mechanisms.figures import CAPTIONS
from studies.run.budget import HEADLINE_EPOCHS, LONG_EPOCHS
from studies.run.study import StudyOptions, read_meta, read_table
from tests.quick import EPOCHS, SEEDS
from tests.test_probes import SLOW_ACTS, act_errors, slow_error_bounds, slow_pass

from .tolerances import U64, gamma, libm_rel, two_sided

ARM = ["activation", "lr"]
TABLES = {
    "per_seed": ["part", "variant", "activation", "lr", "seed", "outcome", "step_lr",
                 "threshold", "epochs", "reached", "reached_long", "reached_fine",
                 "epochs_to_threshold",
                 "loss_at_budget",
                 "printed", "stuck", "max_abs_grad"],
    "asymptote": [*ARM, "variant", "n", "budget", "threshold", "trained_threshold",
                  "reached_count", "reached_share", "reached_ci_low", "reached_ci_high",
                  "median", "median_ci_low", "median_ci_high", "q25", "q75", "loss_median",
                  "paired", "rescued", "killed", "mcnemar_p"],
    "tail_fit": [*ARM, "budget", "fit_from", "fit_to", "n", "fitted", "k_median", "k_ci_low",
                 "k_ci_high", "k_q25", "k_q75", "theory_k", "loss_median_from",
                 "loss_median_to", "median_curve_k"],
    "tail_per_seed": [*ARM, "seed", "fit_from", "fit_to", "points", "decreasing", "k",
                      "loss_from", "loss_to"],
    "tail_loss": [*ARM, "epoch", "q25", "median", "q75", "n"],
    "momentum": [*ARM, "variant", "step_lr", "momentum", "n", "budget", "threshold",
                 *[f"{o}_{k}" for o in ("converged", "stuck", "not_converged", "diverged")
                   for k in ("count", "share", "ci_low", "ci_high")],
                 "median", "median_ci_low", "median_ci_high", "q25", "q75",
                 *[f"{w}_{k}" for w in ("stuck", "converged")
                   for k in ("rescued", "killed", "mcnemar_p")]],
    "relu_failures": [*ARM, "n", "budget",
                      *[f"{c}_{k}" for c in ("converged", "failed", "born_dead", "died", "alive",
                                             "dead_initial")
                        for k in ("count", "share", "ci_low", "ci_high")]],
    "printed_signatures": [*ARM, "printed", "count", "failed", "share_of_failed", "signature"],
    "corrected": [*ARM, "program", "n", "budget", "threshold", "fine",
                  *[f"{p}_{k}" for p in ("reached", "reached_fine", "reads_zero")
                    for k in ("count", "share", "ci_low", "ci_high")],
                  "median", "median_ci_low", "median_ci_high", "q25", "q75"],
    "alternatives": [*ARM, "variant", "yours", "n", "budget", "threshold",
                     *[f"reached_{k}" for k in ("count", "share", "ci_low", "ci_high")],
                     "median", "median_ci_low", "median_ci_high", "q25", "q75",
                     *[f"diverged_{k}" for k in ("count", "share", "ci_low", "ci_high")],
                     "paired", "rescued", "killed", "mcnemar_p", "faster", "slower", "speed_p",
                     "epochs_ratio"],
    "plateau": [*ARM, "n", "level", *[f"{p}_{k}" for p in ("sat", "left")
                                       for k in ("count", "share", "ci_low", "ci_high")],
                "decades_median"],
    "output_slope": study_tables.SLOPE_COLS,
    "layer_ratios": study_tables.RATIO_COLS,
    "bias_decay": study_tables.BIAS_COLS,
}
FIGURES = ["asymptote.png", "tail.png", "momentum.png", "dead_output.png", "output_slope.png",
           "bias_decay.png"]


@pytest.fixture(scope="module")
def run(quick_run):
    return quick_run / "mechanisms", read_meta(quick_run / "mechanisms")


def _ok_ci(low, est, high) -> bool:
    low, est, high = (np.asarray(x, dtype=float) for x in (low, est, high))
    return bool(np.all((low <= est + 1e-12) & (est <= high + 1e-12)))


def _rates_ok(t, prefix, n) -> None:
    np.testing.assert_allclose(t[f"{prefix}_share"] * n, t[f"{prefix}_count"])
    assert _ok_ci(t[f"{prefix}_ci_low"], t[f"{prefix}_share"], t[f"{prefix}_ci_high"]), prefix


# ---- files, grid ------------------------------------------------------------------------------


def test_files_columns_and_captions(run):
    d, meta = run
    for name, columns in TABLES.items():
        assert list(read_table(d, name).columns) == columns, name
    for name in ("asymptote_survival", "linear_baseline", "dead_output_init", "revived",
                 "printed_error"):
        assert len(read_table(d, name)), name
    assert sorted(meta["figures"]) == sorted(FIGURES)
    for name in FIGURES:
        assert (d / name).stat().st_size > 10_000
        assert CAPTIONS[name] and "\n" not in CAPTIONS[name]


def test_grid_pairs_seeds_and_follows_the_options():
    opts = StudyOptions(quick=True, seeds=5, epochs=10)
    cells = study_grid.cells(opts)
    budget, tail = study_grid.budgets(opts)
    assert (budget, tail) == (10, 10 * study_grid.TAIL_FACTOR)
    assert study_grid.budgets(StudyOptions(quick=True)) == (300, study_grid.QUICK_TAIL)
    assert study_grid.budgets(StudyOptions()) == (HEADLINE_EPOCHS, LONG_EPOCHS)
    by = {(c.label_dict["part"], c.label_dict["variant"], c.label_dict["activation"]): c
          for c in cells}
    q = PRESETS["question"]
    for act in ("tanh", "sigmoid"):
        written = by[("tail", "as_written", act)].config
        assert written == q.replace(activation=act, lr=0.1, epochs=tail)
        halved = by[("asymptote", "halved_targets", act)]
        assert halved.data == "scaled:0.5:question"
        assert halved.config.threshold == pytest.approx(q.threshold / 4)  # the user's units
        lin = by[("asymptote", "linear_output", act)].config
        assert lin == q.replace(activation=act, lr=0.1, epochs=10, output_activation="identity")
        assert str(budget) in str(by[("tail", "as_written", act)].loss_every).split(",")
    sgd = by[("relu", "sgd", "relu")]
    assert sgd.config == q.replace(epochs=10) and sgd.record
    matched = by[("relu", "momentum_matched", "relu")].config
    assert matched.optimizer == "momentum" and matched.lr == pytest.approx(0.01 * 0.1)
    assert by[("relu", "momentum", "relu")].config.lr == 0.01
    assert by[("init", "he_normal", "relu")].config.epochs == 1
    assert by[("init", "normal", "relu")].seeds == (0, 5 * study_grid.INIT_PER_SEED)
    fixed = by[("linear", "fixed", "identity")].config
    assert fixed.layers == (2, 1) and fixed.bias_update == "gradient"
    trained = [c for c in cells if c.label_dict["part"] != "init"]
    assert all(c.seeds == (0, 5) for c in trained)  # the same seeds: every comparison is paired
    custom = study_grid.cells(StudyOptions(activations=("tanh",), lrs=(0.05,), layers=(2, 3, 1),
                                           seeds=4, epochs=7))
    assert {c.label_dict["part"] for c in custom} == {"tail", "asymptote", "linear", "corrected",
                                                       "alternative"}
    assert all(c.config.lr == 0.05 for c in custom  # the corrected program keeps its own lr
               if c.label_dict["part"] not in ("linear", "corrected", "alternative"))
    corrected = next(c for c in custom if c.label_dict["part"] == "corrected").config
    assert corrected == PRESETS["corrected"].replace(activation="tanh", epochs=7,
                                                     layers=(2, 3, 1))
    assert {c.config.layers for c in custom} == {(2, 3, 1), (2, 1), (2, 4, 1), (2, 16, 1)}
    assert next(c for c in custom if c.label_dict["part"] == "tail").config.epochs == (
        7 * study_grid.TAIL_FACTOR)


# ---- numbers agree with each other ------------------------------------------------------------


def test_per_seed_is_read_at_the_budget(run):
    d, _ = run
    ps = read_table(d, "per_seed")
    assert (ps.groupby(["part", "variant", "activation", "lr"]).seed.nunique() == SEEDS).all()
    assert set(ps.outcome) <= set(OUTCOMES)
    reached = ps.reached.astype(bool)
    e = ps.epochs_to_threshold
    assert ((e >= 1) & (e <= EPOCHS))[reached].all() and (e[~reached] == -1).all()
    short = ps[ps.part != "tail"]  # trained for the budget only: the outcome says the same
    assert ((short.outcome == "converged") == short.reached.astype(bool)).all()
    assert ((short.outcome == "stuck") == short.stuck.astype(bool)).all()
    live = ps[ps.outcome != "diverged"]
    np.testing.assert_allclose(live.printed, live.loss_at_budget.round(6), atol=5e-7)


def test_asymptote_paired_counts(run):
    d, _ = run
    a = read_table(d, "asymptote")
    ps = read_table(d, "per_seed")
    assert (a.n == SEEDS).all() and (a.budget == EPOCHS).all()
    _rates_ok(a, "reached", a.n)
    np.testing.assert_allclose(a.threshold, PRESETS["question"].threshold)
    for r in a[a.variant != "as_written"].itertuples():
        base = ps[(ps.part == "tail") & (ps.activation == r.activation)].set_index("seed")
        var = ps[(ps.part == "asymptote") & (ps.variant == r.variant)
                 & (ps.activation == r.activation)].set_index("seed")
        b, v = base.reached.astype(bool), var.reached.astype(bool).loc[base.index]
        assert (r.rescued, r.killed) == (int((~b & v).sum()), int((b & ~v).sum()))
        # the paired difference in counts is rescued minus killed
        written = a[(a.activation == r.activation) & (a.variant == "as_written")].iloc[0]
        assert r.reached_count - written.reached_count == r.rescued - r.killed
        assert 0 < r.mcnemar_p <= 1


def test_tail_fit(run):
    d, _ = run
    f = read_table(d, "tail_fit")
    ps = read_table(d, "tail_per_seed")
    assert (f.budget == EPOCHS * study_grid.TAIL_FACTOR).all()
    assert (f.fit_to == f.budget).all() and (f.fit_from == f.budget // 10).all()
    assert (f.theory_k == -1).all() and (f.n == SEEDS).all()
    for r in f.itertuples():
        part = ps[(ps.activation == r.activation) & (ps.lr == r.lr)]
        assert r.fitted == int(part.decreasing.sum())
        assert r.k_median == pytest.approx(part.k.dropna().median())
        assert r.k_ci_low <= r.k_median <= r.k_ci_high
    dec = ps[ps.decreasing.astype(bool)]
    assert (dec.loss_to < dec.loss_from).all() and dec.k.notna().all()
    assert ps[~ps.decreasing.astype(bool)].k.isna().all()


def test_linear_baseline(run):
    d, _ = run
    t = read_table(d, "linear_baseline")
    assert set(t.variant) == set(study_grid.LINEAR_VARIANTS)
    assert set(t.lr) == {study_grid.RELU_LR, study_grid.SMOOTH_LR}
    assert (t.n == SEEDS).all()
    for p in ("reached", "stuck", "diverged"):
        _rates_ok(t, p, t.n)
    assert (t.stuck_count == 0).all()  # a linear neuron's gradient vanishes only at the optimum


def test_momentum_counts(run):
    d, _ = run
    m = read_table(d, "momentum")
    ps = read_table(d, "per_seed")
    assert list(m.variant) == list(study_grid.MOMENTUM_VARIANTS)
    outcomes = ("converged", "stuck", "not_converged", "diverged")
    assert (m[[f"{o}_count" for o in outcomes]].sum(axis=1) == m.n).all()
    for o in outcomes:
        _rates_ok(m, o, m.n)
    base = ps[(ps.part == "relu") & (ps.variant == "sgd")].set_index("seed")
    sgd = m[m.variant == "sgd"].iloc[0]
    for r in m[m.variant != "sgd"].itertuples():
        v = ps[(ps.part == "relu") & (ps.variant == r.variant)].set_index("seed").loc[base.index]
        bs, vs = base.stuck.astype(bool), v.stuck.astype(bool)
        assert (r.stuck_rescued, r.stuck_killed) == (int((bs & ~vs).sum()),
                                                     int((~bs & vs).sum()))
        assert r.stuck_count - sgd.stuck_count == r.stuck_killed - r.stuck_rescued
        assert r.converged_count - sgd.converged_count == r.converged_rescued - r.converged_killed


def test_dead_output_and_failure_split(run):
    d, _ = run
    init = read_table(d, "dead_output_init")
    assert list(init.init) == list(study_grid.INITS)
    assert (init.n == SEEDS * study_grid.INIT_PER_SEED).all()
    for p in ("output_dead", "network_dead", "layer1_unit_dead"):
        _rates_ok(init, p, init.units if p.startswith("layer1") else init.n)
    p = init.set_index("init").layer1_unit_theory
    assert p["normal"] == pytest.approx(0.4063, abs=2e-3) and p[["xavier_normal",
                                                                   "he_normal"]].isna().all()
    # zero bias: a ReLU's sign does not depend on the weights' scale, so Xavier and He agree
    x, h = init.set_index("init").loc[["xavier_normal", "he_normal"]].output_dead_count
    assert x == h
    f = read_table(d, "relu_failures").iloc[0]
    assert f.converged_count + f.born_dead_count + f.died_count + f.alive_count == f.n
    assert f.failed_count == f.n - f.converged_count
    assert f.born_dead_count <= f.dead_initial_count
    m = read_table(d, "momentum")
    assert f.converged_count == m[m.variant == "sgd"].converged_count.iloc[0]


def test_revived_and_printed(run):
    d, _ = run
    r = read_table(d, "revived").iloc[0]
    assert r.revived_count <= r.zero_at_init_count <= r.n
    assert r.revived_converged_count <= r.revived_count
    assert r.zero_at_init_converged_count >= r.revived_converged_count  # stays zero: no learning
    pe = read_table(d, "printed_error")
    assert set(pe.activation) == {"relu", "tanh", "sigmoid"}
    assert pe.dead_output_error.iloc[0] == pytest.approx(3.58 / 6)
    assert pe.mean_target_error.iloc[0] == pytest.approx(3.58 / 6 - (4.4 / 6) ** 2)
    _rates_ok(pe, "reads_zero", pe.n)
    assert (pe.failed_dead_output_count + pe.failed_mean_target_count <= pe.failed).all()
    ps = read_table(d, "per_seed")
    relu = ps[(ps.part == "relu") & (ps.variant == "sgd")]
    row = pe[pe.activation == "relu"].iloc[0]
    assert row.failed == int((~relu.reached.astype(bool)).sum())


def test_findings(run):
    d, _ = run
    f = study_findings.findings(d)
    assert isinstance(f, study_findings.MechanismsFindings)
    assert f.budget == EPOCHS and f.layers == (2, 4, 4, 1) and f.threshold == pytest.approx(1e-3)
    assert f.linear_layers == (2, 1) and f.n_samples == 6
    a = read_table(d, "asymptote")
    assert len(f.asymptote_reached) == len(a)
    for key, rate in f.asymptote_reached.items():
        assert rate.n == SEEDS and rate.lo <= rate.share <= rate.hi
        assert f.asymptote_epochs[key].reached == rate.count
    assert math.isnan(f.asymptote_p[("tanh", 0.1, "as_written")])
    assert set(f.tail_k) == {("tanh", 0.1), ("sigmoid", 0.1)} and f.tail_theory_k == -1
    assert f.tail_fit_to == f.tail_budget == EPOCHS * study_grid.TAIL_FACTOR
    arm = ("relu", 0.01)
    parts = (f.relu_born_dead[arm].count + f.relu_died[arm].count
             + f.relu_failed_alive[arm].count)
    assert parts == f.relu_failed[arm].count
    assert f.revived[arm].n == f.zero_gradient_init[arm].count
    assert f.momentum_step_lr[("relu", 0.01, "momentum_matched")] == pytest.approx(0.001)
    assert f.momentum == 0.9 and f.init_seeds == SEEDS * study_grid.INIT_PER_SEED
    assert f.dead_output_error == pytest.approx(3.58 / 6)


# ---- helpers against hand-worked values -------------------------------------------------------


def test_printed_and_signatures():
    assert study_tables.printed(4.9e-7) == "0.000000"
    assert study_tables.printed(5.1e-7) == "0.000001"
    Y = question_data().Y  # 0.3 0.8 0.6 1.0 1.0 0.7: sum of squares 3.58, mean 4.4/6
    assert study_tables.printed(study_tables.dead_output_error(Y)) == "0.596667"
    assert study_tables.printed(study_tables.mean_target_error(Y)) == "0.058889"
    two = np.array([[1.0, 2.0], [3.0, 0.0]])  # sum over outputs, mean over samples
    assert study_tables.dead_output_error(two) == pytest.approx((5 + 9) / 2)
    assert study_tables.mean_target_error(two) == pytest.approx(1.0 + 1.0)


def test_paired_counts_and_split():
    before = [True, True, False, False, False]
    after = [True, False, True, True, False]
    assert study_tables.paired_counts(before, after) == (2, 1)
    split = study_tables.split_failures([1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0])
    assert list(split) == ["converged", "born_dead", "died", "alive"]


def test_loss_exponent_and_window():
    t = np.array([100.0, 200.0, 400.0, 1000.0])
    assert study_tables.loss_exponent(t, 3.0 / t) == pytest.approx(-1.0)
    assert study_tables.loss_exponent(t, 0.5 * t**-2.5) == pytest.approx(-2.5)
    assert study_tables.tail_window(20_000) == (2000, 20_000)
    assert study_tables.still_decreasing([1.0, 0.5, 0.2])
    assert not study_tables.still_decreasing([1.0, 0.5, 1.0])
    assert not study_tables.still_decreasing([1.0, 0.0, 0.0])  # exactly zero: no log
    assert not study_tables.still_decreasing([1.0, np.nan, 0.1])


def test_revived_seeds():
    epochs = np.array([0, 10, 100])
    gmax = np.array([[0.0, 0.0, 0.3, 0.0],
                     [0.0, 0.2, 0.1, np.nan],  # nan: the seed had diverged
                     [0.0, 0.0, 0.0, 0.0]])
    zero, revived = study_tables.revived_seeds(epochs, gmax)
    assert list(zero) == [True, True, False, True]
    assert list(revived) == [False, True, False, False]


def test_corrected_rows_are_consistent(run):
    d, _ = run
    t = read_table(d, "corrected")
    assert set(t.program) == {"as_written", "corrected", "single_neuron"}
    assert (t.reached_fine_count <= t.reached_count).all()  # 1e-6 is below the threshold
    assert (t.reads_zero_count <= t.reached_fine_count).all()  # %f reads 0 only below 5e-7
    for prefix in ("reached", "reached_fine", "reads_zero"):
        _rates_ok(t, prefix, t.n)


# ---- the corrected program's alternatives ------------------------------------------------------

CHANGES = {  # variant -> the one field it changes on the corrected preset, and to what
    "width_4": ("layers", (2, 4, 4, 1)),
    "width_16": ("layers", (2, 16, 16, 1)),
    "updated_weights": ("backprop_weights", "updated"),
    "he_normal": ("init", "he_normal"),
    "xavier_normal": ("init", "xavier_normal"),
    "hidden_output": ("output_activation", None),
}


def test_alternative_cells_change_one_thing_on_the_corrected_seeds():
    by = {}
    for c in study_grid.cells(StudyOptions()):
        by[(c.label_dict["part"], c.label_dict["variant"], c.label_dict["activation"])] = c
    corrected = PRESETS["corrected"]
    for act in ("relu", "tanh", "sigmoid"):
        ref = by[("corrected", "corrected", act)]
        assert ref.seeds == (0, 1000)
        for variant, (name, value) in CHANGES.items():
            cell = by[("alternative", variant, act)]
            assert cell.seeds == (0, 200)  # the corrected cells' first 200 seeds: paired
            want = corrected.replace(activation=act, epochs=HEADLINE_EPOCHS, **{name: value})
            if variant in ("he_normal", "xavier_normal"):
                want = want.replace(bias_init="zero")
            assert cell.config == want, variant
            assert cell.label_dict["lr"] == corrected.lr
    assert {v for v in CHANGES if study_grid.is_users(v)} == {"width_4", "updated_weights",
                                                              "hidden_output"}
    quick = [c for c in study_grid.cells(StudyOptions(quick=True))
             if c.label_dict["part"] == "alternative"]
    assert len(quick) == 3 * len(CHANGES) and {c.seeds for c in quick} == {(0, 8)}
    # a network already 4 wide has no width-4 alternative; the options reach every cell
    custom = [c for c in study_grid.cells(StudyOptions(activations=("tanh",), layers=(2, 4, 1),
                                                       seeds=6, epochs=9, data="add:10"))
              if c.label_dict["part"] == "alternative"]
    assert {c.label_dict["variant"] for c in custom} == set(CHANGES) - {"width_4"}
    assert all(c.seeds == (0, 6) and c.config.epochs == 9 and c.data == "add:10"
               and c.label_dict["activation"] == "tanh" for c in custom)
    assert {c.config.layers for c in custom} == {(2, 4, 1), (2, 16, 1)}


def _sign_test(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n at 1/2, summed by hand: the
    probabilities of every outcome no more likely than k."""
    if n == 0:
        return 1.0
    probs = [math.comb(n, i) / 2**n for i in range(n + 1)]
    return min(1.0, sum(q for q in probs if q <= probs[k] * (1 + 1e-7)))


def test_alternatives_table_against_the_per_seed_rows(run):
    """Every row of alternatives.csv recomputed seed by seed from per_seed.csv."""
    d, _ = run
    t = read_table(d, "alternatives")
    ps = read_table(d, "per_seed")
    assert (t.n == SEEDS).all() and (t.budget == EPOCHS).all()
    assert set(t.variant) == {"corrected", *CHANGES}
    for p in ("reached", "diverged"):
        _rates_ok(t, p, t.n)
    for r in t.itertuples():
        part = "corrected" if r.variant == "corrected" else "alternative"
        mine = ps[(ps.part == part) & (ps.variant == r.variant) & (ps.activation == r.activation)]
        mine = mine[mine.seed < SEEDS]
        ref = ps[(ps.part == "corrected") & (ps.activation == r.activation)]
        ref = {int(s): (bool(g), int(e)) for s, g, e in zip(ref.seed, ref.reached,
                                                             ref.epochs_to_threshold, strict=True)}
        rescued = killed = faster = slower = 0
        ratios = []
        for s, good, e in zip(mine.seed, mine.reached, mine.epochs_to_threshold, strict=True):
            good_ref, e_ref = ref[int(s)]
            rescued += int(good and not good_ref)
            killed += int(good_ref and not good)
            if good and good_ref:
                ratios.append(e / e_ref)
            later = math.inf if e < 0 else e  # never reached: later than any epoch
            later_ref = math.inf if e_ref < 0 else e_ref
            faster += int(later < later_ref)
            slower += int(later > later_ref)
        assert r.reached_count == int(mine.reached.sum())
        assert r.diverged_count == int((mine.outcome == "diverged").sum())
        e = np.sort(np.where(mine.epochs_to_threshold >= 0, mine.epochs_to_threshold, np.inf))
        assert r.median == np.median(e) or (math.isinf(r.median) and np.median(e) == math.inf)
        assert (r.rescued, r.killed, r.faster, r.slower) == (rescued, killed, faster, slower)
        assert r.yours == study_grid.is_users(r.variant) if r.variant != "corrected" else (
            not r.yours)
        # the median of the same quotients (nan when no seed reached it both times)
        assert r.epochs_ratio == pytest.approx(np.median(ratios) if ratios else math.nan,
                                               nan_ok=True)
        if r.variant == "corrected":
            assert math.isnan(r.mcnemar_p) and math.isnan(r.speed_p)
            continue
        base = t[(t.activation == r.activation) & (t.variant == "corrected")].iloc[0]
        assert r.reached_count - base.reached_count == rescued - killed
        # exact binomial tails summed here; scipy's binomtest agrees to its relative rounding
        assert r.mcnemar_p == pytest.approx(_sign_test(rescued, rescued + killed), rel=1e-9)
        assert r.speed_p == pytest.approx(_sign_test(faster, faster + slower), rel=1e-9)
    f = study_findings.findings(d)
    assert f.alternative_seeds == SEEDS and len(f.alternatives) == len(t)
    for (act, lr, variant), a in f.alternatives.items():
        row = t[(t.activation == act) & (t.lr == lr) & (t.variant == variant)].iloc[0]
        assert a.change == study_grid.VARIANT_LABELS[variant]
        assert (a.reached.count, a.rescued, a.killed, a.faster, a.slower) == (
            row.reached_count, row.rescued, row.killed, row.faster, row.slower)
        assert a.epochs.reached == row.reached_count and a.diverged.count == row.diverged_count


def test_alternatives_paired_counts_by_hand():
    """Five corrected seeds, three of them also trained with one change; worked by hand."""
    def rows(part, variant, seeds, epochs, outcome=None):
        return pd.DataFrame({"part": part, "variant": variant, "activation": "relu", "lr": 0.01,
                             "seed": seeds, "threshold": 1e-3, "epochs_to_threshold": epochs,
                             "reached": [e >= 0 for e in epochs],
                             "outcome": outcome or ["converged" if e >= 0 else "not_converged"
                                                    for e in epochs]})
    frame = pd.concat([
        # seeds 0..4; the alternative ran on 0..2 only: seeds 3 and 4 must not count
        rows("corrected", "corrected", [0, 1, 2, 3, 4], [100, -1, 50, -1, 10]),
        rows("alternative", "width_4", [2, 0, 1], [-1, 80, 300],  # unsorted on purpose
             ["diverged", "converged", "converged"]),
    ], ignore_index=True)
    t = study_tables._alternatives(frame, budget=1000)
    ref, alt = t.iloc[0], t.iloc[1]
    assert ref.variant == "corrected" and (ref.n, ref.reached_count) == (3, 2)
    assert ref["median"] == 100  # 50, 100, never: the middle one
    # seed 0: both reach (80 < 100: faster); seed 1: rescued (300 < never: faster);
    # seed 2: killed (never > 50: slower, and it diverged)
    assert (alt.n, alt.reached_count, alt.diverged_count) == (3, 2, 1)
    assert (alt.rescued, alt.killed, alt.faster, alt.slower) == (1, 1, 2, 1)
    assert alt.mcnemar_p == 1.0 and alt.speed_p == pytest.approx(1.0)  # 2 of 3 at 1/2: p = 1
    assert alt["median"] == 300 and bool(alt.yours)
    assert alt.epochs_ratio == pytest.approx(0.8)  # seed 0 only reached it both times: 80 / 100
    assert study_tables.paired_speed([100, -1, 50, -1], [80, 300, -1, -1]) == (2, 1)
    assert study_tables.epochs_ratio([100, -1, 50, -1, 10], [80, 300, -1, -1, 30]) == (
        pytest.approx((0.8 + 3.0) / 2))  # seeds 0 and 4
    assert math.isnan(study_tables.epochs_ratio([-1, 5], [7, -1]))


def test_plateau_span_by_hand():
    epochs = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    level = 0.06
    # at the level (within 10%) from epoch 10 to epoch 1000: two decades, then it drops
    loss = np.array([0.2, 0.061, 0.058, 0.0595, 0.001])
    assert study_tables.plateau_span(epochs, loss, level) == pytest.approx(2.0)
    assert study_tables.plateau_span(epochs, np.full(5, 0.2), level) == 0.0  # never there
    assert study_tables.plateau_span(epochs, np.full(5, level), level) == pytest.approx(4.0)


def test_plateau_table_is_consistent(run):
    d, _ = run
    t = read_table(d, "plateau")
    assert (t.left_count <= t.sat_count).all() and (t.sat_count <= t.n).all()
    assert (t.level > 0).all()


# ---- the output unit's slope and the bias decay (the observed second pass) --------------------


def test_output_slope_table_at_initialisation_against_a_slow_pass(run):
    """Epoch 0 of the table against act'(z_out) of the question's draws, one network and one
    sample at a time (tests.test_probes.slow_pass), within its round-off bound."""
    d, _ = run
    t = read_table(d, "output_slope")
    data = question_data()
    Y = data.Y[:, 0]
    draws = draw_ensemble((2, 4, 4, 1), np.arange(SEEDS), "standard_normal", "normal", 1.0,
                          "legacy")
    for (act, _), part in t.groupby(ARM):
        acts = [act] * 3  # the program: the same activation on every layer
        slopes, bounds = np.empty((len(Y), SEEDS)), np.empty((len(Y), SEEDS))  # (N, S)
        for s, params in enumerate(draws):
            zs, outs, *_ = slow_pass(params, acts, data.X, data.Y)
            ez = slow_error_bounds(params, acts, data.X, data.Y)[0]
            slopes[:, s] = SLOW_ACTS[act][1](zs[-1])[0]
            bounds[:, s] = act_errors(act, zs[-1], outs[-1], ez[-1])[1][0]
        at0 = part[part.epoch == 0].set_index("target")
        for target in np.unique(Y):
            x = slopes[Y == target].ravel()
            # a median moves by at most the largest error of the values it is taken over
            assert abs(at0.loc[target, "median"] - np.median(x)) <= two_sided(
                bounds[Y == target].max()), (act, target)
            assert at0.loc[target, "pairs"] == x.size
        assert (part.max_slope == {"relu": 1.0, "tanh": 1.0, "sigmoid": 0.25}[act]).all()
        assert (part["median"] <= part.max_slope).all() and (part.q25 <= part.q75).all()
    relu = t[t.activation == "relu"]
    assert relu["median"].isin([0.0, 1.0]).all()  # relu' is 0 or 1


def test_layer_ratios_at_initialisation_equal_the_vanishing_study(run, quick_run):
    """Two studies, the same seeds and draws: the ratios before the first update agree."""
    d, _ = run
    r = read_table(d, "layer_ratios")
    q = read_table(quick_run / "vanishing", "question_network")
    q = q[q.preset == "question"]
    for (act, quantity), part in r[r.epoch == 0].groupby(["activation", "quantity"]):
        other = q[(q.activation == act) & (q.quantity == quantity)].iloc[0]
        assert part.n.iloc[0] == other.n  # the same seeds (the quick run's seed count)
        assert part["median"].iloc[0] == pytest.approx(other["median"], rel=1e-12)
    assert (r.n_defined <= r.n).all()


def test_bias_decay_table_and_findings(run):
    d, _ = run
    t = read_table(d, "bias_decay")
    assert set(t.layer) == {1, 2, 3}
    assert (t[t.epoch == 0].ratio_max_dev == 0).all() and (t[t.epoch == 0].factor == 1).all()
    normal = t[t.n_compared == t.n]
    # relative round-off of steps updates b - lr b (see test_bias_decay_closed_form_...)
    bound = [bias_rtol(s, lr) for s, lr in zip(normal.steps, normal.lr, strict=True)]
    assert (normal.ratio_max_dev <= bound).all()
    np.testing.assert_allclose(t.closed_form, t.initial_median * t.factor)
    f = study_findings.findings(d)
    for (_, lr), b in f.bias_decay.items():
        assert b.factor == pytest.approx((1 - lr) ** (6 * b.epoch))
        assert b.ratio_max_dev <= bias_rtol(6 * b.epoch, lr)
    for s in f.output_slope.values():
        assert s.ratio_z_min <= s.ratio_z_end <= s.ratio_z_max
        assert s.end_epoch == EPOCHS and 0 <= s.top_end <= s.max_slope


def bias_rtol(steps: int, lr: float) -> float:
    """Relative error bound of b0 (1 - lr)^steps computed two ways: by the engine's steps
    fl(b - fl(lr b)) = b (1 - lr)(1 + d), |d| <= u (1 + lr / (1 - lr)) = u / (1 - lr) per step,
    and here as fl(fl(1 - lr) ** steps) * b0: (1 + u)^steps from rounding 1 - lr, one libm pow
    and one product. Errors compound (Higham's gamma) and the two sides add (two-sided)."""
    engine = gamma(math.ceil(steps / (1 - lr)))
    closed = gamma(steps) + libm_rel() + U64
    return engine + closed


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_bias_decay_closed_form_against_the_engine(engine):
    """The program's b -= lr * b: after E epochs of 6 updates, b = b0 (1 - lr)^(6 E), to the
    round-off of 6 E multiplications, whatever the activation (the decay ignores the data)."""
    seeds, epochs, lr = [0, 7, 42], 400, 0.01
    ends = {}
    for act in ("relu", "tanh"):
        cfg = PRESETS["question"].replace(activation=act, lr=lr, epochs=epochs)
        r = train(cfg, question_data(), seeds, loss_epochs=[epochs], engine=engine)
        b0 = np.concatenate([b for _, b in r.initial_params], axis=1)  # (S, biases)
        b = np.concatenate([b for _, b in r.final_params], axis=1)
        closed = b0 * samples.closed_form_factor(lr, 6 * epochs)
        rtol = bias_rtol(6 * epochs, lr)
        np.testing.assert_allclose(b, closed, rtol=rtol, atol=0)
        ends[act] = b
    np.testing.assert_array_equal(ends["relu"], ends["tanh"])  # bit for bit


def test_decay_steps_and_factor():
    q = PRESETS["question"]
    assert samples.decay_steps(q, 6) == 6
    assert samples.decay_steps(q.replace(batch="full"), 6) == 1
    assert samples.decay_steps(q.replace(batch=4), 6) == 2
    assert samples.closed_form_factor(0.5, 3) == 0.125
    assert samples.closed_form_factor(0.1, 10_000) == 0.0  # below float64: underflow
