"""Threads come from the machine or the user, never from a recipe (zslkit/threads.py is the one place)."""

import os
import subprocess
import sys
from importlib import resources

import pytest
import torch
import yaml

from tests.conftest import REPO
from zslkit import threads
from zslkit.training import TrainConfig, available_configs, train
from zslkit.training.config import MACHINE_SETTINGS


def packaged_recipes():
    """Every recipe file zslkit and the example plugin ship."""
    roots = [resources.files("zslkit") / "configs", REPO / "plugins" / "zslkit-example-plugin" / "zslkit_example_plugin" / "configs"]
    return [p for root in roots for folder in root.iterdir() if folder.is_dir() for p in folder.iterdir() if p.name.endswith(".yaml")]


def test_no_packaged_recipe_names_a_machine_setting():
    files = packaged_recipes()
    assert len(files) >= len(available_configs()) > 20
    for path in files:
        keys = set(yaml.safe_load(path.read_text()) or {})
        assert not keys & set(MACHINE_SETTINGS), f"{path} sets {sorted(keys & set(MACHINE_SETTINGS))}"


@pytest.mark.parametrize(("key", "value", "instead"), [
    ("num_threads", 2, "--threads"), ("device", "cuda", "--device"), ("compile", "default", "--set compile=MODE")])
def test_a_recipe_naming_a_machine_setting_is_refused_in_one_line(tmp_path, key, value, instead):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(f"model: msdn\nepochs: 1\n{key}: {value}\n")
    result = subprocess.run([sys.executable, "-m", "zslkit", "train", "--config", str(recipe)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{recipe}: '{key}' is a machine setting, not part of a recipe: remove it; " in result.stderr
    assert instead in result.stderr


def test_the_machine_gives_its_free_cores_shared_among_side_by_side_processes(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    for load, free in ((0.2, 8), (1.0, 7), (2.6, 5), (40.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        threads.free_cores.cache_clear()
        assert (threads.available_cores(), threads.free_cores(), threads.thread_count()) == (8, free, free)
    threads.free_cores.cache_clear()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 0.0, 0.0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # torchrun --nproc-per-node 3: 7 free cores shared by 3
    assert threads.thread_count() == 2
    assert threads.thread_count(sharing=10) == 1
    assert threads.thread_count(5) == 5  # the user's choice wins
    with pytest.raises(ValueError, match="threads must be a positive number"):
        threads.thread_count(-1)
    threads.free_cores.cache_clear()


def test_training_runs_on_the_machines_threads_or_the_ones_asked_for(small_dataset, monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda: 3)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    for asked, expected in ((0, 3), (1, 1)):
        config = TrainConfig(epochs=1, batch_size=64, lr=1e-3, num_threads=asked)
        result = train(small_dataset, "dazle", config, progress=False, on_epoch=lambda e, m: {"threads": torch.get_num_threads()})
        assert [h["threads"] for h in result.history] == [expected]
        assert torch.get_num_threads() == before


@pytest.fixture
def small_dataset():
    from zslkit.datasets import make_synthetic

    return make_synthetic(num_classes=12, images_per_class=8, channels=8, grid=3, embedding_dim=4)
