"""Study ``question``: the user's program, faithfully, over many seeds.

ReLU, tanh and sigmoid at learning rates 0.01 and 0.1 (1000 seeds each, the one headline budget
of ``studies.run.budget``): outcome shares, loss curves, epochs-to-threshold distributions.
Plus a long run of tanh and sigmoid at lr 0.1 (200 seeds, 100,000 epochs) to test "more than
100,000 epochs" and "never exactly zero".
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study.of(grid, tables, figures, findings)
