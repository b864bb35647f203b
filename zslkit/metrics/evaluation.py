"""Score matrices -> the standard ZSL numbers (T1, U, S, H, AUSUC) with calibrated stacking.

The one home of evaluation: the benchmark harness, :func:`zslkit.training.evaluate`
and :class:`~zslkit.metrics.ZSLAccuracy` all call :func:`evaluate`.

Calibrated stacking (Chao et al., ECCV 2016) subtracts a constant ``gamma`` from
the seen-class scores before the GZSL argmax. :func:`evaluate` either applies a
given ``gamma`` or picks the one that maximises ``H`` on the data it is given
(``calibration="best"``, :func:`best_calibration`): the validation protocol does
the latter on the validation split and the former, with that gamma, on test.

Only the classes of the problem at hand compete: scores of other classes (for
example the test classes while evaluating on the validation split) are masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from zslkit.metrics.functional import (
    SeenUnseenCurve,
    curve_area,
    czsl_accuracy,
    gzsl_accuracy,
    seen_unseen_curve,
)
from zslkit.threads import single_threaded

__all__ = ["Evaluation", "best_calibration", "evaluate", "evaluate_scores", "mask_other_classes"]


@dataclass(frozen=True)
class Evaluation:
    """The numbers of one evaluation and the curve they come from.

    ``T1``, ``U``, ``S``, ``H`` and ``AUSUC`` are **fractions** in [0, 1] (0.729), where the
    command line's tables show percent (72.9); the repr shows both. ``leak_free``: ``U`` and ``H``
    on the unseen classes the backbone's pretraining did not see, when the caller computed them
    (:func:`zslkit.metrics.leak_free.leak_free_accuracy`, the same gamma).
    """

    T1: float
    U: float
    S: float
    H: float
    AUSUC: float
    gamma: float
    curve: SeenUnseenCurve
    leak_free: dict[str, float] | None = None

    def metrics(self) -> dict[str, float]:
        """``T1``, ``U``, ``S``, ``H``, ``AUSUC``, as fractions in [0, 1] (the CLI tables show them x 100, in %)."""
        return {"T1": self.T1, "U": self.U, "S": self.S, "H": self.H, "AUSUC": self.AUSUC}

    def __repr__(self) -> str:
        numbers = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics().items())
        percent = " ".join(f"{k} {100 * v:.1f}" for k, v in self.metrics().items())
        return f"Evaluation({numbers}, gamma={self.gamma:.4g}; fractions of 1, in %: {percent})"


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


def mask_other_classes(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(n, K)`` float64 scores with every column outside ``classes`` set to ``-inf``."""
    masked = np.full(scores.shape, -np.inf, dtype=np.float64)
    masked[:, classes] = scores[:, classes]
    return masked


def evaluate(
    scores: Any,
    labels: Any,
    seen_classes: Any,
    unseen_classes: Any,
    calibration: float | Literal["best"] = "best",
) -> Evaluation:
    """Metrics of ``(n, K)`` scores of images of seen and unseen classes with ``(n,)`` labels.

    Scores of classes that are neither seen nor unseen are masked. ``T1`` is on the
    unseen-class images (argmax over unseen classes; 0 when there are none),
    ``U``/``S``/``H`` after subtracting ``gamma`` from seen-class scores: the given
    ``calibration``, or with ``"best"`` the gamma maximising ``H`` here. AUSUC does
    not depend on gamma. Arrays or tensors are accepted.
    """
    seen, unseen = np.asarray(seen_classes), np.asarray(unseen_classes)
    labels = np.asarray(labels)
    scores = mask_other_classes(np.asarray(scores, dtype=np.float64), np.concatenate([seen, unseen]))
    on_unseen = np.isin(labels, unseen)
    with single_threaded():
        t1 = czsl_accuracy(scores[on_unseen], labels[on_unseen], unseen) if on_unseen.any() else 0.0
        curve = seen_unseen_curve(scores, labels, seen, unseen)
        gamma = best_calibration(curve) if calibration == "best" else float(calibration)
        g = gzsl_accuracy(scores, labels, seen, unseen, gamma)
    return Evaluation(T1=t1, U=g.unseen, S=g.seen, H=g.harmonic, AUSUC=curve_area(curve), gamma=gamma, curve=curve)


def evaluate_scores(dataset: Any, scores_seen: np.ndarray, scores_unseen: np.ndarray, calibration: float = 0.0) -> dict[str, float]:
    """Metrics from ``(n_seen, K)`` scores of ``test_seen`` and ``(n_unseen, K)`` of ``test_unseen``,
    as fractions in [0, 1] (the CLI tables show percent).

    ``dataset`` is a :class:`~zslkit.datasets.ZSLDataset` (its labels, splits and seen/unseen classes).
    """
    labels = dataset.labels[np.concatenate([dataset.splits["test_seen"], dataset.splits["test_unseen"]])]
    scores = np.concatenate([scores_seen, scores_unseen])
    return evaluate(scores, labels, dataset.seen_classes, dataset.unseen_classes, calibration).metrics()
