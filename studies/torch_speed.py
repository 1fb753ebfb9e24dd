"""Speed of the torch adapter: the instruments' overhead and vmap against a loop over seeds.

Pure functions returning rows (dicts); nothing here asserts a time. Needs the optional extra torch
(and scikit-learn for the digits network). Wall time is taken with ``time.perf_counter`` around
``run_seeds`` (which also reports the time spent observing, ``monitor.seconds``). On a shared
machine the wall-time ratio of two separate runs is noisy; ``ratio_inside_run`` (training plus
observing over training alone, within one run, as ``actdiag bench --only instruments``) is less.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from diagnostics.data import question_data
from diagnostics.monitor import DEFAULT_EVERY

from .torch_digits_core import LAYERS as DIGITS_LAYERS
from .torch_digits_core import digits_data, make_mlp

QUESTION_LAYERS = (2, 4, 4, 1)


def workloads(quick: bool = False) -> dict[str, dict]:
    """Named workloads: the question's network (online SGD) and the digits MLP (batches of 32)."""
    return {
        "question 2-4-4-1 relu, online": dict(
            make_model=make_mlp(QUESTION_LAYERS, "relu"), data=question_data(), batch="online",
            lr=0.01, epochs=100 if quick else 1000, loop_epochs=10 if quick else 50,
        ),
        "digits 64-32-32-10 relu, batch 32": dict(
            make_model=make_mlp(DIGITS_LAYERS, "relu"), data=digits_data(), batch=32,
            lr=0.05, epochs=2 if quick else 5, loop_epochs=1,
        ),
    }


def _sgd(lr: float) -> Callable:
    import torch

    return lambda p: torch.optim.SGD(p, lr=lr)


def timed_run(w: dict, seeds: int, epochs: int, **kw) -> tuple[float, object]:
    """(wall seconds, result) of one ``run_seeds`` call on workload ``w``."""
    from diagnostics.torch_adapter import run_seeds

    started = time.perf_counter()
    res = run_seeds(w["make_model"], _sgd(w["lr"]), w["data"], seeds, epochs,
                    batch=w["batch"], **kw)
    return time.perf_counter() - started, res


def hook_overhead(w: dict, seeds: int = 100, every: str = DEFAULT_EVERY) -> dict:
    """Vectorized training with and without every instrument on ``every``: the time ratio."""
    plain, _ = timed_run(w, seeds, w["epochs"], vectorize=True)
    recorded, res = timed_run(w, seeds, w["epochs"], vectorize=True, record="all",
                              record_every=every)
    return {
        "seeds": seeds, "epochs": w["epochs"], "schedule": every,
        "recordings": int(res.monitor.epochs.size),
        "plain_s": plain, "recorded_s": recorded, "ratio": recorded / plain,
        "observing_s": res.monitor.seconds,
        "ratio_inside_run": res.seconds / (res.seconds - res.monitor.seconds),
    }


def vmap_vs_loop(w: dict, seeds: int = 100) -> dict:
    """Seed-epochs per second, vectorized (vmap) and one seed after another, no instruments."""
    vec, _ = timed_run(w, seeds, w["loop_epochs"], vectorize=True)
    loop, _ = timed_run(w, seeds, w["loop_epochs"], vectorize=False)
    n = seeds * w["loop_epochs"]
    return {"seeds": seeds, "epochs": w["loop_epochs"], "vmap_seed_epochs_per_s": n / vec,
            "loop_seed_epochs_per_s": n / loop, "speedup": loop / vec}


def measure(seeds: int = 100, quick: bool = False) -> list[dict]:
    """Both measurements on every workload, one row each."""
    import torch

    rows = []
    for name, w in workloads(quick).items():
        timed_run(w, 2, 1, vectorize=True, record="all")  # warm up both paths' first calls
        timed_run(w, 2, 1, vectorize=False)
        rows.append({"workload": name, "measure": "hook_overhead", "threads":
                     torch.get_num_threads()} | hook_overhead(w, seeds))
        rows.append({"workload": name, "measure": "vmap_vs_loop", "threads":
                     torch.get_num_threads()} | vmap_vs_loop(w, seeds))
    return rows
