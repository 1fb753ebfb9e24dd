"""studies/speed.py: the torch contender of the scaling bench, and the scaling rows and table.

``torch_bmm_train`` is a speed reference, not an engine, but it must train the same network: from
the numpy engine's initial parameters its per-epoch losses agree with the engine's to round-off.
Tolerance, from an error bound (float64, u = 2^-53 = 1.1e-16): one online step of a 2-8-8-1
network computes each new parameter through at most ~40 roundings (dot products of <= 8 terms
forward and backward, the outer product, the update), plus tanh or sigmoid from another library
(torch's and numpy's kernels are each within 4 ulp = 8u); so the two disagree after one step by
<= ~50u relative to the values' scale, and after E * N = 20 * 6 = 120 steps by <= 6000u = 7e-13
while lr = 0.01 keeps the step map's growth near 1. RTOL = 1e-11 allows 15x for mild growth (one
question seed's loss grows from 0.3 to 2); measured: <= 3e-14. Losses are compared at each seed's
scale (its largest epoch loss), as a small loss carries the absolute round-off of its errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import studies.cli.bench as bench_cli
import studies.speed as speed
from diagnostics.data import question_data
from diagnostics.presets import PRESETS
from diagnostics.train import train

RTOL = 1e-11


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("batch", ["online", "full"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("preset", ["fixed", "question"])
def test_torch_bmm_losses_match_the_numpy_engine_from_the_same_initial_parameters(
        preset, activation, batch):
    _torch()
    cfg = PRESETS[preset].replace(activation=activation, lr=0.01, epochs=20, batch=batch,
                                  layers=(2, 8, 8, 1))
    data = question_data()
    ref = train(cfg, data, 6, engine="numpy", loss_epochs=range(1, 21))
    loss, seconds = speed.torch_bmm_train(cfg, data, ref.initial_params)
    assert loss.shape == ref.loss.shape == (20, 6) and seconds > 0
    assert np.isfinite(ref.loss).all() and (ref.loss[-1] < ref.loss[0]).any()  # it trains
    scale = np.abs(ref.loss).max(axis=0)
    assert (np.abs(loss - ref.loss) <= RTOL * scale).all()


def test_torch_bmm_is_one_thread_and_restores_torch_threads():
    torch = _torch()
    before = torch.get_num_threads()
    cfg = PRESETS["fixed"].replace(activation="tanh", epochs=2)
    speed.torch_bmm_train(cfg, question_data(), speed.initial_params(cfg, 3))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "change, named",
    [({"optimizer": "adam"}, "adam"), ({"batch": 2}, "2"), ({"activation": "elu"}, "elu")],
)
def test_torch_bmm_rejects_what_it_does_not_run_naming_it(change, named):
    _torch()
    cfg = PRESETS["fixed"].replace(epochs=1, **change)
    with pytest.raises(ValueError, match=named):
        speed.torch_bmm_train(cfg, question_data(), speed.initial_params(cfg, 2))


def test_initial_params_are_the_engines():
    cfg = PRESETS["fixed"].replace(layers=(2, 5, 3, 1), init="xavier_normal", epochs=1)
    ref = train(cfg, seeds=4).initial_params
    for (W, b), (Wr, br) in zip(speed.initial_params(cfg, 4), ref, strict=True):
        np.testing.assert_array_equal(W, Wr)
        np.testing.assert_array_equal(b, br)


def _tiny_scaling():
    return speed.scaling(widths=(3,), depth=2, depth_width=3, S=4, rounds=1, work=2e3,
                         batches=("online",))


def test_scaling_rows_carry_torch_when_installed_and_none_otherwise(monkeypatch):
    rows = _tiny_scaling()
    assert [r["network"] for r in rows] == ["2-3-3-1", "2-2x3-1"]
    with_torch = speed.torch_available()
    for r in rows:
        contenders = ["numpy", "kernel", "matmul"] + (["torch"] if with_torch else [])
        assert all(r[k] > 0 for k in contenders)
        assert r["best"] == max(contenders, key=r.get)
        assert (r["torch"] is None) == (not with_torch)
    monkeypatch.setattr(speed, "torch_available", lambda: False)
    for r in _tiny_scaling():
        assert r["torch"] is None and r["best"] != "torch" and set(r["rounds"]) == {
            "numpy", "kernel", "matmul"}


def test_scaling_table_says_when_torch_is_not_installed(monkeypatch, capsys):
    row = {"network": "2-4-4-1", "samples": 6, "batch": "online", "params": 37, "numpy": 1.0,
           "kernel": 3.0, "matmul": 2.0, "torch": None, "best": "kernel"}
    monkeypatch.setattr(bench_cli, "scaling", lambda **kwargs: [dict(row)])
    monkeypatch.setattr(bench_cli, "torch_available", lambda: False)
    bench_cli._print_scaling(bench_cli.argparse.Namespace(repeats=1), 0.1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].split()[-5:] == ["n/a", "(torch", "not", "installed)", "kernel"]
    assert len(lines) == 4 and "torch" in lines[1]
