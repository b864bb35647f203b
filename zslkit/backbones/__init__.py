"""Backbones: ``nn.Module`` mapping images (or cached maps) to region feature maps ``(B, C, H, W)``.

Registered: ``precomputed`` (identity on cached features), ``timm`` (any timm model),
``timm_tokens`` (a timm ViT-family model as prefix and patch tokens, with adapters, see
:mod:`zslkit.backbones.vit_tokens`) and ``clip_image`` (a CLIP model's image embedding as a
``1 x 1`` map, for the bench's CLIP rows; :mod:`zslkit.backbones.clip_image`). Each exposes ``.feature_dim`` (``C``).
"""

from zslkit.backbones.clip_image import ClipImage
from zslkit.backbones.precomputed import PrecomputedBackbone
from zslkit.backbones.timm_backbone import BackboneWeightsError, TimmBackbone
from zslkit.backbones.vit_tokens import TimmTokens

__all__ = ["BackboneWeightsError", "ClipImage", "PrecomputedBackbone", "TimmBackbone", "TimmTokens"]
