"""Scoring images with a trained model and turning scores into the standard metrics.

Inside a process group (``torchrun``) every rank scores a contiguous shard of the
images and the scores are all-gathered, so every rank returns all of them (and the
same metrics); every rank must then make the call.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from zslkit import distributed
from zslkit.contracts import ZSLModel, describe_model
from zslkit.metrics.evaluation import evaluate_scores
from zslkit.models.output import check_model_output
from zslkit.training.data import read_batch, shard

__all__ = ["check_class_space", "evaluate", "model_device", "predict_scores"]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU if it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict_scores(
    model: ZSLModel, dataset, indices, batch_size: int = 256, *, inputs=None, across_ranks: bool = True
) -> np.ndarray:
    """``(n, K)`` float32 prediction scores (``model(x).scores``, margin included) of images ``indices``.

    Runs in eval mode without gradients, ``batch_size`` images at a time, and
    restores the model's previous mode. ``inputs``: what the model reads (default
    ``dataset.features``; the images for a :class:`~zslkit.models.BackboneModel`).
    ``across_ranks=False`` scores every image in this process even inside a process
    group (e.g. on rank 0 alone).
    """
    source = dataset.features if inputs is None else inputs
    if source is None:
        raise ValueError(f"dataset {dataset.name!r} has no region features to score")
    indices = np.asarray(indices, dtype=np.int64)
    split = across_ranks and distributed.is_distributed()
    mine = shard(indices, distributed.rank(), distributed.world_size()) if split else indices
    was_training = model.training
    model.eval()
    device = model_device(model)
    name, origin = describe_model(model)

    def score(batch: torch.Tensor) -> np.ndarray:
        output = model(batch.to(device))
        check_model_output(output, batch=len(batch), num_classes=model.num_classes, name=name, source=origin)
        return output.scores.float().cpu().numpy()

    try:
        chunks = [score(read_batch(source, mine[start : start + batch_size])) for start in range(0, len(mine), batch_size)]
    finally:
        model.train(was_training)
    scores = np.concatenate(chunks) if chunks else np.zeros((0, model.num_classes), dtype=np.float32)
    return distributed.gather_array(scores, device) if split else scores


def check_class_space(model: ZSLModel, dataset) -> None:
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
        ours = ours.cpu().numpy()
        if not np.array_equal(ours, theirs):
            raise ValueError(f"the model's {side} classes differ from those of dataset {dataset.name!r}: "
                             f"{_class_difference(ours, np.asarray(theirs), dataset)}; was it trained on another split or view?")


def _class_difference(model: np.ndarray, data: np.ndarray, dataset) -> str:
    """Which classes one side has and the other lacks, named (``"the model's has 3 (Cardinal), ..."``), at most 3 each."""
    names = list(getattr(dataset, "class_names", None) or [])

    def some(indices) -> str:
        shown = ", ".join(f"{i} ({names[i]})" if i < len(names) else str(i) for i in indices[:3])
        return shown + (f" and {len(indices) - 3} more" if len(indices) > 3 else "")

    only_model, only_data = np.setdiff1d(model, data).tolist(), np.setdiff1d(data, model).tolist()
    parts = [f"the model has class{'es' if len(only_model) > 1 else ''} {some(only_model)} the dataset does not"] if only_model else []
    parts += [f"the dataset has class{'es' if len(only_data) > 1 else ''} {some(only_data)} the model does not"] if only_data else []
    return "; ".join(parts) or f"the same {len(model)} classes in another order"


def evaluate(
    model: ZSLModel, dataset, batch_size: int = 256, calibration: float = 0.0, *, inputs=None, across_ranks: bool = True
) -> dict[str, float]:
    """T1 (CZSL), U, S, H (GZSL) and AUSUC of ``model`` on the dataset's ``test_seen`` and ``test_unseen`` images,
    as fractions in [0, 1] (``{"H": 0.729, ...}``; ``zslkit train`` and ``zslkit eval`` print them x 100, in %).

    ``inputs`` and ``across_ranks`` as in :func:`predict_scores`.
    """
    check_class_space(model, dataset)
    score = partial(predict_scores, model, dataset, batch_size=batch_size, inputs=inputs, across_ranks=across_ranks)
    seen, unseen = score(dataset.splits["test_seen"]), score(dataset.splits["test_unseen"])
    return evaluate_scores(dataset, seen, unseen, calibration=calibration)
