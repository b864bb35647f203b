"""The cell cache answers only for the settings that filled it: each input of the key, one at a time.

Every test computes a cell through the harness's own path (``_cells``: key, cache file, protocol
run) with a scripted runner that records its trainings, changes one input, and checks that the
cache does not answer (a training runs, another file appears), while the same settings written
in another key order are answered from the cache (no training).
"""

from __future__ import annotations

import dataclasses

import pytest

import zslkit
from tests.bench.scripted import DATA, ScriptedRunner
from zslkit.bench import harness, protocols
from zslkit.bench.cache import CellCache
from zslkit.bench.case import BenchmarkCase
from zslkit.datasets import make_synthetic
from zslkit.training import load_config
from zslkit.training.recipes import recipe_for

CASE = BenchmarkCase("mine", "ale", options={"epochs": 4, "margin": 1.0}, param_grid={"lr": [0.1], "decay": [0.5]},
                     train_config={"epochs": 4, "lr": 0.1})
OPTIONS = {"noise": 0.1, "seed": 3}


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(**DATA)


@pytest.fixture
def cell(tmp_path, dataset):
    """``cell(**changes) -> trainings run``: the validation cell of CASE, with ``changes`` to its inputs."""
    cache = CellCache(tmp_path / "cells")

    def compute(case=CASE, options=OPTIONS, recipe=None, seed=0, name="synthetic", protocol="validation"):
        runner = ScriptedRunner({"a1": [2, 6, 4]}, {"a1": [3, 5, 7]})
        cells = harness._cells([protocols.get_protocol(p) for p in protocol.split(",")], (name, lambda: dataset), options,
                               case, seed, cache, {}, (runner, recipe), False)
        for c in cells:
            assert c["method"] == case.name and c["seed"] == seed
            compute.digests.add(c["settings_hash"])
        return len(runner.fits)

    compute.digests = set()
    compute.files = lambda: sorted(p.name for p in (tmp_path / "cells").glob("*.json"))
    return compute


def test_the_same_settings_are_answered_from_the_cache(cell):
    assert cell() == 2  # validation grid on the view + the refit on trainval
    assert cell() == 0 and len(cell.files()) == 1


@pytest.mark.parametrize("change", [
    dict(case=dataclasses.replace(CASE, component="sje")),
    dict(case=dataclasses.replace(CASE, component="msdn", kind="model")),  # a name is registered under one kind
    dict(case=dataclasses.replace(CASE, options={"epochs": 4, "margin": 2.0})),
    dict(case=dataclasses.replace(CASE, options={"epochs": 4})),
    dict(case=dataclasses.replace(CASE, param_grid={"lr": [0.1, 0.01], "decay": [0.5]})),
    dict(case=dataclasses.replace(CASE, param_grid=None)),
    dict(case=dataclasses.replace(CASE, train_config={"epochs": 5, "lr": 0.1})),
    dict(options={"noise": 0.2, "seed": 3}),
    dict(options={"noise": 0.1}),
    dict(seed=1),
    dict(protocol="paper"),
], ids=["component", "model component", "option value", "option dropped", "grid", "no grid", "train config",
        "dataset option value", "dataset option dropped", "seed", "protocol"])
def test_each_input_of_the_key_is_its_own_cell(cell, change):
    assert cell() == 2
    assert cell(**change) > 0  # not answered from the first cell
    assert len(cell.files()) == 2 and len(cell.digests) == 2  # another key, not only another file name
    assert cell(**change) == 0  # ... and cached under its own key


def test_another_dataset_of_the_same_case_and_options_is_its_own_cell(cell):
    """The file name says the dataset; the key (the cell's ``settings_hash``) must too."""
    cell()
    assert cell(name="synthetic2") > 0 and len(cell.digests) == 2


def test_a_renamed_case_with_the_same_settings_is_its_own_cell(cell):
    cell()
    assert cell(case=dataclasses.replace(CASE, name="mine+")) > 0 and len(cell.digests) == 2


def test_the_harness_version_and_zslkit_version_are_in_the_key(cell, monkeypatch):
    cell()
    monkeypatch.setattr(harness, "HARNESS_VERSION", harness.HARNESS_VERSION + 1)
    assert cell() > 0  # a protocol change invalidates the finished cells
    monkeypatch.setattr(zslkit, "__version__", zslkit.__version__ + ".post1")
    assert cell() > 0
    assert len(cell.files()) == 3 and len(cell.digests) == 3


def test_the_recipe_config_is_in_the_key(cell):
    recipe = recipe_for("msdn", "synthetic")
    assert cell(recipe=recipe) == 2
    assert cell(recipe=recipe) == 0
    edited = recipe.with_config(load_config(recipe.config, lr=recipe.config.lr * 2))
    assert cell(recipe=edited) > 0
    assert cell() > 0  # no recipe (a method) is not the recipe's cell either


def test_cells_computed_together_are_each_protocols_own_cell(cell):
    """validation,paper in one go: each protocol's cell has its own key, the one it has when run alone."""
    assert cell(protocol="validation,paper") > 0 and len(cell.digests) == 2
    assert cell(protocol="paper") == 0 and cell(protocol="validation") == 0
    assert len(cell.files()) == 2 and len(cell.digests) == 2


def test_key_order_does_not_matter(cell):
    assert cell() == 2
    reordered = dataclasses.replace(CASE, options={"margin": 1.0, "epochs": 4}, param_grid={"decay": [0.5], "lr": [0.1]},
                                    train_config={"lr": 0.1, "epochs": 4})
    assert cell(case=reordered, options={"seed": 3, "noise": 0.1}) == 0
    assert len(cell.files()) == 1 and len(cell.digests) == 1
    # the order of a grid's values is not a key order: the candidates' order breaks ties, so it is another cell
    two = dataclasses.replace(CASE, param_grid={"lr": [0.1, 0.01], "decay": [0.5]})
    assert cell(case=two) > 0 and cell(case=dataclasses.replace(two, param_grid={"decay": [0.5], "lr": [0.01, 0.1]})) > 0
