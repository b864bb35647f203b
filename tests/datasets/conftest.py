"""Fixtures that write tiny benchmark files in the exact layouts zslkit reads.

``tiny_xlsa17`` is a 5-class, 20-image dataset whose xlsa17 class order differs from
the image-folder order (as in the real CUB, where folder 001 is class 150).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

# Folder j (0-based, in folder order) holds xlsa17 class FOLDER_TO_CLASS[j] (0-based).
FOLDERS = ("001.Alpha", "002.Bravo", "003.Charlie", "004.Delta", "005.Echo")
FOLDER_TO_CLASS = np.array([3, 0, 4, 1, 2])
UNSEEN = np.array([1, 4])  # xlsa17 classes (0-based)
VAL_CLASS = 3  # a seen class playing unseen in the train/val split
PER_CLASS = 4


def cell(strings) -> np.ndarray:
    """A MATLAB cell column of strings, as scipy writes and reads it."""
    out = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        out[i, 0] = s
    return out


def column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (40, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


@dataclass
class TinyXlsa17:
    FOLDERS = FOLDERS
    FOLDER_TO_CLASS = FOLDER_TO_CLASS
    UNSEEN = UNSEEN

    folder: Path  # holds res101.mat and att_splits.mat
    image_root: Path  # CUB-like root holding images/
    labels: np.ndarray  # expected 0-based labels, image order
    relative: list[str]  # expected relative image paths
    att: np.ndarray  # (I, K) as stored
    original_att: np.ndarray  # (I, K) as stored
    features: np.ndarray  # (C, N) as stored
    splits: dict[str, np.ndarray]  # expected 0-based
    class_names: list[str]

    def res101(self) -> dict:
        return {
            "features": self.features,
            "labels": column(self.labels + 1),
            "image_files": cell([f"/BS/authors/machine/CUB_200_2011/images/{r}" for r in self.relative]),
        }

    def att_splits(self) -> dict:
        content = {"att": self.att, "original_att": self.original_att, "allclasses_names": cell(self.class_names)}
        content.update({f"{k}_loc": column(v + 1) for k, v in self.splits.items()})
        return content

    def write(self, res101: dict | None = None, att_splits: dict | None = None) -> Path:
        """(Re)write both files, optionally with replaced contents."""
        scipy.io.savemat(self.folder / "res101.mat", res101 if res101 is not None else self.res101())
        scipy.io.savemat(self.folder / "att_splits.mat", att_splits if att_splits is not None else self.att_splits())
        return self.folder


def make_tiny_xlsa17(tmp_path: Path, *, with_images: bool = True) -> TinyXlsa17:
    rng = np.random.default_rng(0)
    num_classes, num_attributes, channels = len(FOLDERS), 6, 8
    labels, relative = [], []
    for j, folder in enumerate(FOLDERS):
        for n in range(PER_CLASS):
            labels.append(FOLDER_TO_CLASS[j])
            relative.append(f"{folder}/{folder.split('.')[1]}_{n:04d}.jpg")
    labels = np.array(labels)
    original = rng.uniform(0, 100, size=(num_attributes, num_classes))
    att = original / np.linalg.norm(original, axis=0, keepdims=True)
    idx = np.arange(labels.size)
    seen_mask = ~np.isin(labels, UNSEEN)
    test_seen = np.array([i for c in np.unique(labels[seen_mask]) for i in idx[labels == c][:1]])
    trainval = np.setdiff1d(idx[seen_mask], test_seen)
    splits = {
        "trainval": rng.permutation(trainval),
        "test_seen": test_seen,
        "test_unseen": idx[~seen_mask],
        "train": trainval[labels[trainval] != VAL_CLASS],
        "val": trainval[labels[trainval] == VAL_CLASS],
    }
    class_names = [FOLDERS[int(np.flatnonzero(FOLDER_TO_CLASS == k)[0])] for k in range(num_classes)]
    folder = tmp_path / "xlsa17" / "data" / "TINY"
    folder.mkdir(parents=True)
    image_root = tmp_path / "CUB_200_2011"
    if with_images:
        for i, r in enumerate(relative):
            write_jpeg(image_root / "images" / r, seed=i)
    tiny = TinyXlsa17(
        folder=folder, image_root=image_root, labels=labels, relative=relative, att=att, original_att=original,
        features=rng.normal(size=(channels, labels.size)), splits=splits, class_names=class_names,
    )
    tiny.write()
    return tiny


@pytest.fixture
def tiny_xlsa17(tmp_path) -> TinyXlsa17:
    return make_tiny_xlsa17(tmp_path)


def write_feature_h5(path: Path, tiny: TinyXlsa17, *, feature_shape=(8, 3, 3), **overrides) -> np.ndarray:
    """A DAZLE/MSDN-layout HDF5 file for the tiny dataset; returns its feature maps."""
    maps = np.random.default_rng(1).normal(size=(tiny.labels.size, *feature_shape)).astype(np.float32)
    content = {
        "feature_map": maps,
        "labels": tiny.labels,
        "trainval_loc": tiny.splits["trainval"],
        "test_seen_loc": tiny.splits["test_seen"],
        "test_unseen_loc": tiny.splits["test_unseen"],
        "att": tiny.att.T,
        "original_att": tiny.original_att.T,
        "w2v_att": np.random.default_rng(2).normal(size=(tiny.att.shape[0], 5)),
    }
    content.update(overrides)
    with h5py.File(path, "w") as f:
        for key, value in content.items():
            if value is not None:
                f.create_dataset(key, data=value, compression="gzip" if key == "feature_map" else None)
    return maps


@pytest.fixture
def write_h5():
    """``write_h5(path, tiny, **overrides)``: see :func:`write_feature_h5`."""
    return write_feature_h5


@pytest.fixture
def jpeg():
    """``jpeg(path, seed, size=(H, W))`` writes a random real JPEG."""
    return write_jpeg


@pytest.fixture
def matlab():
    """Helpers to write MATLAB cells and columns: ``matlab.cell(strings)``, ``matlab.column(values)``."""
    import types

    return types.SimpleNamespace(cell=cell, column=column)
