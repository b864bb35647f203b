"""Attention-map figures, driven by a small stand-in model that follows the model output contract."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from einops import einsum, rearrange
from PIL import Image

from zslkit.cli import main
from zslkit.viz import attention_figure, center_crop, top_attribute_maps

H, W, NUM_ATTR = 3, 4, 10  # regions on a 3x4 grid, 10 attributes


class StandIn(torch.nn.Module):
    """Two branches with real maps (softmax over regions / over attributes) and one without.

    Attribute i's weights pick channel i, scaled by (i + 1): with one-hot region features,
    its region-attention peaks at region i and its score grows with i.
    """

    def __init__(self, channels: int = H * W) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.eye(NUM_ATTR, channels) * torch.arange(1, NUM_ATTR + 1.0)[:, None])

    def forward(self, features):
        regions = rearrange(features, "b c h w -> b (h w) c")
        logits = einsum(regions, self.weight, "b r c, i c -> b i r")
        over_regions, over_attributes = logits.softmax(dim=-1), logits.softmax(dim=1)
        scores = {"a2v": (over_regions * logits).sum(-1), "v2a": (over_attributes * logits).sum(-1), "pooled": logits.mean(-1)}
        return SimpleNamespace(
            scores=None, branch_scores={}, attribute_scores=scores,
            maps={"a2v": over_regions, "v2a": over_attributes, "pooled": None},
        )


@pytest.fixture
def features():
    onehot = torch.eye(H * W) * 5.0  # region r holds 5 * e_r
    return rearrange(onehot, "c (h w) -> c h w", h=H, w=W)


def test_top_attributes_and_maps_follow_scores_and_grid(features):
    model = StandIn()
    panels = top_attribute_maps(model, features, top_k=4)
    assert list(panels) == ["a2v", "v2a"]  # the branch without maps is left out
    logits = 5.0 * (torch.eye(NUM_ATTR, H * W) * torch.arange(1, NUM_ATTR + 1.0)[:, None])
    expected_maps = logits.softmax(-1)
    expected_scores = (expected_maps * logits).sum(-1)
    a2v = panels["a2v"]
    assert [p.attribute for p in a2v] == torch.topk(expected_scores, 4).indices.tolist() == [9, 8, 7, 6]
    for panel in a2v:
        assert panel.score == pytest.approx(float(expected_scores[panel.attribute]), rel=1e-6)
        assert panel.map.shape == (H, W)
        assert np.unravel_index(panel.map.argmax(), (H, W)) == divmod(panel.attribute, W)  # row-major regions
        np.testing.assert_allclose(panel.map.reshape(-1), expected_maps[panel.attribute].numpy(), rtol=1e-6)


def test_figure_has_one_panel_per_attribute_and_branch(features, tmp_path):
    names = [f"has_part_{i}::value" for i in range(NUM_ATTR)]
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    model = StandIn().train()
    figure = attention_figure(model, image, features, attribute_names=names, top_k=3, image_size=48)
    assert model.training  # restored after drawing
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 6
    titles = [ax.get_title() for ax in visible]
    assert titles[0].startswith("has_part_9::value\n") and titles[3].startswith("has_part_")
    assert [visible[0].get_ylabel(), visible[3].get_ylabel()] == ["a2v", "v2a"]
    picture = visible[0].get_images()[0].get_array()
    overlay = visible[0].get_images()[1].get_array()
    assert picture.shape[:2] == (48, 48) and overlay.shape == (48, 48)
    assert float(overlay.max()) == pytest.approx(1.0) and float(overlay.min()) == pytest.approx(0.0)
    figure.savefig(tmp_path / "maps.png")
    with Image.open(tmp_path / "maps.png") as png:
        assert png.size[0] > png.size[1] > 0


def test_center_crop_matches_backbone_crop():
    image = np.zeros((60, 100, 3), dtype=np.uint8)
    image[:, 45:55] = 255  # a bright vertical band in the middle stays in the middle
    crop = center_crop(image, 30)
    assert crop.shape == (30, 30, 3)
    assert crop[:, 15].mean() > 200 and crop[:, 0].mean() < 10


def test_errors(features):
    model = StandIn()
    with pytest.raises(ValueError, match=r"branch 'pooled' has no attention maps; branches with maps: \['a2v', 'v2a'\]"):
        top_attribute_maps(model, features, branches=["pooled"])
    with pytest.raises(ValueError, match=r"features must be \(C, H, W\) or \(1, C, H, W\)"):
        top_attribute_maps(model, torch.zeros(2, H * W, H, W))
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        top_attribute_maps(model, features, top_k=0)


def test_cli_draws_a_checkpoint_through_zslkit_training(tmp_path, monkeypatch, capsys):
    """A real DAZLE checkpoint written by ``train``, read back by the CLI through ``zslkit.training``."""
    from safetensors.torch import load_file

    import zslkit.viz
    from zslkit.datasets import ZSLDataset
    from zslkit.training import TrainConfig, train

    rng = np.random.default_rng(2)
    data = ZSLDataset(
        name="tiny", labels=np.repeat(np.arange(4), 3), class_attributes=rng.uniform(size=(4, NUM_ATTR)),
        splits={"trainval": np.arange(6), "test_seen": np.arange(6), "test_unseen": np.arange(6, 12)},
        features=rng.normal(size=(12, 96, 2, 2)).astype(np.float32),  # test_resnet's 96 channels, 2 x 2 at 64 px
        attribute_embeddings=rng.normal(size=(NUM_ATTR, 8)),
    )
    trained = train(data, "dazle", TrainConfig(epochs=1, batch_size=6), out_dir=tmp_path / "run", progress=False).model
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(tmp_path / "bird.jpg")
    (tmp_path / "names.txt").write_text("".join(f"attribute number {i}\n" for i in range(NUM_ATTR)))
    drawn = {}
    draw = zslkit.viz.attention_figure

    def catch(model, image, features, **kwargs):  # records what is drawn, then draws it
        drawn.update(model=model, names=kwargs["attribute_names"])
        return draw(model, image, features, **kwargs)

    monkeypatch.setattr(zslkit.viz, "attention_figure", catch)
    argv = ["viz", "attention", "--checkpoint", str(tmp_path / "run"), "--image", str(tmp_path / "bird.jpg"),
            "--backbone", "test_resnet", "--random-init", "--image-size", "64", "--top-k", "2",
            "--attribute-names", str(tmp_path / "names.txt"), "--out", str(tmp_path / "maps.png")]
    assert main(argv) == 0, capsys.readouterr().err
    # the drawn model was read from the checkpoint's tensor file: every weight equals what it stores
    stored = {k.removeprefix("model."): v for k, v in load_file(tmp_path / "run" / "epoch_001.safetensors").items()
              if k.startswith("model.")}
    model = drawn["model"]
    assert model is not trained and type(model).__name__ == type(trained).__name__
    state = model.state_dict()
    assert set(state) == set(stored)
    for key, tensor in stored.items():
        assert torch.equal(state[key], tensor), key
        assert torch.equal(trained.state_dict()[key], tensor), key  # the checkpoint is the trained model
    assert drawn["names"] == [f"attribute number {i}" for i in range(NUM_ATTR)]
    with Image.open(tmp_path / "maps.png") as png:
        assert png.size[0] > png.size[1] > 0  # one row (DAZLE's one branch with maps), two panels


def test_cli_without_zslkit_training_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "zslkit.training", None)  # import fails
    argv = ["viz", "attention", "--checkpoint", "m.pt", "--image", "x.jpg", "--random-init", "--out", str(tmp_path / "o.png")]
    assert main(argv) == 2
    assert "reading checkpoints needs zslkit.training, which this installation lacks" in capsys.readouterr().err


def test_flat_map_is_drawn_flat_not_as_stretched_rounding_noise():
    from zslkit.viz import _overlay

    flat = np.full((3, 4), 1 / 312, dtype=np.float32)
    flat[0, 0] += 1e-9  # rounding-level wiggle
    assert np.all(_overlay(flat, (12, 16)) == 0)
    peaked = np.zeros((3, 4), dtype=np.float32)
    peaked[1, 2] = 1.0
    up = _overlay(peaked, (12, 16))
    assert up.max() == pytest.approx(1.0) and up.min() == pytest.approx(0.0)
