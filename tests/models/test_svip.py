"""SVIP (``svip``) and its parts against independent plain-torch computations on a tiny random-init ViT.

The reference below recomputes every block of the ViT from its weights (layer norm, qkv, softmax
attention, MLP) with ``torch.nn.functional`` and loops, builds the 2 x 2 patch groups by indexing,
and writes every loss term out; nothing of zslkit's SVIP code is used by it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zslkit
from zslkit.datasets.checks import CheckpointError
from zslkit.ops.attention_rollout import AttentionRollout, explicit_rollout
from zslkit.ops.patch_groups import group_patches, group_scores, ungroup_patches

SIZE, PATCH, DIM, DEPTH, HEADS, KEEP = 32, 4, 32, 3, 2, 10  # an 8 x 8 patch grid: 4 x 4 groups of 2 x 2
GRID = SIZE // PATCH
NUM_CLASSES, NUM_ATTRIBUTES, SEEN = 6, 10, [0, 1, 2, 3]
GROUPS = {"a": [0, 1, 2], "b": [3, 4, 5, 6], "c": [7, 8, 9]}
BACKBONE = {"img_size": SIZE, "patch_size": PATCH, "embed_dim": DIM, "depth": DEPTH, "num_heads": HEADS}


def build(**options):
    options = {"branches": {"target": {"attention": "group_head", "group": 2, "keep": KEEP}}, **options}
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = zslkit.create_model(
        "svip", class_attributes=rng.random((NUM_CLASSES, NUM_ATTRIBUTES)).astype(np.float32),
        attribute_embeddings=rng.normal(size=(NUM_ATTRIBUTES, 7)).astype(np.float32), seen_classes=SEEN,
        unseen_classes=[4, 5], timm_model="vit_tiny_patch16_224", backbone_random_init=True, backbone_options=BACKBONE,
        attribute_groups=GROUPS, **options)
    with torch.no_grad():  # zero biases would hide a wrong layout: fill everything
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model


# ------------------------------------------------------------------ the independent reference
def plain_block(x, block):
    """One timm block from its weights: returns (output, attention weights (B, heads, T, T))."""
    a = block.attn
    h = F.layer_norm(x, (DIM,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    qkv = F.linear(h, a.qkv.weight, a.qkv.bias).reshape(x.shape[0], x.shape[1], 3, HEADS, DIM // HEADS)
    q, k, v = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) / (DIM // HEADS) ** 0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(x.shape)
    x = x + F.linear(out, a.proj.weight, a.proj.bias)
    h = F.layer_norm(x, (DIM,), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    x = x + F.linear(F.gelu(F.linear(h, block.mlp.fc1.weight, block.mlp.fc1.bias)), block.mlp.fc2.weight, block.mlp.fc2.bias)
    return x, weights


def plain_rollout(weights):
    product = torch.eye(weights[0].shape[-1]).expand(weights[0].shape[0], -1, -1)
    for w in weights:
        a = w.mean(dim=1) + torch.eye(w.shape[-1])
        product = (a / a.sum(dim=-1, keepdim=True)) @ product
    return product


def patch_embeddings(vit, images):
    """(B, GRID, GRID, D) the conv patch projection."""
    proj = vit.patch_embed.proj
    return F.conv2d(images, proj.weight, proj.bias, stride=PATCH).permute(0, 2, 3, 1)


def groups_of(grid_tokens):
    """(B, GRID, GRID, D) -> (B, G, 4D): group (a, b) = patches (2a+i, 2b+j), i then j."""
    return torch.stack([torch.cat([grid_tokens[:, 2 * a + i, 2 * b + j] for i in range(2) for j in range(2)], dim=1)
                        for a in range(GRID // 2) for b in range(GRID // 2)], dim=1)


def plain_vit(vit, grid_tokens):
    """Tokens (B, GRID, GRID, D) -> (normalised patch tokens (B, GRID, GRID, D), every block's weights)."""
    x = torch.cat([vit.cls_token.expand(grid_tokens.shape[0], -1, -1), grid_tokens.flatten(1, 2)], dim=1) + vit.pos_embed
    weights = []
    for block in vit.blocks:
        x, w = plain_block(x, block)
        weights.append(w)
    x = F.layer_norm(x, (DIM,), vit.norm.weight, vit.norm.bias, vit.norm.eps)
    return x[:, 1:].reshape(grid_tokens.shape), weights


def fill_tokens(model):
    """(4, D): p2t(v2p(V)^T) (D, 4) read row-major, chunk s the token of sub-patch s = 2i + j."""
    adapter = model.adapters.by_entry["semantic_tokens"]
    per_attribute = model.V @ adapter.v2p.weight.T + adapter.v2p.bias  # (I, D)
    matrix = per_attribute.T @ adapter.p2t.weight.T + adapter.p2t.bias  # (D, 4)
    return matrix.reshape(-1).reshape(4, DIM)


def add_fill(model, raw, kept):
    out = raw.clone()
    fill = fill_tokens(model)
    for b in range(raw.shape[0]):
        for g in range((GRID // 2) ** 2):
            if g not in kept[b].tolist():
                a, c = divmod(g, GRID // 2)
                for i in range(2):
                    for j in range(2):
                        out[b, 2 * a + i, 2 * c + j] += fill[2 * i + j]
    return out


def selector_probabilities(model, raw):
    mlp = model.selector.mlp
    return torch.sigmoid(F.linear(F.relu(F.linear(groups_of(raw), mlp[0].weight, mlp[0].bias)), mlp[2].weight, mlp[2].bias))[..., 0]


def class_rows(model):
    a = model.classes.attributes
    return a / (a.norm(dim=1, keepdim=True) + 1e-5)


def hand_eval(model, images):
    vit = model.backbone.model
    raw = patch_embeddings(vit, images)
    p = selector_probabilities(model, raw)
    kept = torch.argsort(p, dim=1)[:, :KEEP]
    tokens, _ = plain_vit(vit, add_fill(model, raw, kept))
    head = model.branches["target"].head
    psi = F.linear(groups_of(tokens), head.weight, head.bias).mean(dim=1)
    return psi @ class_rows(model).T


def hand_train(model, images, labels):
    """Every loss term of SVIP's main.py, written out."""
    vit, head = model.backbone.model, model.branches["target"].head
    raw = patch_embeddings(vit, images)
    p = selector_probabilities(model, raw)
    source, weights = plain_vit(vit, raw)
    row = plain_rollout(weights)[:, 0, 1:]  # (B, N)
    scores = row.reshape(row.shape[0], -1, 4).mean(-1)  # the authors' runs of four along the rows
    kept = [set(torch.topk(s, KEEP).indices.tolist()) for s in scores]
    targets = torch.tensor([[0.0 if g in k else 1.0 for g in range(scores.shape[1])] for k in kept])
    src_groups = groups_of(source)
    psi_s = torch.stack([F.linear(src_groups[b, sorted(k)], head.weight, head.bias).mean(0) for b, k in enumerate(kept)])
    target, _ = plain_vit(vit, add_fill(model, raw, [torch.tensor(sorted(k)) for k in kept]))
    tgt_groups = groups_of(target)
    similarity = (tgt_groups * tgt_groups.mean(dim=1, keepdim=True)).sum(-1)
    chosen = torch.topk(similarity, KEEP, dim=1).indices
    psi_t = torch.stack([F.linear(tgt_groups[b, chosen[b]], head.weight, head.bias).mean(0) for b in range(len(chosen))])
    rows = class_rows(model)[SEEN]
    y_s, y_t = psi_s @ rows.T, psi_t @ rows.T
    seen_labels = torch.tensor([SEEN.index(int(c)) for c in labels])
    ce = [-(torch.log_softmax(5 * y, dim=1)[torch.arange(len(labels)), seen_labels]).mean() for y in (y_s, y_t)]
    q_log, p_t = torch.log_softmax(y_s / 20, dim=1), torch.softmax(y_t / 20, dim=1)
    kl = (p_t * (torch.log(p_t) - q_log)).sum() / p_t.numel() * 400
    bce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
    att = torch.stack([psi_t[:, g].pow(2).sum(1).sqrt().mean() for g in GROUPS.values()]).mean()
    return {"ce_source": ce[0], "ce_target": ce[1], "kl": kl, "patch_cls": bce, "att_dec": att,
            "total": ce[0] + ce[1] + kl + 3 * bce + 0.09 * att}


# ------------------------------------------------------------------ tests
def images(batch=3, seed=1):
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_rollout_equals_the_product_of_every_layer_and_leaves_the_forward_alone():
    model = build()
    vit = model.backbone.model
    x = images()
    tokens = model.backbone.embed(x).tokens
    _, weights = plain_vit(vit, patch_embeddings(vit, x))
    expected = plain_rollout(weights)
    plain = vit.blocks(tokens)
    with AttentionRollout(vit.blocks) as rollout:
        hooked = vit.blocks(tokens)
    assert torch.equal(hooked, plain)  # the hook changes nothing of the forward
    assert not rollout.product.requires_grad and rollout.product.shape == (3, GRID * GRID + 1, GRID * GRID + 1)
    torch.testing.assert_close(rollout.product, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(explicit_rollout(weights), expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(expected, plain_rollout(weights[1:]), atol=1e-4)  # every layer counts


def test_patch_groups_and_scores_by_hand():
    x = torch.arange(16.0).reshape(1, 16, 1)
    assert group_patches(x, (4, 4), 2)[0, :, 0].tolist() == [0, 2, 8, 10]
    assert group_patches(x, (4, 4), 2)[0, 1].tolist() == [2, 3, 6, 7]
    assert torch.equal(ungroup_patches(group_patches(x, (4, 4), 2), (4, 4), 2), x)
    assert group_scores(x[..., 0], (4, 4), 2, "grid")[0].tolist() == [2.5, 4.5, 10.5, 12.5]
    assert group_scores(x[..., 0], (4, 4), 2, "raster")[0].tolist() == [1.5, 5.5, 9.5, 13.5]
    with pytest.raises(ValueError, match="divisible by 2; got 5 x 4"):
        group_patches(torch.zeros(1, 20, 1), (5, 4), 2)


def test_evaluation_scores_equal_the_hand_computation():
    model = build().eval()
    x = images()
    with torch.no_grad():
        output = model(x)
        expected = hand_eval(model, x)
    torch.testing.assert_close(output.scores, expected, rtol=1e-4, atol=1e-5)
    assert output.maps["target"].shape == (3, NUM_ATTRIBUTES, GRID * GRID) and output.grid == (GRID, GRID)


def test_training_terms_equal_the_hand_computation():
    model = build().train()
    x, labels = images(), torch.tensor([0, 3, 1])
    terms = model.loss(model(x, labels), labels)
    with torch.no_grad():
        expected = hand_train(model, x, labels)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name].detach(), value, rtol=1e-4, atol=1e-6, msg=name)


def test_grid_grouping_changes_the_targets():
    x = images()
    raster = build().train()(x, torch.tensor([0, 1, 2])).extras["selector"]["targets"]
    grid = build(selector={"grouping": "grid"}).train()(x, torch.tensor([0, 1, 2])).extras["selector"]["targets"]
    assert raster.sum(1).tolist() == grid.sum(1).tolist() == [6.0] * 3 and not torch.equal(raster, grid)


@pytest.mark.parametrize(("options", "message"), [
    ({"selector": {"keep": 3}}, "selector option 'keep' unknown"),
    ({"branches": {"target": {"attention": "group_head", "keep": 20}}}, "keep=20 groups, but a 8 x 8 patch grid has 16"),
    ({"adapters": {}}, "needs one 'semantic_tokens' adapter"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        model = build(**options)
        model(images())


def their_layout(model):
    """A state dict as the authors' VisionTransformer saves it, built from a zslkit model's parameters."""
    state = {k[len("backbone.model."):]: v for k, v in model.state_dict().items()
             if k.startswith("backbone.model.") and not k.startswith("backbone.model.head.")}
    parts = {"head_1": model.branches["target"].head, "token_cls.0": model.selector.mlp[0], "token_cls.2": model.selector.mlp[2],
             "v2p": model.adapters.by_entry["semantic_tokens"].v2p, "p2t": model.adapters.by_entry["semantic_tokens"].p2t}
    for name, layer in parts.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = layer.weight.detach().clone(), layer.bias.detach().clone()
    state["head.weight"], state["head.bias"] = torch.randn(NUM_ATTRIBUTES, DIM), torch.randn(NUM_ATTRIBUTES)
    return state


def test_load_official_svip_reads_their_layout(tmp_path):
    model = build().eval()
    state = their_layout(model)
    path = tmp_path / "ckpt.pth"
    import argparse

    torch.save({"network": state, "args": argparse.Namespace(dataset="CUB"), "epoch": 3}, path)  # main.py's checkpoint
    converted = zslkit.create("converter", "svip", source=str(path), class_attributes=model.classes.attributes.numpy(),
                              attribute_embeddings=model.V.detach().numpy(), seen_classes=SEEN, unseen_classes=[4, 5],
                              timm_model="vit_tiny_patch16_224", keep=KEEP, backbone_options=BACKBONE).eval()
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(converted(x).scores, hand_eval(model, x), rtol=1e-4, atol=1e-5)
    assert torch.equal(converted.selector.mlp[2].weight, state["token_cls.2.weight"])
    del state["p2t.bias"]
    with pytest.raises(CheckpointError, match="nothing for 'adapters.by_entry.semantic_tokens.p2t.bias'"):
        zslkit.create("converter", "svip", source=state, class_attributes=model.classes.attributes.numpy(),
                      attribute_embeddings=model.V.detach().numpy(), seen_classes=SEEN, timm_model="vit_tiny_patch16_224",
                      keep=KEEP, backbone_options=BACKBONE)


def held_after_training_forward(model, x, labels):
    """Bytes a training forward leaves allocated (what autograd keeps for backward, and the outputs)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = model(x, labels)
    del out
    return sum(event.cpu_memory_usage for event in prof.events() if event.cpu_parent is None)


def test_recompute_mlp_blocks_per_pass_keeps_each_pass_s_fc1_outputs_with_the_same_gradients():
    """``[source, target]``: each pass's first blocks rerun ``fc1`` in backward; per block and pass the held bytes
    drop by exactly ``fc1``'s output (``B T 4 D`` floats), and the loss gradients keep their bits."""
    x, labels = images(), torch.tensor([0, 3, 1])
    held, grads = {}, {}
    for counts in ([0, 0], [2, 0], [0, 1], [2, 1]):
        model = build(recompute_mlp_blocks=counts).train()
        assert model.recompute_mlp_blocks == {"source": counts[0], "target": counts[1]}
        held[tuple(counts)] = held_after_training_forward(model, x, labels)
        model.loss(model(x, labels), labels)["total"].backward()
        grads[tuple(counts)] = [p.grad for p in model.parameters() if p.requires_grad]
    fc1_output = 3 * (1 + GRID * GRID) * 4 * DIM * 4  # B T 4D floats, float32
    assert held[(0, 0)] - held[(2, 0)] == 2 * fc1_output
    assert held[(0, 0)] - held[(0, 1)] == fc1_output
    assert held[(0, 0)] - held[(2, 1)] == 3 * fc1_output
    assert all(torch.equal(a, b) for counts in grads for a, b in zip(grads[(0, 0)], grads[counts]))
    assert build(recompute_mlp_blocks=1).recompute_mlp_blocks == {"source": 1, "target": 1}


@pytest.mark.parametrize("counts", [[1, 2, 3], [-1, 0], True, "3", [1.5, 0]])
def test_bad_recompute_mlp_blocks_are_refused(counts):
    with pytest.raises(ValueError, match=r"recompute_mlp_blocks must be a number of blocks \(0 for none\) or a list "
                                         r"of 2, one per pass \['source', 'target'\]"):
        build(recompute_mlp_blocks=counts)


def test_the_patch_embedding_is_computed_once_for_the_selector_and_both_passes():
    model, x = build().train(), images()
    calls = []
    model.backbone.model.patch_embed.register_forward_hook(lambda *args: calls.append(1))
    model(x, torch.tensor([0, 3, 1]))
    assert len(calls) == 1
