"""Shared fixtures of the benchmark tests: a small synthetic dataset (seconds to fit anything on)."""

import pytest

from zslkit.datasets import make_synthetic

SMALL = dict(num_classes=20, images_per_class=12, channels=16, grid=4, embedding_dim=8)


@pytest.fixture(scope="session")
def small_options():
    return dict(SMALL)


@pytest.fixture
def small_dataset():
    return make_synthetic(**SMALL)
