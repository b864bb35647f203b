"""A ViT's blocks inside ``recompute_saved``: timm's values and gradients bit for bit, with less kept for backward.

What a block keeps is read from the allocator (the profiler's memory events: bytes allocated minus
bytes freed during the forward, i.e. what is still held when backward starts). The saving is
computed from the shapes alone: per block, the two LayerNorm outputs (``D`` floats a token each)
and the MLP's activation (``4 D``), ``6 D`` floats per token.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import zslkit
from zslkit.ops.recompute import recompute_saved

B, SIZE, PATCH, DEPTH, DIM, HEADS = 2, 32, 8, 2, 48, 3
TOKENS = 1 + (SIZE // PATCH) ** 2


def backbone(**options):
    torch.manual_seed(0)
    model = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", random_init=True, img_size=SIZE,
                          patch_size=PATCH, depth=DEPTH, embed_dim=DIM, num_heads=HEADS, **options)
    for p in model.parameters():  # norms and biases off their 1/0 init, so that a wrong recomputation shows
        p.data.add_(0.1 * torch.randn_like(p))
    return model.train()


def forward(model, images, lean):
    if not lean:
        return model(images).tokens
    with recompute_saved():
        return model(images).tokens


def held_after_forward(model, images, lean) -> int:
    """Bytes the forward leaves allocated (what autograd keeps for backward, and the output)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = forward(model, images, lean)
    del out
    return sum(event.cpu_memory_usage for event in prof.events())


def values_and_grads(model, images, lean):
    model.zero_grad(set_to_none=True)
    out = forward(model, images, lean)
    out.pow(2).mul(torch.linspace(0, 1, out.shape[-1])).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_lean_blocks_equal_timms_forward_and_backward_bitwise():
    model, images = backbone(), torch.randn(B, 3, SIZE, SIZE)
    plain_out, plain_grads = values_and_grads(model, images, lean=False)
    lean_out, lean_grads = values_and_grads(model, images, lean=True)
    model.zero_grad(set_to_none=True)
    timm_out = model.model.forward_features(images)  # timm's own forward, its own modules
    assert torch.equal(lean_out, timm_out) and torch.equal(lean_out, plain_out)
    assert plain_grads.keys() == lean_grads.keys() and len(lean_grads) == len(list(model.model.blocks.parameters())) + 6  # + CLS, position, patch embedding (2), final norm (2)
    assert all(torch.equal(plain_grads[n], lean_grads[n]) for n in plain_grads)


def test_lean_blocks_keep_six_d_floats_a_token_less_per_block():
    model, images = backbone(), torch.randn(B, 3, SIZE, SIZE)
    saved = held_after_forward(model, images, lean=False) - held_after_forward(model, images, lean=True)
    assert saved == DEPTH * B * TOKENS * 6 * DIM * 4  # two norm outputs (D) and the GELU output (4 D), float32


def test_mlp_dropout_in_training_keeps_its_activation():
    """With dropout after the activation, fc2 saves the dropped tensor, not the activation: only the norms go."""
    model, images = backbone(proj_drop_rate=0.1), torch.randn(B, 3, SIZE, SIZE)
    saved = held_after_forward(model, images, lean=False) - held_after_forward(model, images, lean=True)
    assert saved == DEPTH * B * TOKENS * 2 * DIM * 4
    torch.manual_seed(3)
    plain_out, plain_grads = values_and_grads(model, images, lean=False)
    torch.manual_seed(3)
    lean_out, lean_grads = values_and_grads(model, images, lean=True)
    assert torch.equal(plain_out, lean_out) and all(torch.equal(plain_grads[n], lean_grads[n]) for n in plain_grads)


@pytest.mark.parametrize("recompute", [False, True])
def test_token_model_forward_runs_inside_recompute_saved_by_default(recompute):
    """A model that owns its ViT: the default keeps less; ``recompute_activations=False`` keeps timm's tensors;
    the loss's gradients are the same bits either way."""
    from zslkit.models.zslvit import zslvit_adapters

    torch.manual_seed(0)
    attributes, adapters = torch.rand(5, 4), zslvit_adapters((1,), keep=0.75)
    options = {"img_size": SIZE, "patch_size": PATCH, "depth": DEPTH, "embed_dim": DIM, "num_heads": HEADS}
    model = zslkit.create_model("zslvit", class_attributes=attributes, seen_classes=[0, 1, 2], feature_dim=3,
                                timm_model="deit_tiny_patch16_224", backbone_random_init=True, backbone_options=options,
                                adapters=adapters, recompute_activations=recompute).train()
    reference = zslkit.create_model("zslvit", class_attributes=attributes, seen_classes=[0, 1, 2], feature_dim=3,
                                    timm_model="deit_tiny_patch16_224", backbone_random_init=True, backbone_options=options,
                                    adapters=adapters, recompute_activations=not recompute).train()
    reference.load_state_dict(model.state_dict())
    images, labels = torch.randn(B, 3, SIZE, SIZE), torch.tensor([0, 2])
    held = {}
    for name, net in (("model", model), ("reference", reference)):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            loss = net.loss(net(images, labels), labels)["total"]
        held[name] = sum(event.cpu_memory_usage for event in prof.events())
        loss.backward()
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(model.parameters(), reference.parameters()) if a.grad is not None)
    assert (held["model"] < held["reference"]) == recompute
