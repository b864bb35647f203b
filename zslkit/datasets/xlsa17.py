"""The xlsa17 benchmark files (Xian et al., "Zero-Shot Learning -- The Good, the Bad and the Ugly").

Download ``xlsa17.zip`` (see the "Data" docs page); each ``xlsa17/data/<DATASET>/`` folder holds

``res101.mat``
    ``features`` ``(2048, N)`` ResNet-101 global features, ``labels`` ``(N, 1)`` **1-based**
    class numbers, ``image_files`` ``(N, 1)`` cell of image paths on the authors' machines.
``att_splits.mat``
    ``att`` ``(I, K)`` class attributes with unit-length columns, ``original_att`` ``(I, K)``
    (e.g. CUB's percentages), ``allclasses_names`` ``(K, 1)``, and the **1-based** image
    indices ``trainval_loc``, ``train_loc``, ``val_loc``, ``test_seen_loc``, ``test_unseen_loc``.

The class numbering is xlsa17's own (CUB folder ``001.Black_footed_Albatross`` is
class 150, 0-based): labels always follow xlsa17, never the image folder order.
:func:`load_xlsa17` converts everything to 0-based and returns a
:class:`~zslkit.datasets.ZSLDataset`; its ``features`` come from a zslkit feature store or
a DAZLE/MSDN feature-map HDF5 file when one is given, read lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.datasets.attribute_groups import packaged_groups
from zslkit.datasets.checks import (
    check_finite,
    file_error,
    index_vector,
    reads,
    sha256_file,
    to_zero_based,
)
from zslkit.datasets.container import DatasetError, ZSLDataset
from zslkit.datasets.feature_h5 import read_h5_labels
from zslkit.datasets.image_folder import relative_image_path
from zslkit.datasets.lazy_rows import LazyRows
from zslkit.datasets.matfile import load_mat, mat_strings
from zslkit.datasets.region_features import open_region_features
from zslkit.datasets.standard_vectors import with_standard_vectors
from zslkit.datasets.store import FeatureStore
from zslkit.datasets.word_vectors import load_attribute_vectors, read_attribute_names
from zslkit.registry import register

__all__ = [
    "ATT_SPLITS_FILE",
    "BENCHMARKS",
    "RES101_FILE",
    "AttSplits",
    "Benchmark",
    "Res101",
    "check_region_features",
    "load_awa2",
    "load_cub",
    "load_mat",  # re-exported from zslkit.datasets.matfile
    "load_sun",
    "load_xlsa17",
    "mat_strings",  # re-exported from zslkit.datasets.matfile
    "read_att_splits",
    "read_res101",
    "split_file_checksums",
    "store_cls_tokens",
]

RES101_FILE = "res101.mat"
ATT_SPLITS_FILE = "att_splits.mat"
_SPLIT_KEYS = {"trainval": "trainval_loc", "test_seen": "test_seen_loc", "test_unseen": "test_unseen_loc"}
_VALIDATION_KEYS = {"train": "train_loc", "val": "val_loc"}


@dataclass(frozen=True)
class Benchmark:
    """The published sizes of one xlsa17 benchmark, checked by its convenience loader."""

    name: str
    num_images: int
    num_classes: int
    num_seen: int
    num_attributes: int
    image_anchor: str  # the folder that the image_files paths are relative to


BENCHMARKS: dict[str, Benchmark] = {
    "cub": Benchmark("cub", 11788, 200, 150, 312, "images"),
    "sun": Benchmark("sun", 14340, 717, 645, 102, "images"),
    "awa2": Benchmark("awa2", 37322, 50, 40, 85, "JPEGImages"),
}


# ---------------------------------------------------------------------- file readers
@dataclass
class Res101:
    """``res101.mat`` with 0-based labels."""

    labels: np.ndarray
    image_files: list[str]
    features: np.ndarray | None  # (N, 2048) float32, or None when not requested

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class AttSplits:
    """``att_splits.mat`` as ``(K, I)`` matrices and 0-based split indices."""

    att: np.ndarray
    original_att: np.ndarray | None
    splits: dict[str, np.ndarray]
    class_names: list[str]


@reads("res101.mat")
def read_res101(path: str | Path, *, features: bool = True) -> Res101:
    """Read ``res101.mat``; labels become 0-based (the file's are 1-based)."""
    keys = ["labels", "image_files"] + (["features"] if features else [])
    content = load_mat(path, keys)
    labels = index_vector(content["labels"], path, "labels")
    files = mat_strings(content["image_files"], path, "image_files")
    if len(files) != labels.size:
        raise file_error(path, f"{len(files)} image_files for {labels.size} labels")
    if labels.size and labels.min() < 1:
        raise file_error(path, f"labels hold {labels.min()}; res101.mat labels are 1-based (is this file already 0-based?)")
    global_features = None
    if features:
        global_features = np.asarray(content["features"])
        if global_features.ndim != 2 or labels.size not in global_features.shape:
            raise file_error(path, f"features must be (C, N) with N={labels.size} images, found shape {global_features.shape}")
        if global_features.shape[1] != labels.size:
            raise file_error(path, f"features are stored ({global_features.shape}); expected (C, {labels.size}), images along columns")
        check_finite(global_features, path, "features (C, N)")
        global_features = np.ascontiguousarray(global_features.T, dtype=np.float32)
    return Res101(labels=labels - 1, image_files=files, features=global_features)


@reads("att_splits.mat")
def read_att_splits(path: str | Path, num_images: int, num_classes: int | None = None) -> AttSplits:
    """Read ``att_splits.mat``: attributes become ``(K, I)``, split indices 0-based.

    ``num_images`` bounds the split indices; ``num_classes`` (the number of classes the
    labels use; every xlsa17 class has images) must equal the number of ``att`` columns.
    """
    content = load_mat(path, ["att", *_SPLIT_KEYS.values()], ("original_att", "allclasses_names", *_VALIDATION_KEYS.values()))
    att = np.asarray(content["att"])
    check_finite(att, path, "att (I, K)")  # also refuses text and complex values
    att = att.astype(np.float64)
    if att.ndim != 2:
        raise file_error(path, f"att must be (I, K), found shape {att.shape}")
    if num_classes is not None and att.shape[1] != num_classes:
        hint = " -- transposed? xlsa17 stores att as (I, K)" if att.shape[0] == num_classes else ""
        raise file_error(path, f"att has {att.shape[1]} class columns (shape {att.shape}), the labels of res101.mat use {num_classes} classes{hint}")
    original = None
    if "original_att" in content:
        original = np.asarray(content["original_att"])
        check_finite(original, path, "original_att (I, K)")
        if original.shape != att.shape:
            raise file_error(path, f"original_att has shape {original.shape}, att has {att.shape}")
        original = original.astype(np.float64).T
    splits = {}
    for split, key in {**_SPLIT_KEYS, **_VALIDATION_KEYS}.items():
        if key in content:
            splits[split] = to_zero_based(index_vector(content[key], path, key), num_images, path, key, one_based=True)
    if ("train" in splits) != ("val" in splits):
        raise file_error(path, "has only one of train_loc and val_loc; the validation split needs both")
    names = mat_strings(content["allclasses_names"], path, "allclasses_names") if "allclasses_names" in content else []
    if names and len(names) != att.shape[1]:
        raise file_error(path, f"{len(names)} allclasses_names for {att.shape[1]} classes of att")
    return AttSplits(att=att.T.astype(np.float32), original_att=None if original is None else original.astype(np.float32), splits=splits, class_names=names)


def split_file_checksums(folder: str | Path) -> dict[str, str]:
    """SHA-256 of the xlsa17 files that define the images, labels and splits (``res101.mat``, ``att_splits.mat``)."""
    folder = Path(folder)
    return {name: sha256_file(folder / name) for name in (RES101_FILE, ATT_SPLITS_FILE) if (folder / name).is_file()}


def check_split_checksums(store_path: Path, recorded: Any, folder: Path) -> None:
    """Refuse a store extracted for other xlsa17 files than those in ``folder`` (``split_files_sha256`` in its metadata)."""
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise DatasetError(f"{store_path}: split_files_sha256 in store.json must map file names to digests, found {recorded!r}")
    current = split_file_checksums(folder)
    for name, digest in sorted(recorded.items()):
        if name in current and current[name] != digest:
            raise DatasetError(
                f"{store_path}: extracted with another {name} than {folder / name} "
                f"(sha256 {str(digest)[:12]}... recorded, {current[name][:12]}... now); "
                "re-extract, or point --xlsa17 at the files it was made from"
            )


# --------------------------------------------------------------------- region features
def check_region_features(path: Path, features: LazyRows, res101: Res101, res101_path: Path) -> None:
    """Refuse region features that do not describe the images of ``res101.mat``, in its order."""
    if isinstance(features, FeatureStore):
        check_split_checksums(path, features.metadata.get("split_files_sha256"), res101_path.parent)
        files = features.metadata.get("files")
        if files is not None:
            expected = [relative_image_path(f) for f in res101.image_files]
            if files != expected:
                first = next((i for i, (a, b) in enumerate(zip(files, expected)) if a != b), min(len(files), len(expected)))
                found = files[first] if first < len(files) else "<end of list>"
                wanted = expected[first] if first < len(expected) else "<end of list>"
                raise DatasetError(
                    f"{path}: the store was extracted for another image list than {res101_path} "
                    f"(image {first}: {found!r} in the store, {wanted!r} in res101.mat)"
                )
    else:
        labels = read_h5_labels(path)
        if labels is not None and labels.shape == res101.labels.shape and not np.array_equal(labels, res101.labels):
            first = int(np.flatnonzero(labels != res101.labels)[0])
            raise DatasetError(
                f"{path}: labels disagree with {res101_path} at image {first} "
                f"({labels[first]} vs {res101.labels[first]} 0-based): features of another image order?"
            )
    if len(features) != res101.num_images:
        raise DatasetError(f"{path}: holds {len(features)} images, {res101_path} lists {res101.num_images}")


def store_cls_tokens(region: LazyRows | None, path: str | Path | None) -> np.ndarray:
    """The ``(N, C)`` float32 CLS tokens (the first prefix token) of the feature store ``region`` read from ``path``."""
    if not isinstance(region, FeatureStore):
        what = "no features were given" if path is None else f"{path} is not a zslkit feature store"
        raise DatasetError(f"global_features='cls' reads the CLS tokens of a ViT feature store, but {what}; "
                           "give features=STORE made by `zslkit extract` with a ViT backbone")
    prefix = region.require_prefix("global_features='cls'")
    return np.ascontiguousarray(np.asarray(prefix[:, 0]), dtype=np.float32)


# ------------------------------------------------------------------------------ loaders
@register("dataset", "xlsa17")
def load_xlsa17(
    path: str | Path,
    *,
    features: str | Path | None = None,
    class_attributes: str = "att",
    attribute_vectors: str | Path | None = None,
    attribute_names: str | Path | None = None,
    global_features: bool | str = True,
    name: str | None = None,
) -> ZSLDataset:
    """Load an ``xlsa17/data/<DATASET>`` folder (``res101.mat`` + ``att_splits.mat``).

    Args:
        path: the folder holding ``res101.mat`` and ``att_splits.mat``.
        features: a zslkit feature store directory (``zslkit extract``) or a DAZLE/MSDN
            ``feature_map`` HDF5 file with the region features ``(N, C, H, W)`` of the
            same images; read lazily. ``None``: only the global ``res101`` features.
        class_attributes: ``"att"`` (unit-length, the default) or ``"original_att"``.
        attribute_vectors: ``(I, D)`` attribute word vectors, ``.npy`` or ``.pkl``.
        attribute_names: CUB ``attributes.txt``, AwA2 ``predicates.txt``, SUN ``attributes.mat``
            or one name per line.
        global_features: ``True``: the ``(N, 2048)`` ``res101`` features; ``False``: none (saves memory
            when region features are given); ``"cls"``: the CLS token ``(N, C)`` of every image in the
            feature store ``features`` (a ViT store that holds its prefix tokens; others are refused in one line).
        name: dataset name (default: the folder name, lower-cased).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: xlsa17 folder not found (expected a directory with {RES101_FILE} and {ATT_SPLITS_FILE})")
    if class_attributes not in ("att", "original_att"):
        raise ValueError(f"class_attributes must be 'att' or 'original_att', got {class_attributes!r}")
    res101_path, splits_path = folder / RES101_FILE, folder / ATT_SPLITS_FILE
    if global_features not in (True, False, "cls"):
        raise ValueError(f"global_features must be true, false or 'cls' (the feature store's CLS tokens), got {global_features!r}")
    res101 = read_res101(res101_path, features=global_features is True)
    num_classes = int(res101.labels.max()) + 1 if res101.num_images else None
    splits = read_att_splits(splits_path, res101.num_images, num_classes)
    if class_attributes == "original_att" and splits.original_att is None:
        raise file_error(splits_path, "has no original_att; use class_attributes='att'")
    matrix = splits.att if class_attributes == "att" else splits.original_att
    vectors = None if attribute_vectors is None else load_attribute_vectors(attribute_vectors, matrix.shape[1])
    names = [] if attribute_names is None else read_attribute_names(attribute_names, matrix.shape[1])
    region = None
    if features is not None:
        region = open_region_features(features)
        check_region_features(Path(features).expanduser(), region, res101, res101_path)
    return ZSLDataset(
        name=name or folder.name.lower(),
        labels=res101.labels,
        class_attributes=matrix,
        splits=splits.splits,
        features=region,
        global_features=store_cls_tokens(region, features) if global_features == "cls" else res101.features,
        class_names=splits.class_names,
        attribute_names=names,
        attribute_embeddings=vectors,
        metadata={
            "format": "xlsa17",
            "source": str(folder),
            "features": None if features is None else str(features),
            "class_attributes": class_attributes,
            "attribute_vectors": None if attribute_vectors is None else str(attribute_vectors),
            "image_files": res101.image_files,
        },
    )


def _load_benchmark(key: str, xlsa17: str | Path, options: dict[str, Any]) -> ZSLDataset:
    info = BENCHMARKS[key]
    dataset = load_xlsa17(xlsa17, name=key, **options)
    found = (dataset.num_images, dataset.num_classes, len(dataset.seen_classes), dataset.num_attributes)
    expected = (info.num_images, info.num_classes, info.num_seen, info.num_attributes)
    if found != expected:
        raise DatasetError(
            f"{xlsa17}: not the xlsa17 {key.upper()} benchmark: found {found[0]} images, {found[1]} classes "
            f"({found[2]} seen), {found[3]} attributes; expected {expected[0]}, {expected[1]} ({expected[2]} seen), {expected[3]}"
        )
    if options.get("attribute_vectors") is None:
        dataset = with_standard_vectors(dataset, key)
    if dataset.attribute_groups is None:
        dataset.attribute_groups = packaged_groups(key, dataset.num_attributes)
    return dataset


@register("dataset", "cub")
def load_cub(xlsa17: str | Path, **options: Any) -> ZSLDataset:
    """CUB-200-2011 from ``xlsa17/data/CUB`` (11788 images, 150 seen + 50 unseen classes, 312 attributes).

    ``options`` are those of :func:`load_xlsa17` (``features``, ``attribute_vectors``, ...). Without
    ``attribute_vectors`` (here and in ``sun``, ``awa2``) the dataset carries zslkit's packaged
    word2vec vectors of the paper repositories (:mod:`zslkit.datasets.standard_vectors`).
    """
    return _load_benchmark("cub", xlsa17, options)


@register("dataset", "sun")
def load_sun(xlsa17: str | Path, **options: Any) -> ZSLDataset:
    """SUN attribute from ``xlsa17/data/SUN`` (14340 images, 645 seen + 72 unseen classes, 102 attributes)."""
    return _load_benchmark("sun", xlsa17, options)


@register("dataset", "awa2")
def load_awa2(xlsa17: str | Path, **options: Any) -> ZSLDataset:
    """AwA2 from ``xlsa17/data/AWA2`` (37322 images, 40 seen + 10 unseen classes, 85 attributes)."""
    return _load_benchmark("awa2", xlsa17, options)
