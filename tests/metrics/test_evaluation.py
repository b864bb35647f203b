"""zslkit.metrics.evaluation: the one evaluation, masking other classes, wrapped by ZSLAccuracy."""

import numpy as np
import pytest
import torch

from zslkit.metrics import ZSLAccuracy, ausuc, czsl_accuracy, evaluate, gzsl_accuracy

SEEN, UNSEEN = [0, 1, 2, 3], [4, 5]


def problem(seed, n=60, extra=2):
    """Scores over 6 + ``extra`` classes; the extra ones (not of this problem) score highest."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, size=n)
    scores = rng.normal(size=(n, 6 + extra))
    scores[np.arange(n), labels] += 1.0
    scores[:, 6:] += 10.0  # would win every argmax if not masked
    return scores, labels


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("calibration", [0.0, 0.3])
def test_evaluate_equals_the_problem_without_the_other_classes(seed, calibration):
    scores, labels = problem(seed)
    kept = scores[:, :6]  # the same problem with the foreign columns removed
    got = evaluate(scores, labels, SEEN, UNSEEN, calibration)
    g = gzsl_accuracy(kept, labels, SEEN, UNSEEN, calibration)
    on_unseen = np.isin(labels, UNSEEN)
    assert got.T1 == pytest.approx(czsl_accuracy(kept[on_unseen], labels[on_unseen], UNSEEN), abs=1e-12)
    assert (got.U, got.S, got.H) == pytest.approx((g.unseen, g.seen, g.harmonic), abs=1e-12)
    assert got.AUSUC == pytest.approx(ausuc(kept, labels, SEEN, UNSEEN), abs=1e-12)
    assert got.gamma == calibration


@pytest.mark.parametrize("calibration", [0.0, "best"])
def test_zsl_accuracy_over_batches_is_evaluate_on_all_of_them(calibration):
    scores, labels = problem(4, n=50)
    metric = ZSLAccuracy(SEEN, UNSEEN, calibration=calibration)
    for start in range(0, 50, 16):
        metric.update(torch.tensor(scores[start : start + 16], dtype=torch.float32), torch.tensor(labels[start : start + 16]))
    expected = evaluate(scores.astype(np.float32), labels, SEEN, UNSEEN, calibration).metrics()
    assert metric.compute() == expected
    assert set(expected) == {"T1", "U", "S", "H", "AUSUC"}
    # masked: the foreign classes 6, 7 (scored +10) would otherwise take every prediction
    assert expected["S"] > 0.3 and expected["T1"] > 0.3


def test_zsl_accuracy_reports_t1_zero_without_unseen_images():
    scores, labels = problem(5)
    seen_only = np.isin(labels, SEEN)
    metric = ZSLAccuracy(SEEN, UNSEEN)
    metric.update(torch.tensor(scores[seen_only]), torch.tensor(labels[seen_only]))
    result = metric.compute()
    assert result["T1"] == 0.0 and result["U"] == 0.0
    assert result["S"] == pytest.approx(gzsl_accuracy(scores[seen_only, :6], labels[seen_only], SEEN, UNSEEN).seen)
