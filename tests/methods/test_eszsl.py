import numpy as np
import pytest
from sklearn.base import clone

from zslkit.methods import ESZSL


def objective(V, X, Y, S, gamma, lam):
    """ESZSL objective of Romera-Paredes and Torr with X (d, m)."""
    return (
        np.linalg.norm(X.T @ V @ S - Y) ** 2
        + gamma * np.linalg.norm(V @ S) ** 2
        + lam * np.linalg.norm(X.T @ V) ** 2
        + gamma * lam * np.linalg.norm(V) ** 2
    )


def test_closed_form_minimises_the_objective():
    rng = np.random.default_rng(0)
    n, d, k, a = 30, 5, 4, 3
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    A = rng.uniform(0.1, 1.0, size=(k + 2, a))
    seen = np.arange(k)
    model = ESZSL(gamma=0.5, lambda_=2.0, attribute_norm=None).fit(X, y, A, seen)
    Y = -np.ones((n, k))
    Y[np.arange(n), y] = 1
    S = A[:k].T
    # reference: the normal equations solved with numpy, independently of the implementation
    expected = np.linalg.inv(X.T @ X + 0.5 * np.eye(d)) @ X.T @ Y @ S.T @ np.linalg.inv(S @ S.T + 2.0 * np.eye(a))
    np.testing.assert_allclose(model.V_, expected, rtol=1e-8, atol=1e-10)
    base = objective(model.V_, X.T, Y, S, 0.5, 2.0)
    for _ in range(5):  # any perturbation increases the convex objective
        assert objective(model.V_ + 1e-3 * rng.normal(size=model.V_.shape), X.T, Y, S, 0.5, 2.0) > base
    scores = model.decision_function(X)
    np.testing.assert_allclose(scores, X @ expected @ A.T, rtol=1e-8)
    assert scores.shape == (n, k + 2)


def test_predict_restricted_to_classes_and_sklearn_conventions():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 4))
    y = rng.integers(0, 3, size=20)
    A = rng.uniform(size=(5, 6))
    model = ESZSL(gamma=1.0, lambda_=1.0).fit(X, y, A, [0, 1, 2])
    pred = model.predict(X, classes=[3, 4])
    assert set(pred) <= {3, 4}
    np.testing.assert_array_equal(pred, np.array([3, 4])[model.decision_function(X)[:, [3, 4]].argmax(1)])
    assert clone(model).get_params() == {"gamma": 1.0, "lambda_": 1.0, "attribute_norm": "l2"}


def test_labels_outside_seen_classes_are_refused():
    with pytest.raises(ValueError, match="not in seen_classes"):
        ESZSL().fit(np.zeros((3, 2)), np.array([0, 1, 4]), np.ones((5, 2)), [0, 1])
