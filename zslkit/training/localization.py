"""Part localisation of a trained model: its attention maps on a dataset's images against CUB's part annotations.

:func:`evaluate_localization` runs the model over a split, and for every branch that
returns maps sums :func:`zslkit.metrics.localization.localization_counts` over the
batches. Where the cells lie in the original images comes from the features' store:
its ``preprocessing`` and ``image_sizes`` records (:func:`feature_geometry`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from zslkit.datasets.cub_parts import CUBParts, attribute_group, cub_attribute_targets
from zslkit.metrics.localization import (
    CRITERIA,
    DEFAULT_PREPROCESSING,
    DEFAULT_THRESHOLDS,
    PartLocalization,
    grid_to_image,
    resolve_protocol,
    top_per_group,
    view_regions,
)
from zslkit.training.data import read_batch
from zslkit.training.predict import model_device

__all__ = ["BASELINE", "evaluate_localization", "feature_geometry"]

SPLITS: tuple[str, ...] = ("test_unseen", "test_seen", "trainval", "all")
ATTRIBUTE_SELECTIONS: tuple[str, ...] = ("all", "top_per_group")
#: The branch name of the random-map baseline (``baseline=True``).
BASELINE = "random maps"


def feature_geometry(dataset) -> tuple[dict[str, Any] | None, list | None]:
    """``(preprocessing, image_sizes)`` recorded with the dataset's features (``None`` for what is not recorded)."""
    metadata = getattr(dataset.features, "metadata", None) or {}
    return metadata.get("preprocessing"), metadata.get("image_sizes")


def _split_indices(dataset, split: str) -> np.ndarray:
    if split == "all":
        return np.arange(dataset.num_images)
    if split not in dataset.splits:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.asarray(dataset.splits[split], dtype=np.int64)


def _grid(output, dataset, inputs) -> tuple[int, int]:
    """``(H, W)`` of the maps: the model's output says it, else the features' shape, else a square of R cells."""
    grid = getattr(output, "grid", None)
    if grid is not None:
        return tuple(int(g) for g in grid)
    if inputs is None:
        return tuple(int(s) for s in dataset.feature_shape[1:])
    cells = next(m for m in output.maps.values() if m is not None).shape[-1]
    side = math.isqrt(cells)
    if side * side != cells:
        raise ValueError(f"the maps have {cells} cells, which is not a square grid; cannot place them in the image")
    return side, side


@torch.no_grad()
def evaluate_localization(
    model: torch.nn.Module,
    dataset,
    parts: CUBParts,
    *,
    split: str = "test_unseen",
    preprocessing: dict[str, Any] | None = None,
    image_sizes: Sequence[Sequence[int]] | None = None,
    criterion: str = "apn",
    threshold: float | None = None,
    box_scale: float = 1.4,
    exclude: Sequence[str] = (),
    attributes: str = "all",
    baseline: bool = False,
    batch_size: int = 64,
    inputs=None,
    mapping: str | None = None,
    peak: str | None = None,
    box: str | None = None,
    bound: str | None = None,
) -> dict[str, Any]:
    """Localisation of every branch's maps on the ``split`` images: branch -> :meth:`~zslkit.metrics.localization.LocalizationCounts.summary`.

    ``parts``: annotations in the dataset's image order (:func:`~zslkit.datasets.cub_parts.load_cub_parts`
    with the dataset's image files). ``preprocessing`` and ``image_sizes`` default to
    what the features' store records (:func:`feature_geometry`); a missing
    preprocessing falls back to :data:`~zslkit.metrics.localization.DEFAULT_PREPROCESSING`
    (said in the result's ``assumed``), missing image sizes are an error. Attributes map
    to parts by :func:`~zslkit.datasets.cub_parts.cub_attribute_targets` (``mapping``: ``apn`` or
    ``field-guide``; ``exclude``: groups to leave out). ``mapping``, ``peak``, ``box``, ``bound``: ``None``
    for the criterion's (:data:`~zslkit.metrics.localization.CRITERION_DEFAULTS`; ``apn``: APN's protocol).
    ``attributes``: ``"all"`` pairs, or ``"top_per_group"``: per image only the attribute of
    each group the branch scores highest (APN's selection, :func:`~zslkit.metrics.localization.top_per_group`).
    ``baseline``: also score random maps (and random attribute scores), seeded, as the
    branch :data:`BASELINE`: the chance level of the criterion on these images.
    """
    if attributes not in ATTRIBUTE_SELECTIONS:
        raise ValueError(f"attributes must be one of {ATTRIBUTE_SELECTIONS}, got {attributes!r}")
    options, mapping = _protocol(criterion, threshold, box_scale, mapping=mapping, peak=peak, box=box, bound=bound)
    recorded_pre, recorded_sizes = feature_geometry(dataset) if inputs is None else (None, None)
    preprocessing = preprocessing or recorded_pre
    sizes = image_sizes if image_sizes is not None else recorded_sizes
    if sizes is None:
        raise ValueError("the original image sizes are not recorded with the features (a store extracted before zslkit "
                         "recorded them, or an HDF5 file); give the folder holding the images to read them")
    sizes = np.asarray(sizes, dtype=np.int64)
    if parts.num_images != dataset.num_images or len(sizes) != dataset.num_images:
        raise ValueError(f"{dataset.num_images} images in the dataset, {parts.num_images} annotated, {len(sizes)} image sizes")
    assumed = [] if preprocessing else [f"preprocessing not recorded; assumed {DEFAULT_PREPROCESSING}"]
    targets = cub_attribute_targets(dataset.attribute_names, parts.part_names, exclude=exclude, mapping=mapping)
    groups = [attribute_group(n) for n in dataset.attribute_names] if attributes == "top_per_group" else None
    metrics = _run(model, dataset, parts, _split_indices(dataset, split), preprocessing, sizes, targets, groups, options,
                   batch_size, inputs, baseline)
    if not metrics:
        raise ValueError("the model returns no attention maps (every branch's maps are None): nothing to localise")
    return {"split": split, **options, "mapping": mapping, "exclude": list(exclude), "attributes": attributes,
            "assumed": assumed,
            "preprocessing": preprocessing or DEFAULT_PREPROCESSING,
            "branches": {branch: metric.compute() for branch, metric in metrics.items()}}


def _protocol(criterion: str, threshold: float | None, box_scale: float, **given: str | None) -> tuple[dict[str, Any], str]:
    """``(the metric's options, the attribute mapping)``: what is given, else the criterion's defaults."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    chosen = resolve_protocol(criterion, **given)
    threshold = DEFAULT_THRESHOLDS[criterion] if threshold is None else float(threshold)
    options = {"criterion": criterion, "threshold": threshold, "box_scale": box_scale,
               **{k: chosen[k] for k in ("peak", "box", "bound")}}
    return options, chosen["mapping"]


def _run(model, dataset, parts, indices, preprocessing, sizes, targets, groups, options, batch_size, inputs, baseline):
    """Branch -> :class:`PartLocalization` summed over the images ``indices``, a batch at a time (``groups``: APN's selection)."""
    source = dataset.features if inputs is None else inputs
    device, was_training = model_device(model), model.training
    model.eval()
    metrics: dict[str, PartLocalization] = {}
    generator = torch.Generator().manual_seed(0)
    crop = tuple(int(s) for s in (preprocessing or DEFAULT_PREPROCESSING)["input_size"][-2:])
    try:
        for start in range(0, len(indices), batch_size):
            idx = indices[start : start + batch_size]
            output = model(read_batch(source, idx).to(device))
            grid = _grid(output, dataset, inputs)
            cells, views = grid_to_image(grid, preprocessing, sizes[idx]), view_regions(preprocessing, sizes[idx])
            branches = dict(output.maps)
            scores = dict(output.attribute_scores)
            if baseline:
                shape = next(m for m in branches.values() if m is not None).shape
                branches[BASELINE] = torch.rand(shape, generator=generator)  # (B, I, R)
                scores[BASELINE] = torch.rand(shape[:2], generator=generator)
            for branch, maps in branches.items():
                if maps is not None:
                    metric = metrics.setdefault(branch, PartLocalization(targets, crop_size=crop, **options))
                    pairs = None if groups is None else top_per_group(scores[branch], groups)
                    metric.update(maps.reshape(*maps.shape[:2], *grid), cells, parts.locations[idx], parts.boxes[idx],
                                  views=views, pairs=pairs)
    finally:
        model.train(was_training)
    return metrics
