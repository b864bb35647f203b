"""Scoring images with a trained model and turning scores into the standard metrics."""

from __future__ import annotations

import numpy as np
import torch

from zslkit.training.data import read_batch

__all__ = ["check_class_space", "evaluate", "model_device", "predict_scores"]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU if it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict_scores(model: torch.nn.Module, dataset, indices, batch_size: int = 256) -> np.ndarray:
    """``(n, K)`` float32 prediction scores (``model(x).scores``, margin included) of images ``indices``.

    Runs in eval mode without gradients, ``batch_size`` images at a time, and
    restores the model's previous mode.
    """
    if dataset.features is None:
        raise ValueError(f"dataset {dataset.name!r} has no region features to score")
    indices = np.asarray(indices, dtype=np.int64)
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        chunks = [
            model(read_batch(dataset.features, indices[start : start + batch_size]).to(device)).scores.float().cpu().numpy()
            for start in range(0, len(indices), batch_size)
        ]
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros((0, model.num_classes), dtype=np.float32)
    return np.concatenate(chunks)


def check_class_space(model: torch.nn.Module, dataset) -> None:
    """Refuse a model whose feature width, classes or seen/unseen split differ from the dataset's."""
    expected = getattr(model, "feature_dim", None)
    if expected is not None and dataset.features is not None and dataset.feature_dim != expected:
        raise ValueError(
            f"dataset {dataset.name!r} has {dataset.feature_dim}-channel features (shape {tuple(dataset.features.shape)}), "
            f"the model expects feature_dim={expected}; were they extracted with another backbone?"
        )
    classes = getattr(model, "classes", None)
    if classes is None:
        return
    if classes.num_classes != dataset.num_classes:
        raise ValueError(f"the model scores {classes.num_classes} classes, dataset {dataset.name!r} has {dataset.num_classes}")
    for side, ours, theirs in (("seen", classes.seen, dataset.seen_classes), ("unseen", classes.unseen, dataset.unseen_classes)):
        if not np.array_equal(ours.cpu().numpy(), theirs):
            raise ValueError(
                f"the model's {side} classes differ from those of dataset {dataset.name!r} "
                f"({ours.numel()} vs {len(theirs)} classes); was it trained on another split or view?"
            )


def evaluate(model: torch.nn.Module, dataset, batch_size: int = 256, calibration: float = 0.0) -> dict[str, float]:
    """T1 (CZSL), U, S, H (GZSL) and AUSUC of ``model`` on the dataset's ``test_seen`` and ``test_unseen`` images."""
    from zslkit.bench import evaluate_scores

    check_class_space(model, dataset)
    seen = predict_scores(model, dataset, dataset.splits["test_seen"], batch_size)
    unseen = predict_scores(model, dataset, dataset.splits["test_unseen"], batch_size)
    return evaluate_scores(dataset, seen, unseen, calibration=calibration)
