"""Region features from a zslkit feature store directory or a feature-map HDF5 file.

The one place that tells the two apart: a directory written by ``zslkit extract``
(:mod:`zslkit.datasets.store`) or a DAZLE/MSDN ``feature_map`` HDF5 file
(:mod:`zslkit.datasets.feature_h5`). Both open lazily as ``(N, C, H, W)`` rows.
"""

from __future__ import annotations

from pathlib import Path

from zslkit.datasets.container import DatasetError
from zslkit.datasets.feature_h5 import H5Rows
from zslkit.datasets.lazy_rows import LazyRows
from zslkit.datasets.store import is_store, open_store

__all__ = ["open_region_features"]


def open_region_features(path: str | Path) -> LazyRows:
    """Lazy ``(N, C, H, W)`` features: a :class:`~zslkit.datasets.FeatureStore` or :class:`~zslkit.datasets.H5Rows`."""
    path = Path(path).expanduser()
    if is_store(path):
        return open_store(path)
    if path.is_file():
        return H5Rows(path)
    raise DatasetError(f"{path}: not a feature store directory nor a feature-map HDF5 file")
