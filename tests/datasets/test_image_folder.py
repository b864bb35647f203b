"""xlsa17 image paths mapped onto a local dataset root; missing images reported."""

from __future__ import annotations

import pytest

from zslkit.datasets import DatasetError, MissingImagesError, relative_image_path, resolve_images


@pytest.mark.parametrize(
    ("listed", "relative"),
    [
        ("/BS/Deep_Fragments/work/MSc/CUB_200_2011/CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg",
         "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg"),
        ("/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/antelope/antelope_10001.jpg", "antelope/antelope_10001.jpg"),
        ("/BS/Deep_Fragments/work/MSc/data/SUN/images/a/abbey/sun_aakbdcgfpksytcwj.jpg", "a/abbey/sun_aakbdcgfpksytcwj.jpg"),
        ("C:\\data\\images\\x\\y.jpg", "x/y.jpg"),
    ],
)
def test_relative_path_after_images_or_jpegimages(listed, relative):
    assert relative_image_path(listed) == relative


def test_path_without_anchor_is_an_error():
    with pytest.raises(DatasetError, match=r"has no images/ or JPEGImages/ folder"):
        relative_image_path("/data/birds/001/x.jpg")


def test_resolves_under_root_or_images_folder(tiny_xlsa17):
    listed = [f"/far/away/CUB_200_2011/images/{r}" for r in tiny_xlsa17.relative]
    for root in (tiny_xlsa17.image_root, tiny_xlsa17.image_root / "images"):
        images = resolve_images(listed, root)
        assert images.missing == [] and len(images) == 20
        assert images.paths[5] == tiny_xlsa17.image_root / "images" / tiny_xlsa17.relative[5]
        assert images.relative == tiny_xlsa17.relative
        assert images.require_complete() is images


def test_missing_images_are_reported_not_dropped(tiny_xlsa17):
    for k in (3, 11, 12):
        (tiny_xlsa17.image_root / "images" / tiny_xlsa17.relative[k]).unlink()
    listed = [f"/x/images/{r}" for r in tiny_xlsa17.relative]
    images = resolve_images(listed, tiny_xlsa17.image_root)
    assert len(images.paths) == 20 and images.missing == [3, 11, 12]
    report = images.missing_report(limit=2)
    assert report.startswith(f"3 of 20 images not found under {tiny_xlsa17.image_root / 'images'} (first: ")
    assert tiny_xlsa17.relative[3] in report and tiny_xlsa17.relative[11] in report
    assert tiny_xlsa17.relative[12] not in report and report.endswith(", ...)")
    with pytest.raises(MissingImagesError, match="3 of 20 images not found"):
        images.require_complete()


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="image root directory not found"):
        resolve_images(["/a/images/b.jpg"], tmp_path / "nope")
