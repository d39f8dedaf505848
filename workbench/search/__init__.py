"""Automatic compression search: the smallest int8 model within an accuracy budget, on Optuna and Dask.

Layers inside the unit, lowest first: ``space`` (what a trial samples and the configs it maps to),
``trial`` (what a Dask worker runs), ``cluster`` (the Dask client, its log, the trials' shared inputs and
tasks the cluster loses), ``engine`` (the Optuna study and the ask-submit-tell loop),
``report`` and ``outputs`` (results), ``api`` (``search()``); ``scan`` (a sensitivity scan, one layer per task).
"""

from workbench.search.api import search, trial_artifact
from workbench.search.report import SearchReport, pareto_mask
from workbench.search.space import SearchSpace

__all__ = ["SearchReport", "SearchSpace", "pareto_mask", "search", "trial_artifact"]
