"""Datasets: every loader returns a :class:`ZSLDataset`."""

from zslkit.datasets.container import SPLIT_NAMES, DatasetError, ZSLDataset
from zslkit.datasets.synthetic import make_synthetic

__all__ = ["SPLIT_NAMES", "DatasetError", "ZSLDataset", "make_synthetic"]
