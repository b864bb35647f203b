"""``zslkit.from_pretrained(DIR)``: a model folder (:mod:`zslkit.model_folder`) rebuilt from the folder alone.

Above the trainer's checkpoints (the model is rebuilt as a checkpoint's is:
:func:`zslkit.training.checkpoint.build_model`); writing a folder is :mod:`zslkit.model_folder`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zslkit.model_folder import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    PretrainedError,
    read_config,
    save_pretrained,
)

__all__ = ["PretrainedError", "from_pretrained", "save_pretrained"]


def from_pretrained(directory: str | Path) -> torch.nn.Module:
    """The model saved in ``directory`` (:func:`save_pretrained`, ``zslkit export``), rebuilt from it alone, in eval mode.

    The model is built by its registered name and options (its package or plugin must be installed) and its
    weights loaded from ``model.safetensors``, every tensor required. Raises :class:`PretrainedError` naming the
    file for a folder with a missing or wrong file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from zslkit.training.checkpoint import Checkpoint, CheckpointError, build_model

    folder = Path(directory)
    config = read_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise PretrainedError(f"{weights}: missing; a zslkit model folder holds {CONFIG_NAME}, {WEIGHTS_NAME} and {CARD_NAME}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PretrainedError(f"{weights}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    meta = {"model": {"name": config["model"], "options": config["options"]},
            "classes": {"seen": config["seen_classes"], "unseen": config["unseen_classes"]},
            "attribute_names": config.get("attribute_names"), "class_names": config.get("class_names")}
    try:
        return build_model(Checkpoint(weights, meta, {f"model.{k}": v for k, v in tensors.items()})).eval()
    except CheckpointError as exc:
        raise PretrainedError(str(exc).splitlines()[0]) from None
