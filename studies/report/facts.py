"""The numbers the short answers quote, gathered once from the findings for both languages.

Each field is None where the study behind it did not run, and a sentence that needs it is left
out. ``numbers`` lists every way a fact is printed, so a test can check that the short answers
quote nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass

from studies.stats.values import Epochs, Rate

from .bundle import Findings
from .verdicts import asymptote_isolated


@dataclass(frozen=True)
class Smooth:
    """One smooth activation (tanh, sigmoid) of the program at the asker's learning rate."""

    activation: str
    lr: float
    as_written: Epochs | None  # epochs to the threshold, the program as written
    halved: Epochs | None  # targets inside the output's range (halved)
    linear: Epochs | None  # a linear output unit, every other quirk kept
    halved_rescued: int | None
    linear_rescued: int | None
    tail_k: float | None  # loss ∝ t^k over the long run's last decade
    tail_lo: float | None
    tail_hi: float | None
    reads_zero: Rate | None  # printed error reads 0.000000 at the budget
    ratio_z: float | None  # first / last hidden error at initialisation (vanishing study)
    ratio_w: float | None  # first / last weight gradient at initialisation
    plateau: Rate | None = None  # sat a decade of epochs at the mean-target error (long run)
    plateau_left: Rate | None = None  # of those: later reached the threshold
    plateau_level: float | None = None  # the error of predicting the mean target
    slope_target: float | None = None  # the largest target value
    slope_init: float | None = None  # the output's slope act'(z) on it before the first update
    slope_end: float | None = None  # ... at the budget (median over seeds)
    slope_max: float | None = None  # the largest slope the activation has
    ratio_z_min: float | None = None  # smallest first / last hidden error ratio over training
    slope_shrinks: bool = False  # the output's slope is the factor that shrinks (OutputSlope)


@dataclass(frozen=True)
class Relu:
    """The ReLU program at the asker's learning rate."""

    lr: float
    stuck: Rate | None  # exactly zero gradient at the end (question study)
    failed: Rate | None  # never reached the threshold (mechanisms study)
    born_dead: Rate | None  # failed, output constant before the first update
    died: Rate | None
    alive: Rate | None
    dead_at_init: Rate | None  # output off on every sample before the first update
    dead_at_init_zero_bias: Rate | None  # the same with Xavier or He weights and zero biases
    init_seeds: int | None
    unit_dead_theory: float | None  # one first-layer unit, closed form
    dead_print: float | None  # what a dead output prints
    failed_print_dead: Rate | None  # failed seeds that print exactly that
    reads_zero: Rate | None
    revived: Rate | None  # zero gradient at init, revived by the bias decay
    converged_median: Epochs | None  # epochs among the seeds that converged
    momentum_stuck: Rate | None  # heavy ball, same lr
    momentum_matched_stuck: Rate | None  # heavy ball at lr (1 - beta)
    momentum: float | None


@dataclass(frozen=True)
class Facts:
    """Everything the short answers need."""

    shape: str | None
    n_samples: int | None
    budget: int | None
    threshold: float | None
    smooth: tuple[Smooth, ...]
    relu: Relu | None
    theory_k: float | None
    fixed_relu: Epochs | None  # the corrected program (mechanisms study), relu, same seeds
    fixed_tanh: Epochs | None
    fixed_lr: float | None
    linear_neuron: Epochs | None  # a single linear neuron trained like the program
    output_isolated: bool = False  # changing only the output or its targets rescues seeds
    tail_budget: int | None = None  # epochs of the long run (tail law, plateau)
    fixed_sigmoid: Epochs | None = None
    converged_lr: float | None = None  # one lr for relu, tanh and sigmoid (question study)
    converged_at_lr: tuple = ()  # (activation, Epochs among the seeds that converged) there
    bias_fix: tuple = ()  # (activation, median epochs × when only the bias line is fixed)


def _get(d: dict | None, key):
    return None if d is None else d.get(key)


def _corrected(m, activation: str) -> Epochs | None:
    """Median epochs of the corrected program with this activation (all on the same seeds)."""
    if m is None:
        return None
    return next((r.epochs for (a, _, p), r in m.programs.items()
                 if a == activation and p == "corrected"), None)


def _same_lr(q, lrs: list[float]) -> dict:
    """The converged seeds' median epochs of relu, tanh and sigmoid at one learning rate (the
    smooth activations' own, where relu ran too): speeds compared at equal steps."""
    if q is None or not lrs:
        return {}
    lr = lrs[0]
    got = tuple((a, q.converged_epochs[(a, lr)]) for a in ("relu", "tanh", "sigmoid")
                if (a, lr) in q.converged_epochs and q.converged_epochs[(a, lr)].reached)
    if len(got) < 2 or got[0][0] != "relu":
        return {}
    return {"converged_lr": lr, "converged_at_lr": got}


def _bias_fix(c) -> tuple:
    """(activation, fold change of median epochs) when only the bias line is fixed, where the
    change is measured (not a bound) and its interval lies below 1."""
    if c is None:
        return ()
    out = []
    for r in c.ranking:
        if (r.variant == "fix_bias_update" and r.metric == "median" and r.arm in ("tanh", "sigmoid")
                and r.effect.bound == "exact" and r.effect.hi < 1):
            out.append((r.arm, r.effect.value))
    return tuple(out)


def gather(f: Findings) -> Facts:
    """The facts from whatever studies ran."""
    q, m, v, conv, rf = f.question, f.mechanisms, f.vanishing, f.convergence, f.relu_failure
    budget = m.budget if m else (q.budget if q else None)
    smooth = []
    for act in ("tanh", "sigmoid"):
        lrs = sorted({lr for a, lr, _ in (m.asymptote_epochs if m else {}) if a == act})
        if not lrs:
            continue
        lr = lrs[0]
        key = (act, lr)
        slope = _get(m.output_slope, key)
        smooth.append(Smooth(
            act, lr,
            _get(m.asymptote_epochs, (act, lr, "as_written")),
            _get(m.asymptote_epochs, (act, lr, "halved_targets")),
            _get(m.asymptote_epochs, (act, lr, "linear_output")),
            _get(m.asymptote_rescued, (act, lr, "halved_targets")),
            _get(m.asymptote_rescued, (act, lr, "linear_output")),
            _get(m.tail_k, key), _get(m.tail_k_lo, key), _get(m.tail_k_hi, key),
            _get(m.reads_zero, key),
            v.question_z[act].median if v and act in v.question_z else None,
            v.question_w[act].median if v and act in v.question_w else None,
            _get(m.plateau_sat, key), _get(m.plateau_left, key),
            m.plateau_level if key in m.plateau_sat else None,
            *((slope.top_target, slope.top_init, slope.top_end, slope.max_slope,
               slope.ratio_z_min, slope.shrinks) if slope is not None else ()),
        ))
    relu = None
    if m is not None and m.relu_failed:
        (act, lr), failed = next(iter(m.relu_failed.items()))
        key = (act, lr)
        stuck = None
        if q is not None and key in q.outcomes:
            stuck = q.outcomes[key].get("stuck")
        zero_bias = [r for (a, _, init), r in m.output_dead_init.items()
                     if a == act and init != "normal"]
        mom = [(variant, r) for (a, _, variant), r in m.momentum_stuck.items() if a == act]
        relu = Relu(
            lr, stuck, failed, _get(m.relu_born_dead, key), _get(m.relu_died, key),
            _get(m.relu_failed_alive, key), _get(m.output_dead_init, (act, lr, "normal")),
            zero_bias[0] if zero_bias else None, m.init_seeds or None,
            m.layer1_unit_dead_theory if not math.isnan(m.layer1_unit_dead_theory) else None,
            m.dead_output_error, _get(m.failed_reads_dead_output, key), _get(m.reads_zero, key),
            _get(m.revived, key),
            q.converged_epochs.get(key) if q is not None else None,
            dict(mom).get("momentum"), dict(mom).get("momentum_matched"), m.momentum,
        )
    lin = None
    if m is not None and m.linear_epochs:
        lrs = [s.lr for s in smooth]
        lin = next((e for (lr, variant), e in m.linear_epochs.items()
                    if variant == "as_written" and (not lrs or lr == lrs[0])), None)
    return Facts(
        shape="-".join(map(str, m.layers)) if m and m.layers else (
            "-".join(map(str, q.layers)) if q else None),
        n_samples=(m.n_samples if m else (q.n_samples if q else None)) or None,
        budget=budget, threshold=m.threshold if m else (q.threshold if q else None),
        smooth=tuple(smooth), relu=relu, theory_k=m.tail_theory_k if m else None,
        fixed_relu=_corrected(m, "relu"), fixed_tanh=_corrected(m, "tanh"),
        fixed_sigmoid=_corrected(m, "sigmoid"),
        fixed_lr=next((lr for a, lr, p in (m.programs if m else {}) if p == "corrected"), None),
        linear_neuron=lin,
        output_isolated=bool(asymptote_isolated(m)),
        tail_budget=(m.tail_budget or None) if m else None,
        **_same_lr(q, [s.lr for s in smooth]), bias_fix=_bias_fix(f.causes),
    ) if (q or m or v or conv or rf) else Facts(None, None, None, None, (), None, None, None,
                                                None, None, None)


# ---- how facts are printed (the only formats the short answers use) ---------------------------


def pc(share: float) -> str:
    """A share as a percentage, one decimal: ``37.2%``."""
    return f"{100 * share:.1f}%"


def ep(e: Epochs) -> str:
    """A median number of epochs, or ``>budget`` when it lies beyond the budget."""
    return f"{e.median:,.0f}" if e.measured else f">{e.budget:,}"


def num(x: float) -> str:
    """Two significant digits."""
    return f"{x:.2g}"


def numbers(x) -> set[str]:
    """Every string a fact can be printed as (for the test that nothing else is quoted)."""
    out: set[str] = set()
    if x is None:
        return out
    if isinstance(x, Rate):
        return {pc(x.share), str(x.count), f"{x.n:,}", str(x.n)}
    if isinstance(x, Epochs):
        return {ep(x), f"{x.budget:,}", str(x.reached), str(x.n)}
    if isinstance(x, bool):
        return out
    if isinstance(x, int):
        return {str(x), f"{x:,}"}
    if isinstance(x, float):
        return {num(x), f"{x:g}", f"{x:.6f}", pc(x)}
    if isinstance(x, str):
        return {x, *x.split("-")}
    if isinstance(x, tuple):
        for item in x:
            out |= numbers(item)
        return out
    if is_dataclass(x):
        for fld in fields(x):
            out |= numbers(getattr(x, fld.name))
    return out
