"""The standard attribute word vectors shipped with zslkit, and the loaders that use them by default."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

import zslkit
from zslkit.datasets import BENCHMARKS, DatasetError
from zslkit.datasets import standard_vectors as sv

REPO = Path(__file__).resolve().parents[2]
KEYS = ["cub", "sun", "awa2"]


@pytest.mark.parametrize("key", KEYS)
def test_packaged_arrays_equal_the_shared_files_bitwise(key, shared_data):
    shared = shared_data(f"{key}/attribute_w2v.npy")
    packaged = REPO / "zslkit" / "datasets" / "vectors" / f"{key}_attribute_w2v.npy"
    assert packaged.read_bytes() == shared.read_bytes()
    array = np.load(packaged, allow_pickle=False)
    assert array.dtype == np.float32 and array.shape == (BENCHMARKS[key].num_attributes, 300)
    np.testing.assert_array_equal(array, np.load(shared, allow_pickle=False))


@pytest.mark.parametrize("key", KEYS)
def test_recorded_checksums_are_the_files_and_the_docs(key):
    entry = sv.STANDARD_VECTORS[key]
    assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256
    assert entry.shape == (BENCHMARKS[key].num_attributes, 300)
    docs = (REPO / "docs" / "data.md").read_text()
    assert f"`{entry.file}`" in docs and entry.sha256 in docs  # provenance table of docs/data.md


def test_pyproject_ships_the_vectors_as_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"zslkit.datasets" = ["vectors/*.npy"]' in text


def as_benchmark(tiny, monkeypatch, key):
    """The tiny xlsa17 folder rewritten with ``key``'s attribute count, and ``key``'s sizes set to it."""
    info = BENCHMARKS[key]
    rng = np.random.default_rng(5)
    original = rng.uniform(0, 100, size=(info.num_attributes, len(tiny.class_names)))
    tiny.att = original / np.linalg.norm(original, axis=0, keepdims=True)
    tiny.original_att = original
    tiny.write()
    seen = len(np.unique(tiny.labels[tiny.splits["trainval"]]))
    small = dataclasses.replace(info, num_images=tiny.labels.size, num_classes=len(tiny.class_names), num_seen=seen)
    monkeypatch.setitem(BENCHMARKS, key, small)
    return tiny.folder


@pytest.mark.parametrize("key", KEYS)
def test_loaders_use_the_packaged_vectors_by_default_and_say_so(key, tiny_xlsa17, monkeypatch, caplog):
    folder = as_benchmark(tiny_xlsa17, monkeypatch, key)
    dataset = zslkit.load_dataset(key, xlsa17=folder)
    expected = np.load(REPO / "zslkit" / "datasets" / "vectors" / f"{key}_attribute_w2v.npy")
    np.testing.assert_array_equal(dataset.attribute_embeddings, expected)
    assert dataset.metadata["attribute_vectors"] == f"packaged:{key}_attribute_w2v.npy"
    err = caplog.text  # a warning of logger zslkit.datasets.standard_vectors (the CLI shows it on stderr)
    assert f"{key}: no attribute_vectors given; using zslkit's packaged word2vec attribute vectors" in err
    assert f"({BENCHMARKS[key].num_attributes}, 300)" in err


def test_explicit_attribute_vectors_win(tiny_xlsa17, monkeypatch, tmp_path, capsys):
    folder = as_benchmark(tiny_xlsa17, monkeypatch, "awa2")
    mine = np.random.default_rng(9).normal(size=(85, 16)).astype(np.float32)
    np.save(tmp_path / "mine.npy", mine)
    dataset = zslkit.load_dataset("awa2", xlsa17=folder, attribute_vectors=tmp_path / "mine.npy")
    np.testing.assert_array_equal(dataset.attribute_embeddings, mine)
    assert dataset.metadata["attribute_vectors"] == str(tmp_path / "mine.npy")
    assert "packaged" not in capsys.readouterr().err


def test_generic_xlsa17_loader_has_no_default_vectors(tiny_xlsa17):
    dataset = zslkit.load_dataset("xlsa17", path=tiny_xlsa17.folder)
    assert dataset.attribute_embeddings is None and dataset.metadata["attribute_vectors"] is None


def test_a_corrupted_packaged_file_is_refused(tmp_path, monkeypatch):
    entry = sv.STANDARD_VECTORS["sun"]
    array = np.load(entry.path)
    array[3, 7] += 1.0
    np.save(tmp_path / entry.file, array)
    monkeypatch.setattr(sv, "FOLDER", tmp_path)
    with pytest.raises(DatasetError, match=rf"sun_attribute_w2v.npy: SHA-256 [0-9a-f]{{64}} is not the packaged file's {entry.sha256}"):
        sv.standard_attribute_vectors("sun")
    with pytest.raises(ValueError, match=r"no packaged attribute vectors for 'apy'; zslkit ships them for \['awa2', 'cub', 'sun'\]"):
        sv.standard_attribute_vectors("apy")
