"""``synthetic_images``: the synthetic dataset's draws as pictures; same classes, attributes and splits."""

from __future__ import annotations

import numpy as np
import pytest

import zslkit
from zslkit.datasets.synthetic_images import SyntheticImages

SMALL = dict(num_classes=16, family_size=4, images_per_class=12, embedding_dim=8, seed=5)
CLEAN = dict(noise=0.0, nuisance=0.0, contrast=(1.0, 1.0))
#: The test's own idea of each colour name (not the generator's table): the drawn colour must be nearest its name.
PALETTE = {"red": (1, 0, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "black": (0, 0, 0), "white": (1, 1, 1),
           "brown": (0.55, 0.3, 0.1)}


@pytest.fixture(scope="module")
def clean():
    return zslkit.load_dataset("synthetic_images", **SMALL, **CLEAN, image_size=48)


def test_same_classes_attributes_and_splits_as_the_feature_form():
    images = zslkit.load_dataset("synthetic_images", **SMALL)
    features = zslkit.load_dataset("synthetic", **SMALL)
    assert images.name == "synthetic_images" and images.metadata["form"] == "images"
    assert images.features.shape == (16 * 12, 3, 56, 56) and images.features[[0]].dtype == np.float32
    np.testing.assert_array_equal(images.labels, features.labels)
    np.testing.assert_array_equal(images.class_attributes, features.class_attributes)
    np.testing.assert_array_equal(images.attribute_embeddings, features.attribute_embeddings)
    assert images.attribute_names == features.attribute_names and images.class_names == features.class_names
    assert images.splits.keys() == features.splits.keys()
    for split in features.splits:
        np.testing.assert_array_equal(images.splits[split], features.splits[split])
    # metadata["pixels"] says how the stored bytes became the values read (CLIP undoes it)
    norm = images.metadata["pixels"]
    np.testing.assert_allclose(images.features[[0]] * norm["std"] + norm["mean"], images.features.pixels[[0]] / 255.0,
                               atol=1e-6)
    again = zslkit.load_dataset("synthetic_images", **SMALL)
    np.testing.assert_array_equal(again.features.pixels, images.features.pixels)
    other = zslkit.load_dataset("synthetic_images", **{**SMALL, "seed": 6})
    assert not np.array_equal(other.features.pixels, images.features.pixels)


def test_evidence_is_drawn_inside_the_boxes_of_the_visible_parts_only(clean):
    pixels, boxes, visible = clean.features.pixels, clean.features.boxes, clean.features.visible
    grid, size = 7, 48
    corners = {i * size // grid for i in range(grid)}  # a cell's corner: floor(i * S / grid)
    background = np.full(pixels.shape, 128, dtype=np.uint8)  # grey 0.5, no noise
    inside = np.zeros(pixels.shape[:1] + pixels.shape[2:], dtype=bool)
    for n in range(len(pixels)):
        for p in range(boxes.shape[1]):
            top, left, bottom, right = boxes[n, p]
            assert (bottom - top, right - left) == (size // grid,) * 2 and top in corners and left in corners
            drawn = (pixels[n, :, top:bottom, left:right] != 128).any()
            assert drawn == visible[n, p], (n, p)
            if visible[n, p]:
                inside[n, top:bottom, left:right] = True
    changed = (pixels != background).any(axis=1)
    assert changed.any() and not (changed & ~inside).any()
    assert 0.05 < 1 - visible.mean() < 0.5  # fine-grained's occlusion, 0.25


def test_each_parts_colour_is_its_attribute_and_follows_the_class(clean):
    """The pixel at the centre of a solid part's shape is nearest the colour its attribute names."""
    names = clean.attribute_names
    parts = clean.metadata["parts"]
    images = clean.features
    palette = np.array(list(PALETTE.values()))
    agree, checked = 0, 0
    for n in range(len(images.pixels)):
        k = clean.labels[n]
        for p, part in enumerate(parts):
            if not images.visible[n, p] or images.pattern[n, p] != 0:  # solid parts only: no dark stripes or spots
                continue
            top, left, bottom, right = images.boxes[n, p]
            centre = images.pixels[n, :, (top + bottom) // 2, (left + right) // 2] / 255.0
            drawn = list(PALETTE)[int(np.argmin(((palette - centre) ** 2).sum(axis=1)))]
            attribute = names.index(f"has_{part}_color::{drawn}")
            assert f"has_{part}_color::{drawn}" == names[attribute]
            block = [i for i, name in enumerate(names) if name.startswith(f"has_{part}_color::")]
            checked += 1
            agree += int(attribute == block[int(np.argmax(clean.class_attributes[k, block]))])
    assert checked > 100
    assert agree / checked > 0.7  # the class's dominant colour of that part, with probability 0.75..0.95


def test_images_read_as_normalised_floats_and_bad_sizes_are_refused(clean):
    rows = clean.features[np.array([3, 1])]
    np.testing.assert_allclose(rows[0], (clean.features.pixels[3] / 255.0 - 0.5) / 0.25, rtol=0, atol=1e-6)
    assert isinstance(clean.features, SyntheticImages)
    with pytest.raises(ValueError, match="image_size 20 leaves the 7x7 cells under 3 px"):
        zslkit.load_dataset("synthetic_images", **SMALL, image_size=20)
