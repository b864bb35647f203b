"""``timm_tokens``: prefix and patch tokens of a timm ViT after the final norm, equal to timm's own forward.

The references are separate timm models built by timm itself with the same weights: at 224 px
the plain model, at 448 px a model built for 448 px whose position embeddings timm's own
checkpoint filter resampled (the path timm takes for pretrained weights at another size).
"""

import pytest
import torch
from safetensors.torch import save_file

import zslkit
from zslkit.backbones.timm_backbone import BackboneWeightsError

MODELS = {"vit_tiny_patch16_224": 1, "deit_tiny_distilled_patch16_224": 2}
DEPTH = 2  # ViT-Ti/DeiT-Ti's blocks, two of them: CPU seconds


def timm_reference(name, state, size):
    """A timm model built for ``size`` px holding ``state`` (pos_embed resampled by timm's checkpoint filter)."""
    import timm
    from timm.models import vision_transformer

    reference = timm.create_model(name, pretrained=False, img_size=size, depth=DEPTH).eval()
    reference.load_state_dict(vision_transformer.checkpoint_filter_fn(dict(state), reference))
    return reference


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [224, 448])
def test_tokens_equal_timms_forward_features(name, size):
    torch.manual_seed(0)
    backbone = zslkit.create("backbone", "timm_tokens", model_name=name, random_init=True, depth=DEPTH).eval()
    reference = timm_reference(name, backbone.model.state_dict(), size)
    images = torch.randn(1, 3, size, size)
    with torch.no_grad():
        state = backbone(images)
        expected = reference.forward_features(images)
    prefix = MODELS[name]
    side = size // 16
    assert state.num_prefix == prefix and state.grid == (side, side) and state.source is None
    assert state.prefix.shape == (1, prefix, 192) and state.patches.shape == (1, side * side, 192)
    torch.testing.assert_close(state.prefix, expected[:, :prefix], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state.patches, expected[:, prefix:], rtol=1e-5, atol=1e-5)
    # after the final norm: every token has zero mean and unit variance before the norm's affine (here 1, 0)
    torch.testing.assert_close(state.patches.mean(-1), torch.zeros(1, side * side), atol=1e-5, rtol=0)


def test_weights_file_for_another_grid_is_resampled_by_timm(tmp_path):
    torch.manual_seed(1)
    source = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", random_init=True, depth=2)
    state = {k: v.contiguous() for k, v in source.model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    # built for 448 px without dynamic resizing: the file's 14x14 pos_embed becomes 28x28 at load
    backbone = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", weights=tmp_path / "w.safetensors",
                             img_size=448, dynamic_img_size=False, depth=2).eval()
    reference = timm_reference("vit_tiny_patch16_224", state, 448)
    assert backbone.model.pos_embed.shape == (1, 1 + 28 * 28, 192)
    torch.testing.assert_close(backbone.model.pos_embed, reference.pos_embed, rtol=0, atol=0)
    images = torch.randn(1, 3, 448, 448)
    with torch.no_grad():
        tokens = backbone(images).tokens
        torch.testing.assert_close(tokens, reference.forward_features(images), rtol=1e-5, atol=1e-5)
    assert backbone.describe()["weights"].endswith("w.safetensors")


def test_refuses_what_is_not_a_vit_and_missing_weights():
    with pytest.raises(ValueError, match="not a ViT-family model"):
        zslkit.create("backbone", "timm_tokens", model_name="resnet18", random_init=True)
    with pytest.raises(BackboneWeightsError, match="no weights given"):
        zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224")


#: the CLIP (pre-norm) and DINOv2 (LayerScale, registers) towers as timm builds them, shrunk
TOWERS = {
    "vit_base_patch16_clip_224": {"img_size": 32, "patch_size": 16},
    "vit_small_patch14_dinov2": {"img_size": 28, "patch_size": 14},
    "vit_small_patch14_reg4_dinov2": {"img_size": 28, "patch_size": 14},
}


@pytest.mark.parametrize("name", TOWERS)
def test_clip_and_dinov2_towers_and_their_adapted_blocks(name):
    from zslkit.adapters import AdapterContext, AdapterPlan, parse_adapter_specs

    torch.manual_seed(0)
    shape = {**TOWERS[name], "depth": 2, "embed_dim": 48, "num_heads": 3}
    backbone = zslkit.create("backbone", "timm_tokens", model_name=name, random_init=True, **shape).eval()
    images = torch.randn(1, 3, 2 * shape["img_size"], 2 * shape["img_size"])  # twice the size it was built for
    with torch.no_grad():
        plain = backbone(images)
        expected = backbone.model.forward_features(images)
        specs = parse_adapter_specs({"q": {"adapter": "identity", "place": "queries", "block": 0},
                                     "a": {"adapter": "identity", "place": "attention", "block": 1}}, 2)
        plan = AdapterPlan(specs, token_dim=48, embedding_dim=4, num_attributes=3)
        adapted = backbone(images, plan, AdapterContext(torch.zeros(3, 4)))
    assert plain.grid == (4, 4) and plain.num_prefix == backbone.model.num_prefix_tokens
    assert torch.equal(plain.tokens, expected)
    torch.testing.assert_close(adapted.tokens, plain.tokens, rtol=1e-5, atol=1e-5)  # block 1 unfused: rounding only


def test_a_given_patch_embedding_is_used_in_place_of_the_images_and_checked():
    torch.manual_seed(0)
    backbone = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", random_init=True, img_size=32,
                             patch_size=8, depth=1)
    images = torch.randn(2, 3, 32, 32)
    embedded = backbone.model.patch_embed(images)
    assert torch.equal(backbone(images, patch_embedding=embedded).tokens, backbone(images).tokens)
    other = backbone.model.patch_embed(torch.randn(2, 3, 32, 32))  # the embedding is what the blocks read
    assert not torch.equal(backbone(images, patch_embedding=other).tokens, backbone(images).tokens)
    with pytest.raises(ValueError, match=r"patch_embedding of shape \(1, 4, 4, 192\) is not the patch embedding of "
                                         r"\(2, 3, 32, 32\) images \(4 x 4 patches\); give model.patch_embed\(images\)"):
        backbone(images, patch_embedding=embedded[:1])
