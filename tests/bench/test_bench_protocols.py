"""The protocols: what they select, and that `validation` reads no test label before its final evaluation."""

import numpy as np
import pytest

from zslkit.bench import protocols
from zslkit.bench.case import BenchmarkCase
from zslkit.bench.evaluate import evaluate
from zslkit.bench.runner import Fit
from zslkit.datasets import DatasetError


class GuardedLabels(np.ndarray):
    """A labels array that logs every indexed read touching a test image, with the phase it happened in."""

    def __new__(cls, labels, test_indices, state):
        obj = np.asarray(labels).view(cls)
        obj._test, obj._state = set(np.asarray(test_indices).tolist()), state
        return obj

    def __array_finalize__(self, obj):
        self._test = getattr(obj, "_test", set())
        self._state = getattr(obj, "_state", None)

    def __getitem__(self, key):
        touched = np.atleast_1d(np.arange(len(self))[key]).tolist()
        if self._state is not None and self._test.intersection(touched):
            self._state["reads"].append("final" if self._state["final"] else "before final")
        return np.asarray(super().__getitem__(key))


def guard(dataset, monkeypatch=None):
    """Install the guard; with ``monkeypatch``, the protocol's final evaluation flips the phase to 'final'."""
    state = {"final": False, "reads": []}
    test = np.concatenate([dataset.splits["test_seen"], dataset.splits["test_unseen"]])
    dataset.labels = GuardedLabels(dataset.labels, test, state)
    if monkeypatch is not None:
        original = protocols.evaluate_test

        def final(*args, **kwargs):
            state["final"] = True
            return original(*args, **kwargs)

        monkeypatch.setattr(protocols, "evaluate_test", final)
    return state


@pytest.mark.parametrize("case", [
    BenchmarkCase("eszsl", "eszsl", param_grid={"gamma": [0.1, 10.0], "lambda_": [1.0]}),
    BenchmarkCase("ale", "ale", options={"epochs": 3}, param_grid={"lr": [0.01, 0.1]}),
])
def test_validation_reads_test_labels_only_in_the_final_evaluation(case, small_dataset, monkeypatch):
    state = guard(small_dataset, monkeypatch)
    outcome = protocols.validation_protocol.run(case.runner(), small_dataset, 0, False)
    assert "before final" not in state["reads"]
    assert "final" in state["reads"]  # the guard does see reads: the final evaluation made some
    assert 0.0 <= outcome["metrics"]["H"] <= 1.0


def test_the_guard_sees_the_paper_protocol_read_test_labels_every_epoch(small_dataset):
    state = guard(small_dataset)
    protocols.paper_protocol.run(BenchmarkCase("ale", "ale", options={"epochs": 3}).runner(), small_dataset, 0, False)
    assert len(state["reads"]) >= 3 and set(state["reads"]) == {"before final"}


class StubRunner:
    """Scores are right for a share of images that depends on (params, epoch): ``quality[p][epoch - 1]``."""

    kind = "method"

    def __init__(self, quality, seen_bias, tune=True):
        self.quality, self.seen_bias, self.tune, self.fits = quality, seen_bias, tune, []

    def candidates(self):
        return [{"p": p} for p in self.quality] if self.tune else [{}]

    def fit(self, dataset, params, seed, *, epochs=None, on_epoch=None):
        p = params.get("p", next(iter(self.quality)))
        self.fits.append((dataset.name, p, epochs))
        last = epochs or len(self.quality[p])
        for epoch in range(1, last + 1):
            if on_epoch is not None:
                on_epoch(epoch, (p, epoch))
        return Fit((p, last))

    def scores(self, predictor, dataset, indices):
        p, epoch = predictor
        rng = np.random.default_rng(len(indices))
        scores = rng.normal(size=(len(indices), dataset.num_classes))
        right = rng.random(len(indices)) < self.quality[p][epoch - 1]
        scores[right, dataset.labels[indices][right]] += 10.0
        scores[:, dataset.seen_classes] += self.seen_bias
        return scores


def test_validation_selects_params_and_epoch_by_validation_h_and_refits_that_long(small_dataset):
    runner = StubRunner({"a": [0.2, 0.5, 0.3], "b": [0.4, 0.6, 0.95, 0.7]}, seen_bias=3.0)
    outcome = protocols.validation_protocol.run(runner, small_dataset, 0, False)
    assert outcome["selected"]["params"] == {"p": "b"} and outcome["selected"]["epoch"] == 3
    assert runner.fits[-1] == ("synthetic", "b", 3)  # refit on the full dataset, stopped at the chosen epoch
    assert all(name == "synthetic/validation" for name, _, _ in runner.fits[:-1])
    # the calibration is the one that was best on validation, applied unchanged on test
    view = small_dataset.validation_view()
    idx = np.concatenate([view.splits["test_seen"], view.splits["test_unseen"]])
    val = evaluate(runner.scores(("b", 3), view, idx), view.labels[idx], view.seen_classes, view.unseen_classes)
    assert outcome["gamma"] == pytest.approx(val.gamma)
    assert outcome["gamma"] > 0  # the seen bias had to be removed
    assert outcome["selected"]["validation"]["H"] == pytest.approx(val.H)


def test_paper_reports_best_h_and_best_t1_over_epochs_on_test(small_dataset):
    runner = StubRunner({"only": [0.3, 0.9, 0.5]}, seen_bias=0.0, tune=False)
    outcome = protocols.paper_protocol.run(runner, small_dataset, 0, False)
    per_epoch = outcome["epochs"]
    assert [e["epoch"] for e in per_epoch] == [1, 2, 3]
    assert outcome["metrics"]["H"] == max(e["test_H"] for e in per_epoch)
    assert outcome["metrics"]["T1"] == max(e["test_T1"] for e in per_epoch)
    assert outcome["selected"]["epoch_H"] == 2
    assert runner.fits == [("synthetic", "only", None)]  # one run, on the full dataset


def test_validation_without_a_validation_split_says_what_to_do(small_dataset):
    del small_dataset.splits["train"], small_dataset.splits["val"]
    with pytest.raises(DatasetError, match="protocol 'validation' needs a train/val split.*--protocol paper"):
        protocols.validation_protocol.run(BenchmarkCase("sae", "sae").runner(), small_dataset, 0, False)


def test_unknown_protocol_suggests_the_closest():
    with pytest.raises(KeyError, match="did you mean 'paper'"):
        protocols.get_protocol("papers")
