"""A stateful, torchmetrics-style wrapper around :func:`zslkit.metrics.evaluation.evaluate`."""

from __future__ import annotations

from typing import Literal

import torch

from zslkit.metrics.evaluation import evaluate

__all__ = ["ZSLAccuracy"]


class ZSLAccuracy:
    """Accumulate scores over batches, then compute T1, U, S, H and AUSUC at once.

    ``compute()`` is :func:`~zslkit.metrics.evaluation.evaluate` on every batch seen
    so far (classes outside ``seen_classes`` and ``unseen_classes`` masked, ``T1`` 0
    when no unseen-class image came), with ``calibration`` a fixed gamma or ``"best"``.

    >>> metric = ZSLAccuracy(seen_classes, unseen_classes)
    >>> for scores, labels in batches:
    ...     metric.update(scores, labels)
    >>> metric.compute()  # {'T1': ..., 'U': ..., 'S': ..., 'H': ..., 'AUSUC': ...}

    The values are fractions in [0, 1], where the command line's tables show percent.
    """

    def __init__(self, seen_classes, unseen_classes, calibration: float | Literal["best"] = 0.0) -> None:
        self.seen_classes = torch.as_tensor(seen_classes).long()
        self.unseen_classes = torch.as_tensor(unseen_classes).long()
        self.calibration = calibration
        self.reset()

    def reset(self) -> None:
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self._scores.append(torch.as_tensor(scores).detach().float().cpu())
        self._labels.append(torch.as_tensor(labels).detach().long().cpu())

    def compute(self) -> dict[str, float]:
        if not self._scores:
            raise RuntimeError("ZSLAccuracy.compute() called before any update()")
        scores, labels = torch.cat(self._scores), torch.cat(self._labels)
        return evaluate(scores.numpy(), labels.numpy(), self.seen_classes.numpy(), self.unseen_classes.numpy(), self.calibration).metrics()
