"""``cosine_rows``: rows kept raw (e.g. as regression targets) and scored as ``a_k / (||a_k|| + eps)`` (GEM-ZSL).

With a branch whose attribute scores are already ``s * u / (||u|| + eps)`` (``cosine_global``,
which carries the scale ``s``), the class scores are the scaled cosine ``s cos(u, a_k)``:
``y_{b,k} = sum_i psi_{b,i} a_{k,i} / (||a_k|| + eps) + m_k``.
"""

from __future__ import annotations

import torch

from zslkit.registry import register
from zslkit.scorers.base import Scorer

__all__ = ["CosineRows"]


@register("scorer", "cosine_rows")
class CosineRows(Scorer):
    """Raw rows divided by their norm plus ``eps`` at scoring time.

    Args:
        eps: added to each row's norm (the authors' ``1e-5``).
        margin: as in :class:`~zslkit.scorers.base.Scorer`.
        probabilities: as in :class:`~zslkit.scorers.base.Scorer`.
    """

    def __init__(self, eps: float = 1e-5, margin: float = 0.0, probabilities: bool = False):
        super().__init__(margin=margin, probabilities=probabilities)
        self.eps = float(eps)

    def rows(self, classes) -> torch.Tensor:
        attributes = classes.attributes
        return attributes / (torch.linalg.vector_norm(attributes, dim=1, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"
