"""Reading feature batches, drawing training batches, and sharding them over processes.

Features are read batch by batch from ``dataset.features[idx]`` (a numpy array, a
memmap or an HDF5 dataset, possibly float16); the whole array is never converted.
A map-style :class:`torch.utils.data.Dataset` (e.g. preprocessed images for
end-to-end fine-tuning) is read item by item and stacked, in the training process or
by DataLoader workers (:func:`shard_inputs`).

Under data parallelism every process draws the same global batches (same sampler,
same seed, same epoch) and keeps its :func:`shard` of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from zslkit.datasets.checks import check_finite_rows, feature_source
from zslkit.datasets.resident import ResidentFeatures
from zslkit.datasets.samplers import steps_per_epoch  # re-exported: the batches of an epoch
from zslkit.distributed import shard_range
from zslkit.registry import create

__all__ = ["batch_indices", "batch_targets", "read_batch", "shard", "shard_inputs", "steps_per_epoch"]


def read_batch(features, indices: np.ndarray) -> torch.Tensor:
    """``features[indices]`` as a float32 tensor, in the order of ``indices``.

    A NaN or inf in the rows raises :class:`~zslkit.datasets.DatasetError` naming the
    image and the file.

    The rows are read once each and in increasing order (what memmaps and HDF5
    datasets want), then put back in the requested order. A torch ``Dataset`` is
    read item by item (``features[i]`` for each index) and stacked.
    :class:`~zslkit.datasets.ResidentFeatures` give their rows on their device
    (checked when they were loaded).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(features, ResidentFeatures):
        return features.take(indices)
    if isinstance(features, torch.utils.data.Dataset):
        items = [torch.as_tensor(features[int(i)], dtype=torch.float32) for i in indices]
        if not items:  # an empty shard: the shape of one item, no rows
            return torch.empty((0, *torch.as_tensor(features[0]).shape))
        return torch.stack(items)
    unique, inverse = np.unique(indices, return_inverse=True)
    rows = np.asarray(features[unique], dtype=np.float32)
    check_finite_rows(rows, unique, feature_source(features))  # files are not scanned whole at load
    if unique.shape[0] != indices.shape[0] or not np.array_equal(unique, indices):
        rows = rows[inverse]
    return torch.from_numpy(np.ascontiguousarray(rows))


def shard(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of ``batch`` (``np.array_split(batch, world_size)[rank]``).

    The shards are disjoint, cover the batch, and concatenated in rank order give
    ``batch`` back, so gathering per-rank outputs restores the single-process order.
    Unlike :class:`torch.utils.data.DistributedSampler` nothing is padded: a short
    last batch gives uneven (possibly empty) shards rather than repeated images.
    """
    start, stop = shard_range(len(batch), rank, world_size)
    return batch[start:stop]


def _stack_items(items: list) -> torch.Tensor | None:
    """DataLoader collate: the items as one float32 tensor (``None`` for an empty shard)."""
    return torch.stack([torch.as_tensor(item, dtype=torch.float32) for item in items]) if items else None


def shard_inputs(
    inputs, batches: Iterable[np.ndarray], rank: int = 0, world_size: int = 1, workers: int = 0
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``(batch, inputs of this rank's shard of it)`` for every global batch of ``batches``.

    ``inputs`` is read with :func:`read_batch`; a torch ``Dataset`` with ``workers > 0``
    is read by a :class:`~torch.utils.data.DataLoader` with that many worker processes,
    which prepare the next batches while the model trains (the epoch's batches are
    drawn up front). Features held on a device (:class:`~zslkit.datasets.ResidentFeatures`)
    get the positions of the whole epoch in one host-to-device copy.
    """
    if isinstance(inputs, ResidentFeatures):
        yield from _resident_shards(inputs, list(batches), rank, world_size)
    elif workers > 0 and isinstance(inputs, torch.utils.data.Dataset):
        batches = list(batches)
        plan = [shard(batch, rank, world_size).tolist() for batch in batches]
        loader = torch.utils.data.DataLoader(inputs, batch_sampler=plan, num_workers=workers, collate_fn=_stack_items)
        for batch, local in zip(batches, loader):
            yield batch, local if local is not None else read_batch(inputs, shard(batch, rank, world_size))
    else:
        for batch in batches:
            yield batch, read_batch(inputs, shard(batch, rank, world_size))


def _resident_shards(inputs: ResidentFeatures, batches: list[np.ndarray], rank: int, world_size: int):
    """:func:`shard_inputs` for features held on a device: the positions of all of the epoch's
    images go to the device in one copy, and every batch is gathered there from them."""
    local = [shard(batch, rank, world_size) for batch in batches]
    flat = np.concatenate(local) if local else np.zeros(0, dtype=np.int64)
    positions = torch.from_numpy(inputs.positions(flat)).to(inputs.device)
    for batch, part in zip(batches, positions.split([len(p) for p in local])):
        yield batch, inputs.gather(part)


def batch_targets(labels: np.ndarray, batches: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """The labels of every global batch of ``batches`` on ``device``, from one host-to-device copy."""
    flat = labels[np.concatenate(batches)] if batches else np.zeros(0, dtype=np.int64)
    return list(torch.as_tensor(flat, device=device).split([len(batch) for batch in batches]))


def batch_indices(
    sampler: str, indices: np.ndarray, labels: np.ndarray, batch_size: int, rng: np.random.Generator,
    options: dict | None = None,
) -> Iterator[np.ndarray]:
    """One epoch of batches of image indices drawn from ``indices`` (``labels``: all labels, indexed by image)
    by the registered sampler ``sampler`` built with ``options`` (:mod:`zslkit.datasets.samplers`:
    ``shuffle``, ``random``, ``class_balanced``, ``episodic`` or a plugin's)."""
    return create("sampler", sampler, **(options or {}))(np.asarray(indices, dtype=np.int64), labels, batch_size, rng)
