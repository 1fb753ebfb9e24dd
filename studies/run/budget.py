"""The one epoch budget of every headline number about the asker's program, and the long run.

``HEADLINE_EPOCHS`` is the budget of every cell that trains the asker's program or a variant of it
(question, causes, relu_failure, mechanisms): one budget, so that a share or a median means the
same thing wherever it appears. It is longer than the program's own 5000 epochs so that the
slowest as-written median (sigmoid at lr 0.1; the report's Method says whether it fits) is
measured, not a bound. ``LONG_EPOCHS`` is the asker's "more than 100,000 epochs": the long
runs of the tail law and of how far below the threshold the error gets.
"""

from diagnostics.presets import PRESETS

HEADLINE_EPOCHS = 20_000
LONG_EPOCHS = 100_000
PROGRAM_EPOCHS = PRESETS["question"].epochs  # what the asker's own loop runs (5000)
