"""train() runs named stages; each is checked here on its own, and no function of zslkit.training is long."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import zslkit
from zslkit.bench.model_runner import ModelRunner
from zslkit.datasets import ResidentFeatures
from zslkit.training import TrainConfig, load_config, train
from zslkit.training.residency import hold_features, training_device
from zslkit.training.trainer import (
    build_run,
    checkpoint_meta,
    process_settings,
    resident_inputs,
    resolve_run,
    seed_run,
    start_run,
)

TRAINING = Path(zslkit.__file__).parent / "training"
MAX_LINES = 60
TINY = dict(num_classes=8, family_size=4, images_per_class=8, channels=8, grid=3, embedding_dim=6, seed=0)


@pytest.fixture(scope="module")
def tiny():
    return zslkit.load_dataset("synthetic", **TINY)


def test_no_function_in_zslkit_training_is_over_60_lines():
    long = []
    for path in sorted(TRAINING.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # from `def` to its last line, docstring included
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert len(list(TRAINING.glob("*.py"))) >= 8 and not long, f"functions over {MAX_LINES} lines: {long}"


def test_resolve_run_gives_the_recipe_seed_split_inputs_and_device(tiny):
    plan = resolve_run(tiny, None, None, seed=5)
    assert plan.recipe.name == "msdn/synthetic" and plan.model == plan.model_name == "msdn"
    assert plan.config == load_config("msdn/synthetic", seed=5)  # the seed overrides the recipe's only
    assert np.array_equal(plan.indices, tiny.splits["trainval"]) and plan.inputs is tiny.features
    assert plan.device == torch.device("cpu") and plan.out_dir is None and not plan.resume
    dazle = resolve_run(tiny, "dazle", TrainConfig(epochs=2), split="test_seen")
    assert (dazle.model_name, dazle.recipe.source, dazle.config.epochs) == ("dazle", "given", 2)
    assert np.array_equal(dazle.indices, tiny.splits["test_seen"])
    with pytest.raises(ValueError, match="resume=True needs the out_dir"):
        resolve_run(tiny, "msdn", TrainConfig(), resume=True)
    with pytest.raises(KeyError, match="no split 'tranval'"):
        resolve_run(tiny, "msdn", TrainConfig(), split="tranval")


def test_seed_run_seeds_torch_and_returns_the_batch_generator():
    rng = seed_run(TrainConfig(seed=11))
    drawn = (torch.rand(3), rng.integers(0, 1000, 4))
    torch.manual_seed(11)
    expected = (torch.rand(3), np.random.default_rng(11).integers(0, 1000, 4))
    assert torch.equal(drawn[0], expected[0]) and np.array_equal(drawn[1], expected[1])


def test_residency_decision(tiny):
    cpu = torch.device("cpu")
    images = tiny.splits["trainval"]
    on = TrainConfig(resident="on")
    held = hold_features(tiny.features, images, cpu, on, "the training images")
    assert isinstance(held, ResidentFeatures) and np.array_equal(held.images, np.unique(images))
    assert held.dtype == tiny.features.dtype and torch.equal(held.take(images[:3]), torch.from_numpy(tiny.features[images[:3]]))
    half = hold_features(tiny.features, images, cpu, TrainConfig(resident="on", resident_dtype="float16"), "x")
    assert half.dtype == np.float16 and half.nbytes == len(np.unique(images)) * tiny.features[0].size * 2
    assert hold_features(tiny.features, images, cpu, TrainConfig(resident="auto"), "x") is tiny.features  # not a GPU
    assert hold_features(tiny.features, images, cpu, TrainConfig(resident="off"), "x") is tiny.features
    assert hold_features(held, images, cpu, on, "x") is held  # already there
    images_dataset = torch.utils.data.TensorDataset(torch.zeros(4, 3, 8, 8))
    assert hold_features(images_dataset, None, cpu, TrainConfig(resident="auto"), "x") is images_dataset
    with pytest.raises(ValueError, match="these inputs are a torch Dataset"):
        hold_features(images_dataset, None, cpu, on, "x")
    # the trainer's stage and the benchmark runner decide through the same function
    plan = resolve_run(tiny, "msdn", on)
    assert np.array_equal(resident_inputs(plan).images, np.unique(images))
    runner = ModelRunner("msdn", train_config={"resident": "on"})
    view = runner.on_device(tiny)
    assert isinstance(view.features, ResidentFeatures) and len(view.features.images) == len(tiny.labels)
    assert runner.on_device(tiny).features is view.features  # held once for all fits
    assert ModelRunner("msdn", train_config={"resident": "off"}).on_device(tiny) is tiny
    assert training_device(TrainConfig(device="auto")).type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_process_settings_are_set_inside_and_restored_after():
    threads, tf32 = torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32
    with process_settings(TrainConfig(num_threads=1, precision="tf32")):
        assert torch.get_num_threads() == 1 and torch.backends.cuda.matmul.allow_tf32 is True
    assert (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32) == (threads, tf32)
    with pytest.raises(RuntimeError, match="boom"), process_settings(TrainConfig(num_threads=1, precision="fp32")):
        assert torch.backends.cuda.matmul.allow_tf32 is False
        raise RuntimeError("boom")
    assert (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32) == (threads, tf32)


def test_checkpoint_meta_records_the_run(tiny):
    plan = resolve_run(dataclasses.replace(tiny, name="synthetic"), "dazle", None, split="trainval")
    rng = np.random.default_rng(4)
    meta = checkpoint_meta(tiny, plan, rng, [{"epoch": 1, "loss": 0.5}])
    assert meta["dataset"] == tiny.name and meta["split"] == "trainval"
    assert meta["config"] == load_config("dazle/synthetic").to_dict()
    assert meta["recipe"] == {"name": "dazle/synthetic", "source": "zslkit/configs/dazle/synthetic.yaml",
                              "defaults_for": None, "line": "recipe: dazle/synthetic (zslkit/configs/dazle/synthetic.yaml)"}
    assert meta["rng"]["numpy"] == np.random.default_rng(4).bit_generator.state
    assert meta["history"] == [{"epoch": 1, "loss": 0.5}]
    assert meta["class_names"] == list(tiny.class_names) and meta["attribute_names"] == list(tiny.attribute_names)


def test_start_run_resumes_from_the_latest_checkpoint_or_refuses_a_used_directory(tiny, tmp_path):

    config = TrainConfig(epochs=2, batch_size=16)
    done = train(tiny, "msdn", config, out_dir=tmp_path / "run", progress=False)

    def start(plan):
        net, _, optimizer = build_run(tiny, plan, {})
        return start_run(tiny, plan, net, optimizer, seed_run(plan.config))

    assert start(resolve_run(tiny, "msdn", config, out_dir=tmp_path / "new")) == (0, [])
    with pytest.raises(FileExistsError, match="holds checkpoints of an earlier run"):
        start(resolve_run(tiny, "msdn", config, out_dir=tmp_path / "run"))
    again = resolve_run(tiny, "msdn", dataclasses.replace(config, epochs=3), out_dir=tmp_path / "run", resume=True)
    net, _, optimizer = build_run(tiny, again, {})
    rng = seed_run(again.config)
    epoch, history = start_run(tiny, again, net, optimizer, rng)
    assert epoch == 2 and [h["epoch"] for h in history] == [1, 2] and history[-1]["loss"] == done.history[-1]["loss"]
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), done.model.state_dict().values()))
