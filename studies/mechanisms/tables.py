"""The mechanisms study's tables: tidy frames computed from its cells' results, written as CSV.

Conventions: ``reached`` = the epoch loss got to the threshold within the budget (the one budget
of the headline numbers; the tail run is read at that epoch); ``failed`` = not reached (stuck, not
converged or diverged); ``stuck`` = not reached and every component of the full-data gradient
exactly 0 at the end. Paired counts compare variants on the same seeds: ``rescued`` seeds are
bad in the reference arm and good with the variant, ``killed`` the reverse; ``mcnemar_p`` is the
exact two-sided McNemar test on them. ``faster`` / ``slower`` count paired seeds that reached
the threshold sooner / later with the variant (a seed that never reaches it counts as later than
any that does; seeds tied, both never reaching it included, count in neither), and ``speed_p`` is
the exact two-sided sign test on them (the same binomial test); ``epochs_ratio`` is the median,
over paired seeds that reached the threshold both times, of the variant's epochs to it over the
reference's (how much sooner or later, which the sign test does not say).

``alternatives``: the corrected program with one change at a time (``grid.ALTERNATIVES``), on the
corrected cells' first seeds, beside the corrected program on those seeds (``variant``
``corrected``); ``yours`` marks a change that puts back the question program's own setting.

``output_slope``, ``layer_ratios`` and ``bias_decay`` come from a second, observed pass of the
ReLU program and of the tanh and sigmoid programs up to the budget (``samples``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from diagnostics import theory
from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.intervals import bootstrap_ci, mcnemar_exact
from studies.stats.summaries import (
    epochs_summary,
    loss_bands,
    prefixed_proportion,
    survival_curves,
)

from .grid import (
    ALTERNATIVES,
    ASYMPTOTE_VARIANTS,
    FINE,
    INITS,
    LINEAR_VARIANTS,
    MOMENTUM,
    MOMENTUM_VARIANTS,
    TARGET_SCALE,
    budgets,
    is_users,
    record_schedule,
)
from .samples import (
    closed_form_factor,
    decay_steps,
    layer_ratios,
    sample_run,
)

LABELS = ["part", "variant", "activation", "lr"]
ARM = ["activation", "lr"]
TAIL_DECADES = 1.0  # the tail law is fitted over the last decade of epochs
THEORY_K = -1.0  # squared error ~ 1/t for a bounded output chasing its asymptote
N_BOOT = 2000
TOP_PRINTED = 5  # most frequent printed errors of failed seeds, per arm
_prop = prefixed_proportion


# ---- helpers (pure; tested by hand) ----------------------------------------------------------


def printed(loss: float) -> str:
    """What the program prints for an epoch error: ``"%f" % loss``."""
    return "%f" % loss  # noqa: UP031 -- the program's own format, verbatim


def dead_output_error(Y: np.ndarray) -> float:
    """The epoch error of an output that is 0 on every sample: mean over samples of sum_o y²."""
    Y = np.asarray(Y, dtype=np.float64)
    return float(np.mean(np.sum(Y**2, axis=1)))


def mean_target_error(Y: np.ndarray) -> float:
    """The epoch error of an output equal to the mean target on every sample: sum_o Var(y_o)."""
    Y = np.asarray(Y, dtype=np.float64)
    return float(np.sum(np.mean((Y - Y.mean(axis=0)) ** 2, axis=0)))


def paired_counts(good_before: Sequence[bool], good_after: Sequence[bool]) -> tuple[int, int]:
    """(rescued, killed) over paired seeds: bad before and good after, and the reverse."""
    b = np.asarray(good_before, dtype=bool)
    a = np.asarray(good_after, dtype=bool)
    return int((~b & a).sum()), int((b & ~a).sum())


def paired_speed(epochs_before: Sequence[float], epochs_after: Sequence[float]) -> tuple[int, int]:
    """(faster, slower) over paired seeds from epochs to the threshold (-1: never reached, later
    than any epoch): seeds whose epoch is lower after, and higher after; ties count in neither."""
    b, a = (np.asarray(x, dtype=np.float64) for x in (epochs_before, epochs_after))
    b, a = np.where(b >= 0, b, np.inf), np.where(a >= 0, a, np.inf)
    return int((a < b).sum()), int((a > b).sum())


def epochs_ratio(epochs_before: Sequence[float], epochs_after: Sequence[float]) -> float:
    """Median over paired seeds that reached the threshold both times of epochs after / epochs
    before (epochs to it count from 1; -1: never reached); nan when there are none."""
    b, a = (np.asarray(x, dtype=np.float64) for x in (epochs_before, epochs_after))
    both = (b >= 1) & (a >= 1)
    return float(np.median(a[both] / b[both])) if both.any() else math.nan


def loss_exponent(epochs: np.ndarray, loss: np.ndarray) -> float:
    """k of loss ∝ t^k: least-squares slope of log(loss) on log(epoch)."""
    x = np.log(np.asarray(epochs, dtype=np.float64))
    y = np.log(np.asarray(loss, dtype=np.float64))
    x = x - x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def tail_window(tail: int) -> tuple[int, int]:
    """The last decade of a run of ``tail`` epochs: [tail / 10, tail]."""
    return max(1, int(round(tail / 10**TAIL_DECADES))), tail


def still_decreasing(loss: np.ndarray) -> bool:
    """Finite, positive throughout, and lower at the end of the window than at its start."""
    loss = np.asarray(loss, dtype=np.float64)
    return bool(loss.size >= 3 and np.all(np.isfinite(loss)) and np.all(loss > 0)
                and loss[-1] < loss[0])


PLATEAU_BAND = 0.1  # within 10% of the mean-target error: the network predicts (nearly) the mean
PLATEAU_DECADES = 1.0  # sitting there for at least this many decades of epochs counts


def plateau_span(epochs: np.ndarray, loss: np.ndarray, level: float) -> float:
    """Decades of epochs (log10 last / first) a loss curve spends within PLATEAU_BAND of
    ``level``, from its first to its last recording there (0 when it never is)."""
    near = np.flatnonzero(np.abs(loss - level) <= PLATEAU_BAND * level)
    if near.size == 0:
        return 0.0
    first, last = epochs[near[0]], epochs[near[-1]]
    return float(np.log10(last / first))


def split_failures(reached, dead_initial, dead_final) -> np.ndarray:
    """Per seed: ``converged``, or a failure ``born_dead`` / ``died`` / ``alive`` (a partition)."""
    reached = np.asarray(reached, dtype=bool)
    d0 = np.asarray(dead_initial, dtype=bool)
    d1 = np.asarray(dead_final, dtype=bool)
    return np.where(reached, "converged", np.where(d0, "born_dead",
                                                   np.where(d1, "died", "alive"))).astype(str)


def revived_seeds(epochs: np.ndarray, gmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(zero at init, revived) per seed from max |gradient| at recordings ``(R, S)``.

    ``epochs`` (R,) must start at 0; a seed is revived when its gradient was exactly zero at
    epoch 0 and non-zero at some later recording.
    """
    gmax = np.asarray(gmax, dtype=np.float64)
    zero = gmax[0] == 0
    later = np.nan_to_num(gmax[1:], nan=0.0) > 0
    return zero, zero & later.any(axis=0)


# ---- the tables -------------------------------------------------------------------------------


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    budget, tail = budgets(opts)
    trained = [r for r in results if r.labels["part"] != "init"]
    per_seed = _per_seed(trained, budget)
    tail_loss = concat([r for r in trained if r.labels["part"] == "tail"], "loss")
    data = {r.labels["activation"]: r.cell.dataset() for r in trained}
    relu = [r for r in trained if r.labels["part"] == "relu" and r.labels["variant"] == "sgd"]
    observed = _observed(trained, budget)
    return {
        "per_seed": per_seed,
        "asymptote": _asymptote(per_seed, budget),
        "asymptote_survival": _asymptote_survival(per_seed, budget),
        "tail_fit": _tail_fit(tail_loss, tail),
        "tail_per_seed": _tail_per_seed(tail_loss, tail),
        "tail_loss": loss_bands(tail_loss, ARM) if len(tail_loss) else pd.DataFrame(),
        "linear_baseline": _linear(per_seed, budget),
        "momentum": _momentum(per_seed, budget),
        "dead_output_init": _dead_output_init([r for r in results if r.labels["part"] == "init"]),
        "relu_failures": _relu_failures(relu, per_seed, budget),
        "revived": _revived(relu, per_seed),
        "printed_error": _printed_error(per_seed, data, budget),
        "printed_signatures": _printed_signatures(per_seed, data),
        "corrected": _corrected(per_seed, budget),
        "alternatives": _alternatives(per_seed, budget),
        "plateau": _plateau(tail_loss, per_seed, data),
        "output_slope": _output_slope(observed),
        "layer_ratios": _layer_ratios(observed),
        "bias_decay": _bias_decay(observed),
    }


# ---- the observed second pass: output slope, layer ratios, bias decay ---------------------------

SLOPE_COLS = [*ARM, "epoch", "target", "pairs", "median", "q25", "q75", "mean", "max_slope"]
RATIO_COLS = [*ARM, "epoch", "quantity", "n", "n_defined", "median", "q25", "q75"]
BIAS_COLS = [*ARM, "epoch", "layer", "n", "steps", "factor", "log10_factor", "initial_median",
             "measured_median", "closed_form", "n_compared", "ratio_median", "ratio_max_dev",
             "subnormal_count"]
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)  # below it, round-off is no longer relative


def _observed(trained: list[CellResult], budget: int):
    """(arm, monitor, data, config) for the ReLU program and the tanh / sigmoid programs."""
    out = []
    for r in trained:
        part, variant = r.labels["part"], r.labels["variant"]
        if (part, variant) in (("relu", "sgd"), ("tail", "as_written")):
            m, data = sample_run(r.cell, budget, record_schedule(budget))
            arm = {"activation": r.labels["activation"], "lr": r.labels["lr"]}
            out.append((arm, m, data, r.cell.config))
    return out


def _quartiles(x: np.ndarray) -> dict:
    """median, q25, q75 of the finite values (nan when there are none)."""
    x = x[np.isfinite(x)]
    if not x.size:
        return {"median": math.nan, "q25": math.nan, "q75": math.nan}
    q25, med, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75)}


def _output_slope(observed) -> pd.DataFrame:
    """Per arm, recording and target value: act'(z_out) over (seed, sample with that target)."""
    rows = []
    for arm, m, data, config in observed:
        target = data.Y.mean(axis=1)  # one output: its target
        top = config.out_activation.max_grad
        for r, epoch in enumerate(m.epochs):
            for t in np.unique(target):
                x = m.slope[r][target == t].ravel()  # (samples with t, S)
                rows.append(arm | {"epoch": int(epoch), "target": float(t),
                                   "pairs": int(np.isfinite(x).sum())} | _quartiles(x)
                            | {"mean": float(np.nanmean(x)) if np.isfinite(x).any()
                               else math.nan, "max_slope": top})
    return pd.DataFrame(rows, columns=SLOPE_COLS)


def _layer_ratios(observed) -> pd.DataFrame:
    """Per arm and recording: the first/last hidden error ratio and weight-gradient ratio."""
    rows = []
    for arm, m, _, _ in observed:
        for quantity, values in layer_ratios(m).items():
            for r, epoch in enumerate(m.epochs):
                x = values[r]
                rows.append(arm | {"epoch": int(epoch), "quantity": quantity, "n": x.size,
                                   "n_defined": int(np.isfinite(x).sum())} | _quartiles(x))
    return pd.DataFrame(rows, columns=RATIO_COLS)


def _bias_decay(observed) -> pd.DataFrame:
    """‖b_l‖ per recording (median over seeds) against ‖b_l(0)‖ (1 - lr)^(steps · epoch).

    ``ratio_*`` compare measured with closed form per seed where the closed form is a normal
    float64 (``n_compared`` seeds). Below the smallest normal float64 (``subnormal_count``
    seeds) round-off takes over: once lr * b rounds to 0, b - lr * b is b again, and the decay
    stops at a few multiples of the smallest subnormal number instead of reaching 0.
    """
    rows = []
    for arm, m, data, config in observed:
        if config.bias_update != "decay" or config.optimizer != "sgd":
            continue  # the closed form is the program's own b -= lr * b
        steps = decay_steps(config, data.n_samples)
        initial = m.bias[0]  # (L, S)
        for r, epoch in enumerate(m.epochs):
            n_steps = steps * int(epoch)
            factor = closed_form_factor(config.lr, n_steps)
            for l in range(initial.shape[0]):
                measured, b0 = m.bias[r, l], initial[l]
                closed = b0 * factor
                ok = np.isfinite(measured) & (closed >= SMALLEST_NORMAL)
                ratio = measured[ok] / closed[ok]
                rows.append(arm | {
                    "epoch": int(epoch), "layer": l + 1, "n": int(np.isfinite(measured).sum()),
                    "steps": n_steps, "factor": factor,
                    "log10_factor": n_steps * math.log10(1.0 - config.lr),
                    "initial_median": float(np.nanmedian(b0)),
                    "measured_median": float(np.nanmedian(measured)),
                    "closed_form": float(np.nanmedian(b0)) * factor,
                    "n_compared": int(ok.sum()),
                    "ratio_median": float(np.median(ratio)) if ratio.size else math.nan,
                    "ratio_max_dev": float(np.max(np.abs(ratio - 1))) if ratio.size else math.nan,
                    "subnormal_count": int((measured < SMALLEST_NORMAL).sum())})
    return pd.DataFrame(rows, columns=BIAS_COLS)


def _plateau(loss: pd.DataFrame, per_seed: pd.DataFrame, data: dict) -> pd.DataFrame:
    """Long-run seeds that sat at the error of predicting the mean target (a plateau, where
    the output ignores its inputs) for at least a decade of epochs, and how many left it."""
    cols = [*ARM, "n", "level", *[f"{p}_{k}" for p in ("sat", "left")
                                   for k in ("count", "share", "ci_low", "ci_high")],
            "decades_median"]
    rows = []
    tail = per_seed[per_seed.part == "tail"].set_index(["activation", "lr", "seed"])
    for (a, lr), part in loss.groupby(ARM, sort=False):
        level = mean_target_error(data[a].Y)
        m = part.pivot(index="epoch", columns="seed", values="loss").sort_index()
        epochs = m.index.to_numpy(dtype=float)
        spans = np.array([plateau_span(epochs, m[s].to_numpy(), level) for s in m.columns])
        sat = spans >= PLATEAU_DECADES
        # left: reached the threshold within the long run after sitting there
        reached = np.array([bool(tail.loc[(a, lr, s), "reached_long"]) for s in m.columns])
        n = len(spans)
        rows.append({"activation": a, "lr": lr, "n": n, "level": level}
                    | _prop("sat", int(sat.sum()), n)
                    | _prop("left", int((sat & reached).sum()), int(sat.sum()))
                    | {"decades_median": float(np.median(spans[sat])) if sat.any() else 0.0})
    return pd.DataFrame(rows, columns=cols)


def _corrected(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The corrected program beside the program as written and the single linear neuron: share
    reaching the threshold and 1e-6 within the budget, median epochs, share printing 0.000000."""
    parts = {("relu", "sgd"): "as_written", ("asymptote", "as_written"): "as_written",
             ("corrected", "corrected"): "corrected"}
    rows = []
    for (part, variant), label in parts.items():
        sel = per_seed[(per_seed.part == part) & (per_seed.variant == variant)]
        for (a, lr), arm in sel.groupby(ARM, sort=False):
            rows.append(_corrected_row(a, lr, label, arm, budget))
    lin = per_seed[(per_seed.part == "linear") & (per_seed.variant == "as_written")]
    for lr, arm in lin.groupby("lr", sort=False):
        rows.append(_corrected_row("identity", lr, "single_neuron", arm, budget))
    cols = ["activation", "lr", "program", "n", "budget", "threshold", "fine",
            *[f"{p}_{k}" for p in ("reached", "reached_fine", "reads_zero")
              for k in ("count", "share", "ci_low", "ci_high")],
            "median", "median_ci_low", "median_ci_high", "q25", "q75"]
    return pd.DataFrame(rows, columns=cols)


def _corrected_row(act: str, lr: float, program: str, arm: pd.DataFrame, budget: int) -> dict:
    n = len(arm)
    return ({"activation": act, "lr": lr, "program": program, "n": n, "budget": budget,
             "threshold": float(arm.threshold.iloc[0]), "fine": FINE}
            | _prop("reached", int(arm.reached.sum()), n)
            | _prop("reached_fine", int(arm.reached_fine.sum()), n)
            | _prop("reads_zero", int((arm.printed == printed(0.0)).sum()), n)
            | _epochs(arm))


ALT_COLS = [*ARM, "variant", "yours", "n", "budget", "threshold",
            *[f"reached_{k}" for k in ("count", "share", "ci_low", "ci_high")],
            "median", "median_ci_low", "median_ci_high", "q25", "q75",
            *[f"diverged_{k}" for k in ("count", "share", "ci_low", "ci_high")],
            "paired", "rescued", "killed", "mcnemar_p", "faster", "slower", "speed_p",
            "epochs_ratio"]


def _alternatives(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Per arm: the corrected program on the alternatives' seeds, then each alternative with its
    paired counts against it (reaching the threshold, and how soon)."""
    parts = {"corrected": "corrected", **{v: "alternative" for v in ALTERNATIVES}}
    rows = []
    for arm, by in _arm_rows(per_seed, parts, list(parts)):
        base = by.get("corrected")
        alts = {v: part for v, part in by.items() if v != "corrected"}
        if base is None or not alts:
            continue
        seeds = np.unique(np.concatenate([part.seed.to_numpy() for part in alts.values()]))
        base = base[base.seed.isin(seeds)]  # the corrected program on the same seeds
        for v, part in {"corrected": base, **alts}.items():
            n = len(part)
            row = arm | {"variant": v, "yours": v != "corrected" and is_users(v), "n": n,
                         "budget": budget, "threshold": float(part.threshold.iloc[0])}
            row |= _prop("reached", int(part.reached.sum()), n) | _epochs(part)
            row |= _prop("diverged", int((part.outcome == "diverged").sum()), n)
            if v == "corrected":
                row |= {"paired": n, "rescued": 0, "killed": 0, "mcnemar_p": math.nan,
                        "faster": 0, "slower": 0, "speed_p": math.nan,
                        "epochs_ratio": epochs_ratio(part.epochs_to_threshold,
                                                     part.epochs_to_threshold)}
            else:
                row |= _paired(base, part, "reached") | _paired_speed(base, part)
            rows.append(row)
    return pd.DataFrame(rows, columns=ALT_COLS)


def _paired_speed(base: pd.DataFrame, other: pd.DataFrame) -> dict:
    """faster, slower, the sign test's p and the median epochs ratio of ``other`` against
    ``base`` on their common seeds."""
    common = np.intersect1d(base.seed, other.seed)
    b, o = (x.set_index("seed").epochs_to_threshold.reindex(common).to_numpy(dtype=float)
            for x in (base, other))
    faster, slower = paired_speed(b, o)
    return {"faster": faster, "slower": slower, "speed_p": mcnemar_exact(faster, slower),
            "epochs_ratio": epochs_ratio(b, o)}


def _per_seed(results: list[CellResult], budget: int) -> pd.DataFrame:
    """Every trained seed, read at the budget (the tail run too)."""
    frames = []
    for r in results:
        o = r.outcomes
        loss = r.loss
        at = loss[loss.epoch == budget].set_index("seed").loss
        e = o.epochs_to_threshold.to_numpy()
        reached = (e >= 0) & (e <= budget)
        frame = o[[*LABELS, "seed", "outcome"]].copy()
        frame["step_lr"] = r.cell.config.lr
        frame["threshold"] = r.cell.config.threshold
        frame["epochs"] = r.cell.config.epochs
        frame["reached"] = reached
        frame["reached_long"] = e >= 0  # at any epoch of the cell's own run (the tail: 20 budgets)
        frame["epochs_to_threshold"] = np.where(reached, e, -1)
        fine = o.get(f"epochs_to_{FINE:g}")
        frame["reached_fine"] = (False if fine is None else
                                 ((fine.to_numpy() >= 0) & (fine.to_numpy() <= budget)))
        frame["loss_at_budget"] = at.reindex(o.seed.to_numpy()).to_numpy()
        frame["printed"] = [printed(x) for x in frame.loss_at_budget]
        frame["stuck"] = (o.outcome == "stuck").to_numpy()
        frame["max_abs_grad"] = o.max_abs_grad.to_numpy()
        frames.append(frame)
    cols = [*LABELS, "seed", "outcome", "step_lr", "threshold", "epochs", "reached",
            "reached_long", "reached_fine",
            "epochs_to_threshold", "loss_at_budget", "printed", "stuck", "max_abs_grad"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def _arm_rows(per_seed: pd.DataFrame, parts: dict[str, str], variants: Sequence[str]):
    """Per arm (activation, lr): each variant's seeds, sorted by seed, in ``variants`` order.

    ``parts`` maps variant -> the part it was trained in.
    """
    out = []
    mask = np.zeros(len(per_seed), dtype=bool)
    for v, p in parts.items():
        mask |= ((per_seed.variant == v) & (per_seed.part == p)).to_numpy()
    picked = per_seed[mask]
    for key, part in picked.groupby(ARM, sort=False):
        by_variant = {v: part[part.variant == v].sort_values("seed") for v in variants
                      if (part.variant == v).any()}
        out.append((dict(zip(ARM, key, strict=True)), by_variant))
    return out


def _paired(base: pd.DataFrame, other: pd.DataFrame, good: str) -> dict:
    """rescued, killed and McNemar p of ``other`` against ``base`` on their common seeds."""
    common = np.intersect1d(base.seed, other.seed)
    b = base.set_index("seed")[good].reindex(common).to_numpy(dtype=bool)
    o = other.set_index("seed")[good].reindex(common).to_numpy(dtype=bool)
    rescued, killed = paired_counts(b, o)
    return {"paired": len(common), "rescued": rescued, "killed": killed,
            "mcnemar_p": mcnemar_exact(rescued, killed)}


def _epochs(part: pd.DataFrame) -> dict:
    s = epochs_summary(part, []).iloc[0]
    return {k: s[k] for k in ("median", "median_ci_low", "median_ci_high", "q25", "q75")}


def _asymptote(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    parts = {v: "asymptote" for v in ASYMPTOTE_VARIANTS}
    rows = []
    for arm, by in _arm_rows(per_seed, parts, ASYMPTOTE_VARIANTS):
        base = by.get("as_written")
        for v, part in by.items():
            n = len(part)
            scale = TARGET_SCALE**2 if v == "halved_targets" else 1.0
            loss = part.loss_at_budget / scale  # in the user's units (predictions mapped back)
            row = arm | {"variant": v, "n": n, "budget": budget,
                         "threshold": float(part.threshold.iloc[0]) / scale,
                         "trained_threshold": float(part.threshold.iloc[0])}
            row |= _prop("reached", int(part.reached.sum()), n) | _epochs(part)
            row |= {"loss_median": float(loss.median())}
            if base is not None and v != "as_written":
                row |= _paired(base, part, "reached")
            else:
                row |= {"paired": n, "rescued": 0, "killed": 0, "mcnemar_p": math.nan}
            rows.append(row)
    return pd.DataFrame(rows)


def _asymptote_survival(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    s = per_seed[per_seed.part.isin(["asymptote", "linear"])]
    if not len(s):
        return pd.DataFrame(columns=[*ARM, "variant", "epoch", "not_converged"])
    return survival_curves(s, [*ARM, "variant"], budget)


def _tail_matrix(loss: pd.DataFrame, tail: int):
    """Per arm: (epochs in the window (R,), loss (R, S), seeds (S,))."""
    lo, hi = tail_window(tail)
    for key, part in loss.groupby(ARM, sort=False):
        w = part[(part.epoch >= lo) & (part.epoch <= hi)]
        m = w.pivot(index="epoch", columns="seed", values="loss").sort_index()
        yield dict(zip(ARM, key, strict=True)), m.index.to_numpy(), m.to_numpy(), m.columns


def _tail_per_seed(loss: pd.DataFrame, tail: int) -> pd.DataFrame:
    cols = [*ARM, "seed", "fit_from", "fit_to", "points", "decreasing", "k", "loss_from",
            "loss_to"]
    rows = []
    if not len(loss):
        return pd.DataFrame(columns=cols)
    lo, hi = tail_window(tail)
    for arm, epochs, m, seeds in _tail_matrix(loss, tail):
        for j, seed in enumerate(seeds):
            y = m[:, j]
            ok = still_decreasing(y)
            rows.append(arm | {"seed": int(seed), "fit_from": lo, "fit_to": hi,
                               "points": int(len(y)), "decreasing": ok,
                               "k": loss_exponent(epochs, y) if ok else math.nan,
                               "loss_from": float(y[0]), "loss_to": float(y[-1])})
    return pd.DataFrame(rows, columns=cols)


def _tail_fit(loss: pd.DataFrame, tail: int) -> pd.DataFrame:
    cols = [*ARM, "budget", "fit_from", "fit_to", "n", "fitted", "k_median", "k_ci_low",
            "k_ci_high", "k_q25", "k_q75", "theory_k", "loss_median_from", "loss_median_to",
            "median_curve_k"]
    ps = _tail_per_seed(loss, tail)
    rows = []
    for arm, epochs, m, _ in _tail_matrix(loss, tail) if len(loss) else []:
        part = ps[(ps.activation == arm["activation"]) & (ps.lr == arm["lr"])]
        k = part.k.dropna().to_numpy()
        med, lo, hi = bootstrap_ci(k, np.median, n_boot=N_BOOT, seed=0)
        curve = np.nanmedian(m, axis=1)
        rows.append(arm | {
            "budget": tail, "fit_from": int(part.fit_from.iloc[0]),
            "fit_to": int(part.fit_to.iloc[0]), "n": len(part), "fitted": int(k.size),
            "k_median": med, "k_ci_low": lo, "k_ci_high": hi,
            "k_q25": float(np.quantile(k, 0.25)) if k.size else math.nan,
            "k_q75": float(np.quantile(k, 0.75)) if k.size else math.nan,
            "theory_k": THEORY_K, "loss_median_from": float(curve[0]),
            "loss_median_to": float(curve[-1]),
            "median_curve_k": loss_exponent(epochs, curve) if still_decreasing(curve)
            else math.nan})
    return pd.DataFrame(rows, columns=cols)


def _linear(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    rows = []
    lin = per_seed[per_seed.part == "linear"]
    for (lr, v), part in lin.groupby(["lr", "variant"], sort=False):
        n = len(part)
        rows.append({"lr": lr, "variant": v, "n": n, "budget": budget,
                     "threshold": float(part.threshold.iloc[0])}
                    | _prop("reached", int(part.reached.sum()), n)
                    | _prop("stuck", int(part.stuck.sum()), n)
                    | _prop("diverged", int((part.outcome == "diverged").sum()), n)
                    | _epochs(part) | {"loss_median": float(part.loss_at_budget.median())})
    out = pd.DataFrame(rows)
    if len(out):
        order = {v: i for i, v in enumerate(LINEAR_VARIANTS)}
        out = out.sort_values(["lr", "variant"], key=lambda c: c.map(order) if c.name ==
                              "variant" else c, kind="stable", ignore_index=True)
    return out


def _momentum(per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    parts = {v: "relu" for v in MOMENTUM_VARIANTS}
    rows = []
    for arm, by in _arm_rows(per_seed, parts, MOMENTUM_VARIANTS):
        base = by.get("sgd")
        for v, part in by.items():
            n = len(part)
            part = part.assign(not_stuck=~part.stuck.astype(bool))
            row = arm | {"variant": v, "step_lr": float(part.step_lr.iloc[0]),
                         "momentum": MOMENTUM if v != "sgd" else 0.0, "n": n, "budget": budget,
                         "threshold": float(part.threshold.iloc[0])}
            row |= _prop("converged", int(part.reached.sum()), n)
            row |= _prop("stuck", int(part.stuck.sum()), n)
            row |= _prop("not_converged", int((~part.reached & ~part.stuck
                                               & (part.outcome != "diverged")).sum()), n)
            row |= _prop("diverged", int((part.outcome == "diverged").sum()), n)
            row |= _epochs(part)
            for what, good in (("stuck", "not_stuck"), ("converged", "reached")):
                if base is not None and v != "sgd":
                    p = _paired(base.assign(not_stuck=~base.stuck.astype(bool)), part, good)
                else:
                    p = {"paired": n, "rescued": 0, "killed": 0, "mcnemar_p": math.nan}
                row |= {f"{what}_{k}": val for k, val in p.items() if k != "paired"}
            rows.append(row)
    return pd.DataFrame(rows)


def _metric(metrics: pd.DataFrame, name: str, layer: int, epoch: int) -> pd.Series:
    m = metrics[(metrics.metric == name) & (metrics.layer == layer) & (metrics.epoch == epoch)]
    return m.set_index("seed").value


def _dead_output_init(results: list[CellResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        c = r.cell.config
        n_layers = len(c.layers) - 1
        seeds = r.outcomes.seed.to_numpy()
        m = r.metrics
        out_dead = _metric(m, "dead_fraction", n_layers, 0).reindex(seeds).fillna(0) >= 1
        net_dead = _metric(m, "network_dead", 0, 0).reindex(seeds).fillna(0) == 1
        layer1 = _metric(m, "dead_fraction", 1, 0).reindex(seeds).fillna(0)
        width = c.layers[1]
        k_units = int(round(float(layer1.sum()) * width))
        same_scale = c.init == "standard_normal" and c.bias_init == "normal" \
            and c.bias_scale == 1.0
        X = r.cell.dataset().X
        rows.append({"activation": r.labels["activation"], "lr": r.labels["lr"],
                     "init": r.labels["variant"], "weights": c.init, "bias": c.bias_init,
                     "layers": "-".join(map(str, c.layers)), "n": len(seeds),
                     "units": len(seeds) * width}
                    | _prop("output_dead", int(out_dead.sum()), len(seeds))
                    | _prop("network_dead", int(net_dead.sum()), len(seeds))
                    | _prop("layer1_unit_dead", k_units, len(seeds) * width)
                    | {"layer1_unit_theory": theory.dead_probability(X) if same_scale
                       else math.nan})
    out = pd.DataFrame(rows)
    if len(out):
        order = {v: i for i, v in enumerate(INITS)}
        out = out.assign(_o=out.init.map(order)).sort_values(
            [*ARM, "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return out


def _dead_flags(r: CellResult) -> pd.DataFrame:
    """network_dead at epoch 0 and at the last recording, per seed."""
    m = r.metrics
    seeds = r.outcomes.seed.to_numpy()
    last = int(m.epoch.max()) if len(m) else 0
    d0 = _metric(m, "network_dead", 0, 0).reindex(seeds).fillna(0).to_numpy() == 1
    d1 = _metric(m, "network_dead", 0, last).reindex(seeds).fillna(0).to_numpy() == 1
    return pd.DataFrame({"seed": seeds, "dead_initial": d0, "dead_final": d1})


def _relu_failures(relu: list[CellResult], per_seed: pd.DataFrame, budget: int) -> pd.DataFrame:
    rows = []
    for r in relu:
        a, lr = r.labels["activation"], r.labels["lr"]
        ps = per_seed[(per_seed.part == "relu") & (per_seed.variant == "sgd")
                      & (per_seed.activation == a) & (per_seed.lr == lr)]
        f = _dead_flags(r).merge(ps[["seed", "reached"]], on="seed")
        cat = split_failures(f.reached, f.dead_initial, f.dead_final)
        n = len(f)
        row = {"activation": a, "lr": lr, "n": n, "budget": budget}
        row |= _prop("converged", int((cat == "converged").sum()), n)
        row |= _prop("failed", int((cat != "converged").sum()), n)
        for c in ("born_dead", "died", "alive"):
            row |= _prop(c, int((cat == c).sum()), n)
        row |= _prop("dead_initial", int(f.dead_initial.sum()), n)
        rows.append(row)
    return pd.DataFrame(rows)


def _revived(relu: list[CellResult], per_seed: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in relu:
        a, lr = r.labels["activation"], r.labels["lr"]
        m = r.metrics[r.metrics.metric.isin(["grad_norm_W", "grad_norm_b"])]
        g = m.groupby(["epoch", "seed"]).value.max().unstack("seed").sort_index()
        seeds = r.outcomes.seed.to_numpy()
        g = g.reindex(columns=seeds)
        zero, revived = revived_seeds(g.index.to_numpy(), g.to_numpy())
        ps = per_seed[(per_seed.part == "relu") & (per_seed.variant == "sgd")
                      & (per_seed.activation == a) & (per_seed.lr == lr)].set_index("seed")
        reached = ps.reached.reindex(seeds).to_numpy(dtype=bool)
        stuck = ps.stuck.reindex(seeds).to_numpy(dtype=bool)
        first = [int(g.index[1:][np.nan_to_num(g.to_numpy()[1:, j]) > 0][0])
                 for j in np.flatnonzero(revived)]
        n = len(seeds)
        rows.append({"activation": a, "lr": lr, "n": n, "recordings": len(g)}
                    | _prop("zero_at_init", int(zero.sum()), n)
                    | _prop("revived", int(revived.sum()), int(zero.sum()))
                    | _prop("revived_converged", int((revived & reached).sum()),
                            int(revived.sum()))
                    | {"zero_at_init_converged_count": int((zero & reached).sum()),
                       "revived_stuck_at_end_count": int((revived & stuck).sum()),
                       "first_revival_median": float(np.median(first)) if first else math.nan})
    return pd.DataFrame(rows)


def _printed_arms(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The programs as written at the budget: the ReLU program and the asymptote's as-written
    arms (tanh, sigmoid)."""
    return per_seed[((per_seed.part == "relu") & (per_seed.variant == "sgd"))
                    | ((per_seed.part == "asymptote") & (per_seed.variant == "as_written"))]


def _printed_error(per_seed: pd.DataFrame, data: dict, budget: int) -> pd.DataFrame:
    rows = []
    for (a, lr), part in _printed_arms(per_seed).groupby(ARM, sort=False):
        Y = data[a].Y
        dead, mean = dead_output_error(Y), mean_target_error(Y)
        n = len(part)
        failed = part[~part.reached.astype(bool)]
        nf = len(failed)
        rows.append({"activation": a, "lr": lr, "n": n, "budget": budget}
                    | _prop("reads_zero", int((part.printed == printed(0.0)).sum()), n)
                    | {"dead_output_error": dead, "mean_target_error": mean, "failed": nf}
                    | _prop("failed_dead_output", int((failed.printed == printed(dead)).sum()),
                            nf)
                    | _prop("failed_mean_target", int((failed.printed == printed(mean)).sum()),
                            nf))
    return pd.DataFrame(rows)


def _printed_signatures(per_seed: pd.DataFrame, data: dict) -> pd.DataFrame:
    cols = [*ARM, "printed", "count", "failed", "share_of_failed", "signature"]
    rows = []
    for (a, lr), part in _printed_arms(per_seed).groupby(ARM, sort=False):
        Y = data[a].Y
        names = {printed(dead_output_error(Y)): "dead output",
                 printed(mean_target_error(Y)): "mean target"}
        failed = part[~part.reached.astype(bool)]
        counts = failed.printed.value_counts()
        counts = counts[counts >= 2].head(TOP_PRINTED)  # a value several seeds print
        for text, count in counts.items():
            rows.append({"activation": a, "lr": lr, "printed": text, "count": int(count),
                         "failed": len(failed), "share_of_failed": count / len(failed),
                         "signature": names.get(text, "")})
    return pd.DataFrame(rows, columns=cols)
