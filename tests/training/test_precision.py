"""bf16 autocast training keeps the metrics of float32 training (within noise)."""

import importlib

import pytest
import torch

import zslkit.ops as ops
from zslkit.bench import evaluate_scores
from zslkit.datasets import make_synthetic
from zslkit.training import TrainConfig, load_config, predict_scores, train

# the module (``zslkit.ops.attribute_attention`` as an attribute is the public function of that name)
attention_module = importlib.import_module("zslkit.ops.attribute_attention")


@pytest.fixture(scope="module")
def small():
    return make_synthetic(num_classes=40, images_per_class=20, seed=0, variant="parts")  # the numbers in docs/performance.md


def fit_and_score(data, precision):
    cfg = load_config("msdn/synthetic")
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs": 8, "precision": precision, "num_threads": 1})
    model = train(data, "msdn", cfg, progress=False).model
    return evaluate_scores(
        data,
        predict_scores(model, data, data.splits["test_seen"]),
        predict_scores(model, data, data.splits["test_unseen"]),
    )


def test_bf16_forward_really_runs_in_bf16_and_matches_fp32_metrics(small, monkeypatch):
    """The attention op's matrix product is observed where it runs: the dtypes of its operands and result.

    A float32 cast of the inputs (or autocast left off around the op) would make the bf16
    run's training products float32 and fail this test.
    """
    # (training?, features, query, value, product) for every attention matrix product; a product
    # outside any forward call (backward recomputing the projections) counts as training
    dtypes = set()
    training = []
    outer, inner = ops.fused_attribute_attention, attention_module.stacked_projections

    def entry(*args, **kwargs):  # grad mode as the model sees it (inside the op autograd turns it off)
        training.append(torch.is_grad_enabled())
        try:
            return outer(*args, **kwargs)
        finally:
            training.pop()

    def product(features, query, value):
        projections = inner(features, query, value)
        dtypes.add((training[-1] if training else True, features.dtype, query.dtype, value.dtype, projections.dtype))
        return projections

    monkeypatch.setattr(ops, "fused_attribute_attention", entry)
    monkeypatch.setattr(attention_module, "stacked_projections", product)
    fp32 = fit_and_score(small, "fp32")
    assert {d[1:] for d in dtypes} == {(torch.float32,) * 4}
    dtypes.clear()
    bf16 = fit_and_score(small, "bf16")
    # every training product: bf16 operands, bf16 result (evaluation runs outside autocast)
    assert {d[1:] for d in dtypes if d[0]} == {(torch.bfloat16,) * 4}, dtypes
    for key in ("T1", "H"):
        assert abs(bf16[key] - fp32[key]) < 0.05, (key, fp32, bf16)
    assert fp32["H"] > 0.5  # the comparison is between two working models


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
