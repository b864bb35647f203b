"""Resident features: rows read once onto a device, served as float32 batches, exactly the source's values."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import zslkit
from zslkit.datasets import DatasetError, ResidentFeatures, create_store, make_resident, make_synthetic
from zslkit.datasets.resident import free_memory, resident_bytes
from zslkit.training import predict_scores, read_batch


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rows = np.random.default_rng(0).normal(size=(30, 8, 3, 3)).astype(np.float16)
    writer = create_store(tmp_path_factory.mktemp("resident") / "s", rows.shape)
    writer.write(0, rows)
    return writer.finish(), rows


def test_rows_keep_the_source_dtype_and_come_back_as_float32(store):
    source, rows = store
    held = ResidentFeatures.load(source, [29, 3, 7, 3, 12, 0], "cpu", chunk=2)
    assert held.rows.dtype == torch.float16 and held.dtype == np.float16
    assert held.images.tolist() == [0, 3, 7, 12, 29]  # sorted, each once
    assert held.shape == (30, 8, 3, 3) and len(held) == 30
    assert held.nbytes == 5 * 8 * 3 * 3 * 2 == resident_bytes(source, 5)
    wanted = [12, 0, 12, 29, 3]  # unsorted, repeated
    batch = held.take(wanted)
    assert batch.dtype == torch.float32
    assert torch.equal(batch, torch.from_numpy(rows[wanted].astype(np.float32)))
    assert torch.equal(batch, read_batch(source, np.array(wanted)))  # the trainer's two paths agree
    assert torch.equal(read_batch(held, np.array(wanted)), batch)
    np.testing.assert_array_equal(held[[7, 0]], rows[[7, 0]])  # numpy view in the stored dtype
    np.testing.assert_array_equal(held[7], rows[7])
    everything = ResidentFeatures.load(source, None, "cpu")
    np.testing.assert_array_equal(everything[2:9:3], rows[2:9:3])


def test_float32_sources_stay_float32():
    rows = np.random.default_rng(1).normal(size=(6, 2, 2, 2)).astype(np.float32)
    held = ResidentFeatures.load(rows, None, "cpu")
    assert held.rows.dtype == torch.float32
    assert torch.equal(held.take([5, 1]), torch.from_numpy(rows[[5, 1]]))


def test_a_float32_source_can_be_held_as_float16_rounded_once():
    rows = np.random.default_rng(2).normal(size=(6, 4, 2, 2)).astype(np.float32)
    held = ResidentFeatures.load(rows, [4, 1], "cpu", dtype="float16")
    assert held.rows.dtype == torch.float16 and held.nbytes == 2 * 4 * 2 * 2 * 2 == resident_bytes(rows, 2, "float16")
    assert torch.equal(held.take([4, 1]), torch.from_numpy(rows[[4, 1]].astype(np.float16).astype(np.float32)))
    rows[1, 2, 0, 1] = 1e5  # finite in float32, beyond float16's 65504
    with pytest.raises(DatasetError, match=r"features of image 1 reach 100000, beyond float16's range .*resident_dtype: source"):
        ResidentFeatures.load(rows, None, "cpu", dtype="float16")
    with pytest.raises(ValueError, match="resident dtype must be None .* got 'int8'"):
        ResidentFeatures.load(rows, None, "cpu", dtype="int8")


def test_images_not_held_and_bad_indices_are_named(store):
    source, _ = store
    held = ResidentFeatures.load(source, [1, 2], "cpu")
    with pytest.raises(DatasetError, match=r"image 5 is not among the 2 images held on cpu"):
        held.take([1, 5])
    with pytest.raises(IndexError, match=r"must be in \[0, 30\), found \[1, 30\]"):
        held.take([1, 30])
    with pytest.raises(IndexError, match=r"must be in \[0, 30\)"):
        ResidentFeatures.load(source, [-1, 2], "cpu")


def test_a_non_finite_row_is_refused_at_load_naming_the_image():
    rows = np.ones((5, 2, 1, 1), dtype=np.float32)
    rows[3, 1, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="features of image 3 hold a non-finite value"):
        ResidentFeatures.load(rows, None, "cpu", chunk=2)
    assert ResidentFeatures.load(rows, [0, 1, 4], "cpu").rows.shape[0] == 3  # image 3 is not read


def test_restricting_and_moving_reuses_or_selects_rows(store):
    source, rows = store
    held = ResidentFeatures.load(source, None, "cpu")
    assert held.to("cpu") is held
    part = held.to("cpu", [4, 2])
    assert part.images.tolist() == [2, 4]
    assert torch.equal(part.take([4]), torch.from_numpy(rows[[4]].astype(np.float32)))
    assert ResidentFeatures.load(held, [2], "cpu").images.tolist() == [2]


def test_make_resident_holds_the_named_splits_and_predictions_do_not_change():
    data = make_synthetic(num_classes=12, images_per_class=6, seed=3)
    resident = make_resident(data, "cpu", ("test_seen", "test_unseen"))
    held = set(resident.features.images.tolist())
    assert held == set(data.splits["test_seen"].tolist()) | set(data.splits["test_unseen"].tolist())
    assert resident.labels is data.labels and resident.features.shape == data.features.shape
    torch.manual_seed(0)
    model = zslkit.create_model(
        "msdn", class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
        seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=data.feature_dim,
    )
    for split in ("test_seen", "test_unseen"):
        expected = predict_scores(model, data, data.splits[split], batch_size=7)
        np.testing.assert_array_equal(predict_scores(model, resident, resident.splits[split], batch_size=7), expected)
    with pytest.raises(DatasetError, match="is not among"):
        predict_scores(model, resident, data.splits["trainval"][:3])
    with pytest.raises(KeyError, match="has no split 'tset'"):
        make_resident(data, "cpu", "tset")


def test_make_resident_refuses_what_does_not_fit():
    data = make_synthetic(num_classes=12, images_per_class=6, seed=3)
    needed = resident_bytes(data.features, len(data.labels))
    assert needed == data.features[:].nbytes  # float32 source: as many bytes as the array
    with pytest.raises(MemoryError, match=r"resident features need 0\.\d\d GiB for 72 images .* free on cpu"):
        make_resident(data, "cpu", max_fraction=needed / free_memory("cpu") / 10)


def test_free_host_memory_is_positive_and_below_the_physical_memory():
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < free_memory("cpu") <= physical
