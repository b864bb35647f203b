"""Feature maps held on the training device: read from their file once, indexed every step.

A training step at CUB shapes reads 50 feature maps of ``2048 x 14 x 14`` (39 MiB as
float32). Read from a file (store, HDF5) and copied to a GPU every step, that costs more
than the step itself on a fast GPU. :class:`ResidentFeatures` reads the rows a run needs
once, keeps them in one tensor on the device **in the source's dtype** (float16 for a
feature store, whose default dtype it is: half the bytes, nothing rounded), and serves a
batch as a float32 tensor gathered on the device::

    resident = ResidentFeatures.load(dataset.features, dataset.splits["trainval"], "cuda")
    batch = resident.take(indices)          # (n, C, H, W) float32 on cuda, no host copy

:func:`make_resident` returns a dataset whose ``features`` are resident, so that training,
prediction and the benchmark harness all read from the device copy;
``TrainConfig.resident`` does it for the training split inside
:func:`zslkit.training.train`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch

from zslkit.datasets.checks import check_finite_rows, feature_source
from zslkit.datasets.container import DatasetError, ZSLDataset

__all__ = ["RESIDENT_DTYPES", "ResidentFeatures", "free_memory", "hold_on_device", "make_resident", "resident_bytes"]

#: Largest share of the device's free memory :func:`make_resident` fills by default: the
#: rest is left to the model, its activations and the optimizer.
DEFAULT_FRACTION = 0.5


def free_memory(device: str | torch.device) -> int:
    """Bytes free on ``device``: CUDA's free memory, or the host's available memory for ``cpu``."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        raise ValueError(f"resident features support cpu and cuda devices, not {device.type!r}")
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


#: What :class:`ResidentFeatures` store (``TrainConfig.resident_dtype``): ``source`` (the source's
#: dtype, exactly the values a batch read from the source has; ``None`` means the same) or
#: ``float16`` (half the bytes of a float32 source, each value rounded once).
RESIDENT_DTYPES: tuple[str, ...] = ("source", "float16")


def _stored(dtype: str | None) -> str | None:
    """``dtype`` as a numpy dtype name to convert to, or ``None`` for the source's own."""
    if dtype is not None and dtype not in RESIDENT_DTYPES:
        raise ValueError(f"resident dtype must be None or one of {RESIDENT_DTYPES}, got {dtype!r}")
    return None if dtype in (None, "source") else dtype


def resident_bytes(features: Any, num_images: int, dtype: str | None = None) -> int:
    """Bytes that ``num_images`` rows of ``features`` take on a device, in ``dtype`` (one of
    :data:`RESIDENT_DTYPES`; default: their own)."""
    row = int(np.prod(features.shape[1:], dtype=np.int64))
    return num_images * row * _torch_dtype(_stored(dtype) or features.dtype).itemsize


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise DatasetError(f"resident features must be floating point, found dtype {dtype.name}")
    return {2: torch.float16, 4: torch.float32, 8: torch.float64}[dtype.itemsize]


def _normalize(device: str | torch.device) -> torch.device:
    """``cuda`` as ``cuda:<current>``, so that devices compare equal to a tensor's."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def _rounded(block: np.ndarray, dtype: np.dtype, images: np.ndarray, source: str) -> np.ndarray:
    """``block`` in ``dtype``; a value out of its range raises, naming the image."""
    with np.errstate(over="ignore"):
        rounded = block.astype(dtype)
    overflow = ~np.isfinite(rounded)
    if overflow.any():
        row = int(np.argwhere(overflow)[0][0])
        largest = float(np.abs(block[row]).max())
        raise DatasetError(
            f"{source}: features of image {int(images[row])} reach {largest:g}, beyond {dtype.name}'s range "
            f"(largest {float(np.finfo(dtype).max):g}); hold them in their own dtype (resident_dtype: source)"
        )
    return rounded


class ResidentFeatures:
    """Rows of an ``(N, C, H, W)`` feature array held in one tensor on a device.

    It is indexed like the array it came from (image indices ``0..N-1``), but holds only
    the images it was loaded with; asking for another raises a :class:`DatasetError`
    naming it. :meth:`take` gives a float32 batch on the device (what the trainer and
    :func:`zslkit.training.predict_scores` use); ``resident[indices]`` gives a numpy copy
    in the stored dtype, for code that reads features as an array.

    Attributes:
        rows: ``(n, C, H, W)`` tensor on the device, in the source's dtype.
        images: ``(n,)`` sorted image indices; ``rows[k]`` is image ``images[k]``.
        shape: ``(N, C, H, W)``, the source's shape.
        source: the file (or ``"features"``) the rows were read from, for messages.
    """

    def __init__(self, rows: torch.Tensor, images: np.ndarray, num_images: int, source: str = "features") -> None:
        images = np.asarray(images, dtype=np.int64)
        if rows.ndim != 4 or rows.shape[0] != len(images):
            raise ValueError(f"rows must be (n, C, H, W) with one row per image, found {tuple(rows.shape)} for {len(images)} images")
        self.rows, self.images, self.source = rows, images, source
        self.shape = (int(num_images), *(int(s) for s in rows.shape[1:]))
        self._position = np.full(int(num_images), -1, dtype=np.int64)
        self._position[images] = np.arange(len(images))

    @classmethod
    def load(
        cls, features: Any, images: Any = None, device: str | torch.device = "cpu", chunk: int = 256,
        dtype: str | None = None,
    ) -> ResidentFeatures:
        """Read ``features[images]`` (default: every image), ``chunk`` rows at a time, onto ``device``.

        ``dtype``: ``None`` or ``"source"`` keeps the source's dtype (exactly the values a batch read
        from the source has); ``"float16"`` stores a float32 source in half the bytes, each value
        rounded to float16 (a value beyond float16's range raises, naming the image).
        Rows are checked for NaN/inf as they are read (the error names the image and file).
        Besides the result, at most one chunk is held in host memory. A
        :class:`ResidentFeatures` source is moved or restricted (:meth:`to`) and keeps its dtype.
        """
        dtype = _stored(dtype)
        if isinstance(features, torch.utils.data.Dataset):
            raise TypeError("resident features need an (N, C, H, W) array-like; a torch Dataset (images) is read item by item")
        if isinstance(features, ResidentFeatures):
            return features.to(device, images)
        num_images = int(features.shape[0])
        images = np.arange(num_images) if images is None else np.unique(np.asarray(images, dtype=np.int64))
        if len(images) and (images[0] < 0 or images[-1] >= num_images):
            raise IndexError(f"image indices must be in [0, {num_images}), found [{images[0]}, {images[-1]}]")
        source = feature_source(features)
        stored = _torch_dtype(dtype or features.dtype)
        rows = torch.empty((len(images), *features.shape[1:]), dtype=stored, device=_normalize(device))
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            block = np.ascontiguousarray(features[part])
            check_finite_rows(block, part, source)
            if dtype is not None and block.dtype != np.dtype(dtype):
                block = _rounded(block, np.dtype(dtype), part, source)
            rows[start : start + len(part)].copy_(torch.from_numpy(block))
        return cls(rows, images, num_images, source)

    def to(self, device: str | torch.device, images: Any = None) -> ResidentFeatures:
        """These features on ``device`` (``self`` when nothing changes), restricted to ``images`` if given."""
        device = _normalize(device)
        keep = self.images if images is None else np.unique(np.asarray(images, dtype=np.int64))
        same_images = np.array_equal(keep, self.images)
        if same_images and self.device == device:
            return self
        rows = self.rows if same_images else self.rows.index_select(0, torch.from_numpy(self.positions(keep)).to(self.device))
        return ResidentFeatures(rows.to(device), keep, self.shape[0], self.source)

    # ---------------------------------------------------------------- array-like
    @property
    def device(self) -> torch.device:
        return self.rows.device

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype, as numpy names it."""
        return np.dtype(str(self.rows.dtype).removeprefix("torch."))

    @property
    def nbytes(self) -> int:
        """Bytes held on the device."""
        return self.rows.numel() * self.rows.element_size()

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"ResidentFeatures({len(self.images)} of {self.shape[0]} images, {'x'.join(map(str, self.shape[1:]))}, "
                f"{self.rows.dtype}, {_gib(self.nbytes)} on {self.device})")

    def positions(self, indices: Any) -> np.ndarray:
        """Row positions of image ``indices``; a :class:`DatasetError` names the first image not held."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.shape[0]):
            raise IndexError(f"image indices must be in [0, {self.shape[0]}), found [{indices.min()}, {indices.max()}]")
        positions = self._position[indices]
        if (positions < 0).any():
            image = int(indices[np.argmax(positions < 0)])
            raise DatasetError(
                f"{self.source}: image {image} is not among the {len(self.images)} images held on {self.device} "
                "(make the split it belongs to resident too, or read from the file)"
            )
        return positions

    def take(self, indices: Any) -> torch.Tensor:
        """``(n, C, H, W)`` float32 rows of image ``indices`` on the device, in the order given."""
        return self.gather(torch.from_numpy(self.positions(indices)).to(self.device))

    def gather(self, positions: torch.Tensor) -> torch.Tensor:
        """``(n, C, H, W)`` float32 rows at row ``positions`` (a tensor on the device, from :meth:`positions`).

        With the positions already on the device nothing crosses from the host: the
        trainer uploads an epoch's positions once and gathers every batch from them.
        """
        return self.rows.index_select(0, positions).to(torch.promote_types(self.rows.dtype, torch.float32))

    def __getitem__(self, indices: Any) -> np.ndarray:
        if isinstance(indices, slice):
            indices = np.arange(*indices.indices(self.shape[0]))
        single = np.ndim(indices) == 0
        rows = self.rows.index_select(0, torch.from_numpy(np.atleast_1d(self.positions(indices))).to(self.device))
        array = rows.cpu().numpy()
        return array[0] if single else array


def make_resident(
    dataset: ZSLDataset,
    device: str | torch.device = "cuda",
    splits: str | tuple[str, ...] | None = None,
    *,
    max_fraction: float = DEFAULT_FRACTION,
    dtype: str | None = None,
) -> ZSLDataset:
    """A copy of ``dataset`` whose ``features`` are held on ``device`` (:class:`ResidentFeatures`).

    Args:
        dataset: a :class:`~zslkit.datasets.ZSLDataset` with region features.
        device: where the rows go (``"cuda"``, ``"cuda:1"``, ``"cpu"``).
        splits: the split name(s) whose images to hold; ``None``: every image.
        max_fraction: refuse (``MemoryError`` naming both sizes) when the rows would take
            more than this share of the device's free memory.
        dtype: what the rows are stored as (see :meth:`ResidentFeatures.load`).
    """
    if dataset.features is None:
        raise DatasetError(f"dataset {dataset.name!r} has no region features to make resident")
    names = (splits,) if isinstance(splits, str) else splits
    if names is None:
        images = None
    else:
        unknown = [n for n in names if n not in dataset.splits]
        if unknown:
            raise KeyError(f"dataset {dataset.name!r} has no split {unknown[0]!r}; it has {sorted(dataset.splits)}")
        images = np.unique(np.concatenate([np.asarray(dataset.splits[n], dtype=np.int64) for n in names]))
    count = len(dataset.labels) if images is None else len(images)
    check_fits(resident_bytes(dataset.features, count, dtype), device, max_fraction, f"{count} images of dataset {dataset.name!r}")
    features = ResidentFeatures.load(dataset.features, images, device, dtype=dtype)
    return dataclasses.replace(dataset, features=features)


def check_fits(nbytes: int, device: str | torch.device, max_fraction: float, what: str) -> None:
    """Raise ``MemoryError`` when ``nbytes`` exceed ``max_fraction`` of ``device``'s free memory."""
    free = free_memory(device)
    if nbytes > max_fraction * free:
        raise MemoryError(
            f"resident features need {_gib(nbytes)} for {what}, more than {max_fraction:.0%} of the "
            f"{_gib(free)} free on {torch.device(device)}; read them from the file instead (resident: off)"
        )


def hold_on_device(nbytes: int, device: str | torch.device, mode: str, what: str) -> bool:
    """Whether ``nbytes`` of features (``what``, for messages) go onto ``device`` under ``mode``.

    ``off``: never; ``auto``: when ``device`` is a GPU and they take at most
    :data:`DEFAULT_FRACTION` of its free memory; ``on``: always, a ``MemoryError`` when
    they do not fit (see ``TrainConfig.resident``).
    """
    device = torch.device(device)
    if mode == "off":
        return False
    if mode == "auto":
        return device.type == "cuda" and nbytes <= DEFAULT_FRACTION * free_memory(device)
    if mode != "on":
        raise ValueError(f"resident must be one of ('auto', 'on', 'off'), got {mode!r}")
    check_fits(nbytes, device, DEFAULT_FRACTION, what)
    return True
