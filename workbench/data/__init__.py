"""Datasets: offline-first MNIST / Fashion-MNIST and the user's own data."""

from workbench.data.dataset import Dataset
from workbench.data.loaders import DATASETS, SOURCES, load_dataset
from workbench.data.user import load_folder, load_npz

__all__ = ["Dataset", "DATASETS", "SOURCES", "load_dataset", "load_npz", "load_folder"]
