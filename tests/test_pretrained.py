"""The shareable model folder: ``zslkit export RUN DIR`` / ``model.save_pretrained`` and ``zslkit.from_pretrained``.

A trained model is exported, rebuilt in a fresh process from the folder alone, and scores the same
features bitwise; the folder loads through ``huggingface_hub``'s ``PyTorchModelHubMixin`` (strict) and
``torch.hub.load(checkout, ..., source="local")``; a folder with a missing or wrong file is one line naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import zslkit
from tests.bench.conftest import SMALL
from tests.conftest import REPO
from zslkit.cli import main
from zslkit.pretrained import PretrainedError, from_pretrained

OPTIONS = [arg for key, value in SMALL.items() for arg in ("--dataset-option", f"{key}={value}")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run, folder = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("export") / "msdn-synthetic"
    assert main(["train", "--model", "msdn", "--epochs", "1", "--no-progress", "--out", str(run), *OPTIONS]) == 0
    assert main(["export", str(run), str(folder)]) == 0
    return run, folder


def features():
    return torch.Generator().manual_seed(3), (8, SMALL["channels"], SMALL["grid"], SMALL["grid"])


def test_a_fresh_process_rebuilds_the_model_from_the_folder_and_scores_bitwise(exported, tmp_path):
    from zslkit.training import load_model

    run, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    x = torch.randn(8, SMALL["channels"], SMALL["grid"], SMALL["grid"], generator=torch.Generator().manual_seed(3))
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    code = ("import sys, torch, zslkit; from safetensors.torch import load_file, save_file\n"
            "model = zslkit.from_pretrained(sys.argv[1])\n"
            "with torch.no_grad(): s = model(load_file(sys.argv[2])['x']).scores\n"
            "save_file({'s': s.contiguous()}, sys.argv[3])\n")
    subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "x.safetensors"), str(tmp_path / "s.safetensors")],
                   check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    with torch.no_grad():
        expected = load_model(run)(x).scores
    assert torch.equal(load_file(str(tmp_path / "s.safetensors"))["s"], expected)


def test_the_card_names_model_paper_data_recipe_results_protocol_commands_and_licence(exported):
    run, folder = exported
    card = (folder / "README.md").read_text()
    results = json.loads((run / "results.json").read_text())[0]
    assert card.startswith("---\nlibrary_name: zslkit\n")
    for text in ("# msdn (zslkit)", "MSDN: Mutually Semantic Distillation Network", "Dataset `synthetic`", "`trainval`",
                 "Recipe `msdn/synthetic`", "evaluated once on the test split", f"{100 * results['H']:.1f}",
                 f"zslkit export {run} {folder}", "--epochs 1", "github.com/shiming-chen/MSDN", "precomputed region feature maps"):
        assert text in card, text
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "msdn" and config["format"] == "zslkit-pretrained"


def test_save_pretrained_and_from_pretrained_round_trip_a_built_model(tmp_path):
    dataset = zslkit.load_dataset("synthetic", **SMALL)
    torch.manual_seed(0)
    model = zslkit.create_model("dazle", class_attributes=dataset.class_attributes, attribute_embeddings=dataset.attribute_embeddings,
                                seen_classes=dataset.seen_classes, unseen_classes=dataset.unseen_classes,
                                feature_dim=dataset.feature_dim).eval()
    model.save_pretrained(tmp_path / "dazle")
    again = zslkit.from_pretrained(tmp_path / "dazle")
    assert type(again) is type(model) and again.options == json.loads(json.dumps(model.options))
    x = torch.randn(4, SMALL["channels"], SMALL["grid"], SMALL["grid"])
    with torch.no_grad():
        assert torch.equal(again(x).scores, model(x).scores)
    assert "MIT licence" in (tmp_path / "dazle" / "README.md").read_text()


def test_huggingface_hubs_mixin_and_torch_hub_read_the_folder(exported, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    _, folder = exported
    saved = load_file(str(folder / "model.safetensors"))

    class Shared(torch.nn.Module, hub.PyTorchModelHubMixin):
        """The mixin's reading of config.json (its keys as arguments) and model.safetensors (strict)."""

        def __init__(self, model, options, seen_classes, unseen_classes, **rest):
            super().__init__()
            shapes = {k: v.shape for k, v in saved.items()}
            net = zslkit.create_model(model, class_attributes=torch.zeros(shapes["classes.attributes"]),
                                      attribute_embeddings=torch.zeros(shapes["V"]), seen_classes=seen_classes,
                                      unseen_classes=unseen_classes, **options)
            for name, child in net.named_children():
                self.add_module(name, child)
            for name, param in net.named_parameters(recurse=False):
                self.register_parameter(name, param)

    shared = Shared.from_pretrained(str(folder), strict=True)
    assert shared.state_dict().keys() == saved.keys()
    assert all(torch.equal(shared.state_dict()[k], v) for k, v in saved.items())
    shared.save_pretrained(tmp_path / "again")  # the mixin writes the same weights file
    assert all(torch.equal(load_file(str(tmp_path / "again" / "model.safetensors"))[k], v) for k, v in saved.items())

    loaded = torch.hub.load(str(REPO), "from_pretrained", str(folder), source="local", trust_repo=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in saved.items())


def copy_folder(folder, target):
    target.mkdir()
    for path in folder.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "config.json").unlink(), "config.json: missing; a zslkit model folder holds"),
    (lambda f: (f / "model.safetensors").unlink(), "model.safetensors: missing"),
    (lambda f: (f / "model.safetensors").write_bytes(b"not safetensors"), "model.safetensors: not a readable safetensors file"),
    (lambda f: (f / "config.json").write_text("{"), "config.json: not valid JSON"),
    (lambda f: (f / "config.json").write_text('{"model": "msdn"}'), 'config.json: not a zslkit model config'),
    (lambda f: save_file({k: v for k, v in load_file(str(f / "model.safetensors")).items() if k != "V"},
                         str(f / "model.safetensors")), "the stored weights do not fit model 'msdn': Missing key"),
])
def test_a_folder_with_a_missing_or_wrong_file_is_refused_in_one_line(exported, tmp_path, damage, message):
    folder = copy_folder(exported[1], tmp_path / "copy")
    damage(folder)
    with pytest.raises(PretrainedError) as info:
        from_pretrained(folder)
    assert message in str(info.value) and "\n" not in str(info.value)
