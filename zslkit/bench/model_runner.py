"""Runs a deep model (kind ``model``) through :mod:`zslkit.training`, imported only when used."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from zslkit.bench.runner import Fit, OnEpoch, expand_grid
from zslkit.datasets import ResidentFeatures, ZSLDataset
from zslkit.datasets.resident import hold_on_device, resident_bytes

__all__ = ["ModelRunner"]


def _training():
    try:
        from zslkit import training
    except ImportError as exc:  # pragma: no cover - present once the trainer is installed
        raise RuntimeError(f"deep models need zslkit.training, which failed to import: {exc}") from exc
    return training


class ModelRunner:
    """Train ``component`` (a registered model) with ``options`` plus the tuned ``params``.

    ``train_config`` is a ``TrainConfig``, a packaged config name or YAML path,
    a dict of fields that override the trainer's default for the dataset (e.g.
    ``{"epochs": 5}`` on top of ``configs/synthetic.yaml``), or ``None`` for that
    default. The final run of the validation protocol stops at the chosen epoch
    by overriding ``epochs``. The class space comes from the dataset passed in,
    so the validation view trains with the validation classes as unseen.

    When the config's ``resident`` allows it (``auto`` on a GPU with room, or ``on``),
    the features of every image are read once onto the training device and shared by
    all its fits and scorings (the validation view, every seed, every epoch's
    evaluation) instead of being read from the file each time.
    """

    kind = "model"

    def __init__(self, component: str, options: dict[str, Any] | None = None, param_grid: Any = None,
                 train_config: Any = None, progress: bool = False):
        self.component = component
        self.options = dict(options or {})
        self.param_grid = param_grid
        self.train_config = train_config
        self.progress = progress
        self._held: tuple[Any, ResidentFeatures] | None = None  # (source, its rows on the device)

    def candidates(self) -> list[dict[str, Any]]:
        return expand_grid(self.param_grid)

    def config(self, dataset: ZSLDataset, epochs: int | None = None):
        """The ``TrainConfig`` for ``dataset``, with the case's overrides and ``epochs`` when given."""
        training = _training()
        from zslkit.training.trainer import config_for

        overrides = dict(self.train_config) if isinstance(self.train_config, dict) else {}
        base = config_for(dataset, None if isinstance(self.train_config, dict) else self.train_config, self.component)
        if epochs is not None:
            overrides["epochs"] = epochs
        return training.load_config(base, **overrides) if overrides else base

    def on_device(self, dataset: ZSLDataset) -> ZSLDataset:
        """``dataset`` with its features held on the training device when the config's ``resident`` says so."""
        features = dataset.features
        if features is None or isinstance(features, ResidentFeatures):
            return dataset
        if self._held is None or self._held[0] is not features:
            from zslkit import distributed
            from zslkit.training.trainer import resolve_device

            config = self.config(dataset)
            device = distributed.rank_device(resolve_device(config.device))
            what = f"the {len(features)} images of dataset {dataset.name!r}"
            stored = None if config.resident_dtype == "source" else config.resident_dtype
            if not hold_on_device(resident_bytes(features, len(features), stored), device, config.resident, what):
                return dataset
            self._held = (features, ResidentFeatures.load(features, None, device, dtype=stored))
        return dataclasses.replace(dataset, features=self._held[1])

    def fit(self, dataset: ZSLDataset, params: dict[str, Any], seed: int, *, epochs: int | None = None,
            on_epoch: OnEpoch | None = None) -> Fit:
        training = _training()
        dataset = self.on_device(dataset)
        result = training.train(
            dataset,
            self.component,
            self.config(dataset, epochs),
            split="trainval",
            seed=seed,
            on_epoch=on_epoch,
            progress=self.progress,
            **{**self.options, **params},
        )
        return Fit(result.model, [dict(h) for h in result.history])

    def scores(self, predictor, dataset: ZSLDataset, indices: np.ndarray) -> np.ndarray:
        return np.asarray(_training().predict_scores(predictor, self.on_device(dataset), np.asarray(indices)))
