"""Exception types of the workbench; every message says what was received and what to do."""

from __future__ import annotations


class WorkbenchError(ValueError):
    """Base class for a refused input."""


class DataError(WorkbenchError):
    """A dataset or user upload that cannot be used."""


class ModelError(WorkbenchError):
    """A model that cannot be loaded or compressed."""


class ConfigError(WorkbenchError):
    """A setting outside its allowed range."""


class ClusterError(WorkbenchError):
    """A Dask cluster that no longer runs the search's tasks (what the search finished stays in its journal)."""
