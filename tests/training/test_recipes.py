"""Recipes belong to models: (model, dataset) files, a model's own defaults, loss weights in one place."""

import dataclasses
import json

import pytest
import yaml

import zslkit
from zslkit.cli import main
from zslkit.models.msdn import MSDN
from zslkit.registry import register_component, unregister
from zslkit.training import TrainConfig, available_configs, choose_recipe, load_config, recipe_for, train
from zslkit.training.recipes import model_recipes, recipe_home
from zslkit.training.trainer import build_run, resolve_run

TINY = dict(num_classes=8, family_size=4, images_per_class=8, channels=8, grid=3, embedding_dim=6, seed=0)
DATA = [arg for key, value in TINY.items() if key not in ("family_size", "seed")
        for arg in ("--dataset-option", f"{key}={value}")]


@pytest.fixture(scope="module")
def tiny():
    return zslkit.load_dataset("synthetic", **TINY)


def named(dataset, name):
    """``dataset`` under another registered name (the recipe is looked up by it)."""
    return dataclasses.replace(dataset, name=name)


def test_every_packaged_recipe_is_a_model_dataset_pair_in_its_models_folder():
    names = available_configs()
    assert {"msdn/cub", "msdn/sun", "msdn/awa2", "msdn/synthetic", "dazle/cub", "dazle/sun", "dazle/awa2",
            "dazle/synthetic"} <= set(names)
    for name in names:
        model, dataset = name.split("/")
        recipe = recipe_for(model, dataset) if dataset != "defaults" else recipe_for(model, "no_such_dataset")
        fallback = "no_such_dataset" if dataset == "defaults" else None
        assert (recipe.name, recipe.source, recipe.fallback) == (name, f"zslkit/configs/{name}.yaml", fallback)
        assert recipe.config.model == model and recipe.config == load_config(name)
    # dazle's own defaults (the notebooks' shared settings), msdn's are TrainConfig's (its CUB setting)
    assert recipe_for("dazle", "apy").config == load_config("dazle/defaults")
    assert recipe_for("msdn", "apy").config == TrainConfig() and TrainConfig().model == "msdn"


def test_dazle_never_gets_msdns_recipe():
    dazle, msdn = recipe_for("dazle", "cub"), recipe_for("msdn", "cub")
    assert dazle.source == "zslkit/configs/dazle/cub.yaml" and msdn.source == "zslkit/configs/msdn/cub.yaml"
    # the authors' DAZLE_CUB notebook: 20 epochs, seed 214; MSDN_cub.py: 30 epochs
    assert (dazle.config.model, dazle.config.epochs, dazle.config.seed) == ("dazle", 20, 214)
    assert (msdn.config.model, msdn.config.epochs) == ("msdn", 30)
    sun = recipe_for("dazle", "sun").config  # uniform_att_2=True: DAZLE's gate fixed to 1
    assert (sun.epochs, sun.sampler) == (100, "class_balanced")
    assert sun.model_options["branches"] == {"dazle": {"attention": "attribute_to_visual", "weight": 1.0}}
    assert recipe_for("dazle", "awa2").config.momentum == 0.0


def test_cli_train_dazle_on_cub_uses_dazles_cub_recipe(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("zslkit.cli.train.load_dataset_from_args", lambda name, args: named(tiny, name))
    out = tmp_path / "run"
    assert main(["train", "--model", "dazle", "--dataset", "cub", "--epochs", "1", "--set", "batch_size=16",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().err  # messages go to stderr, the table alone to stdout
    assert printed.count("recipe: dazle/cub (zslkit/configs/dazle/cub.yaml)") == 1
    assert "msdn" not in printed  # no MSDN recipe, no note about MSDN's loss weights
    meta = json.loads((out / "epoch_001.json").read_text())
    assert meta["recipe"]["name"] == "dazle/cub" and meta["recipe"]["source"] == "zslkit/configs/dazle/cub.yaml"
    expected = load_config("dazle/cub", epochs=1, batch_size=16).to_dict()
    assert meta["config"] == expected and meta["config"]["seed"] == 214 and meta["config"]["model"] == "dazle"
    assert json.loads((out / "results.json").read_text())[0]["recipe"] == "dazle/cub"


def test_a_model_without_recipes_uses_its_defaults_never_its_parents(tiny, monkeypatch, capsys):
    class Copy(MSDN):
        """MSDN's assembly, but a model of its own: MSDN's recipes are not its recipes."""

    register_component("model", "msdn_copy", Copy)
    try:
        recipe = recipe_for("msdn_copy", "cub")
        assert recipe.line() == "msdn_copy has no recipe for cub; using its defaults"
        assert recipe.config == TrainConfig(model="msdn_copy") and recipe.name == "msdn_copy/defaults"
        assert recipe_home("msdn_copy", "msdn_copy") is None and model_recipes("msdn_copy") == []
        monkeypatch.setattr("zslkit.cli.train.load_dataset_from_args", lambda name, args: named(tiny, "cub"))
        assert main(["train", "--model", "msdn_copy", "--epochs", "1", "--set", "batch_size=16"]) == 0
        captured = capsys.readouterr()
        assert (captured.out + captured.err).count("msdn_copy has no recipe for cub; using its defaults") == 1
    finally:
        unregister("model", "msdn_copy")


def test_train_without_config_says_which_recipe_and_records_it(tiny, tmp_path, caplog):
    caplog.set_level("INFO", logger="zslkit.training")
    result = train(tiny, "msdn", None, out_dir=tmp_path / "run", progress=False)
    assert result.recipe.name == "msdn/synthetic" and result.config == load_config("msdn/synthetic")
    assert len(result.history) == 10
    assert caplog.text.count("recipe: msdn/synthetic (zslkit/configs/msdn/synthetic.yaml)") == 1
    meta = json.loads((tmp_path / "run" / "epoch_010.json").read_text())
    assert meta["recipe"]["line"] == "recipe: msdn/synthetic (zslkit/configs/msdn/synthetic.yaml)"


def test_a_recipes_loss_weights_reach_the_model_over_its_defaults(tiny):
    sun = named(tiny, "sun")
    plan = resolve_run(sun, "msdn")
    net, unused, _ = build_run(sun, plan, {})
    assert plan.recipe.name == "msdn/sun" and unused == {}
    assert net.loss_weights == {"attribute_ce": 1.0, "self_calibration": 1e-4, "semantic_distillation": 0.01}


def test_a_given_config_is_recorded_as_given(tmp_path):
    model, recipe = choose_recipe(None, "cub", TrainConfig(model="dazle", epochs=3))
    assert (model, recipe.name, recipe.source, recipe.line()) == ("dazle", "TrainConfig", "given", "recipe: TrainConfig (given)")
    with pytest.raises(ValueError, match=r"recipe dazle/synthetic is for model 'dazle', but model 'msdn' was asked for"):
        choose_recipe("msdn", "synthetic", "dazle/synthetic")  # a model never gets another model's recipe
    with pytest.raises(FileNotFoundError, match=r"no config named 'cub' \(a recipe is <model>/<dataset>: (\w+/cub or )*dazle/cub or (\w+/cub or )*msdn/cub( or \w+/cub)*\?\)"):
        load_config("cub")
    path = tmp_path / "mine.yaml"
    path.write_text("model: dazle\nepochs: 3\n")
    model, recipe = choose_recipe(None, "cub", path)
    assert (model, recipe.config.epochs, recipe.line()) == ("dazle", 3, f"recipe: {path}")


def test_a_models_folder_its_defaults_file_and_a_file_naming_another_model(tmp_path, monkeypatch):
    folder = tmp_path / "configs" / "msdn"
    folder.mkdir(parents=True)
    (folder / "defaults.yaml").write_text("epochs: 7\nlr: 2.0e-4\n")
    (folder / "tiny.yaml").write_text("epochs: 3\n")
    (folder / "cub.yaml").write_text("model: dazle\nepochs: 3\n")
    from zslkit.training import recipes

    monkeypatch.setattr(recipes, "recipe_home", lambda model, name: (folder, "pkg/configs/msdn"))
    assert model_recipes("msdn") == ["cub", "tiny"]  # defaults.yaml stands in for the others
    tiny = recipe_for("msdn", "tiny")
    assert (tiny.name, tiny.source, tiny.config.epochs, tiny.config.model) == ("msdn/tiny", "pkg/configs/msdn/tiny.yaml", 3, "msdn")
    other = recipe_for("msdn", "sun")
    assert other.line() == "msdn has no recipe for sun; using its defaults"
    assert (other.source, other.config.epochs, other.config.lr, other.config.model) == ("pkg/configs/msdn/defaults.yaml", 7, 2e-4, "msdn")
    with pytest.raises(ValueError, match=r"pkg/configs/msdn/cub.yaml: a recipe of model 'msdn' says model: 'dazle'"):
        recipe_for("msdn", "cub")


def _default_loss_weights(model: str, dataset) -> dict[str, float]:
    """The loss weights of ``model`` as built, before any recipe touches them."""
    return dict(_build(model, dataset, {}).loss_weights)


def _build(model: str, dataset, options: dict):
    """``model`` built on ``dataset``'s class space with ``options``; one that owns its ViT gets random weights
    (its recipe names a pretrained backbone by its timm name, whose weights file only a user has)."""
    from zslkit.models import TokenAttentionModel

    feature_dim = dataset.feature_dim
    if issubclass(zslkit.get_component("model", model), TokenAttentionModel):  # it reads images
        options, feature_dim = {**options, "backbone_random_init": True}, 3
    return zslkit.create_model(model, class_attributes=dataset.class_attributes, attribute_embeddings=dataset.attribute_embeddings,
                               seen_classes=dataset.seen_classes, unseen_classes=dataset.unseen_classes,
                               feature_dim=feature_dim, attribute_groups=dataset.attribute_groups, **options)


def test_loss_weights_have_one_home_no_recipe_repeats_a_models_default(tiny):
    checked = 0
    for model in zslkit.list_components("model"):
        datasets = model_recipes(model)
        if not datasets:
            continue
        defaults = _default_loss_weights(model, tiny)
        folder, label = recipe_home(model, model)
        for dataset in datasets + (["defaults"] if (folder / "defaults.yaml").is_file() else []):
            stated = (yaml.safe_load((folder / f"{dataset}.yaml").read_text()) or {}).get("loss_weights") or {}
            for term, weight in stated.items():
                assert term in defaults, f"{label}/{dataset}.yaml weighs {term!r}, which {model} does not have"
                assert float(weight) != defaults[term], (
                    f"{label}/{dataset}.yaml states {term}: {weight}, the weight {model} already has by default")
                checked += 1
    assert checked >= 4  # msdn/sun and msdn/awa2 state two weights each


def test_an_installed_plugin_ships_recipes_for_its_model_as_package_data(tmp_path):
    from tests.conftest import make_distribution, run_python

    site = tmp_path / "site"
    (site / "recipe_plugin" / "configs" / "plugin_dazle").mkdir(parents=True)
    (site / "recipe_plugin" / "configs" / "plugin_dazle" / "cub.yaml").write_text("epochs: 4\nseed: 9\n")
    make_distribution(site, "zslkit-recipe-plugin", "1.0", {"recipes": "recipe_plugin.plugin"}, {
        "recipe_plugin/__init__": "",
        "recipe_plugin/plugin": """
            import zslkit
            from zslkit.models.dazle import DAZLE

            class PluginDAZLE(DAZLE):  # DAZLE's assembly; DAZLE's recipes are still not its recipes
                pass

            @zslkit.hookimpl
            def zslkit_register_components(registrar):
                registrar.register("model", "plugin_dazle", PluginDAZLE)
            """,
    })
    result = run_python("""
        import json
        from zslkit.training import choose_recipe, recipe_for
        print(json.dumps([recipe_for("plugin_dazle", "cub").record(), recipe_for("plugin_dazle", "sun").record(),
                          recipe_for("plugin_dazle", "cub").config.epochs, choose_recipe(None, "x", "plugin_dazle/cub")[0]]))
        """, extra_path=[site])
    assert result.returncode == 0, result.stderr
    cub, sun, epochs, model = json.loads(result.stdout.strip().splitlines()[-1])
    assert (cub["name"], cub["source"], epochs, model) == ("plugin_dazle/cub", "recipe_plugin/configs/plugin_dazle/cub.yaml", 4, "plugin_dazle")
    assert sun["line"] == "plugin_dazle has no recipe for sun; using its defaults" and sun["source"] == "TrainConfig defaults"


def test_every_packaged_recipes_model_options_build_its_model(tiny):
    """A recipe names only options its model has (e.g. ``scorer``, not the ``margin`` flag it replaced)."""
    for name in available_configs():
        config = load_config(name)
        model = _build(config.model, tiny, config.model_options)
        assert model.component_name == config.model, name
