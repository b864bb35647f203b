"""Numerical robustness: extreme inputs train without NaN; a non-finite loss stops training cleanly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import zslkit
from zslkit.datasets import DatasetError, ZSLDataset
from zslkit.losses import SelfCalibration, jensen_shannon, weighted_difference
from zslkit.models.class_space import ClassSpace
from zslkit.models.output import ModelOutput
from zslkit.training import TrainConfig, load_checkpoint, load_model, train
from zslkit.training.guards import NonFiniteLossError

TINY = dict(num_classes=8, family_size=4, images_per_class=6, channels=8, grid=3, embedding_dim=6)
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=1e-3, num_threads=1)


@pytest.fixture(scope="module")
def base():
    return zslkit.load_dataset("synthetic", **TINY)


def with_features(dataset: ZSLDataset, features, **changes) -> ZSLDataset:
    return ZSLDataset(**{**dataset.__dict__, "features": features, **changes})


def assert_all_finite(result) -> None:
    for record in result.history:
        for key, value in record.items():
            if key.startswith("loss"):
                assert math.isfinite(value), f"{key} = {value} in epoch {record['epoch']}"
    for name, parameter in result.model.named_parameters():
        assert torch.isfinite(parameter).all(), name


# ---------------------------------------------------------------- loss terms in extreme regimes
def test_self_calibration_stays_finite_when_the_unseen_mass_underflows():
    scores = torch.tensor([[200.0, 0.0, -200.0], [150.0, 10.0, -150.0]])  # float32 softmax gives the unseen class 0
    classes = ClassSpace(np.eye(3), seen_classes=[0, 1], unseen_classes=[2], margin=0.0)
    output = ModelOutput(scores=scores, branch_scores={"a": scores.clone().requires_grad_()})
    loss = SelfCalibration()(output, torch.tensor([0, 1]), classes)
    s = scores.double().numpy()
    log_mass = s[:, 2] - logsumexp(s, axis=1)  # float64 reference, written out
    expected = -(logsumexp(log_mass) - math.log(2))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(output.branch_scores["a"].grad).all()


def test_jensen_shannon_and_weighted_difference_stay_finite_for_saturated_softmax():
    y = torch.tensor([[60.0, -60.0, 0.0, -60.0]], requires_grad=True)  # classes 1 and 3: mass ~1e-53 in both
    y_other = torch.tensor([[-60.0, 60.0, 0.0, -60.0]])
    value = jensen_shannon(y, y_other)
    p = np.exp(y.detach().double().numpy() - logsumexp(y.detach().double().numpy()))
    q = np.exp(y_other.double().numpy() - logsumexp(y_other.double().numpy()))
    m = (p + q) / 2
    expected = 0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum()
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert torch.isfinite(y.grad).all()
    same = torch.zeros(2, 5, requires_grad=True)  # identical branches: d = 0
    zero = weighted_difference(same, same.detach())
    zero.backward()
    assert zero.item() == 0.0 and torch.isfinite(same.grad).all()
    big = torch.full((1, 4), 1e13)  # |d|^3 alone would overflow float32
    assert weighted_difference(big, -big).item() == pytest.approx(4 * (2e13) ** 2 / 2, rel=1e-5)


# ---------------------------------------------------------------- training on awkward features
@pytest.mark.parametrize(
    "case",
    ["huge", "tiny", "zero_regions", "zero_images", "single_region", "one_image_classes"],
)
def test_training_on_awkward_features_has_no_nan(base, case):
    features = np.asarray(base.features)
    if case == "huge":
        dataset = with_features(base, features * 1e6)
    elif case == "tiny":
        dataset = with_features(base, features * 1e-6)
    elif case == "zero_regions":
        masked = features.copy()
        masked[:, :, :2, :] = 0.0  # two of three rows of regions are all zero
        dataset = with_features(base, masked)
    elif case == "zero_images":
        masked = features.copy()
        masked[::3] = 0.0  # every third image has no signal at all
        dataset = with_features(base, masked)
    elif case == "single_region":
        dataset = with_features(base, features.mean(axis=(2, 3), keepdims=True))  # (N, C, 1, 1)
    else:
        dataset = zslkit.load_dataset("synthetic", **{**TINY, "images_per_class": 1})
        assert np.bincount(dataset.labels).max() == 1
    for model in ("msdn", "dazle"):
        assert_all_finite(train(dataset, model, CONFIG, progress=False))


# ---------------------------------------------------------------- stopping on non-finite numbers
class NanAtStep(torch.nn.Module):
    """A loss term (as a plugin would register one) that is 0 until step ``at``, then NaN or an inf gradient."""

    def __init__(self, at: int = 3, mode: str = "value"):
        super().__init__()
        self.at, self.mode, self.calls = at, mode, 0

    def forward(self, output, labels, classes):
        self.calls += 1
        scores = next(iter(output.branch_scores.values()))
        if self.calls < self.at:
            return (scores * 0).sum()
        if self.mode == "value":
            return (scores * 0).sum() + float("nan")
        return (scores - scores.detach()).sum().sqrt()  # value 0, gradient inf


@pytest.fixture
def nan_term():
    zslkit.register("loss", "reliability_nan_at_step")(NanAtStep)
    yield "reliability_nan_at_step"
    zslkit.registry.unregister("loss", "reliability_nan_at_step")


@pytest.mark.parametrize(("mode", "named"), [("value", "loss term 'probe' became nan"),
                                             ("gradient", "the gradient of parameter 'V' became")])
def test_non_finite_loss_stops_with_step_and_term_keeping_the_last_good_checkpoint(base, nan_term, mode, named, tmp_path):
    losses = {"attribute_ce": 1.0, "probe": {"loss": nan_term, "at": 4, "mode": mode}}
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-3, num_threads=1)  # 30 training images: 2 steps per epoch
    with pytest.raises(NonFiniteLossError) as info:
        train(base, "msdn", config, out_dir=tmp_path, progress=False, losses=losses)
    message = str(info.value)
    assert message.startswith(named) and "at epoch 2/3, step 2;" in message
    assert f"the last good checkpoint is {tmp_path / 'epoch_001.json'}" in message
    assert sorted(p.name for p in tmp_path.glob("epoch_*")) == ["epoch_001.json", "epoch_001.safetensors"]
    kept = load_model(tmp_path)
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    assert load_checkpoint(tmp_path).meta["history"][0]["epoch"] == 1


def test_non_finite_features_that_bypass_the_load_check_are_named_by_image(base):
    class LazyWithNan:  # an array-like (like a file-backed store): not scanned when the dataset is built
        shape, dtype = base.features.shape, np.float32

        def __getitem__(self, index):
            rows = np.asarray(base.features)[index].copy()
            rows[np.asarray(index) == 7] = np.nan
            return rows

    dataset = with_features(base, LazyWithNan())
    with pytest.raises(DatasetError, match=r"^features: features of image 7 hold a non-finite value \(nan\)"):
        train(dataset, "msdn", CONFIG, progress=False)
    nan_in_memory = np.asarray(base.features).copy()
    nan_in_memory[5, 2, 1, 0] = np.inf
    with pytest.raises(DatasetError, match=r"features has a non-finite value \(inf\) at image 5, channel 2, row 1, column 0"):
        with_features(base, nan_in_memory)
