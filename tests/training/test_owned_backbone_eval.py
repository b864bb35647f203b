"""``zslkit train`` and ``zslkit eval RUN --localization`` with ``--dataset-root`` for a model that owns its ViT backbone.

The checkpoint is rebuilt alone; its own backbone reads the JPEGs; tokens were dropped in block 1,
yet the localisation counts equal plain loops over the model's maps on the input's 2x2 patch grid.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
from zslkit.models import TokenAttentionModel
from zslkit.registry import register_component, unregister
from zslkit.training import TrainConfig, load_model, train


class TwoByTwoViT(TokenAttentionModel):
    """A 2-block ViT on 64 px images, 32 px patches (a 2x2 grid); block 1 keeps the 2 patches the CLS attends to most."""

    default_timm_model: ClassVar[str] = "vit_tiny_patch16_224"
    default_backbone_options: ClassVar[dict[str, Any]] = {"img_size": 64, "patch_size": 32, "depth": 2, "embed_dim": 48,
                                                           "num_heads": 3}
    default_adapters: ClassVar[dict[str, Any]] = {"keep": {"adapter": "keep_attended", "place": "attention", "block": 1,
                                                           "keep": 0.5, "fuse": False}}
    default_branches: ClassVar[dict[str, Any]] = {"a2v": "attribute_to_visual"}
    default_losses: ClassVar[dict[str, Any]] = {"attribute_ce": 1.0}


@pytest.fixture
def registered():
    register_component("model", "two_by_two_vit", TwoByTwoViT)
    yield
    unregister("model", "two_by_two_vit")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_eval_and_localization_read_images_through_the_models_own_backbone(registered, tmp_path, capsys):
    rng = np.random.default_rng(0)
    tiny = make_tiny_xlsa17(tmp_path)
    sizes = []
    for i, r in enumerate(tiny.relative):
        width, height = [(48, 40), (45, 60), (50, 50)][i % 3]
        write_jpeg(tiny.image_root / "images" / r, seed=i, size=(height, width))
        sizes.append((width, height))
    (tmp_path / "names.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(NAMES)))
    np.save(tmp_path / "w2v.npy", rng.normal(size=(6, 5)).astype(np.float32))
    dataset = load_xlsa17(tiny.folder, attribute_names=tmp_path / "names.txt", attribute_vectors=tmp_path / "w2v.npy")
    reader = zslkit.create("backbone", "timm_tokens", model_name="vit_tiny_patch16_224", random_init=True,
                           **TwoByTwoViT.default_backbone_options)
    paths = [tiny.image_root / "images" / r for r in tiny.relative]
    images = ImageFiles(paths, preprocessing(reader, 64)[0])
    data = [f"--data-option=path={tiny.folder}", f"--data-option=attribute_names={tmp_path / 'names.txt'}",
            f"--data-option=attribute_vectors={tmp_path / 'w2v.npy'}"]
    # zslkit train: the model's own backbone reads the images under --dataset-root
    assert main(["train", "--model", "two_by_two_vit", "--dataset", "xlsa17", *data, "--dataset-root", str(tiny.image_root),
                 "--image-size", "64", "--epochs", "1", "--batch-size", "8", "--set", "model_options.backbone_random_init=true",
                 "--no-progress", "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    same = train(dataset, "two_by_two_vit", TrainConfig(model="two_by_two_vit", epochs=1, batch_size=8), progress=False,
                 inputs=images, backbone_random_init=True)  # what the command trained, from Python
    stored = load_file(str(tmp_path / "run" / "epoch_001.safetensors"))
    assert all(torch.equal(stored[f"model.{k}"], v) for k, v in same.model.state_dict().items())
    capsys.readouterr()
    assert main(["train", "--model", "msdn", "--dataset", "xlsa17", *data, "--dataset-root", str(tiny.image_root),
                 "--epochs", "1", "--no-progress"]) != 0  # a region model with images and no --backbone: refused
    assert "--dataset-root applies only with --backbone, which was not given" in capsys.readouterr().err
    locations = write_cub_parts(tmp_path / "CUB_200_2011", tiny.relative, sizes, rng)
    result, printed = eval_pixels(tmp_path / "run", data, tiny.image_root, tmp_path, capsys)
    assert "two_by_two_vit (epoch 1)" in printed
    assert result["preprocessing"]["input_size"] == [3, 64, 64]
    model = load_model(tmp_path / "run")
    order = np.sort(dataset.splits["test_unseen"])
    with torch.no_grad():
        output = model(torch.stack([images[i] for i in order]))
    maps = output.maps["a2v"]
    assert output.grid == (2, 2) and maps.shape == (len(order), 6, 4)
    assert ((maps == 0).sum(dim=2) == 2).all()  # two of the four patches dropped in block 1, on the grid as 0
    assert_counts(result["branches"]["a2v"]["per_part"], maps, order, sizes, locations)
