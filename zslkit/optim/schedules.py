"""Registered learning-rate schedules (registry kind ``schedule``), computed by ``timm.scheduler``.

A schedule factory is called as ``factory(epochs=..., **options)`` -- the recipe's ``epochs``
and its ``schedule_options`` -- and returns a callable ``schedule(t) -> factor``: the
multiplier of every parameter group's learning rate ``t`` epochs into training (a float: the
trainer calls it before every optimizer update with ``t = epoch - 1 + update / updates``, the
epoch counted from 1, so a warmup and a cosine move within an epoch).

The built-in ones are timm's schedulers run on a learning rate of 1, so their values are
factors; ``warmup_factor`` and ``min_factor`` are fractions of the recipe's rates:

* ``constant``: 1 after the warmup;
* ``cosine``: ``min_factor + (1 - min_factor) * (1 + cos(pi * t / epochs)) / 2``
  (``timm.scheduler.CosineLRScheduler``; ``t`` counts from 0 including the warmup, as timm does);
* ``step``: ``decay_rate ** floor(t / decay_epochs)`` (``StepLRScheduler``);
* ``multistep``: ``decay_rate ** (number of milestones <= t + 1)`` (``MultiStepLRScheduler``): a
  milestone ``m`` applies from epoch ``m`` (counted from 1) on, timm's convention.

Every one takes ``warmup_epochs`` (default 0): for ``t < warmup_epochs`` the factor rises
linearly from ``warmup_factor`` (default 0) at ``t = 0`` towards 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from zslkit.registry import register

__all__ = ["TimmSchedule", "constant", "cosine", "multistep", "step"]


def _check(name: str, warmup_epochs: float, warmup_factor: float) -> None:
    if warmup_epochs < 0 or not 0 <= warmup_factor <= 1:
        raise ValueError(f"schedule {name!r}: warmup_epochs must be >= 0 and warmup_factor in [0, 1], "
                         f"got {warmup_epochs} and {warmup_factor}")


class TimmSchedule:
    """``schedule(t) -> factor``: a ``timm.scheduler`` scheduler evaluated at ``t`` epochs, on a learning rate of 1.

    ``make(optimizer)`` builds the timm scheduler on the one-parameter optimizer it is given.
    """

    def __init__(self, name: str, make: Callable[[torch.optim.Optimizer], Any]) -> None:
        self.name = name
        self._optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        self._scheduler = make(self._optimizer)

    def __call__(self, t: float) -> float:
        self._scheduler.step(epoch=t)
        return float(self._optimizer.param_groups[0]["lr"])

    def __repr__(self) -> str:
        return f"TimmSchedule({self.name!r})"


@register("schedule", "constant")
def constant(*, epochs: int, warmup_epochs: float = 0, warmup_factor: float = 0.0) -> TimmSchedule:
    """Factor 1, after an optional linear warmup."""
    _check("constant", warmup_epochs, warmup_factor)
    from timm.scheduler import StepLRScheduler

    return TimmSchedule("constant", lambda opt: StepLRScheduler(opt, decay_t=max(epochs, 1) + 1, decay_rate=1.0,
                                                                warmup_t=warmup_epochs, warmup_lr_init=warmup_factor,
                                                                warmup_prefix=False))


@register("schedule", "cosine")
def cosine(*, epochs: int, min_factor: float = 0.0, warmup_epochs: float = 0, warmup_factor: float = 0.0) -> TimmSchedule:
    """Cosine from 1 at ``t = 0`` to ``min_factor`` at ``t = epochs``, after an optional warmup."""
    _check("cosine", warmup_epochs, warmup_factor)
    if not 0 <= min_factor <= 1:
        raise ValueError(f"schedule 'cosine': min_factor must be in [0, 1], got {min_factor}")
    from timm.scheduler import CosineLRScheduler

    return TimmSchedule("cosine", lambda opt: CosineLRScheduler(opt, t_initial=epochs, lr_min=min_factor,
                                                                warmup_t=warmup_epochs, warmup_lr_init=warmup_factor))


@register("schedule", "step")
def step(*, epochs: int, decay_epochs: float, decay_rate: float = 0.1, warmup_epochs: float = 0,
         warmup_factor: float = 0.0) -> TimmSchedule:
    """``decay_rate ** floor(t / decay_epochs)``, after an optional warmup (timm counts ``t`` from 0, warmup included)."""
    _check("step", warmup_epochs, warmup_factor)
    if decay_epochs <= 0 or decay_rate <= 0:
        raise ValueError(f"schedule 'step': decay_epochs and decay_rate must be positive, got {decay_epochs} and {decay_rate}")
    from timm.scheduler import StepLRScheduler

    return TimmSchedule("step", lambda opt: StepLRScheduler(opt, decay_t=decay_epochs, decay_rate=decay_rate,
                                                            warmup_t=warmup_epochs, warmup_lr_init=warmup_factor,
                                                            warmup_prefix=False))


@register("schedule", "multistep")
def multistep(*, epochs: int, milestones: list[float], decay_rate: float = 0.1, warmup_epochs: float = 0,
              warmup_factor: float = 0.0) -> TimmSchedule:
    """``decay_rate ** (number of milestones <= t + 1)``: the rate drops from epoch ``m`` (from 1) on, for each milestone ``m``."""
    _check("multistep", warmup_epochs, warmup_factor)
    milestones = list(milestones)
    if not milestones or milestones != sorted(milestones) or decay_rate <= 0:
        raise ValueError(f"schedule 'multistep': milestones must be a non-empty increasing list of epochs and decay_rate "
                         f"positive, got {milestones} and {decay_rate}")
    from timm.scheduler import MultiStepLRScheduler

    return TimmSchedule("multistep", lambda opt: MultiStepLRScheduler(opt, decay_t=milestones, decay_rate=decay_rate,
                                                                      warmup_t=warmup_epochs, warmup_lr_init=warmup_factor,
                                                                      warmup_prefix=False))
