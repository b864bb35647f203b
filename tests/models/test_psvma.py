"""PSVMA (``psvma``) against an independent plain-torch computation of its math, on a tiny random-init ViT.

The reference below is written from the paper's equations and the authors' forward as read
(not from zslkit's code): the ViT blocks with explicit softmax attention, the dual
semantic-visual module, the initial CLS token and position embedding added again before the last
block, the second pass with the same weights, the scaled cosine, and the three loss terms.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import zslkit
from zslkit.losses.debias import Debias

SEEN, UNSEEN = [0, 2, 3, 5], [1, 4]
BACKBONE = {"final_norm": False, "img_size": 32, "patch_size": 8, "depth": 3, "embed_dim": 32, "num_heads": 2}


def adapters(**module):
    return {"dsvtm": {"adapter": "dual_semantic_visual", "place": "after_block", "block": -2, "groups": 2,
                      "num_patches": 16, "mixer_hidden": 24, **module},
            "reembed": {"adapter": "reembed", "place": "after_block", "block": -2},
            "dsvtm_2": {"share": "dsvtm", "place": "after_block", "block": -1}}


def build(seed=0, **module):
    torch.manual_seed(seed)
    attributes, embeddings = torch.rand(6, 6), torch.randn(6, 7)
    model = zslkit.create("model", "psvma", class_attributes=attributes, attribute_embeddings=embeddings,
                          seen_classes=SEEN, unseen_classes=UNSEEN, backbone_random_init=True,
                          backbone_options=BACKBONE, adapters=adapters(**module))
    with torch.no_grad():  # move every LayerNorm and bias off its init, so that no part can stand for another
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias") or "pos_embed" in name or "cls_token" in name:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model


# ----------------------------------------------------------------------------- the reference
def layer_norm(x, p, name, eps):
    return F.layer_norm(x, x.shape[-1:], p[f"{name}.weight"], p[f"{name}.bias"], eps)


def linear(x, p, name):
    return x @ p[f"{name}.weight"].t() + p[f"{name}.bias"]


def vit_block(x, p, k, heads):
    name = f"backbone.model.blocks.{k}"
    batch, tokens, dim = x.shape
    qkv = linear(layer_norm(x, p, f"{name}.norm1", 1e-6), p, f"{name}.attn.qkv").reshape(batch, tokens, 3, heads, dim // heads)
    q, k_, v = qkv.permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k_.transpose(-1, -2) / math.sqrt(dim // heads), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
    x = x + linear(out, p, f"{name}.attn.proj")
    hidden = F.gelu(linear(layer_norm(x, p, f"{name}.norm2", 1e-6), p, f"{name}.mlp.fc1"))
    return x + linear(hidden, p, f"{name}.mlp.fc2")


def rectified_attention(p, name, queries, keys):
    q = linear(layer_norm(queries, p, f"{name}.norm_q", 1e-5), p, f"{name}.to_q")
    k = linear(layer_norm(keys, p, f"{name}.norm_k", 1e-5), p, f"{name}.to_k")
    v = linear(layer_norm(keys, p, f"{name}.norm_v", 1e-5), p, f"{name}.to_v")
    logits = torch.relu(q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return logits, linear(torch.softmax(logits, dim=-1) @ v, p, f"{name}.proj")


def norm_mlp(z, p, name):
    return linear(F.gelu(linear(layer_norm(z, p, f"{name}.norm", 1e-5), p, f"{name}.fc1")), p, f"{name}.fc2")


def module(x, embeddings, p, gate=True, mixer=True):
    """The dual semantic-visual module on patch tokens ``x`` ``(B, N, D)``: (patches, [s_1, s_2])."""
    m = "adapters.by_entry.dsvtm"
    prototypes = (embeddings @ p[f"{m}.W"]).expand(x.shape[0], -1, -1)

    def gated(z):
        if not gate:
            return z
        g = torch.sigmoid(linear(F.gelu(linear(z.max(dim=-1).values, p, f"{m}.gate.fc1")), p, f"{m}.gate.fc2"))
        return z + z * g[..., None]

    def refine(base, attended):
        updated = base + attended
        g = gated(updated)
        return g + norm_mlp(g, p, f"{m}.refine") + updated

    s1, u = rectified_attention(p, f"{m}.encode", prototypes, x)
    prototypes_2 = prototypes + refine(prototypes, u)
    s2, u = rectified_attention(p, f"{m}.encode", prototypes_2, x)
    final = refine(prototypes_2, u)
    _, o = rectified_attention(p, f"{m}.decode", x, final)
    y = x + o
    if mixer:
        z = layer_norm(y, p, f"{m}.mixer.norm", 1e-5).transpose(1, 2)
        z = F.gelu(linear(F.gelu(linear(z, p, f"{m}.mixer.net.0")), p, f"{m}.mixer.net.2"))
        y = y + linear(z, p, f"{m}.mixer.net.4").transpose(1, 2)
    return y + norm_mlp(y, p, f"{m}.ffn"), [s1, s2]


def reference(model, images, labels=None, gate=True, mixer=True, reembed=True):
    """Scores, the loss terms and the attention logits of every pass, in plain torch."""
    p = dict(model.named_parameters())
    patch = BACKBONE["patch_size"]
    x = F.conv2d(images, p["backbone.model.patch_embed.proj.weight"], p["backbone.model.patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    cls, pos = p["backbone.model.cls_token"].expand(x.shape[0], -1, -1), p["backbone.model.pos_embed"]
    x = torch.cat([cls, x], dim=1) + pos
    embeddings, logits = model.V, []
    for k in range(BACKBONE["depth"]):
        x = vit_block(x, p, k, BACKBONE["num_heads"])
        if k >= BACKBONE["depth"] - 2:
            patches, s = module(x[:, 1:], embeddings, p, gate, mixer)
            logits += s
            x = torch.cat([cls, patches], dim=1) + pos if (k == BACKBONE["depth"] - 2 and reembed) else torch.cat([x[:, :1], patches], 1)
    u = x[:, 1:].mean(dim=1) @ p["branches.base.V"]
    psi = 25.0 * u / (u.norm(dim=1, keepdim=True) + 1e-5)
    attributes = model.classes.attributes
    scores = psi @ (attributes / (attributes.norm(dim=1, keepdim=True) + 1e-5)).t()
    if labels is None:
        return scores, None, logits
    seen, unseen = torch.tensor(SEEN), torch.tensor(UNSEEN)
    position = {c: i for i, c in enumerate(SEEN)}
    ce = F.cross_entropy(scores[:, seen], torch.tensor([position[int(y)] for y in labels]))
    mse = sum(((s.max(dim=-1).values - attributes[labels]) ** 2).mean() for s in logits)
    a, b = scores[:, seen], scores[:, unseen]
    debias = torch.relu(a.mean(1) - b.mean(1)).mean() + torch.relu(a.std(1) - b.std(1)).mean()
    terms = {"attribute_ce": ce, "attention_regression": mse, "debias": debias}
    terms["total"] = ce + 0.5 * mse + 0.001 * debias
    return scores, terms, logits


def relative(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def model():
    return build()


def test_scores_losses_and_maps_equal_the_plain_torch_computation(model):
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 5, 3])
    model.train()
    output = model(images, labels)
    terms = model.loss(output, labels)
    scores, expected, logits = reference(model, images, labels)
    assert relative(output.scores, scores) < 1e-5
    for name, value in expected.items():
        assert abs(float(terms[name].detach()) - float(value.detach())) <= 1e-5 * abs(float(value.detach())), name
    assert relative(output.maps["dsvtm_2"], logits[3]) < 1e-5  # the second pass's attribute->patch attention
    assert relative(output.attribute_scores["dsvtm"], logits[1].max(-1).values) < 1e-5
    assert output.grid == (4, 4) and output.maps["dsvtm_2"].shape == (3, 6, 16)


def test_gradients_equal_the_plain_torch_computation(model):
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([2, 3])
    model.train()
    named = {n: p for n, p in model.named_parameters() if p.requires_grad and ".head." not in n}  # timm's unused head
    ours = torch.autograd.grad(model.loss(model(images, labels), labels)["total"], list(named.values()))
    theirs = torch.autograd.grad(reference(model, images, labels)[1]["total"], list(named.values()))
    for name, a, b in zip(named, ours, theirs):
        assert relative(a, b) < 1e-4, name


@pytest.mark.parametrize("gate, mixer", [(False, True), (True, False)])
def test_group_gate_and_token_mixer_options(gate, mixer):
    model = build(1, group_gate=gate, token_mixer=mixer).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative(model(images).scores, reference(model, images, gate=gate, mixer=mixer)[0]) < 1e-5
    left_out = ".gate." if not gate else ".mixer."
    assert not any(left_out in key for key in model.state_dict())


def test_second_pass_shares_the_module_and_the_cls_token_is_the_initial_one(model):
    assert not any(".dsvtm_2." in key for key in model.state_dict())
    assert model.options["adapters"]["dsvtm_2"] == {"share": "dsvtm", "place": "after_block", "block": 2}
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        without = reference(model.eval(), images, reembed=False)[0]
        assert relative(model(images).scores, without) > 1e-3  # re-embedding changes the result, and is done


def test_debias_reference_classes():
    torch.manual_seed(0)
    scores, labels = torch.randn(4, 6), torch.tensor([0, 0, 2, 2])
    classes = build().classes
    unseen = Debias(reference="unseen")(type("O", (), {"branch_scores": {"b": scores}})(), labels, classes)
    a, b = scores[:, SEEN], scores[:, UNSEEN]
    assert torch.allclose(unseen, F.relu(a.mean(1) - b.mean(1)).mean() + F.relu(a.std(1) - b.std(1)).mean())
    inductive = Debias(reference="absent_seen")(type("O", (), {"branch_scores": {"b": scores}})(), labels, classes)
    a, b = scores[:, [0, 2]], scores[:, [3, 5]]  # seen classes in the batch vs seen classes absent from it
    assert torch.allclose(inductive, F.relu(a.mean(1) - b.mean(1)).mean() + F.relu(a.std(1) - b.std(1)).mean())
    with pytest.raises(ValueError, match="absent_seen"):
        Debias(reference="test")


def test_bad_adapter_specs_are_refused():
    with pytest.raises(ValueError, match="share"):
        zslkit.create(
            "model", "psvma", class_attributes=torch.rand(6, 6), attribute_embeddings=torch.randn(6, 7), seen_classes=SEEN,
            backbone_random_init=True, backbone_options=BACKBONE,
            adapters={**adapters(), "dsvtm_2": {"share": "nowhere", "place": "after_block", "block": -1}})
    with pytest.raises(ValueError, match="num_patches"):
        zslkit.create("model", "psvma", class_attributes=torch.rand(6, 6), attribute_embeddings=torch.randn(6, 7),
                      seen_classes=SEEN, backbone_random_init=True, backbone_options=BACKBONE,
                      adapters=adapters(num_patches=196))(torch.randn(1, 3, 32, 32))
