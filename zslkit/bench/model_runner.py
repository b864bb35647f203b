"""Runs a deep model (kind ``model``) through :mod:`zslkit.training`, imported only when used."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from zslkit.bench.runner import Fit, OnEpoch, expand_grid
from zslkit.contracts import ZSLModel, owns_backbone
from zslkit.datasets import ResidentFeatures, ZSLDataset

__all__ = ["ModelRunner"]


def _training():
    try:
        from zslkit import training
    except ImportError as exc:  # pragma: no cover - present once the trainer is installed
        raise RuntimeError(f"deep models need zslkit.training, which failed to import: {exc}") from exc
    return training


class ModelRunner:
    """Train ``component`` (a registered model) with ``options`` plus the tuned ``params``.

    ``threads``: CPU threads of the trainings (``None``: the machine's choice, :mod:`zslkit.threads`).
    ``train_config`` is a ``TrainConfig``, a packaged recipe name or YAML path,
    a dict of fields that override the model's recipe for the dataset (e.g.
    ``{"epochs": 5}`` on top of ``configs/msdn/synthetic.yaml``), or ``None`` for that
    recipe (:func:`zslkit.training.recipes.recipe_for`: never another model's). The final run of the validation protocol stops at the chosen epoch
    by overriding ``epochs``. The class space comes from the dataset passed in,
    so the validation view trains with the validation classes as unseen.

    When the config's ``resident`` allows it (``auto`` on a GPU with room, or ``on``),
    the features of every image are read once onto the training device and shared by
    all its fits and scorings (the validation view, every seed, every epoch's
    evaluation) instead of being read from the file each time.

    ``backbone``: options of the ``timm`` backbone (``{"model_name": "resnet10t", "random_init": True,
    ...}``, :class:`~zslkit.backbones.timm_backbone.TimmBackbone`) to train each model through,
    end to end, on a dataset whose ``features`` are images (``synthetic_images``); built afresh for
    every fit, its random initialisation seeded by the fit's seed. ``None``: the models read the
    dataset's feature maps. A model that owns its backbone (``image_reader``: a
    :class:`~zslkit.models.TokenAttentionModel`) reads the images through its own, whatever ``backbone`` says.
    """

    kind = "model"
    #: a training stopped at epoch ``e`` equals the first ``e`` epochs of a longer one (the trainer has no
    #: schedule that depends on ``epochs``); tests/bench/test_bench_sharing.py checks it
    epochs_are_prefixes = True

    def __init__(self, component: str, options: dict[str, Any] | None = None, param_grid: Any = None,
                 train_config: Any = None, progress: bool = False, backbone: dict[str, Any] | None = None,
                 threads: int | None = None):
        self.component = component
        self.options = dict(options or {})
        self.param_grid = param_grid
        self.train_config = train_config
        self.progress = progress
        self.backbone = None if backbone is None else dict(backbone)
        self.threads = threads
        self._held: tuple[Any, ResidentFeatures] | None = None  # (source, its rows on the device)
        self._recipes: dict[str, Any] = {}  # dataset name -> its recipe, derived once

    def candidates(self) -> list[dict[str, Any]]:
        return expand_grid(self.param_grid)

    def recipe(self, dataset: ZSLDataset | str):
        """The :class:`~zslkit.training.recipes.Recipe` for ``dataset`` (or a dataset name), with the case's overrides.

        Derived once per dataset name and remembered (a fresh runner reads the recipe files again).
        """
        name = dataset if isinstance(dataset, str) else dataset.name
        if name not in self._recipes:
            training = _training()
            given = None if isinstance(self.train_config, dict) else self.train_config
            recipe = training.choose_recipe(self.component, name, given)[1]
            if isinstance(self.train_config, dict):
                recipe = recipe.with_config(training.load_config(recipe.config, **self.train_config))
            self._recipes[name] = recipe
        return self._recipes[name]

    def config(self, dataset: ZSLDataset, epochs: int | None = None):
        """The ``TrainConfig`` for ``dataset``, with the case's overrides, ``epochs`` when given and the
        runner's ``threads`` (a machine setting: not part of the recipe, nor of the cache key)."""
        config = self.recipe(dataset).config
        # the harness logs each cell once it is done (zslkit.bench.tracking), not each of its trainings
        changes = {"epochs": epochs, "num_threads": self.threads, "loggers": [] if config.loggers else None}
        changes = {k: v for k, v in changes.items() if v is not None}
        return _training().load_config(config, **changes) if changes else config

    def on_device(self, dataset: ZSLDataset) -> ZSLDataset:
        """``dataset`` with its features held on the training device when the config's ``resident`` says so
        (:func:`zslkit.training.residency.hold_features`, the trainer's decision)."""
        features = dataset.features
        if features is None or isinstance(features, ResidentFeatures):
            return dataset
        if self._held is None or self._held[0] is not features:
            from zslkit.training.residency import hold_features, training_device

            config = self.config(dataset)
            what = f"the {len(features)} images of dataset {dataset.name!r}"
            held = hold_features(features, None, training_device(config), config, what)
            if not isinstance(held, ResidentFeatures):
                return dataset
            self._held = (features, held)
        return dataclasses.replace(dataset, features=self._held[1])

    def fit(self, dataset: ZSLDataset, params: dict[str, Any], seed: int, *, epochs: int | None = None,
            on_epoch: OnEpoch | None = None) -> Fit:
        training = _training()
        dataset = self.on_device(dataset)
        ends = self._backbone_for(dataset, seed)
        result = training.train(
            dataset,
            self.component,
            self.config(dataset, epochs),
            split="trainval",
            seed=seed,
            on_epoch=on_epoch,
            progress=self.progress,
            **ends,
            **{**self.options, **params},
        )
        return Fit(result.model, [dict(h) for h in result.history])

    def _backbone_for(self, dataset: ZSLDataset, seed: int) -> dict[str, Any]:
        """``{"backbone": ..., "inputs": the images}`` for :func:`~zslkit.training.train`, or ``{}`` without one;
        refuses images without a backbone (unless the model owns one: ``image_reader``) and feature maps with one."""
        images = dataset.metadata.get("form") == "images"
        if images and owns_backbone(self.component):  # a TokenAttentionModel reads the images itself
            return {}  # --backbone is for the others
        if self.backbone is None:
            if images:
                raise ValueError(f"dataset {dataset.name!r} holds images, which model {self.component!r} reads through a "
                                 "backbone: give one (zslkit bench --backbone NAME --random-init, or backbone=)")
            return {}
        if not images:
            raise ValueError(f"a backbone reads images, but dataset {dataset.name!r} holds feature maps; "
                             "give an image dataset (e.g. synthetic_images) or no backbone")
        import torch

        import zslkit

        torch.manual_seed(seed)
        return {"backbone": zslkit.create("backbone", "timm", **self.backbone), "inputs": dataset.features}

    def scores(self, predictor: ZSLModel, dataset: ZSLDataset, indices: np.ndarray) -> np.ndarray:
        return np.asarray(_training().predict_scores(predictor, self.on_device(dataset), np.asarray(indices)))
