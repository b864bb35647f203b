"""docs/writing-a-plugin.md section 8: a model that owns its ViT backbone, built from an adapter and existing parts.

The page's block is executed as written; its adapter and model are registered and the model is
checked against an independent composition of its parts, then trained on 32 px images with a
local weights file, checkpointed, resumed (bitwise the straight run), rebuilt from the checkpoint
alone with the weights file gone, drawn by ``zslkit viz attention`` and run in the bench.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import zslkit
import zslkit.viz
from tests.viz_capture import capture_drawings, save_picture
from zslkit.adapters import AdapterContext
from zslkit.bench import BenchmarkCase, run_benchmark
from zslkit.datasets import ZSLDataset
from zslkit.plugins import get_plugin_manager
from zslkit.registry import register_component, unregister
from zslkit.training import TrainConfig, evaluate, load_model, train

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
NAME = "tiny_vit_prototypes"


def docs_code():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    code = next(b for b in blocks if "class TinyViTPrototypes" in b)
    namespace: dict = {"__name__": "docs_vit_model"}
    exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - the docs' own code
    return namespace


@pytest.fixture(scope="module")
def registered():
    namespace = docs_code()
    register_component("adapter", "attribute_prompt", namespace["AttributePrompt"])
    register_component("model", NAME, namespace["TinyViTPrototypes"])
    register_component("dataset", "tiny_vit_images", tiny_images)
    yield namespace["TinyViTPrototypes"]
    for kind, name in (("adapter", "attribute_prompt"), ("model", NAME), ("dataset", "tiny_vit_images")):
        unregister(kind, name)


def tiny_images(seed: int = 0) -> ZSLDataset:
    """The synthetic dataset's classes, attributes and splits with 32 px images: a template per class plus noise."""
    base = zslkit.load_dataset("synthetic", num_classes=8, images_per_class=6, channels=4, grid=3, embedding_dim=6)
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(base.num_classes, 3, 32, 32)).astype(np.float32)
    images = templates[base.labels] + 0.5 * rng.normal(size=(base.num_images, 3, 32, 32)).astype(np.float32)
    return ZSLDataset(name="tiny_vit_images", labels=base.labels, class_attributes=base.class_attributes, splits=base.splits,
                      features=images, class_names=base.class_names, attribute_names=base.attribute_names,
                      attribute_embeddings=base.attribute_embeddings)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, registered):
    """A local weights file of the docs model's timm ViT (random, in timm's layout)."""
    import timm

    torch.manual_seed(7)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, **registered.default_backbone_options)
    path = tmp_path_factory.mktemp("weights") / "vit_tiny_3blocks.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    return path


def build(data, weights):
    torch.manual_seed(0)
    return zslkit.create_model(NAME, class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
                               seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=3,
                               backbone_weights=weights)


def test_the_docs_model_is_the_composition_of_its_parts(registered, weights):
    data = tiny_images()
    model = build(data, weights).eval()
    stored = load_file(str(weights))
    body = {k: v for k, v in stored.items() if not k.startswith("head.")}  # the classifier is not loaded
    assert all(torch.equal(model.backbone.model.state_dict()[k], v) for k, v in body.items())  # the file's weights
    images = torch.as_tensor(data.features[:4])
    with torch.no_grad():
        out = model(images)
        state = model.backbone(images, model.adapters, AdapterContext(model.V))
        f = state.patches.transpose(1, 2)  # (B, D, 9): 8 kept patch tokens and the merged one
        psi_a2v = model.branches["a2v"](f, model.V).scores
        maps = torch.einsum("ic,bcr->bir", model.branches["proto"].prototypes, f)
    A = torch.as_tensor(data.class_attributes)
    A = A / A.norm(dim=1, keepdim=True)
    m = torch.tensor([1.0 if k in set(data.unseen_classes.tolist()) else -1.0 for k in range(A.shape[0])])
    expected = 0.7 * (psi_a2v @ A.T + m) + 0.3 * (maps.amax(dim=2) @ A.T + m)
    torch.testing.assert_close(out.scores, expected, rtol=1e-5, atol=1e-5)
    assert f.shape == (4, 48, 9) and out.grid == (4, 4) and out.maps["proto"].shape == (4, data.num_attributes, 16)
    # the maps stay on the input's 4x4 patch grid: kept patches carry their token's value, dropped ones 0
    for b in range(4):
        cells = state.source[b, :8]
        assert (state.source[b, 8] == -1) and len(set(cells.tolist())) == 8
        torch.testing.assert_close(out.maps["proto"][b][:, cells], maps[b][:, :8], rtol=1e-5, atol=1e-6)
        dropped = [c for c in range(16) if c not in cells.tolist()]
        assert torch.equal(out.maps["proto"][b][:, dropped], torch.zeros(data.num_attributes, 8))
    torch.testing.assert_close(out.global_token, state.prefix[:, 0])
    # the prompt adapter moved the CLS token entering block 0 by W mean(V) + b
    prompt = model.adapters.by_entry["prompt"].project(model.V.mean(dim=0))
    assert model.options["adapters"]["prompt"] == {"adapter": "attribute_prompt", "place": "before_block", "block": 0}
    assert prompt.shape == (48,) and prompt.abs().sum() > 0


def config(epochs):
    return TrainConfig(model=NAME, epochs=epochs, batch_size=8, lr=1e-3)


@pytest.fixture(scope="module")
def runs(registered, weights, tmp_path_factory):
    work = tmp_path_factory.mktemp("vit_runs")
    data = tiny_images()
    straight = train(data, NAME, config(3), out_dir=work / "A", progress=False, backbone_weights=str(weights))
    train(data, NAME, config(1), out_dir=work / "B", progress=False, backbone_weights=str(weights))
    train(data, NAME, config(3), out_dir=work / "B", progress=False, resume=True, backbone_weights=str(weights))
    return work, data, straight


@pytest.mark.slow
def test_trains_checkpoints_and_resumes_bitwise(runs):
    work, _, straight = runs
    a, b = load_file(str(work / "A" / "epoch_003.safetensors")), load_file(str(work / "B" / "epoch_003.safetensors"))
    model_keys = [k for k in a if k.startswith("model.")]
    assert any(k.startswith("model.backbone.model.blocks.2.") for k in model_keys)  # the fine-tuned backbone is stored
    assert any(k.startswith("model.adapters.by_entry.prompt.") for k in model_keys)  # and the adapter
    assert all(torch.equal(a[k], b[k]) for k in model_keys)
    losses = [h["loss"] for h in straight.history]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_rebuilds_from_the_checkpoint_alone(runs, weights, tmp_path):
    work, data, straight = runs
    moved = tmp_path / "gone.safetensors"
    weights.rename(moved)  # the weights file is not needed any more
    try:
        rebuilt = load_model(work / "A")
    finally:
        moved.rename(weights)
    assert rebuilt.options["backbone_weights"] == str(weights)  # it still names what it was first built from
    images = torch.as_tensor(data.features[data.splits["test_unseen"]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images).scores, straight.model(images).scores, rtol=0, atol=0)


@pytest.mark.slow
def test_the_adapters_get_the_batch_labels_in_training(registered, weights):
    data = tiny_images()
    seen = []

    class Recording(registered):
        def forward(self, images, labels=None):
            seen.append((images[:, 0, 0, 0].clone(), None if labels is None else labels.clone()))
            return super().forward(images, labels)

    register_component("model", "tiny_vit_recording", Recording)
    try:
        train(data, "tiny_vit_recording", TrainConfig(model="tiny_vit_recording", epochs=1, batch_size=8), progress=False,
              backbone_weights=str(weights))
    finally:
        unregister("model", "tiny_vit_recording")
    first_pixel = {float(v): i for i, v in enumerate(data.features[:, 0, 0, 0])}
    assert len(seen) == int(np.ceil(len(data.splits["trainval"]) / 8))
    for pixels, labels in seen:
        assert labels.tolist() == [int(data.labels[first_pixel[float(p)]]) for p in pixels]


@pytest.mark.slow
def test_viz_draws_the_maps_of_the_checkpoint(runs, tmp_path, monkeypatch, capsys):
    from zslkit.cli import main

    work, data, straight = runs
    save_picture(data.features[0], tmp_path / "image.png")
    drawn = capture_drawings(monkeypatch)
    argv = ["viz", "attention", "--checkpoint", str(work / "A"), "--image", str(tmp_path / "image.png"),
            "--image-size", "32", "--top-k", "2", "--out", str(tmp_path / "maps.png")]
    assert main(argv) == 0
    assert (tmp_path / "maps.png").stat().st_size > 0
    model, image = drawn["model"], drawn["features"]
    assert image.shape == (3, 32, 32)  # the image itself went to the model's own backbone
    with torch.no_grad():
        out = model(image[None])
    for branch, items in drawn["panels"].items():
        for item in items:
            expected = out.maps[branch][0, item.attribute].reshape(4, 4).numpy()
            np.testing.assert_array_equal(item.map, expected)
            assert (item.map == 0).sum() >= 7  # 8 of 16 patches were dropped in block 1 (a kept cell may be 0 too)
    capsys.readouterr()
    assert main([*argv, "--backbone", "resnet18"]) != 0  # a contradicting --backbone for a model that owns one
    assert "the model owns its backbone" in capsys.readouterr().err


class BenchCase:
    def __init__(self, weights):
        self.weights = weights

    @zslkit.hookimpl
    def zslkit_benchmark_cases(self):
        return [BenchmarkCase("tiny_vit", NAME, "model", options={"backbone_weights": str(self.weights)},
                              train_config={"epochs": 3, "batch_size": 8, "lr": 1e-3})]


@pytest.mark.slow
def test_runs_in_the_bench_with_the_numbers_of_the_straight_run(runs, weights):
    _, data, straight = runs
    manager = get_plugin_manager()
    manager.register(BenchCase(weights), name="docs-vit-bench")
    try:
        result = run_benchmark(["tiny_vit_images"], ["tiny_vit"], protocol="paper", progress=False)
    finally:
        manager.unregister(name="docs-vit-bench")
    (cell,) = [c for c in result.cells if c["method"] == "tiny_vit"]
    expected = evaluate(straight.model, data)
    assert len(cell["epochs"]) == 3
    assert cell["epochs"][-1]["test_T1"] == pytest.approx(expected["T1"], abs=1e-9)
