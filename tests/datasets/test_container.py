import numpy as np
import pytest

from zslkit.datasets import DatasetError, ZSLDataset


def make(**over):
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    base = dict(
        name="toy",
        labels=labels,
        class_attributes=np.eye(4, 3, dtype=np.float32) + 0.1,
        splits={"trainval": [0, 2], "test_seen": [1, 3], "test_unseen": [4, 5, 6, 7], "train": [0], "val": [2]},
        features=np.zeros((8, 2, 2, 2), dtype=np.float32),
    )
    base.update(over)
    return ZSLDataset(**base)


def test_classes_and_pooling():
    ds = make(features=np.arange(8 * 2 * 4, dtype=np.float32).reshape(8, 2, 2, 2))
    assert ds.seen_classes.tolist() == [0, 1] and ds.unseen_classes.tolist() == [2, 3]
    np.testing.assert_allclose(ds.pooled_features([1]), [[9.5, 13.5]])


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(labels=np.array([0, 0, 1, 1, 2, 2, 3, 9])), r"labels must lie in \[0, 4\)"),
        (dict(splits={"trainval": [0, 2], "test_seen": [1], "test_unseen": [4, 8]}), "outside"),
        (dict(splits={"trainval": [0, 2, 4], "test_seen": [1], "test_unseen": [4, 6]}), "overlap"),
        (dict(splits={"trainval": [0], "test_seen": [2], "test_unseen": [4]}), "test_seen holds class 1"),
        (dict(splits={"trainval": [0], "test_unseen": [4]}), "missing split 'test_seen'"),
        (dict(features=np.zeros((7, 2, 2, 2))), "features has 7 rows"),
        (dict(features=np.zeros((8, 2, 4))), r"\(N, C, H, W\)"),
        (dict(attribute_embeddings=np.zeros((5, 3))), r"attribute_embeddings must be \(3, D\)"),
        (dict(class_attributes=np.full((4, 3), np.nan)), r"non-finite value \(nan\) at class 0, attribute 0"),
    ],
)
def test_inconsistent_parts_name_the_field(override, message):
    with pytest.raises(DatasetError, match=message):
        make(**override)


def test_validation_view_hides_test_images():
    ds = make(splits={"trainval": [0, 1, 2], "test_seen": [3], "test_unseen": [4, 5, 6, 7], "train": [0, 1], "val": [2]})
    view = ds.validation_view()
    used = set(np.concatenate(list(view.splits.values())).tolist())
    assert used <= {0, 1, 2}
    assert view.unseen_classes.tolist() == [1] and view.seen_classes.tolist() == [0]
