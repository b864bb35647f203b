"""``clip_image``: a CLIP model's image embedding as a ``1 x 1`` map, for feature stores of the CLIP rows.

``zslkit extract --clip MODEL --weights PATH --image-size 224`` writes every image's unit CLIP
embedding (``(N, D, 1, 1)``) with this backbone; the bench's CLIP rows read such a store as the
images' embeddings (:class:`~zslkit.bench.clip_runner.ClipRunner`), after checking that the store's
backbone is the run's CLIP model. For region features of a CLIP tower (patch tokens, a CLIP ResNet's
map) use the ``timm`` backbones with timm's CLIP towers (``vit_base_patch16_clip_224``, ...), which read
open_clip checkpoints (``docs/clip.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zslkit.registry import register

__all__ = ["ClipImage"]


@register("backbone", "clip_image")
class ClipImage(nn.Module):
    """Images ``(B, 3, S, S)``, normalised with :meth:`data_config`'s mean and std -> ``(B, D, 1, 1)`` unit embeddings.

    Args:
        model: an open_clip model name, or ``"zslkit-tiny"`` with ``random_init``.
        weights: the local open_clip checkpoint; ``random_init``: random weights seeded by ``seed`` (tests only).
    """

    def __init__(self, model: str = "ViT-B-16", *, weights: str | Path | None = None, random_init: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        from zslkit.clip import load_clip

        self.encoder = load_clip(model, weights, random_init=random_init, seed=seed)
        self.clip = self.encoder.model  # a submodule, so that .to(device) and .eval() reach it
        with torch.no_grad():
            self.feature_dim = int(self.encoder.encode_texts(["a photo."]).shape[1])

    def data_config(self) -> dict[str, Any]:
        """The tower's normalisation (what ``zslkit extract`` preprocesses with)."""
        return {"mean": tuple(self.encoder.mean.flatten().tolist()), "std": tuple(self.encoder.std.flatten().tolist()),
                "interpolation": "bicubic"}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode_normalised(images)[:, :, None, None]

    def describe(self) -> dict[str, Any]:
        """``{"name": "clip_image", "model", "weights", "weights_sha256" | "seed", "random_init"}``."""
        return {"name": "clip_image", **self.encoder.describe()}
