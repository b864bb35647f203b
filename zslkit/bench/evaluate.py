"""Score matrices -> the standard ZSL numbers (T1, U, S, H, AUSUC) with calibrated stacking.

Calibrated stacking (Chao et al., ECCV 2016) subtracts a constant ``gamma`` from
the seen-class scores before the GZSL argmax. :func:`evaluate` either applies a
given ``gamma`` or picks the one that maximises ``H`` on the data it is given
(``calibration="best"``): the validation protocol does the latter on the
validation split and the former, with that gamma, on test.

Only the classes of the problem at hand compete: scores of other classes (for
example the test classes while evaluating on the validation split) are masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from zslkit.datasets import ZSLDataset
from zslkit.metrics import SeenUnseenCurve, czsl_accuracy, gzsl_accuracy, seen_unseen_curve

__all__ = ["Evaluation", "best_calibration", "evaluate", "evaluate_scores", "single_threaded", "thin_curve"]


@dataclass(frozen=True)
class Evaluation:
    """The numbers of one evaluation (accuracies in [0, 1]) and the curve they come from."""

    T1: float
    U: float
    S: float
    H: float
    AUSUC: float
    gamma: float
    curve: SeenUnseenCurve

    def metrics(self) -> dict[str, float]:
        """``T1``, ``U``, ``S``, ``H``, ``AUSUC``."""
        return {"T1": self.T1, "U": self.U, "S": self.S, "H": self.H, "AUSUC": self.AUSUC}


def best_calibration(curve: SeenUnseenCurve) -> float:
    """The ``gamma`` in the middle of the curve's best-``H`` interval.

    Point ``j`` of the curve holds for every gamma in ``[gammas[j], gammas[j+1])``;
    taking the middle keeps the choice away from ties.
    """
    u, s, g = curve.unseen, curve.seen, curve.gammas
    harmonic = np.where(u + s > 0, 2 * u * s / np.maximum(u + s, 1e-300), 0.0)
    j = int(np.argmax(harmonic))
    if len(g) == 1:
        return 0.0
    if j == 0:  # gamma = -inf: everything predicted seen
        return float(g[1] - 1.0)
    if j == len(g) - 1:
        return float(g[j] + 1.0)
    return float((g[j] + g[j + 1]) / 2)


_controller: ThreadpoolController | None = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS on one thread inside the block.

    Metrics and the pooled-feature methods work on small matrices, where extra
    threads only add synchronisation (several times slower on a busy 2-core machine).
    """
    global _controller
    if _controller is None:  # finding the BLAS libraries is slow: once per process
        _controller = ThreadpoolController()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _controller.limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def _mask_other_classes(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    masked = np.full(scores.shape, -np.inf, dtype=np.float64)
    masked[:, classes] = scores[:, classes]
    return masked


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    seen_classes: np.ndarray,
    unseen_classes: np.ndarray,
    calibration: float | Literal["best"] = "best",
) -> Evaluation:
    """Metrics of ``(n, K)`` scores of images of seen and unseen classes with ``(n,)`` labels.

    ``T1`` is on the unseen-class images (argmax over unseen classes), ``U``/``S``/``H``
    after subtracting ``gamma`` from seen-class scores: the given ``calibration``,
    or with ``"best"`` the gamma maximising ``H`` here. AUSUC does not depend on gamma.
    """
    seen, unseen = np.asarray(seen_classes), np.asarray(unseen_classes)
    labels = np.asarray(labels)
    scores = _mask_other_classes(np.asarray(scores, dtype=np.float64), np.concatenate([seen, unseen]))
    on_unseen = np.isin(labels, unseen)
    with single_threaded():
        t1 = czsl_accuracy(scores[on_unseen], labels[on_unseen], unseen) if on_unseen.any() else 0.0
        curve = seen_unseen_curve(scores, labels, seen, unseen)
        gamma = best_calibration(curve) if calibration == "best" else float(calibration)
        g = gzsl_accuracy(scores, labels, seen, unseen, gamma)
    area = float(np.trapezoid(curve.seen, curve.unseen) if hasattr(np, "trapezoid") else np.trapz(curve.seen, curve.unseen))
    return Evaluation(T1=t1, U=g.unseen, S=g.seen, H=g.harmonic, AUSUC=area, gamma=gamma, curve=curve)


def evaluate_scores(dataset: ZSLDataset, scores_seen: np.ndarray, scores_unseen: np.ndarray, calibration: float = 0.0) -> dict[str, float]:
    """Metrics from ``(n_seen, K)`` scores of ``test_seen`` and ``(n_unseen, K)`` of ``test_unseen``."""
    labels = dataset.labels[np.concatenate([dataset.splits["test_seen"], dataset.splits["test_unseen"]])]
    scores = np.concatenate([scores_seen, scores_unseen])
    return evaluate(scores, labels, dataset.seen_classes, dataset.unseen_classes, calibration).metrics()


def thin_curve(curve: SeenUnseenCurve, points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` points of the curve (ends kept), as lists for JSON and plots."""
    n = len(curve.unseen)
    keep = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return {"unseen": curve.unseen[keep].round(6).tolist(), "seen": curve.seen[keep].round(6).tolist()}
