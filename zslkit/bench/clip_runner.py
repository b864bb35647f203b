"""Runs the CLIP rows: a method fitted on what a CLIP model makes of the images and of the class semantics.

:class:`ClipRunner` is a :class:`~zslkit.bench.method_runner.MethodRunner` whose inputs come from a
CLIP model (:func:`zslkit.clip.load_clip`, weights from a local file) instead of pooled features:

* ``semantics="names"``: the inputs are the images' unit CLIP embeddings ``(N, D)`` and the class
  semantics the text embeddings of the class-name prompts ``(K, D)`` (``clip_names``, ``clip_linear``);
* ``semantics="attributes"``: the inputs are each image's cosine with each attribute's prompt
  ``(N, I)`` and the class semantics the dataset's class-attribute matrix (``clip_attributes``:
  class names are never used).

Prompts come from the dataset's class and attribute names (:mod:`zslkit.clip.prompts`); ``ensemble``
averages every template of the dataset's set. The images are the dataset's pictures (an image dataset,
``synthetic_images``, whose metadata says how its pixels were normalised), or, on real data, the rows of a
feature store written by ``zslkit extract --clip MODEL`` (the ``clip_image`` backbone) with the same model.

With real weights a CLIP row names its pretraining (``pretraining``: web-scale), so the bench's leak-free
columns say "leakage unknown (web-scale)" for it; with random weights it states a ``caveat`` (a plumbing
check, not a measurement), which marks its rows and goes into the caption.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from zslkit.bench.method_runner import MethodRunner
from zslkit.datasets import ZSLDataset

__all__ = ["CLIP_SEMANTICS", "ClipRunner", "clip_pretraining"]

#: The class semantics a CLIP row can read.
CLIP_SEMANTICS: tuple[str, ...] = ("names", "attributes")
_RANDOM = "random-init CLIP: a plumbing check, not a measurement"
_log = logging.getLogger("zslkit.bench")


def clip_pretraining(model: dict[str, Any]) -> str | None:
    """The pretraining a CLIP row names for the bench's leak-free columns (:func:`zslkit.bench.leakage.for_runner`):
    ``clip_<model>``, web-scale (leakage unknown), for real weights; ``None`` for a random init, which saw nothing."""
    return None if model.get("random_init") else f"clip_{model['model']}".replace(".", "_")


def _identity(described: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two CLIP models the same: the name, and the weights' SHA-256 (or the random-init seed)."""
    random = bool(described.get("random_init"))
    return (described.get("model"), described.get("seed") if random else described.get("weights_sha256"))


class ClipRunner(MethodRunner):
    """Fit ``component`` (a registered method) on a CLIP model's view of the images and classes.

    Args:
        component: the registered method; options: its fixed options; param_grid: as :class:`MethodRunner`.
        semantics: ``"names"`` or ``"attributes"`` (see the module docstring).
        ensemble: average the prompts of every template of the dataset's set (default: the first alone).
        model: ``{"model": NAME, "weights": PATH}`` or ``{"model": NAME, "random_init": True}``
            (:func:`zslkit.clip.load_clip`'s arguments); ``None`` refuses to run, saying what to give.
    """

    def __init__(self, component: str, options: dict[str, Any] | None = None, param_grid: Any = None, *,
                 semantics: str = "names", ensemble: bool = False, model: dict[str, Any] | None = None):
        super().__init__(component, options, param_grid)
        if semantics not in CLIP_SEMANTICS:
            raise ValueError(f"CLIP row {component!r}: semantics must be one of {CLIP_SEMANTICS}, got {semantics!r}")
        wants = getattr(self.factory, "clip_semantics", semantics)
        if wants != semantics:
            raise ValueError(f"CLIP row {component!r} reads semantics {wants!r}, not {semantics!r}")
        self.semantics_kind, self.ensemble = semantics, bool(ensemble)
        self.model = None if model is None else dict(model)
        #: read by the harness: the leak-free columns say "leakage unknown (web-scale)" for real weights
        self.pretraining = None if model is None else clip_pretraining(model)
        #: read by the harness: rows marked, the caption says why
        self.caveat = _RANDOM if model is not None and model.get("random_init") else None
        self._encoder = None
        self._images: dict[int, tuple[Any, np.ndarray]] = {}
        self._texts: dict[tuple[str, str, tuple[str, ...]], np.ndarray] = {}

    def encoder(self):
        """The CLIP model, built on first use."""
        if self._encoder is None:
            if self.model is None:
                raise ValueError(f"CLIP row {self.component!r} needs a CLIP model: zslkit bench --clip MODEL "
                                 "--clip-weights PATH (or --clip zslkit-tiny --clip-random-init for a plumbing check)")
            from zslkit.clip import load_clip

            self._encoder = load_clip(**self.model)
            if self.model.get("random_init"):
                _log.warning("CLIP rows run a random-init %s: a plumbing check, not a measurement", self.model["model"])
        return self._encoder

    def image_embeddings(self, dataset: ZSLDataset) -> np.ndarray:
        """``(N, D)`` unit CLIP embeddings of every image (computed once per image array; views share it):
        the dataset's pictures through the image tower, or the rows of a store ``zslkit extract --clip`` wrote
        with the same CLIP model."""
        cached = self._images.get(id(dataset.features))
        if cached is None or cached[0] is not dataset.features:
            made = self._from_images(dataset) if dataset.metadata.get("form") == "images" else self._from_store(dataset)
            cached = (dataset.features, made)
            self._images[id(dataset.features)] = cached
        return cached[1]

    def _from_images(self, dataset: ZSLDataset) -> np.ndarray:
        from zslkit.clip import image_embeddings

        pixels = dataset.metadata.get("pixels")
        if not isinstance(pixels, dict) or not {"mean", "std"} <= set(pixels):
            raise ValueError(f"dataset {dataset.name!r} holds images but its metadata lacks 'pixels' "
                             "({'mean': m, 'std': s}: how they were normalised), which CLIP needs to undo")
        return image_embeddings(self.encoder(), dataset.features, pixels)

    def _from_store(self, dataset: ZSLDataset) -> np.ndarray:
        stored = getattr(dataset.features, "metadata", None)
        backbone = stored.get("backbone") if isinstance(stored, dict) else None
        if not isinstance(backbone, dict) or backbone.get("name") != "clip_image":
            raise ValueError(f"CLIP row {self.component!r} reads CLIP image embeddings, but dataset {dataset.name!r} holds "
                             "other features; give features=STORE written by zslkit extract --clip MODEL (or an image "
                             "dataset such as synthetic_images)")
        ours = self.encoder().describe()
        if _identity(backbone) != _identity(ours):
            raise ValueError(f"dataset {dataset.name!r}: its CLIP embeddings come from {_identity(backbone)}, not from the "
                             f"run's CLIP model {_identity(ours)}; give the same --clip and --clip-weights as the extraction")
        store = dataset.features  # its rows, not the dataset's global features (res101 on xlsa17)
        if tuple(store.shape[2:]) != (1, 1):
            raise ValueError(f"dataset {dataset.name!r}: a CLIP embedding store holds (N, D, 1, 1) rows, found {tuple(store.shape)}")
        rows = np.concatenate([np.asarray(store[i:i + 1024], dtype=np.float64).reshape(-1, store.shape[1])
                               for i in range(0, len(store), 1024)])
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def _prompts(self, dataset: ZSLDataset, what: str) -> np.ndarray:
        from zslkit.clip import attribute_prompts, class_prompts, prompt_embeddings

        names = tuple(dataset.class_names if what == "class" else dataset.attribute_names)
        key = (what, dataset.name, names)
        if key not in self._texts:
            make = class_prompts if what == "class" else attribute_prompts
            self._texts[key] = prompt_embeddings(self.encoder(), make(names, dataset.name, self.ensemble))
        return self._texts[key]

    def inputs(self, dataset: ZSLDataset) -> np.ndarray:
        images = self.image_embeddings(dataset)
        return images if self.semantics_kind == "names" else images @ self._prompts(dataset, "attribute").T

    def semantics(self, dataset: ZSLDataset) -> np.ndarray:
        return self._prompts(dataset, "class") if self.semantics_kind == "names" else dataset.class_attributes
