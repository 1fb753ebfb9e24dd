"""Study ``torch_digits``: the toolkit's instruments on seeded PyTorch MLPs (8x8 digits).

ReLU, LeakyReLU and Tanh, 100 seeds each (64-32-32-10, SGD, 20 epochs): failure rates with 95%
intervals, dead units over training, the per-layer gradient profile, with the engine's outcome
definitions. Needs the optional extra: ``pip install 'activation-diagnostics[torch]'``; not part
of ``actdiag report`` (``studies.registry.REPORT_STUDIES``).
"""

from studies.run.study import Study

from . import figures, findings, grid, tables

STUDY = Study(
    name=grid.NAME,
    title=grid.TITLE,
    cells=grid.cells,
    tables=tables.tables,
    figures=figures.figures,
    findings=findings.findings,
    captions=figures.CAPTIONS,
    needs=("torch", "sklearn"),
    extra=grid.EXTRA,
)
