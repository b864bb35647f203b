"""``zslkit extract`` and ``zslkit data info/check`` end to end on a tiny xlsa17 benchmark with real JPEGs."""

from __future__ import annotations

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.datasets import DatasetError, create_store, load_xlsa17


def extract(tiny, out, *extra):
    return main(["extract", "--dataset-root", str(tiny.image_root), "--xlsa17", str(tiny.folder), "--out", str(out),
                 "--backbone", "test_resnet", "--random-init", "--image-size", "32", "--batch-size", "8",
                 "--workers", "0", "--no-progress", *extra])


def test_extract_then_load_and_check(tiny_xlsa17, tmp_path, capsys):
    assert extract(tiny_xlsa17, tmp_path / "store") == 0
    assert "wrote" in capsys.readouterr().out
    dataset = load_xlsa17(tiny_xlsa17.folder, features=tmp_path / "store")
    assert dataset.feature_shape == (96, 1, 1) and dataset.features.dtype == np.float16
    np.testing.assert_array_equal(dataset.labels, tiny_xlsa17.labels)
    meta = dataset.features.metadata
    assert meta["files"] == tiny_xlsa17.relative and meta["dataset"] == "TINY"
    assert set(meta["split_files_sha256"]) == {"res101.mat", "att_splits.mat"}

    assert main(["data", "info", str(tmp_path / "store")]) == 0
    info = capsys.readouterr().out
    assert "20 x 96 x 1 x 1 float16" in info and "complete" in info and "model=test_resnet" in info
    argv = ["data", "check", "--xlsa17", str(tiny_xlsa17.folder), "--dataset-root", str(tiny_xlsa17.image_root),
            "--features", str(tmp_path / "store")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "images: all 20 found" in out and out.strip().endswith("ok")

    # the split files changed since extraction: check notices through the recorded checksums
    content = tiny_xlsa17.att_splits()
    content["att"] = content["att"] * 2
    tiny_xlsa17.write(att_splits=content)
    assert main(argv) == 1
    assert "extracted with other xlsa17 files" in capsys.readouterr().out


def test_missing_images_are_reported_by_check_and_extract(tiny_xlsa17, tmp_path, capsys):
    (tiny_xlsa17.image_root / "images" / tiny_xlsa17.relative[7]).unlink()
    assert main(["data", "check", "--xlsa17", str(tiny_xlsa17.folder), "--dataset-root", str(tiny_xlsa17.image_root)]) == 1
    assert f"PROBLEM: 1 of 20 images not found under {tiny_xlsa17.image_root / 'images'}" in capsys.readouterr().out
    assert extract(tiny_xlsa17, tmp_path / "store") == 2
    err = capsys.readouterr().err
    assert "1 of 20 images not found" in err and tiny_xlsa17.relative[7] in err
    assert not (tmp_path / "store").exists()


def test_extract_needs_weights(tiny_xlsa17, tmp_path, capsys):
    argv = ["extract", "--dataset-root", str(tiny_xlsa17.image_root), "--xlsa17", str(tiny_xlsa17.folder), "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    assert "give --weights PATH" in capsys.readouterr().err


def test_info_on_xlsa17_folder_and_h5(tiny_xlsa17, write_h5, tmp_path, capsys):
    assert main(["data", "info", str(tiny_xlsa17.folder)]) == 0
    out = capsys.readouterr().out
    assert "images=20, classes=5 (seen 3, unseen 2), attributes=6" in out and "trainval 9, test_seen 3, test_unseen 8, train 6, val 3" in out
    write_h5(tmp_path / "f.h5", tiny_xlsa17)
    assert main(["data", "info", str(tmp_path / "f.h5")]) == 0
    assert "region features: (20, 8, 3, 3) float32 (H5Rows, read lazily)" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "nothing")]) == 2


def test_store_of_another_image_list_is_refused(tiny_xlsa17, tmp_path):
    files = list(reversed(tiny_xlsa17.relative))
    writer = create_store(tmp_path / "s", (20, 2, 1, 1), metadata={"files": files})
    writer.write(0, np.zeros((20, 2, 1, 1)))
    writer.finish()
    with pytest.raises(DatasetError, match=r"the store was extracted for another image list than .*res101.mat \(image 0: '005.Echo/Echo_0003.jpg' in the store, '001.Alpha/Alpha_0000.jpg' in res101.mat\)"):
        load_xlsa17(tiny_xlsa17.folder, features=tmp_path / "s")
