"""The optimizer's parameter groups of a model: head and backbone rates, weight decay, layer decay, frozen stages.

:func:`parameter_groups` gives every group ``params``, ``lr`` and ``role`` (``"head"`` or
``"backbone"``); groups split for weight decay carry their own ``weight_decay``, and
layer-decayed ones their ``lr_scale`` (their ``lr`` is the role's rate times it). The
trainer sets each group's rate from its role and scale (:func:`group_rate`).

Backbone parameters are named as in the timm model for zslkit's ``timm`` backbone (``conv1.weight``,
``blocks.3.attn.qkv.weight``...; :func:`stage_root`), else as in the backbone module itself.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zslkit.backbones.timm_backbone import TimmBackbone
from zslkit.models.backbone_model import BackboneModel
from zslkit.registry import did_you_mean

__all__ = ["freeze_stages", "group_rate", "group_roles", "parameter_groups", "stage_root"]


def stage_root(backbone: nn.Module) -> nn.Module:
    """The module whose parameter names a recipe uses for ``backbone``: the timm model inside zslkit's
    ``timm`` backbone, else the backbone itself."""
    return backbone.model if isinstance(backbone, TimmBackbone) else backbone


def freeze_stages(backbone: nn.Module, prefixes: list[str]) -> list[str]:
    """Stop the gradients of the backbone parameters under ``prefixes``; return their names.

    A prefix names a module or parameter (``layer1`` covers ``layer1.0.conv1.weight``, not
    ``layer10``). A prefix that matches no parameter is an error listing the top-level names.
    Only parameters are frozen: BatchNorm running statistics follow ``backbone_batchnorm``.
    """
    root = stage_root(backbone)
    names = [name for name, _ in root.named_parameters()]
    frozen: list[str] = []
    for prefix in prefixes:
        matched = [n for n in names if n == prefix or n.startswith(f"{prefix}.")]
        if not matched:
            tops = list(dict.fromkeys(n.split(".")[0] for n in names))
            raise ValueError(f"freeze_backbone: {prefix!r} names no parameter of backbone {type(root).__name__}"
                             f"{did_you_mean(prefix, tops)}; its top-level names: {', '.join(tops)}")
        frozen.extend(matched)
    params = dict(root.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    return frozen


def _no_weight_decay(module: nn.Module) -> set[str]:
    """The timm model's own no-weight-decay names (``pos_embed``, ``cls_token``...), if it lists any."""
    listed = getattr(module, "no_weight_decay", None)
    return set(listed()) if callable(listed) else set()


def _split(module: nn.Module, rate: float, role: str, weight_decay: float, norm_bias_decay: bool,
           layer_decay: float) -> list[dict[str, Any]]:
    """``module``'s trainable parameters as groups of ``role`` at ``rate`` (split as the recipe says)."""
    if norm_bias_decay and not layer_decay:  # one group (timm is not imported: it is slow to import)
        return [{"params": [p for p in module.parameters() if p.requires_grad], "lr": rate, "role": role}]
    from timm.optim import param_groups_layer_decay, param_groups_weight_decay

    if layer_decay:
        groups = param_groups_layer_decay(module, weight_decay=weight_decay, layer_decay=layer_decay,
                                          weight_decay_exclude_1d=not norm_bias_decay,
                                          no_weight_decay_list=() if norm_bias_decay else _no_weight_decay(module))
        return [{"params": g["params"], "lr": rate * g["lr_scale"], "lr_scale": g["lr_scale"],
                 "weight_decay": g["weight_decay"], "role": role} for g in groups]
    groups = param_groups_weight_decay(module, weight_decay=weight_decay, no_weight_decay_list=_no_weight_decay(module))
    return [{**g, "lr": rate, "role": role} for g in groups]


def parameter_groups(net: nn.Module, *, lr: float, backbone_lr: float, weight_decay: float,
                     norm_bias_decay: bool = True, layer_decay: float = 0.0) -> list[dict[str, Any]]:
    """The optimizer's groups: the head (a model alone, or a :class:`BackboneModel`'s head) at ``lr``,
    the backbone at ``backbone_lr``. A model that owns its backbone and lists submodule names in
    ``backbone_lr_modules`` (ZSLViT) trains those at ``backbone_lr`` and the rest as its head.

    ``backbone_lr == 0`` freezes the backbone (no gradients, no group). ``norm_bias_decay=False``
    puts every 1-d parameter (norms, biases) and the timm model's ``no_weight_decay()`` names in
    groups without weight decay (``timm.optim.param_groups_weight_decay``). ``layer_decay`` (0: off)
    scales the backbone's rates layer by layer, ``layer_decay ** (depth below the top)``, from its
    ``group_matcher`` (``timm.optim.param_groups_layer_decay``; ViTs: the stem, each block, the final
    norm). Parameters that do not require gradients get no group.
    """
    if layer_decay and not isinstance(net, BackboneModel):
        raise ValueError("layer_decay applies to a fine-tuned backbone (train(..., backbone=...)); "
                         "this model has none: set layer_decay to 0")
    if not isinstance(net, BackboneModel):
        owned = [getattr(net, name) for name in getattr(net, "backbone_lr_modules", ())]
        if owned:
            return _owned_groups(net, owned, lr=lr, backbone_lr=backbone_lr, norm_bias_decay=norm_bias_decay,
                                 layer_decay=layer_decay)
        return _split(net, lr, "head", weight_decay, norm_bias_decay, 0.0)
    groups = _split(net.head, lr, "head", weight_decay, norm_bias_decay, 0.0)
    if backbone_lr == 0:
        net.backbone.requires_grad_(False)
        return groups
    root = stage_root(net.backbone)
    if layer_decay and not hasattr(root, "group_matcher"):
        raise ValueError(f"layer_decay needs a backbone that names its layers (a timm model's group_matcher); "
                         f"{type(root).__name__} has none: set layer_decay to 0")
    return groups + _split(root, backbone_lr, "backbone", weight_decay, norm_bias_decay, layer_decay)


def _owned_groups(net: nn.Module, owned: list[nn.Module], *, lr: float, backbone_lr: float, norm_bias_decay: bool,
                  layer_decay: float) -> list[dict[str, Any]]:
    """Groups of a model that owns its backbone and names, in ``backbone_lr_modules``, the submodules that train at
    ``backbone_lr`` (e.g. ZSLViT's ``backbone`` and ``adapters``); the rest is the head at ``lr``."""
    if layer_decay or not norm_bias_decay:
        raise ValueError(f"{type(net).__name__} names its backbone-rate parts (backbone_lr_modules); layer_decay and "
                         "norm_bias_decay=false are not supported for it: set layer_decay 0 and norm_bias_decay true")
    inside = {id(p) for module in owned for p in module.parameters()}
    head = [p for p in net.parameters() if p.requires_grad and id(p) not in inside]
    groups = [{"params": head, "lr": lr, "role": "head"}]
    if backbone_lr == 0:
        for module in owned:
            module.requires_grad_(False)
        return groups
    rest = [p for module in owned for p in module.parameters() if p.requires_grad]
    return groups + [{"params": rest, "lr": backbone_lr, "role": "backbone"}]


def group_roles(param_groups: list[dict[str, Any]]) -> list[str]:
    """Every group's role; groups without one (checkpoints written before roles) are the head, then the backbone."""
    return [group.get("role", "head" if index == 0 else "backbone") for index, group in enumerate(param_groups)]


def group_rate(group: dict[str, Any], role_rates: dict[str, float]) -> float:
    """The learning rate of ``group``: its role's rate, times its ``lr_scale`` when it has one."""
    rate = role_rates[group.get("role", "head")]
    return rate * group["lr_scale"] if "lr_scale" in group else rate
