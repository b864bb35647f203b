"""Batches per epoch when the split does not divide by the batch size: every sampler draws
``ceil(N / batch_size)`` batches, and the epoch's logged loss weighs each batch by its images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zslkit
from zslkit.datasets.samplers import EpisodicSampler
from zslkit.training import TrainConfig, batch_indices, train


@pytest.mark.parametrize(("n", "batch_size", "expected"), [(10, 4, 3), (9, 3, 3), (1, 4, 1), (13, 12, 2)])
def test_every_sampler_draws_ceil_n_over_batch_size_batches(n, batch_size, expected):
    labels = np.arange(n) % 3
    idx = np.arange(n)
    rng = np.random.default_rng(0)
    shuffled = list(batch_indices("shuffle", idx, labels, batch_size, rng))
    assert [len(b) for b in shuffled] == [batch_size] * (expected - 1) + [n - batch_size * (expected - 1)]
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(n))  # each image once
    assert len(list(batch_indices("random", idx, labels, batch_size, rng))) == expected
    assert len(list(batch_indices("class_balanced", idx, labels, batch_size, rng))) == expected


def test_the_episodic_sampler_rounds_its_batches_up():
    labels = np.repeat(np.arange(5), 2)  # 10 images; 2 ways x 2 shots = 4 a batch: 3 batches
    batches = list(EpisodicSampler(ways=2, shots=2)(np.arange(10), labels, 4, np.random.default_rng(0)))
    assert len(batches) == 3 and all(len(b) == 4 for b in batches)


def test_the_epoch_loss_weighs_the_short_last_batch_by_its_images():
    """48 images in batches of 40 and 8, with a step too small to change a weight: the epoch's
    cross-entropy is the mean over the 48 images (not the mean of the two batch means)."""
    torch.manual_seed(0)
    data = zslkit.load_dataset("synthetic", num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3,
                               embedding_dim=6, seed=0)
    result = train(data, "dazle", TrainConfig(epochs=1, batch_size=40, lr=1e-30, optimizer="sgd", num_threads=1),
                   progress=False)
    idx = data.splits["trainval"]
    assert len(idx) == 48
    x = torch.as_tensor(np.asarray(data.features[idx], dtype=np.float32))
    y = torch.as_tensor(data.labels[idx])
    model = result.model.train()
    with torch.no_grad():
        per_image = [float(model.loss(model(x[i : i + 1]), y[i : i + 1])["attribute_ce"]) for i in range(48)]
    assert result.history[0]["loss_attribute_ce"] == pytest.approx(np.mean(per_image), rel=1e-6)
    batch_means = (np.mean(per_image[:40]) + np.mean(per_image[40:])) / 2  # what an unweighted mean would log
    assert abs(batch_means - np.mean(per_image)) > 1e-4
