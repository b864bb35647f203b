"""Reading feature batches and drawing training batches.

Features are read batch by batch from ``dataset.features[idx]`` (a numpy array, a
memmap or an HDF5 dataset, possibly float16); the whole array is never converted.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from zslkit.datasets.checks import check_finite_rows, feature_source

__all__ = ["batch_indices", "read_batch", "steps_per_epoch"]


def read_batch(features, indices: np.ndarray) -> torch.Tensor:
    """``features[indices]`` as a float32 tensor, in the order of ``indices``.

    A NaN or inf in the rows raises :class:`~zslkit.datasets.DatasetError` naming the
    image and the file.

    The rows are read once each and in increasing order (what memmaps and HDF5
    datasets want), then put back in the requested order.
    """
    indices = np.asarray(indices, dtype=np.int64)
    unique, inverse = np.unique(indices, return_inverse=True)
    rows = np.asarray(features[unique], dtype=np.float32)
    check_finite_rows(rows, unique, feature_source(features))  # files are not scanned whole at load
    if unique.shape[0] != indices.shape[0] or not np.array_equal(unique, indices):
        rows = rows[inverse]
    return torch.from_numpy(np.ascontiguousarray(rows))


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """``ceil(num_images / batch_size)``, the same for every sampler."""
    return -(-num_images // batch_size)


def batch_indices(
    sampler: str, indices: np.ndarray, labels: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """One epoch of batches of image indices drawn from ``indices`` (``labels``: all labels, indexed by image).

    ``shuffle``: a permutation cut into batches (the last one may be smaller);
    ``random``: each batch ``batch_size`` images drawn without replacement, independently;
    ``class_balanced``: each batch draws ``min(#classes, batch_size)`` distinct classes
    and ``max(batch_size // #classes, 1)`` images of each, with replacement.
    """
    indices = np.asarray(indices, dtype=np.int64)
    steps = steps_per_epoch(len(indices), batch_size)
    if sampler == "shuffle":
        order = rng.permutation(indices)
        for step in range(steps):
            yield order[step * batch_size : (step + 1) * batch_size]
    elif sampler == "random":
        for _ in range(steps):
            yield rng.choice(indices, size=min(batch_size, len(indices)), replace=False)
    elif sampler == "class_balanced":
        split_labels = labels[indices]
        classes = np.unique(split_labels)
        members = {c: indices[split_labels == c] for c in classes.tolist()}
        per_class = max(batch_size // len(classes), 1)
        for _ in range(steps):
            chosen = rng.choice(classes, size=min(len(classes), batch_size), replace=False)
            yield np.concatenate([rng.choice(members[c], size=per_class) for c in chosen.tolist()])
    else:
        raise ValueError(f"unknown sampler {sampler!r}; expected shuffle, random or class_balanced")
