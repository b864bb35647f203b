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
from zslkit.attention.dropout import torch_dropout_draws
from zslkit.interop import _transformer_keys, load_official_transzero, load_official_transzero_pp

C, D, d, FFN, I, K, B, GRID = 10, 6, 8, 12, 5, 6, 3, (3, 4)  # noqa: E741 (distinct sizes: a transposed mask cannot fit)
P = 0.4
#: Tolerances from the measured error, relative to each tensor's largest value. The floor is the geometry
#: embedding, which the model computes in float32 arithmetic as the authors' code does (``test_transzero``
#: checks it to 2e-4 absolute): over the cases below the model in float64 and in float32 err alike, loss
#: terms up to 1.3e-6 and gradients up to 5.2e-5 (the geometry weights'; the others below 2e-5). A mask
#: missing or misplaced changes them by 1e-2 or more.
TOL_LOSS, TOL_GRAD = 1e-5, 2.5e-4
TZ_TERMS = {"attribute_ce": 1.0, "self_calibration": 0.3, "attribute_regression": 0.005}


def features(seed=1):
    return torch.randn(B, C, *GRID, generator=torch.Generator().manual_seed(seed)).relu()


def labels():
    return torch.tensor([0, 4, 2])  # seen classes (mask_bias -1 at even indices)


def rel(ours, ref):
    ours, ref = ours.detach().double(), ref.detach().double()
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def math_terms(pp, st, x, y, heads, satt):
    """The math's unweighted loss terms (zslkit's term names), masks drawn as the authors' forward draws them."""
    R = GRID[0] * GRID[1]
    plan = lambda queries, keys: math_ref.mask_plan(B, R, d, FFN, queries, keys, heads, satt, P)  # noqa: E731
    if not pp:
        scores, e, _ = math_ref.transzero(st, x, heads, satt, masks=math_ref.draw_masks(plan(I, R)))
        return dict(zip(TZ_TERMS, math_ref.stream_terms(scores, e, y, st)))
    masks = (math_ref.draw_masks(plan(I, R)), math_ref.draw_masks(plan(R, I)))
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


def softmax_shift(key):
    """Biases that shift every logit of a softmax alike: exact gradient 0, computed one rounding noise."""
    return key.endswith(("to_k.bias", "geometry.bias"))


def step_errors(pp, heads=1, satt=True, seed=0, dtype=torch.float32):
    """Relative errors of every loss term and every gradient, model (in ``dtype``) vs math, one training step."""
    st = math_ref.official_state(pp, C=C, D=D, d=d, ffn=FFN, I=I, K=K, seed=seed)
    model = (load_official_transzero_pp if pp else load_official_transzero)(st, dropout=P, heads=heads, self_attention=satt)
    model = model.to(dtype).train()
    x, y = features().to(dtype), labels()
    torch.manual_seed(seed + 11)
    with torch_dropout_draws():
        ours = model.loss(model(x), y)
    leaves = {k: v.double().requires_grad_() for k, v in st.items()}
    torch.manual_seed(seed + 11)
    theirs = math_terms(pp, leaves, x, y, heads, satt)
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
