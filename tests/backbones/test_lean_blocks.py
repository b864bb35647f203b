"""A ViT's blocks inside ``recompute_saved``: timm's values and gradients bit for bit, with less kept for backward.

What a block keeps is read from the allocator (the profiler's memory events: bytes allocated minus
bytes freed during the forward, i.e. what is still held when backward starts; each top-level event
counts what its nested ones did, and the frees outside any operator come as their own events). The saving is
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


def forward(model, images, lean, **options):
    if not lean:
        return model(images, **options).tokens
    with recompute_saved():
        return model(images, **options).tokens


def held_bytes(prof) -> int:
    """Bytes allocated minus bytes freed in a profile (top-level events hold their nested ones' memory)."""
    return sum(event.cpu_memory_usage for event in prof.events() if event.cpu_parent is None)


def held_after_forward(model, images, lean, **options) -> int:
    """Bytes the forward leaves allocated (what autograd keeps for backward, and the output)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = forward(model, images, lean, **options)
    del out
    return held_bytes(prof)


def values_and_grads(model, images, lean, **options):
    model.zero_grad(set_to_none=True)
    out = forward(model, images, lean, **options)
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


def tiny_zslvit():
    from zslkit.models.zslvit import zslvit_adapters

    torch.manual_seed(0)
    options = {"img_size": SIZE, "patch_size": PATCH, "depth": DEPTH, "embed_dim": DIM, "num_heads": HEADS}
    return zslkit.create_model("zslvit", class_attributes=torch.rand(5, 4), seen_classes=[0, 1, 2], feature_dim=3,
                               timm_model="deit_tiny_patch16_224", backbone_random_init=True, backbone_options=options,
                               adapters=zslvit_adapters((1,), keep=0.75))


def tiny_psvma():
    from tests.models.test_psvma import build

    return build()


def tiny_svip():
    from tests.models.test_svip import build

    return build()


@pytest.mark.parametrize("build", [tiny_zslvit, tiny_psvma, tiny_svip], ids=["zslvit", "psvma", "svip"])
def test_token_models_keep_less_by_default_with_the_same_gradients(build):
    """Models that own their ViT run inside ``recompute_saved`` by default (``recompute_activations``): less is held
    after the forward, and the loss's gradients are the same bits as with it off (their adapters' marks included)."""
    model = build().float().train()
    assert model.recompute_activations
    size = model.backbone.model.patch_embed.img_size[0]
    images, labels = torch.randn(B, 3, size, size), model.classes.seen[:B]
    held, grads = {}, {}
    for recompute in (True, False):
        model.recompute_activations = recompute
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            loss = model.loss(model(images, labels), labels)["total"]
        held[recompute] = held_bytes(prof)
        loss.backward()
        grads[recompute] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads[True].keys() == grads[False].keys()
    assert all(torch.equal(grads[True][n], grads[False][n]) for n in grads[True])
    assert held[True] < held[False]


def test_dual_semantic_visual_keeps_its_norm_and_gelu_outputs_as_recipes():
    """PSVMA's module inside ``recompute_saved``: per image, the LayerNorm outputs its products read (encode twice:
    ``I D + 2 N D``; decode ``N D + 2 I D``; the two refinements ``I D`` each; the mixer's ``D N``; the FFN's
    ``N D``) and the GELU outputs (the refinements' ``I D`` each, the mixer's ``2 D h``, the FFN's ``4 N D``)
    are not held, ``8 I D + 11 N D + 2 D h`` floats; values and gradients the same bits."""
    from zslkit.adapters import AdapterContext, TokenState
    from zslkit.adapters.dual_semantic_visual import DualSemanticVisual

    I, D, N, E, H = 6, 16, 9, 5, 12  # noqa: E741  (attributes, width, patches, embedding width, mixer width)
    torch.manual_seed(0)
    module = DualSemanticVisual(D, E, I, groups=2, num_patches=N, mixer_hidden=H)
    for p in module.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    tokens = torch.randn(B, 1 + N, D, requires_grad=True)
    context = AdapterContext(torch.randn(I, E), entry="dsvtm")

    def run(lean):
        module.zero_grad(set_to_none=True)
        tokens.grad = None
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            if lean:
                with recompute_saved():
                    state = module(TokenState(tokens, 1, (3, 3)), context)
            else:
                state = module(TokenState(tokens, 1, (3, 3)), context)
        held = held_bytes(prof)
        (state.tokens.square().sum() + state.extras["dsvtm"]["scores"].sum()).backward()
        return held, state.tokens.detach(), [tokens.grad.clone()] + [p.grad.clone() for p in module.parameters()]

    plain_held, plain_out, plain_grads = run(False)
    lean_held, lean_out, lean_grads = run(True)
    assert torch.equal(plain_out, lean_out) and all(torch.equal(a, b) for a, b in zip(plain_grads, lean_grads))
    assert plain_held - lean_held == B * (8 * I * D + 11 * N * D + 2 * D * H) * 4


def test_mlp_recomputing_hidden_equals_timms_mlp_and_keeps_only_its_input():
    from timm.layers import Mlp

    from zslkit.ops.mlp_recompute import mlp_recomputing_hidden

    torch.manual_seed(0)
    mlp = Mlp(DIM, 4 * DIM)
    x, grad = torch.randn(B, TOKENS, DIM, requires_grad=True), torch.randn(B, TOKENS, DIM)
    results = []
    for lean in (False, True):
        x.grad = None
        mlp.zero_grad(set_to_none=True)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = mlp_recomputing_hidden(x, mlp.fc1, mlp.act, mlp.fc2) if lean else mlp(x)
        held = held_bytes(prof)
        out.backward(grad)
        results.append((held, out.detach(), [x.grad.clone()] + [p.grad.clone() for p in mlp.parameters()]))
    (plain_held, plain_out, plain_grads), (lean_held, lean_out, lean_grads) = results
    assert torch.equal(plain_out, lean_out) and all(torch.equal(a, b) for a, b in zip(plain_grads, lean_grads))
    assert plain_held - lean_held == B * TOKENS * 8 * DIM * 4  # fc1's output and GELU's (4 D each), float32
    double = Mlp(6, 10).double()
    inputs = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, *w: mlp_recomputing_hidden(t, double.fc1, double.act, double.fc2),
                                    (inputs, *double.parameters()))


def test_recompute_mlp_blocks_keeps_four_d_floats_a_token_less_per_block():
    model, images = backbone(), torch.randn(B, 3, SIZE, SIZE)
    lean_out, lean_grads = values_and_grads(model, images, lean=True)
    lean_held = held_after_forward(model, images, lean=True)
    out, grads = values_and_grads(model, images, lean=True, recompute_mlp_blocks=1)
    assert torch.equal(out, lean_out) and all(torch.equal(grads[n], lean_grads[n]) for n in grads)
    assert lean_held - held_after_forward(model, images, lean=True, recompute_mlp_blocks=1) == B * TOKENS * 4 * DIM * 4  # block 0's fc1 output


def backward_peak_bytes(out, grad) -> int:
    """The most bytes ``out.backward(grad)`` holds at once beyond what was allocated when it started (the
    profiler's memory timeline: every allocation and free)."""
    import json
    import tempfile
    import warnings
    from pathlib import Path

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        out.backward(grad)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        prof.export_memory_timeline(str(Path(folder) / "timeline.json"), device="cpu")
        _, sizes = json.loads((Path(folder) / "timeline.json").read_text())
    totals = [sum(per_category) for per_category in sizes]
    return max(totals) - totals[0]


def test_gelu_linear_recomputing_activation_equals_autograds_and_holds_a_hidden_tensor_less_in_backward():
    """``fc2(gelu(h))`` keeping ``h`` alone: values and gradients autograd's bit for bit; the activation is not
    held (``N H`` floats); and backward holds ``N H`` floats fewer at its peak than autograd's with the activation
    rerun as a recipe (``recompute_saved``): the rerun activation is freed before the input gradient is made, and
    GELU's backward writes over that gradient."""
    from zslkit.ops.mlp_recompute import gelu_linear_recomputing_activation
    from zslkit.ops.recompute import recomputed

    torch.manual_seed(0)
    hidden_width = 4 * DIM
    fc2, act = torch.nn.Linear(hidden_width, DIM), torch.nn.GELU()
    h = torch.randn(B, TOKENS, hidden_width, requires_grad=True)
    grad = torch.randn(B, TOKENS, DIM)
    forwards = {"plain": lambda: fc2(act(h)), "recipe": lambda: fc2(recomputed(act, h)),
                "lean": lambda: gelu_linear_recomputing_activation(h, act, fc2)}
    results = {}
    for name, forward_ in forwards.items():
        h.grad = None
        fc2.zero_grad(set_to_none=True)
        with recompute_saved(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = forward_()
        held = held_bytes(prof)
        peak = backward_peak_bytes(out, grad)
        results[name] = (held, peak, out.detach(), [h.grad.clone(), fc2.weight.grad.clone(), fc2.bias.grad.clone()])
    n_h = B * TOKENS * hidden_width * 4  # bytes of one (B, T, H) float32 tensor
    for name in ("recipe", "lean"):
        assert torch.equal(results[name][2], results["plain"][2])
        assert all(torch.equal(a, b) for a, b in zip(results[name][3], results["plain"][3]))
    assert results["plain"][0] - results["lean"][0] == n_h == results["plain"][0] - results["recipe"][0]
    assert results["recipe"][1] - results["lean"][1] == n_h
    double = torch.nn.Linear(5, 3).double()
    inputs = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, *w: gelu_linear_recomputing_activation(t, torch.nn.GELU(), double),
                                    (inputs, *double.parameters()))
    with pytest.raises(TypeError, match="act must be torch.nn.GELU, got ReLU"):
        gelu_linear_recomputing_activation(h, torch.nn.ReLU(), fc2)
