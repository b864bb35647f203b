"""Score matrices -> the standard ZSL numbers (T1, U, S, H, AUSUC)."""

from __future__ import annotations

import numpy as np

from zslkit.datasets import ZSLDataset
from zslkit.metrics import ausuc, czsl_accuracy, gzsl_accuracy


def evaluate_scores(dataset: ZSLDataset, scores_seen: np.ndarray, scores_unseen: np.ndarray, calibration: float = 0.0) -> dict[str, float]:
    """Metrics from ``(n_seen, K)`` scores of ``test_seen`` and ``(n_unseen, K)`` of ``test_unseen``."""
    y_s = dataset.labels[dataset.splits["test_seen"]]
    y_u = dataset.labels[dataset.splits["test_unseen"]]
    seen, unseen = dataset.seen_classes, dataset.unseen_classes
    scores = np.concatenate([scores_seen, scores_unseen])
    labels = np.concatenate([y_s, y_u])
    g = gzsl_accuracy(scores, labels, seen, unseen, calibration)
    return {
        "T1": czsl_accuracy(scores_unseen, y_u, unseen),
        "U": g.unseen,
        "S": g.seen,
        "H": g.harmonic,
        "AUSUC": ausuc(scores, labels, seen, unseen),
    }
