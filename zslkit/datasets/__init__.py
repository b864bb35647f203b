"""Datasets: every loader returns a :class:`ZSLDataset`.

Registered loaders (``zslkit.load_dataset(name, ...)``): ``synthetic``; ``xlsa17``
(a ``res101.mat`` + ``att_splits.mat`` folder) and its checked variants ``cub``,
``sun``, ``awa2``; ``feature_h5`` (DAZLE/MSDN feature-map HDF5 files). Registered batch samplers:
``shuffle``, ``random``, ``class_balanced``, ``episodic`` (:mod:`zslkit.datasets.samplers`).
"""

from zslkit.datasets.container import SPLIT_NAMES, DatasetError, ZSLDataset
from zslkit.datasets.feature_h5 import H5Rows, load_feature_h5
from zslkit.datasets.image_folder import ImageList, MissingImagesError, relative_image_path, resolve_images
from zslkit.datasets.resident import ResidentFeatures, make_resident
from zslkit.datasets.samplers import EpisodicSampler
from zslkit.datasets.store import FeatureStore, IncompleteStoreError, create_store, open_store
from zslkit.datasets.synthetic import make_synthetic
from zslkit.datasets.word_vectors import load_attribute_vectors, read_attribute_names
from zslkit.datasets.xlsa17 import BENCHMARKS, load_awa2, load_cub, load_sun, load_xlsa17

__all__ = [
    "BENCHMARKS",
    "SPLIT_NAMES",
    "DatasetError",
    "EpisodicSampler",
    "FeatureStore",
    "H5Rows",
    "ImageList",
    "IncompleteStoreError",
    "MissingImagesError",
    "ResidentFeatures",
    "ZSLDataset",
    "create_store",
    "load_attribute_vectors",
    "load_awa2",
    "load_cub",
    "load_feature_h5",
    "load_sun",
    "load_xlsa17",
    "make_resident",
    "make_synthetic",
    "open_store",
    "read_attribute_names",
    "relative_image_path",
    "resolve_images",
]
