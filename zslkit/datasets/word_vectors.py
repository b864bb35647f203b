"""Attribute word vectors and attribute names, in the files the paper repositories ship.

* ``.npy``: an ``(I, D)`` array (loaded with ``allow_pickle=False``).
* ``.pkl`` / ``.pickle``: a pickled ``(I, D)`` numpy array, as written by the DAZLE,
  TransZero and MSDN scripts (``w2v/CUB_attribute.pkl``...). Pickles can run code when
  loaded, so these are read with an unpickler that rebuilds plain numpy arrays and
  nothing else: any other object in the file is refused with an error naming it.

Attribute names: CUB's ``attributes.txt`` (``"1 has_bill_shape::dagger"``), AwA2's
``predicates.txt`` (``"1\\tblack"``), SUN's ``attributes.mat`` (cell array
``attributes``) or a plain text file with one name per line.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from zslkit.datasets.checks import check_finite, file_error, npy_layout, reads, require_file
from zslkit.datasets.container import DatasetError
from zslkit.datasets.matfile import load_mat, mat_strings

__all__ = ["load_attribute_vectors", "read_attribute_names", "safe_load_numpy_pickle"]

# The globals numpy's ndarray pickles refer to (numpy 1.x spells the module
# ``numpy.core``, numpy 2.x ``numpy._core``). Nothing else may be unpickled.
_NUMPY_GLOBALS = {
    (module, name)
    for prefix in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{prefix}.multiarray", "_reconstruct"),
        (f"{prefix}.multiarray", "scalar"),
        (f"{prefix}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # protocol 2 stores bytes via _codecs.encode


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS or (module == "numpy" and name.startswith("dtype")) or (
            module.startswith("numpy.dtypes") and name.endswith("DType")
        ):
            return super().find_class(module, name)
        raise file_error(
            self._path,
            f"refusing to unpickle {module}.{name}: only plain numpy arrays are accepted "
            "(convert the file with numpy.save to .npy)",
        )


@reads("pickled array")
def safe_load_numpy_pickle(path: str | Path) -> np.ndarray:
    """The numpy array pickled in ``path``, refusing every other kind of object."""
    path = require_file(path, "pickled array")
    try:
        with open(path, "rb") as f:
            value = _NumpyOnlyUnpickler(f, path).load()
    except DatasetError:
        raise  # our own refusal of a non-numpy global
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise file_error(path, f"cannot unpickle ({type(exc).__name__}: {exc}); truncated or not a pickle?") from None
    if not isinstance(value, np.ndarray):
        raise file_error(path, f"pickle holds a {type(value).__name__}; expected a plain numpy array")
    if value.dtype == object:
        raise file_error(path, "pickle holds an object array; expected a numeric numpy array")
    return value


@reads("attribute vectors")
def load_attribute_vectors(path: str | Path, num_attributes: int | None = None) -> np.ndarray:
    """``(I, D)`` float32 attribute vectors from ``.npy`` or ``.pkl``; checks shape and finiteness."""
    path = require_file(path, "attribute vectors")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        npy_layout(path)  # header, dtype and size first: nothing huge or pickled is read
        vectors = np.load(path, allow_pickle=False)
    elif suffix in (".pkl", ".pickle"):
        vectors = safe_load_numpy_pickle(path)
    else:
        raise file_error(path, f"unknown attribute vector format {suffix!r}; expected .npy, .pkl or .pickle")
    if vectors.ndim != 2:
        raise file_error(path, f"attribute vectors must be (I, D), found shape {vectors.shape}")
    if num_attributes is not None and vectors.shape[0] != num_attributes:
        hint = " (transposed? expected attributes along rows)" if vectors.shape[1] == num_attributes else ""
        raise file_error(path, f"{vectors.shape[0]} attribute vectors for {num_attributes} attributes{hint}")
    check_finite(vectors, path, "attribute vectors")
    return vectors.astype(np.float32)


@reads("attribute names")
def read_attribute_names(path: str | Path, num_attributes: int | None = None) -> list[str]:
    """Attribute names from CUB ``attributes.txt``, AwA2 ``predicates.txt``, SUN ``attributes.mat`` or plain lines.

    With ``num_attributes``, the count must match.
    """
    path = require_file(path, "attribute names")
    names = _read_mat_names(path) if path.suffix.lower() == ".mat" else _read_text_names(path)
    if num_attributes is not None and len(names) != num_attributes:
        raise file_error(path, f"{len(names)} attribute names for {num_attributes} attributes")
    return names


def _read_mat_names(path: Path) -> list[str]:
    return mat_strings(load_mat(path, ["attributes"])["attributes"], path, "attributes")


def _read_text_names(path: Path) -> list[str]:
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[0].isdigit():  # "<id> <name>" as CUB and AwA2 write them
            if int(parts[0]) != len(names) + 1:
                raise file_error(path, f"line {number}: attribute id {parts[0]}, expected {len(names) + 1} (ids must run 1, 2, ...)")
            line = parts[1].strip()
        names.append(line)
    if not names:
        raise file_error(path, "no attribute names found")
    return names
