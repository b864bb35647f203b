import numpy as np
import pytest

import zslkit
from zslkit.datasets import make_synthetic
from zslkit.datasets.synthetic import VARIANTS

SMALL = dict(num_classes=24, family_size=4, images_per_class=10, channels=16, grid=5, embedding_dim=8)


@pytest.fixture(scope="module")
def small():
    return make_synthetic(**SMALL, seed=3)


def test_deterministic_from_seed(small):
    again = make_synthetic(**SMALL, seed=3)
    np.testing.assert_array_equal(small.features, again.features)
    np.testing.assert_array_equal(small.attribute_embeddings, again.attribute_embeddings)
    other = make_synthetic(**SMALL, seed=4)
    assert not np.array_equal(small.features, other.features)


def test_shapes_and_registry(small):
    assert small.features.shape == (240, 16, 5, 5)
    assert small.class_attributes.shape == (24, 6 * 9)
    assert small.attribute_embeddings.shape == (54, 8)
    assert small.attribute_names[0] == "has_head_color::red"
    assert isinstance(zslkit.load_dataset("synthetic", **SMALL), type(small))


def test_class_attributes_are_per_part_value_frequencies(small):
    A = small.class_attributes
    colour = A[:, : 6 * 6].reshape(24, 6, 6)
    pattern = A[:, 6 * 6 :].reshape(24, 6, 3)
    np.testing.assert_allclose(colour.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pattern.sum(-1), 1.0, rtol=1e-5)
    assert (colour.max(-1) >= 0.75 - 1e-6).all()


def test_family_members_share_colours_but_not_their_places(small):
    A = small.class_attributes[:, : 6 * 6].reshape(24, 6, 6)
    dominant = A.argmax(-1)  # (K, parts)
    for f in range(6):
        members = dominant[f * 4 : (f + 1) * 4]
        multisets = {tuple(sorted(m)) for m in members.tolist()}
        assert len(multisets) == 1  # same colours in every variant ...
        assert len({tuple(m) for m in members.tolist()}) > 1  # ... on different parts


def test_xlsa17_style_splits(small):
    s = small.splits
    seen, unseen = set(small.seen_classes), set(small.unseen_classes)
    assert not seen & unseen and len(seen | unseen) == 24
    assert len(unseen) == 6  # 25% of the classes, two per chosen family
    np.testing.assert_array_equal(np.sort(np.concatenate([s["train"], s["val"]])), s["trainval"])
    assert not set(small.labels[s["train"]]) & set(small.labels[s["val"]])
    assert not set(s["trainval"]) & set(s["test_seen"])
    assert set(small.labels[s["test_seen"]]) == seen
    families = np.array(small.metadata["family_of_class"])
    for c in unseen:  # every unseen class has a look-alike among the unseen and the seen
        mates = set(np.flatnonzero(families == families[c])) - {c}
        assert mates & unseen and mates & seen


def test_evidence_sits_at_moving_part_locations():
    ds = make_synthetic(**SMALL, noise=0.0, nuisance=0.0, contrast=(1.0, 1.0), spread=0.0, occlusion=0.0, seed=0)
    energy = np.linalg.norm(ds.features, axis=1).reshape(len(ds.labels), -1)
    active = energy > 1e-9
    assert (active.sum(1) == 6).all()  # exactly one cell per part when nothing is occluded or spread
    assert len({tuple(np.flatnonzero(a)) for a in active[:50]}) > 40  # parts move between images


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of family_size"):
        make_synthetic(num_classes=10, family_size=4)
    with pytest.raises(ValueError, match="num_parts"):
        make_synthetic(num_parts=9)


def within_family_accuracy(ds):
    """Nearest class mean on pooled features, each test_seen image among the seen classes of its family."""
    X, y = ds.pooled_features(), ds.labels
    train, test = ds.splits["trainval"], ds.splits["test_seen"]
    family = np.array(ds.metadata["family_of_class"])
    means = {c: X[train][y[train] == c].mean(0) for c in ds.seen_classes}
    hits = []
    for i in test:
        mates = [c for c in ds.seen_classes if family[c] == family[y[i]]]
        if len(mates) > 1:
            hits.append(mates[int(np.argmin([np.linalg.norm(X[i] - means[c]) for c in mates]))] == y[i])
    return float(np.mean(hits)), len(hits)


def test_pooled_features_tell_family_members_apart_in_fine_grained_but_not_in_parts():
    options = dict(num_classes=24, images_per_class=20, channels=32, grid=5, embedding_dim=8, seed=3)
    fine, n = within_family_accuracy(make_synthetic(**options))  # the default variant
    parts, _ = within_family_accuracy(make_synthetic(**options, variant="parts"))
    assert n >= 50
    assert fine >= 0.8, fine
    assert parts <= 0.6 and fine > parts + 0.3, (fine, parts)


def test_variants_set_their_knobs_and_explicit_values_win():
    fine = make_synthetic(**SMALL)
    assert fine.metadata["variant"] == "fine-grained"
    assert {k: fine.metadata[k] for k in VARIANTS["parts"]} == VARIANTS["fine-grained"]
    parts = make_synthetic(**SMALL, variant="parts", noise=0.0)
    assert {k: parts.metadata[k] for k in VARIANTS["parts"]} == {**VARIANTS["parts"], "noise": 0.0}
    assert VARIANTS["parts"] == {"part_specificity": 0.35, "part_signal": 2.0, "noise": 0.25, "occlusion": 0.15}
    same = make_synthetic(**SMALL, variant="parts", **VARIANTS["fine-grained"])  # every knob given: variant moot
    np.testing.assert_array_equal(same.features, fine.features)


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown synthetic variant 'part'; give one of fine-grained, parts"):
        make_synthetic(**SMALL, variant="part")
