"""Fuzzing the file loaders: a damaged file loads, or fails with the loader's one error class naming it.

Each test starts from small valid files (the layouts of ``tests/datasets/conftest.py``),
damages one (truncation, flipped bytes, an overwritten span, a variable of the wrong
type, a missing variable) and loads it. Nothing else than
:class:`~zslkit.datasets.DatasetError` (or :class:`~zslkit.training.checkpoint.CheckpointError`
for checkpoints) may escape, and its message must start with the damaged file's path.
Examples are derandomised, so a run is reproducible; the structured damage (every
variable replaced by every odd value, or removed) is enumerated in full.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zslkit
from tests.datasets.conftest import make_tiny_xlsa17, write_feature_h5
from zslkit.datasets import (
    DatasetError,
    create_store,
    load_attribute_vectors,
    load_feature_h5,
    load_xlsa17,
    open_store,
)
from zslkit.training import TrainConfig, load_checkpoint, train
from zslkit.training.checkpoint import CheckpointError

# ZSLKIT_FUZZ_EXAMPLES=2000 runs a longer, randomised search (the default is small and reproducible).
_EXAMPLES = os.environ.get("ZSLKIT_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_EXAMPLES or 30), deadline=None, derandomize=not _EXAMPLES,
                suppress_health_check=list(HealthCheck))

damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("span"), st.floats(0.0, 0.999), st.integers(1, 64), st.integers(0, 2**32 - 1)),
)


def apply_damage(path: Path, how) -> None:
    data = bytearray(path.read_bytes())
    kind = how[0]
    if kind == "truncate":
        data = data[: int(how[1] * len(data))]
    elif kind == "flip":
        for where, mask in how[1]:
            data[int(where * len(data))] ^= mask
    else:
        start = int(how[1] * len(data))
        noise = np.random.default_rng(how[3]).integers(0, 256, size=how[2], dtype=np.uint8).tobytes()
        data[start : start + how[2]] = noise[: len(data) - start]
    path.write_bytes(bytes(data))


def loads_or_names_the_file(load, damaged: Path, error=DatasetError) -> None:
    """``load()`` succeeds, or raises ``error`` whose message starts with a path inside ``damaged``'s folder."""
    try:
        load()
    except error as exc:
        assert str(exc).startswith(str(damaged.parent)), f"error does not name the file: {exc}"
        assert "\n" not in str(exc).strip(), f"error is not one line: {exc!r}"


def load_and_read_h5(path: Path) -> None:
    np.asarray(load_feature_h5(path).features[:])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Valid files: an xlsa17 folder, a feature-map HDF5 file, word vectors, a store and a checkpoint."""
    root = tmp_path_factory.mktemp("originals")
    tiny = make_tiny_xlsa17(root, with_images=False)
    write_feature_h5(root / "maps.h5", tiny)
    vectors = np.random.default_rng(0).normal(size=(6, 5))
    np.save(root / "w2v.npy", vectors)
    (root / "w2v.pkl").write_bytes(pickle.dumps(vectors, protocol=2))
    rows = np.random.default_rng(1).normal(size=(5, 3, 2, 2))
    writer = create_store(root / "store", rows.shape, metadata={"files": ["a", "b", "c", "d", "e"]})
    writer.write(0, rows)
    writer.finish()
    data = zslkit.load_dataset("synthetic", num_classes=8, images_per_class=4, channels=4, grid=3, embedding_dim=3)
    train(data, "msdn", TrainConfig(epochs=1, batch_size=16), out_dir=root / "run", progress=False)
    return {"tiny": tiny, "root": root, "data": data}


def copy_of(originals, name: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    """A private copy of one original (a file or a folder)."""
    scratch = tempfile.TemporaryDirectory()
    source = originals["root"] / name
    target = Path(scratch.name) / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return scratch, target


def damage_then_load(originals, name: str, which: str | None, how, load, error=DatasetError) -> None:
    """Damage ``which`` (a file inside the copied original ``name``; ``None``: the original itself), then ``load(copy)``."""
    scratch, target = copy_of(originals, name)
    with scratch:
        damaged = target / which if which else target
        apply_damage(damaged, how)
        loads_or_names_the_file(partial(load, target), damaged, error)


def read_store(path: Path) -> None:
    open_store(path)[:]


def build_from_checkpoint(path: Path) -> None:
    zslkit.training.build_model(load_checkpoint(path))


@FUZZ
@given(which=st.sampled_from(["res101.mat", "att_splits.mat"]), how=damage)
def test_damaged_xlsa17_files(originals, which, how):
    damage_then_load(originals, "xlsa17/data/TINY", which, how, load_xlsa17)


@FUZZ
@given(how=damage)
def test_damaged_feature_h5(originals, how):
    damage_then_load(originals, "maps.h5", None, how, load_and_read_h5)


@FUZZ
@given(which=st.sampled_from(["w2v.npy", "w2v.pkl"]), how=damage)
def test_damaged_word_vectors(originals, which, how):
    damage_then_load(originals, which, None, how, partial(load_attribute_vectors, num_attributes=6))


@FUZZ
@given(which=st.sampled_from(["features.npy", "store.json", "progress.json", "COMPLETE"]), how=damage)
def test_damaged_store(originals, which, how):
    damage_then_load(originals, "store", which, how, read_store)


@FUZZ
@given(which=st.sampled_from(["epoch_001.json", "epoch_001.safetensors"]), how=damage)
def test_damaged_checkpoint(originals, which, how):
    damage_then_load(originals, "run", which, how, build_from_checkpoint, CheckpointError)


# ------------------------------------------------------------------ structured damage
#: Replacements for one variable: text, empty, extra dimensions, complex, boolean, inf, huge, int8, absent.
ODD_VALUES = {
    "text": "text", "strings": np.array(["a", "b"]), "empty": np.zeros((0,)), "3d": np.zeros((2, 3, 4)),
    "complex": np.array([[1 + 2j]]), "bool": np.array([True, False]), "inf": np.full((3, 3), np.inf),
    "huge": np.array([[2.0**40]]), "int8": np.arange(7, dtype=np.int8).reshape(7, 1), "absent": None,
}
RES101_KEYS = ("features", "labels", "image_files")
ATT_SPLITS_KEYS = ("att", "original_att", "allclasses_names", "trainval_loc", "test_seen_loc", "test_unseen_loc",
                   "train_loc", "val_loc")


@pytest.mark.parametrize("which, key", [("res101", k) for k in RES101_KEYS] + [("att_splits", k) for k in ATT_SPLITS_KEYS])
def test_xlsa17_variables_of_the_wrong_type_or_missing(originals, which, key):
    tiny = originals["tiny"]
    for value in ODD_VALUES.values():
        scratch, folder = copy_of(originals, "xlsa17/data/TINY")
        with scratch:
            content = tiny.res101() if which == "res101" else tiny.att_splits()
            if value is None:
                del content[key]
            else:
                content[key] = value
            scipy.io.savemat(folder / f"{which}.mat", content)
            with np.errstate(all="ignore"):
                loads_or_names_the_file(partial(load_xlsa17, folder), folder / f"{which}.mat")


@pytest.mark.parametrize("key", ["feature_map", "labels", "trainval_loc", "test_seen_loc", "test_unseen_loc", "att", "w2v_att"])
def test_h5_datasets_of_the_wrong_type_or_missing(originals, key):
    for value in ODD_VALUES.values():
        scratch, path = copy_of(originals, "maps.h5")
        with scratch:
            with h5py.File(path, "a") as f:
                del f[key]
                if value is not None:
                    array = np.asarray(value)
                    f.create_dataset(key, data=array.astype("S") if array.dtype.kind == "U" else array)
            loads_or_names_the_file(partial(load_and_read_h5, path), path)


@pytest.mark.parametrize("dtype", ["int8", "uint16", "bool", "complex64", "float16", "U3", "object", "V4"])
def test_word_vectors_of_other_dtypes_and_shapes(dtype, tmp_path):
    for shape in [(6, 5), (6,), (6, 5, 1), (0, 5)]:
        path = tmp_path / f"w{len(shape)}{shape[0]}.npy"
        np.save(path, np.zeros(shape, dtype=dtype), allow_pickle=True)
        loads_or_names_the_file(partial(load_attribute_vectors, path, num_attributes=6), path)
