"""The optimizer's parameter groups of a model: head and backbone rates, weight decay, layer decay, frozen stages.

:func:`parameter_groups` gives every group ``params``, ``lr`` and ``role`` (``"head"`` or
``"backbone"``); groups split for weight decay carry their own ``weight_decay``, and
layer-decayed ones their ``lr_scale`` (their ``lr`` is the role's rate times it). The
trainer sets each group's rate from its role and scale (:func:`group_rate`).

The backbone is a :class:`BackboneModel`'s, or the one a model owns (its ``image_backbone``, a
submodule: :class:`~zslkit.models.TokenAttentionModel`'s ViT; :func:`trained_backbone`); the rest of
the model is the head. Backbone parameters are named as in the timm model for zslkit's ``timm`` and
``timm_tokens`` backbones (``conv1.weight``, ``blocks.3.attn.qkv.weight``...; :func:`stage_root`), else
as in the backbone module itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import nn

from zslkit.backbones.timm_backbone import TimmBackbone
from zslkit.models.backbone_model import BackboneModel
from zslkit.registry import did_you_mean

__all__ = ["backbone_rate_parts", "freeze_stages", "group_rate", "group_roles", "parameter_groups", "stage_root",
           "trained_backbone"]


def stage_root(backbone: nn.Module) -> nn.Module:
    """The module whose parameter names a recipe uses for ``backbone``: the timm model inside zslkit's
    ``timm`` backbone, else the backbone itself."""
    return backbone.model if isinstance(backbone, TimmBackbone) else backbone


def trained_backbone(net: nn.Module) -> nn.Module | None:
    """The backbone of ``net`` that trains at ``backbone_lr``: a :class:`BackboneModel`'s, or the one
    ``net`` owns (its ``image_backbone`` when that is a submodule of ``net``), else ``None``."""
    if isinstance(net, BackboneModel):
        return net.backbone
    owned = getattr(net, "image_backbone", None)
    if isinstance(owned, nn.Module) and any(module is owned for module in net.children()):
        return owned
    return None


def backbone_rate_parts(net: nn.Module) -> list[nn.Module]:
    """The submodules besides its backbone that a model that owns one trains at ``backbone_lr``: those its class
    names in ``backbone_lr_modules`` (ZSLViT: ``("adapters",)``, as the authors' optimizer groups them)."""
    if isinstance(net, BackboneModel):
        return []
    return [getattr(net, name) for name in getattr(net, "backbone_lr_modules", ())]


class _HeadView(nn.Module):
    """The parameters of ``net`` outside ``backbone`` (and ``others``), named as in ``net`` (the head of a model that
    owns its backbone)."""

    def __init__(self, net: nn.Module, backbone: nn.Module, *others: nn.Module) -> None:
        super().__init__()
        self._net = [net]  # in a list: not registered as a submodule
        self._skip = {id(p) for module in (backbone, *others) for p in module.parameters()}

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Parameter]]:
        for name, parameter in self._net[0].named_parameters(prefix, recurse, remove_duplicate):
            if id(parameter) not in self._skip:
                yield name, parameter


def _head(net: nn.Module, backbone: nn.Module) -> nn.Module:
    return net.head if isinstance(net, BackboneModel) else _HeadView(net, backbone, *backbone_rate_parts(net))


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
    """The optimizer's groups: the head (a model alone, a :class:`BackboneModel`'s head, or a model
    less the backbone it owns) at ``lr``, the backbone (:func:`trained_backbone`) at ``backbone_lr``,
    and so the parts a model lists in ``backbone_lr_modules`` (:func:`backbone_rate_parts`, no layer decay).

    ``backbone_lr == 0`` freezes the backbone (no gradients, no group). ``norm_bias_decay=False``
    puts every 1-d parameter (norms, biases) and the timm model's ``no_weight_decay()`` names in
    groups without weight decay (``timm.optim.param_groups_weight_decay``). ``layer_decay`` (0: off)
    scales the backbone's rates layer by layer, ``layer_decay ** (depth below the top)``, from its
    ``group_matcher`` (``timm.optim.param_groups_layer_decay``; ViTs: the stem, each block, the final
    norm). Parameters that do not require gradients get no group.
    """
    backbone = trained_backbone(net)
    if layer_decay and backbone is None:
        raise ValueError("layer_decay applies to a fine-tuned backbone (train(..., backbone=...)) or one the model "
                         "owns; this model has none: set layer_decay to 0")
    if backbone is None:
        return _split(net, lr, "head", weight_decay, norm_bias_decay, 0.0)
    groups = _split(_head(net, backbone), lr, "head", weight_decay, norm_bias_decay, 0.0)
    parts = backbone_rate_parts(net)
    if backbone_lr == 0:
        for module in (backbone, *parts):
            module.requires_grad_(False)
        return groups
    root = stage_root(backbone)
    if layer_decay and not hasattr(root, "group_matcher"):
        raise ValueError(f"layer_decay needs a backbone that names its layers (a timm model's group_matcher); "
                         f"{type(root).__name__} has none: set layer_decay to 0")
    groups += _split(root, backbone_lr, "backbone", weight_decay, norm_bias_decay, layer_decay)
    return groups + [g for module in parts for g in _split(module, backbone_lr, "backbone", weight_decay, norm_bias_decay, 0.0)]


def group_roles(param_groups: list[dict[str, Any]]) -> list[str]:
    """Every group's role; groups without one (checkpoints written before roles) are the head, then the backbone."""
    return [group.get("role", "head" if index == 0 else "backbone") for index, group in enumerate(param_groups)]


def group_rate(group: dict[str, Any], role_rates: dict[str, float]) -> float:
    """The learning rate of ``group``: its role's rate, times its ``lr_scale`` when it has one."""
    rate = role_rates[group.get("role", "head")]
    return rate * group["lr_scale"] if "lr_scale" in group else rate
