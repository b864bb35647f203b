"""BackboneModel: any image backbone in front of a region-feature head, BatchNorm modes, parameter groups."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

import zslkit
from zslkit.models import BackboneModel
from zslkit.models.backbone_model import backbone_channels, describe_backbone, feature_map

CLASSES, ATTRIBUTES, C = 6, 5, 96  # C: channels of timm's test_resnet


def timm_backbone() -> nn.Module:
    """A tiny random-init timm ResNet returning its last feature map, as ``features_only`` models do (a list)."""
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, features_only=True, out_indices=(-1,))


def head(feature_dim: int = C) -> nn.Module:
    torch.manual_seed(1)
    attributes = np.random.default_rng(0).uniform(size=(CLASSES, ATTRIBUTES))
    return zslkit.create_model("msdn", class_attributes=attributes, seen_classes=[0, 1, 2, 3], feature_dim=feature_dim,
                               embedding_dim=4)


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_forward_is_the_head_on_the_backbones_last_feature_map():
    backbone, net_head = timm_backbone(), head()
    model = BackboneModel(backbone, net_head).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = backbone(images)
        assert isinstance(maps, list) and maps[-1].shape == (2, C, 2, 2)
        expected = net_head(maps[-1])
        output = model(images)
    torch.testing.assert_close(output.scores, expected.scores)
    torch.testing.assert_close(output.branch_scores["v2a"], expected.branch_scores["v2a"])
    loss = model.loss(model.train()(images), torch.tensor([0, 3]))
    assert set(loss) == {"total", "attribute_ce", "self_calibration", "semantic_distillation"}
    assert model.classes is net_head.classes and model.model_name == "msdn" and model.num_classes == CLASSES


def test_feature_map_and_channels_of_any_backbone():
    x = torch.zeros(1, 4, 3, 3)
    assert feature_map(x) is x and feature_map((torch.zeros(1), x)) is x
    with pytest.raises(ValueError, match=r"must return a \(B, C, H, W\) feature map .*found \(1, 4\)"):
        feature_map(torch.zeros(1, 4))
    assert backbone_channels(timm_backbone()) == C  # timm feature_info
    conv = nn.Conv2d(3, 7, 3)
    conv.feature_dim = 7
    assert backbone_channels(conv) == 7
    del conv.feature_dim
    assert backbone_channels(conv, torch.zeros(1, 3, 8, 8)) == 7  # one forward
    with pytest.raises(ValueError, match="cannot tell the channels of backbone Conv2d"):
        backbone_channels(conv)
    assert describe_backbone(conv) == {"class": "torch.nn.modules.conv.Conv2d"}


def test_one_backbone_description_for_checkpoints_and_stores(tmp_path):
    """Feature stores (``weights_checksum=True``) add the weights file's name and SHA-256 to the same description."""
    import hashlib

    class Described(nn.Module):
        def __init__(self, weights):
            super().__init__()
            self.weights = weights

        def describe(self):
            return {"name": "mine", "weights": str(self.weights)}

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"some weights")
    backbone = Described(weights)
    assert describe_backbone(backbone) == {"name": "mine", "weights": str(weights)}
    assert describe_backbone(backbone, weights_checksum=True) == {
        "name": "mine", "weights": "w.pth", "weights_sha256": hashlib.sha256(b"some weights").hexdigest(),
    }
    plain = nn.Conv2d(3, 7, 3)
    assert describe_backbone(plain, weights_checksum=True) == {"class": "torch.nn.modules.conv.Conv2d"}


def test_frozen_batchnorm_keeps_running_statistics_and_train_mode_updates_them():
    images = torch.randn(4, 3, 64, 64) * 3 + 1
    frozen = BackboneModel(timm_backbone(), head()).train()
    before = [bn.running_mean.clone() for bn in batchnorms(frozen.backbone)]
    frozen(images)
    assert all(not bn.training for bn in batchnorms(frozen.backbone)) and frozen.head.training
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(batchnorms(frozen.backbone), before))
    training = BackboneModel(timm_backbone(), head(), batchnorm="train").train()
    training(images)
    assert not torch.equal(batchnorms(training.backbone)[0].running_mean, before[0])
    sync = BackboneModel(timm_backbone(), head(), batchnorm="sync")
    assert batchnorms(sync.backbone) and all(isinstance(bn, nn.SyncBatchNorm) for bn in batchnorms(sync.backbone))
    with pytest.raises(ValueError, match="batchnorm must be one of"):
        BackboneModel(timm_backbone(), head(), batchnorm="off")
    with pytest.raises(TypeError, match="head Linear has no 'loss'"):
        BackboneModel(timm_backbone(), nn.Linear(2, 2))


def test_parameter_groups_give_backbone_and_head_their_own_learning_rates():
    from zslkit.optim import parameter_groups

    model = BackboneModel(timm_backbone(), head())
    groups = parameter_groups(model, lr=1e-3, backbone_lr=1e-5, weight_decay=1e-4)
    assert [g["lr"] for g in groups] == [1e-3, 1e-5] and [g["role"] for g in groups] == ["head", "backbone"]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.head.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.backbone.parameters()}
    frozen = parameter_groups(model, lr=1e-3, backbone_lr=0.0, weight_decay=1e-4)
    assert len(frozen) == 1 and not any(p.requires_grad for p in model.backbone.parameters())
    assert model.options["backbone"] == {"class": "timm.models._features.FeatureListNet"}
    assert model.options["batchnorm"] == "frozen" and model.options["feature_dim"] == C
