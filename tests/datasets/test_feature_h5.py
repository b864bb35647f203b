"""Feature-map HDF5 files in the DAZLE/TransZero/MSDN layout, read lazily."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import zslkit
from zslkit.datasets import DatasetError, H5Rows, load_feature_h5, load_xlsa17


def test_loads_layout_and_reads_features_lazily(tiny_xlsa17, write_h5, tmp_path):
    maps = write_h5(tmp_path / "feature_map_ResNet_101_TINY.hdf5", tiny_xlsa17)
    dataset = zslkit.load_dataset("feature_h5", path=tmp_path / "feature_map_ResNet_101_TINY.hdf5")
    assert isinstance(dataset.features, H5Rows) and dataset.feature_shape == (8, 3, 3)
    np.testing.assert_array_equal(dataset.labels, tiny_xlsa17.labels)
    np.testing.assert_allclose(dataset.class_attributes, tiny_xlsa17.att.T, rtol=1e-6)
    for split in ("trainval", "test_seen", "test_unseen"):
        np.testing.assert_array_equal(dataset.splits[split], tiny_xlsa17.splits[split])
    assert dataset.attribute_embeddings.shape == (6, 5)
    order = np.array([7, 2, 2, 19, 0])
    np.testing.assert_array_equal(dataset.features[order], maps[order])
    np.testing.assert_array_equal(dataset.features[3:6, :, 1], maps[3:6, :, 1])
    np.testing.assert_array_equal(dataset.features[-1], maps[-1])
    np.testing.assert_allclose(dataset.pooled_features([4, 5]), maps[[4, 5]].mean(axis=(2, 3)), rtol=1e-6)


def test_pickles_for_dataloader_workers(tiny_xlsa17, write_h5, tmp_path):
    maps = write_h5(tmp_path / "f.h5", tiny_xlsa17)
    rows = H5Rows(tmp_path / "f.h5")
    rows[0]  # open the file, then pickle
    clone = pickle.loads(pickle.dumps(rows))
    np.testing.assert_array_equal(clone[[5, 1]], maps[[5, 1]])


def test_xlsa17_with_h5_features_checks_label_order(tiny_xlsa17, write_h5, tmp_path):
    maps = write_h5(tmp_path / "f.h5", tiny_xlsa17)
    dataset = load_xlsa17(tiny_xlsa17.folder, features=tmp_path / "f.h5")
    np.testing.assert_array_equal(dataset.features[[0, 19]], maps[[0, 19]])
    shuffled = tiny_xlsa17.labels.copy()
    shuffled[[0, 8]] = shuffled[[8, 0]]
    write_h5(tmp_path / "g.h5", tiny_xlsa17, labels=shuffled)
    with pytest.raises(DatasetError, match=r"g.h5: labels disagree with .*res101.mat at image 0"):
        load_xlsa17(tiny_xlsa17.folder, features=tmp_path / "g.h5")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": "one_based"}, r"labels holds 5, out of range: expected 0-based values in \[0, 4\] -- looks 1-based"),
        ({"trainval_loc": "one_based"}, r"trainval_loc holds 20, out of range: expected 0-based values in \[0, 19\] -- looks 1-based"),
        ({"att": "transposed"}, r"att has shape \(6, 5\): looks like xlsa17's \(I, K\); this format stores \(K, I\)"),
        ({"trainval_loc": None}, r"missing dataset 'trainval_loc' \(found datasets: att, feature_map"),
        ({"feature_map": "flat"}, r"feature_map must be \(N, C, H, W\), found shape \(20, 8\)"),
        ({"att": "nan"}, r"att \(K, I\) has a non-finite value \(nan\) at index \(1, 2\)"),
        ({"w2v_att": "short"}, r"w2v_att must be \(6, D\) for 6 attributes, found shape \(4, 5\)"),
    ],
)
def test_bad_files(tiny_xlsa17, write_h5, tmp_path, overrides, message):
    base = {"labels": tiny_xlsa17.labels, "trainval_loc": tiny_xlsa17.splits["trainval"], "att": tiny_xlsa17.att.T.copy()}
    values = {}
    for key, how in overrides.items():
        if how == "one_based":
            values[key] = base[key] + 1
        elif how == "transposed":
            values[key] = tiny_xlsa17.att
        elif how == "flat":
            values[key] = np.zeros((20, 8), np.float32)
        elif how == "nan":
            values[key] = base[key]
            values[key][1, 2] = np.nan
        elif how == "short":
            values[key] = np.zeros((4, 5))
        else:
            values[key] = how
    write_h5(tmp_path / "bad.h5", tiny_xlsa17, **values)
    with pytest.raises(DatasetError, match=message) as info:
        load_feature_h5(tmp_path / "bad.h5")
    assert str(info.value).startswith(str(tmp_path / "bad.h5"))


def test_truncated_file(tiny_xlsa17, write_h5, tmp_path):
    write_h5(tmp_path / "f.h5", tiny_xlsa17)
    data = (tmp_path / "f.h5").read_bytes()
    (tmp_path / "f.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"f.h5: cannot open HDF5 file .*truncated or not HDF5\?"):
        load_feature_h5(tmp_path / "f.h5")
