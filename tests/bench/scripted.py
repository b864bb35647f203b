"""A scripted benchmark runner: the quality of its predictor after each epoch is set by hand."""

from __future__ import annotations

import numpy as np

from zslkit.bench.runner import Fit

#: 60 classes: the test problem has 44 seen and 16 unseen classes, the validation view 35 and 9
DATA = dict(num_classes=60, images_per_class=6, channels=4, grid=3, embedding_dim=4)


class ScriptedRunner:
    """A :class:`~zslkit.bench.runner.Runner` whose predictor after epoch ``e`` of setting ``a`` has quality
    ``table[a][e - 1]`` (tenths): that fraction of the classes of each domain (seen, unseen) is
    recognised, the others are mistaken for another class of the same domain.

    ``val`` is the quality on the validation view, ``test`` on trainval/test; ``seen_bias`` (per
    split, ``"val"`` or ``"test"``) is added to every seen-class score, which moves the interval of
    calibration gammas that keep every prediction from ``[-1, 1)`` to ``[bias - 1, bias + 1)``.
    Every fit and every scoring is recorded.
    """

    kind = "method"

    def __init__(self, val: dict[str, list[int]], test: dict[str, list[int]], prefixes: bool = True,
                 seen_bias: dict[str, float] | None = None):
        self.val, self.test, self.epochs_are_prefixes = val, test, prefixes
        self.seen_bias = seen_bias or {}
        self.fits: list[tuple[str, str, int | None, bool]] = []  # (split, setting, epochs, evaluated per epoch)
        self.scored: list[tuple[str, str, int]] = []

    def candidates(self):
        return [{"a": name} for name in self.val]

    def fit(self, dataset, params, seed, *, epochs=None, on_epoch=None):
        split = "test" if dataset.name == "synthetic" else "val"
        self.fits.append((split, params["a"], epochs, on_epoch is not None))
        history = []
        for epoch in range(1, (epochs or len(self.test[params["a"]])) + 1):
            entry = {"epoch": epoch, "loss": 1.0 / epoch}
            if on_epoch is not None:
                entry.update(on_epoch(epoch, (split, params["a"], epoch)) or {})
            history.append(entry)
        return Fit((split, params["a"], epoch), history)

    def scores(self, predictor, dataset, indices):
        split, setting, epoch = predictor
        self.scored.append(predictor)
        quality = (self.val if split == "val" else self.test)[setting][epoch - 1]
        labels = dataset.labels[indices]
        scores = np.zeros((len(indices), len(dataset.class_attributes)))
        for domain in (np.sort(dataset.seen_classes), np.sort(dataset.unseen_classes)):
            known = domain[: quality * len(domain) // 10]
            for row in np.flatnonzero(np.isin(labels, domain)):
                c = labels[row]
                scores[row, c if c in known else domain[(np.searchsorted(domain, c) + 1) % len(domain)]] = 1.0
        scores[:, dataset.seen_classes] += self.seen_bias.get(split, 0.0)
        return scores


def expected_h(dataset, quality: int) -> float:
    """The harmonic mean of U and S on test when ``quality`` tenths of each domain's classes are recognised
    (any calibration gamma in (-1, 1) keeps every prediction: best and chosen gamma alike)."""
    u = (quality * len(dataset.unseen_classes) // 10) / len(dataset.unseen_classes)
    s = (quality * len(dataset.seen_classes) // 10) / len(dataset.seen_classes)
    return 2 * u * s / (u + s)
