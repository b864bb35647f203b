"""SAE's closed form against the first-order condition of its objective and a direct linear solve."""

import numpy as np
import pytest

from zslkit.methods import SAE


def _toy(seed=0, n=30, d=5, num_attributes=4, classes=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    A = rng.uniform(0.1, 1.0, size=(classes, num_attributes))
    y = rng.integers(0, 4, size=n)  # classes 0..3 seen, 4..5 unseen
    return X, y, A, np.arange(4)


def _semantic_matrix(A, y):
    unit = A / np.linalg.norm(A, axis=1, keepdims=True)
    return unit[y].T  # (I, N)


@pytest.mark.parametrize("lambda_", [0.1, 1.0, 30.0])
def test_solution_zeroes_the_gradient_of_the_objective(lambda_):
    X, y, A, seen = _toy()
    W = SAE(lambda_=lambda_).fit(X, y, A, seen).W_
    Xc, S = X.T, _semantic_matrix(A, y)  # paper layout: columns are images
    # d/dW ( ||X - W^T S||^2 + lambda ||W X - S||^2 ) written out by hand
    gradient = -2 * S @ (Xc - W.T @ S).T + 2 * lambda_ * (W @ Xc - S) @ Xc.T
    assert np.abs(gradient).max() < 1e-8 * max(1.0, np.abs(S @ Xc.T).max())
    # and it is a minimum: the objective grows in random directions
    def objective(M):
        return np.sum((Xc - M.T @ S) ** 2) + lambda_ * np.sum((M @ Xc - S) ** 2)

    rng = np.random.default_rng(1)
    for _ in range(5):
        assert objective(W + 1e-3 * rng.normal(size=W.shape)) > objective(W)


def test_solution_matches_the_vectorised_linear_system():
    X, y, A, seen = _toy(seed=3)
    lambda_ = 2.0
    W = SAE(lambda_=lambda_).fit(X, y, A, seen).W_
    Xc, S = X.T, _semantic_matrix(A, y)
    # (S S^T) W + W (lambda X X^T) = (1 + lambda) S X^T  <=>  (I kron SS^T + (lambda XX^T)^T kron I) vec W = vec rhs
    P, Q = S @ S.T, lambda_ * Xc @ Xc.T
    system = np.kron(np.eye(Q.shape[0]), P) + np.kron(Q.T, np.eye(P.shape[0]))
    rhs = ((1 + lambda_) * S @ Xc.T).reshape(-1, order="F")
    expected = np.linalg.solve(system, rhs).reshape(W.shape, order="F")
    np.testing.assert_allclose(W, expected, rtol=1e-8, atol=1e-10)


def test_scores_are_cosines_in_the_chosen_space():
    X, y, A, seen = _toy(seed=5)
    for space in ("semantic", "feature"):
        sae = SAE(lambda_=0.5, space=space).fit(X, y, A, seen)
        scores = sae.decision_function(X[:3])
        unit_a = A / np.linalg.norm(A, axis=1, keepdims=True)
        for i in range(3):
            for k in range(A.shape[0]):
                if space == "semantic":
                    u, v = sae.W_ @ X[i], unit_a[k]
                else:
                    u, v = X[i], sae.W_.T @ unit_a[k]
                cosine = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
                assert scores[i, k] == pytest.approx(cosine, abs=1e-10)


@pytest.mark.parametrize(("option", "value", "message"), [("space", "latent", "space"), ("lambda_", 0.0, "lambda_")])
def test_bad_options_name_the_option(option, value, message):
    X, y, A, seen = _toy()
    with pytest.raises(ValueError, match=message):
        SAE(**{option: value}).fit(X, y, A, seen)
