"""The ``timm`` and ``precomputed`` backbones: weights from local files only, last feature map, feature_dim."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

import zslkit
from zslkit.backbones import BackboneWeightsError, PrecomputedBackbone, TimmBackbone

MODEL = "test_resnet"


@pytest.fixture(scope="module")
def state_dict():
    torch.manual_seed(1)
    return timm.create_model(MODEL).state_dict()


@pytest.fixture(scope="module")
def reference(state_dict):
    model = timm.create_model(MODEL)
    model.load_state_dict(state_dict)
    return model.eval()


def test_weights_from_pth_safetensors_and_wrapped_checkpoints(state_dict, reference, tmp_path):
    torch.save(state_dict, tmp_path / "w.pth")
    save_file(state_dict, tmp_path / "w.safetensors")
    # training checkpoints often nest the weights and carry DataParallel's "module." prefix
    torch.save({"state_dict": {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 3}, tmp_path / "ckpt.pth")
    # a checkpoint with another classifier head (different class count) still fits: the head is unused
    other_head = {k: (torch.zeros(7, *v.shape[1:]) if k.startswith("fc.") else v) for k, v in state_dict.items()}
    torch.save(other_head, tmp_path / "head.pth")
    images = torch.randn(2, 3, 64, 64)
    expected = reference.forward_features(images)
    for name in ("w.pth", "w.safetensors", "ckpt.pth", "head.pth"):
        backbone = zslkit.create("backbone", "timm", model_name=MODEL, weights=tmp_path / name).eval()
        with torch.no_grad():
            torch.testing.assert_close(backbone(images), expected, rtol=0, atol=0)
        assert backbone.feature_dim == expected.shape[1] == 96


def test_no_weights_is_an_error_unless_random_init():
    with pytest.raises(BackboneWeightsError, match=r"no weights given; pass weights=PATH .*random_init=True"):
        TimmBackbone(MODEL)
    assert TimmBackbone(MODEL, random_init=True).feature_shape(64) == (96, 2, 2)
    with pytest.raises(ValueError, match="not both"):
        TimmBackbone(MODEL, weights="x.pth", random_init=True)


def test_wrong_weights_are_refused(state_dict, tmp_path):
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("layer4")}, tmp_path / "partial.pth")
    with pytest.raises(BackboneWeightsError, match=r"partial.pth: lacks \d+ of the \d+ tensors of timm model 'test_resnet' \(first: layer4\."):
        TimmBackbone(MODEL, weights=tmp_path / "partial.pth")
    torch.save({**state_dict, "layer9.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(BackboneWeightsError, match=r"extra.pth: has 1 tensors that timm model 'test_resnet' does not \(first: layer9.weight\)"):
        TimmBackbone(MODEL, weights=tmp_path / "extra.pth")
    conv = next(k for k, v in state_dict.items() if v.ndim == 4)
    torch.save({k: (v[:1] if k == conv else v) for k, v in state_dict.items()}, tmp_path / "shape.pth")
    with pytest.raises(BackboneWeightsError, match=rf"shape.pth: weights do not fit timm model 'test_resnet': size mismatch for {conv}"):
        TimmBackbone(MODEL, weights=tmp_path / "shape.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneWeightsError, match=r"junk.pth: cannot read weights"):
        TimmBackbone(MODEL, weights=tmp_path / "junk.pth")
    with pytest.raises(BackboneWeightsError, match="weights file not found"):
        TimmBackbone(MODEL, weights=tmp_path / "none.pth")


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet1O1'; did you mean 'resnet101'"):
        TimmBackbone("resnet1O1", random_init=True)


def test_transformer_tokens_become_a_spatial_map_after_the_final_norm():
    backbone = TimmBackbone("test_vit", random_init=True).eval()
    images = torch.randn(1, 3, 160, 160)
    prefix = backbone.model.num_prefix_tokens
    with torch.no_grad():
        maps = backbone(images)
        tokens = backbone.model.forward_features(images)[:, prefix:]  # timm's own, final norm included
        before_norm = backbone.model.forward_intermediates(images, indices=1, intermediates_only=True)[-1]
    side = maps.shape[-1]
    assert maps.ndim == 4 and maps.shape[1] == backbone.feature_dim
    torch.testing.assert_close(maps, tokens.reshape(1, side, side, -1).permute(0, 3, 1, 2))
    assert not torch.allclose(maps, before_norm)  # what zslkit extracted before the fix
    assert backbone.describe()["features"] == "final_norm"
    assert "features" not in TimmBackbone(MODEL, random_init=True).describe()  # CNN maps: made as ever


def test_a_vit_reads_images_of_another_size_through_timms_resampling():
    backbone = TimmBackbone("vit_tiny_patch16_224", random_init=True, depth=1).eval()
    images = torch.randn(1, 3, 448, 448)
    with torch.no_grad():
        maps = backbone(images)
        tokens = backbone.model.forward_features(images)[:, 1:]
    assert maps.shape == (1, 192, 28, 28)
    torch.testing.assert_close(maps, tokens.reshape(1, 28, 28, 192).permute(0, 3, 1, 2))


def test_precomputed_is_identity_with_shape_check():
    backbone = zslkit.create("backbone", "precomputed", feature_dim=8)
    features = torch.randn(2, 8, 3, 3)
    assert backbone(features) is features and backbone.feature_dim == 8
    with pytest.raises(ValueError, match=r"expects feature maps \(B, 8, H, W\), got shape \(2, 4, 3, 3\)"):
        backbone(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="feature_dim must be positive"):
        PrecomputedBackbone(0)
    assert {"precomputed", "timm"} <= set(zslkit.list_components("backbone"))
