"""Backbones: ``nn.Module`` mapping images (or cached maps) to region feature maps ``(B, C, H, W)``.

Registered: ``precomputed`` (identity on cached features), ``timm`` (any timm model) and
``timm_tokens`` (a timm ViT-family model as prefix and patch tokens, with adapters, see
:mod:`zslkit.backbones.vit_tokens`). Each exposes ``.feature_dim`` (``C``).
"""

from zslkit.backbones.precomputed import PrecomputedBackbone
from zslkit.backbones.timm_backbone import BackboneWeightsError, TimmBackbone
from zslkit.backbones.vit_tokens import TimmTokens

__all__ = ["BackboneWeightsError", "PrecomputedBackbone", "TimmBackbone", "TimmTokens"]
