"""``cosine_global``: a scaled cosine classifier on the average-pooled features (GEM-ZSL's base branch).

With region features ``f_{b,r}`` ``(C,)`` (GEM-ZSL: raw, ``normalize_features=False``),
``V_g`` ``(C, I)`` and a scale ``s`` (the authors' 20, 25 on SUN):

* pooled feature ``g_b = (1/R) sum_r f_{b,r}``  ``(C,)``
* attribute scores ``psi_{b,i} = s * (g_b V_g)_i / (||g_b V_g||_2 + eps)``

Scored through class attributes normalised as ``a_k / (||a_k|| + eps)`` (the model's
scorer ``cosine_rows``), the class scores are ``s * cos(g_b V_g, a_k)`` up to
the two ``eps = 1e-5`` of the authors' code. ``V_g`` starts ``N(0, 1)`` elementwise (GEM-ZSL), or
``N(0, init_std^2)`` truncated at two standard deviations (``init_std=0.01``: PSVMA); it is
returned (transposed, ``(I, C)``) as ``constants["weights"]``.
"""

from __future__ import annotations

import torch
from einops import einsum, reduce
from torch import nn

from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["CosineGlobal"]


@register("attention", "cosine_global")
class CosineGlobal(nn.Module):
    """Cosine branch on pooled features.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` -> :class:`AttentionOutput`
    with ``scores`` ``(B, I)`` (norm ``s``), ``maps=None``, ``constants["weights"]`` ``(I, C)``.

    Args:
        scale: ``s``.
        learn_scale: train ``s`` (the authors' ``SCALE <= 0`` setting, starting at 20).
        eps: added to the norm of ``g_b V_g``.
        init_std: ``None``: ``V_g ~ N(0, 1)``; else a normal of this standard deviation truncated at ``±2 init_std``.
    """

    def __init__(
        self,
        feature_dim: int,
        embedding_dim: int | None = None,
        num_attributes: int | None = None,
        scale: float = 20.0,
        learn_scale: bool = False,
        eps: float = 1e-5,
        init_std: float | None = None,
    ):
        super().__init__()
        if num_attributes is None:
            raise ValueError("cosine_global needs num_attributes: V_g has one column per attribute")
        self.V = nn.Parameter(torch.randn(feature_dim, num_attributes))
        if init_std is not None:
            nn.init.trunc_normal_(self.V, std=init_std, a=-2 * init_std, b=2 * init_std)
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learn_scale)
        self.eps = float(eps)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        pooled = reduce(features, "batch channel region -> batch channel", "mean")
        projected = einsum(pooled, self.V, "batch channel, channel attribute -> batch attribute")
        norm = torch.linalg.vector_norm(projected, dim=1, keepdim=True)
        scores = self.scale * projected / (norm + self.eps)
        return AttentionOutput(scores=scores, maps=None, constants={"weights": self.V.t()})

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):g}, learn_scale={self.scale.requires_grad}, eps={self.eps:g}"
