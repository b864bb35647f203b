"""Attribute vectors (.npy, safe .pkl) and attribute-name files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch

from zslkit.datasets import DatasetError, load_attribute_vectors, read_attribute_names


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_npy_and_pkl_as_the_paper_repos_ship_them(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(5, 300))  # float64, like DAZLE's pickles
    np.save(tmp_path / "w.npy", vectors)
    for protocol in (2, 4, 5):
        with open(tmp_path / f"w{protocol}.pkl", "wb") as f:
            pickle.dump(vectors, f, protocol=protocol)
        loaded = load_attribute_vectors(tmp_path / f"w{protocol}.pkl", num_attributes=5)
        assert loaded.dtype == np.float32
        np.testing.assert_allclose(loaded, vectors, rtol=1e-6)
    np.testing.assert_allclose(load_attribute_vectors(tmp_path / "w.npy"), vectors, rtol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_Exploit(), r"refusing to unpickle (posix|os|nt)\.system: only plain numpy arrays are accepted"),
        (torch.zeros(3, 2), r"refusing to unpickle torch\._utils\._rebuild_tensor_v2"),
        ({"att": np.zeros(3)}, r"pickle holds a dict; expected a plain numpy array"),
        ([[1.0, 2.0]], r"pickle holds a list; expected a plain numpy array"),
    ],
)
def test_pickles_other_than_plain_arrays_are_refused(tmp_path, content, message):
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(DatasetError, match=message) as info:
        load_attribute_vectors(tmp_path / "bad.pkl")
    assert str(info.value).startswith(str(tmp_path / "bad.pkl"))


def test_bad_vector_files(tmp_path):
    vectors = np.ones((4, 3))
    vectors[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", vectors)
    with pytest.raises(DatasetError, match=r"nan.npy: attribute vectors has a non-finite value \(nan\) at index \(2, 1\)"):
        load_attribute_vectors(tmp_path / "nan.npy")
    np.save(tmp_path / "t.npy", np.ones((3, 4)))
    with pytest.raises(DatasetError, match=r"3 attribute vectors for 4 attributes \(transposed\?"):
        load_attribute_vectors(tmp_path / "t.npy", num_attributes=4)
    with open(tmp_path / "cut.pkl", "wb") as f:
        f.write(pickle.dumps(np.ones((4, 3)))[:40])
    with pytest.raises(DatasetError, match=r"cut.pkl: cannot unpickle .*truncated or not a pickle\?"):
        load_attribute_vectors(tmp_path / "cut.pkl")
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(DatasetError, match=r"unknown attribute vector format '.txt'"):
        load_attribute_vectors(tmp_path / "w.txt")
    with pytest.raises(DatasetError, match=r"attribute vectors: file not found"):
        load_attribute_vectors(tmp_path / "none.npy")


def test_attribute_name_files(tmp_path):
    (tmp_path / "attributes.txt").write_text("1 has_bill_shape::curved_(up_or_down)\n2 has_bill_shape::dagger\n")
    assert read_attribute_names(tmp_path / "attributes.txt") == ["has_bill_shape::curved_(up_or_down)", "has_bill_shape::dagger"]
    (tmp_path / "predicates.txt").write_text("1\tblack\n2\twhite\n\n")
    assert read_attribute_names(tmp_path / "predicates.txt", num_attributes=2) == ["black", "white"]
    (tmp_path / "plain.txt").write_text("sailing/ boating\ndriving\n")
    assert read_attribute_names(tmp_path / "plain.txt") == ["sailing/ boating", "driving"]
    cells = np.empty((2, 1), dtype=object)
    cells[0, 0], cells[1, 0] = "sailing/ boating", "driving"
    scipy.io.savemat(tmp_path / "attributes.mat", {"attributes": cells})
    assert read_attribute_names(tmp_path / "attributes.mat") == ["sailing/ boating", "driving"]
    (tmp_path / "gap.txt").write_text("1 a\n3 c\n")
    with pytest.raises(DatasetError, match=r"gap.txt: line 2: attribute id 3, expected 2"):
        read_attribute_names(tmp_path / "gap.txt")
