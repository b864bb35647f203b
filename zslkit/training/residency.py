"""Where a run computes and where its features live: the one decision the trainer and the
benchmark's model runner (:mod:`zslkit.bench.model_runner`) share.

* :func:`resolve_device` / :func:`training_device`: ``TrainConfig.device`` as this process's device
  (``auto`` -> CUDA when available; under ``torchrun`` each rank its own GPU).
* :func:`hold_features`: features held on that device (:class:`~zslkit.datasets.ResidentFeatures`)
  as ``TrainConfig.resident`` and ``resident_dtype`` say, or the source unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from zslkit import distributed
from zslkit.datasets.resident import ResidentFeatures, hold_on_device, resident_bytes
from zslkit.training.config import TrainConfig

__all__ = ["hold_features", "resolve_device", "training_device"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; anything else as ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but PyTorch sees no CUDA device (use device: cpu or auto)")
    return device


def training_device(config: TrainConfig) -> torch.device:
    """The device this process trains ``config`` on (its rank's GPU in a process group)."""
    return distributed.rank_device(resolve_device(config.device))


def hold_features(inputs: Any, images: Any, device: torch.device, config: TrainConfig, what: str) -> Any:
    """``inputs`` with the rows ``images`` (``None``: all) held on ``device``, or ``inputs`` unchanged.

    ``config.resident``: ``off`` never holds them; ``auto`` holds them on a GPU with room
    (at most half its free memory); ``on`` always, a ``MemoryError`` naming ``what`` when they do
    not fit. ``config.resident_dtype`` is what the rows are stored as. Features already held on
    ``device`` are returned as they are; a torch ``Dataset`` (images, read item by item) is never
    held (an error under ``on``).
    """
    mode = config.resident
    if mode == "off":
        return inputs
    if isinstance(inputs, ResidentFeatures) and inputs.device == device:
        return inputs  # made resident by the caller (zslkit.datasets.make_resident)
    if isinstance(inputs, torch.utils.data.Dataset):
        if mode == "on":
            raise ValueError("TrainConfig.resident='on' holds (N, ...) arrays on the device; these inputs are a torch "
                             "Dataset read item by item (use resident: off or auto)")
        return inputs
    images = None if images is None else np.unique(np.asarray(images, dtype=np.int64))
    count = len(inputs) if images is None else len(images)
    if not hold_on_device(resident_bytes(inputs, count, config.resident_dtype), device, mode, what):
        return inputs
    return ResidentFeatures.load(inputs, images, device, dtype=config.resident_dtype)
