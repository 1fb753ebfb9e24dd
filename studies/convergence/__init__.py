"""Study ``convergence``: how fast each activation learns once the program's bugs are fixed.

On the fixed network (``PRESETS["fixed"]``: true bias gradient, back-propagation through the
weights that produced the output, identity output, the same N(0, 1) initial draws), every
activation of the table at lr 0.1 (200 seeds, 2000 epochs): Kaplan-Meier survival curves (share
of seeds not yet converged vs epoch), median epochs to threshold with 95% CIs, outcome shares and
loss bands. Plus a learning-rate grid (0.003 ... 0.3) for relu, tanh, sigmoid and identity with
half the epoch budget: median epochs, converged and diverged shares per lr.

Diverged seeds never converge: they count as not converged (censored at the epoch budget) in the
survival curves and medians, even if their loss touched the threshold before it blew up, and they
are reported separately as the ``diverged`` share. In the loss bands a diverged seed's loss is
+inf from its divergence on, so the bands describe all seeds, not only the survivors.

Options: ``--seeds``, ``--epochs`` (main budget; the grid gets half), ``--layers``, ``--data``;
``--activations`` replaces both the main list and the grid's; ``--lrs`` replaces the grid, and the
main comparison runs at 0.1 if it is listed, else at the middle of the listed values.
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
