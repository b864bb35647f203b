"""``svip`` trains end to end on the built-in ``synthetic_images`` with its recipe's tiny random-init ViT:
checkpoints, resumes bitwise, rebuilds from the checkpoint alone, and its maps lie on the input patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
from tests.viz_capture import capture_drawings, save_picture
from zslkit.cli import main
from zslkit.training import load_config, load_model, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("svip_runs")
    data = zslkit.load_dataset("synthetic_images", num_classes=8, images_per_class=4)
    config = load_config("svip/synthetic_images", batch_size=8)
    straight = train(data, "svip", load_config(config, epochs=2), out_dir=work / "A", progress=False)
    train(data, "svip", load_config(config, epochs=1), out_dir=work / "B", progress=False)
    train(data, "svip", load_config(config, epochs=2), out_dir=work / "B", progress=False, resume=True)
    return work, data, straight


def test_trains_checkpoints_and_resumes_bitwise(runs):
    work, _, straight = runs
    a, b = load_file(str(work / "A" / "epoch_002.safetensors")), load_file(str(work / "B" / "epoch_002.safetensors"))
    keys = [k for k in a if k.startswith("model.")]
    for part in ("model.backbone.model.blocks.2.", "model.selector.mlp.", "model.adapters.by_entry.semantic_tokens.p2t",
                 "model.branches.target.head."):
        assert any(k.startswith(part) for k in keys), part  # the fine-tuned ViT and every SVIP part are stored
    assert all(torch.equal(a[k], b[k]) for k in keys)
    assert [h["loss"] for h in straight.history][-1] < [h["loss"] for h in straight.history][0]


def test_rebuilds_from_the_checkpoint_alone_and_maps_lie_on_the_input_patches(runs):
    work, data, straight = runs
    rebuilt = load_model(work / "A")
    images = torch.as_tensor(data.features[data.splits["test_unseen"][:4]])
    with torch.no_grad():
        output, expected = rebuilt(images), straight.model.eval()(images)
    torch.testing.assert_close(output.scores, expected.scores, rtol=0, atol=0)
    assert output.grid == (14, 14) and output.maps["target"].shape == (4, data.num_attributes, 196)
    maps = output.maps["target"].reshape(4, data.num_attributes, 7, 2, 7, 2)
    assert torch.equal(maps, maps[:, :, :, :1, :, :1].expand_as(maps))  # one value per 2 x 2 group


@torch.no_grad()
def hand_maps(tokens: torch.Tensor, linear: torch.nn.Linear, side: int = 14) -> torch.Tensor:
    """``(D, side*side)`` row-major patch tokens -> ``(I, side, side)``: on each patch, the head's ``W x + b`` of the
    2 x 2 group it lies in, ``x`` its four patches' tokens concatenated in row-major order, written with loops."""
    maps = torch.empty(linear.out_features, side, side)
    for h in range(side):
        for w in range(side):
            top, left = h - h % 2, w - w % 2
            x = torch.cat([tokens[:, (top + i) * side + left + j] for i in range(2) for j in range(2)])
            maps[:, h, w] = linear.weight @ x + linear.bias
    return maps


def test_viz_and_localization_maps_are_the_group_scores_on_their_patches(runs, tmp_path, monkeypatch):
    """``zslkit viz attention`` draws, and ``eval --localization`` reads (``output.maps`` on ``output.grid``), every
    2 x 2 group's attribute scores on its four patches of the 14 x 14 input grid."""
    work, data, _ = runs
    save_picture(data.features[0], tmp_path / "image.png")
    drawn = capture_drawings(monkeypatch)
    argv = ["viz", "attention", "--checkpoint", str(work / "A"), "--image", str(tmp_path / "image.png"),
            "--image-size", "56", "--top-k", "2", "--out", str(tmp_path / "maps.png")]
    assert main(argv) == 0 and (tmp_path / "maps.png").stat().st_size > 0
    model, image, branch = drawn["model"], drawn["features"], drawn["model"].branches["target"]
    seen = {}
    hook = branch.register_forward_hook(lambda module, args, out: seen.update(tokens=args[0][0]))
    with torch.no_grad():
        output = model(image[None])
    hook.remove()
    expected = hand_maps(seen["tokens"], branch.head)
    assert output.grid == (14, 14)
    torch.testing.assert_close(output.maps["target"][0].reshape(-1, 14, 14), expected, rtol=1e-5, atol=1e-6)
    assert [item.map.shape for item in drawn["panels"]["target"]] == [(14, 14)] * 2
    for item in drawn["panels"]["target"]:
        np.testing.assert_allclose(item.map, expected[item.attribute].numpy(), rtol=1e-5, atol=1e-6)


def test_joins_the_bench_without_a_backbone(runs):
    """The bench trains a model that owns its backbone on images (no --backbone) and scores the test images."""
    from zslkit.bench.model_runner import ModelRunner

    _, data, straight = runs
    runner = ModelRunner("svip", train_config={"epochs": 2, "batch_size": 8})
    fit = runner.fit(data, {}, seed=0)
    assert isinstance(fit.predictor, zslkit.models.SVIP) and len(fit.history) == 2
    unseen = data.splits["test_unseen"][:4]
    scores = runner.scores(fit.predictor, data, unseen)
    assert scores.shape == (4, data.num_classes) and np.isfinite(scores[:, data.unseen_classes]).all()
