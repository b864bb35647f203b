"""bf16 autocast training keeps the metrics of float32 training (within noise)."""

import pytest
import torch

import zslkit.ops as ops
from zslkit.bench import evaluate_scores
from zslkit.datasets import make_synthetic
from zslkit.training import TrainConfig, load_config, predict_scores, train


@pytest.fixture(scope="module")
def small():
    return make_synthetic(num_classes=40, images_per_class=20, seed=0, variant="parts")  # the numbers in docs/performance.md


def fit_and_score(data, precision):
    cfg = load_config("synthetic")
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs": 8, "precision": precision, "num_threads": 1})
    model = train(data, "msdn", cfg, progress=False).model
    return evaluate_scores(
        data,
        predict_scores(model, data, data.splits["test_seen"]),
        predict_scores(model, data, data.splits["test_unseen"]),
    )


def test_bf16_forward_really_runs_in_bf16_and_matches_fp32_metrics(small, monkeypatch):
    dtypes = set()
    original = ops.fused_attribute_attention

    def spy(features, query, value, *args, **kwargs):
        dtypes.add(features.dtype if not torch.is_autocast_enabled("cpu") else torch.get_autocast_dtype("cpu"))
        return original(features, query, value, *args, **kwargs)

    monkeypatch.setattr(ops, "fused_attribute_attention", spy)
    fp32 = fit_and_score(small, "fp32")
    assert dtypes == {torch.float32}
    dtypes.clear()
    bf16 = fit_and_score(small, "bf16")
    assert torch.bfloat16 in dtypes
    for key in ("T1", "H"):
        assert abs(bf16[key] - fp32[key]) < 0.05, (key, fp32, bf16)
    assert fp32["H"] > 0.5  # the comparison is between two working models


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
