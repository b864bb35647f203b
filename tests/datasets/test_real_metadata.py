"""Fixtures with the real sizes and orders of CUB, SUN and AwA2 (from ../shared/data; skipped when absent).

Fake ``res101.mat``/``att_splits.mat`` files are built from the real xlsa17 labels, split
indices and image lists (with the authors' absolute path prefixes, as in the published
files) and must load with the published numbers of images, classes and seen/unseen classes.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

import zslkit
from zslkit.datasets import BENCHMARKS, resolve_images

# How the published res101.mat files prefix the image paths.
PREFIXES = {
    "cub": "/BS/Deep_Fragments/work/MSc/",  # + CUB_200_2011/images/...
    "sun": "/BS/Deep_Fragments/work/MSc/data/SUN/",  # + images/a/abbey/...
    "awa2": "/BS/xian/work/data/",  # + Animals_with_Attributes2//JPEGImages/...
}


def fake_xlsa17(split_file, folder, key, class_attributes=None):
    """Write res101.mat and att_splits.mat from the real split file; returns the npz content."""
    real = dict(np.load(split_file, allow_pickle=False))
    n, k = real["labels"].size, int(real["labels"].max()) + 1
    files = np.empty((n, 1), dtype=object)
    for i, f in enumerate(real["image_files"]):
        files[i, 0] = PREFIXES[key] + str(f)
    scipy.io.savemat(folder / "res101.mat", {
        "features": np.zeros((2, n), np.float32), "labels": (real["labels"] + 1).reshape(-1, 1).astype(np.float64), "image_files": files,
    })
    original = class_attributes if class_attributes is not None else np.random.default_rng(0).uniform(0, 1, (BENCHMARKS[key].num_attributes, k))
    att = original / np.linalg.norm(original, axis=0, keepdims=True)
    locs = {f"{s}_loc": (real[f"{s}_loc"] + 1).reshape(-1, 1).astype(np.float64) for s in ("trainval", "test_seen", "test_unseen")}
    scipy.io.savemat(folder / "att_splits.mat", {"att": att, "original_att": original, **locs})
    return real


@pytest.mark.parametrize("key", ["cub", "sun", "awa2"])
def test_benchmark_loaders_reproduce_published_sizes(key, shared_data, tmp_path):
    split_file = shared_data(f"{key}/xlsa17_splits.npz")
    real = fake_xlsa17(split_file, tmp_path, key)
    dataset = zslkit.load_dataset(key, xlsa17=tmp_path, global_features=False,
                                  attribute_vectors=shared_data(f"{key}/attribute_w2v.npy"))
    info = BENCHMARKS[key]
    assert dataset.num_images == info.num_images and dataset.num_classes == info.num_classes
    assert len(dataset.seen_classes) == info.num_seen and len(dataset.unseen_classes) == info.num_classes - info.num_seen
    np.testing.assert_array_equal(dataset.seen_classes, np.sort(real["seenclasses"]))
    np.testing.assert_array_equal(dataset.unseen_classes, np.sort(real["unseenclasses"]))
    np.testing.assert_array_equal(dataset.labels, real["labels"])
    for split in ("trainval", "test_seen", "test_unseen"):
        np.testing.assert_array_equal(dataset.splits[split], real[f"{split}_loc"])
    assert dataset.attribute_embeddings.shape == (info.num_attributes, 300)
    # every listed path maps onto the dataset root by the part after images/ or JPEGImages/
    relative = [("/" + r).split(f"/{info.image_anchor}/")[-1] for r in real["image_files"]]
    images = resolve_images(dataset.metadata["image_files"], tmp_path, check=False)
    assert images.relative == relative


def test_cub_folder_order_is_not_class_order(shared_data, tmp_path):
    continuous = np.loadtxt(shared_data("cub/class_attribute_labels_continuous.txt"))  # (200, 312), folder order
    real = dict(np.load(shared_data("cub/xlsa17_splits.npz"), allow_pickle=False))
    folders = np.array([f.split("/")[2] for f in real["image_files"]])
    folder_of_class = {int(label): folder for label, folder in zip(real["labels"], folders)}
    folder_number = np.array([int(folder_of_class[c][:3]) - 1 for c in range(200)])
    fake_xlsa17(shared_data("cub/xlsa17_splits.npz"), tmp_path, "cub", class_attributes=continuous[folder_number].T)
    dataset = zslkit.load_dataset("cub", xlsa17=tmp_path, global_features=False,
                                  attribute_names=shared_data("cub/attributes.txt"))
    in_folder_001 = folders == "001.Black_footed_Albatross"
    assert in_folder_001.sum() == 60 and set(dataset.labels[in_folder_001].tolist()) == {150}
    # class 150's attribute row is folder 001's row of the CUB file
    np.testing.assert_allclose(dataset.class_attributes[150], continuous[0] / np.linalg.norm(continuous[0]), rtol=1e-5)
    assert dataset.attribute_names[0] == "has_bill_shape::curved_(up_or_down)"


def test_missing_images_of_a_real_list_are_counted(shared_data, tmp_path, jpeg):
    real = np.load(shared_data("awa2/xlsa17_splits.npz"), allow_pickle=False)
    listed = [PREFIXES["awa2"] + str(f) for f in real["image_files"]]
    root = tmp_path / "Animals_with_Attributes2"
    for f in real["image_files"][:3]:
        jpeg(root / "JPEGImages" / f.split("JPEGImages/")[1], seed=0, size=(8, 8))
    images = resolve_images(listed, root)
    assert len(images.missing) == 37322 - 3 and images.missing[0] == 3
    assert images.missing_report().startswith(f"37319 of 37322 images not found under {root / 'JPEGImages'} (first: ")
