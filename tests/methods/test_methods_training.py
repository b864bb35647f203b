"""All six baselines: they learn a toy zero-shot problem, follow scikit-learn conventions, and the SGD ones
are deterministic per seed with an epoch-by-epoch trajectory the benchmark can cut at any epoch."""

import numpy as np
import pytest
from sklearn.base import clone

import zslkit
from zslkit.methods import ALE, LATEM, SJE, DeViSE, RankingEmbedding

BASELINES = ["eszsl", "sae", "ale", "devise", "sje", "latem"]
SGD = [ALE, DeViSE, SJE, LATEM]


def toy_problem(seed=0, classes=12, num_attributes=10, dim=16, per_class=30, noise=0.3):
    """Features are a fixed linear image of the class attributes plus noise; classes 9-11 are unseen."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 1, size=(classes, num_attributes))
    M = rng.normal(size=(num_attributes, dim))
    y = np.repeat(np.arange(classes), per_class)
    X = A[y] @ M + noise * rng.normal(size=(len(y), dim))
    X = (X - X.mean(0)) / X.std(0)
    return X, y, A, np.arange(9), np.arange(9, 12)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_solves_an_easy_zero_shot_problem(name):
    X, y, A, seen, unseen = toy_problem()
    train, test = np.isin(y, seen), np.isin(y, unseen)
    est = zslkit.create("method", name)
    if isinstance(est, RankingEmbedding):
        est.set_params(epochs=30)
    est.fit(X[train], y[train], A, seen)
    accuracy = (est.predict(X[test], classes=unseen) == y[test]).mean()
    assert accuracy > 0.8  # chance is 1/3


@pytest.mark.parametrize("name", BASELINES)
def test_grid_names_real_parameters_and_clone_keeps_them(name):
    cls = zslkit.get_component("method", name)
    assert cls.param_grid, f"{name} has no documented grid"
    est = cls()
    assert set(cls.param_grid) <= set(est.get_params())
    first = {k: v[0] for k, v in cls.param_grid.items()}
    assert clone(est.set_params(**first)).get_params() == est.get_params()


@pytest.mark.parametrize("cls", SGD)
def test_sgd_is_deterministic_per_seed(cls):
    X, y, A, seen, _ = toy_problem(seed=1)
    train = np.isin(y, seen)
    fit = lambda seed: cls(epochs=2, seed=seed).fit(X[train], y[train], A, seen).W_  # noqa: E731
    np.testing.assert_array_equal(fit(3), fit(3))
    assert not np.allclose(fit(3), fit(4))


@pytest.mark.parametrize("cls", SGD)
def test_stopping_at_epoch_k_equals_the_state_after_epoch_k_of_a_longer_run(cls):
    X, y, A, seen, _ = toy_problem(seed=2)
    train = np.isin(y, seen)
    states = {}
    cls(epochs=4, seed=0).fit(X[train], y[train], A, seen, on_epoch=lambda e, est: states.setdefault(e, est.W_.copy()))
    assert sorted(states) == [1, 2, 3, 4]
    short = cls(epochs=2, seed=0).fit(X[train], y[train], A, seen)
    np.testing.assert_array_equal(short.W_, states[2])


@pytest.mark.parametrize(("option", "value"), [("lr", 0.0), ("epochs", 0), ("batch_size", 0), ("margin", -1.0)])
def test_bad_sgd_options_name_the_option(option, value):
    X, y, A, seen, _ = toy_problem()
    with pytest.raises(ValueError, match=option):
        ALE(**{option: value}).fit(X[:50], y[:50], A, seen)


def test_latem_rejects_a_fractional_number_of_maps():
    X, y, A, seen, _ = toy_problem()
    with pytest.raises(ValueError, match="n_latent"):
        LATEM(n_latent=1.5).fit(X[:50], y[:50], A, seen)
