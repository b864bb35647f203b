"""TransZero and TransZero++ in training mode, every dropout on, against the tests' own math (issues 27, 28).

The model draws its masks as ``nn.Dropout`` does (``torch_dropout_draws``, checking only); the math
(``transzero_math``) draws the same masks in the order and shapes of the authors' forward and applies
them where the papers' layers put dropout. So a dropout at another place, a missing or extra one,
another rate or another layout shifts the draws or the values and fails. Every loss term and every
gradient is compared, at a tolerance set from the measured float32 error (below).
"""

import pytest
import torch

from tests.models import transzero_math as math_ref
from zslkit.attention import dropout as dropout_module
from zslkit.attention.dropout import torch_dropout_draws
from zslkit.interop import load_official_transzero, load_official_transzero_pp
from zslkit.models.transzero_official import _transformer_keys

C, D, d, FFN, I, K, B, GRID = 10, 6, 8, 12, 5, 6, 3, (3, 4)  # noqa: E741 (distinct sizes: a transposed mask cannot fit)
P = 0.4
#: Tolerances from the measured error, relative to each tensor's largest value. The floor is the geometry
#: embedding, which the model computes in float32 arithmetic as the authors' code does (``test_transzero``
#: checks it to 2e-4 absolute): over the cases below the model errs alike in float64 and in float32 --
#: loss terms up to 2.0e-6, gradients up to 1.0e-4 (the encoder's query weights) and 3.0e-4 (the
#: geometry weights, which multiply the embedding). A mask missing, misplaced or at another rate changes
#: the loss terms by 1e-1 or more (docs/transzero.md, "Training mode").
TOL_LOSS, TOL_GRAD = 1e-5, 1e-3
TZ_TERMS = {"attribute_ce": 1.0, "self_calibration": 0.3, "attribute_regression": 0.005}


def features(seed=1):
    return torch.randn(B, C, *GRID, generator=torch.Generator().manual_seed(seed)).relu()


def labels():
    return torch.tensor([0, 4, 2])  # seen classes (mask_bias -1 at even indices)


def rel(ours, ref):
    ours, ref = ours.detach().double(), ref.detach().double()
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def plans(pp, heads, satt):
    """The mask plan of each stream (s2v: attribute queries over regions; v2s: region queries over attributes)."""
    R = GRID[0] * GRID[1]
    plan = lambda queries, keys: math_ref.mask_plan(B, R, d, FFN, queries, keys, heads, satt, P)  # noqa: E731
    return [plan(I, R), plan(R, I)] if pp else [plan(I, R)]


def math_terms(pp, st, x, y, heads, satt, masks=None):
    """The math's unweighted loss terms (zslkit's term names); ``masks`` per stream, or drawn as the
    authors' forward draws them."""
    masks = masks or [math_ref.draw_masks(plan) for plan in plans(pp, heads, satt)]
    if not pp:
        scores, e, _ = math_ref.transzero(st, x, heads, satt, masks=masks[0])
        return dict(zip(TZ_TERMS, math_ref.stream_terms(scores, e, y, st)))
    _, (y1, y2), (e1, e2), _ = math_ref.transzero_pp(st, x, heads, satt, masks=masks)
    terms = dict(zip(("attribute_ce", "self_calibration", "attribute_regression"), math_ref.stream_terms(y1, e1, y, st)))
    terms |= dict(zip(("attribute_ce_v2s", "self_calibration_v2s", "attribute_regression_v2s"), math_ref.stream_terms(y2, e2, y, st)))
    return terms | {"attribute_consistency": ((e1 - e2) ** 2).mean(), "class_consistency": ((y1 - y2) ** 2).mean()}


def to_zslkit_keys(pp, tensors, satt):
    if not pp:
        return {"V": tensors["V"], "branches.s2v.W1": tensors["W_1"]} | _transformer_keys(tensors, "transformer", "encoder", "branches.s2v", satt)
    out = {"V": tensors["V"], "branches.s2v.W1": tensors["W_1_s2v"], "branches.v2s.W1": tensors["W_1_v2s"], "branches.v2s.W4": tensors["W_4_v2s"]}
    for stream in ("s2v", "v2s"):
        out |= _transformer_keys(tensors, f"transformer_{stream}", f"branches.{stream}.encoder", f"branches.{stream}", satt)
    return out


def record_masks(monkeypatch):
    """``[(keep, scale)]`` of every mask the model draws, in order."""
    recorded, draw = [], dropout_module.keep_mask

    def recording(x, p, token_first=False):
        keep, scale = draw(x, p, token_first)
        recorded.append((keep, scale))
        return keep, scale

    monkeypatch.setattr(dropout_module, "keep_mask", recording)
    return recorded


def placed_masks(recorded, stream_plans):
    """The recorded masks as the math's scaled masks, checked against the plans: one per planned dropout,
    at its rate, one mask per image (batch first, turned into the plan's layout)."""
    plan = [entry for stream in stream_plans for entry in stream]
    assert len(recorded) == len(plan), f"{len(recorded)} masks drawn, the math has {len(plan)} dropouts"
    out, queue = [], iter(recorded)
    for stream in stream_plans:
        masks = {}
        for part, name, shape, rate in stream:
            keep, scale = next(queue)
            assert scale == pytest.approx(1 / (1 - rate), abs=1e-4), f"{part} {name}: scale {scale}, rate {rate}"
            token_first = part == "decoder" and not name.endswith("weights")
            assert keep.numel() == torch.Size(shape).numel(), f"{part} {name}: mask {tuple(keep.shape)}, one per image is {shape}"
            keep = keep.reshape(shape[1], shape[0], *shape[2:]).transpose(0, 1) if token_first else keep.reshape(shape)
            masks[(part, name)] = keep.double() * scale
        out.append(masks)
    return out


def softmax_shift(key):
    """Biases that shift every logit of a softmax alike: exact gradient 0, computed one rounding noise."""
    return key.endswith(("to_k.bias", "geometry.bias"))


def step_errors(pp, heads=1, satt=True, seed=0, dtype=torch.float32, own_masks=False, monkeypatch=None):
    """Relative errors of every loss term and every gradient, model (in ``dtype``) vs math, one training step.

    ``own_masks``: the model draws its own masks (16-bit lanes); they are recorded and given to the math,
    which places them.
    """
    st = math_ref.official_state(pp, C=C, D=D, d=d, ffn=FFN, I=I, K=K, seed=seed)
    model = (load_official_transzero_pp if pp else load_official_transzero)(st, dropout=P, heads=heads, self_attention=satt)
    model = model.to(dtype).train()
    x, y = features().to(dtype), labels()
    torch.manual_seed(seed + 11)
    if own_masks:
        recorded = record_masks(monkeypatch)
        ours = model.loss(model(x), y)
        masks = placed_masks(recorded, plans(pp, heads, satt))
    else:
        with torch_dropout_draws():
            ours = model.loss(model(x), y)
        masks = None
    leaves = {k: v.double().requires_grad_() for k, v in st.items()}
    torch.manual_seed(seed + 11)
    theirs = math_terms(pp, leaves, x, y, heads, satt, masks)
    weights = model.loss_weights
    assert set(theirs) == set(weights), "the model's loss terms are the math's"
    (sum(weights[k] * v for k, v in theirs.items())).backward()
    ours["total"].backward()
    errors = {f"loss {k}": rel(ours[k], v) for k, v in theirs.items()}
    grads = to_zslkit_keys(pp, {k: v.grad for k, v in leaves.items() if v.grad is not None}, satt)
    own = dict(model.named_parameters())
    scale = max(float(g.abs().max()) for g in grads.values())
    for key, g in grads.items():
        errors[f"grad {key}"] = float((own[key].grad - g).abs().max()) / scale if softmax_shift(key) else rel(own[key].grad, g)
    return errors


@pytest.mark.parametrize("pp", [False, True], ids=["transzero", "transzero_pp"])
@pytest.mark.parametrize(("heads", "satt"), [(1, True), (2, True), (1, False)])
def test_training_step_with_dropout_equals_the_math(pp, heads, satt):
    errors = step_errors(pp, heads, satt)
    for kind, tol in (("loss", TOL_LOSS), ("grad", TOL_GRAD)):
        worst = max((k for k in errors if k.startswith(kind)), key=errors.get)
        assert errors[worst] < tol, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("pp", [False, True], ids=["transzero", "transzero_pp"])
def test_training_step_with_its_own_masks_equals_the_math(pp, monkeypatch):
    """zslkit's own mask stream (16-bit lanes, rates on the 1/65536 grid): one mask per image everywhere,
    the attribute self-attention's included (issue 28: one mask per batch made its gradient noise 3.6x larger)."""
    errors = step_errors(pp, own_masks=True, monkeypatch=monkeypatch)
    for kind, tol in (("loss", TOL_LOSS), ("grad", TOL_GRAD)):
        worst = max((k for k in errors if k.startswith(kind)), key=errors.get)
        assert errors[worst] < tol, f"{worst}: relative error {errors[worst]:.2e}"


def test_attention_projections_start_as_in_the_released_code():
    """Issue 28: the encoder's projections Xavier-uniform each (ScaledDotProductGeometryAttention.init_weights),
    the decoder's q/k/v one Xavier draw over the packed (3d, d) matrix (nn.MultiheadAttention), biases zero."""
    import math

    import zslkit

    dim = 300
    torch.manual_seed(0)
    model = zslkit.create_model("transzero_pp", class_attributes=torch.rand(K, I), seen_classes=[0, 2, 4], feature_dim=C, embedding_dim=D)
    for branch in model.branches.values():
        encoder, decoder = branch.encoder.layers[0].attn, branch.decoder.cross_attn
        for attn, bound, names in ((encoder, math.sqrt(6 / (2 * dim)), "qkv out"), (decoder, math.sqrt(6 / (4 * dim)), "qkv")):
            for name in names.split():
                for linear in ([attn.to_q, attn.to_k, attn.to_v] if name == "qkv" else [attn.to_out]):
                    w = linear.weight
                    assert float(w.abs().max()) <= bound and abs(float(w.std()) - bound / math.sqrt(3)) < 0.02 * bound
            assert all(float(lin.bias.abs().max()) == 0 for lin in (attn.to_q, attn.to_k, attn.to_v, attn.to_out))
        assert float(decoder.to_out.weight.abs().max()) <= 1 / math.sqrt(dim)  # nn.Linear's default, as out_proj's
