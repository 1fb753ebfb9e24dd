"""The mechanisms study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studies.run.study import read_table
from studies.stats.values import Epochs, Rate

from .grid import MOMENTUM, TARGET_SCALE, VARIANT_LABELS

Arm = tuple[str, float]  # (activation, lr)
ARM_COLS = ["activation", "lr"]
ArmVariant = tuple[str, float, str]  # (activation, lr, variant)


@dataclass(frozen=True)
class ProgramResult:
    """One program (as written, corrected, a single neuron) with one activation, over the seeds."""

    reached: Rate  # epoch loss <= the threshold within the budget
    reached_fine: Rate  # epoch loss <= ``fine`` within the budget
    epochs: Epochs  # to the threshold
    reads_zero: Rate  # the error printed with %f at the budget reads 0.000000


@dataclass(frozen=True)
class Alternative:
    """The corrected program with one change (or none: the reference), on the same seeds."""

    change: str  # what was changed, in words
    yours: bool  # the change puts back the question program's own setting
    reached: Rate  # epoch loss <= the threshold within the budget
    epochs: Epochs  # to the threshold
    diverged: Rate
    rescued: int  # failed with the corrected program, reached with this change (0: reference)
    killed: int  # the reverse
    p: float  # exact McNemar test on rescued / killed (nan: reference)
    faster: int  # paired seeds that reached the threshold sooner with the change
    slower: int  # ... later (never reaching it: later than any)
    speed_p: float  # exact sign test on faster / slower (nan: reference)
    epochs_ratio: float  # median over seeds reaching it both times of epochs with / without


@dataclass(frozen=True)
class OutputSlope:
    """One program's output slope act'(z_out) and layer ratios over training (medians over seeds;
    the slope over the seeds' samples with one target value)."""

    seeds: int
    max_slope: float  # sup act': 1 for tanh and relu, 1/4 for sigmoid
    top_target: float  # the largest target value
    low_target: float  # the smallest
    top_init: float  # slope on the largest target before the first update
    top_end: float  # ... at the last recording (the budget)
    low_end: float  # slope on the smallest target at the budget
    top_mean_end: float  # mean slope on the largest target at the budget (relu: share that is on)
    end_epoch: int
    ratio_z_end: float  # first / last hidden error ratio at the budget
    ratio_z_min: float  # its smallest and largest median over the recordings
    ratio_z_max: float
    ratio_w_end: float  # first / output weight-gradient ratio at the budget
    ratio_w_min: float
    ratio_w_max: float

    @property
    def shrinks(self) -> bool:
        """The slope on the largest target ends below the ratio between the hidden layers and
        below its own start: the smaller factor of the two is the output unit's."""
        return self.top_end < min(self.ratio_z_end, self.top_init)


@dataclass(frozen=True)
class BiasDecay:
    """The program's b -= lr * b against the closed form ‖b(0)‖ (1 - lr)^(updates)."""

    seeds: int
    epoch: int  # the last recording where every seed's closed form is a normal float64
    factor: float  # (1 - lr)^(updates up to that epoch)
    ratio_median: float  # measured / closed form there: median over layers of the seed medians
    ratio_max_dev: float  # max |measured / closed form - 1| over seeds and layers
    subnormal_from: int | None  # first recording from which every seed's biases are below the
    # smallest normal float64 (round-off then stops the decay: ``floor``)
    floor: float | None  # median ‖b‖ of the layers at the last recording, when subnormal


@dataclass(frozen=True)
class MechanismsFindings:
    """Numbers of the seven experiments; rates over seeds, epochs censored at the budget."""

    layers: tuple[int, ...]  # the network, inputs first
    n_samples: int
    budget: int  # epochs of every headline number
    threshold: float  # converged: an epoch's loss <= this (in the user's units)
    # a. output asymptote (variants: as_written, halved_targets, linear_output)
    target_scale: float  # the halved-targets variant trains on y * target_scale
    asymptote_seeds: int
    asymptote_reached: dict[ArmVariant, Rate]  # reached the threshold within the budget
    asymptote_epochs: dict[ArmVariant, Epochs]
    asymptote_rescued: dict[ArmVariant, int]  # failed as written, reached with the variant
    asymptote_killed: dict[ArmVariant, int]  # the reverse
    asymptote_p: dict[ArmVariant, float]  # exact McNemar (nan for as_written)
    # b. tail law
    tail_budget: int  # epochs of the long run
    tail_seeds: int
    tail_fit_from: int  # the fit's window of epochs (the last decade)
    tail_fit_to: int
    tail_fitted: dict[Arm, int]  # seeds still decreasing over the window
    tail_k: dict[Arm, float]  # median over those seeds of k in loss ∝ t^k
    tail_k_lo: dict[Arm, float]  # 95% bootstrap CI of that median
    tail_k_hi: dict[Arm, float]
    tail_theory_k: float  # a bounded output chasing its asymptote: -1
    tail_final_loss: dict[Arm, float]  # median loss at the end of the long run
    # c. single linear neuron (variants: as_written, fixed)
    linear_layers: tuple[int, ...]
    linear_reached: dict[tuple[float, str], Rate]  # (lr, variant)
    linear_epochs: dict[tuple[float, str], Epochs]
    # d. momentum at a matched step (variants: sgd, momentum, momentum_matched)
    momentum: float  # beta
    momentum_step_lr: dict[ArmVariant, float]  # the lr each variant trained with
    momentum_stuck: dict[ArmVariant, Rate]
    momentum_converged: dict[ArmVariant, Rate]
    momentum_stuck_rescued: dict[ArmVariant, int]  # stuck with SGD, not with the variant
    momentum_stuck_killed: dict[ArmVariant, int]
    momentum_stuck_p: dict[ArmVariant, float]
    momentum_converged_rescued: dict[ArmVariant, int]  # failed with SGD, converged with it
    momentum_converged_killed: dict[ArmVariant, int]
    momentum_converged_p: dict[ArmVariant, float]
    # e. dead output at initialisation (inits: normal, xavier_normal, he_normal)
    init_seeds: int
    output_dead_init: dict[tuple[str, float, str], Rate]  # (activation, lr, init)
    layer1_unit_dead_init: dict[tuple[str, float, str], Rate]  # over first-layer units
    layer1_unit_dead_theory: float  # closed form, N(0,1) weights and biases
    relu_seeds: int
    relu_failed: dict[Arm, Rate]
    relu_born_dead: dict[Arm, Rate]  # output constant before the first update
    relu_died: dict[Arm, Rate]  # constant at the end only
    relu_failed_alive: dict[Arm, Rate]  # output still varies at the end
    # f. revived by the bias decay
    zero_gradient_init: dict[Arm, Rate]  # full-data gradient exactly 0 at epoch 0
    revived: dict[Arm, Rate]  # of those: non-zero at a later recording
    revived_converged: dict[Arm, Rate]  # of the revived: reached the threshold
    # g. "reaches zero"
    reads_zero: dict[Arm, Rate]  # printed error at the budget reads 0.000000
    dead_output_error: float  # what a dead output prints: mean of y²
    mean_target_error: float  # what the mean target prints: Var(y)
    failed_reads_dead_output: dict[Arm, Rate]  # over failed seeds
    failed_reads_mean_target: dict[Arm, Rate]
    # the mean-target plateau of the long runs
    plateau_level: float  # the error of predicting the mean target on every sample
    plateau_sat: dict[Arm, Rate]  # sat within 10% of it for at least a decade of epochs
    plateau_left: dict[Arm, Rate]  # of those: reached the threshold later in the long run
    plateau_decades: dict[Arm, float]  # median decades of epochs spent there (those that sat)
    # the corrected program beside the program as written and the single neuron
    fine: float  # the second loss level
    programs: dict[tuple[str, float, str], ProgramResult]  # (activation, lr, program)
    # the corrected program with one change at a time, on its first seeds (variant "corrected":
    # the corrected program itself on those seeds)
    alternative_seeds: int
    alternatives: dict[ArmVariant, Alternative]  # (activation, lr, variant)
    # the output unit's slope beside the layer ratios, and the bias decay, over training
    output_slope: dict[Arm, OutputSlope]
    bias_decay: dict[Arm, BiasDecay]


def _arm(r: dict) -> Arm:
    return str(r["activation"]), float(r["lr"])


def _av(r: dict, column: str = "variant") -> ArmVariant:
    return str(r["activation"]), float(r["lr"]), str(r[column])


def _rate(r: dict, prefix: str, n: float | None = None) -> Rate:
    if n is None:
        n = r.get("n", 0)
    n = 0 if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
    if n == 0:
        return Rate.of(0, 0)
    return Rate.from_row(r, prefix, n)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records") if len(frame) else []


def findings(tables_dir: Path) -> MechanismsFindings:
    cells = read_table(tables_dir, "cells")
    asym = _records(read_table(tables_dir, "asymptote"))
    tail = _records(read_table(tables_dir, "tail_fit"))
    lin = _records(read_table(tables_dir, "linear_baseline"))
    mom = _records(read_table(tables_dir, "momentum"))
    init = _records(read_table(tables_dir, "dead_output_init"))
    fail = _records(read_table(tables_dir, "relu_failures"))
    rev = _records(read_table(tables_dir, "revived"))
    pe = _records(read_table(tables_dir, "printed_error"))
    corr = _records(read_table(tables_dir, "corrected"))
    plat = _records(read_table(tables_dir, "plateau"))
    alts = _records(read_table(tables_dir, "alternatives"))
    tail_out = read_table(tables_dir, "tail_per_seed")
    main = cells[cells.part != "init"]
    budget = int(main[main.part != "tail"].epochs.max())  # the linear cells always run
    network = cells[cells.part.isin(["relu", "tail"])]
    tail_cells = cells[cells.part == "tail"]
    lin_cells = cells[cells.part == "linear"]
    return MechanismsFindings(
        layers=tuple(int(n) for n in str(network.layers.iloc[0]).split("-")) if len(network)
        else (),
        n_samples=int(main.n_samples.iloc[0]) if len(main) else 0,
        budget=budget,
        threshold=float(network.threshold.iloc[0]) if len(network) else math.nan,
        target_scale=TARGET_SCALE,
        asymptote_seeds=int(asym[0]["n"]) if asym else 0,
        asymptote_reached={_av(r): _rate(r, "reached") for r in asym},
        asymptote_epochs={_av(r): _epochs(r, budget) for r in asym},
        asymptote_rescued={_av(r): int(r["rescued"]) for r in asym},
        asymptote_killed={_av(r): int(r["killed"]) for r in asym},
        asymptote_p={_av(r): float(r["mcnemar_p"]) for r in asym},
        tail_budget=int(tail_cells.epochs.max()) if len(tail_cells) else 0,
        tail_seeds=int(tail_cells.seeds.min()) if len(tail_cells) else 0,
        tail_fit_from=int(tail[0]["fit_from"]) if tail else 0,
        tail_fit_to=int(tail[0]["fit_to"]) if tail else 0,
        tail_fitted={_arm(r): int(r["fitted"]) for r in tail},
        tail_k={_arm(r): float(r["k_median"]) for r in tail},
        tail_k_lo={_arm(r): float(r["k_ci_low"]) for r in tail},
        tail_k_hi={_arm(r): float(r["k_ci_high"]) for r in tail},
        tail_theory_k=float(tail[0]["theory_k"]) if tail else -1.0,
        tail_final_loss={(a, float(lr)): float(p.loss_to.median())
                         for (a, lr), p in tail_out.groupby(["activation", "lr"], sort=False)}
        if len(tail_out) else {},
        linear_layers=tuple(int(n) for n in str(lin_cells.layers.iloc[0]).split("-"))
        if len(lin_cells) else (),
        linear_reached={(float(r["lr"]), str(r["variant"])): _rate(r, "reached") for r in lin},
        linear_epochs={(float(r["lr"]), str(r["variant"])): _epochs(r, budget) for r in lin},
        momentum=MOMENTUM,
        momentum_step_lr={_av(r): float(r["step_lr"]) for r in mom},
        momentum_stuck={_av(r): _rate(r, "stuck") for r in mom},
        momentum_converged={_av(r): _rate(r, "converged") for r in mom},
        momentum_stuck_rescued={_av(r): int(r["stuck_rescued"]) for r in mom},
        momentum_stuck_killed={_av(r): int(r["stuck_killed"]) for r in mom},
        momentum_stuck_p={_av(r): float(r["stuck_mcnemar_p"]) for r in mom},
        momentum_converged_rescued={_av(r): int(r["converged_rescued"]) for r in mom},
        momentum_converged_killed={_av(r): int(r["converged_killed"]) for r in mom},
        momentum_converged_p={_av(r): float(r["converged_mcnemar_p"]) for r in mom},
        init_seeds=int(init[0]["n"]) if init else 0,
        output_dead_init={_av(r, "init"): _rate(r, "output_dead") for r in init},
        layer1_unit_dead_init={_av(r, "init"): _rate(r, "layer1_unit_dead", r["units"])
                               for r in init},
        layer1_unit_dead_theory=next((float(r["layer1_unit_theory"]) for r in init
                                      if r["init"] == "normal"), math.nan),
        relu_seeds=int(fail[0]["n"]) if fail else 0,
        relu_failed={_arm(r): _rate(r, "failed") for r in fail},
        relu_born_dead={_arm(r): _rate(r, "born_dead") for r in fail},
        relu_died={_arm(r): _rate(r, "died") for r in fail},
        relu_failed_alive={_arm(r): _rate(r, "alive") for r in fail},
        zero_gradient_init={_arm(r): _rate(r, "zero_at_init") for r in rev},
        revived={_arm(r): _rate(r, "revived", r["zero_at_init_count"]) for r in rev},
        revived_converged={_arm(r): _rate(r, "revived_converged", r["revived_count"])
                           for r in rev},
        reads_zero={_arm(r): _rate(r, "reads_zero") for r in pe},
        dead_output_error=float(pe[0]["dead_output_error"]) if pe else math.nan,
        mean_target_error=float(pe[0]["mean_target_error"]) if pe else math.nan,
        failed_reads_dead_output={_arm(r): _rate(r, "failed_dead_output", r["failed"])
                                  for r in pe},
        failed_reads_mean_target={_arm(r): _rate(r, "failed_mean_target", r["failed"])
                                  for r in pe},
        plateau_level=float(plat[0]["level"]) if plat else math.nan,
        plateau_sat={_arm(r): _rate(r, "sat") for r in plat},
        plateau_left={_arm(r): _rate(r, "left", r["sat_count"]) for r in plat},
        plateau_decades={_arm(r): float(r["decades_median"]) for r in plat},
        fine=float(corr[0]["fine"]) if corr else math.nan,
        programs={_av(r, "program"): ProgramResult(
            _rate(r, "reached"), _rate(r, "reached_fine"), _epochs(r, budget),
            _rate(r, "reads_zero")) for r in corr},
        alternative_seeds=int(alts[0]["n"]) if alts else 0,
        alternatives={_av(r): _alternative(r, budget) for r in alts},
        output_slope=_output_slopes(read_table(tables_dir, "output_slope"),
                                    read_table(tables_dir, "layer_ratios")),
        bias_decay=_bias_decays(read_table(tables_dir, "bias_decay")),
    )


def _alternative(r: dict, budget: int) -> Alternative:
    return Alternative(
        change=VARIANT_LABELS[str(r["variant"])], yours=bool(r["yours"]),
        reached=_rate(r, "reached"), epochs=_epochs(r, budget), diverged=_rate(r, "diverged"),
        rescued=int(r["rescued"]), killed=int(r["killed"]), p=float(r["mcnemar_p"]),
        faster=int(r["faster"]), slower=int(r["slower"]), speed_p=float(r["speed_p"]),
        epochs_ratio=float(r["epochs_ratio"]))


def _output_slopes(slope: pd.DataFrame, ratios: pd.DataFrame) -> dict[Arm, OutputSlope]:
    out = {}
    if not len(slope):
        return out
    for (a, lr), part in slope.groupby(ARM_COLS, sort=False):
        first, last = part.epoch.min(), part.epoch.max()
        top, low = part.target.max(), part.target.min()

        def at(epoch, target, column="median", part=part):
            return float(part[(part.epoch == epoch) & (part.target == target)][column].iloc[0])

        rz = ratios[(ratios.activation == a) & (ratios.lr == lr) & (ratios.quantity == "z")]
        rw = ratios[(ratios.activation == a) & (ratios.lr == lr) & (ratios.quantity == "W")]
        end = {q: float(r[r.epoch == last]["median"].iloc[0]) for q, r in (("z", rz), ("W", rw))}
        out[(str(a), float(lr))] = OutputSlope(
            seeds=int(rz.n.max()), max_slope=float(part.max_slope.iloc[0]),
            top_target=float(top), low_target=float(low), top_init=at(first, top),
            top_end=at(last, top), low_end=at(last, low), top_mean_end=at(last, top, "mean"),
            end_epoch=int(last), ratio_z_end=end["z"], ratio_z_min=float(rz["median"].min()),
            ratio_z_max=float(rz["median"].max()), ratio_w_end=end["W"],
            ratio_w_min=float(rw["median"].min()), ratio_w_max=float(rw["median"].max()))
    return out


def _bias_decays(t: pd.DataFrame) -> dict[Arm, BiasDecay]:
    out = {}
    for (a, lr), part in t.groupby(ARM_COLS, sort=False) if len(t) else []:
        by_epoch = part.groupby("epoch")
        full = by_epoch.apply(lambda g: bool((g.n_compared == g.n).all() and (g.n > 0).all()),
                              include_groups=False)
        tiny = by_epoch.apply(lambda g: bool((g.subnormal_count == g.n).all()
                                             and (g.n > 0).all()), include_groups=False)
        epoch = int(full[full].index.max()) if full.any() else 0
        at = part[part.epoch == epoch]
        last = part[part.epoch == part.epoch.max()]
        subnormal_from = int(tiny[tiny].index.min()) if tiny.any() else None
        out[(str(a), float(lr))] = BiasDecay(
            seeds=int(at.n.max()), epoch=epoch, factor=float(at.factor.iloc[0]),
            ratio_median=float(at.ratio_median.median()),
            ratio_max_dev=float(at.ratio_max_dev.max()), subnormal_from=subnormal_from,
            floor=float(last.measured_median.median()) if tiny.iloc[-1] else None)
    return out


def _epochs(r: dict, budget: int) -> Epochs:
    """From a row's median columns and its ``reached_count`` and ``n``."""
    return Epochs(float(r["median"]), float(r["median_ci_low"]), float(r["median_ci_high"]),
                  int(r["reached_count"]), int(r["n"]), int(budget))
