"""Feature-map HDF5 files as the DAZLE / TransZero / MSDN preparation scripts write them.

One file per dataset (``feature_map_ResNet_101_CUB.hdf5``...) with the datasets

``feature_map``   ``(N, 2048, 14, 14)`` ResNet-101 region features at 448 px
``labels``        ``(N,)`` **0-based** classes, in xlsa17's class order
``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc``   **0-based** image indices
``att``, ``original_att``   ``(K, I)`` class attributes (xlsa17's, transposed)
``w2v_att``       ``(I, 300)`` attribute word vectors (optional)

``feature_map`` is read lazily (:class:`H5Rows`): a 60 GB AwA2 file is never loaded whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.datasets.checks import (
    check_finite,
    file_error,
    index_vector,
    require_file,
    require_keys,
    to_zero_based,
)
from zslkit.datasets.container import ZSLDataset
from zslkit.datasets.lazy_rows import LazyRows
from zslkit.datasets.word_vectors import load_attribute_vectors, read_attribute_names
from zslkit.registry import register

__all__ = ["H5Rows", "load_feature_h5", "read_h5_labels"]

_SPLITS = {"trainval": "trainval_loc", "test_seen": "test_seen_loc", "test_unseen": "test_unseen_loc"}
_VALIDATION = {"train": "train_loc", "val": "val_unseen_loc"}
_ALL_SPLITS = {**_SPLITS, **_VALIDATION}


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise file_error(path, f"cannot open HDF5 file ({exc}); truncated or not HDF5?") from None


class H5Rows(LazyRows):
    """The ``(N, C, H, W)`` ``feature_map`` of an HDF5 file, read a row run at a time.

    The file is opened on first access (again in each forked DataLoader worker).
    """

    def __init__(self, path: str | Path, key: str = "feature_map") -> None:
        self.path = require_file(path, "feature-map HDF5 file")
        self.key = key
        with _open(self.path) as f:
            require_keys(f, [key], self.path, kind="dataset")
            dataset = f[key]
            if dataset.ndim != 4:
                raise file_error(self.path, f"{key} must be (N, C, H, W), found shape {dataset.shape}")
            self.shape, self.dtype = tuple(int(s) for s in dataset.shape), np.dtype(dataset.dtype)
        self._file = None
        self._pid: int | None = None

    def _dataset(self):
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = _open(self.path), os.getpid()
        return self._file[self.key]

    def _read_run(self, start: int, stop: int, out: np.ndarray) -> None:
        try:
            self._dataset().read_direct(out, np.s_[start:stop])
        except OSError as exc:
            raise file_error(self.path, f"cannot read {self.key} rows {start}:{stop} ({exc}); truncated file?") from None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}


def read_h5_labels(path: str | Path) -> np.ndarray | None:
    """The ``labels`` vector of a feature-map file (``None`` when it has none)."""
    with _open(Path(path)) as f:
        return index_vector(f["labels"][()], path, "labels") if "labels" in f else None


@register("dataset", "feature_h5")
def load_feature_h5(
    path: str | Path,
    *,
    class_attributes: str = "att",
    attribute_vectors: str | Path | None = None,
    attribute_names: str | Path | None = None,
    name: str | None = None,
) -> ZSLDataset:
    """Load a DAZLE/TransZero/MSDN feature-map HDF5 file; ``feature_map`` stays on disk.

    Args:
        path: the ``.hdf5`` file.
        class_attributes: ``"att"`` (default) or ``"original_att"``, both ``(K, I)``.
        attribute_vectors: ``.npy``/``.pkl`` word vectors; default: the file's ``w2v_att``.
        attribute_names: a names file (see :func:`~zslkit.datasets.word_vectors.read_attribute_names`).
        name: dataset name (default: the file name without suffix).
    """
    path = require_file(path, "feature-map HDF5 file")
    if class_attributes not in ("att", "original_att"):
        raise ValueError(f"class_attributes must be 'att' or 'original_att', got {class_attributes!r}")
    features = H5Rows(path)
    num_images = len(features)
    with _open(path) as f:
        require_keys(f, ["labels", class_attributes, *_SPLITS.values()], path, kind="dataset")
        matrix = np.asarray(f[class_attributes][()], dtype=np.float64)
        labels = index_vector(f["labels"][()], path, "labels")
        raw_splits = {split: index_vector(f[key][()], path, key) for split, key in _ALL_SPLITS.items() if key in f}
        w2v = np.asarray(f["w2v_att"][()]) if "w2v_att" in f and attribute_vectors is None else None
    if matrix.ndim != 2:
        raise file_error(path, f"{class_attributes} must be (K, I), found shape {matrix.shape}")
    if labels.size != num_images:
        raise file_error(path, f"{labels.size} labels for {num_images} feature maps")
    num_classes, used = matrix.shape[0], int(labels.max()) + 1 if labels.size else 0
    one_based = labels.size and labels.min() >= 1 and labels.max() == num_classes
    if matrix.shape[1] == used != num_classes and not one_based:
        raise file_error(path, f"{class_attributes} has shape {matrix.shape}: looks like xlsa17's (I, K); this format stores (K, I)")
    labels = to_zero_based(labels, num_classes, path, "labels", one_based=False)
    if used != num_classes:
        raise file_error(path, f"{class_attributes} has {num_classes} class rows, the labels use {used} classes")
    check_finite(matrix, path, f"{class_attributes} (K, I)")
    splits = {split: to_zero_based(idx, num_images, path, _ALL_SPLITS[split], one_based=False) for split, idx in raw_splits.items()}
    if ("train" in splits) != ("val" in splits):
        raise file_error(path, "has only one of train_loc and val_unseen_loc; the validation split needs both")
    if attribute_vectors is not None:
        vectors = load_attribute_vectors(attribute_vectors, matrix.shape[1])
    elif w2v is not None:
        if w2v.ndim != 2 or w2v.shape[0] != matrix.shape[1]:
            raise file_error(path, f"w2v_att must be ({matrix.shape[1]}, D) for {matrix.shape[1]} attributes, found shape {w2v.shape}")
        check_finite(w2v, path, "w2v_att")
        vectors = w2v.astype(np.float32)
    else:
        vectors = None
    return ZSLDataset(
        name=name or path.stem,
        labels=labels,
        class_attributes=matrix.astype(np.float32),
        splits=splits,
        features=features,
        attribute_names=[] if attribute_names is None else read_attribute_names(attribute_names, matrix.shape[1]),
        attribute_embeddings=vectors,
        metadata={"format": "feature_h5", "source": str(path), "class_attributes": class_attributes},
    )
