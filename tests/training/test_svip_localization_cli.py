"""``zslkit train --model svip`` and ``zslkit eval RUN --localization`` on JPEGs under ``--dataset-root``.

SVIP owns its ViT: here a tiny random-init one (64 px, 16 px patches: a 4 x 4 patch grid in
2 x 2 groups of 2 x 2 patches, 2 of the 4 groups kept), given through ``--set model_options...``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
from tests.datasets.conftest import make_tiny_xlsa17, write_jpeg
from tests.training.test_localization_cli import NAMES, assert_counts, eval_pixels, write_cub_parts
from zslkit.cli import main
from zslkit.datasets import load_xlsa17
from zslkit.extract import ImageFiles, preprocessing
from zslkit.training import TrainConfig, load_model, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BACKBONE = {"img_size": 64, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2}
MODEL = {"timm_model": "vit_tiny_patch16_224", "backbone_random_init": True, "backbone_options": BACKBONE,
         "selector": {"hidden": 16}, "branches": {"target": {"attention": "group_head", "group": 2, "keep": 2}}}


@pytest.fixture
def tiny(tmp_path):
    """The tiny xlsa17 split with JPEGs of three shapes, CUB-style attribute names and word vectors."""
    rng = np.random.default_rng(0)
    tiny = make_tiny_xlsa17(tmp_path)
    sizes = []
    for i, r in enumerate(tiny.relative):  # landscape, portrait, square
        width, height = [(48, 40), (45, 60), (50, 50)][i % 3]
        write_jpeg(tiny.image_root / "images" / r, seed=i, size=(height, width))
        sizes.append((width, height))
    (tmp_path / "names.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(NAMES)))
    np.save(tmp_path / "w2v.npy", rng.normal(size=(6, 5)).astype(np.float32))  # svip's semantic tokens read them
    data = [f"--data-option=path={tiny.folder}", f"--data-option=attribute_names={tmp_path / 'names.txt'}",
            f"--data-option=attribute_vectors={tmp_path / 'w2v.npy'}"]
    dataset = load_xlsa17(tiny.folder, attribute_names=tmp_path / "names.txt", attribute_vectors=tmp_path / "w2v.npy")
    reader = zslkit.create("backbone", "timm_tokens", model_name=MODEL["timm_model"], random_init=True, **BACKBONE)
    images = ImageFiles([tiny.image_root / "images" / r for r in tiny.relative], preprocessing(reader, 64)[0])
    train_argv = ["train", "--model", "svip", "--dataset", "xlsa17", *data, "--dataset-root", str(tiny.image_root),
                  "--image-size", "64", "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--no-progress",
                  *[f"--set=model_options.{k}={json.dumps(v)}" for k, v in MODEL.items()]]
    return SimpleNamespace(tiny=tiny, sizes=sizes, rng=rng, data=data, dataset=dataset, images=images, train_argv=train_argv)


def test_localization_reads_the_target_branchs_group_maps_on_the_input_patch_grid(tiny, tmp_path, capsys):
    """Localisation reads the ``target`` branch's maps, the only maps SVIP returns: at evaluation the
    semantic tokens added to the groups the selector rejects, the ViT again, and each group's head
    scores ``h(x^t_G)`` on its four patches of the 4 x 4 input grid (the source branch runs in
    training only and has no maps). A map's peak under ``peak="cell"`` is the first patch, in
    row-major order, of its highest group: the group's top-left patch."""
    assert main([*tiny.train_argv, "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    locations = write_cub_parts(tmp_path / "CUB_200_2011", tiny.tiny.relative, tiny.sizes, tiny.rng)
    # no --image-size: the 64 px the run trained at, which its checkpoints record
    result, printed = eval_pixels(tmp_path / "run", tiny.data, tiny.tiny.image_root, tmp_path, capsys, image_size=None)
    assert "svip (epoch 1)" in printed
    assert result["preprocessing"]["input_size"] == [3, 64, 64] and set(result["branches"]) == {"target"}

    # the reloaded model on the same JPEGs, preprocessed by a reader of its architecture
    model = load_model(tmp_path / "run")
    assert isinstance(model, zslkit.models.SVIP) and model.branches["target"].keep == 2
    order = np.sort(tiny.dataset.splits["test_unseen"])
    with torch.no_grad():
        output = model.eval()(torch.stack([tiny.images[i] for i in order]))
    maps = output.maps["target"]
    assert output.grid == (4, 4) and maps.shape == (len(order), 6, 16) and set(output.maps) == {"target"}
    blocks = maps.reshape(len(order), 6, 2, 2, 2, 2)  # (group row, patch row, group column, patch column)
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))  # one value per 2 x 2 group
    assert not torch.equal(maps, maps[:, :, :1].expand_as(maps))  # and the groups differ
    hits, pairs = assert_counts(result["branches"]["target"]["per_part"], maps, order, tiny.sizes, locations, grid=4)
    assert result["branches"]["target"]["overall"] == pytest.approx(sum(hits.values()) / sum(pairs.values()))


def test_trains_with_its_recipes_augmentation(tiny, tmp_path, capsys):
    """svip's recipes crop and flip (``augment``); a model that owns its ViT takes it without ``--backbone``:
    full crops and certain flips train as the mirrored images do without augmentation."""
    augment = {"input_size": 64, "scale": [1.0, 1.0], "ratio": [1.0, 1.0], "hflip": 1.0}
    argv = [*tiny.train_argv, f"--set=augment={json.dumps(augment)}", "--out", str(tmp_path / "run")]
    assert main(argv) == 0, capsys.readouterr().err
    mirrored = torch.stack([tiny.images[i] for i in range(len(tiny.images))]).flip(-1)
    config = TrainConfig(model="svip", epochs=1, batch_size=8, lr=1e-3)
    same = train(tiny.dataset, "svip", config, progress=False, inputs=mirrored, **MODEL)
    stored = load_file(str(tmp_path / "run" / "epoch_001.safetensors"))
    for name, value in same.model.state_dict().items():
        torch.testing.assert_close(stored[f"model.{name}"], value, rtol=1e-5, atol=1e-6, msg=name)


def test_eval_reads_images_at_the_size_the_run_recorded(tiny, tmp_path, capsys, caplog):
    """A run's checkpoints record how its images were preprocessed; ``zslkit eval`` reads them the same way unless
    told otherwise (then it says so), and a checkpoint without the record needs ``--image-size``."""
    assert main([*tiny.train_argv, "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    meta_path = tmp_path / "run" / "epoch_001.json"
    meta = json.loads(meta_path.read_text())
    assert meta["inputs"] == preprocessing(zslkit.create("backbone", "timm_tokens", model_name=MODEL["timm_model"],
                                                         random_init=True, **BACKBONE), 64)[1]
    argv = ["eval", str(tmp_path / "run"), "--dataset", "xlsa17", *tiny.data, "--dataset-root", str(tiny.tiny.image_root)]
    capsys.readouterr()
    assert main([*argv, "--image-size", "96"]) == 0
    assert "--image-size 96: reading images at 96 px; the run trained at 64 px" in caplog.text
    del meta["inputs"]
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(argv) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "does not record the image size its run trained at" in error[0]
    assert "give --image-size" in error[0]
