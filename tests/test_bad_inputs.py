"""Bad input, refused before any work: one line on stderr naming the bad value, exit 2, no file.

One table: (id, command line, a substring the error line must contain). Each row runs in a fresh
temporary working directory (so the default ``runs/`` and ``reports/`` would land there too);
afterwards that directory holds exactly the files the test itself prepared (config files, data
files, a plain file to collide with): no output folder, no cache, no temporary file.

Placeholders in the command lines: ``cfg:NAME`` is a config file written from ``CONFIGS[NAME]``;
files named in ``FILES`` are written before the run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from studies.cli import main

T = "train --out out --seeds 3 --epochs 5 --quiet"  # later flags override these
S = "study question --quick --seeds 2 --epochs 3 --out out --quiet"
R = "report --quick --seeds 2 --epochs 3 --out out --quiet"
C = "train --out out --quiet --config"  # seeds and epochs from the config file
B = "bench --quick --repeats 1 --sizes 1 --only engine"
BIG_LOSS = "--seeds 1000000 --epochs 5000 --loss-every log:1000000000000"
BIG_RECORD = "--seeds 300000 --epochs 100000 --record all --record-every log:1000000000000"

GOOD = {"layers": [2, 4, 4, 1], "activation": "relu", "epochs": 5}  # a valid config, to spoil


def config_json(**changes) -> dict:
    return {"config": {**GOOD, **changes}, "seeds": "3"}


CONFIGS: dict[str, object] = {  # name -> JSON content (a str is written as is)
    "list": [1, 2, 3],
    "number": 5,
    "no-config": {"seeds": "3"},
    "config-list": {"config": [2, 4, 4, 1]},
    "config-null": {"config": None},
    "layers-int": config_json(layers=4),
    "layers-str": config_json(layers="2,4,4,1"),
    "layers-float": config_json(layers=[2, 4.5, 1]),
    "layers-bool": config_json(layers=[True, 4, 1]),
    "layers-strings": config_json(layers=["2", "4", "1"]),
    "layers-empty": config_json(layers=[]),
    "layers-one": config_json(layers=[2]),
    "layers-zero": config_json(layers=[2, 0, 1]),
    "momentum-str": config_json(momentum="0.9"),
    "momentum-1": config_json(momentum=1.0),
    "stuck-tol-str": config_json(stuck_tol="0"),
    "stuck-tol-nan": '{"config": {"stuck_tol": NaN}}',
    "lr-null": config_json(lr=None),
    "lr-str": config_json(lr="fast"),
    "lr-inf": '{"config": {"lr": Infinity}}',
    "lr-bool": config_json(lr=True),
    "epochs-float": config_json(epochs=2.5),
    "epochs-str": config_json(epochs="5"),
    "epochs-bool": config_json(epochs=True),
    "epochs-huge": config_json(epochs=10**13),
    "batch-bool": config_json(batch=True),
    "batch-float": config_json(batch=1.5),
    "batch-list": config_json(batch=[1]),
    "activation-int": config_json(activation=3),
    "activation-bogus": config_json(activation="swishy"),
    "output-activation-int": config_json(output_activation=5),
    "init-list": config_json(init=["he_normal"]),
    "dtype-bogus": config_json(dtype="float16"),
    "bias-scale-neg": config_json(bias_scale=-1),
    "unknown-field": config_json(colour="blue"),
    "data-int": {**config_json(), "data": {"spec": 5}},
    "data-list": {**config_json(), "data": ["question"]},
    "data-no-spec": {**config_json(), "data": {"inputs": None}},
    "data-inputs-str": {**config_json(), "data": {"spec": "question", "inputs": "a"}},
    "data-huge": {**config_json(), "data": {"spec": "add:10000000000"}},
    "seeds-list": {**config_json(), "seeds": [1, 2]},
    "seeds-bool": {**config_json(), "seeds": True},
    "seeds-huge": {**config_json(), "seeds": "1000000000"},
    "loss-every-int": {**config_json(), "loss_every": 5},
    "loss-every-bogus": {**config_json(), "loss_every": "sometimes"},
    "record-int": {**config_json(), "record": 1},
    "record-every-list": {**config_json(), "record_every": [0, 1]},
    "unknown-entry": {**config_json(), "colour": "blue"},
    "not-json": "{config: nope",
    "empty": "",
    "deep": "[" * 100_000 + "]" * 100_000,
    "binary": "\udcff\udcfe",
}
FILES = {  # other files the rows use
    "afile": "just a file\n",
    "bad.csv": "a,b,y\n0.1,0.2,0.3\n0.5,oops,0.8\n",
    "good.csv": "a,b,y\n0.1,0.2,0.3\n0.5,0.3,0.8\n0.2,0.2,0.4\n",
    "one.csv": "a\n1\n2\n",
    "foreign/keep.txt": "not ours\n",
    "mine/question/notes.txt": "not a study's file\n",
    "model.py": "def make_model():\n    raise AssertionError('never called')\n",
}

ROWS: list[tuple[str, str, str]] = [
    # --- train: seeds ----------------------------------------------------------------------
    ("train-seeds-empty", f"{T} --seeds ''", "seeds ''"),
    ("train-seeds-blank", f"{T} --seeds ' '", "seeds ' '"),
    ("train-seeds-zero", f"{T} --seeds 0", "seeds '0'"),
    ("train-seeds-huge", f"{T} --seeds 1000000000", "1000000000 seeds"),
    ("train-seeds-huge-range", f"{T} --seeds 0-99999999999", "100000000000 seeds"),
    ("train-seeds-reversed", f"{T} --seeds 5-2", "'5-2'"),
    ("train-seeds-letters", f"{T} --seeds abc", "'abc'"),
    ("train-seeds-negative", f"{T} --seeds=-3", "'-3'"),
    ("train-seeds-repeated", f"{T} --seeds 3,3", "'3,3'"),
    ("train-seeds-float", f"{T} --seeds 2.5", "'2.5'"),
    ("train-seeds-empty-part", f"{T} --seeds 1,,2", "'1,,2'"),
    # --- train: epochs, lr and other numbers -----------------------------------------------
    ("train-epochs-0", f"{T} --epochs 0", "epochs 0"),
    ("train-epochs-negative", f"{T} --epochs=-1", "epochs -1"),
    ("train-epochs-abc", f"{T} --epochs abc", "'abc'"),
    ("train-epochs-float", f"{T} --epochs 2.5", "'2.5'"),
    ("train-epochs-huge", f"{T} --epochs 1000000000000", "1000000000000 epochs"),
    ("train-epochs-huge-one-seed", f"{T} --seeds 1 --epochs 1000000000000", "1000000000000"),
    ("train-lr-0", f"{T} --lr 0", "lr 0"),
    ("train-lr-negative", f"{T} --lr=-1", "lr -1"),
    ("train-lr-nan", f"{T} --lr nan", "lr nan"),
    ("train-lr-inf", f"{T} --lr inf", "lr inf"),
    ("train-lr-abc", f"{T} --lr abc", "'abc'"),
    ("train-lr-empty", f"{T} --lr ''", "''"),
    ("train-momentum-nan", f"{T} --momentum nan", "momentum nan"),
    ("train-momentum-1", f"{T} --momentum 1", "momentum 1"),
    ("train-momentum-negative", f"{T} --momentum=-0.1", "momentum -0.1"),
    ("train-momentum-abc", f"{T} --momentum abc", "'abc'"),
    ("train-beta1-1.5", f"{T} --beta1 1.5", "beta1 1.5"),
    ("train-beta2-nan", f"{T} --beta2 nan", "beta2 nan"),
    ("train-rms-decay-2", f"{T} --rms-decay 2", "rms_decay 2"),
    ("train-eps-0", f"{T} --eps 0", "eps 0"),
    ("train-eps-nan", f"{T} --eps nan", "eps nan"),
    ("train-threshold-0", f"{T} --threshold 0", "threshold 0"),
    ("train-threshold-nan", f"{T} --threshold nan", "threshold nan"),
    ("train-threshold-inf", f"{T} --threshold inf", "threshold inf"),
    ("train-stuck-tol-nan", f"{T} --stuck-tol nan", "stuck_tol nan"),
    ("train-stuck-tol-negative", f"{T} --stuck-tol=-1", "stuck_tol -1"),
    ("train-stuck-tol-inf", f"{T} --stuck-tol inf", "stuck_tol inf"),
    ("train-bias-scale-nan", f"{T} --bias-scale nan", "bias_scale nan"),
    ("train-bias-scale-negative", f"{T} --bias-scale=-1", "bias_scale -1"),
    ("train-bias-scale-inf", f"{T} --bias-scale inf", "bias_scale inf"),
    ("train-leaky-slope-nan", f"{T} --leaky-slope nan", "leaky_slope nan"),
    # --- train: names ----------------------------------------------------------------------
    ("train-activation-bogus", f"{T} --activation swishy", "'swishy'"),
    ("train-activation-empty", f"{T} --activation ''", "''"),
    ("train-output-activation-bogus", f"{T} --output-activation swishy", "'swishy'"),
    ("train-init-bogus", f"{T} --init lucky", "'lucky'"),
    ("train-bias-init-bogus", f"{T} --bias-init lucky", "'lucky'"),
    ("train-rng-bogus", f"{T} --rng mt", "'mt'"),
    ("train-optimizer-bogus", f"{T} --optimizer lbfgs", "'lbfgs'"),
    ("train-preset-bogus", f"{T} --preset best", "'best'"),
    ("train-bias-update-bogus", f"{T} --bias-update sometimes", "'sometimes'"),
    ("train-backprop-weights-bogus", f"{T} --backprop-weights later", "'later'"),
    ("train-dtype-float16", f"{T} --dtype float16", "'float16'"),
    ("train-record-bogus", f"{T} --record everything", "'everything'"),
    ("train-record-empty", f"{T} --record ''", "instrument"),
    ("train-metrics-format-bogus", f"{T} --record all --metrics-format feather", "'feather'"),
    ("train-unknown-flag", f"{T} --bogus-flag 1", "--bogus-flag"),
    ("train-extra-argument", f"{T} extra", "extra"),
    # --- train: batch, layers, data --------------------------------------------------------
    ("train-batch-0", f"{T} --batch 0", "batch 0"),
    ("train-batch-negative", f"{T} --batch=-1", "batch '-1'"),
    ("train-batch-bogus", f"{T} --batch sometimes", "'sometimes'"),
    ("train-batch-empty", f"{T} --batch ''", "batch ''"),
    ("train-batch-100-of-6", f"{T} --batch 100", "batch 100"),
    ("train-batch-7-of-6", f"{T} --batch 7", "batch 7"),
    ("train-layers-empty", f"{T} --layers ''", "''"),
    ("train-layers-one", f"{T} --layers 2", "'2'"),
    ("train-layers-zero", f"{T} --layers 2,0,1", "'2,0,1'"),
    ("train-layers-letter", f"{T} --layers 2,x,1", "'2,x,1'"),
    ("train-layers-empty-part", f"{T} --layers 2,,1", "'2,,1'"),
    ("train-layers-negative", f"{T} --layers 2,-4,1", "'2,-4,1'"),
    ("train-layers-mismatch", f"{T} --layers 3,4,1", "3,4,1"),
    ("train-layers-huge", f"{T} --layers 2,100000,100000,1", "10000500001 parameters"),
    ("train-data-empty", f"{T} --data ''", "''"),
    ("train-data-missing", f"{T} --data missing.csv", "missing.csv"),
    ("train-data-directory", f"{T} --data foreign", "'foreign'"),
    ("train-data-add-0", f"{T} --data add:0", "add:0"),
    ("train-data-add-letters", f"{T} --data add:x", "add:x"),
    ("train-data-add-bare", f"{T} --data add", "'add'"),
    ("train-data-add-low-high", f"{T} --data add:5:1:0", "add:5:1:0"),
    ("train-data-add-nan", f"{T} --data add:5:nan:1", "add:5:nan:1"),
    ("train-data-add-huge", f"{T} --data add:10000000000", "10000000000 samples"),
    ("train-data-not-numeric", f"{T} --data bad.csv", "'oops'"),
    ("train-data-one-column", f"{T} --data one.csv", "one.csv"),
    ("train-inputs-empty", f"{T} --data good.csv --inputs ''", "--inputs ''"),
    ("train-inputs-unknown", f"{T} --data good.csv --inputs a,zz", "'zz'"),
    ("train-inputs-on-question", f"{T} --inputs a", "'question'"),
    ("train-targets-unknown", f"{T} --data good.csv --targets zz", "'zz'"),
    ("train-targets-is-input", f"{T} --data good.csv --inputs a,b --targets b", "'b'"),
    # --- train: schedules ------------------------------------------------------------------
    ("train-loss-every-empty", f"{T} --loss-every ''", "--loss-every ''"),
    ("train-loss-every-every-0", f"{T} --loss-every every:0", "every:0"),
    ("train-loss-every-log-0", f"{T} --loss-every log:0", "log:0"),
    ("train-loss-every-bogus", f"{T} --loss-every sometimes:3", "sometimes:3"),
    ("train-loss-every-list-beyond", f"{T} --loss-every list:99999", "list:99999"),
    ("train-loss-every-list-zero", f"{T} --loss-every list:0", "list:0"),
    ("train-loss-every-huge", f"{T} {BIG_LOSS}", "log:1000000000000"),
    ("train-record-every-empty", f"{T} --record dead --record-every ''", "--record-every ''"),
    ("train-record-every-log-0", f"{T} --record dead --record-every log:0", "log:0"),
    ("train-record-every-list-beyond", f"{T} --record dead --record-every list:99999",
     "list:99999"),
    ("train-record-every-no-record", f"{T} --record-every list:99999", "list:99999"),
    ("train-record-every-huge", f"{T} {BIG_RECORD}", "log:1000000000000"),
    # --- train: --out ----------------------------------------------------------------------
    ("train-out-empty", f"{T} --out ''", "--out ''"),
    ("train-out-blank", f"{T} --out ' '", "--out ' '"),
    ("train-out-is-file", f"{T} --out afile", "'afile'"),
    ("train-out-under-file", f"{T} --out afile/sub", "'afile/sub'"),
    ("train-out-not-writable", f"{T} --out /proc/actdiag-out", "/proc/actdiag-out"),
    ("train-out-foreign", f"{T} --out foreign", "'keep.txt'"),
    # --- train: --config files -------------------------------------------------------------
    ("config-missing", f"{T} --config missing.json", "missing.json"),
    ("config-empty-path", f"{T} --config ''", "--config ''"),
    ("config-directory", f"{T} --config foreign", "'foreign'"),
    *[(f"config-{name}", f"{C} cfg:{name}", text) for name, text in [
        ("list", "list"), ("number", "int"), ("no-config", "'config'"),
        ("config-list", "list"), ("config-null", "None"),
        ("layers-int", "layers 4"), ("layers-str", "'2,4,4,1'"), ("layers-float", "4.5"),
        ("layers-bool", "True"), ("layers-strings", "'2'"), ("layers-empty", "layers []"),
        ("layers-one", "layers 2"), ("layers-zero", "2,0,1"),
        ("momentum-str", "momentum '0.9'"), ("momentum-1", "momentum 1.0"),
        ("stuck-tol-str", "stuck_tol '0'"), ("stuck-tol-nan", "stuck_tol nan"),
        ("lr-null", "lr None"), ("lr-str", "'fast'"), ("lr-inf", "lr inf"), ("lr-bool", "lr True"),
        ("epochs-float", "epochs 2.5"), ("epochs-str", "epochs '5'"),
        ("epochs-bool", "epochs True"), ("epochs-huge", "10000000000000 epochs"),
        ("batch-bool", "batch True"), ("batch-float", "batch 1.5"), ("batch-list", "batch [1]"),
        ("activation-int", "activation 3"), ("activation-bogus", "'swishy'"),
        ("output-activation-int", "output_activation 5"), ("init-list", "['he_normal']"),
        ("dtype-bogus", "'float16'"), ("bias-scale-neg", "bias_scale -1"),
        ("unknown-field", "colour"), ("data-int", "spec 5"), ("data-list", "['question']"),
        ("data-no-spec", "'inputs'"), ("data-inputs-str", "'a'"),
        ("data-huge", "10000000000 samples"), ("seeds-list", "[1, 2]"),
        ("seeds-bool", "seeds True"), ("seeds-huge", "1000000000 seeds"),
        ("loss-every-int", "loss_every 5"), ("loss-every-bogus", "sometimes"),
        ("record-int", "record 1"), ("record-every-list", "[0, 1]"),
        ("unknown-entry", "'colour'"), ("not-json", "not readable JSON"),
        ("empty", "not readable JSON"), ("deep", "not readable JSON"),
        ("binary", "not readable JSON"),
    ]],
    # --- study -----------------------------------------------------------------------------
    ("study-name-bogus", "study everything --quick --out out", "'everything'"),
    ("study-seeds-0", f"{S} --seeds 0", "--seeds 0"),
    ("study-seeds-negative", f"{S} --seeds=-1", "--seeds -1"),
    ("study-seeds-abc", f"{S} --seeds abc", "'abc'"),
    ("study-seeds-empty", f"{S} --seeds ''", "''"),
    ("study-seeds-huge", "study question --quick --seeds 1000000000 --out out",
     "1000000000 seeds"),
    ("study-epochs-huge", "study question --quick --epochs 1000000000000 --out out",
     "1000000000000"),
    ("study-epochs-huge-default-out", "study question --epochs 1000000000000", "1000000000000"),
    ("study-epochs-0", f"{S} --epochs 0", "--epochs 0"),
    ("study-activations-repeated", "study question --activations relu,relu --out out",
     "'relu,relu'"),
    ("study-activations-repeated-default-out", "study question --activations relu,relu",
     "'relu,relu'"),
    ("study-activations-empty", f"{S} --activations ''", "--activations ''"),
    ("study-activations-bogus", f"{S} --activations relu,swishy", "'swishy'"),
    ("study-activations-trailing-comma", f"{S} --activations relu,", "'relu,'"),
    ("study-layers-empty", f"{S} --layers ''", "''"),
    ("study-layers-mismatch", f"{S} --layers 3,4,1", "3,4,1"),
    ("study-layers-zero", f"{S} --layers 2,0,1", "'2,0,1'"),
    ("study-layers-huge", f"{S} --layers 2,100000,100000,1", "10000500001 parameters"),
    ("study-lrs-empty", f"{S} --lrs ''", "--lrs ''"),
    ("study-lrs-nan", f"{S} --lrs nan", "'nan'"),
    ("study-lrs-inf", f"{S} --lrs inf", "'inf'"),
    ("study-lrs-0", f"{S} --lrs 0", "'0'"),
    ("study-lrs-negative", f"{S} --lrs=-0.1", "'-0.1'"),
    ("study-lrs-repeated", f"{S} --lrs 0.1,0.1", "'0.1,0.1'"),
    ("study-data-empty", f"{S} --data ''", "''"),
    ("study-data-missing", f"{S} --data missing.csv", "missing.csv"),
    ("study-data-add-0", f"{S} --data add:0", "add:0"),
    ("study-data-add-huge", f"{S} --data add:10000000000", "10000000000 samples"),
    ("study-inputs-on-question", f"{S} --inputs a", "'question'"),
    ("study-inputs-empty", f"{S} --data good.csv --inputs ''", "--inputs ''"),
    ("study-workers-0", f"{S} --workers 0", "--workers 0"),
    ("study-workers-negative", f"{S} --workers=-2", "--workers -2"),
    ("study-chunk-seeds-0", f"{S} --chunk-seeds 0", "--chunk-seeds 0"),
    ("study-executor-bogus", f"{S} --executor threads", "'threads'"),
    ("study-executor-dask-no-scheduler", f"{S} --executor dask", "--scheduler"),
    ("study-executor-dask-empty-scheduler", f"{S} --executor dask --scheduler ''", "--scheduler"),
    ("study-out-empty", f"{S} --out ''", "--out ''"),
    ("study-out-is-file", f"{S} --out afile", "'afile'"),
    ("study-out-under-file", f"{S} --out afile/reports", "'afile/reports'"),
    ("study-out-not-writable", f"{S} --out /proc/actdiag-out", "/proc/actdiag-out"),
    ("study-out-foreign-study-folder", f"{S} --out mine", "'notes.txt'"),
    ("study-cache-empty", f"{S} --cache ''", "--cache ''"),
    ("study-cache-is-file", f"{S} --cache afile", "'afile'"),
    ("study-cache-under-file", f"{S} --cache afile/cache", "'afile/cache'"),
    ("study-unknown-flag", f"{S} --bogus 1", "--bogus"),
    # --- report ----------------------------------------------------------------------------
    ("report-seeds-huge", "report --quick --seeds 1000000000 --out out", "1000000000 seeds"),
    ("report-epochs-huge", "report --quick --epochs 1000000000000", "1000000000000"),
    ("report-seeds-0", f"{R} --seeds 0", "--seeds 0"),
    ("report-activations-repeated", f"{R} --activations tanh,tanh", "'tanh,tanh'"),
    ("report-lrs-nan", f"{R} --lrs nan", "'nan'"),
    ("report-workers-0", f"{R} --workers 0", "--workers 0"),
    ("report-chunk-seeds-negative", f"{R} --chunk-seeds=-5", "--chunk-seeds -5"),
    ("report-executor-bogus", f"{R} --executor mpi", "'mpi'"),
    ("report-out-empty", f"{R} --out ''", "--out ''"),
    ("report-out-is-file", f"{R} --out afile", "'afile'"),
    ("report-out-foreign-study-folder", f"{R} --out mine", "'notes.txt'"),
    ("report-data-missing", f"{R} --data missing.csv", "missing.csv"),
    ("report-cache-is-file", f"{R} --cache afile", "'afile'"),
    ("report-positional", f"{R} question", "question"),
    # --- bench -----------------------------------------------------------------------------
    ("bench-sizes-huge", "bench --sizes 1000000000", "1000000000 seeds"),
    ("bench-sizes-0", f"{B} --sizes 0", "'0'"),
    ("bench-sizes-empty", f"{B} --sizes ''", "''"),
    ("bench-sizes-abc", f"{B} --sizes abc", "'abc'"),
    ("bench-sizes-float", f"{B} --sizes 1.5", "'1.5'"),
    ("bench-sizes-negative", f"{B} --sizes=-5", "'-5'"),
    ("bench-repeats-0", f"{B} --repeats 0", "--repeats 0"),
    ("bench-repeats-negative", f"{B} --repeats=-1", "--repeats -1"),
    ("bench-repeats-abc", f"{B} --repeats abc", "'abc'"),
    ("bench-repeats-huge", "bench --sizes 10000 --repeats 100000000", "--repeats 100000000"),
    ("bench-instruments-repeats-huge", "bench --only instruments --repeats 100000000",
     "--repeats 100000000"),
    ("bench-activation-bogus", f"{B} --activation swishy", "'swishy'"),
    ("bench-dtype-bogus", f"{B} --dtype float16", "'float16'"),
    ("bench-only-bogus", f"{B} --only everything", "'everything'"),
    ("bench-only-empty", f"{B} --only ''", "--only ''"),
    ("bench-only-repeated", f"{B} --only engine,engine", "'engine,engine'"),
    ("bench-executor-workers-0", "bench --only executor --workers 0", "--workers 0"),
    ("bench-executor-workers-negative", "bench --only executor --workers=-2", "--workers -2"),
    # --- list and the command itself -------------------------------------------------------
    ("list-extra-argument", "list everything", "everything"),
    ("command-bogus", "fly --high", "'fly'"),
    # --- train --model (torch) ----------------------------------------------------------------
    ("train-model-no-file", f"{T} --model nofile.py:make_model", "file 'nofile.py' not found"),
    ("train-model-no-function", f"{T} --model model.py:build", "has no function 'build'"),
    ("train-model-no-colon", f"{T} --model model.py", "use FILE.py:FUNCTION"),
    ("train-model-engine-flag", f"{T} --model model.py:make_model --layers 2,4,1",
     "--layers describes the engine's network"),
    ("train-model-preset", f"{T} --model model.py:make_model --preset fixed", "--preset"),
    ("train-model-batch", f"{T} --model model.py:make_model --batch zero", "--batch 'zero'"),
    ("train-model-lr", f"{T} --model model.py:make_model --lr -1", "--lr -1"),
    ("train-model-metrics-format", f"{T} --model model.py:make_model --metrics-format xls",
     "--metrics-format 'xls'"),
    ("train-model-big-batch", f"{T} --model model.py:make_model --batch 7", "batch 7"),
]


def prepare(root: Path, argv: list[str]) -> list[str]:
    """Write the files the table uses into ``root``; return argv with cfg:NAME resolved."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    resolved = []
    for arg in argv:
        if arg.startswith("cfg:"):
            name = arg[4:]
            content = CONFIGS[name]
            text = content if isinstance(content, str) else json.dumps(content)
            path = root / f"{name}.json"
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            arg = str(path.name)
        resolved.append(arg)
    return resolved


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def check_refusal(code, stderr: str, expected: str, before: set[str], root: Path) -> None:
    assert code == 2, f"exit {code}: {stderr}"
    assert "Traceback" not in stderr, stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    assert expected in stderr, f"{expected!r} not in {stderr!r}"
    assert tree(root) == before, f"created {sorted(tree(root) - before)}"


@pytest.mark.parametrize("argv, expected", [pytest.param(a, e, id=i) for i, a, e in ROWS])
def test_bad_input_is_refused_before_any_work(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = prepare(tmp_path, shlex.split(argv))
    before = tree(tmp_path)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    check_refusal(code, err, expected, before, tmp_path)


def test_the_table_is_large_and_its_ids_unique():
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ROWS) >= 150


SUBPROCESS_ROWS = ["train-seeds-huge", "study-seeds-huge", "bench-executor-workers-0",
                   "config-deep"]


@pytest.mark.parametrize("row_id", SUBPROCESS_ROWS)
def test_bad_input_in_a_real_process(row_id, tmp_path):
    """The installed entry point: the same one line, exit 2, no traceback, nothing created."""
    argv, expected = next((a, e) for i, a, e in ROWS if i == row_id)
    args = prepare(tmp_path, shlex.split(argv))
    before = tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "studies.cli", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    check_refusal(proc.returncode, proc.stderr, expected, before, tmp_path)


@pytest.mark.parametrize("argv, expected", [
    (f"{T} --model model.py:make_model", "--model needs torch, which is not installed: pip "
     "install 'activation-diagnostics[torch]'"),
    ("study torch_digits --quick --out out --quiet",  # (", sklearn" too where it is absent)
     "study torch_digits needs torch"),
], ids=["train-model", "study-torch-digits"])
def test_without_torch_the_torch_commands_say_what_to_install(argv, expected, tmp_path,
                                                               monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "torch" else real(name, *a, **k))
    monkeypatch.chdir(tmp_path)
    args = prepare(tmp_path, shlex.split(argv))
    before = tree(tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    check_refusal(code, err, expected, before, tmp_path)
    assert "pip install 'activation-diagnostics[torch]'" in err
