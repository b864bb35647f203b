"""The built-in attention blocks against the paper's formulas, written out with loops."""

import math

import pytest
import torch

import zslkit
from zslkit.attention import (
    AttentionOutput,
    AttributeToVisual,
    GatedAttributeToVisual,
    VisualToAttribute,
    attend,
)
from zslkit.contracts import check_attention_output

B, C, R, N_ATTR, D = 2, 5, 4, 3, 6


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, C, R, generator=g, dtype=torch.float64), torch.randn(N_ATTR, D, generator=g, dtype=torch.float64)


def randomize(block):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return block.double().requires_grad_(False)


def softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def dot(u, v):
    return sum(float(a) * float(b) for a, b in zip(u, v))


def test_attribute_to_visual_matches_the_formula(inputs):
    f, v = inputs
    block = randomize(AttributeToVisual(feature_dim=C, embedding_dim=D, num_attributes=N_ATTR))
    out = block(f, v)
    for b in range(B):
        for i in range(N_ATTR):
            s = [dot(v[i] @ block.W1, f[b, :, r]) for r in range(R)]
            a = softmax([dot(v[i] @ block.W2, f[b, :, r]) for r in range(R)])
            assert out.scores[b, i].item() == pytest.approx(sum(x * y for x, y in zip(a, s)), rel=1e-9)
            assert out.maps[b, i].tolist() == pytest.approx(a, rel=1e-9)


def test_visual_to_attribute_matches_the_formula(inputs):
    f, v = inputs
    block = randomize(VisualToAttribute(feature_dim=C, embedding_dim=D, num_attributes=N_ATTR))
    out = block(f, v)
    for b in range(B):
        for r in range(R):  # softmax over attributes, per region
            a = softmax([dot(v[i] @ block.U2, f[b, :, r]) for i in range(N_ATTR)])
            assert out.maps[b, :, r].tolist() == pytest.approx(a, rel=1e-9)
        for i in range(N_ATTR):
            psi = sum(out.maps[b, i, r].item() * dot(f[b, :, r] @ block.U1, v[i]) for r in range(R))
            assert out.scores[b, i].item() == pytest.approx(psi, rel=1e-9)


def test_gated_block_weighs_each_attribute_by_the_sigmoid_of_its_attended_feature(inputs):
    f, v = inputs
    block = randomize(GatedAttributeToVisual(feature_dim=C, embedding_dim=D, num_attributes=N_ATTR))
    ungated = AttributeToVisual.forward(block, f, v)
    out = block(f, v)
    for b in range(B):
        for i in range(N_ATTR):
            attended = sum(ungated.maps[b, i, r] * f[b, :, r] for r in range(R))  # (C,)
            gate = 1 / (1 + math.exp(-dot(v[i] @ block.W3, attended)))
            assert out.scores[b, i].item() == pytest.approx(gate * ungated.scores[b, i].item(), rel=1e-9)


def test_initialisation_follows_the_paper():
    torch.manual_seed(0)
    a2v = AttributeToVisual(feature_dim=256, embedding_dim=128)
    v2a = VisualToAttribute(feature_dim=256, embedding_dim=128)
    gated = GatedAttributeToVisual(feature_dim=256, embedding_dim=128)
    assert abs(a2v.W1.mean().item()) < 0.02 and abs(a2v.W1.std().item() - 1) < 0.02
    for zero in (a2v.W2, v2a.U1, v2a.U2, gated.W3):
        assert torch.count_nonzero(zero) == 0
    assert a2v.W1.shape == (128, 256) and v2a.U1.shape == (256, 128) and v2a.U2.shape == (128, 256)


def test_zero_attention_weights_give_uniform_maps_and_half_gates(inputs):
    f, v = (t.float() for t in inputs)
    maps = AttributeToVisual(C, D)(f, v).maps
    assert torch.allclose(maps, torch.full_like(maps, 1 / R))
    gated = GatedAttributeToVisual(C, D)
    assert torch.allclose(gated(f, v).scores, 0.5 * AttributeToVisual.forward(gated, f, v).scores)


@pytest.mark.parametrize("name", ["attribute_to_visual", "visual_to_attribute", "gated_attribute_to_visual"])
def test_blocks_are_registered_and_follow_the_contract(name, inputs):
    f, v = (t.float() for t in inputs)
    block = zslkit.create("attention", name, feature_dim=C, embedding_dim=D, num_attributes=N_ATTR)
    out = block(f, v)
    assert isinstance(out, AttentionOutput)
    check_attention_output(out, batch=B, num_attributes=N_ATTR, regions=R, name=name)


def test_attend_rejects_an_unknown_softmax_axis(inputs):
    f, _ = inputs
    q = torch.zeros(N_ATTR, C, dtype=f.dtype)
    with pytest.raises(ValueError, match="softmax_over must be one of"):
        attend(f, q, q, softmax_over="channels")
