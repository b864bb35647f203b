"""The stateful wrapper around :func:`zslkit.metrics.evaluation.evaluate`: a ``torchmetrics.Metric`` when
torchmetrics is installed (``pip install 'zslkit[lightning]'``), its scores and labels synchronised across
processes (concatenated) before ``compute``; else a plain class with the same methods, for one process."""

from __future__ import annotations

from typing import Any, Literal

import torch

from zslkit.metrics.evaluation import evaluate

__all__ = ["ZSLAccuracy"]

try:
    from torchmetrics import Metric as _Base
    from torchmetrics.utilities import dim_zero_cat
except ImportError:  # the plain accumulator below
    _Base = None


def _compute(scores: torch.Tensor, labels: torch.Tensor, metric: Any) -> dict[str, float]:
    return evaluate(scores.float().cpu().numpy(), labels.long().cpu().numpy(), metric.seen_classes.cpu().numpy(),
                    metric.unseen_classes.cpu().numpy(), metric.calibration).metrics()


_DOC = """Accumulate scores over batches, then compute T1, U, S, H and AUSUC at once.

    ``compute()`` is :func:`~zslkit.metrics.evaluation.evaluate` on every batch seen
    so far (classes outside ``seen_classes`` and ``unseen_classes`` masked, ``T1`` 0
    when no unseen-class image came), with ``calibration`` a fixed gamma or ``"best"``.

    >>> metric = ZSLAccuracy(seen_classes, unseen_classes)
    >>> for scores, labels in batches:
    ...     metric.update(scores, labels)
    >>> metric.compute()  # {'T1': ..., 'U': ..., 'S': ..., 'H': ..., 'AUSUC': ...}

    The values are fractions in [0, 1], where the command line's tables show percent. With torchmetrics
    installed it is a ``torchmetrics.Metric``: its states (the scores ``(N, K)`` and labels ``(N,)`` seen)
    are concatenated across processes before ``compute`` (``dist_reduce_fx="cat"``), so every rank
    computes the metrics of all images; ``metric.to(device)`` moves them.
    """

if _Base is not None:

    class ZSLAccuracy(_Base):
        __doc__ = _DOC
        full_state_update = False
        is_differentiable = False
        higher_is_better = True

        def __init__(self, seen_classes, unseen_classes, calibration: float | Literal["best"] = 0.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seen_classes = torch.as_tensor(seen_classes).long()
            self.unseen_classes = torch.as_tensor(unseen_classes).long()
            self.calibration = calibration
            self.add_state("scores", default=[], dist_reduce_fx="cat")
            self.add_state("labels", default=[], dist_reduce_fx="cat")

        def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
            self.scores.append(torch.as_tensor(scores).detach().float())
            self.labels.append(torch.as_tensor(labels).detach().long().to(self.scores[-1].device))

        def compute(self) -> dict[str, float]:
            if isinstance(self.scores, list) and not self.scores:
                raise RuntimeError("ZSLAccuracy.compute() called before any update()")
            return _compute(dim_zero_cat(self.scores), dim_zero_cat(self.labels), self)

else:

    class ZSLAccuracy:  # type: ignore[no-redef]
        __doc__ = _DOC

        def __init__(self, seen_classes, unseen_classes, calibration: float | Literal["best"] = 0.0) -> None:
            self.seen_classes = torch.as_tensor(seen_classes).long()
            self.unseen_classes = torch.as_tensor(unseen_classes).long()
            self.calibration = calibration
            self.reset()

        def reset(self) -> None:
            self.scores: list[torch.Tensor] = []
            self.labels: list[torch.Tensor] = []

        def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
            self.scores.append(torch.as_tensor(scores).detach().float().cpu())
            self.labels.append(torch.as_tensor(labels).detach().long().cpu())

        def compute(self) -> dict[str, float]:
            if not self.scores:
                raise RuntimeError("ZSLAccuracy.compute() called before any update()")
            return _compute(torch.cat(self.scores), torch.cat(self.labels), self)
