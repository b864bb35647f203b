"""Checkpoints: tensors in safetensors, everything else in JSON, one pair per epoch.

``epoch_003.safetensors`` holds the model state (``model.*``), the optimizer's
tensors (``optimizer.<param>.<name>``) and the torch RNG states (``rng.torch``, and
``rng.cuda.<device>`` when CUDA was in use; :func:`restore_training_state` puts the
optimizer state and these back);
``epoch_003.json`` holds the model name and options, the class split, the
training config, the optimizer's hyper-parameters, the numpy RNG state, the
history so far and the zslkit version. Both are written to a temporary file
and moved into place (``os.replace``), tensors first: a checkpoint whose JSON
exists is complete. The JSON records the SHA-256 of its tensor file, checked on
loading, so a damaged or swapped tensor file is refused
(:class:`CheckpointError`, naming the file) rather than loaded.

Nothing here unpickles: tensors come from safetensors, the rest from JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from zslkit.atomic import write_atomic
from zslkit.contracts import ContractError, ZSLModel, registered_name
from zslkit.datasets.checks import CheckpointError
from zslkit.registry import ComponentNotFoundError
from zslkit.training.config import type_phrase

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "build_model",
    "checkpoint_paths",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model",
    "not_registered",
    "restore_rng_states",
    "restore_training_state",
    "save_checkpoint",
    "write_atomic",
]

FORMAT = "zslkit-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^epoch_(\d+)\.json$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``meta`` (the JSON) and ``tensors`` (the safetensors file)."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under ``prefix.``, with the prefix removed."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def checkpoint_paths(out_dir: str | Path, epoch: int) -> tuple[Path, Path]:
    """``(tensors, json)`` paths of one epoch's checkpoint."""
    out = Path(out_dir)
    return out / f"epoch_{epoch:03d}.safetensors", out / f"epoch_{epoch:03d}.json"


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The JSON path of the highest complete epoch in ``out_dir``, or ``None``."""
    out = Path(out_dir)
    if not out.is_dir():
        return None
    epochs = [int(m.group(1)) for p in out.iterdir() if (m := _NAME.match(p.name))]
    complete = [e for e in epochs if all(p.is_file() for p in checkpoint_paths(out, e))]
    return checkpoint_paths(out, max(complete))[1] if complete else None


def _split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"class": type(optimizer).__name__, "param_groups": state["param_groups"], "state": scalars}


def save_checkpoint(
    out_dir: str | Path,
    epoch: int,
    model: ZSLModel,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write epoch ``epoch``'s checkpoint into ``out_dir``; returns the JSON path.

    ``meta`` adds JSON fields (config, history, numpy RNG state, dataset name...).
    """
    from zslkit import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensor_path, json_path = checkpoint_paths(out, epoch)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update(_rng_states())
    record: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "zslkit_version": __version__, "epoch": epoch}
    record["model"] = {"name": _registered_name(model), "options": getattr(model, "options", {})}
    classes = getattr(model, "classes", None)
    if classes is not None:
        record["classes"] = {"seen": classes.seen.tolist(), "unseen": classes.unseen.tolist(), "margin": classes.margin_size}
    if optimizer is not None:
        optimizer_tensors, record["optimizer"] = _split_optimizer_state(optimizer)
        tensors.update(optimizer_tensors)
    record.update(meta or {})
    record["tensors"] = tensor_path.name
    write_atomic(tensor_path, lambda tmp: save_file(tensors, str(tmp)))
    record["tensors_sha256"] = _sha256(tensor_path)
    write_atomic(json_path, lambda tmp: tmp.write_text(json.dumps(record, indent=2, default=_json_default)))
    return json_path


def _rng_states() -> dict[str, torch.Tensor]:
    """``rng.torch`` (the CPU generator) and ``rng.cuda.<i>`` for every CUDA device once CUDA is in use."""
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    return states


def restore_rng_states(checkpoint: Checkpoint) -> list[str]:
    """Put the torch RNG states :func:`save_checkpoint` stored back; returns the keys restored.

    The CPU state always; each ``rng.cuda.<i>`` into CUDA device ``i`` when CUDA is available
    (so that dropout masks on a GPU continue as in an uninterrupted run). A checkpoint saved on
    a GPU resumed without CUDA uses the CPU generator only; a CUDA device the checkpoint has no
    state for keeps its own (a CPU run resumed on a GPU, whose CPU-run states are all there are).
    """
    torch.set_rng_state(checkpoint.tensors["rng.torch"])
    restored = ["rng.torch"]
    if torch.cuda.is_available():
        for device in range(torch.cuda.device_count()):
            key = f"rng.cuda.{device}"
            if key in checkpoint.tensors:
                torch.cuda.set_rng_state(checkpoint.tensors[key], device)
                restored.append(key)
    return restored


def restore_training_state(checkpoint: Checkpoint, optimizer: torch.optim.Optimizer) -> None:
    """Resume where :func:`save_checkpoint` stopped: the optimizer's state (tensors and hyper-parameters)
    and the torch RNG states (:func:`restore_rng_states`). The model's weights are ``checkpoint.section("model")``."""
    opt_meta = checkpoint.meta["optimizer"]
    saved, built = len(opt_meta["param_groups"]), len(optimizer.param_groups)
    if saved != built:
        raise ValueError(f"cannot resume: the checkpoint's optimizer has {saved} parameter groups, this run's has {built} "
                         "(other recipe options -- backbone_lr, layer_decay, norm_bias_decay, freeze_backbone -- or a "
                         "zslkit that groups a model's own backbone apart); resume with the run's settings or start a new run")
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in checkpoint.section("optimizer").items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    for index, values in opt_meta.get("state", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    restore_rng_states(checkpoint)


def _registered_name(model: torch.nn.Module) -> str:
    """The model's registered name (see :func:`zslkit.contracts.registered_name`), ``""`` for a module no
    registered model class built (such a checkpoint holds weights but cannot be rebuilt by name)."""
    try:
        return registered_name(model)
    except ContractError:
        return ""


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's JSON")


def _sha256(path: Path) -> str:
    from zslkit.datasets.checks import sha256_file

    return sha256_file(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint: its JSON path, its safetensors path, or a directory (latest epoch).

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file when it is not a
    zslkit checkpoint, is damaged, or its tensor file does not match the recorded checksum.
    """
    from zslkit.datasets.checks import reading

    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no complete checkpoint (epoch_NNN.json + .safetensors) in {str(path)!r}")
        path = found
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    with reading(path, "checkpoint JSON", CheckpointError):
        meta = json.loads(path.read_text())
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a zslkit checkpoint (no \"format\": \"{FORMAT}\" field)")
    for key, kind in (("format_version", int), ("epoch", int), ("model", dict), ("tensors", str)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} must be {type_phrase(kind)}, found {meta.get(key)!r}")
    if meta["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta['format_version']} is newer than this zslkit reads ({FORMAT_VERSION})")
    tensor_path = path.with_name(Path(meta["tensors"]).name)
    if not tensor_path.is_file():
        raise CheckpointError(f"{path}: its tensor file {str(tensor_path)!r} is missing")
    recorded = meta.get("tensors_sha256")
    if recorded is not None and recorded != _sha256(tensor_path):
        raise CheckpointError(
            f"{tensor_path}: SHA-256 differs from the one {path.name} records; the tensor file is damaged or "
            "belongs to another checkpoint"
        )
    with reading(tensor_path, "safetensors file", CheckpointError):
        tensors = load_file(str(tensor_path))
    return Checkpoint(path, meta, tensors)


def build_model(checkpoint: Checkpoint, backbone: torch.nn.Module | None = None) -> ZSLModel:
    """Rebuild the checkpoint's model (registered name + options) and load its weights.

    The model is built as ``zslkit.create_model(name, class_attributes=<state classes.attributes>,
    attribute_embeddings=<state V, or None for a model without V>, seen_classes=..., unseen_classes=...,
    **options)`` (the model contract in ``docs/concepts.md``).

    A checkpoint of end-to-end fine-tuning (a :class:`~zslkit.models.BackboneModel`)
    needs ``backbone``: a module of the same architecture, whose weights are then
    replaced by the checkpoint's. A model that owns its backbone
    (:class:`~zslkit.models.TokenAttentionModel`) needs nothing more: its class's
    ``rebuild_options`` (e.g. random backbone weights instead of a weights file) are used for
    the build, the stored state replaces them, and its ``options`` are restored as recorded.
    """
    import zslkit
    from zslkit.datasets.checks import reading
    from zslkit.models.backbone_model import BackboneModel

    info = checkpoint.meta.get("model", {})
    if not info.get("name"):
        raise CheckpointError(f"{checkpoint.path}: the checkpoint does not name its model (it was saved from a module "
                              "that is not a registered model; register its class to rebuild it by name)")
    options = scorer_options(info["name"], dict(info.get("options", {})))
    described, batchnorm = options.pop("backbone", None), options.pop("batchnorm", "frozen")
    if described is not None and backbone is None:
        raise ValueError(
            f"{checkpoint.path}: the model was fine-tuned with a backbone ({described}); "
            "pass backbone= (a module of that architecture) to rebuild it"
        )
    state = checkpoint.section("model")
    head_state = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")} if described else state
    if "classes.attributes" not in head_state:
        raise CheckpointError(f"{checkpoint.path}: model state has no 'classes.attributes'")
    with reading(checkpoint.path, f"model {info['name']!r} from the checkpoint", CheckpointError):
        classes = checkpoint.meta["classes"]
        try:
            # options whose effect the stored state replaces (e.g. a weights file of an owned backbone)
            instead = getattr(zslkit.get_component("model", info["name"]), "rebuild_options", {})
            model = zslkit.create_model(
                info["name"],
                class_attributes=head_state["classes.attributes"],
                attribute_embeddings=head_state.get("V"),  # a model without V rebuilds its embeddings from its options
                seen_classes=classes["seen"],
                unseen_classes=classes["unseen"],
                **{**options, **instead},
            )
        except ComponentNotFoundError as exc:
            raise not_registered(checkpoint.path, info["name"], exc) from None
        model.options.update({key: options[key] for key in instead if key in options})  # as first built
    if described is not None:
        model = BackboneModel(backbone, model, batchnorm=batchnorm)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # torch lists every problem, one per line, after a heading
        problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [str(exc)]
        raise CheckpointError(f"{checkpoint.path}: the stored weights do not fit model {info['name']!r}: {problems[0]}") from None
    # names travel with the checkpoint so that pictures and reports can label attributes and classes
    model.attribute_names = checkpoint.meta.get("attribute_names")
    model.class_names = checkpoint.meta.get("class_names")
    return model


def not_registered(path: Path, model: str, exc: ComponentNotFoundError) -> CheckpointError:
    """The error for a checkpoint whose model, or a part of it, is not registered in this process."""
    if exc.name is None:
        return CheckpointError(f"{path}: cannot rebuild model {model!r}: {exc}")
    part = f"model {model!r}" if (exc.kind, exc.name) == ("model", model) else f"model {model!r} uses {exc.kind} {exc.name!r}, which"
    return CheckpointError(
        f"{path}: {part} is not registered in this process (it was where the checkpoint was written). Register it "
        "first: give zslkit --import MODULE (the module or .py file that calls zslkit.register), import that module "
        "before loading in Python, or install the plugin that provides it"
    )


#: Model options of checkpoints written before class scoring was a registered part (the ``scorer`` option).
_SCORER_FLAGS = ("margin", "class_attributes_norm", "class_attributes_eps", "predict_probabilities")
_SCORER_OF_NORM = {"unit": "unit_rows", "none": "raw_rows", "scores": "cosine_rows"}


def scorer_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of model ``name`` from an older checkpoint, with its four scoring flags (``margin``,
    ``class_attributes_norm``, ``class_attributes_eps``, ``predict_probabilities``) as the ``scorer`` spec that
    scores the same, when the model now takes ``scorer`` instead; other models' options unchanged."""
    import inspect

    from zslkit.registry import get_component

    if not any(flag in options for flag in _SCORER_FLAGS) or "scorer" in options:
        return options
    takes = inspect.signature(get_component("model", name)).parameters
    if "scorer" not in takes or any(flag in takes for flag in _SCORER_FLAGS):
        return options
    options = dict(options)
    norm = options.pop("class_attributes_norm", "unit")
    scorer = {"scorer": _SCORER_OF_NORM[norm], "margin": float(options.pop("margin", 1.0)),
              "probabilities": bool(options.pop("predict_probabilities", False))}
    eps = options.pop("class_attributes_eps", 1e-5)
    if norm == "scores":
        scorer["eps"] = float(eps)
    return {**options, "scorer": scorer}


def load_model(path: str | Path, backbone: torch.nn.Module | None = None) -> ZSLModel:
    """The model stored in a checkpoint (JSON path, safetensors path or run directory), in eval mode.

    ``backbone``: for a checkpoint of end-to-end fine-tuning, see :func:`build_model`.
    """
    return build_model(load_checkpoint(path), backbone).eval()
