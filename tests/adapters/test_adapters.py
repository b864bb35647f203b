"""Adapters at the places of a timm ViT's forward (kind ``adapter``).

The backbone's blocks stay timm's: adapters that change nothing leave every output and
gradient bitwise as timm's own forward gives them; the attention weights and queries an adapter
sees equal an independent computation from the block's qkv weights written here.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zslkit
from zslkit.adapters import AdapterContext, AdapterPlan, TokenState, parse_adapter_specs, scatter_to_grid
from zslkit.contracts import ContractError
from zslkit.registry import register_component, unregister

SHAPE = {"img_size": 32, "patch_size": 8, "depth": 3, "embed_dim": 48, "num_heads": 3}
SEEN: list = []


class Recorder(nn.Module):
    """Records the state it sees; ``scale_cls_query``: multiplies the CLS query by that factor."""

    def __init__(self, token_dim, embedding_dim, num_attributes, scale_cls_query=1.0):
        super().__init__()
        self.scale = scale_cls_query

    def forward(self, state, context):
        SEEN.append((state, context))
        if state.queries is not None and self.scale != 1.0:
            factor = torch.ones_like(state.queries)
            factor[:, :, 0] = self.scale
            return state.replace(queries=state.queries * factor)
        return state


class Broken(nn.Module):
    def __init__(self, token_dim, embedding_dim, num_attributes):
        super().__init__()

    def forward(self, state, context):
        return state.replace(tokens=state.tokens[:, :, :-1])


@pytest.fixture(autouse=True)
def recorder():
    register_component("adapter", "test_recorder", Recorder)
    register_component("adapter", "test_broken", Broken)
    SEEN.clear()
    yield
    unregister("adapter", "test_recorder")
    unregister("adapter", "test_broken")


def backbone(seed=0):
    torch.manual_seed(seed)
    net = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", random_init=True, **SHAPE)
    with torch.no_grad():  # LayerNorms away from (1, 0), so that one cannot stand for another
        for name, parameter in net.named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return net


def plan(specs, depth=3):
    return AdapterPlan(parse_adapter_specs(specs, depth), token_dim=48, embedding_dim=6, num_attributes=5)


def context():
    return AdapterContext(torch.randn(5, 6), torch.tensor([1, 0]))


def outputs_and_grads(net, images, adapters=None):
    """The final tokens and the gradients of every parameter and of the images, for a fixed random weighting."""
    net.zero_grad(set_to_none=True)
    images = images.clone().requires_grad_(True)
    tokens = net(images, adapters, context()).tokens
    weight = torch.randn(tokens.shape, generator=torch.Generator().manual_seed(5))
    (tokens * weight).sum().backward()
    return tokens.detach(), images.grad, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def assert_bitwise(a, b):
    (ta, ia, ga), (tb, ib, gb) = a, b
    assert torch.equal(ta, tb) and torch.equal(ia, ib)
    assert ga.keys() == gb.keys() and all(torch.equal(ga[n], gb[n]) for n in ga)


def test_identity_adapters_leave_outputs_and_gradients_bitwise_unchanged():
    net = backbone().train()  # dropout rates are 0: train mode changes nothing but must not either
    images = torch.randn(2, 3, 32, 32)
    plain = outputs_and_grads(net, images)
    specs = {"a": {"adapter": "identity", "place": "before_block", "block": 0},
             "b": {"adapter": "identity", "place": "after_block", "block": 1},
             "c": {"adapter": "identity", "place": "queries", "block": 2},
             "d": {"adapter": "identity", "place": "after_block", "block": -1}}
    assert_bitwise(outputs_and_grads(net, images, plan(specs)), plain)


def test_identity_at_attention_is_timms_unfused_block_bitwise():
    """Weights asked for: that block alone computes softmax(q k^T / sqrt(d)) as timm's unfused path does."""
    net = backbone()
    images = torch.randn(2, 3, 32, 32)
    reference = copy.deepcopy(net)
    reference.model.blocks[1].attn.fused_attn = False
    expected = outputs_and_grads(reference, images)
    got = outputs_and_grads(net, images, plan({"w": {"adapter": "identity", "place": "attention", "block": 1}}))
    assert_bitwise(got, expected)
    # and the other blocks kept timm's fused attention
    assert net.model.blocks[0].attn.fused_attn and net.model.blocks[2].attn.fused_attn


def tokens_entering(net, images, k):
    """Tokens entering block ``k``, through timm's own modules."""
    m = net.model
    x = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(images))))
    for block in m.blocks[:k]:
        x = block(x)
    return x


def independent_qkv(block, x, heads=3):
    """q, k, v ``(B, heads, T, d)`` of a timm block from its weights, written out."""
    h = F.layer_norm(x, (x.shape[-1],), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    qkv = h @ block.attn.qkv.weight.T + block.attn.qkv.bias
    q, k, v = qkv.split(x.shape[-1], dim=-1)
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)  # noqa: E731
    return split(q), split(k), split(v)


def test_attention_weights_equal_an_independent_computation():
    net = backbone().eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        net(images, plan({"r": {"adapter": "test_recorder", "place": "attention", "block": 2}}), context())
        q, k, _ = independent_qkv(net.model.blocks[2], tokens_entering(net, images, 2))
    (state, ctx), = SEEN
    expected = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    assert state.attention.shape == (2, 3, 17, 17)
    torch.testing.assert_close(state.attention, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(ctx.labels, torch.tensor([1, 0])) and ctx.embeddings.shape == (5, 6)


def independent_block(block, x, q, k, v):
    """A timm pre-norm block written out with given q, k, v."""
    a = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    o = (a @ v).transpose(1, 2).reshape(x.shape)
    x = x + o @ block.attn.proj.weight.T + block.attn.proj.bias
    h = F.layer_norm(x, (x.shape[-1],), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    return x + block.mlp.fc2(F.gelu(block.mlp.fc1(h)))


def test_changed_queries_enter_the_blocks_attention():
    net = backbone().eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = net(images, plan({"q": {"adapter": "test_recorder", "place": "queries", "block": 1, "scale_cls_query": 3.0},
                                "w": {"adapter": "test_recorder", "place": "after_block", "block": 1}}), context())
        x = tokens_entering(net, images, 1)
        q, k, v = independent_qkv(net.model.blocks[1], x)
        torch.testing.assert_close(SEEN[0][0].queries, q, rtol=1e-5, atol=1e-6)  # what the adapter saw
        q = q.clone()
        q[:, :, 0] *= 3.0
        expected = independent_block(net.model.blocks[1], x, q, k, v)
        torch.testing.assert_close(SEEN[1][0].tokens, expected, rtol=1e-4, atol=1e-5)
        unchanged = net(images).tokens
    assert not torch.allclose(got.tokens, unchanged)


def test_keep_attended_keeps_the_most_attended_patches_and_maps_go_back_on_the_grid():
    net = backbone().eval()
    images = torch.randn(2, 3, 32, 32)
    specs = {"r": {"adapter": "test_recorder", "place": "attention", "block": 1},
             "keep": {"adapter": "keep_attended", "place": "attention", "block": 1, "keep": 0.25},
             "r2": {"adapter": "test_recorder", "place": "attention", "block": 1}}  # sees keep_attended's result
    with torch.no_grad():
        final = net(images, plan(specs), context())
    before, after = SEEN[0][0], SEEN[1][0]
    cls_attention = before.attention[:, :, 0, 1:].mean(dim=1)  # (B, 16)
    for b in range(2):
        top = sorted(cls_attention[b].argsort(descending=True)[:4].tolist())
        assert after.source[b, :4].tolist() == top and after.source[b, 4].item() == -1
        rest = [n for n in range(16) if n not in top]
        w = cls_attention[b, rest] / cls_attention[b, rest].sum()
        fused = (w[:, None] * before.tokens[b, 1:][rest]).sum(0)
        torch.testing.assert_close(after.tokens[b, 5], fused, rtol=1e-5, atol=1e-6)
    assert final.tokens.shape == (2, 1 + 4 + 1, 48) and final.grid == (4, 4)
    maps = torch.randn(2, 5, 5)
    on_grid = scatter_to_grid(maps, final.source, 16)
    expected = torch.zeros(2, 5, 16)
    for b in range(2):
        for n, cell in enumerate(final.source[b].tolist()):
            if cell >= 0:
                expected[b, :, cell] = maps[b, :, n]
    assert torch.equal(on_grid, expected)


def test_adapter_specs_and_results_are_checked():
    with pytest.raises(ValueError, match=r"adapters\['x'\]\['place'\] must be one of"):
        parse_adapter_specs({"x": {"adapter": "identity", "place": "inside", "block": 0}}, 3)
    with pytest.raises(ValueError, match=r"block index in \[-3, 3\)"):
        parse_adapter_specs({"x": {"adapter": "identity", "place": "queries", "block": 3}}, 3)
    with pytest.raises(ContractError, match="adapter 'test_broken' .*must keep the batch, the token width"):
        backbone()(torch.randn(1, 3, 32, 32), plan({"x": {"adapter": "test_broken", "place": "after_block", "block": 0}}),
                   context())
    with pytest.raises(ContractError, match="must accept keyword options token_dim, embedding_dim, num_attributes"):
        from zslkit.contracts import check_factory

        check_factory("adapter", "bad", lambda dim: None)
    assert "identity" in zslkit.list_components("adapter") and "keep_attended" in zslkit.list_components("adapter")


def test_a_state_knows_its_parts():
    tokens = torch.randn(2, 1 + 6, 4)
    state = TokenState(tokens, 1, (2, 3))
    assert torch.equal(state.prefix, tokens[:, :1]) and torch.equal(state.patches, tokens[:, 1:])
    assert state.sources().tolist() == [list(range(6))] * 2
    assert scatter_to_grid(torch.ones(2, 3, 6), None, 6).shape == (2, 3, 6)


def test_a_plugin_registers_adapters_through_its_hook():
    from tests.conftest import run_python

    code = """
    import torch, zslkit, zslkit.adapters
    from zslkit.plugins import register_plugin

    class Shift(torch.nn.Module):
        def __init__(self, token_dim, embedding_dim, num_attributes):
            super().__init__()
        def forward(self, state, context):
            return state.replace(tokens=state.tokens + 1.0)

    class P:
        @zslkit.hookimpl
        def zslkit_register_components(self, registrar):
            registrar.register("adapter", "shift", Shift)
            registrar.register("adapter", "no_shape", lambda scale: None)  # refused: the adapter keywords
    info = register_plugin(P(), name="adapters_plugin", version="1")
    print(zslkit.component_info("adapter", "shift").origin.plugin if "shift" in zslkit.list_components("adapter") else "-")
    print(info.error)

    class Good:
        @zslkit.hookimpl
        def zslkit_register_components(self, registrar):
            registrar.register("adapter", "shift", Shift)
    register_plugin(Good(), name="adapters_ok", version="1")
    state = zslkit.adapters.TokenState(torch.zeros(1, 2, 3), 1, (1, 1))
    shifted = zslkit.create("adapter", "shift", token_dim=3, embedding_dim=2, num_attributes=4)(state, None)
    print(zslkit.component_info("adapter", "shift").origin.plugin, shifted.tokens.sum().item())
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    plugin, error, good = result.stdout.strip().splitlines()[-3:]
    assert plugin == "-"  # all of one plugin's registrations or none
    assert good == "adapters_ok 6.0"
    assert "adapter 'no_shape' (plugin adapters_plugin): factory must accept keyword options token_dim" in error


def test_a_model_or_block_with_another_attention_is_refused():
    with pytest.raises(ValueError, match=r"'eva02_tiny_patch14_224' \(Eva\) is not built on timm's VisionTransformer"):
        zslkit.create("backbone", "timm_tokens", model_name="eva02_tiny_patch14_224", random_init=True, img_size=28, depth=2)
    net = backbone()
    net.model.blocks[1].attn = nn.Identity()  # not timm's Attention
    with pytest.raises(ValueError, match=r"block 1 \(Block\) is not a timm pre-norm Block with timm's Attention"):
        net.check_adapters(plan({"w": {"adapter": "identity", "place": "attention", "block": 1}}))
    net.check_adapters(plan({"a": {"adapter": "identity", "place": "after_block", "block": 1}}))  # between blocks: fine
