"""Input checks shared by the file loaders: one-line errors that name the file and the problem.

Every function raises :class:`~zslkit.datasets.container.DatasetError` with a message
``"<file>: <what was wrong> (expected ..., found ...)"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.datasets.container import DatasetError

__all__ = [
    "check_finite",
    "file_error",
    "index_vector",
    "require_file",
    "require_keys",
    "to_zero_based",
]


def file_error(path: str | Path, message: str) -> DatasetError:
    """A :class:`DatasetError` reading ``"<path>: <message>"`` (first line of ``message`` only)."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unreadable"
    return DatasetError(f"{path}: {first}")


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, or an error saying which file is missing."""
    path = Path(path).expanduser()
    if not path.is_file():
        where = "directory, not a file" if path.is_dir() else "file not found"
        raise file_error(path, f"{what}: {where}")
    return path


def require_keys(content: Mapping[str, Any], keys: Iterable[str], path: str | Path, kind: str = "variable") -> None:
    """Raise if any of ``keys`` is absent from ``content``, listing what the file does hold."""
    missing = [k for k in keys if k not in content]
    if missing:
        have = sorted(k for k in content if not str(k).startswith("__"))
        raise file_error(path, f"missing {kind} {missing[0]!r} (found {kind}s: {', '.join(have) or 'none'})")


def check_finite(array: np.ndarray, path: str | Path, what: str) -> None:
    """Raise naming the first NaN/inf entry of ``array`` (as a multi-index)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number):
        raise file_error(path, f"{what} must be numeric, found dtype {array.dtype}")
    if array.size and np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        value = array[where]
        raise file_error(path, f"{what} has a non-finite value ({value}) at index {where if len(where) > 1 else where[0]}")


def index_vector(array: Any, path: str | Path, what: str) -> np.ndarray:
    """A 1-D int64 vector from a MATLAB/HDF5 column or row of whole numbers."""
    values = np.asarray(array)
    if values.ndim > 1 and sum(s > 1 for s in values.shape) > 1:
        raise file_error(path, f"{what} must be a vector, found shape {values.shape}")
    values = values.reshape(-1)
    if values.size and not np.issubdtype(values.dtype, np.number):
        raise file_error(path, f"{what} must hold integers, found dtype {values.dtype}")
    if values.size and np.issubdtype(values.dtype, np.inexact):
        check_finite(values, path, what)
        bad = np.flatnonzero(values != np.round(values))
        if bad.size:
            raise file_error(path, f"{what} must hold whole numbers, found {values[bad[0]]} at position {bad[0]}")
    return values.astype(np.int64)


def to_zero_based(values: np.ndarray, size: int, path: str | Path, what: str, *, one_based: bool) -> np.ndarray:
    """Indices into ``range(size)``, converted from 1-based when ``one_based``.

    Catches the usual mix-ups: a 0 in a 1-based file, or ``size`` in a 0-based one.
    """
    if values.size == 0:
        return values
    low, high = int(values.min()), int(values.max())
    if one_based:
        if low < 1:
            hint = " -- this file's indices look 0-based, but this format stores 1-based ones" if low == 0 else ""
            raise file_error(path, f"{what} holds {low}; expected 1-based values in [1, {size}]{hint}")
        if high > size:
            raise file_error(path, f"{what} holds {high}, out of range: expected 1-based values in [1, {size}]")
        return values - 1
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        hint = " -- looks 1-based, but this format stores 0-based indices" if high == size and low >= 1 else ""
        raise file_error(path, f"{what} holds {bad}, out of range: expected 0-based values in [0, {size - 1}]{hint}")
    return values
