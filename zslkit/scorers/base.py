"""What a scorer is: class attribute rows times attribute scores, plus the margin; branches combined into the prediction.

A scorer (kind ``scorer``) is built as ``zslkit.create("scorer", name, **options)`` from a
model's ``scorer=`` spec: a registered name, or ``{"scorer": name, **options}``. For attribute
scores ``psi`` ``(B, I)`` of one branch and the model's :class:`~zslkit.models.ClassSpace`:

* ``class_scores(psi, classes)`` ``(B, K)``: ``y_{b,k} = sum_i r(A)_{k,i} psi_{b,i} + m_k`` with the
  scorer's rows ``r(A)`` (:meth:`Scorer.rows`) and the margin ``m`` (``classes.margin``: ``+margin``
  for unseen, ``-margin`` for seen classes);
* ``predict(branch_scores, weights, classes)`` ``(B, K)``: ``sum_branches weight * y``, or with
  ``probabilities=True`` ``sum_branches weight * softmax_k(y)`` over the seen and unseen classes.

Two attributes tell the model how to build its class space: ``margin`` (the margin's size) and
``unit_rows`` (store the class-attribute rows scaled to unit length, which loss terms then read as
well, e.g. as regression targets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from einops import einsum
from torch import nn

from zslkit.registry import create

if TYPE_CHECKING:
    from zslkit.models.class_space import ClassSpace

__all__ = ["Scorer", "build_scorer", "parse_scorer_spec"]


class Scorer(nn.Module):
    """Base of the built-in scorers: subclasses say which rows score (:meth:`rows`) and whether they are stored unit length.

    Args:
        margin: size of the margin ``m`` (+margin unseen, -margin seen classes).
        probabilities: the prediction is the weighted sum of the branches' class probabilities
            (softmax over the seen and unseen classes) instead of their class scores.
    """

    #: Whether the model's :class:`~zslkit.models.ClassSpace` stores the class-attribute rows at unit length.
    unit_rows: ClassVar[bool] = False

    def __init__(self, margin: float = 0.0, probabilities: bool = False):
        super().__init__()
        self.margin = float(margin)
        self.probabilities = bool(probabilities)

    def rows(self, classes: ClassSpace) -> torch.Tensor:
        """``(K, I)`` the class-attribute rows the scores are taken against: ``classes.attributes`` as stored."""
        return classes.attributes

    def class_scores(self, attribute_scores: torch.Tensor, classes: ClassSpace) -> torch.Tensor:
        """``(B, I) -> (B, K)``: ``y = psi r(A)^T + m``."""
        scores = einsum(self.rows(classes), attribute_scores, "cls attribute, batch attribute -> batch cls")
        return scores + classes.margin

    def predict(self, branch_scores: Mapping[str, torch.Tensor], weights: Mapping[str, float], classes: ClassSpace) -> torch.Tensor:
        """``(B, K)``: the weighted sum of the branches' class scores (or of their probabilities)."""
        if not self.probabilities:
            return sum(weights[name] * y for name, y in branch_scores.items())
        hidden = ~classes.predictable
        return sum(weights[name] * y.masked_fill(hidden, float("-inf")).softmax(dim=1) for name, y in branch_scores.items())

    def extra_repr(self) -> str:
        return f"margin={self.margin:g}, probabilities={self.probabilities}"


def parse_scorer_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"name"`` or ``{"scorer": name, **options}`` -> the dict form."""
    if isinstance(spec, str):
        return {"scorer": spec}
    if isinstance(spec, Mapping) and isinstance(spec.get("scorer"), str):
        return dict(spec)
    raise ValueError(f"scorer must be a registered scorer name or {{'scorer': name, **options}}, got {spec!r}")


def build_scorer(spec: str | Mapping[str, Any]) -> nn.Module:
    """The scorer a spec names, checked for what a model reads from it (``margin``, ``unit_rows``, the two methods)."""
    parsed = parse_scorer_spec(spec)
    scorer = create("scorer", parsed["scorer"], **{k: v for k, v in parsed.items() if k != "scorer"})
    for attribute, kind in (("margin", float), ("unit_rows", bool), ("class_scores", None), ("predict", None)):
        value = getattr(scorer, attribute, None)
        if (kind is None and not callable(value)) or (kind is not None and not isinstance(value, kind)):
            what = "a method" if kind is None else f"a {kind.__name__}"
            raise TypeError(f"scorer {parsed['scorer']!r} must have {attribute!r} ({what}); found {value!r}")
    return scorer
