"""The training loop on a tiny synthetic dataset: history, callbacks, checkpoints, resume, prediction."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
from zslkit.training import TrainConfig, batch_indices, load_model, predict_scores, read_batch, train

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=1e-3, loss_weights={"self_calibration": 0.1})


@pytest.fixture(scope="module")
def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


def state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_history_callback_and_seed(dataset):
    calls = []

    def on_epoch(epoch, model):
        calls.append((epoch, model.training))
        return {"probe": float(epoch) * 10}

    result = train(dataset, "msdn", CONFIG, on_epoch=on_epoch, progress=False)
    assert calls == [(1, False), (2, False)]
    assert [h["epoch"] for h in result.history] == [1, 2] and result.history[1]["probe"] == 20.0
    assert {"loss", "loss_attribute_ce", "loss_self_calibration", "loss_semantic_distillation"} <= set(result.history[0])
    assert not result.model.training
    again = train(dataset, "msdn", CONFIG, progress=False)
    other = train(dataset, "msdn", CONFIG, seed=1, progress=False)
    assert state_equal(result.model, again.model) and not state_equal(result.model, other.model)


def test_checkpoints_are_safetensors_plus_json_and_reload(dataset, tmp_path):
    result = train(dataset, "dazle", CONFIG, out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch_001.json", "epoch_001.safetensors", "epoch_002.json", "epoch_002.safetensors", "history.csv", "history.json",
    ]
    meta = json.loads((tmp_path / "epoch_002.json").read_text())
    assert meta["model"]["name"] == "dazle" and meta["zslkit_version"] == zslkit.__version__
    assert meta["classes"]["unseen"] == dataset.unseen_classes.tolist() and meta["config"]["lr"] == 1e-3
    assert meta["optimizer"]["class"] == "RMSprop" and "numpy" in meta["rng"]
    tensors = load_file(str(tmp_path / "epoch_002.safetensors"))
    assert "model.branches.dazle.W3" in tensors and "rng.torch" in tensors
    assert any(k.startswith("optimizer.") and k.endswith(".square_avg") for k in tensors)
    reloaded = load_model(tmp_path)
    idx = dataset.splits["test_unseen"]
    assert np.allclose(predict_scores(reloaded, dataset, idx), predict_scores(result.model, dataset, idx))
    assert not list(tmp_path.glob(".*tmp"))


def test_resume_continues_exactly(dataset, tmp_path):
    straight = train(dataset, "msdn", CONFIG, progress=False)
    train(dataset, "msdn", CONFIG.__class__(**{**CONFIG.to_dict(), "epochs": 1}), out_dir=tmp_path, progress=False)
    resumed = train(dataset, "msdn", CONFIG, out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert state_equal(straight.model, resumed.model)
    with pytest.raises(ValueError, match="cannot resume"):
        train(dataset, "dazle", CONFIG, out_dir=tmp_path, resume=True, progress=False)


class CountingFeatures:
    """An array-like that records every read, in float16 (like a memmap store)."""

    def __init__(self, array):
        self.array, self.reads = array.astype(np.float16), []
        self.shape, self.dtype = self.array.shape, self.array.dtype

    def __getitem__(self, idx):
        idx = np.asarray(idx)
        assert idx.ndim == 1 and np.all(np.diff(idx) > 0), "reads must be increasing index lists"
        self.reads.append(len(idx))
        return self.array[idx]


def test_features_are_read_in_batches_and_scores_keep_the_index_order(dataset):
    model = train(dataset, "msdn", CONFIG, progress=False).model
    store = CountingFeatures(np.asarray(dataset.features))
    half = zslkit.datasets.ZSLDataset(**{**dataset.__dict__, "features": store})
    idx = np.array([5, 1, 70, 3, 3])
    scores = predict_scores(model, half, idx, batch_size=2)
    assert max(store.reads) <= 2 and scores.shape == (5, dataset.num_classes) and scores.dtype == np.float32
    with torch.no_grad():
        direct = model(torch.from_numpy(store.array[idx].astype(np.float32))).scores.numpy()
    assert np.allclose(scores, direct, atol=1e-5)
    train(half, "msdn", TrainConfig(epochs=1, batch_size=16), progress=False)
    assert max(store.reads) <= 16


def test_read_batch_and_samplers():
    feats = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert read_batch(feats, np.array([7, 2, 7])).tolist() == [[14, 15], [4, 5], [14, 15]]
    labels = np.repeat(np.arange(5), 2)
    idx = np.arange(10)
    rng = np.random.default_rng(0)
    shuffled = list(batch_indices("shuffle", idx, labels, 4, rng))
    assert [len(b) for b in shuffled] == [4, 4, 2] and sorted(np.concatenate(shuffled)) == list(range(10))
    assert all(len(set(b)) == 4 for b in batch_indices("random", idx, labels, 4, rng))
    for batch in batch_indices("class_balanced", idx, labels, 3, rng):
        assert len(batch) == 3 and len(set(labels[batch])) == 3


def test_validation_view_trains_and_never_predicts_test_classes(dataset):
    view = dataset.validation_view()
    result = train(view, "msdn", TrainConfig(epochs=1, batch_size=16), progress=False)
    scores = predict_scores(result.model, view, view.splits["test_unseen"])
    outside = np.setdiff1d(np.arange(dataset.num_classes), np.union1d(view.seen_classes, view.unseen_classes))
    assert len(outside) and np.isneginf(scores[:, outside]).all()
    metrics = zslkit.training.evaluate(result.model, view)
    assert set(metrics) == {"T1", "U", "S", "H", "AUSUC"}
    with pytest.raises(ValueError, match="seen classes differ"):
        zslkit.training.evaluate(result.model, dataset)


def test_bad_arguments(dataset):
    with pytest.raises(KeyError, match="no split 'tranval'"):
        train(dataset, "msdn", CONFIG, split="tranval", progress=False)
    with pytest.raises(ValueError, match="do(es)? not have"):
        train(dataset, "msdn", TrainConfig(loss_weights={"bogus": 1.0}), progress=False)


def test_thread_count_is_restored_and_foreign_loss_weights_are_reported(dataset):
    before = torch.get_num_threads()
    cfg = TrainConfig(epochs=1, batch_size=16, num_threads=1, loss_weights={"semantic_distillation": 0.5})
    result = train(dataset, "dazle", cfg, progress=False)  # the config is written for msdn
    assert torch.get_num_threads() == before
    assert result.unused_loss_weights == {"semantic_distillation": 0.5}
