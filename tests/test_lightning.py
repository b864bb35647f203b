"""``zslkit.lightning.ZSLModule``: one Lightning epoch on the CPU equals one epoch of ``zslkit.training.train``
(the same batches, the same losses, the same weights bit for bit), and its validation logs the ZSL metrics
``zslkit.training.evaluate`` gives; ``ZSLAccuracy`` is a ``torchmetrics.Metric`` whose states concatenate."""

from __future__ import annotations

import warnings

import pytest
import torch

import zslkit
from tests.bench.conftest import SMALL

lightning = pytest.importorskip("lightning")


def record_losses(monkeypatch, model_class):
    """Every call of the model's loss: the batch's labels and its loss values."""
    calls = []
    original = model_class.loss

    def loss(self, output, targets):
        losses = original(self, output, targets)
        calls.append((targets.clone(), {k: v.detach().clone() for k, v in losses.items()}))
        return losses

    monkeypatch.setattr(model_class, "loss", loss)
    return calls


@pytest.mark.parametrize("config", [
    {"epochs": 1},
    {"epochs": 1, "optimizer": "adamw", "lr": 1e-3, "schedule": "cosine", "schedule_options": {"warmup_epochs": 1}},
])
def test_one_lightning_epoch_equals_one_zslkit_epoch(config, monkeypatch):
    from zslkit.lightning import ZSLModule
    from zslkit.models.msdn import MSDN
    from zslkit.training import evaluate, train

    dataset = zslkit.load_dataset("synthetic", **SMALL)
    calls = record_losses(monkeypatch, MSDN)
    result = train(dataset, "msdn", config, progress=False)
    ours, theirs = list(calls), calls
    calls.clear()
    module = ZSLModule(dataset, "msdn", config)
    trainer = lightning.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on data loader workers
        trainer.fit(module)
    theirs = [call for call in theirs if call[0].numel()]  # the training steps (no loss in validation)
    assert len(theirs) == len(ours) > 1
    for (labels_a, losses_a), (labels_b, losses_b) in zip(ours, theirs):
        assert torch.equal(labels_a, labels_b)  # the same batches, in the same order
        assert losses_a.keys() == losses_b.keys()
        assert all(torch.equal(losses_a[k], losses_b[k]) for k in losses_a)
    mine, expected = module.net.state_dict(), result.model.state_dict()
    assert mine.keys() == expected.keys()
    differ = {k: float((mine[k].float() - expected[k].float()).abs().max()) for k in expected if not torch.equal(mine[k], expected[k])}
    assert not differ, differ
    assert module.history == [{k: v for k, v in result.history[0].items() if k != "wall_s"}]

    metrics = evaluate(result.model, dataset)
    for key in ("T1", "U", "S", "H", "AUSUC"):
        assert float(trainer.callback_metrics[f"val/{key}"]) == pytest.approx(metrics[key], rel=1e-6, abs=1e-7)


def test_zsl_accuracy_is_a_torchmetrics_metric_whose_states_concatenate():
    torchmetrics = pytest.importorskip("torchmetrics")
    from zslkit.metrics import ZSLAccuracy, evaluate

    torch.manual_seed(0)
    scores, labels = torch.randn(12, 6), torch.tensor([0, 1, 2, 3, 4, 5] * 2)
    metric = ZSLAccuracy([0, 1, 2, 3], [4, 5], calibration="best")
    assert isinstance(metric, torchmetrics.Metric)
    assert metric._reductions == {"scores": torchmetrics.utilities.dim_zero_cat, "labels": torchmetrics.utilities.dim_zero_cat}
    metric.update(scores[:5], labels[:5])
    metric.update(scores[5:], labels[5:])
    expected = evaluate(scores.numpy(), labels.numpy(), [0, 1, 2, 3], [4, 5], "best").metrics()
    assert metric.compute() == expected
    metric.reset()
    metric.update(scores[:5], labels[:5])
    assert metric.compute() == evaluate(scores[:5].numpy(), labels[:5].numpy(), [0, 1, 2, 3], [4, 5], "best").metrics()


def test_recipe_settings_it_cannot_reproduce_are_refused():
    from zslkit.lightning import ZSLModule

    dataset = zslkit.load_dataset("synthetic", **SMALL)
    with pytest.raises(ValueError, match="accumulate_steps=2 is not reproduced; give accumulate_steps=1 and the Trainer's"):
        ZSLModule(dataset, "msdn", {"epochs": 1, "accumulate_steps": 2})
