"""Recipes: how a model trains on a dataset, shipped with the model.

A recipe is a (model, dataset) pair: the YAML file ``configs/<model>/<dataset>.yaml``
(any subset of the :class:`~zslkit.training.TrainConfig` fields) in the package that
defines the model, found through the module of the model's registered factory:

* the built-in ``msdn`` and ``dazle``: ``zslkit/configs/msdn/cub.yaml``, ``zslkit/configs/dazle/sun.yaml``...;
* a plugin's model (factory in ``my_plugin.models``): ``my_plugin/configs/<model>/<dataset>.yaml``,
  shipped as package data of the plugin.

A model with no file for a dataset trains with its defaults, and says so once
(``"dazle has no recipe for apy; using its defaults"``): ``configs/<model>/defaults.yaml`` when
the model ships one, else :class:`~zslkit.training.TrainConfig`'s defaults with ``model`` set.
A model never gets another model's recipe. The dataset is named by its registered
name: the views ``synthetic/validation`` and ``synthetic`` share ``synthetic``'s recipe.

Loss weights have one home, the model's defaults (its ``default_losses``); a recipe
states only the weights that differ from them (a test checks that no recipe repeats one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zslkit.contracts import describe_model
from zslkit.registry import component_info, list_components
from zslkit.training.config import TrainConfig, load_config, parse_config

__all__ = ["DEFAULTS", "Recipe", "choose_recipe", "model_recipes", "recipe_for", "recipe_home"]

#: File name stem of a model's own defaults recipe (``configs/<model>/defaults.yaml``).
DEFAULTS = "defaults"


@dataclass(frozen=True)
class Recipe:
    """A training config and where it came from.

    Attributes:
        config: the :class:`~zslkit.training.TrainConfig`.
        name: ``"<model>/<dataset>"`` for a shipped recipe, ``"<model>/defaults"`` for a
            model's defaults, else the config name or path given.
        source: where it was read: a packaged file (``zslkit/configs/msdn/cub.yaml``),
            ``"TrainConfig defaults"``, a YAML path, or ``"given"`` (a ``TrainConfig`` passed in).
        fallback: the dataset a model's defaults stand in for (it has no recipe for it), else ``None``.
    """

    config: TrainConfig
    name: str
    source: str
    fallback: str | None = None

    def line(self) -> str:
        """The one line that says which recipe a run uses."""
        if self.fallback is not None:
            return f"{self.config.model} has no recipe for {self.fallback}; using its defaults"
        return f"recipe: {self.name}" if self.name == self.source else f"recipe: {self.name} ({self.source})"

    def record(self) -> dict[str, Any]:
        """What run logs (checkpoints, ``results.json``) record: name, source and the line."""
        return {"name": self.name, "source": self.source, "defaults_for": self.fallback, "line": self.line()}

    def with_config(self, config: TrainConfig) -> Recipe:
        """The same recipe with ``config`` (e.g. after command-line overrides)."""
        return dataclasses.replace(self, config=config)


def _model_module(model: Any) -> str:
    """The module that defines ``model`` (a registered name or a built module)."""
    if isinstance(model, str):
        return getattr(component_info("model", model).factory, "__module__", "") or ""
    return type(model).__module__


def recipe_home(model: Any, name: str) -> tuple[Any, str] | None:
    """``(folder, label)``: the folder holding model ``name``'s recipes (``model``: its registered
    name or a built module) and its label for messages, or ``None`` when its package ships none."""
    package = _model_module(model).split(".")[0]
    try:
        folder = resources.files(package) / "configs" / name
    except (ModuleNotFoundError, TypeError, ValueError):  # e.g. a model defined in __main__
        return None
    return (folder, f"{package}/configs/{name}") if folder.is_dir() else None


def model_recipes(model: str) -> list[str]:
    """The datasets registered model ``model`` ships a recipe for (its ``defaults`` not counted)."""
    home = recipe_home(model, model)
    if home is None:
        return []
    return sorted(p.name[: -len(".yaml")] for p in home[0].iterdir() if p.name.endswith(".yaml") and p.name != f"{DEFAULTS}.yaml")


def _read(home: tuple[Any, str], stem: str, name: str) -> Recipe | None:
    """Recipe ``<stem>.yaml`` of model ``name`` in ``home`` (:func:`recipe_home`), or ``None`` when absent."""
    folder, label = home
    path = folder / f"{stem}.yaml"
    if not path.is_file():
        return None
    where, text = f"{label}/{stem}.yaml", path.read_text()
    config = parse_config(text, where)
    if config.model != name and "model" in (yaml.safe_load(text) or {}):
        raise ValueError(f"{where}: a recipe of model {name!r} says model: {config.model!r}; "
                         f"remove the key or move the file to configs/{config.model}/")
    return Recipe(dataclasses.replace(config, model=name), f"{name}/{stem}", where)


def recipe_for(model: Any, dataset: str, name: str | None = None) -> Recipe:
    """Model ``model``'s recipe for ``dataset`` (a dataset name; ``"synthetic/validation"`` reads as
    ``synthetic``), else its defaults (:attr:`Recipe.fallback` set). ``model``: a registered name
    or a built module (then ``name`` is its name)."""
    name = model if isinstance(model, str) else name or type(model).__name__
    base = str(dataset).split("/")[0]
    home = recipe_home(model, name)
    if home is not None and base != DEFAULTS:
        found = _read(home, base, name)
        if found is not None:
            return found
    own = _read(home, DEFAULTS, name) if home is not None else None
    if own is None:
        own = Recipe(TrainConfig(model=name), f"{name}/{DEFAULTS}", "TrainConfig defaults")
    return dataclasses.replace(own, fallback=base)


def choose_recipe(model: Any, dataset: str, config: Any = None) -> tuple[Any, Recipe]:
    """``(model, recipe)`` of a run: the one decision of which recipe a run trains with.

    ``config``: ``None`` (the model's recipe for ``dataset``), a :class:`Recipe`, a
    :class:`~zslkit.training.TrainConfig` (``source="given"``), a dict of TrainConfig fields
    (``{"epochs": 1}``: the other fields from the model's recipe for ``dataset``), a packaged
    recipe name (``"msdn/cub"``) or a YAML path. ``model``: a registered name, a built module, or
    ``None`` for the config's model (``msdn`` when no config is given). A recipe or file that
    names another model than ``model`` is refused, naming both.
    """
    if config is None or isinstance(config, dict):
        if isinstance(config, dict) and model is None and "model" in config:
            model = config["model"]
        model = TrainConfig().model if model is None else model
        recipe = recipe_for(model, dataset, None if isinstance(model, str) else describe_model(model)[0])
        if config:
            _check_same_model(model, config.get("model"), "the config dict")
            merged = {**recipe.config.to_dict(), **{k: v for k, v in config.items() if k != "model"}}
            recipe = dataclasses.replace(recipe, config=TrainConfig.from_dict(merged, "config"),
                                         source=f"{recipe.source}, with {', '.join(sorted(config))} given")
        return model, recipe
    if isinstance(config, Recipe):
        recipe = config
    elif isinstance(config, TrainConfig):
        recipe = Recipe(config, "TrainConfig", "given")
    elif _is_file(config):
        recipe = Recipe(load_config(config), str(config), str(config))
        _check_same_model(model, _stated_model(config), f"config {config}")
    elif isinstance(config, str | Path):
        recipe = _named(str(config))
        _check_same_model(model, recipe.config.model, f"recipe {config}")
    else:
        raise TypeError(f"config must be None, a dict of TrainConfig fields, a TrainConfig, a Recipe, a packaged recipe "
                        f"name (msdn/cub) or a YAML path; got {type(config).__name__}")
    return (recipe.config.model if model is None else model), recipe


def _stated_model(path: Any) -> str | None:
    """The ``model:`` a YAML config file states, or ``None`` when it states none."""
    values = yaml.safe_load(Path(str(path)).read_text()) or {}
    return values.get("model") if isinstance(values, dict) else None


def _check_same_model(model: Any, stated: str | None, where: str) -> None:
    """Refuse a config that is for another model than the one asked for (a registered name)."""
    if isinstance(model, str) and stated is not None and stated != model:
        raise ValueError(f"{where} is for model {stated!r}, but model {model!r} was asked for; "
                         f"drop one of the two, or give a config of {model!r}")


def _is_file(config: Any) -> bool:
    return Path(str(config)).suffix in {".yaml", ".yml"} or Path(str(config)).exists()


def _named(name: str) -> Recipe:
    """The recipe named ``<model>/<dataset>``, shipped by zslkit or by the package of a plugin's model."""
    owner, _, stem = name.partition("/")
    if owner in list_components("model"):
        home = recipe_home(owner, owner)
        found = _read(home, stem, owner) if home is not None and stem else None
        if found is not None:
            return found
    return Recipe(load_config(name), name, f"zslkit/configs/{name}.yaml")  # or the error listing the recipes
