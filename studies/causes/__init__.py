"""Study ``causes``: which part of the user's program causes what, and was the advice right?

Starting from the faithful program (``PRESETS["question"]``) each quirk is switched off alone
(``QUIRK_FIXES``), then all four together; the advice the user was given (SGD with momentum 0.9)
and common remedies (He initialisation with zero bias, leaky ReLU) are tried on top of the faithful
program. The output-activation fix *is* the "identity output" remedy, so it appears once. One
extra variant, momentum with the true bias gradient (relu arm only), removes the bias decay, the
only thing besides the gradient that moves the faithful program's parameters, so it tests whether
momentum itself can bring a zero-gradient network back. Each variant is measured on two arms:

- ``relu`` at lr 0.01 (the question's): outcome shares over 1000 seeds, in particular the stuck
  rate; instruments record, on a schedule that includes epoch 0, the middle and the last epoch,
  every layer's dead-unit fraction, whether the output is constant, and the full-data gradient
  norms. Each failed seed (never reached the threshold, did not diverge) is classified at the end:
  gradient exactly zero / non-zero with a constant output (a dead network) / non-zero with an output
  that varies, and tied to the layers whose units were all dead.
- ``tanh`` and ``sigmoid`` at lr 0.1 (what the user ran them with): median epochs to the loss
  threshold with a 95% order-statistic CI; seeds that never got there count as +inf.

Effects against the faithful program: differences of rates with Newcombe's hybrid score interval,
fold-changes of medians with a Bonferroni-combined interval; censored medians give bounds.
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
