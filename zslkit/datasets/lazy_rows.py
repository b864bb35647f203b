"""Array-likes that read rows from a file on demand instead of holding them in memory.

:class:`LazyRows` turns numpy-style row indexing (an int, a slice, an index or boolean
array, optionally followed by indices into the other axes) into reads of contiguous
row runs. Subclasses implement :meth:`LazyRows._read_run`. Training code indexes the
``features`` of a :class:`~zslkit.datasets.ZSLDataset` one batch at a time
(``features[batch_indices]``), so only that batch is ever resident.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["LazyRows", "contiguous_runs"]


def contiguous_runs(sorted_unique: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, position)`` for each run of consecutive values in a sorted unique vector.

    ``position`` is where the run begins inside ``sorted_unique``.
    """
    if sorted_unique.size == 0:
        return
    breaks = np.flatnonzero(np.diff(sorted_unique) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [sorted_unique.size]])
    for first, last in zip(starts.tolist(), stops.tolist()):
        yield int(sorted_unique[first]), int(sorted_unique[last - 1]) + 1, first


class LazyRows:
    """Read-only ``(N, ...)`` array-like backed by a file, read row-run by row-run.

    Subclasses set ``shape`` and ``dtype`` and implement :meth:`_read_run`.
    ``np.asarray(lazy)`` reads everything: avoid it on large stores.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    # ------------------------------------------------------------- interface
    def _read_run(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` (shape ``(stop - start, *shape[1:])``) with rows ``start:stop``."""
        raise NotImplementedError

    # ------------------------------------------------------------ array-like
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def __len__(self) -> int:
        return int(self.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        rows = self.read_rows(np.arange(len(self)))
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {int(key)} out of range for {len(self)} rows")
            out = self.read_rows(np.array([index]))[0]
        elif isinstance(key, slice):
            out = self.read_rows(np.arange(len(self))[key])
        else:
            out = self.read_rows(self._as_indices(key))
        return out[(slice(None),) * (out.ndim - self.ndim + 1) + rest] if rest else out

    def _as_indices(self, key: Any) -> np.ndarray:
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean index of shape {idx.shape} for {len(self)} rows")
            return np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"row indices must be integers, found dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + len(self), idx)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row index {int(idx.max() if idx.max() >= len(self) else idx.min())} out of range for {len(self)} rows")
        return idx

    def read_rows(self, indices: np.ndarray) -> np.ndarray:
        """Rows at ``indices`` (any order, repeats allowed) as a new array."""
        indices = np.asarray(indices, dtype=np.int64)
        unique, inverse = np.unique(indices, return_inverse=True)
        rows = np.empty((unique.size, *self.shape[1:]), dtype=self.dtype)
        for start, stop, position in contiguous_runs(unique):
            self._read_run(start, stop, rows[position : position + stop - start])
        if unique.size == indices.size and np.array_equal(unique, indices):
            return rows
        return rows[inverse.reshape(-1)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={np.dtype(self.dtype).name})"
