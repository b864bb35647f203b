"""The APN and GEM-ZSL blocks against loops over images, attributes and regions."""

from __future__ import annotations

import math

import pytest
import torch

import zslkit

B, C, D, NA, R = 3, 6, 5, 4, 10


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, C, R, generator=g), torch.randn(NA, D, generator=g)


def test_prototype_maps_are_dot_products_and_scores_their_peak(inputs):
    features, embeddings = inputs
    block = zslkit.create("attention", "prototype", feature_dim=C, embedding_dim=D, num_attributes=NA)
    assert 0 <= float(block.prototypes.detach().min()) and float(block.prototypes.detach().max()) < 2e-4  # the authors' 2e-4 * U[0, 1)
    torch.nn.init.normal_(block.prototypes)
    out = block(features, embeddings)
    for b in range(B):
        for i in range(NA):
            responses = [float(block.prototypes[i] @ features[b, :, r]) for r in range(R)]
            assert out.maps[b, i].tolist() == pytest.approx(responses, rel=1e-5, abs=1e-6)
            assert float(out.scores[b, i]) == pytest.approx(max(responses), rel=1e-5)
    assert out.constants["weights"] is block.prototypes


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_ale_global_pools_the_responses_over_regions(inputs, pool):
    features, embeddings = inputs
    block = zslkit.create("attention", "ale_global", feature_dim=C, embedding_dim=D, num_attributes=NA, pool=pool)
    torch.nn.init.normal_(block.weights)
    out = block(features, embeddings)
    assert out.maps is None
    for b in range(B):
        for i in range(NA):
            responses = [float(block.weights[i] @ features[b, :, r]) for r in range(R)]
            expected = max(responses) if pool == "max" else sum(responses) / R
            assert float(out.scores[b, i]) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_ale_global_refuses_an_unknown_pool():
    with pytest.raises(ValueError, match="pool must be one of .*'max', 'mean'.* got 'sum'"):
        zslkit.create("attention", "ale_global", feature_dim=C, embedding_dim=D, num_attributes=NA, pool="sum")


def test_cosine_global_is_a_scaled_normalised_projection_of_the_mean_feature(inputs):
    features, embeddings = inputs
    block = zslkit.create("attention", "cosine_global", feature_dim=C, embedding_dim=D, num_attributes=NA, scale=7.0)
    out = block(features, embeddings)
    for b in range(B):
        pooled = [sum(float(features[b, c, r]) for r in range(R)) / R for c in range(C)]
        projected = [sum(pooled[c] * float(block.V[c, i]) for c in range(C)) for i in range(NA)]
        norm = math.sqrt(sum(p * p for p in projected))
        assert out.scores[b].tolist() == pytest.approx([7.0 * p / (norm + 1e-5) for p in projected], rel=1e-5)
    assert not block.scale.requires_grad
    learned = zslkit.create("attention", "cosine_global", feature_dim=C, embedding_dim=D, num_attributes=NA, learn_scale=True)
    assert learned.scale.requires_grad and float(learned.scale) == 20.0


def test_attribute_to_visual_max_pool_scores_the_peak_of_the_attention(inputs):
    features, embeddings = inputs
    block = zslkit.create("attention", "attribute_to_visual", feature_dim=C, embedding_dim=D, num_attributes=NA,
                          pool="max", attention_init="normal")
    assert not hasattr(block, "W1") and float(block.W2.abs().sum()) > 0
    out = block(features, embeddings)
    for b in range(B):
        for i in range(NA):
            query = embeddings[i] @ block.W2
            logits = torch.tensor([float(query @ features[b, :, r]) for r in range(R)])
            weights = logits.exp() / logits.exp().sum()
            torch.testing.assert_close(out.maps[b, i], weights, rtol=1e-5, atol=1e-6)
            assert float(out.scores[b, i]) == pytest.approx(float(weights.max()), rel=1e-5)
    torch.testing.assert_close(out.constants["queries"], embeddings @ block.W2)


def test_attribute_to_visual_default_is_unchanged(inputs):
    features, embeddings = inputs
    torch.manual_seed(3)
    block = zslkit.create("attention", "attribute_to_visual", feature_dim=C, embedding_dim=D, num_attributes=NA)
    torch.manual_seed(3)
    W1 = torch.randn(D, C)
    assert torch.equal(block.W1, W1) and float(block.W2.abs().sum()) == 0.0  # same init order as before
    with pytest.raises(ValueError, match="pool must be one of"):
        zslkit.create("attention", "attribute_to_visual", feature_dim=C, embedding_dim=D, pool="mean")
