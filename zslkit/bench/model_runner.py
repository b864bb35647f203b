"""Runs a deep model (kind ``model``) through :mod:`zslkit.training`, imported only when used."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from zslkit.bench.runner import Fit, OnEpoch, expand_grid
from zslkit.datasets import ZSLDataset

__all__ = ["ModelRunner"]


def _training():
    try:
        from zslkit import training
    except ImportError as exc:  # pragma: no cover - present once the trainer is installed
        raise RuntimeError(f"deep models need zslkit.training, which failed to import: {exc}") from exc
    return training


class ModelRunner:
    """Train ``component`` (a registered model) with ``options`` plus the tuned ``params``.

    ``train_config`` is a ``TrainConfig``, the name of a packaged config (for
    ``load_config``), a dict of ``TrainConfig`` fields, or ``None`` to let
    ``train`` choose its default. To stop the final run at the epoch chosen on
    validation, the config's ``epochs`` field is replaced (``dataclasses.replace``);
    with no ``train_config``, the base is the config the previous run reports
    (``TrainResult.config``) or else ``TrainConfig()``. The class space comes from
    the dataset passed in, so the validation view trains with the validation
    classes as unseen.
    """

    kind = "model"

    def __init__(self, component: str, options: dict[str, Any] | None = None, param_grid: Any = None,
                 train_config: Any = None, progress: bool = False):
        self.component = component
        self.options = dict(options or {})
        self.param_grid = param_grid
        self.train_config = train_config
        self.progress = progress
        self._reported_config: Any = None

    def candidates(self) -> list[dict[str, Any]]:
        return expand_grid(self.param_grid)

    def config(self, epochs: int | None = None):
        """The config to train with (``None``: the trainer's default), ``epochs`` replaced when given."""
        training = _training()
        config = self.train_config
        if isinstance(config, str):
            config = training.load_config(config)
        elif isinstance(config, dict):
            config = training.TrainConfig(**config)
        if epochs is None:
            return config
        if config is None:
            config = self._reported_config if self._reported_config is not None else training.TrainConfig()
        return dataclasses.replace(config, epochs=epochs)

    def fit(self, dataset: ZSLDataset, params: dict[str, Any], seed: int, *, epochs: int | None = None,
            on_epoch: OnEpoch | None = None) -> Fit:
        training = _training()
        result = training.train(
            dataset,
            self.component,
            self.config(epochs),
            split="trainval",
            seed=seed,
            on_epoch=on_epoch,
            progress=self.progress,
            **{**self.options, **params},
        )
        self._reported_config = getattr(result, "config", None) or self._reported_config
        return Fit(result.model, [dict(h) for h in result.history])

    def scores(self, predictor, dataset: ZSLDataset, indices: np.ndarray) -> np.ndarray:
        return np.asarray(_training().predict_scores(predictor, dataset, np.asarray(indices)))
