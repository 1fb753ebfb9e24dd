"""The options of the one quick run of every study that the study and report tests share."""

from studies.run.study import StudyOptions

SEEDS, EPOCHS = 16, 80  # enough for every outcome to occur, small enough to run in seconds
OPTIONS = StudyOptions(quick=True, seeds=SEEDS, epochs=EPOCHS, cache_dir=None, progress=False)
