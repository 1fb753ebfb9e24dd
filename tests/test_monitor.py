"""Tests of diagnostics.monitor: dead-unit events, no effect on training, ensemble independence of
the recorded values, memory fixed by the schedule, tidy() columns, and instrument selection.

Expected events come from trajectories built by hand (``Monitor.observe`` called with hand-made
parameter buffers) or from training runs whose course is worked out in the comments.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from diagnostics.config import Config
from diagnostics.data import question_data
from diagnostics.monitor import EVENTS, Monitor, select_probes
from diagnostics.network import Layout
from diagnostics.presets import PRESETS
from diagnostics.train import train
from tests.test_probes import ALIVE_1, DEAD_1, ONE_SAMPLE_1, build_dead
from tests.tolerances import assert_within, gamma

DATA = question_data()

# names from the probes / monitor docstrings, written out here
PROBE_NAMES = [
    "grad_norm_W", "grad_norm_b", "grad_norm_z", "dead_fraction", "saturation_fraction", "gain",
    "weight_norm", "update_ratio", "z_mean", "z_std", "loss", "grad_ratio", "network_dead",
]
GROUP_NAMES = ["grad_norm", "dead", "saturation", "weights", "preact", "loss"]
NETWORK_PROBES = {"loss", "grad_ratio", "network_dead"}


def event_rows(m: Monitor) -> list[tuple]:
    ev = m.events()
    assert set(ev) == {"seed", "epoch", "layer", "unit", "event"}
    n = len(ev["seed"])
    assert all(len(v) == n for v in ev.values())
    coded = m.events(codes=True)  # the same rows, the event as its index into EVENTS
    assert coded["event"].dtype == np.int8
    assert [EVENTS[k] for k in coded["event"]] == list(ev["event"])
    for key in ("seed", "epoch", "layer", "unit"):
        np.testing.assert_array_equal(coded[key], ev[key])
    return [
        (int(ev["seed"][i]), int(ev["epoch"][i]), int(ev["layer"][i]), int(ev["unit"][i]),
         str(ev["event"][i]))
        for i in range(n)
    ]


# ---- events on a hand-made trajectory -----------------------------------------------------------

OUT_ALIVE = (np.ones((1, 3)), np.array([0.1]))  # z >= 0.1 whatever the hidden layer does
OUT_DEAD = (-np.ones((1, 3)), np.array([-0.1]))  # z <= -0.1 whatever the hidden layer does
ROWS = {"D": DEAD_1, "A": ALIVE_1, "O": ONE_SAMPLE_1}  # O: alive on one sample only


def net(units: str, out_alive: bool):
    """Layers (2, 3, 1): hidden units given as letters of ROWS, the output alive or dead."""
    W = np.array([ROWS[c][0] for c in units])
    b = np.array([ROWS[c][1] for c in units])
    return [(W, b), OUT_ALIVE if out_alive else OUT_DEAD]


def test_events_on_a_hand_made_trajectory():
    cfg = Config(layers=(2, 3, 1), activation="relu", epochs=4)  # ReLU output: tracked too
    layout = Layout(cfg.layers)
    seeds = [10, 20]
    m = Monitor(cfg, DATA, seeds, record="all", every="all")
    # epoch -> per seed column (hidden units, output alive); seed 10 leaves after epoch 2
    traj = {
        0: [("DAO", True), ("ADD", False)],
        1: [("AAO", False), ("ADD", False)],
        2: [("ADD", True), ("DAD", False)],
        3: [None, ("DAA", True)],
        4: [None, ("AAA", True)],
    }
    for epoch, cols in traj.items():
        alive = np.array([j for j, c in enumerate(cols) if c is not None])
        theta = layout.pack([net(*cols[j]) for j in alive], np.float64)
        m.observe(epoch, theta, alive, None)
    expected = [
        (10, 0, 1, 0, "born_dead"),
        (10, 1, 1, 0, "revived"),
        (10, 1, 2, 0, "died"),
        (10, 2, 1, 1, "died"),
        (10, 2, 1, 2, "died"),
        (10, 2, 2, 0, "revived"),
        (20, 0, 1, 1, "born_dead"),
        (20, 0, 1, 2, "born_dead"),
        (20, 0, 2, 0, "born_dead"),
        (20, 2, 1, 0, "died"),
        (20, 2, 1, 1, "revived"),
        (20, 3, 1, 2, "revived"),
        (20, 3, 2, 0, "revived"),
        (20, 4, 1, 0, "revived"),
    ]
    assert event_rows(m) == expected  # sorted by seed, epoch, layer, unit
    # the dead fractions of the same trajectory, and nothing recorded for seed 10 once it left
    _, dead1 = m.metric("dead_fraction", 1)
    np.testing.assert_array_equal(dead1[:, 0], [1 / 3, 0, 2 / 3, np.nan, np.nan])
    np.testing.assert_array_equal(dead1[:, 1], [2 / 3, 2 / 3, 2 / 3, 1 / 3, 0])
    _, net_dead = m.metric("network_dead", 0)
    np.testing.assert_array_equal(net_dead[:, 1], [1, 1, 1, 0, 0])


def test_born_dead_count_equals_the_constructed_dead_units():
    layers = (2, 4, 4, 1)
    cases = [((k1, k2), out) for k1 in range(5) for k2 in range(5) for out in (False, True)]
    per_seed = [build_dead(layers, ks, out, shift=s) for s, (ks, out) in enumerate(cases)]
    cfg = Config(layers=layers, activation="relu")
    m = Monitor(cfg, DATA, range(len(cases)), record="dead", every="none")
    m.observe(0, Layout(layers).pack(per_seed, np.float64), np.arange(len(cases)))
    rows = event_rows(m)
    assert {r[4] for r in rows} <= {"born_dead"}
    for s, ((k1, k2), out) in enumerate(cases):
        per_layer = [sum(1 for r in rows if r[0] == s and r[2] == lay) for lay in (1, 2, 3)]
        assert per_layer == [k1, k2, int(out)], (s, k1, k2, out)


def test_bias_decay_revives_a_dead_unit():
    # The question's quirk b -= lr * b shrinks a dead unit's bias while its weights get no
    # gradient. Hidden unit 1 has W = [0.1, 0.1], b = -0.5: its largest pre-activation is on the
    # samples with x1 + x2 = 1.0, z = 0.1 - 0.5 * 0.99^k after k updates, positive once
    # 0.99^k < 0.2, i.e. k >= 161 (ln 0.2 / ln 0.99 = 160.1). Six updates per epoch: the full
    # pass after epoch 26 (156 updates) still sees it dead, the one after epoch 27 (162) alive.
    # Unit 0 (W = [1, 1], b = 0) and the output (W = [1, 0], b = 0) make y_hat = x1 + x2 = y,
    # so nothing else moves.
    k = math.ceil(math.log(0.2) / math.log(0.99))
    assert k == 161
    revive_epoch = math.ceil(k / 6)
    assert revive_epoch == 27
    cfg = PRESETS["question"].replace(layers=(2, 2, 1), lr=0.01, epochs=30)
    params = [
        (np.array([[1.0, 1.0], [0.1, 0.1]]), np.array([0.0, -0.5])),
        (np.array([[1.0, 0.0]]), np.array([0.0])),
    ]
    theta = Layout(cfg.layers).pack([params], np.float64)
    m = Monitor(cfg, DATA, [42], record="all", every="all")
    res = train(cfg, DATA, [42], monitor=m, initial=theta)
    assert res.diverged_epoch[0] == -1
    assert event_rows(m) == [(42, 0, 1, 1, "born_dead"), (42, revive_epoch, 1, 1, "revived")]
    _, dead = m.metric("dead_fraction", 1)
    expected = np.where(np.arange(31) < revive_epoch, 0.5, 0.0)
    np.testing.assert_array_equal(dead[:, 0], expected)


def test_large_learning_rate_kills_a_unit():
    # Fixed preset (true bias gradient, identity output), layers (2, 1, 1), lr = 1. The first
    # sample (0.1, 0.2), y = 0.3: h = 0.3, y_hat = 5 * 0.3 + 5 = 6.5, dL/dy_hat = 12.4,
    # dL/dz_h = 5 * 12.4 = 62, so W1 = [1, 1] - 62 * [0.1, 0.2] = [-5.2, -11.4], b1 = -62: dead on
    # every (positive) input from then on, so it never gets a gradient again. The output becomes
    # its bias, b3 <- 2 y - b3 on each sample: bounded, no divergence.
    cfg = PRESETS["fixed"].replace(layers=(2, 1, 1), lr=1.0, epochs=5)
    params = [(np.array([[1.0, 1.0]]), np.array([0.0])), (np.array([[5.0]]), np.array([5.0]))]
    theta = Layout(cfg.layers).pack([params], np.float64)
    m = Monitor(cfg, DATA, [3], record="all", every="all")
    res = train(cfg, DATA, [3], monitor=m, initial=theta)
    assert res.diverged_epoch[0] == -1
    # one step of about 12 roundings (forward, dL/dy_hat, dL/dz_h, 1 - 62 x): each result within
    # gamma_12 of the terms it is made of (1 and 62 x); the decimal literals one rounding more.
    # Later steps change nothing: z_h <= -62 on every input, so the gradient is exactly 0.
    x = np.array([0.1, 0.2])
    assert_within(res.final_params[0][0][0], [[-5.2, -11.4]], gamma(12) * (1.0 + 62.0 * x), "W1")
    assert_within(res.final_params[0][1][0], [-62.0], gamma(12) * 62.0, "b1")
    assert event_rows(m) == [(3, 1, 1, 0, "died")]
    np.testing.assert_array_equal(m.metric("dead_fraction", 1)[1][:, 0], [0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(m.metric("network_dead", 0)[1][:, 0], [0, 1, 1, 1, 1, 1])
    assert "dead_fraction" not in {n for lay, n in m.rows if lay == 2}  # identity output


def test_no_events_without_the_dead_group():
    cfg = PRESETS["question"].replace(epochs=3)
    m = Monitor(cfg, DATA, range(20), record="grad_norm,loss", every="all")
    train(cfg, DATA, range(20), monitor=m)
    ev = m.events()
    assert set(ev) == {"seed", "epoch", "layer", "unit", "event"}
    assert all(len(v) == 0 for v in ev.values())
    # with it, the question's N(0, 1) draws give some born-dead units among 20 seeds
    m2 = Monitor(cfg, DATA, range(20), record="dead", every="all")
    train(cfg, DATA, range(20), monitor=m2)
    assert any(r[4] == "born_dead" for r in event_rows(m2))


# ---- the monitor does not change training -------------------------------------------------------

CONFIGS = {
    "question-relu": (PRESETS["question"].replace(activation="relu", lr=0.1, epochs=300), "all"),
    "question-tanh": (PRESETS["question"].replace(activation="tanh", epochs=300), "log:50"),
    "fixed-tanh-diverging": (PRESETS["fixed"].replace(activation="tanh", lr=0.3, epochs=100),
                             "all"),
}


def assert_results_identical(a, b):
    for name in ("loss", "final_loss", "max_abs_grad"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    for name in ("outcome", "epochs_to_threshold", "diverged_epoch", "loss_epochs"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for which in ("initial_params", "final_params"):
        for (Wa, ba), (Wb, bb) in zip(getattr(a, which), getattr(b, which), strict=True):
            assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb), which


@pytest.mark.parametrize("case", list(CONFIGS))
def test_training_is_bit_identical_with_and_without_a_monitor(case):
    cfg, every = CONFIGS[case]
    seeds = range(30)
    plain = train(cfg, DATA, seeds)
    m = Monitor(cfg, DATA, seeds, record="all", every=every)
    watched = train(cfg, DATA, seeds, monitor=m)
    assert_results_identical(plain, watched)
    assert np.isfinite(m.values).any()
    if case == "fixed-tanh-diverging":
        assert (plain.diverged_epoch > 0).any() and (plain.diverged_epoch < 0).any()


def test_observe_does_not_modify_its_arguments():
    cfg = PRESETS["question"].replace(activation="tanh", epochs=2)
    rng = np.random.default_rng(5)
    layout = Layout(cfg.layers)
    theta = rng.standard_normal((layout.n_params, 4))
    prev = rng.standard_normal((layout.n_params, 4))
    alive = np.arange(4)
    copies = theta.copy(), prev.copy(), alive.copy()
    m = Monitor(cfg, DATA, range(4), record="all", every="all")
    m.observe(1, theta, alive, prev)
    for before, after in zip(copies, (theta, prev, alive), strict=True):
        assert np.array_equal(before, after)


ENSEMBLE = {
    "question-relu": (PRESETS["question"].replace(activation="relu", lr=0.1, epochs=60), "all"),
    "full-tanh": (PRESETS["question"].replace(activation="tanh", batch="full", epochs=60), "all"),
    "fixed-tanh-diverging": (PRESETS["fixed"].replace(activation="tanh", lr=0.3, epochs=100),
                             "every:3"),
}


@pytest.mark.parametrize("case", list(ENSEMBLE))
def test_values_of_a_seed_alone_equal_those_inside_an_ensemble_of_200(case):
    cfg, every = ENSEMBLE[case]
    big_m = Monitor(cfg, DATA, range(200), record="all", every=every)
    big = train(cfg, DATA, range(200), monitor=big_m)
    big_events = event_rows(big_m)
    picks = [0, 1, 117, 199]
    if case == "fixed-tanh-diverging":
        gone = np.flatnonzero(big.diverged_epoch > 0)
        kept = np.flatnonzero(big.diverged_epoch < 0)
        assert gone.size and kept.size
        picks = [int(gone[0]), int(gone[-1]), int(kept[0]), int(kept[-1])]
    for k in picks:
        m = Monitor(cfg, DATA, [k], record="all", every=every)
        alone = train(cfg, DATA, [k], monitor=m)
        assert alone.diverged_epoch[0] == big.diverged_epoch[k]
        assert np.array_equal(m.values[:, :, 0], big_m.values[:, :, k], equal_nan=True), k
        assert event_rows(m) == [r for r in big_events if r[0] == k]


@pytest.mark.parametrize("case", list(ENSEMBLE))
def test_observing_in_chunks_of_seeds_records_the_same(case, monkeypatch):
    """The numpy pass: OBSERVE_SEEDS = 7 cuts 60 seeds into 9 passes (the last of 4, and after
    divergences chunks of scattered survivors): every value and event as in one pass over all
    of them."""
    cfg, every = ENSEMBLE[case]
    whole = Monitor(cfg, DATA, range(60), record="all", every=every, compiled=False)
    result = train(cfg, DATA, range(60), monitor=whole)
    monkeypatch.setattr(sys.modules["diagnostics.monitor"], "OBSERVE_SEEDS", 7)
    parts = Monitor(cfg, DATA, range(60), record="all", every=every, compiled=False)
    train(cfg, DATA, range(60), monitor=parts)
    if case == "fixed-tanh-diverging":
        assert (result.diverged_epoch > 0).sum() > 7  # chunks of survivors with gaps
    assert np.array_equal(parts.values, whole.values, equal_nan=True)
    assert event_rows(parts) == event_rows(whole)
    assert set(parts._ws) <= {7, *range(1, 7)}  # workspaces only for the chunk sizes in use


# ---- memory -------------------------------------------------------------------------------------


def test_memory_is_fixed_by_the_schedule_not_the_epoch_budget():
    # ReLU everywhere (the question): 9 layer probes apply to each of 3 layers (all but
    # saturation_fraction), plus 3 network probes
    n_rows = 9 * 3 + 3
    S = 10_000
    cfg = PRESETS["question"].replace(epochs=100_000)
    m = Monitor(cfg, DATA, range(S), record="all")  # default schedule, log:100
    try:
        assert len(m.rows) == n_rows
        R = m.epochs.size
        assert R <= 100
        assert m.epochs[0] == 0 and m.epochs[-1] == 100_000
        assert (np.diff(m.epochs) > 0).all()
        assert m.values.nbytes <= R * n_rows * S * 8
        assert m.values.nbytes <= 100 * n_rows * S * 8  # 240 MB, not 100_001 * ... (240 GB)
    finally:
        del m
    # the number of recorded epochs does not grow with the budget
    for epochs in (1_000, 100_000, 10_000_000):
        small = Monitor(PRESETS["question"].replace(epochs=epochs), DATA, range(3), record="all")
        assert small.epochs.size <= 100
        assert small.values.shape == (small.epochs.size, n_rows, 3)


def test_monitor_schedule_starts_at_0_and_ends_at_the_budget():
    cfg = PRESETS["question"].replace(epochs=35)
    assert list(Monitor(cfg, DATA, [0], every="every:10").epochs) == [0, 10, 20, 30, 35]
    assert list(Monitor(cfg, DATA, [0], every=10).epochs) == [0, 10, 20, 30, 35]
    assert list(Monitor(cfg, DATA, [0], every="list:5,7").epochs) == [0, 5, 7]
    assert list(Monitor(cfg, DATA, [0], every="none").epochs) == [0]
    with pytest.raises(ValueError, match="'sometimes'"):
        Monitor(cfg, DATA, [0], every="sometimes")


# ---- tidy ---------------------------------------------------------------------------------------

TIDY = {
    # (hidden, output): (layers with dead_fraction, layers with saturation_fraction)
    ("relu", "identity"): ({1, 2}, set()),
    ("relu", None): ({1, 2, 3}, set()),
    ("tanh", "relu"): ({3}, {1, 2}),
    ("sigmoid", None): (set(), {1, 2, 3}),
    ("leaky_relu", "identity"): ({1, 2}, set()),
    ("softsign", "identity"): (set(), {1, 2}),
    ("elu", "tanh"): (set(), {3}),
}


@pytest.mark.parametrize("acts", list(TIDY), ids=lambda a: f"{a[0]}-{a[1]}")
def test_tidy_columns_layers_and_values(acts):
    hidden, output = acts
    cfg = PRESETS["fixed"].replace(activation=hidden, output_activation=output, lr=0.05, epochs=12)
    seeds = [5, 9, 13, 40]
    m = Monitor(cfg, DATA, seeds, record="all", every="every:4")
    train(cfg, DATA, seeds, monitor=m)
    t = m.tidy()
    assert list(t) == ["seed", "epoch", "layer", "metric", "value"]
    n = len(t["value"])
    assert n > 0 and all(len(v) == n for v in t.values())
    assert not np.isnan(t["value"]).any()
    assert set(t["seed"].tolist()) == set(seeds)  # seed numbers, not column indices
    assert set(t["epoch"].tolist()) == {0, 4, 8, 12}
    metric, layer = t["metric"].astype(str), t["layer"]
    net_rows = np.isin(metric, list(NETWORK_PROBES))
    assert (layer[net_rows] == 0).all() and (layer[~net_rows] >= 1).all()
    assert set(metric[net_rows].tolist()) <= NETWORK_PROBES
    dead_layers, sat_layers = TIDY[acts]
    assert set(layer[metric == "dead_fraction"].tolist()) == dead_layers
    assert set(layer[metric == "saturation_fraction"].tolist()) == sat_layers
    assert set(t["epoch"][metric == "update_ratio"].tolist()) == {4, 8, 12}  # none at epoch 0
    # one row per finite recorded value, and each equals what metric() returns
    assert n == int((~np.isnan(m.values)).sum())
    epoch_pos = {int(e): i for i, e in enumerate(m.epochs)}
    seed_pos = {s: j for j, s in enumerate(seeds)}
    for i in range(0, n, 7):
        _, vals = m.metric(str(metric[i]), int(layer[i]))
        assert vals[epoch_pos[int(t["epoch"][i])], seed_pos[int(t["seed"][i])]] == t["value"][i]


def test_tidy_leaves_out_diverged_seeds_after_divergence():
    cfg = PRESETS["fixed"].replace(activation="tanh", lr=0.3, epochs=100)
    seeds = range(12)
    m = Monitor(cfg, DATA, seeds, record="all", every="every:5")
    res = train(cfg, DATA, seeds, monitor=m)
    t = m.tidy()
    assert not np.isnan(t["value"]).any()
    gone = np.flatnonzero(res.diverged_epoch > 0)
    assert gone.size
    for s in gone:
        d = res.diverged_epoch[s]
        epochs = t["epoch"][t["seed"] == s]
        assert epochs.size and epochs.max() < d


# ---- choosing instruments -----------------------------------------------------------------------


def test_unknown_instrument_error_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        select_probes("grad_norm,bogus_probe")
    msg = str(err.value)
    assert "bogus_probe" in msg
    for name in ["all", *GROUP_NAMES, *PROBE_NAMES]:
        assert name in msg, (name, msg)
    with pytest.raises(ValueError, match="bogus_probe"):
        Monitor(PRESETS["question"], DATA, [0], record="dead,bogus_probe")


@pytest.mark.parametrize("record", ["", " , ", []], ids=repr)
def test_empty_selection_is_an_error(record):
    with pytest.raises(ValueError):
        select_probes(record)


def test_groups_and_names_select_probes():
    assert sorted(select_probes("all")) == sorted(PROBE_NAMES)
    assert set(select_probes("dead")) == {"dead_fraction", "network_dead"}
    assert {"grad_norm_W", "grad_norm_b", "grad_norm_z"} <= set(select_probes("grad_norm"))
    assert set(select_probes("preact")) == {"z_mean", "z_std"}
    assert set(select_probes("weights")) == {"weight_norm", "update_ratio"}
    assert select_probes("loss") == ["loss"]
    assert select_probes(" z_mean , loss ,z_mean") == ["z_mean", "loss"]  # no repeats
    assert select_probes(["gain", "loss"]) == ["gain", "loss"]
    assert sorted(select_probes("loss,all")) == sorted(PROBE_NAMES)


def test_metric_not_recorded_raises():
    m = Monitor(PRESETS["question"], DATA, [0], record="loss", every="none")
    with pytest.raises(ValueError, match="gain"):
        m.metric("gain", 1)
    with pytest.raises(ValueError):
        m.metric("saturation_fraction")  # relu network: never applies
