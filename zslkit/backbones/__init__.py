"""Backbones: ``nn.Module`` mapping images (or cached maps) to region feature maps ``(B, C, H, W)``.

Registered: ``precomputed`` (identity on cached features) and ``timm`` (any timm model).
Each exposes ``.feature_dim`` (``C``).
"""

from zslkit.backbones.precomputed import PrecomputedBackbone
from zslkit.backbones.timm_backbone import BackboneWeightsError, TimmBackbone

__all__ = ["BackboneWeightsError", "PrecomputedBackbone", "TimmBackbone"]
