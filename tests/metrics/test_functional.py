import numpy as np
import pytest
import torch

from zslkit.metrics import (
    ZSLAccuracy,
    ausuc,
    czsl_accuracy,
    gzsl_accuracy,
    harmonic_mean,
    per_class_accuracy,
    seen_unseen_curve,
)


def brute_per_class(pred, labels):
    accs = {}
    for p, y in zip(pred, labels):
        accs.setdefault(y, []).append(p == y)
    return float(np.mean([np.mean(v) for v in accs.values()]))


def test_per_class_accuracy_weights_classes_not_images():
    # class 0: 1 of 1 right; class 1: 1 of 4 right -> (1 + 0.25) / 2, not 2/5
    pred = [0, 1, 0, 0, 0]
    labels = [0, 1, 1, 1, 1]
    assert per_class_accuracy(pred, labels) == pytest.approx(0.625)


def test_harmonic_mean_values_and_bounds():
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(0.2, 0.8) == pytest.approx(0.32)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_czsl_restricts_argmax_to_unseen():
    scores = torch.tensor([[9.0, 1.0, 2.0], [9.0, 3.0, 2.0]])  # class 0 is seen and would win
    labels = torch.tensor([2, 1])
    assert czsl_accuracy(scores, labels, [1, 2]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unseen_classes"):
        czsl_accuracy(scores, torch.tensor([0, 1]), [1, 2])


def test_gzsl_matches_brute_force_with_calibration():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 6))
    labels = rng.integers(0, 6, size=60)
    seen, unseen = [0, 1, 2, 3], [4, 5]
    for gamma in (0.0, 0.7, -0.4):
        adj = scores.copy()
        adj[:, seen] -= gamma
        pred = adj.argmax(1)
        mu, ms = np.isin(labels, unseen), np.isin(labels, seen)
        u, s = brute_per_class(pred[mu], labels[mu]), brute_per_class(pred[ms], labels[ms])
        got = gzsl_accuracy(scores, labels, seen, unseen, calibration=gamma)
        assert got.unseen == pytest.approx(u) and got.seen == pytest.approx(s)
        assert got.harmonic == pytest.approx(2 * u * s / (u + s))


def test_seen_unseen_curve_points_match_gzsl_at_midpoints():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(80, 7))
    labels = rng.integers(0, 7, size=80)
    seen, unseen = [0, 1, 2, 3, 4], [5, 6]
    curve = seen_unseen_curve(scores, labels, seen, unseen)
    finite = curve.gammas[1:]
    mids = np.concatenate([[finite[0] - 1.0], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1.0]])
    # the curve is constant between thresholds; compare the point reached after each threshold
    for j, gamma in enumerate(mids):
        g = gzsl_accuracy(scores, labels, seen, unseen, calibration=gamma)
        assert curve.unseen[j] == pytest.approx(g.unseen)
        assert curve.seen[j] == pytest.approx(g.seen)


def test_ausuc_against_dense_brute_force_sweep():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(50, 5))
    labels = rng.integers(0, 5, size=50)
    seen, unseen = [0, 1, 2], [3, 4]
    gammas = np.linspace(-8, 8, 20001)
    pts = np.array([gzsl_accuracy(scores, labels, seen, unseen, g)[:2] for g in gammas[::10]])
    # brute force: trapezoid over a fine sweep of (U, S) points sorted by U
    order = np.argsort(pts[:, 0], kind="stable")
    brute = np.trapezoid(pts[order, 1], pts[order, 0])
    assert ausuc(scores, labels, seen, unseen) == pytest.approx(brute, abs=5e-3)
    # a perfect scorer has AUSUC = 1
    perfect = np.eye(5)[labels] * 10
    assert ausuc(perfect, labels, seen, unseen) == pytest.approx(1.0)


def test_stateful_metric_equals_functional_over_batches():
    rng = np.random.default_rng(3)
    scores = torch.tensor(rng.normal(size=(40, 6)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 6, size=40))
    metric = ZSLAccuracy(seen_classes=[0, 1, 2, 3], unseen_classes=[4, 5])
    for chunk in range(0, 40, 15):
        metric.update(scores[chunk : chunk + 15], labels[chunk : chunk + 15])
    got = metric.compute()
    g = gzsl_accuracy(scores, labels, [0, 1, 2, 3], [4, 5])
    mask = torch.isin(labels, torch.tensor([4, 5]))
    assert got["T1"] == pytest.approx(czsl_accuracy(scores[mask], labels[mask], [4, 5]))
    assert (got["U"], got["S"], got["H"]) == pytest.approx((g.unseen, g.seen, g.harmonic))
    metric.reset()
    with pytest.raises(RuntimeError, match=r"ZSLAccuracy.compute\(\) called before any update\(\)"):
        metric.compute()


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="labels must be"):
        gzsl_accuracy(np.zeros((3, 4)), np.zeros(2, dtype=int), [0], [1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        gzsl_accuracy(np.zeros((2, 4)), np.array([0, 7]), [0], [1])
