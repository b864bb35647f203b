"""A ViT's feature store keeps the prefix (CLS) tokens beside the patch map, both after the final norm.

The stored rows are compared with timm's own ``forward_features`` on the same preprocessed images
(``[:, :P]`` the prefix tokens, ``[:, P:]`` the patches); stores made before zslkit kept the prefix
tokens (with or without the final norm) still open, and asking them for CLS tokens is a one-line error
that says which kind of old store it is.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.datasets.conftest import make_tiny_xlsa17
from zslkit.backbones import TimmBackbone
from zslkit.cli import main
from zslkit.datasets import DatasetError, create_store, load_xlsa17, open_store, resolve_images
from zslkit.datasets.xlsa17 import read_res101
from zslkit.extract import ImageFiles, extract_features, preprocessing

SIZE = 32
TINY_VIT = dict(img_size=SIZE, patch_size=16, depth=2, embed_dim=32, num_heads=2)


def vit(name: str = "vit_tiny_patch16_224") -> TimmBackbone:
    torch.manual_seed(0)
    return TimmBackbone(name, random_init=True, **TINY_VIT).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data = make_tiny_xlsa17(tmp_path_factory.mktemp("tiny"))
    images = resolve_images(read_res101(data.folder / "res101.mat", features=False).image_files, data.image_root)
    return data, images


def timm_tokens(backbone: TimmBackbone, images) -> torch.Tensor:
    """timm's ``forward_features`` ``(N, P + H*W, C)`` of the images as extraction preprocesses them."""
    transform, _ = preprocessing(backbone, SIZE)
    batch = torch.stack([ImageFiles(images.paths, transform)[i] for i in range(len(images.paths))])
    with torch.no_grad():
        return backbone.model.forward_features(batch)


@pytest.mark.parametrize(("name", "fmt"), [("vit_tiny_patch16_224", "npy"), ("deit_tiny_distilled_patch16_224", "safetensors")])
def test_the_store_holds_timms_prefix_and_patch_tokens(tiny, tmp_path, name, fmt):
    _, images = tiny
    backbone = vit(name)
    store = extract_features(images, backbone, tmp_path / "store", image_size=SIZE, batch_size=7, dtype="float32",
                             format=fmt, progress=False)
    tokens = timm_tokens(backbone, images)
    prefix = 2 if "distilled" in name else 1
    assert store.prefix.shape == (len(images.paths), prefix, 32) and store.info["prefix_shape"] == [20, prefix, 32]
    torch.testing.assert_close(torch.from_numpy(store.prefix[:]), tokens[:, :prefix], rtol=1e-5, atol=1e-5)
    patches = tokens[:, prefix:].reshape(-1, 2, 2, 32).permute(0, 3, 1, 2)
    torch.testing.assert_close(torch.from_numpy(store[:]), patches, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(store.prefix[[5, 1, 5]], store.prefix[:][[5, 1, 5]])  # rows read as the features are
    assert store.metadata["backbone"]["features"] == "final_norm"


def test_cls_tokens_as_the_datasets_global_features(tiny, tmp_path):
    data, images = tiny
    backbone = vit()
    extract_features(images, backbone, tmp_path / "store", image_size=SIZE, dtype="float32", progress=False)
    dataset = load_xlsa17(data.folder, features=tmp_path / "store", global_features="cls")
    torch.testing.assert_close(torch.from_numpy(dataset.global_features), timm_tokens(backbone, images)[:, 0],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="global_features must be true, false or 'cls'"):
        load_xlsa17(data.folder, features=tmp_path / "store", global_features="CLS")
    with pytest.raises(DatasetError, match="global_features='cls' reads the CLS tokens of a ViT feature store, but no features"):
        load_xlsa17(data.folder, global_features="cls")


def old_store(path, backbone: dict, rows: np.ndarray):
    writer = create_store(path, rows.shape, dtype="float32", metadata={"backbone": backbone})
    writer.write(0, rows)
    return writer.finish()


@pytest.mark.parametrize(("backbone", "why"), [
    ({"name": "timm", "model": "vit_tiny_patch16_224", "weights": None},
     "before zslkit applied the final norm and kept the CLS token; re-extract"),
    ({"name": "timm", "model": "vit_tiny_patch16_224", "weights": None, "features": "final_norm"},
     r"extracted before zslkit kept the CLS token; re-extract them with `zslkit extract`"),
    ({"name": "timm", "model": "resnet18", "weights": None}, "'resnet18' is not a ViT-family model"),
])
def test_old_stores_open_and_say_why_they_have_no_cls_token(tmp_path, caplog, backbone, why):
    rows = np.random.default_rng(0).normal(size=(3, 4, 2, 2)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        store = old_store(tmp_path / "old", backbone, rows)
    np.testing.assert_array_equal(store[:], rows)  # still readable as region features
    assert store.prefix is None
    with pytest.raises(DatasetError, match=rf"old: CLS scoring needs the images' prefix \(CLS\) tokens, and this store holds none \(.*{why}"):
        store.require_prefix("CLS scoring")
    pre_norm = "features" not in backbone and backbone["model"].startswith("vit")
    assert ("before zslkit applied the model's final norm" in caplog.text) == pre_norm  # only the pre-norm store is warned about


def test_rows_are_written_with_their_prefix_tokens_or_refused(tmp_path):
    writer = create_store(tmp_path / "s", (4, 3, 2, 2), dtype="float32", prefix_tokens=(1, 3))
    rows, prefix = np.ones((2, 3, 2, 2), np.float32), np.full((2, 1, 3), 2.0, np.float32)
    with pytest.raises(DatasetError, match="created with prefix_tokens: give prefix= with every write"):
        writer.write(0, rows)
    with pytest.raises(DatasetError, match=r"cannot write prefix token rows of shape \(2, 2, 3\)"):
        writer.write(0, rows, np.ones((2, 2, 3), np.float32))
    with pytest.raises(DatasetError, match="2 feature rows but 1 prefix-token rows"):
        writer.write(0, rows, prefix[:1])
    writer.write(0, rows, prefix)
    resumed = create_store(tmp_path / "s", (4, 3, 2, 2), dtype="float32", prefix_tokens=(1, 3))
    assert resumed.done == 2
    resumed.write(2, rows * 3, prefix * 3)
    store = resumed.finish()
    np.testing.assert_array_equal(store.prefix[:], np.concatenate([prefix, prefix * 3]))
    np.testing.assert_array_equal(store[:], np.concatenate([rows, rows * 3]))
    # an extraction begun before the prefix tokens were kept is not resumed into a store with them
    create_store(tmp_path / "plain", (4, 3, 2, 2), dtype="float32").write(0, rows)
    with pytest.raises(DatasetError, match=r"other settings \(prefix_shape: None in the store, \[4, 1, 3\] now\)"):
        create_store(tmp_path / "plain", (4, 3, 2, 2), dtype="float32", prefix_tokens=(1, 3))
    assert open_store(tmp_path / "plain", allow_incomplete=True).prefix is None
    with pytest.raises(DatasetError, match="created without prefix_tokens: give prefix= to none of its writes"):
        create_store(tmp_path / "plain", (4, 3, 2, 2), dtype="float32").write(2, rows, prefix)


def test_data_info_names_the_prefix_tokens(tiny, tmp_path, capsys):
    _, images = tiny
    extract_features(images, vit(), tmp_path / "store", image_size=SIZE, progress=False)
    old_store(tmp_path / "old", {"name": "timm", "model": "vit_tiny_patch16_224", "features": "final_norm"},
              np.zeros((2, 4, 2, 2), np.float32))
    assert main(["data", "info", str(tmp_path / "store")]) == 0
    assert "prefix tokens: 20 x 1 x 32 (CLS first; after the final norm)" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "old")]) == 0
    assert "prefix tokens: none (ViT 'vit_tiny_patch16_224' features extracted before zslkit kept the CLS token" in capsys.readouterr().out
