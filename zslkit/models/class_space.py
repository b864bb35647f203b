"""The class space a model scores: class attributes, the seen/unseen split and the margin."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClassSpace", "MissingAttributeGroupsError", "check_attribute_groups"]


class MissingAttributeGroupsError(ValueError):
    """A loss term needs attribute groups and the model was given none; ``term`` names it."""

    def __init__(self, message: str, term: str = ""):
        super().__init__(message)
        self.term = term


def check_attribute_groups(groups, num_attributes: int) -> dict[str, tuple[int, ...]] | None:
    """``groups`` (name -> attribute indices) as a dict of tuples, checked; ``None`` stays ``None``."""
    if groups is None:
        return None
    if not hasattr(groups, "items") or not groups:
        raise ValueError(f"attribute_groups must be a non-empty dict of group name -> attribute indices, got {groups!r}")
    checked = {}
    for name, indices in groups.items():
        values = tuple(int(i) for i in np.asarray(indices).reshape(-1))
        if not values or min(values) < 0 or max(values) >= num_attributes:
            raise ValueError(f"attribute group {name!r} must list attribute indices in [0, {num_attributes}); found {list(values)[:5]}...")
        checked[str(name)] = values
    return checked


def _class_indices(values, num_classes: int, what: str) -> torch.Tensor:
    idx = torch.as_tensor(np.asarray(values), dtype=torch.long).reshape(-1)
    if idx.numel() and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(
            f"{what} must be class indices in [0, {num_classes}) (the rows of class_attributes); "
            f"found range [{int(idx.min())}, {int(idx.max())}]"
        )
    if torch.unique(idx).numel() != idx.numel():
        raise ValueError(f"{what} lists a class more than once")
    return torch.sort(idx).values


class ClassSpace(nn.Module):
    """Everything a loss term needs to know about the classes (buffers, so they follow ``.to(device)``).

    Attributes:
        attributes: ``(K, I)`` class-attribute matrix, each row scaled to unit length
            (unless built with ``normalize=False``); fixed, not trained.
        seen: sorted indices of the seen (training) classes.
        unseen: sorted indices of the unseen classes.
        margin: ``(K,)`` the score offset ``m_k``: ``+margin`` for unseen, ``-margin``
            for seen classes, 0 for classes in neither set.
        predictable: ``(K,)`` bool, True for seen and unseen classes. Classes in
            neither set (e.g. the test classes of a validation view) still enter
            the training losses as negatives but are never predicted.

        attribute_groups: group name -> attribute indices (e.g. CUB's ``bill_shape``), or
            ``None``; read by loss terms such as ``attribute_decorrelation``.

    ``unseen_classes=None`` means every class that is not seen.
    """

    def __init__(
        self, class_attributes, seen_classes, unseen_classes=None, margin: float = 1.0, normalize: bool = True, attribute_groups=None
    ):
        super().__init__()
        attributes = torch.as_tensor(np.asarray(class_attributes), dtype=torch.float32)
        if attributes.ndim != 2:
            raise ValueError(f"class_attributes must be (K, I), found shape {tuple(attributes.shape)}")
        if not torch.isfinite(attributes).all():
            raise ValueError("class_attributes has a non-finite value")
        num_classes = attributes.shape[0]
        seen = _class_indices(seen_classes, num_classes, "seen_classes")
        if seen.numel() == 0:
            raise ValueError("seen_classes is empty: a model needs at least one training class")
        if unseen_classes is None:
            mask = torch.ones(num_classes, dtype=torch.bool)
            mask[seen] = False
            unseen = torch.nonzero(mask).reshape(-1)
        else:
            unseen = _class_indices(unseen_classes, num_classes, "unseen_classes")
        both = np.intersect1d(seen.numpy(), unseen.numpy())
        if both.size:
            raise ValueError(f"seen_classes and unseen_classes overlap (e.g. class {both[0]})")
        if normalize:
            attributes = F.normalize(attributes, dim=1)
        side = torch.zeros(num_classes)
        side[seen], side[unseen] = -1.0, 1.0
        self.register_buffer("attributes", attributes)
        self.register_buffer("seen", seen)
        self.register_buffer("unseen", unseen)
        self.register_buffer("margin", side * float(margin))
        self.register_buffer("predictable", side != 0)
        self.margin_size = float(margin)
        self.attribute_groups = check_attribute_groups(attribute_groups, attributes.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.attributes.shape[0])

    @property
    def num_attributes(self) -> int:
        return int(self.attributes.shape[1])

    def extra_repr(self) -> str:
        return (
            f"classes={self.num_classes}, attributes={self.num_attributes}, seen={self.seen.numel()}, "
            f"unseen={self.unseen.numel()}, margin={self.margin_size:g}"
        )
