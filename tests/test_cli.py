"""Tests of the ``actdiag`` command line, called in-process through ``studies.cli.main``.

The files and columns ``train`` promises, their numbers checked against each other, exact reruns
from config.json, instruments, CSV data, one-line errors that leave --out alone, ``list``,
``bench``, ``--help``, and one subprocess run of the installed console script.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diagnostics.activations import ACTIVATIONS
from diagnostics.config import BIAS_UPDATES
from diagnostics.initializers import BIAS_INITS, INITIALIZERS
from diagnostics.optimizers import OPTIMIZERS
from diagnostics.presets import PRESETS
from diagnostics.probes import GROUPS, PROBES
from diagnostics.train import OUTCOMES
from studies.cli import main
from studies.cli.train import CONFIG_FLAGS

LAYERS = (2, 4, 4, 1)  # the question's network
KEYS = ["seed", "epoch", "layer"]
CONFIG_COLUMNS = ["activation", "output_activation", "init", "optimizer", "lr", "batch"]


def read_metrics(out: Path, name: str = "metrics.parquet") -> pd.DataFrame:
    """The metrics table (wide: a column per metric) melted to one row per value (as tidy())."""
    wide = pd.read_parquet(out / name) if name.endswith(".parquet") else pd.read_csv(out / name)
    assert list(wide.columns[:9]) == CONFIG_COLUMNS + KEYS
    assert set(wide.columns[9:]) <= set(PROBES)
    assert not wide.duplicated(KEYS).any()
    long = wide.melt(id_vars=CONFIG_COLUMNS + KEYS, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


OUTCOME_COLUMNS = ["seed", "outcome", "epochs_to_threshold", "final_loss"]  # first, in order
RUN_FILES = {"config.json", "loss.csv", "outcomes.csv", "params.npz"}
# question preset with a linear output: converged, not_converged and diverged seeds in 50 epochs
MIXED = ["--output-activation", "identity", "--lr", "0.05", "--threshold", "0.05"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``actdiag argv`` in-process: (exit code, stdout, stderr); argparse exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def train_ok(capsys, out: Path, *argv) -> str:
    """``actdiag train --out OUT argv`` that must succeed; returns stdout."""
    code, stdout, stderr = cli(capsys, "train", "--out", out, *argv)
    assert code == 0, f"exit {code}: {stderr}"
    return stdout


def read_run(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """loss.csv, outcomes.csv, params.npz (as a dict) and config.json of a run directory."""
    loss = pd.read_csv(out / "loss.csv")
    outcomes = pd.read_csv(out / "outcomes.csv")
    with np.load(out / "params.npz") as npz:
        params = {k: npz[k] for k in npz.files}
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return loss, outcomes, params, config


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` with its bytes (None if ``path`` does not exist)."""
    if not path.exists():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


def check_consistent(out: Path, seeds: list[int], epochs: int, threshold: float) -> pd.DataFrame:
    """The run's files agree with each other (loss.csv kept at every epoch); returns outcomes."""
    loss, outcomes, _, _ = read_run(out)
    assert list(loss.columns) == ["seed", "epoch", "loss"]
    assert list(outcomes.columns[:4]) == OUTCOME_COLUMNS and "diverged_epoch" in outcomes
    assert outcomes["seed"].tolist() == seeds
    assert set(outcomes["outcome"]) <= set(OUTCOMES)
    assert sum(outcomes["outcome"].value_counts().get(o, 0) for o in OUTCOMES) == len(seeds)
    assert set(loss["seed"]) <= set(seeds)
    for row in outcomes.itertuples():
        rows = loss[loss["seed"] == row.seed].sort_values("epoch")
        epoch, value = rows["epoch"].to_numpy(), rows["loss"].to_numpy()
        assert np.array_equal(epoch, np.unique(epoch)), f"seed {row.seed}: repeated epochs"
        reached = epoch[value <= threshold]
        first = int(reached[0]) if reached.size else -1
        assert row.epochs_to_threshold == first, f"seed {row.seed}: {row}"
        if row.outcome == "diverged":
            d = row.diverged_epoch
            assert 1 <= d <= epochs
            assert not np.isfinite(row.final_loss), f"seed {row.seed}: {row}"
            assert epoch.max() <= d, f"seed {row.seed}: loss rows after it diverged"
            assert np.array_equal(epoch[epoch < d], np.arange(1, d))
            assert np.isfinite(value[epoch < d]).all()
        else:
            assert row.diverged_epoch == -1
            assert np.array_equal(epoch, np.arange(1, epochs + 1)), f"seed {row.seed}"
            assert np.isfinite(value).all()
            assert value[-1] == row.final_loss, f"seed {row.seed}: last loss != final_loss"
            assert (row.outcome == "converged") == (first >= 0), f"seed {row.seed}: {row}"
        if "min_loss" in outcomes:  # optional column: the smallest finite epoch loss
            finite = value[np.isfinite(value)]
            expected = finite.min() if finite.size else np.nan
            assert row.min_loss == expected or np.isnan([row.min_loss, expected]).all(), row
    return outcomes


def question_draws(seed: int) -> list[np.ndarray]:
    """The question's initial draws for one seed: np.random.seed(k), then W1, b1, ..., b3."""
    rng = np.random.RandomState(seed)
    draws = []
    for n_in, n_out in zip(LAYERS[:-1], LAYERS[1:], strict=True):
        draws += [rng.randn(n_out, n_in), rng.randn(n_out, 1)[:, 0]]
    return draws


# --- train: files, columns, consistency -------------------------------------------------------


def test_train_writes_promised_files_and_columns(capsys, tmp_path):
    out = tmp_path / "run"
    stdout = train_ok(capsys, out, "--seeds", 20, "--epochs", 50, "--quiet")
    assert stdout == ""  # --quiet: no summary
    assert {p.name for p in out.iterdir()} == RUN_FILES
    loss, outcomes, params, config = read_run(out)
    assert list(loss.columns) == ["seed", "epoch", "loss"]
    assert list(outcomes.columns[:4]) == OUTCOME_COLUMNS and "diverged_epoch" in outcomes
    assert len(loss) == 20 * 50  # every epoch of every seed (nobody diverges here)

    expected = {"seeds"} | {
        f"{p}{l}_{when}" for p in "Wb" for l in (1, 2, 3) for when in ("initial", "final")
    }
    assert set(params) == expected
    assert np.array_equal(params["seeds"], np.arange(20))
    for l, (n_in, n_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:], strict=True), start=1):
        for when in ("initial", "final"):
            assert params[f"W{l}_{when}"].shape == (20, n_out, n_in)
            assert params[f"b{l}_{when}"].shape == (20, n_out)
    assert params["W1_initial"].shape == (20, 4, 2)
    # seed axis first, and row k is seed k's draws (the question's np.random.seed(k) order)
    for k in (0, 7, 19):
        names = [f"{p}{l}_initial" for l in (1, 2, 3) for p in "Wb"]
        for name, draw in zip(names, question_draws(k), strict=True):
            assert np.array_equal(params[name][k], draw), f"{name}[{k}]"

    assert config["config"]["epochs"] == 50
    assert config["seeds"] == "20"
    check_consistent(out, list(range(20)), 50, config["config"]["threshold"])


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="question"),
        pytest.param(MIXED, id="converged-and-diverged"),
        pytest.param(["--lr", "0.1", "--threshold", "0.02"], id="converged-and-stuck"),
    ],
)
def test_train_numbers_consistent_across_files(capsys, tmp_path, extra):
    out = tmp_path / "run"
    train_ok(capsys, out, "--seeds", 20, "--epochs", 50, "--quiet", *extra)
    threshold = json.loads((out / "config.json").read_text())["config"]["threshold"]
    outcomes = check_consistent(out, list(range(20)), 50, threshold)
    if extra == MIXED:  # the configuration exists to exercise these branches; keep it honest
        assert {"converged", "diverged"} <= set(outcomes["outcome"])


def test_final_params_finite_and_converged_seeds_moved(capsys, tmp_path):
    out = tmp_path / "run"
    train_ok(capsys, out, "--seeds", 20, "--epochs", 50, "--quiet", *MIXED)
    _, outcomes, params, _ = read_run(out)
    for l in (1, 2, 3):
        for p in "Wb":
            assert np.isfinite(params[f"{p}{l}_final"]).all(), f"{p}{l}_final not finite"
    moved = ~np.isclose(params["W1_final"], params["W1_initial"]).all(axis=(1, 2))
    assert moved[(outcomes["outcome"] == "converged").to_numpy()].all()


def test_loss_every_keeps_only_scheduled_epochs(capsys, tmp_path):
    full, sparse = tmp_path / "full", tmp_path / "sparse"
    train_ok(capsys, full, "--seeds", 5, "--epochs", 50, "--quiet")
    train_ok(capsys, sparse, "--seeds", 5, "--epochs", 50, "--quiet", "--loss-every", "every:10")
    loss = pd.read_csv(sparse / "loss.csv")
    assert sorted(set(loss["epoch"])) == [10, 20, 30, 40, 50]
    assert len(loss) == 5 * 5
    every = pd.read_csv(full / "loss.csv")
    kept = every[every["epoch"] % 10 == 0].sort_values(["seed", "epoch"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loss.sort_values(["seed", "epoch"]).reset_index(drop=True), kept)
    assert (sparse / "outcomes.csv").read_bytes() == (full / "outcomes.csv").read_bytes()


def test_seed_list_trains_those_seeds_like_the_full_ensemble(capsys, tmp_path):
    full, some = tmp_path / "full", tmp_path / "some"
    train_ok(capsys, full, "--seeds", 20, "--epochs", 30, "--quiet", *MIXED)
    train_ok(capsys, some, "--seeds", "3,7,10-12", "--epochs", 30, "--quiet", *MIXED)
    picked = [3, 7, 10, 11, 12]
    f_loss, f_out, f_params, _ = read_run(full)
    s_loss, s_out, s_params, s_config = read_run(some)
    assert s_config["seeds"] == "3,7,10-12"
    assert np.array_equal(s_params["seeds"], picked)
    for name, value in s_params.items():
        if name != "seeds":
            np.testing.assert_array_equal(value, f_params[name][picked], err_msg=name)
    pd.testing.assert_frame_equal(
        s_out.reset_index(drop=True), f_out.iloc[picked].reset_index(drop=True)
    )
    f_sub = f_loss[f_loss["seed"].isin(picked)].sort_values(["seed", "epoch"])
    s_sub = s_loss.sort_values(["seed", "epoch"])
    pd.testing.assert_frame_equal(s_sub.reset_index(drop=True), f_sub.reset_index(drop=True))


# --- rerun from config.json ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--seeds", 20, "--epochs", 50], id="defaults"),
        pytest.param(
            ["--preset", "fixed", "--activation", "tanh", "--lr", "0.1", "--seeds", "3,5,7-9",
             "--epochs", 40, "--batch", "shuffled", "--loss-every", "every:5",
             "--data", "add:12:0:1:3", "--init", "xavier_normal"],
            id="non-default",
        ),
    ],
)
def test_rerun_from_config_is_byte_identical(capsys, tmp_path, argv):
    first, again = tmp_path / "first", tmp_path / "again"
    train_ok(capsys, first, "--quiet", *argv)
    train_ok(capsys, again, "--quiet", "--config", first / "config.json")
    for name in ("outcomes.csv", "loss.csv"):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    _, _, p1, c1 = read_run(first)
    _, _, p2, c2 = read_run(again)
    for key in ("config", "data", "seeds", "loss_every"):
        assert c2[key] == c1[key], key
    for name in p1:
        np.testing.assert_array_equal(p2[name], p1[name], err_msg=name)


def test_flags_alongside_config_override_it(capsys, tmp_path):
    base = ["--preset", "fixed", "--activation", "tanh", "--seeds", 6, "--epochs", 30, "--quiet"]
    first, override, spelled = tmp_path / "first", tmp_path / "override", tmp_path / "spelled"
    train_ok(capsys, first, "--lr", "0.1", *base)
    train_ok(capsys, override, "--config", first / "config.json", "--lr", "0.05", "--quiet")
    train_ok(capsys, spelled, "--lr", "0.05", *base)
    c1 = read_run(first)[3]["config"]
    c2 = read_run(override)[3]["config"]
    assert c2["lr"] == 0.05
    assert {k: v for k, v in c2.items() if k != "lr"} == {k: v for k, v in c1.items() if k != "lr"}
    assert (override / "loss.csv").read_bytes() != (first / "loss.csv").read_bytes()
    for name in ("outcomes.csv", "loss.csv"):
        assert (override / name).read_bytes() == (spelled / name).read_bytes(), name

    # --seeds and --epochs alongside --config override too
    fewer = tmp_path / "fewer"
    train_ok(capsys, fewer, "--config", first / "config.json", "--seeds", "2-3", "--epochs", 10,
             "--quiet")
    _, outcomes, params, config = read_run(fewer)
    assert outcomes["seed"].tolist() == [2, 3]
    assert config["config"]["epochs"] == 10 and config["config"]["lr"] == 0.1


def test_record_every_alongside_config_overrides_it(capsys, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    train_ok(capsys, first, "--seeds", 3, "--epochs", 30, "--quiet", "--record", "dead",
             "--record-every", "list:0,10,30")
    assert set(read_metrics(first)["epoch"]) == {0, 10, 30}
    train_ok(capsys, again, "--config", first / "config.json", "--record-every", "list:0,20",
             "--quiet")
    assert set(read_metrics(again)["epoch"]) == {0, 20}


def test_config_json_records_the_command_run(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--seeds", "2", "--epochs", "3", "--quiet"]
    assert cli(capsys, *argv)[0] == 0
    command = json.loads((out / "config.json").read_text())["command"]
    assert command == "actdiag " + " ".join(argv)


# --- instruments -----------------------------------------------------------------------------


def test_record_all_writes_metrics_and_events_consistent_with_params(capsys, tmp_path):
    out = tmp_path / "run"
    stdout = train_ok(capsys, out, "--seeds", 5, "--epochs", 50, "--record", "all")
    assert "metrics.parquet" in stdout and "events.csv" in stdout
    assert {p.name for p in out.iterdir()} == RUN_FILES | {"metrics.parquet", "events.csv"}
    metrics = read_metrics(out)
    events = pd.read_csv(out / "events.csv")
    assert {"seed", "epoch", "layer", "metric", "value", "activation", "lr"} <= set(metrics)
    assert list(events.columns) == ["seed", "epoch", "layer", "unit", "event"]
    assert set(metrics["activation"]) == {"relu"}
    assert set(metrics["lr"]) == {0.01}
    assert set(metrics["seed"]) == set(range(5))
    assert set(metrics["metric"]) <= set(PROBES)
    assert {"loss", "dead_fraction", "grad_norm_W", "weight_norm"} <= set(metrics["metric"])
    assert set(metrics["layer"]) == {0, 1, 2, 3}
    epochs = set(metrics["epoch"])
    assert {0, 50} <= epochs and epochs <= set(range(51))
    assert set(events["event"]) <= {"born_dead", "died", "revived"}
    assert set(events["epoch"]) <= epochs
    assert set(events["layer"]) <= {1, 2, 3}
    for layer, width in enumerate(LAYERS[1:], start=1):
        assert (events.loc[events["layer"] == layer, "unit"] < width).all()

    # born_dead events at epoch 0 count the dead units dead_fraction reports
    dead0 = metrics[(metrics["metric"] == "dead_fraction") & (metrics["epoch"] == 0)]
    born = events[events["event"] == "born_dead"].groupby(["seed", "layer"]).size()
    for row in dead0.itertuples():
        width = LAYERS[row.layer]
        assert born.get((row.seed, row.layer), 0) == round(row.value * width), row

    # weight_norm at epochs 0 and 50 is the norm of W_initial and W_final in params.npz
    _, outcomes, params, _ = read_run(out)
    assert (outcomes["outcome"] != "diverged").all()
    wn = metrics[metrics["metric"] == "weight_norm"]
    for (epoch, when) in ((0, "initial"), (50, "final")):
        for layer in (1, 2, 3):
            got = wn[(wn["epoch"] == epoch) & (wn["layer"] == layer)].sort_values("seed")
            expected = np.linalg.norm(params[f"W{layer}_{when}"], axis=(1, 2))
            np.testing.assert_allclose(got["value"], expected, rtol=1e-12)


def test_record_dead_on_a_list_schedule(capsys, tmp_path):
    out = tmp_path / "run"
    train_ok(capsys, out, "--seeds", 5, "--epochs", 50, "--quiet", "--record", "dead",
             "--record-every", "list:0,10,50")
    metrics = read_metrics(out)
    events = pd.read_csv(out / "events.csv")
    assert sorted(set(metrics["epoch"])) == [0, 10, 50]
    assert set(metrics["metric"]) == {"dead_fraction", "network_dead"}
    assert len(metrics) == 3 * 5 * (3 + 1)  # epochs x seeds x (3 ReLU layers + network)
    wide = pd.read_parquet(out / "metrics.parquet")
    assert len(wide) == 3 * 5 * (3 + 1)  # one row per seed, epoch and layer
    assert list(wide.columns[9:]) == ["dead_fraction", "network_dead"]
    assert set(events["epoch"]) <= {0, 10, 50}
    config = json.loads((out / "config.json").read_text())
    assert config["record"] == "dead" and config["record_every"] == "list:0,10,50"


def test_metrics_as_csv_hold_the_parquet_values_and_replace_an_earlier_format(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ("--seeds", 4, "--epochs", 30, "--quiet", "--record", "all")
    train_ok(capsys, out, *argv)
    parquet = read_metrics(out)
    stdout = train_ok(capsys, out, *argv[:-1], "all", "--metrics-format", "csv")
    assert stdout == ""
    assert {p.name for p in out.iterdir()} == RUN_FILES | {"metrics.csv", "events.csv"}
    text = read_metrics(out, "metrics.csv")
    pd.testing.assert_frame_equal(text, parquet, check_dtype=False, check_categorical=False)
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith(",".join(CONFIG_COLUMNS + KEYS) + ",")  # unquoted, as pandas
    stdout = train_ok(capsys, out, *argv[:-2])  # no instruments now: no metrics or events file
    assert {p.name for p in out.iterdir()} == RUN_FILES


def test_full_batch_epoch_loss_is_the_recorded_loss_one_epoch_earlier(capsys, tmp_path):
    """With --batch full, epoch e's loss is the full-data loss of the parameters after e-1."""
    out = tmp_path / "run"
    train_ok(capsys, out, "--preset", "fixed", "--batch", "full", "--lr", "0.05", "--seeds", 4,
             "--epochs", 20, "--quiet", "--record", "loss", "--record-every", "all")
    loss = pd.read_csv(out / "loss.csv").set_index(["seed", "epoch"])["loss"]
    metrics = read_metrics(out)
    recorded = metrics[metrics["metric"] == "loss"].assign(epoch=lambda f: f["epoch"] + 1)
    recorded = recorded[recorded["epoch"] <= 20].set_index(["seed", "epoch"])["value"]
    assert len(recorded) == len(loss) == 4 * 20
    np.testing.assert_allclose(recorded.sort_index(), loss.sort_index(), rtol=1e-12, atol=0)


# --- summary ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra", [pytest.param([], id="never"), pytest.param(MIXED, id="median")]
)
def test_question_summary_matches_outcomes(capsys, tmp_path, extra):
    out = tmp_path / "run"
    stdout = train_ok(capsys, out, "--preset", "question", "--seeds", 20, "--epochs", 50, *extra)
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert "20 seeds x 50 epochs" in stdout
    printed = {
        m["name"]: int(m["n"])
        for m in re.finditer(r"(?m)^\s+(?P<name>\w+)\s+(?P<n>\d+)\s+[\d.]+%$", stdout)
    }
    assert set(printed) == set(OUTCOMES), stdout
    counts = outcomes["outcome"].value_counts()
    assert printed == {o: int(counts.get(o, 0)) for o in OUTCOMES}

    m = re.search(r"(?m)^\s+median epochs to threshold (\S+): (.+)$", stdout)
    assert m, stdout
    e = outcomes["epochs_to_threshold"].to_numpy(dtype=float)
    median = float(np.median(np.where(e >= 0, e, np.inf)))
    if np.isinf(median):
        assert m[2].startswith("never")
    else:
        assert float(m[2]) == median
    if extra == MIXED:
        assert np.isfinite(median)  # the configuration exists to print a number


# --- errors ----------------------------------------------------------------------------------

NAMED = {  # flag -> names the message must list
    "--activation": list(ACTIVATIONS),
    "--output-activation": list(ACTIVATIONS),
    "--init": list(INITIALIZERS),
    "--optimizer": list(OPTIMIZERS),
    "--preset": list(PRESETS),
    "--bias-update": list(BIAS_UPDATES),
    "--record": ["all", *GROUPS, *PROBES],
}

ERRORS = [  # (id, argv after the base, regex the one stderr line must match)
    *[(flag[2:], [flag, "bogus_name"], r"'bogus_name'") for flag in NAMED],
    ("lr-0", ["--lr", "0"], r"\blr\b.*\b0(\.0+)?\b"),
    ("lr-negative", ["--lr", "-1"], r"\blr\b.*-1(\.0+)?\b"),
    ("epochs-0", ["--epochs", "0"], r"\bepochs\b.*\b0\b"),
    ("epochs-abc", ["--epochs", "abc"], r"epochs.*'abc'"),
    ("seeds-reversed", ["--seeds", "5-2"], r"'5-2'"),
    ("seeds-letters", ["--seeds", "a-b"], r"'a-b'"),
    ("seeds-empty-part", ["--seeds", "1,,x"], r"'1,,x'"),
    ("seeds-zero", ["--seeds", "0"], r"seeds '0'"),
    ("seeds-repeated", ["--seeds", "3,3"], r"'3,3'"),
    ("layers-mismatch", ["--layers", "3,4,1"], r"3,4,1.*question"),
    ("layers-zero", ["--layers", "2,0,1"], r"'2,0,1'"),
    ("data-missing", ["--data", "{tmp}/missing.csv"], r"missing\.csv"),
    ("data-not-numeric", ["--data", "{tmp}/bad.csv"], r"'oops'"),
    ("data-add-0", ["--data", "add:0"], r"add:0"),
    ("config-missing", ["--config", "{tmp}/missing.json"], r"missing\.json"),
    ("batch-0", ["--batch", "0"], r"\bbatch\b.*\b0\b"),
    ("unknown-flag", ["--bogus-flag", "1"], r"--bogus-flag"),
    ("record-every-log-0", ["--record-every", "log:0", "--record", "dead"], r"log:0"),
    ("loss-every-every-0", ["--loss-every", "every:0"], r"every:0"),
    ("inputs-unknown-column", ["--data", "{tmp}/good.csv", "--inputs", "a,zz"], r"'zz'"),
]


@pytest.fixture
def data_files(tmp_path) -> Path:
    (tmp_path / "bad.csv").write_text("a,b,y\n0.1,0.2,0.3\n0.5,oops,0.8\n", encoding="utf-8")
    (tmp_path / "good.csv").write_text("a,b,y\n0.1,0.2,0.3\n0.5,0.3,0.8\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "existing-out"])
@pytest.mark.parametrize("argv, pattern", [pytest.param(a, p, id=i) for i, a, p in ERRORS])
def test_error_is_one_line_exit_2_and_nothing_written(capsys, data_files, argv, pattern, existing):
    out = data_files / "out"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("untouched\n")
    before = snapshot(out)
    argv = [a.replace("{tmp}", str(data_files)) for a in argv]
    code, stdout, stderr = cli(capsys, "train", "--out", out, "--seeds", 3, "--epochs", 5,
                               "--quiet", *argv)
    assert code == 2, (code, stderr)
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert re.search(pattern, stderr), stderr
    assert stdout == ""
    assert snapshot(out) == before
    flag = argv[0]
    for name in NAMED.get(flag, []):
        assert name in stderr, f"{flag}: message does not list {name!r}: {stderr}"


def test_invalid_record_every_without_record_is_an_error(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = cli(capsys, "train", "--out", out, "--seeds", 2, "--epochs", 3, "--quiet",
                          "--record-every", "log:0")
    assert code == 2, stderr
    assert not out.exists()


# --- CSV data --------------------------------------------------------------------------------


def write_sum_csv(path: Path, columns: list[str]) -> None:
    """20 rows of a, b, y = a + b and a noise column, in the order ``columns``."""
    rng = np.random.default_rng(5)
    a, b, noise = rng.uniform(0, 0.5, (3, 20))
    frame = pd.DataFrame({"a": a, "b": b, "y": a + b, "noise": noise})
    frame[columns].to_csv(path, index=False)


def test_csv_data_end_to_end(capsys, tmp_path):
    data = tmp_path / "sum.csv"
    write_sum_csv(data, ["a", "b", "y"])
    out = tmp_path / "run"
    train_ok(capsys, out, "--data", data, "--layers", "2,3,1", "--preset", "fixed", "--epochs", 30,
             "--seeds", 3, "--quiet")
    assert {p.name for p in out.iterdir()} == RUN_FILES
    _, _, params, config = read_run(out)
    assert params["W1_initial"].shape == (3, 3, 2)
    assert params["W2_final"].shape == (3, 1, 3)
    assert config["data"]["spec"] == str(data)
    assert config["config"]["layers"] == [2, 3, 1]
    check_consistent(out, [0, 1, 2], 30, config["config"]["threshold"])

    # a rerun from config.json finds the same file and reproduces the run
    again = tmp_path / "again"
    train_ok(capsys, again, "--config", out / "config.json", "--quiet")
    for name in ("outcomes.csv", "loss.csv"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_csv_inputs_and_targets_select_columns(capsys, tmp_path):
    plain, shuffled = tmp_path / "plain.csv", tmp_path / "shuffled.csv"
    write_sum_csv(plain, ["a", "b", "y"])
    write_sum_csv(shuffled, ["noise", "b", "y", "a"])
    common = ["--layers", "2,3,1", "--preset", "fixed", "--epochs", 30, "--seeds", 3, "--quiet"]
    runs = {
        "plain": ["--data", plain],
        "names": ["--data", shuffled, "--inputs", "a,b", "--targets", "y"],
        "indices": ["--data", shuffled, "--inputs", "3,1", "--targets", "2"],
        "swapped": ["--data", shuffled, "--inputs", "b,a", "--targets", "y"],
    }
    for name, argv in runs.items():
        train_ok(capsys, tmp_path / name, *argv, *common)

    def loss(name):
        return (tmp_path / name / "loss.csv").read_bytes()

    assert loss("names") == loss("plain")
    assert loss("indices") == loss("plain")
    assert loss("swapped") != loss("plain")  # the selection reaches the network
    config = json.loads((tmp_path / "names" / "config.json").read_text())
    assert config["data"]["inputs"] == ["a", "b"] and config["data"]["targets"] == ["y"]

    # without --inputs every non-target column is an input: 3 inputs, so 2,3,1 is rejected
    code, _, stderr = cli(capsys, "train", "--out", tmp_path / "x", "--data", shuffled,
                          "--targets", "y", *common)
    assert code == 2 and "2,3,1" in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "x").exists()


# --- list, bench, help -----------------------------------------------------------------------


def test_list_prints_every_table_name(capsys):
    code, stdout, _ = cli(capsys, "list")
    assert code == 0
    sections: dict[str, set[str]] = {}
    current = None
    for line in stdout.splitlines():
        if line and not line[0].isspace():
            current = line.split(":")[0]
            sections[current] = set()
        elif line.strip() and not line.strip().startswith("aliases:"):
            sections[current].add(line.split()[0])
    tables = {
        "activations": ACTIVATIONS, "initializers": INITIALIZERS, "optimizers": OPTIMIZERS,
        "presets": PRESETS,
    }
    for section, table in tables.items():
        assert sections.get(section) == set(table), section
    bias_line = next(line for line in stdout.splitlines() if line.startswith("bias initializers"))
    for name in BIAS_INITS:
        assert re.search(rf"\b{name}\b", bias_line), name


def test_bench_engine_table(capsys):
    code, stdout, stderr = cli(capsys, "bench", "--quick", "--sizes", "1,10", "--repeats", 1,
                               "--only", "engine")
    assert code == 0, stderr
    # S, your loop, numpy, compiled, numpy x, compiled x
    rows = re.findall(r"(?m)^\s*([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)x\s+"
                      r"([\d.]+)x\s*$", stdout)
    assert [int(r[0]) for r in rows] == [1, 10], stdout
    for row in rows:
        rates = [int(x.replace(",", "")) for x in row[1:4]]
        assert min(rates) > 0
        # the ratios are the printed rates divided by the user's loop (to print precision)
        assert float(row[4]) == pytest.approx(rates[1] / rates[0], abs=0.06, rel=0.01)
        assert float(row[5]) == pytest.approx(rates[2] / rates[0], abs=0.06, rel=0.01)
    assert "instruments overhead" not in stdout


def test_bench_unknown_section_exits_2(capsys):
    code, stdout, stderr = cli(capsys, "bench", "--only", "bogus")
    assert code == 2
    assert stderr.count("\n") == 1 and "'bogus'" in stderr and "engine" in stderr, stderr
    assert stdout == ""


def test_top_level_help(capsys):
    code, stdout, _ = cli(capsys, "--help")
    assert code == 0
    for command in ("train", "bench", "list"):
        assert re.search(rf"(?m)^\s+{command}\b", stdout), command


def test_train_help_mentions_every_flag(capsys):
    code, stdout, _ = cli(capsys, "train", "--help")
    assert code == 0
    flags = [*CONFIG_FLAGS, "--preset", "--config", "--data", "--inputs", "--targets", "--seeds",
             "--out", "--loss-every", "--record", "--record-every", "--metrics-format", "--quiet"]
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", stdout), flag
    text = " ".join(stdout.split())
    assert "parquet (metrics.parquet" in text and "csv (metrics.csv" in text


def test_no_command_is_a_usage_error(capsys):
    code, _, stderr = cli(capsys)
    assert code == 2 and stderr.count("\n") >= 1 and "Traceback" not in stderr


# --- the installed entry point ---------------------------------------------------------------


def test_console_script_runs_and_propagates_exit_codes(tmp_path):
    script = Path(sys.executable).with_name("actdiag")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "studies.cli"]

    def run(*argv):
        return subprocess.run(
            [*command, *map(str, argv)], capture_output=True, text=True, timeout=60,
            cwd=tmp_path,
        )

    ok = run("train", "--seeds", 2, "--epochs", 3, "--out", "run", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["command"] == "actdiag train --seeds 2 --epochs 3 --out run --quiet"

    bad = run("train", "--lr", "0", "--out", "bad", "--quiet")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "lr" in bad.stderr, bad.stderr
    assert not (tmp_path / "bad").exists()

    usage = run("train", "--bogus-flag")
    assert usage.returncode == 2 and "--bogus-flag" in usage.stderr
    assert "Traceback" not in usage.stderr
