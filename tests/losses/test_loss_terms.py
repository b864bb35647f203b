"""Each loss term against a direct re-computation with Python loops and ``math``."""

import math

import pytest
import torch

import zslkit
from zslkit.losses import AttributeCrossEntropy, SelfCalibration, SemanticDistillation
from zslkit.models import ClassSpace, ModelOutput

K, N_ATTR, B = 6, 4, 5
SEEN, UNSEEN = [0, 2, 3, 5], [1, 4]


@pytest.fixture
def classes():
    g = torch.Generator().manual_seed(0)
    return ClassSpace(torch.rand(K, N_ATTR, generator=g), SEEN, UNSEEN, margin=1.0)


@pytest.fixture
def output():
    g = torch.Generator().manual_seed(1)
    scores = {name: 3 * torch.randn(B, K, generator=g, dtype=torch.float64) for name in ("a2v", "v2a")}
    return ModelOutput(scores=scores["a2v"], branch_scores=scores)


LABELS = torch.tensor([0, 2, 3, 5, 0])


def log_softmax_at(row, k):
    top = max(row)
    return row[k] - top - math.log(sum(math.exp(x - top) for x in row))


def softmax(row):
    return [math.exp(log_softmax_at(row, k)) for k in range(len(row))]


def test_class_space_margin_and_normalisation(classes):
    margin = classes.margin.tolist()
    assert [margin[k] for k in SEEN] == [-1.0] * 4 and [margin[k] for k in UNSEEN] == [1.0] * 2
    assert torch.allclose(classes.attributes.norm(dim=1), torch.ones(K))
    assert classes.seen.tolist() == SEEN and classes.unseen.tolist() == UNSEEN


def test_class_space_rejects_bad_splits():
    with pytest.raises(ValueError, match="overlap"):
        ClassSpace(torch.rand(K, N_ATTR), [0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"in \[0, 6\)"):
        ClassSpace(torch.rand(K, N_ATTR), [0, 6])
    assert ClassSpace(torch.rand(K, N_ATTR), [0, 1]).unseen.tolist() == [2, 3, 4, 5]


def test_attribute_ce_removes_the_margin_and_sums_over_branches(output, classes):
    m = classes.margin.tolist()
    expected = 0.0
    for y in output.branch_scores.values():
        per_image = [-log_softmax_at([y[b, k].item() - m[k] for k in range(K)], LABELS[b].item()) for b in range(B)]
        expected += sum(per_image) / B
    assert AttributeCrossEntropy()(output, LABELS, classes).item() == pytest.approx(expected, rel=1e-10)


def test_self_calibration_is_minus_log_of_the_mean_unseen_mass(output, classes):
    expected = 0.0
    for y in output.branch_scores.values():
        masses = [sum(softmax(y[b].tolist())[k] for k in UNSEEN) for b in range(B)]
        expected += -math.log(sum(masses) / B)
    assert SelfCalibration()(output, LABELS, classes).item() == pytest.approx(expected, rel=1e-10)


def test_semantic_distillation_is_weighted_difference_plus_jensen_shannon(output, classes):
    y, y2 = output.branch_scores["a2v"], output.branch_scores["v2a"]
    weighted = jsd = 0.0
    for b in range(B):
        d = [y[b, k].item() - y2[b, k].item() for k in range(K)]
        norm = math.sqrt(sum(x * x for x in d))
        weighted += sum(abs(x) ** 3 / norm for x in d)
        p, q = softmax(y[b].tolist()), softmax(y2[b].tolist())
        mid = [(a + c) / 2 for a, c in zip(p, q)]
        jsd += 0.5 * sum(a * math.log(a / c) for a, c in zip(p, mid)) + 0.5 * sum(a * math.log(a / c) for a, c in zip(q, mid))
    expected = weighted / B + jsd / B
    assert SemanticDistillation()(output, LABELS, classes).item() == pytest.approx(expected, rel=1e-10)


def test_terms_can_be_restricted_to_some_branches(output, classes):
    only = ModelOutput(scores=output.scores, branch_scores={"a2v": output.branch_scores["a2v"]})
    for term in (AttributeCrossEntropy, SelfCalibration):
        assert term(branches=["a2v"])(output, LABELS, classes).item() == pytest.approx(term()(only, LABELS, classes).item())
    with pytest.raises(KeyError, match="no branch 'v3a'"):
        AttributeCrossEntropy(branches=["v3a"])(output, LABELS, classes)


def test_distillation_needs_two_branches_and_is_zero_for_equal_branches(output, classes):
    y = output.branch_scores["a2v"].clone().requires_grad_(True)
    same = ModelOutput(scores=y, branch_scores={"a": y, "b": y.clone()})
    value = SemanticDistillation()(same, LABELS, classes)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-12) and torch.isfinite(y.grad).all()
    with pytest.raises(ValueError, match="needs two branches"):
        SemanticDistillation()(ModelOutput(scores=y, branch_scores={"a": y}), LABELS, classes)
    with pytest.raises(ValueError, match="exactly two branches"):
        SemanticDistillation(branches=["a"])


def test_self_calibration_needs_unseen_classes(output):
    closed = ClassSpace(torch.rand(K, N_ATTR), list(range(K)))
    with pytest.raises(ValueError, match="needs unseen classes"):
        SelfCalibration()(output, LABELS, closed)


def test_terms_are_registered():
    assert {"attribute_ce", "self_calibration", "semantic_distillation"} <= set(zslkit.list_components("loss"))
    assert isinstance(zslkit.create("loss", "semantic_distillation", branches=["a", "b"]), SemanticDistillation)
