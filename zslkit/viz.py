"""Attention maps as pictures, like the qualitative figures of the MSDN paper.

:func:`attention_figure` runs a model on the feature map of one image and draws, for
each branch that returns spatial maps, the ``top_k`` attributes with the highest
attribute scores: one panel per attribute, the image with that attribute's attention
map (upsampled bilinearly to the image) overlaid, titled with the attribute name and
its score. Each map is scaled to its own maximum for display.

The model contract (see the concepts docs): ``model(features (B, C, H, W))`` returns an
object with ``.attribute_scores`` (branch -> ``(B, I)``) and ``.maps`` (branch ->
``(B, I, R)`` with ``R = H * W``, or ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

__all__ = ["AttributeMap", "attention_figure", "center_crop", "localization_figure", "top_attribute_maps"]


@dataclass
class AttributeMap:
    """One panel: an attribute, its score and its ``(H, W)`` attention map."""

    branch: str
    attribute: int
    score: float
    map: np.ndarray


def _load_rgb(image: Any):
    """A PIL RGB image from a path, a PIL image or an ``(H, W, 3)`` uint8 array."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.convert("RGB")
    if isinstance(image, np.ndarray):
        return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    return image.convert("RGB")


def center_crop(image: Any, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: shorter side resized to ``size``, then center-cropped.

    This is the crop the backbone sees with ``crop_pct=1.0``; ``image`` is a path, a
    PIL image or an ``(H, W, 3)`` array.
    """
    from PIL import Image

    image = _load_rgb(image)
    scale = size / min(image.size)
    resized = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BILINEAR)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))


@torch.no_grad()
def top_attribute_maps(
    model: torch.nn.Module, features: torch.Tensor, *, top_k: int = 8, branches: Sequence[str] | None = None
) -> dict[str, list[AttributeMap]]:
    """Branch -> the ``top_k`` attributes by score, with their ``(H, W)`` maps, for one image.

    ``features``: ``(C, H, W)`` or ``(1, C, H, W)`` (for a model that owns its backbone: the image,
    its maps on the grid ``output.grid``). Branches whose maps are ``None``
    are left out; asking for such a branch by name is an error.
    """
    if features.ndim == 3:
        features = features.unsqueeze(0)
    if features.ndim != 4 or features.shape[0] != 1:
        raise ValueError(f"features must be (C, H, W) or (1, C, H, W) for one image, got shape {tuple(features.shape)}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    was_training = model.training
    model.eval()
    try:
        output = model(features)
    finally:
        model.train(was_training)
    # the maps' grid: what the model says (a model reading images maps over its patch grid), else the features'
    grid = getattr(output, "grid", None)
    height, width = grid if grid is not None else features.shape[-2:]
    maps, scores = dict(output.maps), dict(output.attribute_scores)
    names = list(branches) if branches is not None else [b for b in maps if maps[b] is not None]
    result = {}
    for branch in names:
        if maps.get(branch) is None:
            have = [b for b in maps if maps[b] is not None]
            raise ValueError(f"branch {branch!r} has no attention maps; branches with maps: {have}")
        branch_maps, branch_scores = maps[branch][0], scores[branch][0]
        if branch_maps.shape[-1] != height * width:
            raise ValueError(f"branch {branch!r} maps have {branch_maps.shape[-1]} regions, the feature map {height}x{width}")
        grid = rearrange(branch_maps.float(), "i (h w) -> i h w", h=height, w=width)
        k = min(top_k, branch_scores.shape[0])
        order = torch.topk(branch_scores.float(), k).indices.tolist()
        result[branch] = [AttributeMap(branch, i, float(branch_scores[i]), grid[i].cpu().numpy()) for i in order]
    if not result:
        raise ValueError("the model returned no spatial attention maps for any branch")
    return result


def _overlay(map_hw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling to ``size`` (H, W), scaled to [0, 1] by its own range.

    A map that is flat up to float rounding (e.g. an untrained branch's uniform
    attention) is drawn flat rather than stretching rounding noise to full range.
    """
    grid = torch.as_tensor(map_hw, dtype=torch.float32)[None, None]
    up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    low, high = float(up.min()), float(up.max())
    if high - low <= 1e-4 * max(abs(high), abs(low), 1e-12):
        return np.zeros_like(up)
    return (up - low) / (high - low)


def attention_figure(
    model: torch.nn.Module,
    image: Any,
    features: torch.Tensor,
    *,
    attribute_names: Sequence[str] | None = None,
    top_k: int = 8,
    branches: Sequence[str] | None = None,
    image_size: int | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    panel_size: float = 2.2,
):
    """A matplotlib ``Figure``: one row per branch, one panel per top-scoring attribute.

    Args:
        model: returns ``.maps`` and ``.attribute_scores`` per branch (see module docs).
        image: the image (path, PIL image or ``(H, W, 3)`` array). With ``image_size``
            it is resized and center-cropped as the backbone saw it (:func:`center_crop`).
        features: its ``(C, H, W)`` feature map (what the model was trained on).
        attribute_names: ``I`` names for the panel titles (default ``"attribute i"``).
        top_k: panels per branch.
        branches: which branches (default: every branch with maps).
        image_size: crop side; ``None`` shows the image as given.
        alpha: opacity of the overlaid maps.
        cmap: matplotlib colour map of the overlaid maps.
        panel_size: inches per panel.
    """
    from matplotlib.figure import Figure

    picture = center_crop(image, image_size) if image_size else np.asarray(_load_rgb(image))
    panels = top_attribute_maps(model, features, top_k=top_k, branches=branches)
    columns = max(len(p) for p in panels.values())
    figure = Figure(figsize=(panel_size * columns, panel_size * 1.15 * len(panels)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(panels), columns, squeeze=False))
    for row, (branch, items) in enumerate(panels.items()):
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if col >= len(items):
                ax.set_visible(False)
                continue
            item = items[col]
            name = attribute_names[item.attribute] if attribute_names is not None else f"attribute {item.attribute}"
            ax.imshow(picture)
            ax.imshow(_overlay(item.map, picture.shape[:2]), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            ax.set_title(f"{name}\n{item.score:.3f}", fontsize=8)
            if col == 0:
                ax.set_ylabel(branch)
    return figure



def localization_figure(result: dict[str, Any], *, title: str | None = None):
    """A matplotlib ``Figure``: per part, the fraction of pairs whose map peak hit it, one bar per branch.

    ``result``: what :func:`zslkit.training.localization.evaluate_localization` returns
    (``result["branches"][branch]["per_part"][part]["fraction"]``). Parts with no judged
    pair are drawn empty and labelled ``n/a``; each label gives the number of pairs.
    """
    from matplotlib.figure import Figure

    branches = result["branches"]
    parts = list(next(iter(branches.values()))["per_part"])
    height = 0.8 / len(branches)
    figure = Figure(figsize=(7, 0.35 * len(parts) * max(1, len(branches) / 2) + 1.2), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(parts))
    for k, (branch, summary) in enumerate(branches.items()):
        per = summary["per_part"]
        values = [per[p]["fraction"] or 0.0 for p in parts]
        overall = summary["overall"]
        label = f"{branch} (overall {overall:.3f})" if overall is not None else branch
        ax.barh(positions + k * height, values, height=height, label=label)
    pairs = next(iter(branches.values()))["per_part"]
    ax.set_yticks(positions + height * (len(branches) - 1) / 2,
                  [f"{p} ({pairs[p]['pairs']})" if pairs[p]["pairs"] else f"{p} (n/a)" for p in parts])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"fraction of (image, attribute) pairs hit ({result.get('criterion', '')})")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"attribute localisation on {result.get('split', '')}", fontsize=10)
    return figure
