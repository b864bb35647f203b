"""``psvma`` trains end to end on the built-in ``synthetic_images`` with a tiny random-init ViT: checkpoints,
resumes bitwise, rebuilds from its checkpoint alone, gives maps on the input's patch grid, and runs in
``zslkit bench`` (its recipe's model_options build the backbone; no ``--backbone``)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from zslkit.cli import main
from zslkit.datasets import make_synthetic_images
from zslkit.training import load_config, load_model, train
from zslkit.training.recipes import recipe_for

DATA = {"num_classes": 8, "images_per_class": 4}  # 56 px pictures: the recipe's 7 x 7 patch grid


def config(epochs):
    return load_config(recipe_for("psvma", "synthetic_images").config, epochs=epochs, batch_size=8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work, data = tmp_path_factory.mktemp("psvma_runs"), make_synthetic_images(**DATA)
    straight = train(data, "psvma", config(2), out_dir=work / "A", progress=False)
    train(data, "psvma", config(1), out_dir=work / "B", progress=False)
    train(data, "psvma", config(2), out_dir=work / "B", progress=False, resume=True)
    return work, data, straight


def test_trains_checkpoints_resumes_bitwise_and_rebuilds_alone(runs):
    work, data, straight = runs
    a, b = load_file(str(work / "A" / "epoch_002.safetensors")), load_file(str(work / "B" / "epoch_002.safetensors"))
    keys = [k for k in a if k.startswith("model.")]
    assert any(k.startswith("model.adapters.by_entry.dsvtm.") for k in keys)  # the module, once (shared by dsvtm_2)
    assert not any(".dsvtm_2." in k for k in keys) and all(torch.equal(a[k], b[k]) for k in keys)
    losses = [h["loss"] for h in straight.history]
    assert losses[-1] < losses[0] and set(straight.history[0]) >= {"loss_attention_regression", "loss_debias"}
    rebuilt = load_model(work / "A").eval()
    images = torch.as_tensor(data.features[data.splits["test_unseen"][:4]])
    with torch.no_grad():
        output = rebuilt(images)
        assert torch.equal(output.scores, straight.model.eval()(images).scores)
    # the second pass's attribute->patch attention, on the input's 7 x 7 patch grid
    assert output.grid == (7, 7) and output.maps["dsvtm_2"].shape == (4, 54, 49) and output.maps["base"] is None


def test_bench_runs_psvma_on_synthetic_images(tmp_path, capsys):
    argv = ["bench", "--dataset", "synthetic_images", "--protocol", "paper", "--no-progress", "--out", str(tmp_path),
            *[f"--dataset-option={k}={v}" for k, v in DATA.items()], "--model", "psvma"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "| psvma |" in capsys.readouterr().out
    cell = json.loads((tmp_path / "results.json").read_text())["cells"][0]
    assert cell["method"] == "psvma" and all(0.0 <= cell["metrics"][k] <= 100.0 for k in ("T1", "U", "S", "H"))
