"""Registered optimizers (registry kind ``optimizer``).

An optimizer factory is called as ``factory(params, lr=..., weight_decay=..., momentum=...,
**options)`` -- ``params``: parameters or parameter groups (dicts with ``params`` and their
own settings), the recipe's ``lr``, ``weight_decay`` and ``momentum``, and its
``optimizer_options`` -- and returns a :class:`torch.optim.Optimizer`. Groups' own ``lr`` and
``weight_decay`` win over the arguments, as in PyTorch.

``rmsprop``, ``adam`` and ``sgd`` are the recipes of the papers zslkit reproduces. All four leave
the implementation to PyTorch's choice per device (``foreach=None``): the multi-tensor kernels on a
GPU, the per-parameter loop on the CPU, where the multi-tensor ones are no faster for small models
and slower for a ViT-B (Adam over 86 M parameters: 0.37 s a step per parameter, 0.68 s multi-tensor,
one thread; ``docs/performance.md``); both give bitwise the same updates. ``adamw`` is the ViT papers' optimizer, and
``timm`` builds any of timm's optimizers by name (``optimizer_options: {opt: lamb}``).
"""

from __future__ import annotations

from typing import Any

import torch

from zslkit.registry import register

__all__ = ["adam", "adamw", "rmsprop", "sgd", "timm_optimizer"]


@register("optimizer", "rmsprop")
def rmsprop(params, *, lr: float, weight_decay: float, momentum: float, alpha: float = 0.99,
            eps: float = 1e-8) -> torch.optim.Optimizer:
    """:class:`torch.optim.RMSprop` (``alpha``: its smoothing constant; PyTorch's defaults)."""
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, momentum=momentum, alpha=alpha, eps=eps)


@register("optimizer", "adam")
def adam(params, *, lr: float, weight_decay: float, momentum: float, beta2: float = 0.999,
         eps: float = 1e-8) -> torch.optim.Optimizer:
    """:class:`torch.optim.Adam` with ``betas=(momentum, beta2)``; weight decay added to the gradient (L2)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=(momentum, beta2), eps=eps)


@register("optimizer", "sgd")
def sgd(params, *, lr: float, weight_decay: float, momentum: float, nesterov: bool = False) -> torch.optim.Optimizer:
    """:class:`torch.optim.SGD` with momentum (0: plain SGD)."""
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)


@register("optimizer", "adamw")
def adamw(params, *, lr: float, weight_decay: float, momentum: float, beta2: float = 0.999,
          eps: float = 1e-8) -> torch.optim.Optimizer:
    """:class:`torch.optim.AdamW` with ``betas=(momentum, beta2)``: decoupled weight decay (the ViT papers')."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(momentum, beta2), eps=eps)


@register("optimizer", "timm")
def timm_optimizer(params, *, lr: float, weight_decay: float, momentum: float, opt: str = "adamw",
                   **options: Any) -> torch.optim.Optimizer:
    """Any optimizer of ``timm.optim.create_optimizer_v2`` by its name ``opt`` (``lamb``, ``lars``, ``adan``...).

    ``options`` go to timm (e.g. ``betas``, ``eps``). The parameter groups are the
    recipe's (:func:`zslkit.optim.parameter_groups`); timm's own filtering and layer
    decay are not applied a second time.
    """
    from timm.optim import create_optimizer_v2, list_optimizers

    if opt not in list_optimizers():
        from zslkit.registry import did_you_mean

        raise ValueError(f"optimizer 'timm': unknown opt {opt!r}{did_you_mean(opt, list_optimizers())} (see timm.optim.list_optimizers())")
    return create_optimizer_v2(list(params), opt=opt, lr=lr, weight_decay=weight_decay, momentum=momentum,
                               filter_bias_and_bn=False, **options)
