"""ZSLViT against an independent plain-torch computation on a tiny random-init DeiT (values, not shapes).

The reference below is written from the paper's description and the parts' docstrings: patch embedding,
blocks computed by hand from the timm weights, the CLS query mixed with an MLP of the label's attributes at
the injection blocks, the CLS row of the attention choosing the kept patch tokens and weighting the fused
one, the final norm, the linear head, and the three losses. It runs in float64 so that no near-tied top-k
selection can flip between the two computations.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zslkit
from zslkit.adapters import AdapterContext, AdapterPlan, parse_adapter_specs
from zslkit.models.zslvit import zslvit_adapters
from zslkit.registry import register_component, unregister

K, NA, SEEN = 7, 6, [0, 1, 2, 4]
BLOCKS, KEEP = (1, 2), 0.7
BACKBONE = {"img_size": 64, "depth": 4, "embed_dim": 48, "num_heads": 3, "drop_path_rate": 0.0}


def build(seed=0, **options):
    torch.manual_seed(seed)
    attributes = torch.rand(K, NA)
    model = zslkit.create_model("zslvit", class_attributes=attributes, seen_classes=SEEN, feature_dim=3,
                                timm_model="deit_tiny_patch16_224", backbone_random_init=True, backbone_options=BACKBONE,
                                adapters=zslvit_adapters(BLOCKS, keep=KEEP), **options)
    for p in model.parameters():  # biases and norms off their 0/1 init, so that a wrong one shows
        if p.ndim == 1:
            p.data.add_(0.1 * torch.randn_like(p))
    return model.double()


def linear(x, layer):
    return x @ layer.weight.T + (0 if layer.bias is None else layer.bias)


def layer_norm(x, norm):
    return F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)


def reference(model, images, labels=None):
    """(psi (B, I), final tokens (B, T, D), grid cell of each final patch token (B, N) or -1, records)."""
    vit, plan = model.backbone.model, model.adapters.by_entry
    x = F.conv2d(images, vit.patch_embed.proj.weight, vit.patch_embed.proj.bias, stride=16).flatten(2).transpose(1, 2)
    x = torch.cat([vit.cls_token.expand(len(x), -1, -1), x], dim=1) + vit.pos_embed
    cells = torch.arange(x.shape[1] - 1).expand(len(x), -1)
    records = []
    for index, block in enumerate(vit.blocks):
        b, t, d = x.shape
        heads = block.attn.num_heads
        q, k, v = linear(layer_norm(x, block.norm1), block.attn.qkv).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        if index in BLOCKS and labels is not None:
            adapter = plan[f"query_{index}"]
            s = torch.sigmoid(linear(F.relu(linear(F.relu(linear(model.classes.attributes[labels], adapter.semantic[0])),
                                                   adapter.semantic[2])), adapter.semantic[4]))
            q = q.clone()
            q[:, :, 0] = 0.9 * q[:, :, 0] + 0.1 * s.reshape(b, heads, -1)
            r = F.relu(linear(F.relu(linear(q[:, :, 0].reshape(b, d), adapter.regression[0])), adapter.regression[2]))
            records.append((s, r))
        a = (q @ k.transpose(-2, -1) / math.sqrt(d // heads)).softmax(dim=-1)
        x = x + linear((a @ v).transpose(1, 2).reshape(b, t, d), block.attn.proj)
        if index in BLOCKS:  # keep the most attended patch tokens (descending order), fuse the rest
            attention = a[:, :, 0, 1:].mean(dim=1)
            order = attention.argsort(dim=1, descending=True)
            kept, dropped = order[:, : math.ceil(KEEP * (t - 1))], order[:, math.ceil(KEEP * (t - 1)):]
            patches = x[:, 1:]
            fused = (patches.gather(1, dropped[..., None].expand(-1, -1, d)) * attention.gather(1, dropped)[..., None]).sum(1)
            x = torch.cat([x[:, :1], patches.gather(1, kept[..., None].expand(-1, -1, d)), fused[:, None]], dim=1)
            cells = torch.cat([cells.gather(1, kept), torch.full_like(cells[:, :1], -1)], dim=1)
        x = x + linear(F.gelu(linear(layer_norm(x, block.norm2), block.mlp.fc1)), block.mlp.fc2)
    x = layer_norm(x, vit.norm)
    return linear(x[:, 0], model.branches["global"].linear), x, cells, records


def reference_loss(model, psi, final, records, labels):
    a = model.classes.attributes
    seen = model.classes.seen
    position = {int(c): n for n, c in enumerate(seen)}
    ce = F.cross_entropy(psi @ a[seen].T, torch.tensor([position[int(y)] for y in labels]))
    alignment = sum(F.l1_loss(s, final[:, 0]) for s, _ in records)
    regression = sum(F.l1_loss(r, a[labels]) for _, r in records)
    return ce + alignment + regression


@pytest.fixture(scope="module")
def model():
    return build()


def test_training_forward_scores_and_loss_equal_the_independent_computation(model):
    model.train()
    images, labels = torch.randn(3, 3, 64, 64, dtype=torch.float64), torch.tensor([0, 4, 2])
    output = model(images, labels)
    psi, final, _, records = reference(model, images, labels)
    torch.testing.assert_close(output.attribute_scores["global"], psi, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(output.branch_scores["global"], psi @ model.classes.attributes.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(output.global_token, final[:, 0], rtol=1e-10, atol=1e-12)
    for block, (s, r) in zip(BLOCKS, records):
        torch.testing.assert_close(output.extras[f"query_{block}"]["semantic"], s, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(output.extras[f"query_{block}"]["query_attributes"], r, rtol=1e-10, atol=1e-12)
    total = model.loss(output, labels)["total"]
    expected = reference_loss(model, psi, final, records, labels)
    torch.testing.assert_close(total, expected, rtol=1e-10, atol=1e-12)
    # gradients through the injection, the CLS-row attention (kept set and fused weights) and the head
    params = [model.adapters.by_entry["query_1"].semantic[0].weight, model.backbone.model.blocks[2].attn.qkv.weight,
              model.backbone.model.blocks[1].attn.qkv.weight, model.branches["global"].linear.weight]
    got = torch.autograd.grad(total, params)
    want = torch.autograd.grad(expected, params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-12)


def test_eval_prunes_without_injection_and_maps_land_on_the_input_grid(model):
    model.eval()
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        output = model(images)
        psi, final, cells, records = reference(model, images)
    assert records == [] and not any(k.startswith("query_") for k in output.extras)
    torch.testing.assert_close(output.branch_scores["global"], psi @ model.classes.attributes.T, rtol=1e-10, atol=1e-12)
    probabilities = (psi @ model.classes.attributes.T).softmax(dim=1)  # seen and unseen: every class here
    torch.testing.assert_close(output.scores, probabilities, rtol=1e-10, atol=1e-12)
    head = model.branches["global"].linear
    expected = torch.zeros(2, NA, 16, dtype=torch.float64)
    for b in range(2):
        for n, cell in enumerate(cells[b].tolist()):
            if cell >= 0:
                expected[b, :, cell] = linear(final[b, 1 + n], head)
    assert output.grid == (4, 4) and int((cells >= 0).sum(1)[0]) < 16  # tokens were dropped, and fused
    torch.testing.assert_close(output.maps["global"], expected, rtol=1e-10, atol=1e-12)


class PrefixRecorder(torch.nn.Module):
    """A test adapter at 'attention' that reads only the prefix rows and keeps what it saw."""

    attention_rows = "prefix"
    seen: list = []

    def __init__(self, token_dim, embedding_dim, num_attributes):
        super().__init__()

    def forward(self, state, context):
        PrefixRecorder.seen.append(state)
        return state


def test_the_cls_row_alone_equals_the_full_attention_row_and_the_block_output_is_unchanged():
    register_component("adapter", "test_prefix_recorder", PrefixRecorder)
    try:
        net = zslkit.create("backbone", "timm_tokens", model_name="deit_tiny_patch16_224", random_init=True,
                            **{k: v for k, v in BACKBONE.items() if k != "drop_path_rate"}).eval()
        plan = AdapterPlan(parse_adapter_specs({"r": {"adapter": "test_prefix_recorder", "place": "attention", "block": 2}}, 4),
                           token_dim=48, embedding_dim=5, num_attributes=NA)
        images = torch.randn(2, 3, 64, 64)
        PrefixRecorder.seen.clear()
        with torch.no_grad():
            got = net(images, plan, AdapterContext(torch.randn(NA, 5)))
            x = net.embed(images).tokens
            for block in net.model.blocks[:2]:
                x = block(x)
            block = net.model.blocks[2]
            b, t, d = x.shape
            q, k, _ = linear(layer_norm(x, block.norm1), block.attn.qkv).reshape(b, t, 3, 3, 16).permute(2, 0, 3, 1, 4)
            full = (q @ k.transpose(-2, -1) / 4.0).softmax(dim=-1)
            plain = net(images)
        rows = PrefixRecorder.seen[0].attention
        assert rows.shape == (2, 3, 1, 17)  # the prefix row alone
        torch.testing.assert_close(rows, full[:, :, :1], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(got.tokens, plain.tokens, rtol=1e-5, atol=1e-6)  # the output: timm's own attention
    finally:
        unregister("adapter", "test_prefix_recorder")


def test_semantic_query_changes_nothing_outside_training_and_refuses_the_wrong_place():
    adapter = zslkit.create("adapter", "semantic_query", token_dim=6, embedding_dim=2, num_attributes=3)
    from zslkit.adapters import TokenState

    state = TokenState(torch.randn(2, 5, 6), 1, (2, 2), queries=torch.randn(2, 2, 5, 3))
    assert adapter(state, AdapterContext(torch.randn(3, 2))) is state
    with pytest.raises(ValueError, match="runs at the place 'queries'"):
        adapter(state.replace(queries=None), AdapterContext(torch.randn(3, 2), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="mix must be a fraction"):
        zslkit.create("adapter", "semantic_query", token_dim=6, embedding_dim=2, num_attributes=3, mix=1.5)


def test_alignment_losses_refuse_outputs_without_records(model):
    model.eval()
    with torch.no_grad():
        output = model(torch.randn(1, 3, 64, 64, dtype=torch.float64))
    with pytest.raises(ValueError, match="no adapter recorded 'semantic'"):
        model.loss(output, torch.tensor([0]))


def test_backbone_rate_parts_get_the_backbone_rate(model):
    from zslkit.optim import parameter_groups

    groups = parameter_groups(model, lr=5e-3, backbone_lr=1e-5, weight_decay=1e-4)
    rates = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert rates[id(model.branches["global"].linear.weight)] == 5e-3
    assert rates[id(model.adapters.by_entry["query_1"].semantic[0].weight)] == 1e-5
    assert rates[id(model.backbone.model.blocks[0].attn.qkv.weight)] == 1e-5
    assert len(rates) == sum(p.requires_grad for p in model.parameters())


def official_layout(model, blocks, bias=True):
    """A state dict in the authors' layout ({"vit": ZSLViT, "mlp_g": Linear}), built from ``model``'s tensors."""
    own = {k: v.clone().float() for k, v in model.state_dict().items()}
    state = {f"vit.{k[len('backbone.model.'):]}": v for k, v in own.items()
             if k.startswith("backbone.model.") and not k.startswith("backbone.model.head")}
    for p, block in enumerate(blocks):
        for layer in (0, 2, 4):
            for name in ("weight", "bias"):
                state[f"vit.atttovis.{p}.fc.{layer}.{name}"] = own[f"adapters.by_entry.query_{block}.semantic.{layer}.{name}"]
        for layer in (0, 2):
            for name in ("weight", "bias"):
                state[f"vit.token_cls_reg.{p}.fc.{layer}.{name}"] = own[f"adapters.by_entry.query_{block}.regression.{layer}.{name}"]
    state["vit.aux_head.0.weight"] = torch.randn(96, 48)  # theirs, unused by scores and losses
    state["vit.head.weight"], state["vit.head.bias"] = torch.randn(1000, 48), torch.randn(1000)
    state["mlp_g.weight"] = own["branches.global.linear.weight"]
    if bias:
        state["mlp_g.bias"] = own["branches.global.linear.bias"]
    return state


def test_load_official_zslvit_reads_their_layout(tmp_path):
    source = build(seed=3).float().eval()
    state = official_layout(source, BLOCKS)
    path = tmp_path / "ZSLViT_TINY.pth"
    torch.save(state, path)
    options = {"blocks": BLOCKS, "keep": KEEP, "timm_model": "deit_tiny_patch16_224",
               "backbone_options": {k: v for k, v in BACKBONE.items() if k != "img_size"}}
    loaded = zslkit.create("converter", "zslvit", source=str(path), class_attributes=source.classes.attributes,
                           seen_classes=SEEN, **options).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images).scores, source(images).scores, rtol=0, atol=0)
    assert loaded.backbone.model.pos_embed.shape[1] == 17  # the 4 x 4 grid the state dict's pos_embed holds: 64 px
    no_bias = {k: v for k, v in state.items() if k != "mlp_g.bias"}
    assert zslkit.create("converter", "zslvit", source=no_bias, class_attributes=source.classes.attributes,
                         seen_classes=SEEN, **options).branches["global"].linear.bias is None
    from zslkit.datasets.checks import CheckpointError

    broken = {k: v for k, v in state.items() if not k.startswith("vit.atttovis.1.")}
    with pytest.raises(CheckpointError, match="missing the tensors of adapters.by_entry.query_2.semantic"):
        zslkit.create("converter", "zslvit", source=broken, class_attributes=source.classes.attributes,
                      seen_classes=SEEN, **options)


def test_recipes_read_and_name_the_authors_settings():
    from zslkit.training import load_config

    cub, sun, awa2 = (load_config(f"zslvit/{d}") for d in ("cub", "sun", "awa2"))
    assert (cub.lr, cub.backbone_lr, cub.batch_size, cub.epochs, cub.optimizer) == (5e-3, 1e-5, 32, 40, "adam")
    assert cub.schedule_options == {"milestones": [11, 21, 31], "decay_rate": 0.5}
    assert awa2.loss_weights == {"ce": 2.0}
    assert [s["block"] for s in sun.model_options["adapters"].values()] == [3, 3, 6, 6]
    from zslkit.bench.published import published

    assert np.isclose(published("zslvit", "cub")["H"], 0.736)
