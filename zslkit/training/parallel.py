"""Data-parallel training: wrapping a model in DDP and computing losses on the global batch.

Every process draws the same global batch and runs the model on its
:func:`~zslkit.training.data.shard` of it. :func:`gather_output` then all-gathers
the model outputs (differentiably, see :func:`zslkit.distributed.all_gather_rows`)
so that every process evaluates the loss terms on the whole global batch, exactly
as a single process would. DDP averages the parameter gradients over the ``P``
processes; the gather's backward hands each process ``P`` times its rows' share of
the global gradient, so the average is the single-process gradient for any loss
term, including those that are not a mean over images (``self_calibration`` is
``-log`` of a batch mean). ``docs/distributed.md`` has the derivation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from zslkit import distributed
from zslkit.models.output import ModelOutput, map_tensors

__all__ = ["PER_IMAGE_FIELDS", "gather_output", "wrap"]


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` in :class:`~torch.nn.parallel.DistributedDataParallel` inside a process group, else ``net``."""
    if not distributed.is_distributed():
        return net
    if getattr(net, "batchnorm", None) == "sync" and device.type != "cuda":
        raise ValueError("backbone_batchnorm 'sync' needs CUDA (torch's SyncBatchNorm); on CPU use 'frozen' or 'train'")
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


#: Per-image fields of :class:`ModelOutput`: ``(B, ...)`` tensors, dicts branch -> tensor or ``None``, or dicts
#: branch -> dict name -> tensor (``extras``). Everything else (``constants``, ``grid``) is the same on every process.
PER_IMAGE_FIELDS: tuple[str, ...] = ("scores", "branch_scores", "attribute_scores", "maps", "extras", "global_token")


def _rows(value: torch.Tensor) -> torch.Tensor:
    """``(n, ...)`` -> ``(n, F)`` (``(n,)`` -> ``(n, 1)``; empty shards too)."""
    return value.reshape(value.shape[0], math.prod(value.shape[1:]))


def gather_output(output: ModelOutput, counts: Sequence[int], with_maps: bool = True) -> ModelOutput:
    """Every process's :class:`ModelOutput` rows, concatenated in rank order.

    ``counts``: rows of each process. Every per-image tensor (:data:`PER_IMAGE_FIELDS`, the
    extras of every branch included, whatever their names) is flattened to ``(n, F)``; those of
    one dtype are concatenated along ``F``, gathered in one collective and split back.
    ``constants`` and ``grid`` are kept as they are. Attention maps ``(n, I, R)`` are large:
    with ``with_maps=False`` the result's maps are ``None`` (loss terms that read maps set
    ``needs_maps = True``).
    """
    names = [name for name in PER_IMAGE_FIELDS if with_maps or name != "maps"]
    found: list[torch.Tensor] = []  # every gathered tensor, in the order map_tensors walks the fields
    for name in names:
        map_tensors(getattr(output, name), found.append)
    gathered: list[torch.Tensor | None] = [None] * len(found)
    for dtype in dict.fromkeys(value.dtype for value in found):
        group = [i for i, value in enumerate(found) if value.dtype == dtype]
        flat = distributed.all_gather_rows(torch.cat([_rows(found[i]) for i in group], dim=1), counts)
        start = 0
        for i in group:
            width = math.prod(found[i].shape[1:])
            gathered[i] = flat[:, start : start + width].reshape(-1, *found[i].shape[1:])
            start += width
    # the same walk again hands each tensor its gathered rows (by position: a tensor found twice is gathered
    # twice, as before); the maps left out under ``with_maps=False`` become None
    rows = iter(gathered)
    changes = {name: map_tensors(getattr(output, name), (lambda _: next(rows)) if name in names else (lambda _: None))
               for name in PER_IMAGE_FIELDS}
    return dataclasses.replace(output, **changes)
