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

import math
from collections.abc import Sequence

import torch
from torch import nn

from zslkit import distributed
from zslkit.models.output import ModelOutput

__all__ = ["gather_output", "wrap"]


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` in :class:`~torch.nn.parallel.DistributedDataParallel` inside a process group, else ``net``."""
    if not distributed.is_distributed():
        return net
    if getattr(net, "batchnorm", None) == "sync" and device.type != "cuda":
        raise ValueError("backbone_batchnorm 'sync' needs CUDA (torch's SyncBatchNorm); on CPU use 'frozen' or 'train'")
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


def _fields(output: ModelOutput, with_maps: bool) -> list[tuple[str, str | None, torch.Tensor]]:
    """``(field, branch, tensor)`` for every per-image tensor of ``output`` that is gathered."""
    found: list[tuple[str, str | None, torch.Tensor]] = [("scores", None, output.scores)]
    for name in ("branch_scores", "attribute_scores") + (("maps",) if with_maps else ()):
        found += [(name, branch, value) for branch, value in getattr(output, name).items() if value is not None]
    return found


def gather_output(output: ModelOutput, counts: Sequence[int], with_maps: bool = True) -> ModelOutput:
    """Every process's :class:`ModelOutput` rows, concatenated in rank order (one collective).

    ``counts``: rows of each process. The per-image tensors are flattened to
    ``(n, F)``, concatenated along ``F``, gathered once and split back. Attention maps
    ``(n, I, R)`` are large: with ``with_maps=False`` the result's maps are ``None``
    (loss terms that read maps set ``needs_maps = True``).
    """
    fields = _fields(output, with_maps)
    flat = torch.cat([value.flatten(1) for _, _, value in fields], dim=1)
    gathered = distributed.all_gather_rows(flat, counts)
    result = ModelOutput(scores=output.scores, maps=dict.fromkeys(output.maps))
    start = 0
    for name, branch, value in fields:
        width = math.prod(value.shape[1:])
        piece = gathered[:, start : start + width].reshape(-1, *value.shape[1:])
        start += width
        if branch is None:
            result.scores = piece
        else:
            getattr(result, name)[branch] = piece
    return result
