"""The zero-shot CLIP rows as methods: fixed scorers, nothing learnt beyond the training images' statistics.

They follow the methods' conventions (``fit(X, y, class_attributes, seen_classes)``,
``decision_function(X) -> (N, K)``); what ``X`` and the class semantics are, the bench's
CLIP runner (:class:`~zslkit.bench.clip_runner.ClipRunner`) decides from the class attribute
``clip_semantics``:

* :class:`ClipNames` (``clip_names``): ``X`` the images' unit CLIP embeddings ``(N, D)``, the class
  semantics the unit text embeddings of the class-name prompts ``(K, D)``; the score is their cosine.
* :class:`ClipAttributes` (``clip_attributes``): ``X`` the cosine of each image with each attribute's
  prompt ``(N, I)``, standardised per attribute with the mean and std of the training images (the
  runner's standardisation, ``standardize = True``); the class semantics the dataset's class-attribute
  matrix ``(K, I)``. The score of class ``k`` is ``z(x) . a_k / |a_k|``: class names are never used.

``clip_linear`` is no class of its own: it is ESZSL (``eszsl``) fitted on the CLIP image embeddings
with the class-name text embeddings as class semantics (:func:`zslkit.bench.case.clip_cases`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from zslkit.methods.base import normalize_attributes
from zslkit.registry import register

__all__ = ["ClipAttributes", "ClipNames"]


class _FixedScorer(BaseEstimator):
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    iterative: ClassVar[bool] = False
    #: what the CLIP runner hands it: ``"names"`` (image embeddings, class-name embeddings) or
    #: ``"attributes"`` (image-attribute cosines, class-attribute matrix)
    clip_semantics: ClassVar[str] = ""
    #: whether the runner standardises ``X`` with the training images' mean and std
    standardize: ClassVar[bool] = False

    def fit(self, X, y, class_attributes, seen_classes):
        X = np.asarray(X, dtype=np.float64)
        semantics = np.asarray(class_attributes, dtype=np.float64)
        if X.ndim != 2 or semantics.ndim != 2 or X.shape[1] != semantics.shape[1]:
            raise ValueError(f"{type(self).__name__}: X (N, d) and class semantics (K, d) must share d; "
                             f"found {X.shape} and {semantics.shape}")
        self.class_embeddings_ = normalize_attributes(semantics, "l2")
        return self

    def predict(self, X) -> np.ndarray:
        return self.decision_function(X).argmax(axis=1)


@register("method", "clip_names")
class ClipNames(_FixedScorer):
    """``score(x, k) = cos(e(x), t_k)``: image embedding against the class-name prompt embedding."""

    clip_semantics = "names"

    def decision_function(self, X) -> np.ndarray:
        return normalize_attributes(np.asarray(X, dtype=np.float64), "l2") @ self.class_embeddings_.T


@register("method", "clip_attributes")
class ClipAttributes(_FixedScorer):
    """``score(x, k) = z(x) . a_k / |a_k|``, ``z``: standardised image-attribute prompt cosines."""

    clip_semantics = "attributes"
    standardize = True

    def decision_function(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.class_embeddings_.T
