"""MSDN and DAZLE run the fused op by default and equal the reference formulation."""

import numpy as np
import pytest
import torch

import zslkit
from zslkit.ops import get_backend, use_backend


def build(name, seed=0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    return zslkit.create_model(
        name,
        class_attributes=rng.uniform(size=(7, 9)),
        attribute_embeddings=rng.normal(size=(9, 5)),
        seen_classes=[0, 1, 2, 3, 4],
        unseen_classes=[5, 6],
        feature_dim=12,
    )


@pytest.mark.parametrize("name", ["msdn", "dazle"])
def test_fused_default_equals_reference_in_forward_and_backward(name):
    assert get_backend() == "fused"
    features = torch.randn(4, 12, 3, 5)
    labels = torch.tensor([0, 3, 4, 1])
    results = {}
    for backend in ("fused", "reference"):
        model = build(name)
        # move away from the zero init so that every parameter matters
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        with use_backend(backend):
            out = model(features)
            loss = model.loss(out, labels)["total"]
            loss.backward()
        results[backend] = (out, loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (fo, fl, fg), (ro, rl, rg) = results["fused"], results["reference"]
    torch.testing.assert_close(fo.scores, ro.scores, rtol=1e-5, atol=1e-6)
    for branch in fo.maps:
        if fo.maps[branch] is not None:
            torch.testing.assert_close(fo.maps[branch], ro.maps[branch], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fl, rl, rtol=1e-5, atol=1e-6)
    assert fg.keys() == rg.keys() and len(fg) >= 3
    for key in fg:
        torch.testing.assert_close(fg[key], rg[key], rtol=1e-4, atol=1e-6, msg=key)


def test_msdn_training_step_compiles_as_one_graph():
    model = build("msdn")
    features = torch.randn(4, 12, 3, 5)
    labels = torch.tensor([0, 3, 4, 1])

    def step(x, y):
        return model.loss(model(x), y)["total"]

    eager = step(features, labels)
    eager.backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    compiled = torch.compile(step, fullgraph=True)(features, labels)
    compiled.backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-6, msg=name)
