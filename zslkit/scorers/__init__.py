"""Class scorers (kind ``scorer``): how a branch's attribute scores become class scores and the branches a prediction.

Importing this package registers ``unit_rows``, ``raw_rows`` and ``cosine_rows``
(:mod:`zslkit.scorers.base` states the contract).
"""

from zslkit.scorers.base import Scorer, build_scorer, parse_scorer_spec
from zslkit.scorers.cosine_rows import CosineRows
from zslkit.scorers.raw_rows import RawRows
from zslkit.scorers.unit_rows import UnitRows

__all__ = ["CosineRows", "RawRows", "Scorer", "UnitRows", "build_scorer", "parse_scorer_spec"]
