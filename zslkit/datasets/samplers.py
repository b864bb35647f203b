"""Registered batch samplers (registry kind ``sampler``).

A sampler factory is called with its options and returns a callable
``sampler(indices, labels, batch_size, rng)`` that yields one epoch of batches: arrays
of image indices drawn from ``indices`` (``labels``: the labels of *all* images,
indexed by image; ``rng``: a :class:`numpy.random.Generator`, the trainer's, seeded by
``TrainConfig.seed``). The trainer uses one when ``TrainConfig.sampler`` names it, with
``TrainConfig.sampler_options`` as its options.

Built in: ``shuffle`` (a fresh permutation every epoch), ``random`` (every batch drawn
independently without replacement: the authors' loaders of DAZLE, MSDN and TransZero),
``class_balanced`` (every batch draws distinct classes, then images of each: their SUN
loaders) and ``episodic`` (n-way k-shot batches: GEM-ZSL's).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from zslkit.registry import register

__all__ = ["ClassBalancedSampler", "EpisodicSampler", "RandomSampler", "ShuffleSampler", "steps_per_epoch"]


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """``ceil(num_images / batch_size)``: the batches of an epoch of ``shuffle``, ``random`` and ``class_balanced``."""
    return -(-num_images // batch_size)


@register("sampler", "shuffle")
class ShuffleSampler:
    """A permutation of the split cut into batches of ``batch_size`` (the last one may be smaller)."""

    def __repr__(self) -> str:
        return "ShuffleSampler()"

    def __call__(self, indices, labels, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(np.asarray(indices, dtype=np.int64))
        for step in range(steps_per_epoch(len(order), batch_size)):
            yield order[step * batch_size : (step + 1) * batch_size]


@register("sampler", "random")
class RandomSampler:
    """``ceil(N / batch_size)`` batches, each ``batch_size`` images drawn without replacement, independently."""

    def __repr__(self) -> str:
        return "RandomSampler()"

    def __call__(self, indices, labels, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        for _ in range(steps_per_epoch(len(indices), batch_size)):
            yield rng.choice(indices, size=min(batch_size, len(indices)), replace=False)


@register("sampler", "class_balanced")
class ClassBalancedSampler:
    """``ceil(N / batch_size)`` batches, each of distinct classes with the same number of images of each.

    Every batch draws ``min(#classes, batch_size // images_per_class)`` distinct classes of the
    split uniformly, then ``images_per_class`` images of each uniformly *with* replacement
    (the authors' SUN loaders). ``images_per_class`` defaults to ``max(batch_size // #classes, 1)``:
    one image of each of ``batch_size`` classes when the split has more classes than that.
    """

    def __init__(self, images_per_class: int | None = None) -> None:
        if images_per_class is not None and (not isinstance(images_per_class, int) or isinstance(images_per_class, bool)
                                             or images_per_class < 1):
            raise ValueError(f"class_balanced sampler: images_per_class must be a positive integer or None, "
                             f"got {images_per_class!r}")
        self.images_per_class = images_per_class

    def __repr__(self) -> str:
        return f"ClassBalancedSampler(images_per_class={self.images_per_class})"

    def __call__(self, indices, labels, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        split_labels = np.asarray(labels)[indices]
        classes = np.unique(split_labels)
        members = {c: indices[split_labels == c] for c in classes.tolist()}
        if self.images_per_class is None:
            per_class, ways = max(batch_size // len(classes), 1), min(len(classes), batch_size)
        else:
            per_class = self.images_per_class
            ways = min(len(classes), max(batch_size // per_class, 1))
        for _ in range(steps_per_epoch(len(indices), batch_size)):
            chosen = rng.choice(classes, size=ways, replace=False)
            yield np.concatenate([rng.choice(members[c], size=per_class) for c in chosen.tolist()])


@register("sampler", "episodic")
class EpisodicSampler:
    """n-way k-shot batches, as GEM-ZSL (and APN's ``--train_mode distributed``) train.

    Every batch draws ``ways`` distinct classes of the split uniformly, then ``shots``
    distinct images of each, all without replacement, and lists them class by class
    (``ways * shots`` images; ``batch_size`` is not used). Batches are drawn
    independently, so an epoch is not a pass over the images: it has ``batches``
    batches, by default ``ceil(N / (ways * shots))`` for a split of ``N`` images (about
    as many images as one pass; GEM-ZSL's configs set 300). A class with fewer than
    ``shots`` images of the split cannot fill its share: that is an error naming it.

    Args:
        ways: classes per batch (GEM-ZSL's CUB config: 4; APN's CUB script: 8).
        shots: images per class (GEM-ZSL: 2; APN: 3).
        batches: batches per epoch, or ``None`` for the default above.
    """

    def __init__(self, ways: int, shots: int, batches: int | None = None) -> None:
        for name, value in (("ways", ways), ("shots", shots)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"episodic sampler: {name} must be a positive integer, got {value!r}")
        if batches is not None and (not isinstance(batches, int) or isinstance(batches, bool) or batches < 1):
            raise ValueError(f"episodic sampler: batches must be a positive integer or None, got {batches!r}")
        self.ways, self.shots, self.batches = ways, shots, batches

    def __repr__(self) -> str:
        return f"EpisodicSampler(ways={self.ways}, shots={self.shots}, batches={self.batches})"

    def num_batches(self, num_images: int) -> int:
        """Batches per epoch for a split of ``num_images`` images."""
        return self.batches if self.batches is not None else -(-num_images // (self.ways * self.shots))

    def __call__(self, indices, labels, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        split_labels = np.asarray(labels)[indices]
        classes, counts = np.unique(split_labels, return_counts=True)
        if self.ways > len(classes):
            raise ValueError(f"episodic sampler: ways={self.ways} but the split has {len(classes)} classes; lower ways")
        if counts.min() < self.shots:
            small = int(np.argmin(counts))
            raise ValueError(f"episodic sampler: class {int(classes[small])} has {int(counts[small])} images in the split, "
                             f"fewer than shots={self.shots}; lower shots")
        members = [indices[split_labels == c] for c in classes]
        for _ in range(self.num_batches(len(indices))):
            chosen = rng.choice(len(classes), size=self.ways, replace=False)
            yield np.concatenate([rng.choice(members[c], size=self.shots, replace=False) for c in chosen.tolist()])
