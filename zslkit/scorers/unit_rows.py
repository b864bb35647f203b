"""``unit_rows``: scores against the class-attribute rows scaled to unit length, ``y = psi (a_k / ||a_k||)^T + m``.

The rows are scaled once, when the class space is built, and stored so (MSDN, DAZLE,
TransZero, TransZero++; their default margin is 1).
"""

from __future__ import annotations

from typing import ClassVar

from zslkit.registry import register
from zslkit.scorers.base import Scorer

__all__ = ["UnitRows"]


@register("scorer", "unit_rows")
class UnitRows(Scorer):
    """Unit-length class-attribute rows; ``margin``, ``probabilities`` as in :class:`~zslkit.scorers.base.Scorer`."""

    unit_rows: ClassVar[bool] = True
