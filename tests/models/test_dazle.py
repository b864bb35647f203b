"""DAZLE: the same assembly with the gated attribute-to-visual block and no distillation."""

import numpy as np
import torch

import zslkit
from zslkit.models import DAZLE

K, N_ATTR, D, C, R = 6, 4, 3, 5, 4
SEEN, UNSEEN = [0, 1, 2, 4], [3, 5]


def make():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    return zslkit.create_model(
        "dazle", class_attributes=rng.random((K, N_ATTR)), attribute_embeddings=rng.normal(size=(N_ATTR, D)),
        seen_classes=SEEN, unseen_classes=UNSEEN, feature_dim=C,
    )


def test_dazle_scores_match_the_gated_formula():
    model = make()
    with torch.no_grad():
        model.branches["dazle"].W2.normal_()
        model.branches["dazle"].W3.normal_()
    x = torch.randn(2, C, R, generator=torch.Generator().manual_seed(1))
    out = model(x)
    f = x / x.norm(dim=1, keepdim=True)
    V, block, A = model.V, model.branches["dazle"], model.classes.attributes
    s = torch.einsum("id,dc,bcr->bir", V, block.W1, f)
    a = torch.einsum("id,dc,bcr->bir", V, block.W2, f).softmax(dim=-1)
    gate = torch.sigmoid(torch.einsum("id,dc,bcr,bir->bi", V, block.W3, f, a))
    margin = torch.tensor([1.0 if k in UNSEEN else -1.0 for k in range(K)])
    expected = torch.einsum("ki,bi->bk", A, gate * (a * s).sum(-1)) + margin
    assert isinstance(model, DAZLE)
    assert torch.allclose(out.scores, expected, atol=1e-5)


def test_dazle_losses_and_training_step():
    model = make()
    assert model.loss_weights == {"attribute_ce": 1.0, "self_calibration": 0.1}
    x, labels = torch.randn(8, C, R, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 4] * 2)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
    history = []
    for _ in range(20):
        opt.zero_grad()
        losses = model.loss(model(x), labels)
        losses["total"].backward()
        opt.step()
        history.append(losses["total"].item())
    assert set(losses) == {"total", "attribute_ce", "self_calibration"}
    assert history[-1] < history[0] - 0.1
