"""Optimizers, learning-rate schedules and parameter groups of a training recipe.

Registered kinds (built by the trainer from a :class:`~zslkit.training.TrainConfig`):

* ``optimizer``: ``factory(params, *, lr, weight_decay, momentum, **options) -> torch.optim.Optimizer``
  (:mod:`zslkit.optim.optimizers`);
* ``schedule``: ``factory(*, epochs, **options) -> schedule`` with ``schedule(t) -> factor``, the
  learning-rate multiplier at ``t`` epochs into training (:mod:`zslkit.optim.schedules`).

:mod:`zslkit.optim.param_groups` splits a model's parameters into the optimizer's groups
(head and backbone rates, no weight decay on norms and biases, layer-wise decay, frozen stages).
"""

from zslkit.optim.optimizers import adam, adamw, rmsprop, sgd, timm_optimizer
from zslkit.optim.param_groups import freeze_stages, group_roles, parameter_groups
from zslkit.optim.schedules import TimmSchedule

__all__ = ["TimmSchedule", "adam", "adamw", "freeze_stages", "group_roles", "parameter_groups", "rmsprop", "sgd",
           "timm_optimizer"]
