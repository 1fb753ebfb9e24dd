"""Study ``vanishing``: do gradients vanish with depth, and does the question's network have that?

Networks of 1 to 20 hidden layers of fixed width (16) on the question's data, per activation
(relu, tanh, sigmoid) and weight initialisation (standard normal, the question's; Xavier normal;
He normal; LeCun uniform U(±1/√fan_in), Glorot & Bengio's "tanh with U(±1/√n)" case). Biases are
N(0, 1) with the standard normal initialisation, as in the question, and zero with the scaled
ones. Training uses the ``fixed`` preset's rules: true bias gradients, back-propagation through
the weights that produced the output, and an identity output unit, so the output layer cannot
mask what happens in the hidden layers.

What is measured, through the Monitor's full-dataset passes:

- at initialisation (one cell per depth, 200 seeds, epoch 0 only): ‖∂L/∂W_l‖ and ‖∂L/∂z_l‖ per
  layer; the first-to-last ratios ‖∂L/∂W_1‖/‖∂L/∂W_out‖ and ‖∂L/∂z_1‖/‖∂L/∂z_H‖ (H hidden
  layers) against depth; the per-layer factor of ‖∂L/∂z_l‖² between consecutive hidden layers,
  against the closed forms in ``diagnostics.theory`` (tanh with U(±1/√n): 1/3; ReLU with Xavier:
  1/2; ReLU with He: 1);
- during training (depth 20, 32 seeds, 120 epochs of online SGD at lr 0.01 as in the fixed
  preset): layer × epoch medians of ‖∂L/∂W_l‖ and of the saturated share of (unit, sample) pairs;
- the chain bound ‖∂L/∂z_1‖ ≤ max|act'|^H · ∏_{l≥2} ‖W_l‖_F · ‖∂L/∂z_out‖, i.e. (1/4)^H for
  sigmoid, checked on every seed at every recorded epoch;
- the first-to-last ratio of the question's own network (2-4-4-1, standard normal, its own
  output activation; and with the fixed preset's identity output) at initialisation.

Options: --layers sets the width (its first hidden size) and adds its depth to the grid and is
the "question network"; --activations, --seeds (every cell), --epochs (training), --lrs (the
first is the training rate), --data.
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
