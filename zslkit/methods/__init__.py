"""Non-deep ZSL methods on pooled features (kind ``method``), scikit-learn conventions.

Closed form: :class:`ESZSL`, :class:`SAE`. Ranking losses trained by SGD
(:class:`~zslkit.methods.ranking.RankingEmbedding`): :class:`ALE`,
:class:`DeViSE`, :class:`SJE`, :class:`LATEM`. Zero-shot CLIP scorers
(:mod:`zslkit.methods.clip`, the bench's CLIP rows): :class:`ClipNames`, :class:`ClipAttributes`.
"""

from zslkit.methods.ale import ALE
from zslkit.methods.base import EmbeddingMethod, normalize_attributes
from zslkit.methods.clip import ClipAttributes, ClipNames
from zslkit.methods.devise import DeViSE
from zslkit.methods.eszsl import ESZSL
from zslkit.methods.latem import LATEM
from zslkit.methods.ranking import RankingEmbedding
from zslkit.methods.sae import SAE
from zslkit.methods.sje import SJE

__all__ = [
    "ALE",
    "ClipAttributes",
    "ClipNames",
    "ESZSL",
    "LATEM",
    "SAE",
    "SJE",
    "DeViSE",
    "EmbeddingMethod",
    "RankingEmbedding",
    "normalize_attributes",
]
