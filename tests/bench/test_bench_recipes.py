"""Deep models in the harness train with their own recipe, say which, and record it."""

import dataclasses
import json

import pytest

from zslkit.bench.case import BenchmarkCase
from zslkit.cli import main
from zslkit.training import load_config


def small_args(small_options):
    return [arg for key, value in small_options.items() for arg in ("--dataset-option", f"{key}={value}")]


def test_the_runner_uses_the_models_recipe_with_the_cases_overrides(small_dataset):
    runner = BenchmarkCase("dazle", "dazle", kind="model", train_config={"epochs": 2}).runner()
    recipe = runner.recipe(small_dataset.validation_view())
    assert (recipe.name, recipe.source) == ("dazle/synthetic", "zslkit/configs/dazle/synthetic.yaml")
    assert runner.config(small_dataset) == load_config("dazle/synthetic", epochs=2)
    assert runner.config(small_dataset, epochs=5).epochs == 5
    cub = dataclasses.replace(small_dataset, name="cub")  # never MSDN's CUB recipe
    assert runner.config(cub) == load_config("dazle/cub", epochs=2)
    with pytest.raises(ValueError, match="recipe msdn/sun is for model 'msdn', but model 'dazle' was asked for"):
        BenchmarkCase("d", "dazle", kind="model", train_config="msdn/sun").runner().recipe(small_dataset)


def test_bench_prints_each_recipe_once_and_results_record_it(tmp_path, small_options, capsys):
    assert main(["bench", "--model", "dazle,sae", "--seed", "0,1", "--no-progress", "--out", str(tmp_path),
                 *small_args(small_options)]) == 0
    captured = capsys.readouterr()
    assert "recipe:" not in captured.out  # the table alone on stdout
    err = captured.err
    assert err.count("recipe: dazle/synthetic (zslkit/configs/dazle/synthetic.yaml)") == 1 and "msdn" not in err
    cells = json.loads((tmp_path / "results.json").read_text())["cells"]
    recipes = {c["method"]: c.get("recipe") for c in cells}
    assert recipes["sae"] is None and recipes["dazle"]["name"] == "dazle/synthetic"
    assert recipes["dazle"]["source"] == "zslkit/configs/dazle/synthetic.yaml"
