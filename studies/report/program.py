"""Your program, line by line: each risky line quoted, what it does, its effect alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

from diagnostics.presets import PRESETS
from studies.causes.findings import CausesFindings, Ranked
from studies.mechanisms.tables import SMALLEST_NORMAL

from .text import lr_text, power


@dataclass(frozen=True)
class Line:
    """One line of the asker's program and the variant of the causes study that changes it."""

    code: str  # quoted from the program
    does: str  # what it does, in words
    variant: str | None  # the causes variant that changes this line alone (None: not measured)


@dataclass(frozen=True)
class Change:
    """One change the corrected program makes, in both languages."""

    before: str
    after: str
    en: str
    zh: str


HIDDEN = PRESETS["corrected"].layers[1]  # the corrected program's hidden width

CHANGES = (  # the corrected program's changes (studies/report/corrected_program.py, CHANGED:)
    Change("self.biases -= lr * self.biases", "self.biases -= lr * error_gradient",
           "the bias follows its gradient instead of shrinking towards zero",
           "偏置沿梯度更新，而不是不断缩小到零"),
    Change("self.weights -= lr * weight_deriv  # then: return np.dot(self.weights.T, ...)",
           "input_gradient = np.dot(self.weights.T, error_gradient); "
           "self.weights -= lr * weight_deriv; return input_gradient",
           "pass the error back through the weights that produced the output, then update them",
           "先用产生输出的权重把误差传回去，再更新权重"),
    Change("Dense(4, 1), ReLU()", "Dense(HIDDEN, 1)",
           "a linear output unit: the targets are sums, not values to squeeze into a sigmoid's "
           "or tanh's range, and a linear output can never be switched off",
           "线性输出单元：目标值是两数之和，不必挤进 Sigmoid 或 Tanh 的取值范围，"
           "而且线性输出永远不会被关闭"),
    Change("Dense(2, 4), ..., Dense(4, 4)", "Dense(2, HIDDEN), ..., Dense(HIDDEN, HIDDEN)",
           "wider hidden layers: with more units, it is rarer that all of a layer's ReLUs are off "
           f"at once (`HIDDEN = {HIDDEN}` in the corrected program)",
           "更宽的隐藏层：单元越多，一层的 ReLU 同时全部关闭的情况就越少（修正程序中 "
           f"`HIDDEN = {HIDDEN}`）"),
    Change('print("%d/%d, error = %f" % ...)', 'print("%d/%d, error = %.3e" % ...)',
           "print in scientific notation, so that a small error is not shown as `0.000000`",
           "用科学计数法打印，小误差就不会显示成 `0.000000`"),
)

LINES = (
    Line("self.biases -= lr * self.biases",
         "shrinks every bias by the factor (1 − lr) at every update instead of following its "
         "gradient, so the biases never learn and fade towards zero", "fix_bias_update"),
    Line("return np.dot(self.weights.T, error_gradient)  # after the update",
         "passes the error back through weights that were already updated on this sample",
         "fix_backprop_weights"),
    Line("Dense(4, 1), ReLU()  # or Sigmoid(), Tanh() on the output",
         "puts the hidden activation on the output too: a ReLU output can be off for every "
         "input; a sigmoid or tanh output can only approach the top of its range, where the "
         "largest targets sit", "fix_output_activation"),
    Line("self.weights = np.random.randn(...); self.biases = np.random.randn(...)",
         "draws every weight and bias from N(0, 1), whatever the layer's size", "fix_init"),
)


def _effect(r: Ranked) -> str:
    e = r.effect
    if r.metric == "median":
        if math.isnan(e.value):
            return f"{r.arm}: both medians beyond the budget"
        mark = {"at_most": "≤ ", "at_least": "≥ "}.get(e.bound, "")
        return f"{r.arm}: median epochs × {mark}{e.value:.2g}"
    what = "stuck" if r.metric == "stuck" else "failed"
    return (f"{r.arm}: {100 * e.value:+.1f} points of seeds {what} "
            f"({r.rescued} rescued, {r.killed} killed, p = {r.p_value:.2g})")


def program_section(c: CausesFindings | None, n_samples: int | None, budget: int | None,
                    lr: float | None) -> str:
    """The table, with the effect of each change measured alone on the same seeds."""
    if c is None:
        return "_Not measured: the causes study did not run._"
    rows = ["| line in your program | what it does | effect of changing only this line (same "
            "seeds) |",
            "| --- | --- | --- |"]
    for line in LINES:
        effects = [r for r in c.ranking if r.variant == line.variant and r.metric in (
            "failed", "median")]
        measured = "; ".join(_effect(r) for r in effects) or "not run"
        rows.append(f"| `{line.code}` | {line.does} | {measured} |")
    out = "\n".join(rows)
    if n_samples and budget and lr and 0 < lr < 1:
        out += (f"\n\nWith the bias line as written, after {budget:,} epochs of {n_samples} "
                f"updates at lr {lr_text(lr)} every bias has been multiplied by "
                f"(1 − {lr_text(lr)})^{n_samples * budget:,} = {power(1 - lr, n_samples * budget)}"
                + (", far below the smallest float64, where the shrinking stops: the biases end "
                   "near the smallest numbers a float64 can hold"
                   if (1 - lr) ** (n_samples * budget) < SMALLEST_NORMAL else "")
                + ": the network ends up without biases (measured in the evidence below).")
    return out
