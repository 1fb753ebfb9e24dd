"""Study ``vanishing`` in quick mode into a temp dir, and its helpers against hand-worked values."""

import math

import numpy as np
import pandas as pd
import pytest

from studies.run.study import StudyOptions, read_meta, read_table
from studies.vanishing import figures as study_figures
from studies.vanishing import findings as study_findings
from studies.vanishing import grid as study_grid
from studies.vanishing import tables as study_tables
from tests.quick import EPOCHS, SEEDS

TABLES = {
    "at_init": ["activation", "init", "depth", "layer", "metric", "q25", "median", "q75", "n",
                "n_defined", "width"],
    "ratio_vs_depth": ["activation", "init", "depth", "quantity", "median", "q25", "q75", "n",
                       "n_defined", "theory_factor", "theory", "sigmoid_bound",
                       "chain_bound_median"],
    "per_layer_factor": ["activation", "init", "depth", "width", "measured", "q25", "q75", "mean",
                         "mean_ci_low", "mean_ci_high", "n", "n_defined", "theory",
                         "mean_field_bound", "he_formula"],
    "heatmap": ["activation", "init", "depth", "layer", "epoch", "grad_norm_W",
                "saturation_fraction", "n"],
    "saturation": ["run", "activation", "init", "depth", "epoch", "q25", "median", "q75", "n"],
    "chain_bound": ["run", "activation", "init", "depth", "checks", "holds", "bound_log10",
                    "median_log10_chain", "max_log10_chain_over_bound"],
    "question_network": ["preset", "activation", "depth", "quantity", "median", "q25", "q75",
                         "n", "n_defined", "share_below_1", "ci_low", "ci_high"],
    "train_outcomes": ["activation", "init", "depth", "outcome", "count", "n", "share", "ci_low",
                       "ci_high"],
    "train_loss": ["activation", "init", "depth", "epoch", "q25", "median", "q75", "n"],
}
FIGURES = ["ratio_vs_depth.png", "per_layer_profile.png", "per_layer_factor.png",
           "heatmap_grad.png", "heatmap_saturation.png"]


@pytest.fixture(scope="module")
def out(quick_run):
    """This study's folder of the shared quick run, and its meta."""
    return quick_run / "vanishing", read_meta(quick_run / "vanishing")


def test_every_promised_file_and_column_exists(out):
    d, meta = out
    for name, columns in TABLES.items():
        t = read_table(d, name)
        assert len(t), name
        assert set(columns) <= set(t.columns), (name, set(columns) - set(t.columns))
    for name in FIGURES:
        assert (d / name).stat().st_size > 10_000, name
    assert meta["figures"] == FIGURES


def test_at_init_quantiles_are_ordered_and_count_every_seed(out):
    t = read_table(out[0], "at_init")
    assert (t.q25 <= t["median"] + 1e-300).all() and (t["median"] <= t.q75 + 1e-300).all()
    assert (t.n == SEEDS).all() and (t.n_defined <= t.n).all()
    assert set(t.depth) == set(study_grid.QUICK_DEPTHS)
    assert (t.width == study_grid.WIDTH).all()
    for (depth, metric), part in t.groupby(["depth", "metric"]):
        layers = sorted(part.layer.unique())
        hidden_only = metric in ("saturation_fraction",)
        if not hidden_only:
            assert layers == list(range(1, depth + 2)), (depth, metric)
    sat = t[t.metric == "saturation_fraction"]
    assert set(sat.activation) <= {"tanh", "sigmoid"}
    assert ((sat["median"] >= 0) & (sat["median"] <= 1)).all()
    gain = t[(t.metric == "gain") & (t.activation == "sigmoid") & (t.layer <= t.depth)]
    assert len(gain) and (gain.q75 <= 0.25 + 1e-12).all()  # sigmoid' <= 1/4 (hidden layers)


def test_ratio_table_agrees_with_theory_and_itself(out):
    t = read_table(out[0], "ratio_vs_depth")
    assert set(t.quantity) == {"W", "z"}
    assert (t.n == SEEDS).all()
    ok = t.n_defined > 0
    assert (t.q25[ok] <= t["median"][ok]).all() and (t["median"][ok] <= t.q75[ok]).all()
    one = t[(t.quantity == "z") & (t.depth == 1)]
    assert np.allclose(one["median"], 1.0)  # first and last hidden layer are the same layer
    z = t[t.quantity == "z"]
    has = z.theory_factor.notna()
    assert np.allclose(z.theory[has], z.theory_factor[has] ** ((z.depth[has] - 1) / 2))
    assert z.theory[~has].isna().all() and t[t.quantity == "W"].theory.isna().all()
    pairs = {(a, i) for a, i in zip(z.activation[has], z.init[has], strict=True)}
    # He's n Var/2 for ReLU under every i.i.d. init; tanh only in its linear regime (n Var <= 1)
    assert pairs == {("tanh", "lecun_uniform"), ("tanh", "xavier_normal"),
                     *(("relu", i) for i in study_grid.INITS)}
    sig = z[z.activation == "sigmoid"]
    assert np.allclose(sig.sigmoid_bound, 0.25 ** (sig.depth - 1))
    assert z[z.activation != "sigmoid"].sigmoid_bound.isna().all()


def test_per_layer_factor_statistics_and_theory_values(out):
    t = read_table(out[0], "per_layer_factor")
    assert (t.depth >= 3).all() and (t.n == SEEDS).all()
    assert (t.q25 <= t.measured).all() and (t.measured <= t.q75).all()
    assert (t.mean_ci_low <= t["mean"] + 1e-12).all()
    assert (t["mean"] <= t.mean_ci_high + 1e-12).all()
    by = t.set_index(["activation", "init"]).groupby(level=[0, 1]).first()
    assert by.loc[("tanh", "lecun_uniform"), "theory"] == pytest.approx(1 / 3)
    assert by.loc[("relu", "xavier_normal"), "theory"] == pytest.approx(0.5)
    assert by.loc[("relu", "he_normal"), "theory"] == pytest.approx(1.0)
    assert math.isnan(by.loc[("sigmoid", "xavier_normal"), "theory"])
    assert by.loc[("sigmoid", "xavier_normal"), "mean_field_bound"] == pytest.approx(1 / 16)
    assert by.loc[("relu", "standard_normal"), "he_formula"] == pytest.approx(8.0)


def test_heatmap_saturation_and_outcomes_are_consistent(out):
    d = out[0]
    h = read_table(d, "heatmap")
    assert (h.n <= SEEDS).all() and (h.n >= 1).all()
    assert set(h.depth) == set(study_grid.QUICK_TRAIN_DEPTHS)
    assert h[h.activation == "relu"].saturation_fraction.isna().all()
    s = h.saturation_fraction.dropna()
    assert ((s >= 0) & (s <= 1)).all()
    assert h.epoch.max() == EPOCHS and h.epoch.min() == 0
    sat = read_table(d, "saturation")
    assert ((sat["median"] >= 0) & (sat["median"] <= 1)).all()
    assert set(sat.run) == {"init", "train"}
    o = read_table(d, "train_outcomes")
    for _, part in o.groupby(["activation", "init", "depth"]):
        assert part.share.sum() == pytest.approx(1.0)
        assert part["count"].sum() == SEEDS
        assert ((part.ci_low <= part.share) & (part.share <= part.ci_high)).all()
    loss = read_table(d, "train_loss")
    assert (loss.q25 <= loss["median"]).all() and (loss["median"] <= loss.q75).all()


def test_the_chain_bound_holds_everywhere(out):
    c = read_table(out[0], "chain_bound")
    assert (c.holds == c.checks).all()
    assert (c.max_log10_chain_over_bound <= 1e-9).all()
    sig = c[c.activation == "sigmoid"]
    assert sig.checks.sum() > 0
    assert np.allclose(sig.bound_log10, sig.depth * math.log10(0.25))


def test_question_network_table(out):
    q = read_table(out[0], "question_network")
    assert len(q) == 12 and set(q.preset) == {"question", "fixed"} and set(q.quantity) == {"W", "z"}
    assert (q.depth == 2).all() and (q.n == SEEDS).all() and (q.n_defined <= q.n).all()
    ok = q.n_defined > 0
    assert ((q.ci_low <= q.share_below_1) & (q.share_below_1 <= q.ci_high))[ok].all()


def test_findings_read_back_the_tables(out):
    d = out[0]
    f = study_findings.findings(d)
    assert f.width == study_grid.WIDTH and f.depths == tuple(study_grid.QUICK_DEPTHS)
    assert f.sigmoid_bound_holds is True
    assert set(f.question_z) == set(f.question_w) == {"relu", "tanh", "sigmoid"}
    q = read_table(d, "question_network").query("preset == 'question' and quantity == 'W'")
    assert {a: r.median for a, r in f.question_w.items()} == dict(
        zip(q.activation, q["median"], strict=True))
    assert f.question_layers == (2, 4, 4, 1)
    ratio = read_table(d, "ratio_vs_depth")
    r = ratio[(ratio.quantity == "W") & (ratio.activation == "tanh")
              & (ratio.init == "xavier_normal") & (ratio.depth == 20)].iloc[0]
    assert f.ratio_w[("tanh", "xavier_normal", 20)].median == pytest.approx(r["median"])
    assert {(a, i) for a, i, _ in f.ratio_w} == {
        (a, i) for a in study_grid.ACTIVATIONS for i in study_grid.INITS}


# ---- helpers -------------------------------------------------------------------------------


def test_safe_ratio():
    got = study_tables.safe_ratio([1.0, 0.0, 2.0, 0.0], [2.0, 0.0, 0.0, 4.0])
    assert got[0] == 0.5 and math.isnan(got[1]) and math.isnan(got[2]) and got[3] == 0.0


def test_theory_and_bounds_by_hand():
    assert study_tables.theory_factor("tanh", "lecun_uniform", 16) == pytest.approx(1 / 3)
    assert study_tables.theory_factor("relu", "xavier_normal", 16) == pytest.approx(0.5)
    assert study_tables.theory_factor("relu", "he_normal", 16) == pytest.approx(1.0)
    assert study_tables.theory_factor("relu", "standard_normal", 16) == 8.0  # He: n Var / 2
    assert math.isnan(study_tables.theory_factor("sigmoid", "he_normal", 16))
    # n·Var[w]·max act'^2 with n = 16
    assert study_tables.mean_field_bound("sigmoid", "xavier_normal", 16) == pytest.approx(1 / 16)
    assert study_tables.mean_field_bound("tanh", "lecun_uniform", 16) == pytest.approx(1 / 3)
    assert study_tables.mean_field_bound("relu", "standard_normal", 16) == 16.0
    assert study_tables.he_formula("relu", "lecun_uniform", 16) == pytest.approx(1 / 6)
    assert study_tables.he_formula("relu", "he_normal", 16) == pytest.approx(1.0)
    assert math.isnan(study_tables.he_formula("tanh", "he_normal", 16))


def test_per_seed_chains_by_hand():
    # one sigmoid network with H = 2 hidden layers (layers 1, 2) and the output layer 3
    wide = pd.DataFrame({
        "run": "init", "preset": "fixed", "activation": "sigmoid", "init": "xavier_normal",
        "depth": 2, "seed": 0, "epoch": 0, "layer": [1, 2, 3],
        "grad_norm_W": [2.0, 1.0, 4.0], "grad_norm_z": [0.01, 0.1, 1.0],
        "weight_norm": [5.0, 2.0, 3.0], "gain": [0.2, 0.25, 1.0],
    })
    row = study_tables.per_seed_chains(wide).iloc[0]
    assert row.ratio_W == pytest.approx(0.5)  # ‖dW_1‖ / ‖dW_out‖
    assert row.ratio_z == pytest.approx(0.1)  # ‖dz_1‖ / ‖dz_H‖
    assert row.bound_z == pytest.approx(0.25 * 2.0)  # (1/4)^(H-1) · ‖W_2‖
    # log10(‖dz_1‖ / (‖dz_out‖ · ‖W_2‖ · ‖W_3‖)) against H·log10(1/4)
    assert row.log10_chain == pytest.approx(math.log10(0.01 / (1.0 * 2.0 * 3.0)))
    assert row.log10_bound == pytest.approx(2 * math.log10(0.25))
    assert row.log10_gain == pytest.approx(math.log10(0.2 * 0.25))  # hidden layers only


def test_fraction_labels():
    assert study_figures._fraction(1 / 3) == "1/3"
    assert study_figures._fraction(0.5) == "1/2"
    assert study_figures._fraction(1.0) == "1"
    assert study_figures._fraction(1 / 16) == "1/16"
    assert study_figures._fraction(0.3) == "0.3"


def test_cells_honour_the_users_options():
    opts = StudyOptions(layers=(2, 8, 8, 8, 1), activations=("tanh",), seeds=5, epochs=3,
                        lrs=(0.05, 0.1))
    cells = study_grid.cells(opts)
    assert {c.label_dict["activation"] for c in cells} == {"tanh"}
    assert all(c.seeds == (0, 5) for c in cells)
    init = [c for c in cells if c.label_dict["run"] == "init"]
    assert {c.label_dict["depth"] for c in init} == set(study_grid.DEPTHS) | {3}
    for c in init:
        assert set(c.config.layers[1:-1]) == {8} and c.config.epochs == 1
        assert c.config.bias_init == ("normal" if c.config.init == "standard_normal" else "zero")
    train = [c for c in cells if c.label_dict["run"] == "train"]
    assert len(train) == len(study_grid.INITS)
    for c in train:
        cfg = c.config
        assert cfg.lr == 0.05 and cfg.epochs == 3 and cfg.batch == "online"
        # the fixed preset's rules: true gradients, identity output
        assert cfg.output_activation == "identity" and cfg.bias_update == "gradient"
        assert cfg.backprop_weights == "current"
    question = [c for c in cells if c.label_dict["run"] == "question"]
    assert {c.config.layers for c in question} == {(2, 8, 8, 8, 1)}
    assert {c.label_dict["preset"] for c in question} == {"question", "fixed"}
