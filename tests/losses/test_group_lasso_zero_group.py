"""The group lasso (``attribute_decorrelation``) on a group whose weights are all zero: the eps floor
per channel, and a finite, zero gradient there (the square root is never taken of 0)."""

from __future__ import annotations

import math

import pytest
import torch

import zslkit
from zslkit.models import ClassSpace
from zslkit.models.output import ModelOutput

GROUPS = {"live": [0, 1], "dead": [2, 3], "one": [4]}


def space():
    return ClassSpace(torch.rand(3, 5, generator=torch.Generator().manual_seed(0)), seen_classes=[0, 1], margin=0.0,
                      normalize=False, attribute_groups=GROUPS)


@pytest.mark.parametrize("norm", ["frobenius", "channel"])
def test_an_all_zero_group_costs_the_eps_floor_and_has_a_zero_finite_gradient(norm):
    channels, eps = 3, 1e-6
    w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [0.0] * 3, [0.0] * 3, [0.0, 3.0, 0.0]], requires_grad=True)
    term = zslkit.create("loss", "attribute_decorrelation", norm=norm, eps=eps)
    value = term(ModelOutput(scores=torch.zeros(1, 3), constants={"b": {"weights": w}}), None, space())
    value.backward()
    rows = w.detach().double().tolist()

    def n(group):  # by hand: eps per channel, inside the root
        per_channel = [sum(rows[i][c] ** 2 for i in group) + eps for c in range(channels)]
        return math.sqrt(sum(per_channel)) if norm == "frobenius" else sum(map(math.sqrt, per_channel)) / channels

    assert n([2, 3]) == pytest.approx(math.sqrt(channels * eps) if norm == "frobenius" else math.sqrt(eps))
    assert float(value.detach()) == pytest.approx(sum(n(g) for g in GROUPS.values()), rel=1e-6)
    assert torch.isfinite(w.grad).all()
    assert torch.equal(w.grad[2:4], torch.zeros(2, 3))
    # the live groups' gradient by hand: w / n_g (frobenius), w / (C sqrt(sum_i w^2 + eps)) per channel
    for group in (GROUPS["live"], GROUPS["one"]):
        for i in group:
            for c in range(channels):
                if norm == "frobenius":
                    expected = rows[i][c] / n(group)
                else:
                    expected = rows[i][c] / (channels * math.sqrt(sum(rows[k][c] ** 2 for k in group) + eps))
                assert float(w.grad[i, c]) == pytest.approx(expected, rel=1e-5, abs=1e-7)
