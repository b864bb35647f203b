"""A shareable model folder: ``config.json``, ``model.safetensors`` and a ``README.md`` model card (writing it;
reading it back: :mod:`zslkit.pretrained`, which sits above the trainer's checkpoints).

>>> model.save_pretrained("msdn-cub")             # any built-in model (or save_pretrained(model, dir))
>>> model = zslkit.from_pretrained("msdn-cub")    # rebuilt from the folder alone
$ zslkit export runs/msdn msdn-cub                 # the latest checkpoint of a training run, with its card

The layout is the one ``huggingface_hub``'s ``PyTorchModelHubMixin`` reads and writes: the weights
are the model's ``state_dict`` in ``model.safetensors`` (written by ``safetensors.torch.save_model``),
``config.json`` is a flat JSON object (the registered model name, its options and the class split), and
``README.md`` is a model card with YAML front matter (``library_name: zslkit``). A user with an account
can ``huggingface_hub.upload_folder`` it; ``hubconf.py`` at the repository root serves
``torch.hub.load(checkout, "from_pretrained", folder, source="local")``.

A folder with a missing or wrong file is refused in one line naming the file (:class:`PretrainedError`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zslkit.atomic import write_atomic, write_json_atomic

__all__ = ["CONFIG_NAME", "FORMAT", "LICENCES", "WEIGHTS_NAME", "PretrainedError", "model_card", "read_config",
           "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT = "zslkit-pretrained"
FORMAT_VERSION = 1

#: model -> (paper, the authors' code and its licence as that repository states it; None where no licence
#: file was found in it: check the repository before redistributing).
LICENCES: dict[str, tuple[str, str, str | None]] = {
    "msdn": ("Chen et al., MSDN: Mutually Semantic Distillation Network for Zero-Shot Learning, CVPR 2022",
             "github.com/shiming-chen/MSDN", None),
    "dazle": ("Huynh and Elhamifar, Fine-Grained Generalized Zero-Shot Learning via Dense Attribute-Based "
              "Attention, CVPR 2020", "github.com/hbdat/cvpr20_DAZLE", "MIT"),
    "transzero": ("Chen et al., TransZero: Attribute-guided Transformer for Zero-Shot Learning, AAAI 2022",
                  "github.com/shiming-chen/TransZero", "MIT"),
    "transzero_pp": ("Chen et al., TransZero++: Cross Attribute-Guided Transformer for Zero-Shot Learning, TPAMI 2022",
                     "github.com/shiming-chen/TransZero_pp", None),
    "apn": ("Xu et al., Attribute Prototype Network for Zero-Shot Learning, NeurIPS 2020",
            "github.com/wenjiaXu/APN-ZSL", None),
    "gem_zsl": ("Liu et al., Goal-Oriented Gaze Estimation for Zero-Shot Learning, CVPR 2021",
                "github.com/osierboy/GEM-ZSL", None),
}


class PretrainedError(ValueError):
    """A model folder that is not a complete zslkit model folder; the message names the file."""


def _plain(value: Any) -> Any:
    """Tensors and arrays as lists, for JSON."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    """``config.json`` of ``model``: format, registered name, options, class split, attribute and class names."""
    from zslkit.contracts import registered_name
    from zslkit.models.backbone_model import BackboneModel

    if isinstance(model, BackboneModel):
        raise PretrainedError("a model fine-tuned through a separate backbone (BackboneModel) cannot be rebuilt from "
                              "a folder alone; save a model that owns its backbone (TokenAttentionModel) or the head")
    from importlib import metadata

    try:
        version = metadata.version("zslkit")
    except metadata.PackageNotFoundError:  # a source tree
        version = "0.0.0+unknown"
    classes = model.classes
    return json.loads(json.dumps({
        "format": FORMAT, "format_version": FORMAT_VERSION, "zslkit_version": version,
        "model": registered_name(model), "options": getattr(model, "options", {}),
        "seen_classes": classes.seen, "unseen_classes": classes.unseen,
        "attribute_names": getattr(model, "attribute_names", None), "class_names": getattr(model, "class_names", None),
    }, default=_plain))


def save_pretrained(model: torch.nn.Module, directory: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``directory`` (created): ``config.json``, ``model.safetensors``, ``README.md``.

    ``card``: what the model card says beyond the model itself (:func:`model_card`: ``dataset``, ``split``,
    ``recipe``, ``config``, ``results``, ``protocol``, ``commands``, ``backbone``). Returns the folder.
    """
    from safetensors.torch import save_model

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    config = model_config(model)
    write_atomic(folder / WEIGHTS_NAME, lambda tmp: save_model(model, str(tmp), metadata={"format": "pt"}))
    write_json_atomic(folder / CONFIG_NAME, config, indent=2)
    text = model_card(config, card or {})
    write_atomic(folder / CARD_NAME, lambda tmp: tmp.write_text(text))
    return folder


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise PretrainedError(f"{folder}: no such model folder (give the folder zslkit export or save_pretrained wrote)")
    if not path.is_file():
        raise PretrainedError(f"{path}: missing; a zslkit model folder holds {CONFIG_NAME}, {WEIGHTS_NAME} and {CARD_NAME}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PretrainedError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise PretrainedError(f"{path}: not a zslkit model config (no \"format\": \"{FORMAT}\" field)")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise PretrainedError(f"{path}: format {config['format_version']} is newer than this zslkit reads ({FORMAT_VERSION})")
    for key, kind in (("model", str), ("options", dict), ("seen_classes", list), ("unseen_classes", list)):
        if not isinstance(config.get(key), kind):
            raise PretrainedError(f"{path}: field {key!r} must be a {kind.__name__}, found {config.get(key)!r}")
    return config


def model_card(config: dict[str, Any], card: dict[str, Any]) -> str:
    """The ``README.md`` of a model folder: YAML front matter, then the model and its paper, the data it was
    trained on, its recipe, its results with the protocol, its backbone, the commands and the licence."""
    name = config["model"]
    paper, code, licence = LICENCES.get(name, (None, None, None))
    dataset = card.get("dataset", "not recorded")
    front = ["---", "library_name: zslkit", "license: apache-2.0" if licence is None else f"license: {licence.lower()}",
             "tags: [zero-shot-learning, zslkit, " + name + "]", "---", ""]
    lines = [f"# {name} (zslkit)", "", f"A zero-shot learning model, registered in zslkit as `{name}`."]
    if paper:
        lines += ["", f"Paper: {paper}. The authors' code: {code}."]
    lines += ["", "## Data", "", f"Dataset `{dataset}`, trained on the `{card.get('split', 'trainval')}` split; "
              f"{len(config['seen_classes'])} seen and {len(config['unseen_classes'])} unseen classes."]
    lines += ["", "## Backbone", "", card.get("backbone") or _backbone(config)]
    if card.get("config"):
        recipe = card.get("recipe", "given in Python")
        lines += ["", "## Recipe", "", f"Recipe `{recipe}`; the training config:", "", "```json",
                  json.dumps(card["config"], indent=2, default=str), "```"]
    if card.get("results"):
        lines += ["", "## Results", "", card.get("protocol", "Protocol: not recorded."), "", card["results"]]
    if card.get("commands"):
        lines += ["", "## How it was made", "", "```bash", *card["commands"], "```"]
    lines += ["", "## Use", "", "```python", "import zslkit", "", f'model = zslkit.from_pretrained("{card.get("folder", "this-folder")}")',
              "scores = model(features).scores  # (B, K) class scores", "```"]
    lines += ["", "## Licence", "", "zslkit's code: Apache-2.0."]
    if code:
        lines[-1] += (f" The method follows {code}, whose code is under the {licence} licence." if licence else
                      f" The method follows {code}, which states no licence file: check it before redistributing.")
    return "\n".join(front + lines) + "\n"


def _backbone(config: dict[str, Any]) -> str:
    """What the model reads: its own backbone (options) or a dataset's precomputed feature maps."""
    backbone = config["options"].get("backbone")
    if backbone is None:
        return ("The model reads precomputed region feature maps (the dataset's `features`, e.g. ResNet-101 "
                "pretrained on ImageNet for the xlsa17 datasets); the backbone is not part of this folder.")
    return f"The model owns its backbone, part of this folder's weights: `{json.dumps(backbone, default=str)}`."
