"""Where the attention looks: do attribute maps peak on the annotated part?

For every (image, attribute) pair the map's peak (``peak``, below) is compared with the
attribute's part (e.g. ``beak``; ``wing``: the nearest visible of the left and right
wing). Pairs whose parts are all invisible in that image are left out and counted.
Whole-bird attributes may target the bird's bounding box instead: they hit when the
peak lies inside it.

Criteria (``criterion``):

``apn`` (default)
    APN's protocol (Xu et al., NeurIPS 2020; ``wenjiaXu/APN-ZSL`` ``model/CAM_utils.py``
    ``get_IoU_Image``, ``generate_mask_BB``, ``get_KP_BB``, ``get_iou``; ``model/opt.py``
    ``--IoU_scale 1.4 --IoU_thr 0.5``), in the pixels of the crop the network saw: a box
    of the bird box's size divided by ``box_scale`` is put around the peak and around the
    part, both shifted to lie inside the crop; the pair hits when their IoU exceeds
    ``threshold`` (0.5). By default every step is APN's code's (:data:`APN_PROTOCOL`):

    * ``peak="upsampled"``: the map is upsampled to the crop's size with bilinear
      interpolation as OpenCV's ``cv2.resize`` does it (:func:`upsample_bilinear`) and the
      peak is the (first) highest pixel, at its integer index;
    * ``box="integer"``: box sides ``int(bird side / box_scale)``, placed from the centre
      ``c`` as ``[c - int(side / 2), c + int(side / 2)]``, shifted boxes ``side`` long;
    * ``bound="inclusive"``: boxes are shifted into ``[0, S - 1]`` (APN's ``[0, 223]``).

    The alternatives: ``peak="cell"`` (the centre of the highest grid cell), ``box="real"``
    (real-valued sides and half-sides), ``bound="exclusive"`` (``[0, S]``, the crop's extent).
    For two real boxes ``w x h`` that need no shift, IoU > 1/2 means
    ``(1 - |dx|/w) (1 - |dy|/h) > 2/3``: a distance test in box units.
``pck``
    Percentage of correct keypoints: hit when the Euclidean distance is at most
    ``threshold`` times the longer side of the bird box (``threshold`` 0.1).
``pixels``
    Hit when the distance is at most ``threshold`` original-image pixels.

``pck`` and ``pixels`` work in original-image pixels with ``peak="cell"`` by default (the
centre of the highest cell, mapped back through the preprocessing the features were made
with, :func:`grid_to_image`); ``peak="upsampled"`` takes the centre of the highest pixel
of the upsampled map instead.

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
    "APN_PROTOCOL",
    "BOUNDS",
    "BOXES",
    "CRITERIA",
    "CRITERION_DEFAULTS",
    "PEAKS",
    "DEFAULT_PREPROCESSING",
    "DEFAULT_THRESHOLDS",
    "LocalizationCounts",
    "PartLocalization",
    "grid_to_image",
    "localization_counts",
    "part_localization",
    "resolve_protocol",
    "top_per_group",
    "upsample_bilinear",
    "view_regions",
]

CRITERIA: tuple[str, ...] = ("apn", "pck", "pixels")
#: The threshold of each criterion when none is given (IoU, fraction of the box's longer side, pixels).
DEFAULT_THRESHOLDS: dict[str, float] = {"apn": 0.5, "pck": 0.1, "pixels": 20.0}
#: Where a map peaks: ``upsampled`` (APN: the highest pixel of the map upsampled to the crop) or
#: ``cell`` (the centre of the highest grid cell).
PEAKS: tuple[str, ...] = ("upsampled", "cell")
#: ``apn``'s boxes: ``integer`` (APN's truncated sides and half-sides) or ``real``.
BOXES: tuple[str, ...] = ("integer", "real")
#: ``apn``'s crop bound the boxes are shifted into: ``inclusive`` (``[0, S - 1]``, APN's) or ``exclusive`` (``[0, S]``).
BOUNDS: tuple[str, ...] = ("inclusive", "exclusive")
#: APN's protocol: its attribute-to-part mapping (:func:`zslkit.datasets.cub_parts.cub_attribute_targets`),
#: peak, boxes and bound, as its code does them.
APN_PROTOCOL: dict[str, str] = {"mapping": "apn", "peak": "upsampled", "box": "integer", "bound": "inclusive"}
#: The defaults of ``mapping``, ``peak``, ``box`` and ``bound`` under each criterion (the one place they are decided).
CRITERION_DEFAULTS: dict[str, dict[str, str]] = {
    "apn": APN_PROTOCOL,
    "pck": {"mapping": "field-guide", "peak": "cell", "box": "real", "bound": "exclusive"},
    "pixels": {"mapping": "field-guide", "peak": "cell", "box": "real", "bound": "exclusive"},
}
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


def _linear_taps(source: int, target: int, *, zero_outside: bool) -> tuple[torch.Tensor, ...]:
    """``(first, second, weight of first, weight of second)`` of each of ``target`` outputs over ``source`` inputs.

    OpenCV's ``INTER_LINEAR`` coefficients: ``f = float((j + 0.5) / (target / source) - 0.5)``
    (in double, rounded to float32), taps ``floor(f)`` and the next, weights ``1 - frac(f)`` and
    ``frac(f)``. Taps outside the input are clamped to its first (last) element; along rows
    (``zero_outside``) OpenCV also sets the weights to ``(1, 0)`` there, along columns it keeps them.
    """
    f = ((np.arange(target) + 0.5) * (1.0 / (target / source)) - 0.5).astype(np.float32)
    first = np.floor(f).astype(np.int64)
    frac = (f - first.astype(np.float32)).astype(np.float32)
    if zero_outside:
        outside = (first < 0) | (first >= source - 1)
        frac = np.where(outside, np.float32(0), frac).astype(np.float32)
    second = np.clip(first + 1, 0, source - 1)
    first = np.clip(first, 0, source - 1)
    return (torch.from_numpy(first), torch.from_numpy(second), torch.from_numpy(np.float32(1) - frac),
            torch.from_numpy(frac))


def upsample_bilinear(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(..., H, W)`` -> ``(..., *size)`` float32, bilinear as OpenCV's ``cv2.resize`` (``INTER_LINEAR``) computes it.

    Output pixel ``j`` reads the input at ``(j + 1/2) * W / size - 1/2`` (half-pixel centres),
    clamped to ``[0, W - 1]``, from its two neighbours: rows first, then columns, in float32
    with OpenCV's coefficients (:func:`_linear_taps`), so that ties and near-ties of the
    argmax fall as in APN's code (checked against OpenCV where installed).
    """
    maps = torch.as_tensor(maps).float()
    (height, width), (out_h, out_w) = maps.shape[-2:], (int(size[0]), int(size[1]))
    x0, x1, a0, a1 = _linear_taps(width, out_w, zero_outside=True)
    y0, y1, b0, b1 = _linear_taps(height, out_h, zero_outside=False)
    rows = maps[..., x0] * a0 + maps[..., x1] * a1  # (..., H, out_w): along each row first
    return rows[..., y0, :] * b0[:, None] + rows[..., y1, :] * b1[:, None]


def _upsampled_peaks(maps, crop: tuple[int, int], chunk: int = 4) -> np.ndarray:
    """``(B, I, 2)`` ``column, row`` of the highest pixel of each map upsampled to ``crop`` ``(H, W)`` (first on ties)."""
    maps = torch.as_tensor(maps).detach()
    if maps.ndim != 4:
        raise ValueError(f"peak='upsampled' needs maps of shape (B, I, H, W), found shape {tuple(maps.shape)}")
    flat = torch.cat([upsample_bilinear(maps[i : i + chunk], crop).flatten(2).argmax(dim=-1)
                      for i in range(0, maps.shape[0], chunk)]) if maps.shape[0] else torch.zeros(0, maps.shape[1], dtype=torch.long)
    flat = flat.cpu().numpy()
    return np.stack([flat % crop[1], flat // crop[1]], axis=-1).astype(np.float64)


@dataclass
class _Crop:
    """The crop the network saw, as ``crop = (original - origin) * scale`` per axis (``x, y``)."""

    origin: np.ndarray  # (B, 1, 2)
    scale: np.ndarray  # (B, 1, 2)
    size: np.ndarray | None  # width, height ((2,) or (B, 1, 2)); None: unknown (no shift into the crop)

    @classmethod
    def of(cls, views, crop_size, batch: int) -> _Crop:
        size = None if crop_size is None else np.array([crop_size[1], crop_size[0]], dtype=np.float64)
        if views is None:
            return cls(np.zeros((batch, 1, 2)), np.ones((batch, 1, 2)), size)
        views = np.asarray(views, dtype=np.float64).reshape(batch, 4)
        extent = views[:, None, 2:] - views[:, None, :2]
        if size is None:  # no crop size: the views' own (original) pixels, shifted to start at 0
            return cls(views[:, None, :2], np.ones((batch, 1, 2)), extent)
        return cls(views[:, None, :2], size / extent, size)

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        return (xy - self.origin) * self.scale

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        return xy / self.scale + self.origin


def _apn_boxes(centre: np.ndarray, side: np.ndarray, upper, box: str) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` corners of APN's box of ``side`` around ``centre`` (``get_KP_BB``), shifted into ``[0, upper]``."""
    half = np.floor(side / 2) if box == "integer" else side / 2
    low, high = centre - half, centre + half
    if upper is None:
        return low, high
    below, above = low < 0, high > upper
    return (np.where(below, 0.0, np.where(above, upper - side, low)),
            np.where(below, side, np.where(above, upper, high)))


def _box_iou_hits(peak: np.ndarray, part: np.ndarray, bird: np.ndarray, crop: _Crop, scale: float, threshold: float,
                  box: str, bound: str) -> np.ndarray:
    """APN's test in crop pixels: boxes of the bird's size / ``scale`` around peak and part, shifted into the crop,
    IoU > ``threshold`` (``get_iou``). ``bird``: ``(B, 1, 2)`` width, height in crop pixels."""
    side = bird / scale
    side = np.trunc(side) if box == "integer" else side
    upper = None if crop.size is None else (crop.size - 1 if bound == "inclusive" else crop.size)
    (a0, a1), (b0, b1) = _apn_boxes(peak, side, upper, box), _apn_boxes(part, side, upper, box)
    overlap = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).prod(axis=-1)
    union = (a1 - a0).prod(axis=-1) + (b1 - b0).prod(axis=-1) - overlap
    iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    return iou > threshold


def resolve_protocol(criterion: str, **given: str | None) -> dict[str, str]:
    """The options given (any of ``mapping``, ``peak``, ``box``, ``bound``), the criterion's defaults
    (:data:`CRITERION_DEFAULTS`) for those given as ``None``; ``peak``, ``box`` and ``bound`` checked."""
    chosen = {k: CRITERION_DEFAULTS[criterion][k] if v is None else v for k, v in given.items()}
    for name, allowed in (("peak", PEAKS), ("box", BOXES), ("bound", BOUNDS)):
        if name in chosen and chosen[name] not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {chosen[name]!r}")
    return chosen


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
    peak: str | None = None,
    box: str | None = None,
    bound: str | None = None,
    crop_size: tuple[int, int] | None = None,
) -> LocalizationCounts:
    """Hits of one batch of ``B`` images, per target.

    Args:
        maps: ``(B, I, H, W)`` (or, for ``peak="cell"``, ``(B, I, R)``) attention maps; only
            where they peak matters.
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
        views: ``(B, 4)`` ``x0, y0, x1, y1``: the part of each original image the crop shows
            (:func:`view_regions`); ``None``: original pixels are crop pixels and ``apn``'s
            boxes are not shifted.
        pairs: ``(B, I)`` bool, the (image, attribute) pairs to score (e.g. APN's top
            attribute of each group, :func:`top_per_group`); ``None``: all of them.
            Pairs left out here are neither judged nor counted as excluded.
        peak: one of :data:`PEAKS` (module docstring); ``None``: the criterion's
            (:data:`CRITERION_DEFAULTS`; ``apn``: :data:`APN_PROTOCOL`).
        box: ``apn``: one of :data:`BOXES`; ``None``: the criterion's.
        bound: ``apn``: one of :data:`BOUNDS`; ``None``: the criterion's.
        crop_size: ``(H, W)`` pixels of the crop the network saw (the preprocessing's
            ``input_size``): needed by ``peak="upsampled"`` and by ``apn`` to work in crop pixels.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    chosen = resolve_protocol(criterion, peak=peak, box=box, bound=bound)
    threshold = DEFAULT_THRESHOLDS[criterion] if threshold is None else float(threshold)
    cells, parts, boxes = (np.asarray(a, dtype=np.float64) for a in (cells, parts, boxes))
    batch, num_attributes = int(np.shape(maps)[0]), int(np.shape(maps)[1])
    if cells.shape[0] != batch or parts.ndim != 3 or parts.shape[:1] != (batch,) or boxes.shape != (batch, 4):
        raise ValueError(f"for {batch} images: cells must be ({batch}, R, 2), parts ({batch}, P, 3), boxes ({batch}, 4); "
                         f"found {cells.shape}, {parts.shape}, {boxes.shape}")
    if len(attribute_targets) != num_attributes:
        raise ValueError(f"attribute_targets has {len(attribute_targets)} entries, the maps {num_attributes} attributes")
    if chosen["peak"] == "upsampled" and crop_size is None:
        raise ValueError("peak='upsampled' needs crop_size, the (H, W) of the crop the maps are upsampled to")
    crop = _Crop.of(views, crop_size, batch)
    names, candidates, is_box, of_attribute = _targets(attribute_targets, parts.shape[1])
    used = of_attribute >= 0
    target = of_attribute[used]  # (I',)
    peak_crop, peak_image = _peak_points(maps, cells, used, chosen["peak"], crop, crop_size)
    if criterion == "apn":  # in crop pixels, as APN's code
        part_crop = np.concatenate([crop.to_crop(parts[..., :2]), parts[..., 2:]], axis=-1)
        part, _, visible = _nearest_visible(peak_crop, part_crop, candidates[target])
        bird = boxes[:, None, 2:] * crop.scale
        hit = _box_iou_hits(peak_crop, part, bird, crop, box_scale, threshold, chosen["box"], chosen["bound"])
    else:
        part, distance, visible = _nearest_visible(peak_image, parts, candidates[target])
        hit = distance <= (threshold * boxes[:, 2:].max(axis=1, keepdims=True) if criterion == "pck" else threshold)
    inside = ((peak_image >= boxes[:, None, :2]) & (peak_image <= boxes[:, None, :2] + boxes[:, None, 2:])).all(axis=-1)
    box_target = is_box[target][None]
    judged = visible | box_target
    selected = np.ones_like(judged) if pairs is None else np.asarray(pairs, dtype=bool).reshape(batch, num_attributes)[:, used]
    hit = np.where(box_target, inside, hit) & judged & selected

    def per_target(values: np.ndarray) -> np.ndarray:
        flat = np.broadcast_to(target, values.shape).reshape(-1)
        return np.bincount(flat, weights=values.reshape(-1), minlength=len(names)).astype(np.int64)

    return LocalizationCounts(names, per_target(hit), per_target(judged & selected), per_target(~judged & selected))


def _peak_points(maps, cells: np.ndarray, used: np.ndarray, peak: str, crop: _Crop, crop_size) -> tuple[np.ndarray, np.ndarray]:
    """``(in crop pixels, in original pixels)``, each ``(B, I', 2)``, of the peaks of the ``used`` attributes' maps.

    ``cell``: the highest cell's centre; ``upsampled``: the highest pixel of the upsampled map, at its
    integer index in the crop (APN) and at its centre (``+ 1/2``) in the original image."""
    if peak == "cell":
        index = _peaks(maps, cells.shape[1])
        image = np.take_along_axis(cells, index[:, used, None], axis=1)
        return crop.to_crop(image), image
    maps = torch.as_tensor(maps)[:, torch.as_tensor(np.flatnonzero(used))]
    pixel = _upsampled_peaks(maps, (int(crop_size[0]), int(crop_size[1])))
    return pixel, crop.to_original(pixel + 0.5)


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
