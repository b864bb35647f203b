"""What a protocol needs from a method or model: fit on a dataset's ``trainval``, score images.

A :class:`Runner` hides the difference between the non-deep methods (fit on
pooled features, :mod:`zslkit.bench.method_runner`) and the deep models
(trained by :mod:`zslkit.training`, :mod:`zslkit.bench.model_runner`), so that
every protocol runs both the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from zslkit.datasets import ZSLDataset

__all__ = ["Fit", "OnEpoch", "Runner", "expand_grid"]

#: ``on_epoch(epoch, predictor)`` called after each epoch; may return a dict of numbers to log.
OnEpoch = Callable[[int, Any], "dict[str, float] | None"]


@dataclass
class Fit:
    """A trained predictor (what :meth:`Runner.scores` accepts) and its per-epoch training log."""

    predictor: Any
    history: list[dict[str, Any]] = field(default_factory=list)


class Runner(Protocol):
    """The interface protocols use. ``params`` is one point of :meth:`candidates`."""

    kind: str
    #: optional (``False`` when absent): a fit with ``epochs=e`` equals the first ``e`` epochs of a longer
    #: fit with the same params and seed, so one training can serve both
    epochs_are_prefixes: bool

    def candidates(self) -> list[dict[str, Any]]:
        """Hyper-parameter settings the validation protocol tries (``[{}]``: none to tune)."""
        ...

    def fit(self, dataset: ZSLDataset, params: dict[str, Any], seed: int, *, epochs: int | None = None,
            on_epoch: OnEpoch | None = None) -> Fit:
        """Train on ``dataset.splits["trainval"]`` (``epochs``: override the number of epochs)."""
        ...

    def scores(self, predictor: Any, dataset: ZSLDataset, indices: np.ndarray) -> np.ndarray:
        """``(len(indices), K)`` class scores of the images ``indices`` of ``dataset``."""
        ...


def expand_grid(grid: Any) -> list[dict[str, Any]]:
    """A grid (name -> list of values, or a list of such dicts) as the list of its points; ``[{}]`` when empty.

    Points follow the order of the sorted names, the last name varying fastest.
    """
    if not grid:
        return [{}]
    points = []
    for part in [grid] if isinstance(grid, Mapping) else list(grid):
        names = sorted(part)
        for name in names:
            if isinstance(part[name], (str, bytes)) or not hasattr(part[name], "__iter__"):
                raise ValueError(f"param_grid[{name!r}] must be a list of candidate values, got {part[name]!r}")
        points += [dict(zip(names, values)) for values in itertools.product(*(list(part[n]) for n in names))]
    return points
