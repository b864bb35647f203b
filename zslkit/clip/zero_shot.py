"""Text embeddings of prompt groups, and the CLIP inputs of a dataset (pure functions on a :class:`ClipEncoder`).

* :func:`prompt_embeddings`: per group of prompts (a class's or an attribute's), the mean of the prompts'
  unit text embeddings, normalised again (one prompt: its embedding).
* :func:`name_embeddings`: ``(I, D)`` attribute or ``(K, D)`` class-name embeddings through the prompts of
  :mod:`zslkit.clip.prompts` (what ``zslkit embed-attributes --clip`` writes).
* :func:`image_embeddings`: ``(N, D)`` unit image embeddings of a dataset's pictures, read in chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zslkit.clip.model import ClipEncoder

__all__ = ["image_embeddings", "name_embeddings", "prompt_embeddings"]


def prompt_embeddings(encoder: ClipEncoder, groups: Sequence[Sequence[str]], batch_size: int = 256) -> np.ndarray:
    """``(G, D)`` float64: per group, the normalised mean of its prompts' unit text embeddings."""
    if not groups or any(not g for g in groups):
        raise ValueError("prompt_embeddings: every group needs at least one prompt")
    flat = [p for g in groups for p in g]
    vectors = torch.cat([encoder.encode_texts(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)])
    owner = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor([len(g) for g in groups]))
    sums = torch.zeros(len(groups), vectors.shape[1], dtype=torch.float64).index_add_(0, owner, vectors.double())
    return F.normalize(sums, dim=-1).numpy()


def name_embeddings(encoder: ClipEncoder, names: Sequence[str], dataset: str, what: str = "attribute",
                    ensemble: bool = False) -> np.ndarray:
    """``(len(names), D)`` float32 text embeddings of attribute (``what="attribute"``) or class names, each
    through the prompt templates of ``dataset`` (:func:`~zslkit.clip.prompts.templates_for`)."""
    from zslkit.clip.prompts import attribute_prompts, class_prompts

    if not names:
        raise ValueError(f"no {what} names to embed")
    make = {"attribute": attribute_prompts, "class": class_prompts}[what]
    return prompt_embeddings(encoder, make(names, dataset, ensemble)).astype(np.float32)


def image_embeddings(encoder: ClipEncoder, images: Any, pixels: dict[str, float], batch_size: int = 64) -> np.ndarray:
    """``(N, D)`` float64 unit embeddings of ``images`` (array-like of ``(3, S, S)`` normalised pictures).

    ``pixels``: how the pictures were normalised (``{"mean": m, "std": s}``: stored value ``(p - m) / s``),
    undone to give the tower pixels in ``[0, 1]``.
    """
    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.as_tensor(np.asarray(images[start:start + batch_size]), dtype=torch.float32)
        out.append(encoder.encode_images(chunk * pixels["std"] + pixels["mean"]).double())
    return torch.cat(out).numpy()
