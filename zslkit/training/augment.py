"""Training-time augmentation of image inputs: timm's resize/crop/flip, reproducible from the seed.

:func:`build_augment` builds ``timm.data.create_transform(is_training=True, ...)`` and keeps
its first part, the random resized crop and the flips (the rest -- colour jitter, to-tensor,
normalisation -- belongs to reading image files; zslkit's image inputs are already tensors).
:func:`augment_batch` applies it to every image of a batch with the random numbers of that
image alone: Python's ``random`` (the crop) and torch's (the flips) are seeded from
``(seed, epoch, step, position in the global batch)`` and restored afterwards, so an
augmented run resumes exactly and trains the same on any number of processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["augment_batch", "build_augment"]


def build_augment(options: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The crop-and-flip transform of ``timm.data.create_transform(is_training=True, **options)``:
    one image ``(3, S, S)`` -> ``(3, input_size, input_size)``."""
    import timm.data

    primary, _, _ = timm.data.create_transform(is_training=True, separate=True, **options)
    return primary


def _image_seed(seed: int, epoch: int, step: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, step, position]).generate_state(1, np.uint64)[0] >> 1)


def augment_batch(transform: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *, seed: int, epoch: int,
                  step: int, offset: int = 0) -> torch.Tensor:
    """``transform`` applied to each image of ``images`` ``(B, 3, S, S)`` -> ``(B, 3, s, s)``.

    Image ``i`` is at ``offset + i`` of the global batch ``step`` of ``epoch``; its random
    numbers depend on that place and ``seed`` only. The global ``random`` and torch CPU states
    are left as they were.
    """
    python_state = random.getstate()
    out = []
    try:
        with torch.random.fork_rng(devices=[]):
            for i, image in enumerate(images):
                image_seed = _image_seed(seed, epoch, step, offset + i)
                random.seed(image_seed)
                torch.manual_seed(image_seed)
                out.append(transform(image))
    finally:
        random.setstate(python_state)
    return torch.stack(out) if out else images
