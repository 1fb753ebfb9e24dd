"""Study ``mechanisms``: the mechanisms behind the user's two observations, one experiment each.

All on the question's program (``PRESETS["question"]``), one budget and one threshold (the
headline budget of ``studies.run.budget`` and the preset's 1e-3, unless ``--epochs``), every
variant on the same seeds as what it is compared with:

a. Output asymptote: tanh and sigmoid at lr 0.1 as written, with the targets halved (inside the
   output's open range; the threshold is kept in the user's units: 1e-3 / 4 on the halved scale)
   and with a linear output unit (every other quirk kept): share reaching the threshold, median
   epochs, paired rescued/killed against the program with McNemar's exact test.
b. Tail law: the same two programs over a long run (4 budgets); the exponent k of loss ∝ t^k over
   the last decade, per seed still decreasing, median with a bootstrap CI, against k = −1
   (1 − σ(z) ≈ e^−z, gradient ∝ e^−2z, z ~ ½ log t, squared error ~ 1/t).
c. A single linear neuron (inputs straight to the output, identity), trained the same way at the
   same learning rates, as written (bias decay) and with the true bias gradient: the baseline.
d. Momentum at a matched step: the ReLU program with plain SGD, heavy-ball momentum 0.9 at the
   same lr (steps ~10x larger) and at lr·(1 − β). The optimizer is v ← βv + g, θ ← θ − lr·v;
   with the program's bias decay the "gradient" of a bias is the bias itself, so the decay too
   passes through the velocity (a bias shrinks by about lr/(1 − β) of itself per step).
e. Dead output at initialisation: the output unit ≤ 0 on every sample before the first update,
   over 10 init-only seeds per trained seed, for N(0, 1) (the question), Xavier and He normal
   with zero bias (cells of one epoch, read at epoch 0), beside the closed form for a first-layer
   unit; then the trained program's failures split into born dead / died / failed while alive
   (network_dead at epoch 0 and at the end).
f. Revived by the bias decay: seeds of the ReLU program whose full-data gradient is exactly zero at
   initialisation and non-zero at a later recording (b ← (1 − lr)·b moves the biases anyway).
g. "Reaches zero": the share of seeds whose printed error ``"%f" % loss`` at the budget reads
   0.000000, and the printed values of a dead output (mean y²) and of the mean target (Var y),
   with the share of failed seeds that print each.
h. The output unit's slope: act'(z_out) per sample (so per target value) of the ReLU, tanh and
   sigmoid programs at log-spaced epochs up to the budget, beside the first / last hidden error
   ratio and the first / output weight-gradient ratio of the same passes (ratios between layers
   share the output's slope and cancel it).
i. The bias decay: each layer's ‖b‖ over the same epochs against ‖b(0)‖ (1 − lr)^(updates), the
   closed form of the program's b ← b − lr·b; the measured / closed-form ratio where float64 can
   hold the closed form.

j. The corrected program's alternatives: the corrected program (``PRESETS["corrected"]``) with one
   change at a time (hidden width 4 or 16, back-propagation through the updated weights, He or
   Xavier normal with zero biases, the hidden activation on the output), on its first 200 seeds,
   for each activation at the corrected program's lr: share reaching the threshold, median
   epochs, share diverged, and paired against the corrected program on the same seeds, rescued /
   killed with McNemar's exact test and faster / slower with the exact sign test.

h and i come from a second, observed pass of the programs as written: the tanh and sigmoid ones of
a and the ReLU one of d (plain SGD), on their seeds (``samples``).

Default size: a few minutes of training on one core with the compiled engine.
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
