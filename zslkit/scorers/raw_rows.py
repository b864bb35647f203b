"""``raw_rows``: scores against the class-attribute rows as given, ``y = psi A^T + m`` (APN, with ``probabilities=True``)."""

from __future__ import annotations

from zslkit.registry import register
from zslkit.scorers.base import Scorer

__all__ = ["RawRows"]


@register("scorer", "raw_rows")
class RawRows(Scorer):
    """The raw class-attribute rows; ``margin``, ``probabilities`` as in :class:`~zslkit.scorers.base.Scorer`."""
