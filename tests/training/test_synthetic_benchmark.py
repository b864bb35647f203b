"""On the built-in synthetic dataset (made so that localized attention wins), MSDN and DAZLE beat ESZSL."""

import numpy as np
import pytest

import zslkit
from zslkit.bench import evaluate_scores
from zslkit.training import evaluate, load_config, train


def eszsl_metrics(dataset):
    X = dataset.pooled_features()
    tv = dataset.splits["trainval"]
    X = (X - X[tv].mean(0)) / (X[tv].std(0) + 1e-8)
    method = zslkit.create("method", "eszsl").fit(X[tv], dataset.labels[tv], dataset.class_attributes, dataset.seen_classes)
    return evaluate_scores(
        dataset,
        method.decision_function(X[dataset.splits["test_seen"]]),
        method.decision_function(X[dataset.splits["test_unseen"]]),
    )


@pytest.fixture(scope="module")
def half_synthetic():
    dataset = zslkit.load_dataset("synthetic", images_per_class=20)
    return dataset, eszsl_metrics(dataset)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["msdn", "dazle"])
def test_attention_beats_eszsl_on_synthetic(model, half_synthetic):
    dataset, baseline = half_synthetic
    ours = evaluate(train(dataset, model, load_config("msdn/synthetic", epochs=5), progress=False).model, dataset)
    assert np.isfinite(list(ours.values())).all()
    assert ours["T1"] > baseline["T1"] + 0.2, (ours, baseline)
    assert ours["H"] > baseline["H"] + 0.2, (ours, baseline)
