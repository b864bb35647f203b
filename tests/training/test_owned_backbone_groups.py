"""A model that owns its ViT backbone gets the backbone's learning rate and layer-wise decay, like a BackboneModel.

The rates are checked against a computation by hand from the parameter names (the stem is layer 0,
block ``k`` layer ``k + 1``, the final norm goes with the last block, timm's unused classifier is the
top); every parameter is in exactly one group.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import zslkit
from zslkit.models import TokenAttentionModel
from zslkit.optim import parameter_groups
from zslkit.registry import register_component, unregister
from zslkit.training import TrainConfig, train

DEPTH = 3
TINY = dict(num_classes=8, family_size=4, images_per_class=4, channels=8, grid=3, embedding_dim=6, seed=0)


class ThreeBlockViT(TokenAttentionModel):
    """A depth-3 ViT on 32 px images (16 px patches) with an attention branch; no adapters."""

    default_timm_model: ClassVar[str] = "vit_tiny_patch16_224"
    default_backbone_options: ClassVar[dict[str, Any]] = {"img_size": 32, "patch_size": 16, "depth": DEPTH,
                                                           "embed_dim": 32, "num_heads": 2}
    default_branches: ClassVar[dict[str, Any]] = {"a2v": "attribute_to_visual"}
    default_losses: ClassVar[dict[str, Any]] = {"attribute_ce": 1.0}


@pytest.fixture(scope="module")
def data():
    return zslkit.load_dataset("synthetic", **TINY)


def build(data) -> ThreeBlockViT:
    torch.manual_seed(0)
    return ThreeBlockViT(data.class_attributes, data.attribute_embeddings, data.seen_classes, data.unseen_classes,
                         backbone_random_init=True)


def expected_rate(name: str, lr: float, backbone_lr: float, decay: float) -> float:
    """By hand: the head (everything outside ``backbone.``) at ``lr``; backbone layer ``i`` of ``DEPTH + 2`` at
    ``backbone_lr * decay ** (DEPTH + 1 - i)``."""
    if not name.startswith("backbone.model."):
        return lr
    name = name.removeprefix("backbone.model.")
    if name.startswith(("cls_token", "pos_embed", "patch_embed")):
        layer = 0
    elif name.startswith("blocks."):
        layer = int(name.split(".")[1]) + 1
    else:
        assert name.startswith("norm."), name  # timm's classifier head is never run: frozen, in no group
        layer = DEPTH
    return backbone_lr * decay ** (DEPTH + 1 - layer)


def test_layer_decay_and_backbone_rate_of_an_owned_vit(data):
    net = build(data)
    groups = parameter_groups(net, lr=1e-3, backbone_lr=1e-4, weight_decay=0.05, norm_bias_decay=False, layer_decay=0.5)
    names = {id(p): n for n, p in net.named_parameters() if p.requires_grad}
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen == ["backbone.model.head.weight", "backbone.model.head.bias"]  # timm's classifier, never run
    seen = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(names.values())  # every trained parameter, each in exactly one group
    blocks = set()
    for group in groups:
        for p in group["params"]:
            name = names[id(p)]
            assert group["lr"] == pytest.approx(expected_rate(name, 1e-3, 1e-4, 0.5), rel=1e-12), name
            assert group["role"] == ("backbone" if name.startswith("backbone.") else "head"), name
            blocks.update(name.split(".")[3:4] if name.startswith("backbone.model.blocks.") else ())
    assert blocks == {str(k) for k in range(DEPTH)}
    head_names = [n for n in seen if not n.startswith("backbone.")]
    assert "V" in head_names or any(n.startswith("branches.") for n in head_names)


def test_without_layer_decay_the_owned_backbone_trains_at_backbone_lr_and_zero_freezes_it(data):
    net = build(data)
    groups = parameter_groups(net, lr=1e-3, backbone_lr=1e-4, weight_decay=0.0)
    names = {id(p): n for n, p in net.named_parameters() if p.requires_grad}  # not timm's classifier, never run
    assert [(g["role"], g["lr"]) for g in groups] == [("head", 1e-3), ("backbone", 1e-4)]
    assert {names[id(p)].startswith("backbone.") for p in groups[1]["params"]} == {True}
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(names)
    frozen = parameter_groups(net, lr=1e-3, backbone_lr=0.0, weight_decay=0.0)
    assert len(frozen) == 1 and not any(p.requires_grad for p in net.backbone.parameters())
    assert {id(p) for p in frozen[0]["params"]} == {id(p) for n, p in net.named_parameters() if not n.startswith("backbone.")}


def test_training_steps_the_owned_backbone_at_its_decayed_rates(data):
    register_component("model", "three_block_vit", ThreeBlockViT)
    try:
        images = np.random.default_rng(0).standard_normal((data.num_images, 3, 32, 32)).astype(np.float32)
        dataset = zslkit.datasets.ZSLDataset(name="tiny_images", labels=data.labels, class_attributes=data.class_attributes,
                                             splits=data.splits, features=images, attribute_embeddings=data.attribute_embeddings)
        steps: list[list[float]] = []
        handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: steps.append([g["lr"] for g in opt.param_groups]))
        try:
            config = TrainConfig(model="three_block_vit", epochs=1, batch_size=len(dataset.splits["train"]), optimizer="sgd",
                                 lr=1e-2, backbone_lr=1e-3, weight_decay=0.0, momentum=0.0, layer_decay=0.5)
            result = train(dataset, "three_block_vit", config, split="train", progress=False, backbone_random_init=True)
        finally:
            handle.remove()
    finally:
        unregister("model", "three_block_vit")
    (rates,) = steps
    assert rates[0] == 1e-2
    # layers 0 .. DEPTH; the top layer (timm's classifier, decay ** 0) is frozen, so it has no group
    assert sorted(set(rates[1:])) == pytest.approx([1e-3 * 0.5 ** k for k in range(DEPTH + 1, 0, -1)])
    assert result.history[-1]["backbone_lr"] == pytest.approx(1e-3)
