"""Attribute groups: attributes that describe the same thing (CUB's ``wing_color``, AwA2's ``habitat``...).

Loss terms such as ``attribute_decorrelation`` need them. They come from the dataset:

* names of the form ``<group>::<value>`` (CUB's ``has_bill_shape::hooked``) group by the part
  before ``::``, with a leading ``has_`` dropped: CUB's 312 attributes form 28 groups
  (``bill_shape``, ``wing_color``, ...), in the order they first appear;
* the benchmarks loaded without attribute names use the packaged files
  ``zslkit/datasets/attribute_groups/{cub,awa2,sun}.json`` (28, 9 and 4 groups), whose
  ``source`` field gives their provenance (CUB: its names, grouped as above; AwA2 and SUN:
  the index lists of the GEM-ZSL repository, named after APN's parts; APN's own group
  files are not in its repository).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

__all__ = ["PACKAGED_GROUPS", "attribute_group", "groups_from_names", "packaged_groups"]

#: Benchmarks with a packaged group file.
PACKAGED_GROUPS: tuple[str, ...] = ("cub", "awa2", "sun")


def attribute_group(name: str) -> str:
    """``"bill_shape"`` of ``"has_bill_shape::dagger"``: the attribute's group."""
    group = str(name).split("::", 1)[0]
    return group[len("has_"):] if group.startswith("has_") else group


def groups_from_names(names: Sequence[str]) -> dict[str, list[int]] | None:
    """Groups of ``<group>::<value>`` names (``None`` unless every name has that form)."""
    if not names or not all("::" in name for name in names):
        return None
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(attribute_group(name), []).append(index)
    return groups


def packaged_groups(benchmark: str, num_attributes: int) -> dict[str, list[int]] | None:
    """The packaged groups of ``benchmark`` (``cub``, ``awa2``, ``sun``), or ``None`` for another name or size."""
    if benchmark not in PACKAGED_GROUPS:
        return None
    data = json.loads((resources.files("zslkit") / "datasets" / "attribute_groups" / f"{benchmark}.json").read_text())
    if data["num_attributes"] != num_attributes:
        return None
    return {name: list(indices) for name, indices in data["groups"].items()}
