"""Training and evaluation of zslkit models: configs, the training loop, checkpoints, prediction."""

from zslkit.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    build_model,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from zslkit.training.config import (
    COMPILE_MODES,
    PRECISIONS,
    RESIDENCY,
    TrainConfig,
    available_configs,
    load_config,
)
from zslkit.training.data import batch_indices, read_batch
from zslkit.training.predict import evaluate, predict_scores
from zslkit.training.recipes import Recipe, choose_recipe, recipe_for
from zslkit.training.trainer import TrainResult, build_optimizer, train

__all__ = [
    "COMPILE_MODES",
    "PRECISIONS",
    "RESIDENCY",
    "Checkpoint",
    "CheckpointError",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "available_configs",
    "batch_indices",
    "build_model",
    "build_optimizer",
    "choose_recipe",
    "evaluate",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_model",
    "predict_scores",
    "read_batch",
    "recipe_for",
    "save_checkpoint",
    "train",
]
