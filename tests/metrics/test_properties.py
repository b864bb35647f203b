"""Property-based checks of the metric invariants (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from zslkit.metrics import ausuc, gzsl_accuracy, harmonic_mean, per_class_accuracy, seen_unseen_curve


@st.composite
def scored_batches(draw):
    k = draw(st.integers(3, 7))
    n = draw(st.integers(k, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)])  # every class present
    scores = rng.normal(size=(n, k)).round(3)  # rounding creates ties on purpose
    n_seen = draw(st.integers(1, k - 1))
    return scores, labels, np.arange(n_seen), np.arange(n_seen, k), rng


@settings(max_examples=40, deadline=None)
@given(scored_batches(), st.floats(-2, 2))
def test_gzsl_is_invariant_to_sample_order(batch, gamma):
    scores, labels, seen, unseen, rng = batch
    perm = rng.permutation(len(labels))
    assert gzsl_accuracy(scores, labels, seen, unseen, gamma) == gzsl_accuracy(
        scores[perm], labels[perm], seen, unseen, gamma
    )


@settings(max_examples=40, deadline=None)
@given(scored_batches())
def test_per_class_accuracy_ignores_class_size(batch):
    scores, labels, *_ = batch
    pred = scores.argmax(1)
    # duplicating every image of one class leaves the per-class mean unchanged
    c = labels[0]
    extra = labels == c
    dup_pred = np.concatenate([pred, pred[extra]])
    dup_lab = np.concatenate([labels, labels[extra]])
    assert np.isclose(per_class_accuracy(pred, labels), per_class_accuracy(dup_pred, dup_lab))


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_harmonic_mean_bounds(u, s):
    h = harmonic_mean(u, s)
    assert min(u, s) - 1e-12 <= h <= max(u, s) + 1e-12
    assert h <= (u + s) / 2 + 1e-12


@settings(max_examples=30, deadline=None)
@given(scored_batches())
def test_curve_is_monotone_and_ausuc_bounded(batch):
    scores, labels, seen, unseen, _ = batch
    curve = seen_unseen_curve(scores, labels, seen, unseen)
    assert np.all(np.diff(curve.unseen) >= -1e-12) and np.all(np.diff(curve.seen) <= 1e-12)
    assert curve.unseen[0] == 0 and curve.seen[-1] == 0
    area = ausuc(scores, labels, seen, unseen)
    assert 0.0 <= area <= curve.unseen.max() * curve.seen.max() + 1e-12
