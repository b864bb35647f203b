"""The xlsa17 loader on tiny res101.mat / att_splits.mat files written with scipy."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import zslkit
from zslkit.datasets import DatasetError, load_xlsa17
from zslkit.datasets.xlsa17 import read_att_splits, read_res101


def test_loads_labels_splits_and_attributes_zero_based(tiny_xlsa17):
    dataset = zslkit.load_dataset("xlsa17", path=tiny_xlsa17.folder)
    np.testing.assert_array_equal(dataset.labels, tiny_xlsa17.labels)
    for split, expected in tiny_xlsa17.splits.items():
        np.testing.assert_array_equal(dataset.splits[split], expected, err_msg=split)
    np.testing.assert_allclose(dataset.class_attributes, tiny_xlsa17.att.T, rtol=1e-6)
    np.testing.assert_allclose(dataset.global_features, tiny_xlsa17.features.T, rtol=1e-6)
    assert dataset.num_classes == 5 and dataset.num_attributes == 6
    np.testing.assert_array_equal(dataset.unseen_classes, np.sort(tiny_xlsa17.UNSEEN))
    assert dataset.class_names == tiny_xlsa17.class_names
    assert dataset.name == "tiny" and dataset.features is None


def test_labels_follow_xlsa17_class_order_not_folder_order(tiny_xlsa17):
    dataset = load_xlsa17(tiny_xlsa17.folder)
    files = dataset.metadata["image_files"]
    for j, folder in enumerate(tiny_xlsa17.FOLDERS):
        in_folder = [i for i, f in enumerate(files) if f"/{folder}/" in f]
        assert set(dataset.labels[in_folder].tolist()) == {tiny_xlsa17.FOLDER_TO_CLASS[j]}
        assert dataset.class_names[tiny_xlsa17.FOLDER_TO_CLASS[j]] == folder
    # class k's attribute row is column k of att, whatever folder it came from
    np.testing.assert_allclose(dataset.class_attributes[3], tiny_xlsa17.att[:, 3], rtol=1e-6)


def test_original_att_option(tiny_xlsa17):
    dataset = load_xlsa17(tiny_xlsa17.folder, class_attributes="original_att")
    np.testing.assert_allclose(dataset.class_attributes, tiny_xlsa17.original_att.T, rtol=1e-6)


def test_attribute_vectors_and_names(tiny_xlsa17, tmp_path):
    vectors = np.random.default_rng(3).normal(size=(6, 4))
    with open(tmp_path / "w2v.pkl", "wb") as f:
        pickle.dump(vectors, f)
    (tmp_path / "attributes.txt").write_text("".join(f"{i + 1} has_part::value_{i}\n" for i in range(6)))
    dataset = load_xlsa17(tiny_xlsa17.folder, attribute_vectors=tmp_path / "w2v.pkl", attribute_names=tmp_path / "attributes.txt")
    np.testing.assert_allclose(dataset.attribute_embeddings, vectors, rtol=1e-6)
    assert dataset.attribute_names[2] == "has_part::value_2"
    (tmp_path / "five.txt").write_text("a\nb\nc\nd\ne\n")
    with pytest.raises(DatasetError, match=r"five.txt: 5 attribute names for 6 attributes"):
        load_xlsa17(tiny_xlsa17.folder, attribute_names=tmp_path / "five.txt")


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("res101", lambda c, t: c.update(labels=c["labels"] - 1), r"res101.mat: labels hold 0; res101.mat labels are 1-based"),
        ("att_splits", lambda c, t: c.update(test_seen_loc=c["test_seen_loc"] - 1), r"att_splits.mat: test_seen_loc holds 0; expected 1-based values in \[1, 20\] -- this file's indices look 0-based"),
        ("att_splits", lambda c, t: c.update(trainval_loc=np.vstack([c["trainval_loc"], [[21]]])), r"trainval_loc holds 21, out of range: expected 1-based values in \[1, 20\]"),
        ("att_splits", lambda c, t: c.pop("test_unseen_loc"), r"att_splits.mat: missing variable 'test_unseen_loc' \(found variables: .*trainval_loc"),
        ("res101", lambda c, t: c.pop("image_files"), r"res101.mat: missing variable 'image_files'"),
        ("att_splits", lambda c, t: c["att"].__setitem__((2, 4), np.nan), r"att_splits.mat: att \(I, K\) has a non-finite value \(nan\) at index \(2, 4\)"),
        ("att_splits", lambda c, t: c.update(att=c["att"].T), r"att has 6 class columns \(shape \(5, 6\)\).*transposed\? xlsa17 stores att as \(I, K\)"),
        ("att_splits", lambda c, t: c.update(trainval_loc=c["trainval_loc"] + 0.5), r"trainval_loc must hold whole numbers"),
        ("att_splits", lambda c, t: c.pop("val_loc"), r"has only one of train_loc and val_loc"),
        ("res101", lambda c, t: c.update(features=c["features"].T), r"res101.mat: features are stored \(\(20, 8\)\); expected \(C, 20\)"),
        ("att_splits", lambda c, t: c.update(allclasses_names=c["allclasses_names"][:4]), r"4 allclasses_names for 5 classes"),
    ],
)
def test_bad_files_give_one_line_errors_naming_file_and_problem(tiny_xlsa17, file, change, message):
    content = tiny_xlsa17.res101() if file == "res101" else tiny_xlsa17.att_splits()
    change(content, tiny_xlsa17)
    tiny_xlsa17.write(**{file: content})
    with pytest.raises(DatasetError, match=message) as info:
        load_xlsa17(tiny_xlsa17.folder)
    assert "\n" not in str(info.value)


def test_truncated_and_missing_files(tiny_xlsa17, tmp_path):
    path = tiny_xlsa17.folder / "att_splits.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"att_splits.mat: cannot read MATLAB file .*truncated or not a .mat\?"):
        load_xlsa17(tiny_xlsa17.folder)
    (tiny_xlsa17.folder / "res101.mat").unlink()
    with pytest.raises(DatasetError, match=r"res101.mat: MATLAB file: file not found"):
        load_xlsa17(tiny_xlsa17.folder)
    with pytest.raises(DatasetError, match=r"xlsa17 folder not found"):
        load_xlsa17(tmp_path / "nowhere")


def test_readers_directly(tiny_xlsa17):
    res101 = read_res101(tiny_xlsa17.folder / "res101.mat", features=False)
    assert res101.features is None and res101.num_images == 20
    assert res101.image_files[0].startswith("/BS/authors/machine/CUB_200_2011/images/001.Alpha/")
    splits = read_att_splits(tiny_xlsa17.folder / "att_splits.mat", num_images=20)
    assert splits.att.shape == (5, 6) and set(splits.splits) == {"trainval", "test_seen", "test_unseen", "train", "val"}


def test_benchmark_loaders_check_published_sizes(tiny_xlsa17):
    with pytest.raises(DatasetError, match=r"not the xlsa17 CUB benchmark: found 20 images, 5 classes \(3 seen\), 6 attributes; expected 11788, 200 \(150 seen\), 312"):
        zslkit.load_dataset("cub", xlsa17=tiny_xlsa17.folder)
    assert {"cub", "sun", "awa2", "xlsa17", "feature_h5"} <= set(zslkit.list_components("dataset"))
