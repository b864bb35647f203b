"""Calibrated stacking and AUSUC against a brute-force sweep of gamma with gzsl_accuracy."""

import numpy as np
import pytest

from zslkit.bench.evaluate import best_calibration, evaluate
from zslkit.metrics import ausuc, czsl_accuracy, gzsl_accuracy, seen_unseen_curve

SEEN, UNSEEN = np.array([0, 2, 3, 5]), np.array([1, 4, 6])


def problem(seed, n=40):
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.concatenate([SEEN, UNSEEN]), size=n)
    scores = rng.normal(size=(n, 7))
    scores[np.arange(n), labels] += rng.uniform(0, 1.5, size=n)  # informative, not perfect
    scores[:, SEEN] += 0.4  # the usual bias towards seen classes
    return scores, labels


def flip_points(scores):
    """Brute force: the gammas where an image switches from its best seen to its best unseen class."""
    return sorted({max(row[SEEN]) - max(row[UNSEEN]) for row in scores})


def sweep(scores, labels):
    """(gamma, U, S) at one gamma inside every interval between flip points, and beyond both ends."""
    flips = flip_points(scores)
    gammas = [flips[0] - 1.0] + [(a + b) / 2 for a, b in zip(flips, flips[1:])] + [flips[-1] + 1.0]
    return [(g, *gzsl_accuracy(scores, labels, SEEN, UNSEEN, g)[:2]) for g in gammas]


@pytest.mark.parametrize("seed", range(5))
def test_ausuc_equals_the_area_of_the_brute_force_sweep(seed):
    scores, labels = problem(seed)
    points = sweep(scores, labels)
    u = np.array([p[1] for p in points])
    s = np.array([p[2] for p in points])
    area = float(np.sum((u[1:] - u[:-1]) * (s[1:] + s[:-1]) / 2))
    assert ausuc(scores, labels, SEEN, UNSEEN) == pytest.approx(area, abs=1e-9)
    assert evaluate(scores, labels, SEEN, UNSEEN).AUSUC == pytest.approx(area, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_curve_points_are_gzsl_accuracies_at_their_gammas(seed):
    scores, labels = problem(seed)
    curve = seen_unseen_curve(scores, labels, SEEN, UNSEEN)
    gammas = curve.gammas
    for j in range(len(gammas)):
        inside = gammas[1] - 1.0 if j == 0 else (gammas[j] + 1.0 if j == len(gammas) - 1 else (gammas[j] + gammas[j + 1]) / 2)
        g = gzsl_accuracy(scores, labels, SEEN, UNSEEN, inside)
        assert (curve.unseen[j], curve.seen[j]) == pytest.approx((g.unseen, g.seen), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_best_calibration_reaches_the_best_h_of_the_sweep(seed):
    scores, labels = problem(seed)
    best_h = max(2 * u * s / (u + s) if u + s else 0.0 for _, u, s in sweep(scores, labels))
    gamma = best_calibration(seen_unseen_curve(scores, labels, SEEN, UNSEEN))
    assert gzsl_accuracy(scores, labels, SEEN, UNSEEN, gamma).harmonic == pytest.approx(best_h, abs=1e-12)
    ev = evaluate(scores, labels, SEEN, UNSEEN, "best")
    assert ev.gamma == pytest.approx(gamma) and ev.H == pytest.approx(best_h, abs=1e-12)


def test_a_given_gamma_is_applied_as_is():
    scores, labels = problem(0)
    ev = evaluate(scores, labels, SEEN, UNSEEN, 0.3)
    g = gzsl_accuracy(scores, labels, SEEN, UNSEEN, 0.3)
    assert (ev.gamma, ev.U, ev.S, ev.H) == (0.3, g.unseen, g.seen, g.harmonic)
    on_unseen = np.isin(labels, UNSEEN)
    assert ev.T1 == czsl_accuracy(scores[on_unseen], labels[on_unseen], UNSEEN)


def test_classes_outside_the_problem_never_win():
    """Evaluating on a validation split, the test classes must not compete (here class 7)."""
    scores, labels = problem(1)
    with_outsider = np.concatenate([scores, np.full((len(scores), 1), 100.0)], axis=1)
    masked, plain = evaluate(with_outsider, labels, SEEN, UNSEEN, 0.2), evaluate(scores, labels, SEEN, UNSEEN, 0.2)
    assert masked.metrics() == plain.metrics()
    np.testing.assert_array_equal(masked.curve.seen, plain.curve.seen)
