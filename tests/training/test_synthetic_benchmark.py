"""The built-in synthetic dataset: in its ``parts`` variant (made so that only localized attention can tell
classes of a family apart) MSDN and DAZLE beat ESZSL by far; in the default ``fine-grained`` variant every
row of the demo table is plausible: the pooled-feature baselines work, attention still leads."""

import numpy as np
import pytest

import zslkit
from zslkit.bench import evaluate_scores, run_benchmark
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
    dataset = zslkit.load_dataset("synthetic", variant="parts", images_per_class=20)
    return dataset, eszsl_metrics(dataset)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["msdn", "dazle"])
def test_attention_beats_eszsl_on_synthetic(model, half_synthetic):
    dataset, baseline = half_synthetic
    ours = evaluate(train(dataset, model, load_config("msdn/synthetic", epochs=5), progress=False).model, dataset)
    assert np.isfinite(list(ours.values())).all()
    assert ours["T1"] > baseline["T1"] + 0.2, (ours, baseline)
    assert ours["H"] > baseline["H"] + 0.2, (ours, baseline)


BASELINES = ("eszsl", "sae", "ale", "devise", "sje", "latem")


@pytest.mark.slow
def test_every_row_of_the_demo_is_plausible_on_the_default_dataset():
    """``make demo``'s table (default dataset, validation protocol, seed 0): baselines with S >= 30% and T1
    far above chance (1/24 unseen classes), the attention models clearly ahead on H."""
    rows = {r["method"]: r for r in run_benchmark(["synthetic"], None, progress=False).rows()}
    assert set(BASELINES) | {"msdn", "dazle"} <= set(rows)
    for name in BASELINES:
        assert rows[name]["S"] >= 0.30, (name, rows[name])
        assert rows[name]["T1"] >= 0.40, (name, rows[name])  # chance: 1/24
    best_baseline = max(rows[name]["H"] for name in BASELINES)
    for name in ("msdn", "dazle"):
        assert rows[name]["H"] >= best_baseline + 0.15, (name, rows[name]["H"], best_baseline)
