"""The class names of the xlsa17 benchmarks, packaged, and the unseen classes of a dataset.

``xlsa17_classes.json`` holds, for CUB, SUN and AwA2, every class name in xlsa17's class order
(the image folder of the class: ``087.Mallard``, ``bazaar/indoor``, ``blue+whale``) and the
0-based indices of the unseen classes of the proposed split. It was made from the
``image_files`` and ``labels`` of the xlsa17 split files; ``tests/leakage`` checks it against them.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["XLSA17_DATASETS", "xlsa17_classes", "xlsa17_unseen"]

#: the benchmarks whose class names are packaged
XLSA17_DATASETS: tuple[str, ...] = ("cub", "sun", "awa2")


@functools.lru_cache(maxsize=1)
def _packaged() -> dict:
    return json.loads((resources.files("zslkit") / "leakage" / "xlsa17_classes.json").read_text(encoding="utf-8"))["datasets"]


def _check(dataset: str) -> str:
    if dataset not in XLSA17_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for the leakage check; give one of {', '.join(XLSA17_DATASETS)}")
    return dataset


def xlsa17_classes(dataset: str) -> list[str]:
    """Every class name of ``dataset`` (``cub``, ``sun``, ``awa2``) in xlsa17's class order."""
    return list(_packaged()[_check(dataset)]["classes"])


def xlsa17_unseen(dataset: str) -> list[int]:
    """The 0-based indices of the unseen classes of ``dataset``'s xlsa17 proposed split, ascending."""
    return list(_packaged()[_check(dataset)]["unseen"])
