"""MSDN assembled from parts: scores, margin, initialisation, losses, gradients, swapping parts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zslkit
from zslkit.models import MSDN, ModelOutput

K, N_ATTR, D, C, H, W = 7, 5, 4, 6, 2, 3
SEEN, UNSEEN = [0, 1, 3, 4, 6], [2, 5]


def make(**options):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    return zslkit.create_model(
        "msdn",
        class_attributes=rng.random((K, N_ATTR)),
        attribute_embeddings=rng.normal(size=(N_ATTR, D)),
        seen_classes=SEEN,
        unseen_classes=UNSEEN,
        feature_dim=C,
        **options,
    )


def features(batch=3, seed=1):
    return torch.randn(batch, C, H, W, generator=torch.Generator().manual_seed(seed))


def randomize(model, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.branches.values():
            for p in block.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
    return model


def test_scores_shape_margin_and_branch_mix():
    model = randomize(make())
    out = model(features())
    assert isinstance(out, ModelOutput) and out.scores.shape == (3, K)
    assert set(out.branch_scores) == {"a2v", "v2a"} and out.maps["a2v"].shape == (3, N_ATTR, H * W)
    A = model.classes.attributes
    for name in ("a2v", "v2a"):
        margin = out.branch_scores[name] - out.attribute_scores[name] @ A.T
        expected = torch.tensor([1.0 if k in UNSEEN else -1.0 for k in range(K)]).expand(3, K)
        assert torch.allclose(margin, expected, atol=1e-5)
    assert torch.allclose(out.scores, 0.9 * out.branch_scores["a2v"] + 0.1 * out.branch_scores["v2a"])


def test_margin_size_is_configurable():
    out = make(scorer={"scorer": "unit_rows", "margin": 0.25})(features())
    delta = out.branch_scores["a2v"] - out.attribute_scores["a2v"] @ make().classes.attributes.T
    assert torch.allclose(delta[:, UNSEEN], torch.full((3, 2), 0.25), atol=1e-5)
    assert torch.allclose(delta[:, SEEN], torch.full((3, 5), -0.25), atol=1e-5)


def test_initialisation_unit_rows_and_fixed_class_attributes():
    model = make()
    assert torch.allclose(model.V.norm(dim=1), torch.ones(N_ATTR)) and model.V.requires_grad
    assert torch.allclose(model.classes.attributes.norm(dim=1), torch.ones(K))
    assert "classes.attributes" not in dict(model.named_parameters())
    assert torch.count_nonzero(model.branches["a2v"].W2) == 0 and torch.count_nonzero(model.branches["v2a"].U1) == 0


def test_features_are_normalised_per_region_and_may_come_flat():
    model = randomize(make())
    x = features()
    scale = torch.rand(3, 1, H, W) * 5 + 0.1  # a positive factor per region
    assert torch.allclose(model(x).scores, model(x * scale).scores, atol=1e-5)
    assert torch.allclose(model(x).scores, model(x.reshape(3, C, H * W)).scores)


def test_loss_dict_total_is_the_weighted_sum():
    model = randomize(make())
    losses = model.loss(model(features()), torch.tensor([0, 3, 6]))
    assert set(losses) == {"total", "attribute_ce", "self_calibration", "semantic_distillation"}
    expected = losses["attribute_ce"] + 0.1 * losses["self_calibration"] + 0.001 * losses["semantic_distillation"]
    assert losses["total"].item() == pytest.approx(expected.item())
    model.set_loss_weights({"self_calibration": 0.5})
    again = model.loss(model(features()), torch.tensor([0, 3, 6]))
    assert again["total"].item() == pytest.approx((losses["attribute_ce"] + 0.5 * losses["self_calibration"] + 0.001 * losses["semantic_distillation"]).item())
    with pytest.raises(ValueError, match="no loss term 'bogus'"):
        model.set_loss_weights({"bogus": 1.0})


def test_gradients_reach_every_trained_parameter():
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    labels = torch.tensor([0, 3, 6])
    for _ in range(2):  # U2 has no gradient at the very first step (U1 = 0 makes s' = 0)
        opt.zero_grad()
        model.loss(model(features()), labels)["total"].backward()
        opt.step()
    grads = {
        "V": model.V.grad,
        "W1": model.branches["a2v"].W1.grad,
        "W2": model.branches["a2v"].W2.grad,
        "U1": model.branches["v2a"].U1.grad,
        "U2": model.branches["v2a"].U2.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and torch.count_nonzero(grad) > 0, name


def test_a_plugin_block_trains_as_a_branch():
    branches = {
        "a2v": {"attention": "attribute_to_visual", "weight": 0.9},
        "temp": {"attention": "example_temperature_attention", "weight": 0.1, "temperature": 0.3},
    }
    model = make(branches=branches)
    assert type(model.branches["temp"]).__name__ == "TemperatureAttention" and model.branches["temp"].temperature == 0.3
    x, labels = features(batch=8, seed=3), torch.tensor([0, 1, 3, 4, 6, 0, 1, 3])
    opt = torch.optim.Adam(model.branches["temp"].parameters(), lr=0.05)
    first = None
    for _ in range(25):
        opt.zero_grad()
        losses = model.loss(model(x), labels)
        losses["total"].backward()
        opt.step()
        first = first if first is not None else losses["attribute_ce"].item()
    assert losses["attribute_ce"].item() < first - 0.05
    assert set(losses) == {"total", "attribute_ce", "self_calibration", "semantic_distillation"}


def test_loss_specs_weights_dicts_and_errors():
    model = make(losses={"attribute_ce": 1.0, "calib": {"loss": "self_calibration", "weight": 0.2, "branches": ["a2v"]}})
    assert model.loss_weights == {"attribute_ce": 1.0, "calib": 0.2}
    assert set(model.loss(model(features()), torch.tensor([0, 1, 3]))) == {"total", "attribute_ce", "calib"}
    with pytest.raises(ValueError, match=r"branches\['a2v'\] must be a registered name or a dict"):
        make(branches={"a2v": 0.9})
    with pytest.raises(KeyError, match="no attention named 'atribute_to_visual'"):
        make(branches={"a2v": "atribute_to_visual"})


def test_bad_inputs_get_one_line_errors():
    model = make()
    with pytest.raises(ValueError, match="features have 5 channels, the model was built with feature_dim=6"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"must be \(B, C, H, W\) or \(B, C, R\)"):
        model(torch.randn(2, C))
    with pytest.raises(ValueError, match=r"attribute_embeddings must be \(5, D\)"):
        zslkit.create_model("msdn", class_attributes=np.ones((K, N_ATTR)), attribute_embeddings=np.ones((4, D)), seen_classes=SEEN)
    with pytest.raises(TypeError, match="has no option 'margn'"):
        make(margn=1.0)


def test_classes_in_neither_set_are_never_predicted():
    model = zslkit.create_model(
        "msdn", class_attributes=np.random.default_rng(0).random((K, N_ATTR)), attribute_embeddings=np.ones((N_ATTR, D)),
        seen_classes=[0, 1, 3], unseen_classes=[2], feature_dim=C,
    )
    out = model(features())
    assert torch.isinf(out.scores[:, [4, 5, 6]]).all() and torch.isfinite(out.scores[:, :4]).all()
    assert torch.isfinite(model.loss(out, torch.tensor([0, 1, 3]))["total"])


def test_msdn_is_a_plain_class_too():
    model = MSDN(class_attributes=np.ones((K, N_ATTR)), attribute_embeddings=np.ones((N_ATTR, D)), seen_classes=SEEN, feature_dim=C)
    assert model.classes.unseen.tolist() == UNSEEN
    assert F.normalize(torch.ones(N_ATTR, D), dim=1).allclose(model.attribute_embeddings())
