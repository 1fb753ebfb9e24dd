"""Speed of the engines, measured: pure functions that return rows (dicts); ``main`` prints them.

program_vs_engines  the user's program (``diagnostics.naive.run_program``, one seed) against the
                    numpy engine and the compiled engine at S = 1 ... 100,000 seeds: the question
                    preset with tanh, lr 0.1, online SGD, float64. Seed-epochs per second of the
                    training loop (``Result.seconds``; initial draws excluded on both sides).
scaling             layers 2-W-W-1 for W = 4, 16, 64, 256 and ten hidden layers of 16, online and
                    full-batch: numpy engine, the compiled kernel, and the batched-matmul path.
compile_times       numba's compile time (fresh cache), loading from a warm cache, in memory.

Every figure is the median over rounds; within a round the contenders run in a shuffled order,
so machine load hits all alike. The engines are single-threaded; the matmul path uses BLAS, so
measure it with OMP_NUM_THREADS=1 (as ``actdiag bench`` is documented to be run).

``actdiag bench`` prints them (sections engine, scaling, compile).
"""

from __future__ import annotations

import importlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from diagnostics.data import Dataset, question_data
from diagnostics.naive import run_program
from diagnostics.presets import PRESETS
from diagnostics.train import train

_train_module = importlib.import_module("diagnostics.train")
SIZES = (1, 100, 1000, 10_000, 100_000)
PROGRAM_EPOCHS = 300  # the user's loop: one seed, this many epochs per measurement


def engine_epochs(work: float, S: int, lo: int = 20, hi: int = 5000) -> int:
    """Epochs of one measurement of ``work`` seed-epochs at ensemble size S, within [lo, hi]."""
    return int(min(hi, max(lo, work // S)))


def program_vs_engines(
    sizes: Sequence[int] = SIZES, rounds: int = 3, work: float = 2e6, seed: int = 0
) -> list[dict]:
    """Seed-epochs/s of the user's program, the numpy engine and the compiled engine.

    Args:
        sizes: ensemble sizes S.
        rounds: repeats; each round runs every (contender, S) once, in a shuffled order.
        work: seed-epochs per numpy measurement (epochs = work / S, within 20..2000); the
            compiled engine gets five times as much (within 20..5000).
        seed: shuffles the order of the measurements.

    Returns:
        One row per S: epochs, median seed-epochs/s of each contender, the compiled engine's
        and the numpy engine's ratio to the program, and the raw values of every round.
    """
    config = PRESETS["question"].replace(activation="tanh", lr=0.1, dtype="float64")
    train(config.replace(epochs=2), seeds=2)  # compile (or load) the kernel outside the timing
    shuffle = random.Random(seed)
    values: dict[tuple[str, int], list[float]] = {}
    # the program runs once per size too (its rate does not depend on S): as many samples of it
    # as of each engine, spread over the round
    tasks = [(c, S) for S in sizes for c in ("program", "numpy", "compiled")]
    for r in range(rounds):
        order = tasks[:]
        shuffle.shuffle(order)
        for contender, S in order:
            if contender == "program":
                started = time.perf_counter()
                run_program(r, "tanh", PROGRAM_EPOCHS, config.lr)
                rate = PROGRAM_EPOCHS / (time.perf_counter() - started)
                S = 0
            else:
                fast = contender == "compiled"  # more work, so its timing is as long as numpy's
                epochs = engine_epochs(work * (5 if fast else 1), S, hi=5000 if fast else 2000)
                res = train(config.replace(epochs=epochs), seeds=S, loss_epochs=[epochs],
                            engine=contender)
                rate = S * epochs / res.seconds
            values.setdefault((contender, S), []).append(rate)
    program = statistics.median(values[("program", 0)])
    rows = []
    for S in sizes:
        numpy_rate = statistics.median(values[("numpy", S)])
        compiled_rate = statistics.median(values[("compiled", S)])
        rows.append({
            "S": S,
            "program": program,
            "numpy": numpy_rate,
            "compiled": compiled_rate,
            "numpy_x": numpy_rate / program,
            "compiled_x": compiled_rate / program,
            "rounds": {"program": values[("program", 0)], "numpy": values[("numpy", S)],
                       "compiled": values[("compiled", S)]},
        })
    return rows


def _kernel_only(fn, *args, **kwargs):
    """Run ``fn`` with the compiled engine never handing over to the matmul path."""
    saved = _train_module.MATMUL_MIN_WIDTH
    _train_module.MATMUL_MIN_WIDTH = 1 << 30
    try:
        return fn(*args, **kwargs)
    finally:
        _train_module.MATMUL_MIN_WIDTH = saved


def scaling(
    widths: Sequence[int] = (4, 16, 64, 256),
    depth: int = 10,
    depth_width: int = 16,
    S: int = 256,
    rounds: int = 3,
    work: float = 4e7,
    batches: Sequence[str] = ("online", "full"),
    samples: int | None = None,
    seed: int = 0,
) -> list[dict]:
    """Seed-epochs/s of numpy, the compiled kernel and matmul for wide and deep networks.

    The network is the ``fixed`` preset (tanh hidden, linear output, Xavier-normal weights,
    lr 0.01) on the question's six samples, or on ``samples`` random pairs (a + b) if given.
    ``work`` is parameter-seed-epochs per measurement (divided by the batch steps' samples).

    Returns:
        One row per (network, batch): parameters, epochs, median seed-epochs/s of ``numpy``,
        ``kernel`` and ``matmul``, and ``best`` (the fastest).
    """
    base = PRESETS["fixed"].replace(activation="tanh", init="xavier_normal", lr=0.01)
    data = question_data()
    if samples:
        X = np.random.default_rng(seed).uniform(0.0, 1.0, (samples, 2))
        data = Dataset(f"add{samples}", X, X.sum(axis=1, keepdims=True))
    nets = {f"2-{w}-{w}-1": (2, w, w, 1) for w in widths}
    nets[f"2-{depth}x{depth_width}-1"] = (2, *([depth_width] * depth), 1)
    shuffle = random.Random(seed)
    runs = {
        "numpy": lambda cfg: train(cfg, data, S, loss_epochs=[cfg.epochs], engine="numpy"),
        "kernel": lambda cfg: _kernel_only(train, cfg, data, S, loss_epochs=[cfg.epochs]),
        "matmul": lambda cfg: train(cfg, data, S, loss_epochs=[cfg.epochs], engine="matmul"),
    }
    rows = []
    for name, layers in nets.items():
        P = sum(o * i + o for i, o in zip(layers[:-1], layers[1:], strict=True))
        for batch in batches:
            epochs = int(max(2, min(2000, work * 6 // (S * P * data.n_samples))))
            cfg = base.replace(layers=layers, batch=batch, epochs=epochs)
            _kernel_only(train, cfg.replace(epochs=1), data, 2)  # compile outside the timing
            values: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(rounds):
                order = list(runs)
                shuffle.shuffle(order)
                for contender in order:
                    values[contender].append(S * epochs / runs[contender](cfg).seconds)
            med = {k: statistics.median(v) for k, v in values.items()}
            rows.append({"network": name, "params": P, "samples": data.n_samples,
                         "batch": batch, "S": S,
                         "epochs": epochs, **med, "best": max(med, key=med.get),
                         "rounds": values})
    return rows


_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
from diagnostics import PRESETS, train
t1 = time.perf_counter()
cfg = PRESETS["question"].replace(epochs=2)
train(cfg, seeds=2)
t2 = time.perf_counter()
train(cfg, seeds=2)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def compile_times(repeats: int = 1) -> dict:
    """Seconds for the first float64 ``train`` call with an empty numba cache (compiling), with
    the cache warm (loading), and a second call in the same process; each in a fresh process."""
    cold, warm, again = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            for bucket in (cold, warm):
                out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env,
                                     capture_output=True, text=True, check=True).stdout.split()
                bucket.append(float(out[1]))
                again.append(float(out[2]))
    return {"compile": statistics.median(cold), "cache_warm": statistics.median(warm),
            "in_memory": statistics.median(again)}
