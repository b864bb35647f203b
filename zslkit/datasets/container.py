"""The one container every dataset loader returns.

Splits follow the xlsa17 convention (Xian et al., "Zero-Shot Learning -- The Good,
the Bad and the Ugly"), with 0-based image indices:

``trainval``     images of seen classes used for training
``test_seen``    held-out images of seen classes (GZSL "S")
``test_unseen``  all images of unseen classes (CZSL, GZSL "U")
``train``, ``val``  the validation split of the seen classes: ``val`` images
                 belong to classes that play "unseen" during model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zslkit.datasets.attribute_groups import groups_from_names

__all__ = ["SPLIT_NAMES", "ZSLDataset", "DatasetError", "first_non_finite"]

SPLIT_NAMES: tuple[str, ...] = ("trainval", "test_seen", "test_unseen", "train", "val")
_REQUIRED_SPLITS = ("trainval", "test_seen", "test_unseen")


class DatasetError(ValueError):
    """A dataset is inconsistent (shapes, classes, splits). The message names the field."""


def first_non_finite(array: Any) -> tuple[int, ...] | None:
    """Index of the first NaN/inf entry of a numeric array, or ``None`` when all are finite."""
    array = np.asarray(array)
    if not array.size or not np.issubdtype(array.dtype, np.inexact):
        return None
    finite = np.isfinite(array)
    if finite.all():
        return None
    return tuple(int(i) for i in np.argwhere(~finite)[0])


@dataclass
class ZSLDataset:
    """A zero-shot learning dataset: features, labels, class attributes and splits.

    Attributes:
        name: short name (``"synthetic"``, ``"cub"``...).
        labels: ``(N,)`` int64 class index in ``[0, K)`` of every image.
        class_attributes: ``(K, I)`` float32 class-attribute matrix (rows: classes).
        splits: split name -> 0-based image indices (see module docstring).
        features: ``(N, C, H, W)`` region feature maps (numpy array, memmap or any
            array-like indexable by image), or ``None`` when only global features exist.
        global_features: ``(N, C)`` image-level features, or ``None`` to pool ``features``.
        class_names: ``K`` names; attribute_names: ``I`` names.
        attribute_embeddings: ``(I, D)`` attribute word vectors, or ``None``.
        metadata: free-form provenance (source files, generator settings).
        attribute_groups: group name -> attribute indices (see
            :mod:`zslkit.datasets.attribute_groups`), or ``None`` when the dataset has none;
            derived from ``<group>::<value>`` attribute names when not given.
    """

    name: str
    labels: np.ndarray
    class_attributes: np.ndarray
    splits: dict[str, np.ndarray]
    features: Any = None
    global_features: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    attribute_names: list[str] = field(default_factory=list)
    attribute_embeddings: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attribute_groups: dict[str, list[int]] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asanyarray(self.labels, dtype=np.int64)  # keeps ndarray subclasses (e.g. access-logging ones)
        self.class_attributes = np.asarray(self.class_attributes, dtype=np.float32)
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in self.splits.items()}
        if not self.class_names:
            self.class_names = [f"class_{k}" for k in range(self.num_classes)]
        if not self.attribute_names:
            self.attribute_names = [f"attribute_{i}" for i in range(self.num_attributes)]
        if self.attribute_groups is None:
            self.attribute_groups = groups_from_names(self.attribute_names)
        self.validate()

    # ------------------------------------------------------------------ sizes
    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.class_attributes.shape[0])

    @property
    def num_attributes(self) -> int:
        return int(self.class_attributes.shape[1])

    @property
    def feature_dim(self) -> int:
        if self.features is not None:
            return int(self.features.shape[1])
        if self.global_features is not None:
            return int(self.global_features.shape[1])
        raise DatasetError(f"dataset {self.name!r} has neither features nor global_features")

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one region feature map."""
        if self.features is None:
            raise DatasetError(f"dataset {self.name!r} has no region feature maps")
        return tuple(int(s) for s in self.features.shape[1:])

    # ---------------------------------------------------------------- classes
    @property
    def seen_classes(self) -> np.ndarray:
        """Sorted classes of the ``trainval`` images."""
        return np.unique(self.labels[self.splits["trainval"]])

    @property
    def unseen_classes(self) -> np.ndarray:
        """Sorted classes of the ``test_unseen`` images."""
        return np.unique(self.labels[self.splits["test_unseen"]])

    @property
    def has_validation_split(self) -> bool:
        return "train" in self.splits and "val" in self.splits

    def validation_view(self) -> ZSLDataset:
        """The dataset as the validation protocol sees it: ``train`` classes seen, ``val`` classes unseen.

        ``trainval`` becomes the train images minus a held-out fifth of each train
        class (``test_seen``), ``test_unseen`` becomes ``val``. Test images are not
        part of the view.
        """
        if not self.has_validation_split:
            raise DatasetError(f"dataset {self.name!r} has no train/val split for model selection")
        train = self.splits["train"]
        rng = np.random.default_rng(0)
        held_out = []
        for c in np.unique(self.labels[train]):
            idx = train[self.labels[train] == c]
            n = max(1, len(idx) // 5) if len(idx) > 1 else 0
            held_out.append(rng.permutation(idx)[:n])
        held = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, np.int64)
        fit = np.setdiff1d(train, held)
        splits = {"trainval": fit, "test_seen": held, "test_unseen": self.splits["val"]}
        return ZSLDataset(
            name=f"{self.name}/validation",
            labels=self.labels,
            class_attributes=self.class_attributes,
            splits=splits,
            features=self.features,
            global_features=self.global_features,
            class_names=self.class_names,
            attribute_names=self.attribute_names,
            attribute_embeddings=self.attribute_embeddings,
            metadata={**self.metadata, "view": "validation"},
            attribute_groups=self.attribute_groups,
        )

    # --------------------------------------------------------------- features
    def pooled_features(self, indices: np.ndarray | None = None, chunk: int = 1024) -> np.ndarray:
        """``(n, C)`` float32 global features: ``global_features`` or the mean of the region maps."""
        idx = np.arange(self.num_images) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.global_features is not None:
            return np.asarray(self.global_features[idx], dtype=np.float32)
        if self.features is None:
            raise DatasetError(f"dataset {self.name!r} has no features")
        out = np.empty((len(idx), self.feature_dim), dtype=np.float32)
        for start in range(0, len(idx), chunk):
            part = np.asarray(self.features[idx[start : start + chunk]], dtype=np.float32)
            out[start : start + chunk] = part.reshape(part.shape[0], part.shape[1], -1).mean(axis=-1)
        return out

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`DatasetError` (naming the field) if the parts do not fit together."""
        n, k = self.num_images, self.num_classes
        where = self.metadata.get("source") or self.name  # the file or folder it came from, if any
        if self.labels.ndim != 1:
            raise DatasetError(f"{where}: labels must be 1-D, found shape {self.labels.shape}")
        if self.class_attributes.ndim != 2:
            raise DatasetError(
                f"{where}: class_attributes must be (K, I), found shape {self.class_attributes.shape}"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= k):
            raise DatasetError(
                f"{where}: labels must lie in [0, {k}) for {k} classes of class_attributes; "
                f"found range [{self.labels.min()}, {self.labels.max()}]"
            )
        for split in _REQUIRED_SPLITS:
            if split not in self.splits:
                raise DatasetError(f"{where}: missing split {split!r}; have {sorted(self.splits)}")
        for split, idx in self.splits.items():
            if split not in SPLIT_NAMES:
                raise DatasetError(f"{where}: unknown split {split!r}; expected one of {SPLIT_NAMES}")
            if idx.ndim != 1:
                raise DatasetError(f"{where}: split {split!r} must be 1-D indices")
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise DatasetError(
                    f"{where}: split {split!r} has indices outside [0, {n}) "
                    f"(found [{idx.min()}, {idx.max()}]; 1-based indices must be converted)"
                )
        seen, unseen = set(self.seen_classes.tolist()), set(self.unseen_classes.tolist())
        overlap = seen & unseen
        if overlap:
            raise DatasetError(
                f"{where}: seen and unseen classes overlap (e.g. class {sorted(overlap)[0]}); "
                "trainval and test_unseen must hold different classes"
            )
        extra = set(np.unique(self.labels[self.splits["test_seen"]]).tolist()) - seen
        if extra:
            raise DatasetError(f"{where}: test_seen holds class {sorted(extra)[0]} that no trainval image has")
        for name, arr, first in (
            ("features", self.features, "N"),
            ("global_features", self.global_features, "N"),
        ):
            if arr is not None and int(arr.shape[0]) != n:
                raise DatasetError(f"{where}: {name} has {arr.shape[0]} rows ({first}), labels have {n}")
        if self.features is not None and len(self.features.shape) != 4:
            raise DatasetError(f"{where}: features must be (N, C, H, W), found shape {tuple(self.features.shape)}")
        if self.attribute_embeddings is not None:
            emb = np.asarray(self.attribute_embeddings)
            if emb.ndim != 2 or emb.shape[0] != self.num_attributes:
                raise DatasetError(
                    f"{where}: attribute_embeddings must be ({self.num_attributes}, D) to match "
                    f"class_attributes, found shape {emb.shape}"
                )
        self._check_finite(where)
        self._check_class_split(where)
        if len(self.class_names) != k:
            raise DatasetError(f"{where}: {len(self.class_names)} class_names for {k} classes")
        if len(self.attribute_names) != self.num_attributes:
            raise DatasetError(
                f"{where}: {len(self.attribute_names)} attribute_names for {self.num_attributes} attributes"
            )

    def _check_finite(self, where: str) -> None:
        """NaN/inf in the in-memory arrays, named with the first offending index.

        Features read lazily from files (stores, HDF5, memmaps) are checked batch by batch
        as they are read (:func:`zslkit.training.read_batch`), never scanned whole here.
        """
        arrays = {
            "class_attributes": (self.class_attributes, ("class", "attribute")),
            "attribute_embeddings": (self.attribute_embeddings, ("attribute", "dimension")),
            "global_features": (self.global_features, ("image", "channel")),
        }
        if isinstance(self.features, np.ndarray) and not isinstance(self.features, np.memmap):
            arrays["features"] = (self.features, ("image", "channel", "row", "column"))
        for field_name, (array, axes) in arrays.items():
            bad = None if array is None else first_non_finite(array)
            if bad is not None:
                at = ", ".join(f"{axis} {i}" for axis, i in zip(axes, bad))
                raise DatasetError(f"{where}: {field_name} has a non-finite value ({np.asarray(array)[bad]}) at {at}")

    def _check_class_split(self, where: str) -> None:
        """Every class with images must be seen (trainval) or unseen (test_unseen).

        Views (``metadata["view"]``, e.g. :meth:`validation_view`) hide classes on purpose.
        """
        if self.metadata.get("view"):
            return
        with_images = np.unique(self.labels)
        missed = np.setdiff1d(with_images, np.union1d(self.seen_classes, self.unseen_classes))
        if missed.size:
            k = int(missed[0])
            name = f" ({self.class_names[k]})" if k < len(self.class_names) else ""
            raise DatasetError(
                f"{where}: class {k}{name} has "
                f"{int((self.labels == k).sum())} images but is neither seen (in trainval) nor unseen (in test_unseen); "
                f"{missed.size} class(es) missed by the splits"
            )

    def __repr__(self) -> str:
        feats = "none" if self.features is None else "x".join(str(s) for s in self.features.shape)
        return (
            f"ZSLDataset({self.name!r}, images={self.num_images}, classes={self.num_classes} "
            f"(seen {len(self.seen_classes)}, unseen {len(self.unseen_classes)}), "
            f"attributes={self.num_attributes}, features={feats})"
        )
