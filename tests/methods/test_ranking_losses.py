"""The ranking losses of ALE, DeViSE, SJE (and LATEM's compatibility) against brute force on tiny inputs."""

import itertools

import numpy as np
import pytest

from zslkit.methods import ALE, LATEM, SJE, DeViSE
from zslkit.methods.ale import ale_loss
from zslkit.methods.devise import devise_loss
from zslkit.methods.sje import sje_loss

MARGIN = 0.7


# ---- brute force, one sample at a time: returns (loss, d loss / d scores)
def brute_ale(f, t, m):
    viol = [max(0.0, m + f[y] - f[t]) if y != t else 0.0 for y in range(len(f))]
    r = sum(v > 0 for v in viol)
    if r == 0:
        return 0.0, np.zeros(len(f))
    weight = sum(1.0 / j for j in range(1, r + 1)) / r
    grad = np.array([weight if v > 0 else 0.0 for v in viol])
    grad[t] = -weight * r
    return weight * sum(viol), grad


def brute_devise(f, t, m):
    viol = [max(0.0, m - f[t] + f[y]) if y != t else 0.0 for y in range(len(f))]
    grad = np.array([1.0 if v > 0 else 0.0 for v in viol])
    grad[t] = -grad.sum()
    return sum(viol), grad


def brute_sje(f, t, m):
    values = [(m if y != t else 0.0) + f[y] for y in range(len(f))]
    worst = max(range(len(f)), key=lambda y: values[y])
    grad = np.zeros(len(f))
    grad[worst] += 1.0
    grad[t] -= 1.0
    return values[worst] - f[t], grad


CASES = [(ale_loss, brute_ale), (devise_loss, brute_devise), (sje_loss, brute_sje)]


def _scores(seed, batch=6, classes=7, spread=1.0):
    """Random scores with no margin violation near its kink (so finite differences are exact)."""
    rng = np.random.default_rng(seed)
    while True:
        scores = rng.normal(scale=spread, size=(batch, classes))
        target = rng.integers(0, classes, size=batch)
        gaps = MARGIN + scores - scores[np.arange(batch), target][:, None]
        gaps[np.arange(batch), target] = 1.0
        sje_values = scores + MARGIN
        sje_values[np.arange(batch), target] -= MARGIN
        top2 = np.sort(sje_values, axis=1)[:, -2:]
        if np.abs(gaps).min() > 1e-3 and (top2[:, 1] - top2[:, 0]).min() > 1e-3:
            return scores, target


@pytest.mark.parametrize(("loss_fn", "brute"), CASES)
@pytest.mark.parametrize("seed", range(4))
def test_loss_and_gradient_match_brute_force(loss_fn, brute, seed):
    scores, target = _scores(seed)
    loss, grad = loss_fn(scores.copy(), target, MARGIN)
    per_sample = [brute(scores[n], target[n], MARGIN) for n in range(len(target))]
    assert loss == pytest.approx(np.mean([p[0] for p in per_sample]), rel=1e-12)
    np.testing.assert_allclose(grad, np.stack([p[1] for p in per_sample]) / len(target), atol=1e-12)


@pytest.mark.parametrize(("loss_fn", "brute"), CASES)
def test_gradient_matches_finite_differences(loss_fn, brute):
    scores, target = _scores(11)
    _, grad = loss_fn(scores.copy(), target, MARGIN)
    eps = 1e-5
    for n, k in itertools.product(range(scores.shape[0]), range(scores.shape[1])):
        up, down = scores.copy(), scores.copy()
        up[n, k] += eps
        down[n, k] -= eps
        numeric = (loss_fn(up, target, MARGIN)[0] - loss_fn(down, target, MARGIN)[0]) / (2 * eps)
        assert numeric == pytest.approx(grad[n, k], abs=1e-7)


def test_ale_weights_a_deep_rank_more_per_sample_but_less_per_violation():
    scores = np.array([[0.0, 5.0, 5.0, 5.0, 5.0], [0.0, 5.0, -9.0, -9.0, -9.0]])
    target = np.array([0, 0])
    loss_deep, _ = ale_loss(scores[:1], target[:1], 1.0)
    loss_top, _ = ale_loss(scores[1:], target[1:], 1.0)
    assert loss_deep == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4 * 24)
    assert loss_top == pytest.approx(6.0)
    assert loss_deep < devise_loss(scores[:1], target[:1], 1.0)[0]


def test_latem_compatibility_is_the_best_latent_map():
    rng = np.random.default_rng(0)
    x, attributes = rng.normal(size=(4, 5)), rng.normal(size=(6, 3))
    weight = rng.normal(size=(3, 5, 3))
    scores = LATEM(n_latent=3).compatibility(x, weight, attributes)
    for b, k in itertools.product(range(4), range(6)):
        assert scores[b, k] == pytest.approx(max(x[b] @ weight[m] @ attributes[k] for m in range(3)))


# ---- one full-batch SGD step of fit() equals W0 - lr * (brute-force gradient + weight decay)
def _toy(seed=0, n=12, d=4, num_attributes=3, classes=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    A = rng.uniform(0.1, 1.0, size=(classes, num_attributes))
    seen = np.array([0, 2, 3])
    y = seen[rng.integers(0, 3, size=n)]
    return X, y, A, seen


def _brute_bilinear_gradient(X, y, A, seen, W, brute):
    grad = np.zeros_like(W)
    for n in range(len(X)):
        f = np.array([X[n] @ W @ A[c] for c in seen])
        _, g = brute(f, list(seen).index(y[n]), MARGIN)
        for j, c in enumerate(seen):
            grad += g[j] * np.outer(X[n], A[c])
    return grad / len(X)


@pytest.mark.parametrize(("cls", "brute"), [(ALE, brute_ale), (DeViSE, brute_devise), (SJE, brute_sje)])
def test_one_sgd_step_follows_the_brute_force_gradient(cls, brute):
    X, y, A, seen = _toy()
    W0 = np.random.default_rng(7).normal(size=(X.shape[1], A.shape[1]))
    est = cls(lr=0.05, epochs=1, batch_size=len(X), margin=MARGIN, weight_decay=0.1, attribute_norm=None)
    est.init_weights = lambda d, i, rng: W0.copy()
    est.fit(X, y, A, seen)
    expected = W0 - 0.05 * (_brute_bilinear_gradient(X, y, A, seen, W0, brute) + 0.1 * W0)
    np.testing.assert_allclose(est.W_, expected, atol=1e-12)


def test_latem_step_moves_only_the_winning_maps():
    X, y, A, seen = _toy(seed=2)
    W0 = np.random.default_rng(3).normal(size=(2, X.shape[1], A.shape[1]))
    est = LATEM(n_latent=2, lr=0.05, epochs=1, batch_size=len(X), margin=MARGIN, attribute_norm=None)
    est.init_weights = lambda d, i, rng: W0.copy()
    est.fit(X, y, A, seen)
    grad = np.zeros_like(W0)
    for n in range(len(X)):
        latent = [[X[n] @ W0[m] @ A[c] for c in seen] for m in range(2)]
        f = np.max(latent, axis=0)
        _, g = brute_devise(f, list(seen).index(y[n]), MARGIN)
        for j, c in enumerate(seen):
            winner = int(np.argmax([latent[0][j], latent[1][j]]))
            grad[winner] += g[j] * np.outer(X[n], A[c])
    np.testing.assert_allclose(est.W_, W0 - 0.05 * grad / len(X), atol=1e-12)
