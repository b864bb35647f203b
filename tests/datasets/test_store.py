"""The feature store: layout, lazy reads, completeness marker, resume rules."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from safetensors.numpy import load_file

from zslkit.datasets import DatasetError, IncompleteStoreError, create_store, open_store
from zslkit.datasets.store import store_status


def _rows(n=7, shape=(3, 2, 2), seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float16)


@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_write_finish_and_read_back(tmp_path, fmt):
    rows = _rows()
    writer = create_store(tmp_path / "s", rows.shape, format=fmt, metadata={"backbone": {"model": "x"}, "files": ["a"] * 7})
    writer.write(0, rows[:4])
    writer.write(4, rows[4:])
    store = writer.finish()
    assert store.shape == rows.shape and store.dtype == np.float16 and store.complete
    np.testing.assert_array_equal(store[:], rows)
    np.testing.assert_array_equal(store[[6, 0, 0, 3]], rows[[6, 0, 0, 3]])
    np.testing.assert_array_equal(store[2], rows[2])
    np.testing.assert_array_equal(store[-2], rows[-2])
    np.testing.assert_array_equal(store[1:6:2, 1], rows[1:6:2, 1])
    np.testing.assert_array_equal(store[np.arange(7) % 2 == 0], rows[::2])
    np.testing.assert_array_equal(np.asarray(store, dtype=np.float32), rows.astype(np.float32))
    np.testing.assert_array_equal(store.memmap(), rows)
    assert store.metadata["backbone"] == {"model": "x"}
    # the files are standard: numpy and safetensors read them without zslkit
    if fmt == "npy":
        np.testing.assert_array_equal(np.load(tmp_path / "s" / "features.npy", mmap_mode="r"), rows)
    else:
        np.testing.assert_array_equal(load_file(tmp_path / "s" / "features.safetensors")["features"], rows)
    with pytest.raises(IndexError, match="row 7 out of range for 7 rows"):
        store[7]
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone[[1]], rows[[1]])


def test_incomplete_store_refuses_to_open_and_resumes(tmp_path):
    rows = _rows()
    writer = create_store(tmp_path / "s", rows.shape, metadata={"files": ["a"]})
    writer.write(0, rows[:3])
    with pytest.raises(IncompleteStoreError, match=r"incomplete feature store \(3 of 7 images extracted, no COMPLETE marker\); rerun"):
        open_store(tmp_path / "s")
    partial = open_store(tmp_path / "s", allow_incomplete=True)
    assert not partial.complete and partial.done == 3
    np.testing.assert_array_equal(partial[:3], rows[:3])
    with pytest.raises(IncompleteStoreError, match=r"row 4 is not extracted yet \(3 of 7 are\)"):
        partial[[1, 4]]
    with pytest.raises(IncompleteStoreError, match="only 3 of 7 rows written; not marking complete"):
        writer.finish()
    assert not (tmp_path / "s" / "COMPLETE").exists()
    resumed = create_store(tmp_path / "s", rows.shape, metadata={"files": ["a"]})
    assert resumed.done == 3
    with pytest.raises(DatasetError, match="rows must be written in order: next row is 3, got 0"):
        resumed.write(0, rows[:3])
    resumed.write(3, rows[3:])
    np.testing.assert_array_equal(resumed.finish()[:], rows)
    assert store_status(tmp_path / "s") == {"complete": True, "done": 7, "total": 7, "shape": rows.shape,
                                             "dtype": "float16", "format": "npy", "bytes": rows.nbytes}


def test_resume_requires_same_settings(tmp_path):
    rows = _rows()
    create_store(tmp_path / "s", rows.shape, metadata={"image_size": 448, "files": ["a", "b"]}).write(0, rows[:2])
    with pytest.raises(DatasetError, match=r"holds an unfinished extraction with other settings \(metadata.image_size: 448 in the store, 224 now\)"):
        create_store(tmp_path / "s", rows.shape, metadata={"image_size": 224, "files": ["a", "b"]})
    with pytest.raises(DatasetError, match=r"other settings \(dtype: 'float16' in the store, 'float32' now\)"):
        create_store(tmp_path / "s", rows.shape, dtype="float32", metadata={"image_size": 448, "files": ["a", "b"]})


def test_complete_store_is_never_overwritten(tmp_path):
    rows = _rows()
    writer = create_store(tmp_path / "s", rows.shape)
    writer.write(0, rows)
    writer.finish()
    again = create_store(tmp_path / "s", rows.shape)
    assert again.done == again.total  # nothing left to write
    with pytest.raises(DatasetError, match="holds a complete store with other settings"):
        create_store(tmp_path / "s", rows.shape, metadata={"other": 1})


def test_refuses_foreign_directories_and_bad_arguments(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("mine")
    with pytest.raises(DatasetError, match="exists and is not a zslkit feature store"):
        create_store(tmp_path / "d", (1, 1, 1, 1))
    with pytest.raises(ValueError, match="store dtype must be one of"):
        create_store(tmp_path / "e", (1, 1, 1, 1), dtype="int8")
    with pytest.raises(ValueError, match=r"store shape must be \(N, C, H, W\)"):
        create_store(tmp_path / "e", (3, 4))
    with pytest.raises(DatasetError, match="is not a zslkit feature store"):
        open_store(tmp_path / "d")


def test_non_finite_rows_and_float16_overflow_are_refused(tmp_path):
    writer = create_store(tmp_path / "s", (2, 1, 1, 2))
    with pytest.raises(DatasetError, match=r"non-finite feature for image 1 \(float16 overflows above 65504: use dtype float32\)"):
        writer.write(0, np.array([[[[1.0, 2.0]]], [[[7e4, 0.0]]]], dtype=np.float32))
    assert writer.done == 0


def test_truncated_array_file_is_detected(tmp_path):
    rows = _rows()
    writer = create_store(tmp_path / "s", rows.shape)
    writer.write(0, rows)
    writer.finish()
    path = tmp_path / "s" / "features.npy"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"features.npy: truncated: \d+ bytes, expected \d+ for shape \(7, 3, 2, 2\) float16"):
        open_store(tmp_path / "s")


def test_store_json_is_written_last_during_creation(tmp_path):
    create_store(tmp_path / "s", (2, 1, 1, 1), metadata={"k": [1, 2]})
    info = json.loads((tmp_path / "s" / "store.json").read_text())
    assert info["shape"] == [2, 1, 1, 1] and info["metadata"] == {"k": [1, 2]} and "zslkit_version" in info
    assert not (tmp_path / ".s.creating").exists()


def test_slices_written_by_separate_writers_complete_the_store_only_together(tmp_path):
    """What the processes of a parallel extraction do: one slice of rows each, one progress file each."""
    rows = _rows(n=7)
    path = tmp_path / "s"
    create_store(path, rows.shape)
    first, second = create_store(path, rows.shape, rows=(0, 4)), create_store(path, rows.shape, rows=(4, 7))
    assert (first.start, first.done, first.stop) == (0, 0, 4) and (second.start, second.done, second.stop) == (4, 4, 7)
    second.write(4, rows[4:6])
    first.write(0, rows[:2])
    # rows 0-1 and 4-5 are on disk, and readable; `done` is the unbroken run from row 0
    assert store_status(path)["done"] == 4 and sorted(p.name for p in path.glob("progress-*")) == [
        "progress-0-4.json", "progress-4-7.json",
    ]
    partial = open_store(path, allow_incomplete=True)
    assert (partial.done, partial.written) == (2, 4)
    np.testing.assert_array_equal(partial[[0, 1, 4, 5]], rows[[0, 1, 4, 5]])
    with pytest.raises(IncompleteStoreError, match=r"row 3 is not extracted yet \(4 of 7 are\)"):
        partial[[1, 3]]
    with pytest.raises(IncompleteStoreError, match=r"4 of 7 images extracted"):
        open_store(path)
    with pytest.raises(DatasetError, match=r"rows 4\.\.6 cannot finish the store"):
        second.finish()
    with pytest.raises(IncompleteStoreError, match="only 4 of 7 rows written"):
        create_store(path, rows.shape).finish()
    with pytest.raises(DatasetError, match=r"cannot write rows of shape \(2, 3, 2, 2\) at 6 into rows 4\.\.6"):
        second.write(6, rows[5:7])
    # resumed slices continue after their rows on disk, whichever writer recorded them
    assert create_store(path, rows.shape, rows=(0, 4)).done == 2
    assert create_store(path, rows.shape, rows=(3, 7)).done == 3
    assert create_store(path, rows.shape, rows=(4, 7)).done == 6
    second.write(6, rows[6:])
    first.write(2, rows[2:4])
    store = create_store(path, rows.shape).finish()
    np.testing.assert_array_equal(store[:], rows)
    assert not list(path.glob("progress-*")) and json.loads((path / "progress.json").read_text())["done"] == 7
    with pytest.raises(ValueError, match=r"rows \(5, 9\) are not a slice of the store's 7 rows"):
        create_store(path, rows.shape, rows=(5, 9))
