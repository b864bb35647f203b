"""ZSL metrics as pure functions on ``(N, K)`` score matrices and ``(N,)`` labels.

All accuracies are *per-class mean* top-1 accuracies (the standard of Xian et al.):
the accuracy of each class's images, averaged over classes, so that large
classes do not dominate.

* CZSL top-1 (``T1``): argmax restricted to the unseen classes, on unseen images.
* GZSL: argmax over all classes, after subtracting a calibration constant
  ``gamma`` from the seen-class scores (calibrated stacking, Chao et al. 2016);
  ``U`` on unseen images, ``S`` on seen images, ``H = 2US / (U + S)``.
* AUSUC: area under the seen-unseen accuracy curve traced as ``gamma`` sweeps
  from ``-inf`` to ``+inf`` (Chao et al. 2016).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "GZSLResult",
    "SeenUnseenCurve",
    "ausuc",
    "curve_area",
    "czsl_accuracy",
    "gzsl_accuracy",
    "harmonic_mean",
    "per_class_accuracy",
    "seen_unseen_curve",
]


def _tensor(x, dtype=None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.to(dtype) if dtype is not None else t


def _check(scores: torch.Tensor, labels: torch.Tensor) -> None:
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, K), found shape {tuple(scores.shape)}")
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"labels must be ({scores.shape[0]},) to match scores, found shape {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), found [{labels.min()}, {labels.max()}]")


def per_class_accuracy(predictions, labels, classes=None) -> float:
    """Mean over ``classes`` (default: those present in ``labels``) of each class's accuracy.

    A class listed in ``classes`` with no image is skipped (it has no accuracy).
    """
    pred, lab = _tensor(predictions).long(), _tensor(labels).long()
    if pred.shape != lab.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and labels {tuple(lab.shape)} differ in shape")
    cls = torch.unique(lab) if classes is None else _tensor(classes).long()
    accs = []
    for c in cls.tolist():
        mask = lab == c
        if mask.any():
            accs.append((pred[mask] == c).double().mean())
    return float(torch.stack(accs).mean()) if accs else 0.0


def harmonic_mean(unseen: float, seen: float) -> float:
    """``2 U S / (U + S)``, and 0 when both are 0."""
    return 0.0 if unseen + seen <= 0 else 2.0 * unseen * seen / (unseen + seen)


def czsl_accuracy(scores, labels, unseen_classes) -> float:
    """Conventional ZSL top-1: argmax over ``unseen_classes`` only, per-class mean accuracy."""
    scores, labels = _tensor(scores).float(), _tensor(labels).long()
    _check(scores, labels)
    unseen = _tensor(unseen_classes).long()
    if not torch.isin(labels, unseen).all():
        raise ValueError("czsl_accuracy: every label must be one of unseen_classes")
    pred = unseen[scores[:, unseen].argmax(dim=1)]
    return per_class_accuracy(pred, labels, unseen)


class GZSLResult(NamedTuple):
    unseen: float
    seen: float
    harmonic: float


def gzsl_accuracy(scores, labels, seen_classes, unseen_classes, calibration: float = 0.0) -> GZSLResult:
    """GZSL ``U``, ``S``, ``H`` over a mix of seen- and unseen-class images.

    ``calibration`` (gamma) is subtracted from the seen-class scores before the
    argmax over all classes.
    """
    scores, labels = _tensor(scores).float(), _tensor(labels).long()
    _check(scores, labels)
    seen, unseen = _tensor(seen_classes).long(), _tensor(unseen_classes).long()
    adjusted = scores.clone()
    adjusted[:, seen] -= calibration
    pred = adjusted.argmax(dim=1)
    is_unseen = torch.isin(labels, unseen)
    is_seen = torch.isin(labels, seen)
    u = per_class_accuracy(pred[is_unseen], labels[is_unseen]) if is_unseen.any() else 0.0
    s = per_class_accuracy(pred[is_seen], labels[is_seen]) if is_seen.any() else 0.0
    return GZSLResult(u, s, harmonic_mean(u, s))


class SeenUnseenCurve(NamedTuple):
    """Accuracies traced as the calibration ``gamma`` grows (``gammas`` ascending)."""

    gammas: np.ndarray
    unseen: np.ndarray
    seen: np.ndarray


def seen_unseen_curve(scores, labels, seen_classes, unseen_classes) -> SeenUnseenCurve:
    """Every distinct (U, S) operating point of calibrated stacking, exactly.

    For each image, ``d = max(seen scores) - max(unseen scores)`` is the gamma at
    which its prediction flips from its best seen class to its best unseen class.
    Sorting the ``d`` gives every point of the curve in ``O(N log N)``.
    """
    scores, labels = _tensor(scores).double(), _tensor(labels).long()
    _check(scores, labels)
    seen, unseen = _tensor(seen_classes).long(), _tensor(unseen_classes).long()
    best_seen_val, best_seen_idx = scores[:, seen].max(dim=1)
    best_unseen_val, best_unseen_idx = scores[:, unseen].max(dim=1)
    flip = (best_seen_val - best_unseen_val).numpy()
    seen_hit = (seen[best_seen_idx] == labels).numpy()
    unseen_hit = (unseen[best_unseen_idx] == labels).numpy()
    lab = labels.numpy()
    is_unseen = np.isin(lab, unseen.numpy())
    is_seen = np.isin(lab, seen.numpy())

    def weights(mask: np.ndarray) -> np.ndarray:
        w = np.zeros(len(lab))
        classes, counts = np.unique(lab[mask], return_counts=True)
        if len(classes):
            per = dict(zip(classes.tolist(), (1.0 / (counts * len(classes))).tolist()))
            w[mask] = [per[c] for c in lab[mask].tolist()]
        return w

    w_seen = weights(is_seen) * seen_hit
    w_unseen = weights(is_unseen) * unseen_hit
    # At gamma, image predicts its seen side iff flip > gamma (ties go to unseen, as argmax on adjusted scores
    # favours the first maximum only by accident; we fix the convention: seen must be strictly larger).
    order = np.argsort(flip, kind="stable")
    f_sorted = flip[order]
    thresholds = np.concatenate([[-np.inf], np.unique(f_sorted)])
    # seen accuracy at gamma = sum of w_seen over images with flip > gamma
    seen_cum = np.concatenate([[0.0], np.cumsum(w_seen[order])])  # sum over first j sorted images
    unseen_cum = np.concatenate([[0.0], np.cumsum(w_unseen[order])])
    counts = np.searchsorted(f_sorted, thresholds, side="right")  # images with flip <= gamma
    s = seen_cum[-1] - seen_cum[counts]
    u = unseen_cum[counts]
    return SeenUnseenCurve(thresholds, u, s)


def curve_area(curve: SeenUnseenCurve) -> float:
    """Area under a seen-unseen curve (trapezoid rule, U on the x axis): the AUSUC of its scores."""
    integrate = np.trapezoid if hasattr(np, "trapezoid") else np.trapz
    return float(integrate(curve.seen, curve.unseen))


def ausuc(scores, labels, seen_classes, unseen_classes) -> float:
    """Area under the seen-unseen accuracy curve (trapezoid rule, U on the x axis)."""
    return curve_area(seen_unseen_curve(scores, labels, seen_classes, unseen_classes))
