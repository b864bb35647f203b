"""attribute_regression and the two consistency terms against their formulas, written out."""

import pytest
import torch

import zslkit
from zslkit.models import ModelOutput


class Classes:
    attributes = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]])


def output():
    g = torch.Generator().manual_seed(0)
    return ModelOutput(
        scores=torch.zeros(2, 2),
        attribute_scores={"a": torch.randn(2, 3, generator=g), "b": torch.randn(2, 3, generator=g)},
        branch_scores={"a": torch.randn(2, 2, generator=g), "b": torch.randn(2, 2, generator=g)},
    )


def test_attribute_regression_is_a_sum_over_branches_of_the_mean_squared_error():
    out, labels = output(), torch.tensor([1, 0])
    expected = 0.0
    for name in ("a", "b"):
        psi = out.attribute_scores[name]
        expected += sum((psi[n, i] - Classes.attributes[labels[n], i]) ** 2 for n in range(2) for i in range(3)) / 6
    assert torch.isclose(zslkit.create("loss", "attribute_regression")(out, labels, Classes()), expected)
    only_b = zslkit.create("loss", "attribute_regression", branches=["b"])(out, labels, Classes())
    psi = out.attribute_scores["b"]
    assert torch.isclose(only_b, sum((psi[n, i] - Classes.attributes[labels[n], i]) ** 2 for n in range(2) for i in range(3)) / 6)


@pytest.mark.parametrize(("term", "field"), [("attribute_consistency", "attribute_scores"), ("class_consistency", "branch_scores")])
def test_consistency_terms_are_the_mean_squared_difference_of_two_branches(term, field):
    out = output()
    first, second = getattr(out, field)["a"], getattr(out, field)["b"]
    expected = sum((first[n, j] - second[n, j]) ** 2 for n in range(first.shape[0]) for j in range(first.shape[1])) / first.numel()
    assert torch.isclose(zslkit.create("loss", term)(out, torch.tensor([0, 1]), Classes()), expected)
    assert torch.isclose(zslkit.create("loss", term, branches=["b", "a"])(out, torch.tensor([0, 1]), Classes()), expected)
    with pytest.raises(ValueError, match="exactly two branches"):
        zslkit.create("loss", term, branches=["a"])
    with pytest.raises(KeyError, match="no branch 'c'"):
        zslkit.create("loss", term, branches=["a", "c"])(out, torch.tensor([0, 1]), Classes())
