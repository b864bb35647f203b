"""Runs a non-deep method (kind ``method``) on globally pooled, standardised features."""

from __future__ import annotations

from typing import Any

import numpy as np

from zslkit.bench.runner import Fit, OnEpoch, expand_grid
from zslkit.datasets import ZSLDataset
from zslkit.registry import get_component
from zslkit.threads import single_threaded

__all__ = ["MethodRunner"]


class MethodRunner:
    """Fit ``component`` (a registered method) with ``options`` plus the tuned ``params``.

    Features are the datasets' pooled features, standardised with the mean and
    standard deviation of the images the method is fitted on (never of test
    images; unless the method's class attribute ``standardize`` is false). The pooled
    features of a dataset are computed once and shared with its validation view.
    :meth:`inputs` and :meth:`semantics` say what a method is fitted on (the CLIP runner,
    :class:`~zslkit.bench.clip_runner.ClipRunner`, gives others). Fitting and scoring run single-threaded (small matrices).
    """

    kind = "method"
    #: a fit stopped at epoch ``e`` equals the first ``e`` epochs of a longer one (constant step size, one
    #: permutation per epoch from the seed), so protocols may serve both from one training
    epochs_are_prefixes = True

    def __init__(self, component: str, options: dict[str, Any] | None = None, param_grid: Any = None):
        self.component = component
        self.factory = get_component("method", component)
        self.options = dict(options or {})
        self.param_grid = param_grid
        self._pooled: dict[int, tuple[Any, np.ndarray]] = {}

    def candidates(self) -> list[dict[str, Any]]:
        grid = self.param_grid if self.param_grid is not None else getattr(self.factory, "param_grid", {})
        return expand_grid(grid)

    def pooled(self, dataset: ZSLDataset) -> np.ndarray:
        """``(N, C)`` pooled features of every image (keyed by the feature array, so views share them)."""
        if dataset.metadata.get("form") == "images":
            raise ValueError(f"method {self.component!r} fits pooled features, but dataset {dataset.name!r} holds images; "
                             "run models through a backbone on it (--methods apn,gem_zsl,pooled --backbone ...)")
        source = dataset.global_features if dataset.global_features is not None else dataset.features
        cached = self._pooled.get(id(source))
        if cached is None or cached[0] is not source:
            cached = (source, dataset.pooled_features().astype(np.float64))
            self._pooled[id(source)] = cached
        return cached[1]

    def fit(self, dataset: ZSLDataset, params: dict[str, Any], seed: int, *, epochs: int | None = None,
            on_epoch: OnEpoch | None = None) -> Fit:
        estimator = self.factory(**{**self.options, **params})
        settable = estimator.get_params()
        if "seed" in settable:
            estimator.set_params(seed=seed)
        if epochs is not None:
            if "epochs" not in settable:
                raise ValueError(f"method {self.component!r} has no 'epochs' parameter to stop at epoch {epochs}")
            estimator.set_params(epochs=epochs)
        train = dataset.splits["trainval"]
        features = self.inputs(dataset)[train]
        mean, std = np.zeros(features.shape[1]), np.ones(features.shape[1])
        if getattr(self.factory, "standardize", True):
            mean, std = features.mean(axis=0), features.std(axis=0)
            std[std == 0] = 1.0
        args = ((features - mean) / std, dataset.labels[train], self.semantics(dataset), dataset.seen_classes)
        with single_threaded():
            if getattr(estimator, "iterative", False) and on_epoch is not None:
                estimator.fit(*args, on_epoch=lambda epoch, est: on_epoch(epoch, (est, mean, std)))
            else:
                estimator.fit(*args)
        return Fit((estimator, mean, std))

    def scores(self, predictor, dataset: ZSLDataset, indices: np.ndarray) -> np.ndarray:
        estimator, mean, std = predictor
        with single_threaded():
            return estimator.decision_function((self.inputs(dataset)[indices] - mean) / std)

    def inputs(self, dataset: ZSLDataset) -> np.ndarray:
        """``(N, d)``: what the method reads of every image (here: its pooled features)."""
        return self.pooled(dataset)

    def semantics(self, dataset: ZSLDataset) -> np.ndarray:
        """``(K, d')``: the class semantics the method is fitted with (here: the class attributes)."""
        return dataset.class_attributes
