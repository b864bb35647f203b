"""``zslkit viz attention`` end to end: a real MSDN checkpoint, a timm backbone and a JPEG."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import zslkit
from zslkit.cli import main
from zslkit.datasets import ZSLDataset
from zslkit.training import TrainConfig, load_model, train
from zslkit.viz import top_attribute_maps


def test_viz_attention_on_a_trained_msdn_checkpoint(tmp_path):
    backbone = zslkit.create("backbone", "timm", model_name="test_resnet", random_init=True).eval()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    image.save(tmp_path / "bird.jpg")
    with torch.no_grad():
        fmap = backbone(torch.randn(1, 3, 64, 64))
    channels, h, w = fmap.shape[1:]

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 3)
    names = [f"has_part{i}_color::c{i}" for i in range(5)]
    data = ZSLDataset(
        name="tiny",
        labels=labels,
        class_attributes=rng.uniform(size=(4, 5)),
        splits={"trainval": np.arange(6), "test_seen": np.arange(6), "test_unseen": np.arange(6, 12)},
        features=rng.normal(size=(12, channels, h, w)).astype(np.float32),
        attribute_names=names,
        attribute_embeddings=rng.normal(size=(5, 8)),
    )
    train(data, "msdn", TrainConfig(epochs=1, batch_size=6), out_dir=tmp_path / "run", progress=False)

    model = load_model(tmp_path / "run")
    assert model.attribute_names == names  # names travel with the checkpoint
    out = tmp_path / "maps.png"
    assert main([
        "viz", "attention", "--checkpoint", str(tmp_path / "run"), "--image", str(tmp_path / "bird.jpg"),
        "--backbone", "test_resnet", "--random-init", "--image-size", "64", "--top-k", "3", "--out", str(out),
    ]) == 0
    with Image.open(out) as picture:
        assert picture.size[0] > 100 and picture.size[1] > 100
    # the panels are the model's own top-3 attributes per branch, on the backbone's grid
    panels = top_attribute_maps(model, fmap[0], top_k=3)
    assert list(panels) == ["a2v", "v2a"]
    scores = model(fmap).attribute_scores["a2v"][0]
    assert [p.attribute for p in panels["a2v"]] == torch.topk(scores, 3).indices.tolist()
    assert all(p.map.shape == (h, w) for p in panels["a2v"])
