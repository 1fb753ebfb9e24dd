"""Experiments on the engine, and their presentation.

Layers, each importing only from the ones below it (``tests/test_layout.py`` checks this):

- ``cli/``       the ``actdiag`` commands: parse arguments, call, print.
- ``report/``    REPORT.md from the studies' findings.
- ``registry``   the studies by name (an explicit table).
- ``question/``, ``causes/``, ``convergence/``, ``vanishing/``, ``relu_failure/``: one package per
  study: ``grid`` (what it trains), ``tables`` (CSV), ``figures`` (PNG), ``findings`` (numbers).
- ``run/``       the study protocol, cells, cache, executors, atomic files, progress;
  ``stats/``     intervals, survival, summaries; ``plots``  shared figure style; ``bench``  speed.
- ``diagnostics`` (a separate package): the engine, its instruments and closed forms.
"""
