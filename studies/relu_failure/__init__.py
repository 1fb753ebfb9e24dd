"""Study ``relu_failure``: how often ReLU networks fail to train, and why, one factor at a time.

The baseline is the question's program, faithfully (``PRESETS["question"]``: ReLU everywhere
including the output, N(0, 1) weights and biases, online SGD at lr 0.01, the bias-decay and
updated-weights quirks, layers 2-4-4-1). Around it one factor changes at a time: width (every
hidden layer), depth (hidden layers of the baseline's width), weight initialisation (including the
randomized asymmetric initialisation of Lu et al. 2019), learning rate, bias initialisation,
output activation, optimizer and leaky slope. A seed *fails* when its epoch loss never reaches the
threshold within the budget. Failures are split by whether the network's output is constant on the
dataset (``network_dead``): *born dead* (already at initialisation), *died* (at the end but not at
initialisation) and *other* (the output still varies at the end, or the seed diverged; this
includes slow seeds that would converge after the budget).

Defaults: 500 seeds per cell, trained for the one headline budget (``studies.run.budget``), so
the baseline's shares are the same numbers as the question study's.

Theory: a first-layer unit with (w, b) i.i.d. Gaussian is dead on the data with the solid-angle
probability ``theory.dead_probability(X)``; a layer of width n is entirely dead with pⁿ. Both are
measured on a large ensemble at initialisation (the first n units of a 32-unit first layer, for
every n) and on the trained cells; a change of variable extends the closed form to weights and
biases of different scales. The second-layer formula of Brownlowe et al. (inactive on all of
R^n0) is set beside the measured share of second-layer units dead on the data.
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
