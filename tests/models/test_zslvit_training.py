"""ZSLViT end to end on the built-in ``synthetic_images``: trains with its recipe, checkpoints and resumes bitwise,
rebuilds from the checkpoint alone, draws maps on the input grid with tokens dropped, and runs in ``zslkit bench``
beside the pooled baseline (which trains through ``--backbone``; ZSLViT reads the images through its own ViT).
Tiny shapes: 8 classes x 4 images of 32 px (a 4 x 4 patch grid), the recipe's 4-block ViT.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zslkit
import zslkit.viz
from tests.viz_capture import capture_drawings, save_picture
from zslkit.cli import main
from zslkit.training import load_config, load_model, train

TINY = {"num_classes": 8, "images_per_class": 4, "image_size": 32}


@pytest.fixture(scope="module")
def data():
    return zslkit.load_dataset("synthetic_images", **TINY)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    work = tmp_path_factory.mktemp("zslvit_runs")
    config = load_config("zslvit/synthetic_images", epochs=3, batch_size=8, num_threads=1)
    straight = train(data, "zslvit", config, out_dir=work / "A", progress=False)
    train(data, "zslvit", load_config(config, epochs=1), out_dir=work / "B", progress=False)
    train(data, "zslvit", config, out_dir=work / "B", progress=False, resume=True)
    return work, straight


def test_trains_with_its_recipe_and_resumes_bitwise(runs):
    work, straight = runs
    a, b = load_file(str(work / "A" / "epoch_003.safetensors")), load_file(str(work / "B" / "epoch_003.safetensors"))
    keys = [k for k in a if k.startswith("model.")]
    assert any(k.startswith("model.adapters.by_entry.query_1.semantic.") for k in keys)  # the injection MLPs are stored
    assert any(k.startswith("model.backbone.model.blocks.3.") for k in keys)  # and the fine-tuned backbone
    assert all(torch.equal(a[k], b[k]) for k in keys)
    history = straight.history
    assert {"loss_ce", "loss_global_alignment", "loss_query_regression"} <= set(history[0])
    assert history[-1]["loss"] < history[0]["loss"]


def test_rebuilds_from_the_checkpoint_alone(runs, data):
    work, straight = runs
    rebuilt = load_model(work / "A").eval()
    images = torch.as_tensor(data.features[data.splits["test_unseen"]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images).scores, straight.model.eval()(images).scores, rtol=0, atol=0)


def test_viz_draws_maps_on_the_input_grid_with_tokens_dropped(runs, data, tmp_path, monkeypatch):
    work, _ = runs
    save_picture(data.features[0], tmp_path / "image.png")
    drawn = capture_drawings(monkeypatch)
    argv = ["viz", "attention", "--checkpoint", str(work / "A"), "--image", str(tmp_path / "image.png"),
            "--image-size", "32", "--top-k", "2", "--out", str(tmp_path / "maps.png")]
    assert main(argv) == 0 and (tmp_path / "maps.png").stat().st_size > 0
    model, image = drawn["model"], drawn["features"]
    with torch.no_grad():
        state = model.backbone(image[None], model.adapters, zslkit.adapters.AdapterContext(model.V))
        out = model(image[None])
    kept = set(state.source[0][state.source[0] >= 0].tolist())
    assert len(kept) < 16  # keep-and-fuse at blocks 1 and 2 dropped patches
    head = model.branches["global"].linear
    tokens = state.patches[0]
    for item in drawn["panels"]["global"]:
        grid_map = item.map.reshape(-1)
        for n, cell in enumerate(state.source[0].tolist()):
            if cell >= 0:  # the map of a kept token, W x_n + b, at its input patch
                value = (head.weight[item.attribute] @ tokens[n] + head.bias[item.attribute]).detach()
                assert grid_map[cell] == pytest.approx(float(value), rel=1e-5, abs=1e-6)
        assert all(grid_map[c] == 0 for c in range(16) if c not in kept)
        np.testing.assert_array_equal(item.map, out.maps["global"][0, item.attribute].reshape(4, 4).numpy())


def test_runs_in_the_bench_beside_the_pooled_baseline(tmp_path, capsys):
    tiny = [f"--dataset-option={k}={v}" for k, v in TINY.items()]
    backbone = ["--backbone", "resnet10t", "--random-init", "--backbone-option", "channels=[8,8,16,16]",
                "--backbone-option", "stem_width=8", "--backbone-option", "output_stride=8"]
    argv = ["bench", "--dataset", "synthetic_images", "--protocol", "paper", "--no-progress", "--out", str(tmp_path),
            "--model", "pooled,zslvit", *tiny, *backbone]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| zslvit |" in captured.out and "| pooled |" in captured.out
    assert "zslvit/synthetic_images" in captured.err  # its own recipe
    cells = {c["method"]: c for c in json.loads((tmp_path / "results.json").read_text())["cells"]}
    recipe = cells["zslvit"]["settings"]["recipe"]
    assert len(cells["zslvit"]["train_history"]) == recipe["epochs"] and recipe["model_options"]["backbone_random_init"]
    assert all(0.0 <= cells["zslvit"]["metrics"][k] <= 100.0 for k in ("T1", "U", "S", "H"))
