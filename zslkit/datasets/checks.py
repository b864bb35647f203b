"""Input checks shared by the file loaders: one-line errors that name the file and the problem.

Every function raises :class:`~zslkit.datasets.container.DatasetError` with a message
``"<file>: <what was wrong> (expected ..., found ...)"``.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import struct
import tokenize
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from safetensors import SafetensorError

from zslkit.datasets.container import DatasetError, first_non_finite

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "READ_ERRORS",
    "CheckpointError",
    "check_finite",
    "check_finite_rows",
    "feature_source",
    "file_error",
    "reading",
    "reads",
    "index_vector",
    "npy_layout",
    "require_file",
    "require_keys",
    "scan_finite_features",
    "sha256_file",
    "to_zero_based",
]


class CheckpointError(ValueError):
    """A checkpoint file (zslkit's, or one saved by the authors' code) is missing, damaged or does not fit:
    the message starts with the file. Also importable from :mod:`zslkit.training.checkpoint`."""


def file_error(path: str | Path, message: str, error: type[Exception] = DatasetError) -> Exception:
    """An ``error`` (default :class:`DatasetError`) reading ``"<path>: <message>"`` (first line of ``message`` only)."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unreadable"
    return error(f"{path}: {first}")


#: What parsers of damaged files raise (numpy, h5py, scipy.io, json, pickle, struct...).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, KeyError, IndexError, ValueError, TypeError, AttributeError, RuntimeError,
    OverflowError, SyntaxError, UnicodeError, MemoryError, struct.error, zlib.error, pickle.UnpicklingError,
    tokenize.TokenError, SafetensorError,
)


@contextmanager
def reading(path: str | Path, what: str, error: type[Exception] = DatasetError) -> Iterator[None]:
    """Turn whatever a parser raises on a damaged file into one ``error`` naming ``path``.

    ``error`` (default :class:`DatasetError`) raised inside passes through unchanged::

        with reading(path, "HDF5 file"):
            labels = f["labels"][()]
    """
    try:
        yield
    except error:
        raise
    except READ_ERRORS as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        found = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        raise file_error(path, f"cannot read {what} ({found}); truncated or corrupt?", error) from None


def reads(what: str) -> Callable[[F], F]:
    """Decorator for a loader whose first argument is the file: :func:`reading` around its whole body."""

    def decorate(loader: F) -> F:
        @functools.wraps(loader)
        def wrapped(path, *args, **kwargs):
            with reading(path, what):
                return loader(path, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def npy_layout(path: str | Path) -> tuple[int, tuple[int, ...], np.dtype, bool]:
    """``(data offset, shape, dtype, fortran_order)`` from a ``.npy`` header, checked against the file size.

    Reading the header first means a damaged one that declares a huge array is refused
    instead of allocated.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if dtype.hasobject:
        raise file_error(path, "holds Python objects (a pickled object array); expected a numeric array")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = Path(path).stat().st_size
    if size < expected:
        raise file_error(path, f"truncated: {size} bytes, expected {expected} for shape {tuple(shape)} {dtype}")
    return offset, tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def feature_source(features: Any) -> str:
    """What to call a feature array in errors: its file (store, HDF5 file, memmap) or ``"features"``."""
    for attribute in ("array_path", "path", "filename"):
        found = getattr(features, attribute, None)
        if found:
            return str(found)
    return "features"


def check_finite_rows(rows: np.ndarray, indices: np.ndarray, source: str) -> None:
    """Raise naming the image (``indices[i]`` for row ``i``) of the first NaN/inf in ``rows`` ``(n, C, H, W)``."""
    bad = first_non_finite(rows)
    if bad is not None:
        image, rest = int(np.asarray(indices)[bad[0]]), bad[1:]
        raise file_error(source, f"features of image {image} hold a non-finite value ({rows[bad]}) at (channel, row, column) {rest}")


def scan_finite_features(features: Any, chunk: int = 256) -> None:
    """Read every row of an ``(N, C, H, W)`` feature array, ``chunk`` at a time; see :func:`check_finite_rows`."""
    for start in range(0, int(features.shape[0]), chunk):
        indices = np.arange(start, min(start + chunk, int(features.shape[0])))
        check_finite_rows(np.asarray(features[indices], dtype=np.float32), indices, feature_source(features))


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
    """Raise naming the first NaN/inf entry of ``array`` (as a multi-index), or the first value
    too large for float32 (zslkit computes in float32)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise file_error(path, f"{what} must be real numbers, found dtype {array.dtype}")
    if not array.size or not np.issubdtype(array.dtype, np.floating):
        return
    where, problem = first_non_finite(array), "a non-finite value"
    if where is None and np.finfo(array.dtype).max > np.finfo(np.float32).max:
        where, problem = first_non_finite(np.where(np.abs(array) > np.finfo(np.float32).max, np.inf, 0.0)), "a value too large for float32"
    if where is not None:
        raise file_error(path, f"{what} has {problem} ({array[where]}) at index {where if len(where) > 1 else where[0]}")


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
