"""Deep models in the harness, through zslkit.training."""

import numpy as np
import pytest

import zslkit.training as training
from zslkit.bench import protocols
from zslkit.bench.case import BenchmarkCase


@pytest.fixture
def recorded_train(monkeypatch):
    """Record (dataset name, epochs, seed) of every training run."""
    calls = []
    real = training.train

    def train(dataset, model="msdn", config=None, **kwargs):
        calls.append((dataset.name, config.epochs, kwargs.get("seed")))
        return real(dataset, model, config, **kwargs)

    monkeypatch.setattr(training, "train", train)
    return calls


def msdn_case():
    return BenchmarkCase("msdn", "msdn", kind="model", train_config={"epochs": 2})


def test_validation_picks_the_epoch_on_the_view_and_retrains_that_long(small_dataset, recorded_train):
    outcome = protocols.validation_protocol.run(msdn_case().runner(), small_dataset, 3, False)
    (view_name, view_epochs, seed), (final_name, final_epochs, final_seed) = recorded_train
    assert (view_name, view_epochs, seed) == ("synthetic/validation", 2, 3)
    assert final_name == "synthetic" and final_epochs == outcome["selected"]["epoch"] in (1, 2) and final_seed == 3
    assert [e["epoch"] for e in outcome["epochs"]] == [1, 2] and all(0 <= e["val_H"] <= 1 for e in outcome["epochs"])
    assert all(0.0 <= v <= 1.0 for v in outcome["metrics"].values())
    assert outcome["train_history"], "the trainer's per-epoch history is kept for the training-curve plot"


def test_scores_cover_every_class_and_paper_logs_test_metrics_each_epoch(small_dataset):
    runner = msdn_case().runner()
    fit = runner.fit(small_dataset, {}, 0, epochs=1)
    idx = small_dataset.splits["test_unseen"][:5]
    assert runner.scores(fit.predictor, small_dataset, idx).shape == (5, small_dataset.num_classes)
    outcome = protocols.paper_protocol.run(runner, small_dataset, 0, False)
    assert [e["epoch"] for e in outcome["epochs"]] == [1, 2]
    assert outcome["metrics"]["H"] == pytest.approx(max(e["test_H"] for e in outcome["epochs"]))
    assert np.isfinite(outcome["gamma"])


def test_resident_features_are_read_once_and_change_no_score(small_dataset):
    from zslkit.datasets import ResidentFeatures

    streamed = BenchmarkCase("msdn", "msdn", kind="model", train_config={"epochs": 1, "resident": "off"}).runner()
    held = BenchmarkCase("msdn", "msdn", kind="model", train_config={"epochs": 1, "resident": "on"}).runner()
    assert streamed.on_device(small_dataset) is small_dataset
    idx = small_dataset.splits["test_unseen"][:9]
    expected = streamed.scores(streamed.fit(small_dataset, {}, 0).predictor, small_dataset, idx)
    got = held.scores(held.fit(small_dataset, {}, 0).predictor, small_dataset, idx)
    np.testing.assert_array_equal(got, expected)
    source, rows = held._held
    assert source is small_dataset.features and isinstance(rows, ResidentFeatures)
    assert len(rows.images) == len(small_dataset.labels)  # every image: views, seeds and evaluations share it
    view = small_dataset.validation_view()
    assert held.on_device(view).features is rows  # the view shares the source, so the rows are reused
