"""Feature extraction: images -> backbone -> region feature maps in a :mod:`feature store <zslkit.datasets.store>`.

Preprocessing is the standard ImageNet evaluation transform built by timm from the
backbone's data config: resize the shorter side to ``image_size / crop_pct``, center crop
``image_size``, scale to [0, 1] and normalise with the model's mean and std. The paper
repositories (DAZLE, TransZero, MSDN) use ``crop_pct=1.0`` (resize 448, crop 448) with
bilinear interpolation and the ImageNet mean/std, which is the default here apart from
the interpolation (timm's model default unless ``interpolation`` is given).

The store's metadata records the preprocessing (``preprocessing``: input size, crop_pct,
crop mode, interpolation, mean, std) and every image's original ``[width, height]``
(``image_sizes``), which together map a feature cell back to the pixels it came from.

A ViT-family backbone's prefix tokens (CLS, distillation, registers) after the final norm are
stored beside its patch map (the store's ``prefix``; ``prefix_shape`` in ``store.json``): any
backbone with a ``forward_with_prefix(images) -> (map, prefix or None)`` method
(:meth:`~zslkit.backbones.TimmBackbone.forward_with_prefix`) gets them stored.

Extraction is resumable: run the same call again after an interruption and it continues
after the last batch that reached the disk (see :func:`extract_features`).

Under ``torchrun --nproc-per-node N`` (a process group, see :mod:`zslkit.distributed`)
the images are split in ``N`` contiguous slices; every process runs the backbone (rank
0's weights, broadcast) over its slice and writes those rows of the one store, and rank
0 marks the store complete once every slice is on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zslkit import distributed
from zslkit.contracts import check_backbone_output
from zslkit.datasets.checks import sha256_file
from zslkit.datasets.image_folder import ImageList
from zslkit.datasets.store import FeatureStore, StoreWriter, create_store, open_store
from zslkit.models.backbone_model import describe_backbone

__all__ = ["ImageFiles", "extract_features", "image_sizes", "preprocessing", "sha256_file"]


def preprocessing(
    backbone: nn.Module, image_size: int, *, crop_pct: float = 1.0, interpolation: str | None = None
) -> tuple[Callable[[Any], torch.Tensor], dict[str, Any]]:
    """``(transform, config)``: timm's eval transform for ``backbone`` at ``image_size``.

    ``config`` (JSON-ready: input size, crop_pct, interpolation, mean, std) is what the
    store records. Backbones without ``data_config()`` get the ImageNet defaults.
    """
    import timm.data

    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    if hasattr(backbone, "data_config"):
        config = dict(backbone.data_config())
    else:
        config = {"mean": timm.data.IMAGENET_DEFAULT_MEAN, "std": timm.data.IMAGENET_DEFAULT_STD, "interpolation": "bilinear"}
    config.update(input_size=(3, int(image_size), int(image_size)), crop_pct=float(crop_pct), crop_mode="center")
    if interpolation is not None:
        config["interpolation"] = interpolation
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    config = {k: list(config[k]) if isinstance(config[k], tuple) else config[k] for k in keys}
    transform = timm.data.create_transform(**config, is_training=False)
    return transform, config


class ImageFiles(torch.utils.data.Dataset):
    """Images read with Pillow (converted to RGB) and transformed, in list order.

    ``preprocessing``: what ``transform`` does, as :func:`preprocessing` describes it (its ``config``);
    a training run records it in its checkpoints, so that evaluation reads images the same way.
    """

    def __init__(self, paths: Sequence[str | Path], transform: Callable[[Any], torch.Tensor],
                 preprocessing: dict[str, Any] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return self.transform(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise OSError(f"{path}: cannot read image ({exc})") from None


def image_sizes(paths: Sequence[str | Path]) -> list[list[int]]:
    """``[width, height]`` of every image as stored (read from the file headers, nothing decoded).

    The store records them so that grid cells can be mapped back to original-image
    pixels (:func:`zslkit.metrics.localization.grid_to_image`).
    """
    from PIL import Image, UnidentifiedImageError

    sizes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append([int(image.width), int(image.height)])
        except (OSError, UnidentifiedImageError) as exc:
            raise OSError(f"{path}: cannot read image ({exc})") from None
    return sizes


def _origin(backbone: nn.Module) -> str:
    """Where the backbone's class was registered from (names the plugin), or its qualified name."""
    from zslkit.registry import component_info, list_components

    for name in list_components("backbone"):
        info = component_info("backbone", name)
        if info.factory is type(backbone):
            return f"registered as {name!r}, {info.origin}"
    return f"{type(backbone).__module__}.{type(backbone).__qualname__}"


def extract_features(
    images: ImageList | Sequence[str | Path],
    backbone: nn.Module,
    out: str | Path,
    *,
    image_size: int = 448,
    crop_pct: float = 1.0,
    interpolation: str | None = None,
    batch_size: int = 32,
    dtype: str = "float16",
    format: str = "npy",
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> FeatureStore:
    """Run ``backbone`` over ``images`` and write their feature maps to the store ``out``.

    Args:
        images: an :class:`~zslkit.datasets.ImageList` (its relative paths go into the
            store metadata; missing images raise before anything runs) or image paths.
        backbone: images ``(B, 3, S, S)`` -> ``(B, C, H, W)``; e.g. :class:`~zslkit.backbones.TimmBackbone`.
        out: store directory. If it holds an unfinished extraction with the same
            settings, extraction resumes there; a finished one is returned as is.
        image_size: side of the square crop the backbone sees (see :func:`preprocessing`).
        crop_pct: crop fraction: the shorter side is resized to ``image_size / crop_pct``.
        interpolation: resize interpolation (default: timm's for the model).
        batch_size: images per forward pass.
        dtype: ``"float16"`` (default) or ``"float32"``.
        format: ``"npy"`` (default) or ``"safetensors"``.
        device: where the backbone runs.
        num_workers: DataLoader processes decoding images.
        metadata: extra JSON-ready provenance (e.g. checksums of the split files); part of
            the settings a resumed run must match.
        progress: show a tqdm progress bar (rank 0's slice under torchrun).
        on_batch: called as ``on_batch(done, stop)`` after each batch is on disk: rows
            up to ``done`` of the rows up to ``stop`` this process writes.

    Returns:
        The finished store, opened for reading: ``(N, C, H, W)`` rows in image order, and
        ``store.prefix`` ``(N, P, C)`` for a backbone that gives prefix tokens (see the module docstring).

    Inside a process group every rank must call it with the same arguments; each
    extracts its slice of the images (see the module docstring).
    """
    if isinstance(images, ImageList):
        paths, files = images.require_complete().paths, images.relative
    else:
        paths = [Path(p) for p in images]
        files = [str(p) for p in paths]
    if not paths:
        raise ValueError("no images to extract")
    device = distributed.rank_device(torch.device(device))
    backbone = distributed.broadcast_module(backbone.to(device).eval())
    transform, config = preprocessing(backbone, image_size, crop_pct=crop_pct, interpolation=interpolation)
    with torch.inference_mode():
        probe, prefix = _forward(backbone, torch.zeros(1, *config["input_size"], device=device))
    check_backbone_output(probe, batch=1, feature_dim=getattr(backbone, "feature_dim", None),
                          name=type(backbone).__name__, source=_origin(backbone))
    channels, height, width = probe.shape[1:]
    prefix_tokens = None if prefix is None else (int(prefix.shape[1]), int(prefix.shape[2]))
    settings = {"backbone": describe_backbone(backbone, weights_checksum=True), "image_size": int(image_size),
                "preprocessing": config, "files": list(files), "image_sizes": image_sizes(paths), **(metadata or {})}

    def open_writer(rows: tuple[int, int] | None = None) -> StoreWriter:
        return create_store(out, (len(paths), channels, height, width), dtype=dtype, format=format, metadata=settings,
                            rows=rows, prefix_tokens=prefix_tokens)

    def run(writer: StoreWriter) -> None:
        _extract_rows(writer, ImageFiles(paths, transform), backbone, device, dtype, batch_size, num_workers,
                      progress=progress and distributed.is_main(), on_batch=on_batch)

    world = distributed.world_size()
    if world == 1:
        writer = open_writer()
        run(writer)
        return writer.finish()
    if distributed.is_main():
        open_writer()  # create the store (or check the settings of the one being resumed)
    distributed.barrier()
    run(open_writer(distributed.shard_range(len(paths), distributed.rank(), world)))
    distributed.barrier()
    if distributed.is_main():
        open_writer().finish()  # refuses unless every slice is on disk
    distributed.barrier()
    return open_store(out)


def _forward(backbone: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(maps (B, C, H, W), prefix tokens (B, P, C) or None)`` of a batch (see the module docstring)."""
    with_prefix = getattr(backbone, "forward_with_prefix", None)
    if with_prefix is None:
        return backbone(images), None
    maps, prefix = with_prefix(images)
    if prefix is not None and (prefix.ndim != 3 or prefix.shape[0] != maps.shape[0] or prefix.shape[1] < 1):
        raise ValueError(f"{type(backbone).__name__}.forward_with_prefix gave prefix tokens of shape {tuple(prefix.shape)}; "
                         f"expected ({maps.shape[0]}, P, C) with P >= 1, or None")
    return maps, prefix


def _extract_rows(
    writer: StoreWriter, images: ImageFiles, backbone: nn.Module, device: torch.device, dtype: str, batch_size: int,
    num_workers: int, *, progress: bool, on_batch: Callable[[int, int], None] | None,
) -> None:
    """Extract the writer's rows that are not on disk yet, a batch at a time."""
    from tqdm.auto import tqdm

    if writer.done >= writer.stop:
        return
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(images, range(writer.done, writer.stop)),
        batch_size=batch_size, shuffle=False, num_workers=num_workers,
    )
    bar = tqdm(total=writer.stop - writer.start, initial=writer.done - writer.start, unit="img",
               desc=f"extract {writer.path.name}", disable=not progress)
    with torch.inference_mode(), bar:
        for batch in loader:
            maps, prefix = _forward(backbone, batch.to(device))
            as_stored = getattr(torch, dtype)
            writer.write(writer.done, maps.to(as_stored).cpu().numpy(),
                         None if prefix is None else prefix.to(as_stored).cpu().numpy())
            bar.update(len(maps))
            if on_batch is not None:
                on_batch(writer.done, writer.stop)

