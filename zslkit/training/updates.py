"""Optimizer updates of an epoch: gradient accumulation over micro-batches and the learning-rate schedule.

:func:`micro_batches` cuts every batch of an epoch into ``accumulate_steps`` micro-batches;
:class:`EpochUpdates` says, for each, the weight of its loss (its share of the batch's images)
and whether the optimizer updates after it, and sets every group's learning rate from the
recipe's schedule before each update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from zslkit.optim.param_groups import group_rate

__all__ = ["EpochUpdates", "micro_batches"]


@dataclass
class EpochUpdates:
    """How the micro-batches of one epoch become optimizer updates.

    Attributes:
        weights: per micro-batch, the factor of its loss (``None``: the whole batch, no factor).
        ends: per micro-batch, whether the optimizer steps after it (the last of its batch).
        epoch: the epoch (from 1); ``updates``: the optimizer updates of the epoch.
        schedule: ``schedule(t) -> factor`` (:mod:`zslkit.optim.schedules`), or ``None`` to keep the rates.
        role_rates: the base learning rate of every group role (``head``, ``backbone``).
    """

    weights: list[float | None]
    ends: list[bool]
    epoch: int
    updates: int
    schedule: Callable[[float], float] | None = None
    role_rates: dict[str, float] | None = None

    def before_update(self, optimizer: torch.optim.Optimizer, update: int) -> None:
        """Set every group's rate for update ``update`` (from 0) of the epoch: its role's rate, its
        ``lr_scale``, times the schedule's factor at ``t = epoch - 1 + update / updates``."""
        if self.schedule is None:
            return
        factor = self.schedule(self.epoch - 1 + update / self.updates)
        for group in optimizer.param_groups:
            group["lr"] = group_rate(group, self.role_rates) * factor


def micro_batches(batches: list[np.ndarray], accumulate_steps: int) -> tuple[list[np.ndarray], list[float | None], list[bool]]:
    """``(micro-batches, loss weights, ends)``: each batch cut into ``accumulate_steps`` near-equal
    parts (``np.array_split``; empty parts dropped), each weighted by its share of the batch's images."""
    if accumulate_steps == 1:
        return batches, [None] * len(batches), [True] * len(batches)
    micro, weights, ends = [], [], []
    for batch in batches:
        parts = [part for part in np.array_split(batch, accumulate_steps) if len(part)]
        micro.extend(parts)
        weights.extend(len(part) / len(batch) for part in parts)
        ends.extend([False] * (len(parts) - 1) + [True])
    return micro, weights, ends
