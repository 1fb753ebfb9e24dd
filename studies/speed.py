"""Speed of the engines, measured: pure functions that return rows (dicts); ``main`` prints them.

program_vs_engines  the user's program (``diagnostics.naive.run_program``, one seed) against the
                    numpy engine and the compiled engine at S = 1 ... 100,000 seeds: the question
                    preset with tanh, lr 0.1, online SGD, float64. Seed-epochs per second of the
                    training loop (``Result.seconds``; initial draws excluded on both sides).
scaling             layers 2-W-W-1 for W = 4, 16, 64, 256 and ten hidden layers of 16, online and
                    full-batch: numpy engine, the compiled kernel, the batched-matmul path, and
                    (when torch is installed) the same training written with ``torch.bmm`` over
                    the seed axis (``torch_bmm_train``): a speed reference, not another engine.
compile_times       numba's compile time (fresh cache), loading from a warm cache, in memory.

Every figure is the median over rounds; within a round the contenders run in a shuffled order,
so machine load hits all alike. The engines are single-threaded; the matmul path uses BLAS, so
measure it with OMP_NUM_THREADS=1 (as ``actdiag bench`` is documented to be run); torch runs with
``torch.set_num_threads(1)``.

``actdiag bench`` prints them (sections engine, scaling, compile).
"""

from __future__ import annotations

import importlib
import importlib.util
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
from diagnostics.initializers import draw_ensemble
from diagnostics.naive import run_program
from diagnostics.network import Layout
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
    saved = _train_module.MATMUL_MIN_WIDTH, _train_module.MATMUL_WIDE_WIDTH
    _train_module.MATMUL_MIN_WIDTH = _train_module.MATMUL_WIDE_WIDTH = 1 << 30
    try:
        return fn(*args, **kwargs)
    finally:
        _train_module.MATMUL_MIN_WIDTH, _train_module.MATMUL_WIDE_WIDTH = saved


def torch_available() -> bool:
    """Whether torch can be imported (it is an optional extra)."""
    return importlib.util.find_spec("torch") is not None


TORCH_ACTS = {  # name -> (fn, fn' from a = fn(z)): the activations torch_bmm_train knows
    "identity": (lambda z: z, None),
    "tanh": ("tanh", lambda a: 1.0 - a * a),
    "sigmoid": ("sigmoid", lambda a: a * (1.0 - a)),
    "relu": ("relu", lambda a: (a > 0).to(a.dtype)),
}


def torch_bmm_train(config, data: Dataset, initial: list[tuple[np.ndarray, np.ndarray]]
                    ) -> tuple[np.ndarray, float]:
    """Plain SGD on ``config``'s network in PyTorch, the seeds stacked on a batch axis.

    Forward ``z = b + W a`` by ``torch.baddbmm`` per layer (a: (S, n_in, B)), backward by
    ``torch.bmm`` (dW = dz a^T, dz_prev = W^T dz), the loss and dz = err * 2/B as the engines
    compute them, the quirks bias_update and backprop_weights as ``config`` says; float64 (or
    float32) tensors, one thread, no autograd. A speed reference for the scaling table: it sums
    in torch's order, so its numbers agree with the engines' to round-off, not bit for bit.

    Args:
        config: optimizer ``sgd``, batch ``online`` or ``full``, activations in ``TORCH_ACTS``.
        data: the samples, in data order.
        initial: per layer ``(W (S, n_out, n_in), b (S, n_out))``, e.g. a Result's
            ``initial_params``.

    Returns:
        ``(loss (epochs, S), seconds)``: each epoch's mean loss per seed, and the wall time of
        the training loop alone (tensors built before it, as ``train`` excludes its draws).
    """
    import torch

    acts = [config.hidden_activation.name] * (len(initial) - 1) + [config.out_activation.name]
    if config.optimizer != "sgd" or config.batch not in ("online", "full") or any(
            a not in TORCH_ACTS for a in acts):
        raise ValueError(f"torch_bmm_train runs plain SGD, batch online or full, activations "
                         f"{', '.join(TORCH_ACTS)}; got {config.optimizer}, {config.batch!r}, "
                         f"{', '.join(acts)}")
    dtype = {"float64": torch.float64, "float32": torch.float32}[config.dtype]
    fns = [getattr(torch, f) if isinstance(f, str) else f for f, _ in (TORCH_ACTS[a] for a in acts)]
    grads = [TORCH_ACTS[a][1] for a in acts]
    decay, updated = config.bias_update == "decay", config.backprop_weights == "updated"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Ws = [torch.tensor(W, dtype=dtype) for W, _ in initial]  # (S, o, i)
        bs = [torch.tensor(b, dtype=dtype).unsqueeze(2) for _, b in initial]  # (S, o, 1)
        S, N = Ws[0].shape[0], data.n_samples
        X = torch.tensor(data.X, dtype=dtype)
        Y = torch.tensor(data.Y, dtype=dtype)
        spans = [(n, n + 1) for n in range(N)] if config.batch == "online" else [(0, N)]
        batches = [(X[i:j].T.expand(S, -1, -1).contiguous(), Y[i:j].T.expand(S, -1, -1))
                   for i, j in spans]  # (S, n_in, B), (S, n_out, B)
        lr, E = config.lr, config.epochs
        losses = torch.zeros(E, S, dtype=dtype)
        started = time.perf_counter()
        with torch.no_grad():
            for e in range(E):
                for x, y in batches:
                    outs = [x]
                    for W, b, fn in zip(Ws, bs, fns, strict=True):
                        outs.append(fn(torch.baddbmm(b, W, outs[-1])))
                    err = outs[-1] - y
                    losses[e] += (err * err).sum(dim=(1, 2))
                    B = err.shape[2]
                    dz = err * (2.0 if B == 1 else 2.0 / B)
                    if grads[-1] is not None:
                        dz *= grads[-1](outs[-1])
                    for l in range(len(Ws) - 1, -1, -1):
                        W, b = Ws[l], bs[l]
                        dW = torch.bmm(dz, outs[l].transpose(1, 2))
                        db = b.clone() if decay else dz.sum(dim=2, keepdim=True)
                        if updated:
                            W -= lr * dW
                        if l > 0:
                            back = torch.bmm(W.transpose(1, 2), dz)
                            g = grads[l - 1]
                            dz = back if g is None else back * g(outs[l])
                        if not updated:
                            W -= lr * dW
                        b -= lr * db
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    return (losses / N).to(torch.float64).numpy(), seconds


def initial_params(config, S: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The engines' initial parameters of seeds 0..S-1 (``Result.initial_params``), drawn alone."""
    layout = Layout(config.layers)
    draws = draw_ensemble(config.layers, range(S), config.init, config.bias_init,
                          config.bias_scale, config.rng)
    return layout.unpack(layout.pack(draws, np.dtype(config.dtype)))


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
    """Seed-epochs/s of numpy, the compiled kernel, matmul and torch for wide and deep networks.

    The network is the ``fixed`` preset (tanh hidden, linear output, Xavier-normal weights,
    lr 0.01) on the question's six samples, or on ``samples`` random pairs (a + b) if given.
    ``work`` is parameter-seed-epochs per measurement (divided by the batch steps' samples).
    ``torch`` (``torch_bmm_train`` from the same initial parameters) is measured only when torch
    is installed; otherwise its entry is None.

    Returns:
        One row per (network, batch): parameters, epochs, median seed-epochs/s of ``numpy``,
        ``kernel``, ``matmul`` and ``torch``, and ``best`` (the fastest).
    """
    base = PRESETS["fixed"].replace(activation="tanh", init="xavier_normal", lr=0.01)
    data = question_data()
    if samples:
        X = np.random.default_rng(seed).uniform(0.0, 1.0, (samples, 2))
        data = Dataset(f"add{samples}", X, X.sum(axis=1, keepdims=True))
    nets = {f"2-{w}-{w}-1": (2, w, w, 1) for w in widths}
    nets[f"2-{depth}x{depth_width}-1"] = (2, *([depth_width] * depth), 1)
    shuffle = random.Random(seed)
    drawn: dict[tuple, list] = {}  # torch's initial parameters, drawn once per network

    def timed(name, cfg) -> float:
        """Seconds of one training loop of contender ``name``."""
        if name == "torch":
            if cfg.layers not in drawn:
                drawn[cfg.layers] = initial_params(cfg, S)
            return torch_bmm_train(cfg, data, drawn[cfg.layers])[1]
        if name == "kernel":
            return _kernel_only(train, cfg, data, S, loss_epochs=[cfg.epochs]).seconds
        return train(cfg, data, S, loss_epochs=[cfg.epochs], engine=name).seconds

    contenders = ["numpy", "kernel", "matmul"] + (["torch"] if torch_available() else [])
    rows = []
    for name, layers in nets.items():
        P = sum(o * i + o for i, o in zip(layers[:-1], layers[1:], strict=True))
        for batch in batches:
            epochs = int(max(2, min(2000, work * 6 // (S * P * data.n_samples))))
            cfg = base.replace(layers=layers, batch=batch, epochs=epochs)
            for contender in contenders:  # compile (numba), warm up (torch) outside the timing
                timed(contender, cfg.replace(epochs=1))
            values: dict[str, list[float]] = {k: [] for k in contenders}
            for _ in range(rounds):
                order = contenders[:]
                shuffle.shuffle(order)
                for contender in order:
                    values[contender].append(S * epochs / timed(contender, cfg))
            med = {k: statistics.median(v) for k, v in values.items()}
            rows.append({"network": name, "params": P, "samples": data.n_samples,
                         "batch": batch, "S": S, "epochs": epochs, "torch": None, **med,
                         "best": max(med, key=med.get), "rounds": values})
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
