"""Calibrated stacking at the edges of the best interval, on scores in eighths (exact flips).

Seen classes 0, 1; unseen 2, 3. An image predicts its best seen class while gamma is below its flip
``max(seen) - max(unseen)``. By hand (flips D 1/8, B 1/4, C 3/8, A 1/2):

====================  ====  ====  =====
gamma                 U     S     H
====================  ====  ====  =====
below 1/8             0     1     0
[1/8, 1/4)            1/2   1     2/3
[1/4, 3/8)            1/2   1/2   1/2
[3/8, 1/2)            1/2   1/2   1/2
1/2 and above         1/2   0     0
====================  ====  ====  =====

At exactly 1/8, D's seen and unseen scores tie; the argmax then takes the first class, the seen one,
so a gamma put on the boundary of the best interval loses it: the chosen gamma must lie inside.
"""

from __future__ import annotations

import numpy as np
import pytest

from zslkit.metrics.evaluation import best_calibration, evaluate
from zslkit.metrics.functional import gzsl_accuracy, seen_unseen_curve

SCORES = np.array([
    [1.0, 0.0, 0.5, 0.0],     # A, class 0: flip 1/2, seen side right
    [0.0, 1.0, 0.0, 0.75],    # B, class 1: flip 1/4, seen side right
    [0.875, 0.0, 0.25, 0.5],  # C, class 2: flip 3/8, unseen side wrong (3)
    [0.0, 0.625, 0.25, 0.5],  # D, class 3: flip 1/8, unseen side right
])
LABELS = np.array([0, 1, 2, 3])
SEEN, UNSEEN = [0, 1], [2, 3]


def test_the_chosen_gamma_lies_strictly_inside_the_best_interval():
    ev = evaluate(SCORES, LABELS, SEEN, UNSEEN, "best")
    assert 1 / 8 < ev.gamma < 1 / 4
    assert (ev.U, ev.S, ev.H) == pytest.approx((0.5, 1.0, 2 / 3))
    assert ev.T1 == 0.5  # unseen-only argmax: D right, C wrong


def test_the_curve_has_the_hand_computed_points():
    curve = seen_unseen_curve(SCORES, LABELS, SEEN, UNSEEN)
    np.testing.assert_array_equal(curve.gammas, [-np.inf, 0.125, 0.25, 0.375, 0.5])
    np.testing.assert_allclose(curve.unseen, [0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(curve.seen, [1, 1, 0.5, 0.5, 0])


def test_on_the_lower_boundary_the_tie_goes_to_the_seen_class():
    """Why the middle: at gamma = 1/8 exactly the argmax keeps D on its seen class."""
    assert gzsl_accuracy(SCORES, LABELS, SEEN, UNSEEN, 0.125).harmonic == 0.0
    assert gzsl_accuracy(SCORES, LABELS, SEEN, UNSEEN, 0.1875).harmonic == pytest.approx(2 / 3)


def test_a_best_first_or_last_point_keeps_gamma_beyond_the_outermost_flip():
    """Only seen images (U = 0 everywhere, every H 0): the first point, gamma below the lowest flip,
    where every seen image keeps its seen prediction."""
    seen_only = SCORES[:2]
    gamma = best_calibration(seen_unseen_curve(seen_only, LABELS[:2], SEEN, UNSEEN))
    assert gamma < 0.25
    assert gzsl_accuracy(seen_only, LABELS[:2], SEEN, UNSEEN, gamma).seen == 1.0
