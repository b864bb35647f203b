"""Where the attention looks: do attribute maps peak on the annotated part?

For every (image, attribute) pair the map's peak -- the centre of its highest cell,
mapped back to original-image pixels through the preprocessing the features were made
with (:func:`grid_to_image`) -- is compared with the attribute's part (e.g. ``beak``;
``wing``: the nearest visible of the left and right wing). Pairs whose parts are all
invisible in that image are left out and counted. Whole-bird attributes may target the
bird's bounding box instead: they hit when the peak lies inside it.

Criteria (``criterion``):

``apn`` (default)
    The protocol of APN (Xu et al., NeurIPS 2020; ``wenjiaXu/APN-ZSL``
    ``model/CAM_utils.py`` ``get_IoU_Image``, ``model/opt.py`` ``--IoU_scale 1.4
    --IoU_thr 0.5``): a box of the bird box's size divided by ``box_scale`` is put
    around the peak and around the part, both shifted to lie inside the region the
    network saw; the pair hits when their IoU exceeds ``threshold`` (0.5). For two
    boxes ``w x h`` that need no shift, IoU > 1/2 means
    ``(1 - |dx|/w) (1 - |dy|/h) > 2/3``: a distance test in box units.
``pck``
    Percentage of correct keypoints: hit when the Euclidean distance is at most
    ``threshold`` times the longer side of the bird box (``threshold`` 0.1).
``pixels``
    Hit when the distance is at most ``threshold`` original-image pixels.

:func:`localization_counts` is the pure function (counts of one batch),
:class:`PartLocalization` the stateful wrapper that sums them over batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "CRITERIA",
    "DEFAULT_PREPROCESSING",
    "DEFAULT_THRESHOLDS",
    "LocalizationCounts",
    "PartLocalization",
    "grid_to_image",
    "localization_counts",
    "part_localization",
    "top_per_group",
    "view_regions",
]

CRITERIA: tuple[str, ...] = ("apn", "pck", "pixels")
#: The threshold of each criterion when none is given (IoU, fraction of the box's longer side, pixels).
DEFAULT_THRESHOLDS: dict[str, float] = {"apn": 0.5, "pck": 0.1, "pixels": 20.0}
#: What features without a recorded preprocessing are assumed to have been made with: the
#: paper repositories' (DAZLE, MSDN) 448 px resize of the shorter side and 448 px centre crop.
DEFAULT_PREPROCESSING: dict[str, Any] = {"input_size": [3, 448, 448], "crop_pct": 1.0, "crop_mode": "center"}


# ------------------------------------------------------------------------ geometry
def _crop_geometry(preprocessing: Mapping[str, Any], image_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(scale (N, 2), offset (N, 2), (crop height, crop width))``: resized = original * scale, crop = resized - offset.

    Follows timm's evaluation transform: the shorter side resized to
    ``floor(size / crop_pct)`` (``center``; torchvision's integer rounding of the longer
    side) or both sides to it (``squash``), then torchvision's centre crop.
    """
    size = preprocessing.get("input_size")
    if not isinstance(size, (list, tuple)) or len(size) not in (2, 3):
        raise ValueError(f"preprocessing input_size must be [3, H, W] or [H, W], found {size!r}")
    crop_h, crop_w = int(size[-2]), int(size[-1])
    crop_pct, mode = float(preprocessing.get("crop_pct", 1.0)), preprocessing.get("crop_mode", "center")
    sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)  # (width, height)
    if (sizes <= 0).any():
        raise ValueError("image sizes must be positive (width, height) pairs")
    scale_h, scale_w = math.floor(crop_h / crop_pct), math.floor(crop_w / crop_pct)
    w, h = sizes[:, 0], sizes[:, 1]
    if mode == "squash":
        new_w, new_h = np.full_like(w, scale_w), np.full_like(h, scale_h)
    elif mode == "center":
        if scale_h != scale_w:
            raise ValueError(f"crop_mode 'center' with a non-square input_size {list(size)} is not supported; use square inputs")
        short, long = np.minimum(w, h), np.maximum(w, h)
        new_long = (scale_w * long / short).astype(np.int64)  # torchvision: int(size * long / short)
        new_w, new_h = np.where(w <= h, scale_w, new_long), np.where(w <= h, new_long, scale_w)
    else:
        raise ValueError(f"preprocessing crop_mode {mode!r} is not supported; expected 'center' or 'squash'")
    if (new_w < crop_w).any() or (new_h < crop_h).any():
        raise ValueError("the resized image is smaller than the crop (padding is not supported); crop_pct must be at most 1")
    # torchvision's center_crop: int(round((size - crop) / 2)), Python's round (half to even)
    left = np.array([int(round((int(a) - crop_w) / 2.0)) for a in new_w])
    top = np.array([int(round((int(a) - crop_h) / 2.0)) for a in new_h])
    scale = np.stack([new_w / w, new_h / h], axis=1)
    return scale, np.stack([left, top], axis=1).astype(np.float64), (crop_h, crop_w)


def grid_to_image(grid: tuple[int, int], preprocessing: Mapping[str, Any] | None, image_sizes) -> np.ndarray:
    """``(N, H * W, 2)`` float64 ``x, y``: the centre of every grid cell in each original image's pixels.

    ``grid``: ``(H, W)`` of the feature map; cell ``(r, c)`` (flattened ``r * W + c``)
    covers the crop's pixels ``[c, c + 1) * crop_w / W`` by ``[r, r + 1) * crop_h / H``.
    ``preprocessing``: the dict :func:`zslkit.extract.preprocessing` records
    (``input_size``, ``crop_pct``, ``crop_mode``); ``None`` means
    :data:`DEFAULT_PREPROCESSING`. ``image_sizes``: ``(N, 2)`` original ``(width, height)``.
    Coordinates are continuous: pixel ``i`` spans ``[i, i + 1)``.
    """
    height, width = (int(g) for g in grid)
    if height < 1 or width < 1:
        raise ValueError(f"grid must be (H, W) with positive sides, got {grid!r}")
    scale, offset, (crop_h, crop_w) = _crop_geometry(preprocessing or DEFAULT_PREPROCESSING, image_sizes)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    crop_xy = np.stack([(cols.reshape(-1) + 0.5) * crop_w / width, (rows.reshape(-1) + 0.5) * crop_h / height], axis=1)
    return (crop_xy[None] + offset[:, None]) / scale[:, None]


def view_regions(preprocessing: Mapping[str, Any] | None, image_sizes) -> np.ndarray:
    """``(N, 4)`` ``x0, y0, x1, y1``: the part of each original image the crop shows."""
    scale, offset, (crop_h, crop_w) = _crop_geometry(preprocessing or DEFAULT_PREPROCESSING, image_sizes)
    return np.concatenate([offset / scale, (offset + np.array([crop_w, crop_h])) / scale], axis=1)


# ------------------------------------------------------------------------ counting
@dataclass
class LocalizationCounts:
    """Per target (``beak``, ``wing``, ...): pairs that hit, pairs judged, pairs left out (part not visible)."""

    targets: list[str]
    hits: np.ndarray
    pairs: np.ndarray
    excluded: np.ndarray

    def __add__(self, other: LocalizationCounts) -> LocalizationCounts:
        if other.targets != self.targets:
            raise ValueError(f"cannot add counts of targets {other.targets} to counts of {self.targets}")
        return LocalizationCounts(self.targets, self.hits + other.hits, self.pairs + other.pairs, self.excluded + other.excluded)

    def summary(self) -> dict[str, Any]:
        """``overall`` (hits / pairs over all pairs), ``mean_over_parts``, and per target ``{fraction, hits, pairs, excluded}``."""
        per = {t: {"fraction": float(h / p) if p else None, "hits": int(h), "pairs": int(p), "excluded": int(e)}
               for t, h, p, e in zip(self.targets, self.hits, self.pairs, self.excluded)}
        judged = [v["fraction"] for v in per.values() if v["fraction"] is not None]
        total = int(self.pairs.sum())
        return {
            "overall": float(self.hits.sum() / total) if total else None,
            "mean_over_parts": float(np.mean(judged)) if judged else None,
            "pairs": total, "hits": int(self.hits.sum()), "excluded": int(self.excluded.sum()), "per_part": per,
        }


def _targets(attribute_targets: Sequence[tuple[str, Sequence[int]] | None], num_parts: int):
    """``(names, candidates (T, P) bool, is_box (T,), target of each attribute (I,), -1 when left out)``."""
    names: list[str] = []
    candidates: list[np.ndarray] = []
    of_attribute = np.full(len(attribute_targets), -1, dtype=np.int64)
    for i, entry in enumerate(attribute_targets):
        if entry is None:
            continue
        name, parts = entry[0], tuple(int(p) for p in entry[1])
        if any(p < 0 or p >= num_parts for p in parts):
            raise ValueError(f"attribute {i}: part indices {parts} outside [0, {num_parts})")
        mask = np.zeros(num_parts, dtype=bool)
        mask[list(parts)] = True
        if name not in names:
            names.append(name)
            candidates.append(mask)
        elif not np.array_equal(candidates[names.index(name)], mask):
            raise ValueError(f"attribute {i}: target {name!r} is given two different part sets")
        of_attribute[i] = names.index(name)
    matrix = np.stack(candidates) if candidates else np.zeros((0, num_parts), dtype=bool)
    return names, matrix, ~matrix.any(axis=1), of_attribute


def _peaks(maps, num_cells: int) -> np.ndarray:
    """``(B, I)`` index of each map's highest cell (the first one on ties)."""
    maps = torch.as_tensor(maps).detach()
    if maps.ndim == 4:
        maps = maps.flatten(2)
    if maps.ndim != 3 or maps.shape[-1] != num_cells:
        raise ValueError(f"maps must be (B, I, H*W) with H*W={num_cells} or (B, I, H, W), found shape {tuple(maps.shape)}")
    return maps.float().argmax(dim=-1).cpu().numpy()


def _box_iou_hits(peak: np.ndarray, part: np.ndarray, boxes: np.ndarray, views, scale: float, threshold: float) -> np.ndarray:
    """APN's test: equal boxes (bird box / scale) around peak and part, shifted into the view, IoU > threshold."""
    size = (boxes[:, 2:] / scale)[:, None, :]  # (B, 1, 2) width, height

    def box(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low = centre - size / 2
        if views is not None:
            lower, upper = views[:, None, :2], views[:, None, 2:]
            low = np.where(low < lower, lower, np.where(low + size > upper, upper - size, low))
        return low, low + size

    (a0, a1), (b0, b1) = box(peak), box(part)
    overlap = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).prod(axis=-1)
    area = size.prod(axis=-1)
    return overlap / (2 * area - overlap) > threshold


def localization_counts(
    maps: torch.Tensor | np.ndarray,
    cells: np.ndarray,
    parts: np.ndarray,
    boxes: np.ndarray,
    attribute_targets: Sequence[tuple[str, Sequence[int]] | None],
    *,
    criterion: str = "apn",
    threshold: float | None = None,
    box_scale: float = 1.4,
    views: np.ndarray | None = None,
    pairs: np.ndarray | torch.Tensor | None = None,
) -> LocalizationCounts:
    """Hits of one batch of ``B`` images, per target.

    Args:
        maps: ``(B, I, R)`` (or ``(B, I, H, W)``) attention maps; only their argmax matters.
        cells: ``(B, R, 2)`` ``x, y`` of every cell's centre in each original image
            (:func:`grid_to_image`).
        parts: ``(B, P, 3)`` ``x, y, visible`` of each image's parts, original pixels.
        boxes: ``(B, 4)`` bird boxes ``x, y, width, height``.
        attribute_targets: per attribute ``(target name, part indices)``; no parts: the
            bird box; ``None``: the attribute is left out. E.g.
            :func:`zslkit.datasets.cub_parts.cub_attribute_targets`.
        criterion: one of :data:`CRITERIA` (see the module docstring).
        threshold: the criterion's threshold (default :data:`DEFAULT_THRESHOLDS`).
        box_scale: ``apn``: the boxes are the bird box divided by this (APN's 1.4).
        views: ``apn``: ``(B, 4)`` ``x0, y0, x1, y1`` the boxes are shifted into
            (:func:`view_regions`); ``None``: no shift.
        pairs: ``(B, I)`` bool, the (image, attribute) pairs to score (e.g. APN's top
            attribute of each group, :func:`top_per_group`); ``None``: all of them.
            Pairs left out here are neither judged nor counted as excluded.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    threshold = DEFAULT_THRESHOLDS[criterion] if threshold is None else float(threshold)
    cells, parts, boxes = (np.asarray(a, dtype=np.float64) for a in (cells, parts, boxes))
    peaks = _peaks(maps, cells.shape[1])
    batch, num_attributes = peaks.shape
    if cells.shape[0] != batch or parts.ndim != 3 or parts.shape[:1] != (batch,) or boxes.shape != (batch, 4):
        raise ValueError(f"for {batch} images: cells must be ({batch}, R, 2), parts ({batch}, P, 3), boxes ({batch}, 4); "
                         f"found {cells.shape}, {parts.shape}, {boxes.shape}")
    if len(attribute_targets) != num_attributes:
        raise ValueError(f"attribute_targets has {len(attribute_targets)} entries, the maps {num_attributes} attributes")
    names, candidates, is_box, of_attribute = _targets(attribute_targets, parts.shape[1])
    used = of_attribute >= 0
    target = of_attribute[used]  # (I',)
    peak = np.take_along_axis(cells, peaks[:, used, None], axis=1)  # (B, I', 2)
    part, distance, visible = _nearest_visible(peak, parts, candidates[target])
    if criterion == "apn":
        hit = _box_iou_hits(peak, part, boxes, None if views is None else np.asarray(views, dtype=np.float64), box_scale, threshold)
    else:
        hit = distance <= (threshold * boxes[:, 2:].max(axis=1, keepdims=True) if criterion == "pck" else threshold)
    inside = ((peak >= boxes[:, None, :2]) & (peak <= boxes[:, None, :2] + boxes[:, None, 2:])).all(axis=-1)
    box = is_box[target][None]
    judged = visible | box
    selected = np.ones_like(judged) if pairs is None else np.asarray(pairs, dtype=bool).reshape(batch, num_attributes)[:, used]
    hit = np.where(box, inside, hit) & judged & selected

    def per_target(values: np.ndarray) -> np.ndarray:
        flat = np.broadcast_to(target, values.shape).reshape(-1)
        return np.bincount(flat, weights=values.reshape(-1), minlength=len(names)).astype(np.int64)

    return LocalizationCounts(names, per_target(hit), per_target(judged & selected), per_target(~judged & selected))


def _nearest_visible(peak: np.ndarray, parts: np.ndarray, candidates: np.ndarray):
    """``(part (B, I, 2), distance (B, I), any visible (B, I))``: the nearest visible candidate part to each peak.

    ``peak``: ``(B, I, 2)``; ``parts``: ``(B, P, 3)``; ``candidates``: ``(I, P)`` bool.
    Where no candidate is visible, the part and distance are those of part 0 (unused).
    """
    usable = candidates[None] & (parts[:, None, :, 2] > 0)  # (B, I, P)
    distance = np.linalg.norm(peak[:, :, None, :] - parts[:, None, :, :2], axis=-1)
    nearest = np.where(usable, distance, np.inf).argmin(axis=-1)  # (B, I)
    part = np.take_along_axis(parts[:, None, :, :2], nearest[..., None, None], axis=2)[:, :, 0]
    return part, np.take_along_axis(distance, nearest[..., None], axis=-1)[..., 0], usable.any(axis=-1)


def top_per_group(attribute_scores, groups: Sequence[str]) -> np.ndarray:
    """``(B, I)`` bool: per image, the highest-scoring attribute of each group (the first on ties).

    APN scores only these pairs: for every image and attribute sub-group, the attribute
    its model predicts most strongly. ``groups``: the group of each of the ``I`` attributes.
    """
    scores = torch.as_tensor(attribute_scores).detach().float().cpu().numpy()
    if scores.ndim != 2 or scores.shape[1] != len(groups):
        raise ValueError(f"attribute_scores must be (B, {len(groups)}) for {len(groups)} groups, found shape {scores.shape}")
    chosen = np.zeros(scores.shape, dtype=bool)
    labels = np.asarray(groups)
    for group in dict.fromkeys(groups):
        members = np.flatnonzero(labels == group)
        best = members[scores[:, members].argmax(axis=1)]
        chosen[np.arange(len(scores)), best] = True
    return chosen


def part_localization(maps, cells, parts, boxes, attribute_targets, **options: Any) -> dict[str, Any]:
    """:meth:`LocalizationCounts.summary` of :func:`localization_counts` (same arguments)."""
    return localization_counts(maps, cells, parts, boxes, attribute_targets, **options).summary()


class PartLocalization:
    """Sum :func:`localization_counts` over batches, then :meth:`compute` the fractions.

    >>> metric = PartLocalization(targets, criterion="apn")
    >>> for maps, cells, parts, boxes, views in batches:
    ...     metric.update(maps, cells, parts, boxes, views=views)
    >>> metric.compute()  # {'overall': ..., 'per_part': {'beak': {...}, ...}, ...}
    """

    def __init__(self, attribute_targets: Sequence[tuple[str, Sequence[int]] | None], **options: Any) -> None:
        self.attribute_targets = list(attribute_targets)
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._counts: LocalizationCounts | None = None

    def update(self, maps, cells, parts, boxes, views=None, pairs=None) -> None:
        counts = localization_counts(maps, cells, parts, boxes, self.attribute_targets, views=views, pairs=pairs, **self.options)
        self._counts = counts if self._counts is None else self._counts + counts

    def compute(self) -> dict[str, Any]:
        if self._counts is None:
            raise RuntimeError("PartLocalization.compute() called before any update()")
        return self._counts.summary()
