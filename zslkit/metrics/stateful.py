"""A stateful, torchmetrics-style wrapper around :mod:`zslkit.metrics.functional`."""

from __future__ import annotations

import torch

from zslkit.metrics.functional import ausuc, czsl_accuracy, gzsl_accuracy


class ZSLAccuracy:
    """Accumulate scores over batches, then compute T1, U, S, H and AUSUC at once.

    >>> metric = ZSLAccuracy(seen_classes, unseen_classes)
    >>> for scores, labels in batches:
    ...     metric.update(scores, labels)
    >>> metric.compute()  # {'T1': ..., 'U': ..., 'S': ..., 'H': ..., 'AUSUC': ...}
    """

    def __init__(self, seen_classes, unseen_classes, calibration: float = 0.0) -> None:
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
        unseen_mask = torch.isin(labels, self.unseen_classes)
        result = {}
        if unseen_mask.any():
            result["T1"] = czsl_accuracy(scores[unseen_mask], labels[unseen_mask], self.unseen_classes)
        g = gzsl_accuracy(scores, labels, self.seen_classes, self.unseen_classes, self.calibration)
        result.update(U=g.unseen, S=g.seen, H=g.harmonic)
        result["AUSUC"] = ausuc(scores, labels, self.seen_classes, self.unseen_classes)
        return result
