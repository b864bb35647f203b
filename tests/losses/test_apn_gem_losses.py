"""APN and GEM-ZSL loss terms against plain computations of their formulas."""

from __future__ import annotations

import math

import pytest
import torch

import zslkit
from zslkit.models import ClassSpace
from zslkit.models.output import ModelOutput


def classes(num_attributes=6, groups=None):
    g = torch.Generator().manual_seed(1)
    return ClassSpace(torch.rand(5, num_attributes, generator=g), seen_classes=[0, 2, 3], margin=0.0, normalize=False,
                      attribute_groups=groups)


def test_attribute_regression_sums_the_branch_mses():
    space = classes()
    psi = {"a": torch.randn(2, 6), "b": torch.randn(2, 6)}
    labels = torch.tensor([2, 0])
    term = zslkit.create("loss", "attribute_regression")
    value = term(ModelOutput(scores=torch.zeros(2, 5), attribute_scores=psi), labels, space)
    expected = sum(sum((float(psi[n][b, i]) - float(space.attributes[labels[b], i])) ** 2 for b in range(2) for i in range(6)) / 12 for n in "ab")
    assert float(value) == pytest.approx(expected, rel=1e-6)
    only_b = zslkit.create("loss", "attribute_regression", branches=["b"])(ModelOutput(scores=torch.zeros(2, 5), attribute_scores=psi), labels, space)
    assert float(only_b) == pytest.approx(float(((psi["b"] - space.attributes[labels]) ** 2).mean()), rel=1e-6)


def test_decorrelation_frobenius_is_apns_group_lasso_with_eps_per_channel():
    groups = {"x": [0, 1], "y": [2, 3, 4], "z": [5]}
    space = classes(groups=groups)
    w = torch.randn(6, 3)
    output = ModelOutput(scores=torch.zeros(1, 5), constants={"local": {"weights": w}, "other": {}})
    term = zslkit.create("loss", "attribute_decorrelation", groups=["x", "y", "x"])  # a repeat counts twice
    def lasso(rows):
        return math.sqrt(sum(sum(float(w[i, c]) ** 2 for i in rows) + 1e-8 for c in range(3)))
    assert float(term(output, None, space)) == pytest.approx(2 * lasso([0, 1]) + lasso([2, 3, 4]), rel=1e-6)


def test_decorrelation_channel_mean_is_gems():
    groups = {"x": [0, 1], "y": [2, 3, 4], "z": [5]}
    space = classes(groups=groups)
    q = torch.randn(6, 4)
    output = ModelOutput(scores=torch.zeros(1, 5), constants={"attention": {"queries": q}})
    term = zslkit.create("loss", "attribute_decorrelation", branches=["attention"], key="queries", norm="channel", reduction="mean", eps=0.0)
    per_group = [sum(math.sqrt(sum(float(q[i, c]) ** 2 for i in rows)) for c in range(4)) / 4 for rows in groups.values()]
    assert float(term(output, None, space)) == pytest.approx(sum(per_group) / 3, rel=1e-6)


def test_decorrelation_names_what_is_missing():
    space = classes(groups={"x": [0, 1]})
    output = ModelOutput(scores=torch.zeros(1, 5), constants={"a": {"weights": torch.randn(6, 2)}})
    with pytest.raises(KeyError, match="no attribute group 'wing'; the groups are \\['x'\\]"):
        zslkit.create("loss", "attribute_decorrelation", groups=["wing"])(output, None, space)
    with pytest.raises(KeyError, match="branch 'b' returns no constants\\['weights'\\]"):
        zslkit.create("loss", "attribute_decorrelation", branches=["b"])(output, None, space)
    with pytest.raises(ValueError, match="needs attribute groups"):
        zslkit.create("loss", "attribute_decorrelation")(output, None, classes())


def plain_compactness(maps, grid, sigmoid, total):
    height, width = grid
    value = 0.0
    B, NA, R = maps.shape
    for b in range(B):
        for i in range(NA):
            peak = int(maps[b, i].argmax())
            for r in range(R):
                m = float(maps[b, i, r])
                m = 1 / (1 + math.exp(-m)) if sigmoid else m
                value += m * ((r // width - peak // width) ** 2 + (r % width - peak % width) ** 2)
    return value if total else value / (B * NA * R)


@pytest.mark.parametrize(("activation", "reduction"), [("sigmoid", "sum"), ("none", "mean")])
def test_compactness_weights_the_map_by_the_squared_distance_to_its_peak(activation, reduction):
    maps = torch.randn(2, 3, 12)
    output = ModelOutput(scores=torch.zeros(2, 5), maps={"local": maps, "global": None}, grid=(3, 4))  # not square
    term = zslkit.create("loss", "compactness", activation=activation, reduction=reduction)
    assert term.needs_maps and term.needs_grid
    expected = plain_compactness(maps, (3, 4), activation == "sigmoid", reduction == "sum")
    assert float(term(output, None, classes())) == pytest.approx(expected, rel=1e-5)


def test_compactness_needs_the_grid():
    output = ModelOutput(scores=torch.zeros(2, 5), maps={"local": torch.randn(2, 3, 12)}, grid=None)
    with pytest.raises(ValueError, match="needs the region grid: give the features as \\(B, C, H, W\\)"):
        zslkit.create("loss", "compactness")(output, None, classes())


def test_attribute_ce_over_seen_classes_on_probabilities_is_apns_double_softmax():
    space = classes()
    y = torch.randn(4, 5)
    labels = torch.tensor([0, 3, 2, 3])
    output = ModelOutput(scores=y, branch_scores={"g": y})
    seen = [0, 2, 3]
    value = zslkit.create("loss", "attribute_ce", classes="seen", on_probabilities=True)(output, labels, space)
    expected = 0.0
    for b in range(4):
        logits = [float(y[b, k]) for k in seen]
        p = [math.exp(v) / sum(math.exp(u) for u in logits) for v in logits]
        expected -= math.log(math.exp(p[seen.index(int(labels[b]))]) / sum(math.exp(q) for q in p))
    assert float(value) == pytest.approx(expected / 4, rel=1e-6)
    plain_seen = zslkit.create("loss", "attribute_ce", classes="seen")(output, labels, space)
    assert float(plain_seen) == pytest.approx(float(torch.nn.functional.cross_entropy(y[:, seen], torch.tensor([0, 2, 1, 2]))), rel=1e-6)
