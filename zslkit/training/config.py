"""Training configs: the :class:`TrainConfig` dataclass and reading it from YAML.

A YAML config holds any subset of the :class:`TrainConfig` fields::

    model: msdn
    epochs: 70
    lr: 1.0e-4
    loss_weights: {self_calibration: 1.0e-4, semantic_distillation: 0.01}
    model_options: {scorer: {scorer: unit_rows, margin: 1.0}}

The packaged ones are recipes, one per (model, dataset) (:mod:`zslkit.training.recipes`):
``load_config("msdn/cub")`` reads ``zslkit/configs/msdn/cub.yaml``;
``load_config("path/to/file.yaml")`` reads a file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zslkit.datasets.resident import RESIDENT_DTYPES
from zslkit.models.backbone_model import BATCHNORM_MODES
from zslkit.registry import _suggest

__all__ = ["AUGMENT_OPTIONS", "COMPILE_MODES", "MACHINE_SETTINGS", "PRECISIONS", "RESIDENCY", "RESIDENT_DTYPES",
           "TrainConfig", "available_configs", "load_config", "parse_config"]

#: The options of ``augment`` (``timm.data.create_transform(is_training=True, ...)``): the
#: resize/crop/flip that act on the model's input tensors (already normalised images).
AUGMENT_OPTIONS: tuple[str, ...] = ("input_size", "scale", "ratio", "hflip", "vflip", "interpolation")
#: ``fp32``: float32 throughout; ``tf32``: float32, with CUDA matrix products in TensorFloat-32
#: (no effect on a CPU); ``bf16``: the forward under bfloat16 autocast, loss terms and
#: optimizer in float32.
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")
#: ``auto``: the training split's features are held on the device when it is a GPU and they
#: take at most half its free memory; ``on``: held on the device (a GPU or, for ``cpu``, host
#: memory), an error if they do not fit; ``off``: read from the source every step.
RESIDENCY: tuple[str, ...] = ("auto", "on", "off")
#: ``off`` or a ``torch.compile`` mode for the forward and the losses; ``reduce-overhead``
#: also replays them as CUDA graphs on a GPU.
COMPILE_MODES: tuple[str, ...] = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: Fields that describe the machine, not the method: a YAML recipe that names one is refused
#: (:func:`parse_config`); each maps to where the choice goes instead.
MACHINE_SETTINGS: dict[str, str] = {
    "num_threads": "the threads come from the machine's cores or the --threads flag (Python: TrainConfig(num_threads=N))",
    "device": "give --device on the command line (Python: TrainConfig(device=...))",
    "compile": "give --set compile=MODE on the command line (Python: TrainConfig(compile=...))",
}


@dataclass
class TrainConfig:
    """How to train a model. The defaults are the paper's CUB recipe.

    Attributes:
        model: registered model name.
        epochs: passes over the training split (an epoch is ``ceil(N / batch_size)`` steps).
        batch_size: images per step.
        optimizer: a registered optimizer (``zslkit list optimizer``: ``rmsprop``, ``adam``,
            ``sgd``, ``adamw``, ``timm``; :mod:`zslkit.optim.optimizers`).
        optimizer_options: its further options (``{nesterov: true}`` for ``sgd``, ``{opt: lamb}``
            for ``timm``).
        lr, weight_decay, momentum: optimizer settings (for Adam and AdamW, ``momentum`` is
            their ``beta1``; the default 0.9 is PyTorch's).
        seed: seeds the model's initialisation and the batch order.
        sampler: a registered sampler (``zslkit list sampler``; :mod:`zslkit.datasets.samplers`):
            ``shuffle`` (a permutation every epoch), ``random`` (every batch drawn independently),
            ``class_balanced`` (distinct classes, the same number of images of each),
            ``episodic`` (n-way k-shot batches).
        sampler_options: its options (``{ways: 4, shots: 2}`` for ``episodic``,
            ``{images_per_class: 2}`` for ``class_balanced``).
        loss_weights: loss term -> weight, overriding the model's defaults (a recipe states
            only the weights that differ from them: the model's defaults are their one home).
        model_options: extra options for ``zslkit.create_model`` (``scorer``, ``branches``...).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``"auto"`` (CUDA when available). A machine
            setting (the CLI's ``--device``): recipe files may not set it.
        eval_batch_size: images per forward when predicting.
        num_threads: CPU threads for PyTorch while training (``torch.set_num_threads``,
            restored afterwards); 0: the cores this process may use
            (:func:`zslkit.threads.thread_count`). A machine setting (the CLI's ``--threads``):
            recipe files may not set it.
        backbone_lr: learning rate of the backbone when fine-tuning end to end
            (``train(..., backbone=...)``) or of the backbone a model owns (its ``image_backbone``,
            e.g. a :class:`~zslkit.models.TokenAttentionModel`'s ViT); 0 freezes it. The head uses ``lr``.
        backbone_batchnorm: the backbone's BatchNorm layers when fine-tuning, one of
            :data:`~zslkit.models.backbone_model.BATCHNORM_MODES` (``frozen``,
            ``train``, ``sync``).
        num_workers: DataLoader worker processes reading inputs that are a torch
            ``Dataset`` (images when fine-tuning); 0 reads them in the training process.
        precision: one of :data:`PRECISIONS`; ``bf16`` runs the forward (the attention op's
            matrix products) under bfloat16 autocast on CPU or CUDA; ``tf32`` lets CUDA
            matrix products use TensorFloat-32 while training
            (``torch.backends.cuda.matmul.allow_tf32``, restored afterwards).
        resident: one of :data:`RESIDENCY`: whether the training split's features are read
            once into one tensor on the device (:class:`~zslkit.datasets.ResidentFeatures`,
            in the source's dtype, float16 for a feature store) instead of from the source
            every step. Results are the same either way.
        resident_dtype: one of :data:`~zslkit.datasets.resident.RESIDENT_DTYPES`: ``float16`` stores a float32 source's
            resident rows in half the bytes, rounded to float16 (results then match training
            on features rounded to float16, not the float32 ones).
        compile: one of :data:`COMPILE_MODES`: compile the model's forward and its loss
            with ``torch.compile`` in that mode (``reduce-overhead``: CUDA graphs on a GPU). A machine
            setting (the CLI's ``--set compile=MODE``): recipe files may not set it.
        head_only_epochs: the first this many epochs train the head alone (APN's
            ``pretrain_epoch``): the backbone's learning rate is 0 then, the head's
            ``head_only_lr`` (0: ``lr``), and ``head_only_loss_weights`` replace those loss
            weights (APN switches its compactness term off). Without a backbone only the
            learning rate and the loss weights change.
        head_only_lr: the head's learning rate in the head-only epochs (0: ``lr``).
        head_only_loss_weights: loss term -> weight in the head-only epochs.
        lr_decay, lr_decay_every: after the head-only epochs, epoch ``n`` (from 1) trains at
            ``lr * lr_decay ** ((n - 1) // lr_decay_every)`` (the backbone likewise);
            ``lr_decay_every=0``: a constant learning rate.
        schedule: a registered learning-rate schedule (``constant``, ``cosine``, ``step``,
            ``multistep``; :mod:`zslkit.optim.schedules`): every group's rate times the
            schedule's factor, set before every optimizer update. Not with ``head_only_epochs``
            or ``lr_decay_every`` (those stage the rates by epoch themselves).
        schedule_options: its options (``{warmup_epochs: 5, min_factor: 0.01}``); the
            schedule gets ``epochs`` itself.
        norm_bias_decay: ``false``: no weight decay on norms, biases (every 1-d parameter) and
            the timm model's ``no_weight_decay()`` names (``timm.optim.param_groups_weight_decay``).
        layer_decay: layer-wise learning-rate decay of a fine-tuned backbone (0: off): each
            layer below the backbone's top trains at ``layer_decay`` times the rate of the
            one above (``timm.optim.param_groups_layer_decay``; the head keeps ``lr``).
        freeze_backbone: names (prefixes: ``layer1`` covers ``layer1.0.conv1.weight``) of backbone
            parameters that do not train when fine-tuning (APN's ``conv1``, ``bn1``, ``layer1``); a
            name that matches no parameter is an error. The timm model's names for zslkit's
            ``timm`` backbone. BatchNorm statistics still follow ``backbone_batchnorm``.
        accumulate_steps: split every batch into this many micro-batches, each forward and
            backward on its own, the gradients summed (each micro-batch's loss weighted by its
            share of the batch's images) before one optimizer update: the same update as
            the whole batch for losses that average over images, in less memory.
        augment: training-time augmentation of images (``timm.data.create_transform`` with
            ``is_training=True``): the options of :data:`AUGMENT_OPTIONS`, ``input_size``
            required (``{input_size: 224, scale: [0.08, 1.0], hflip: 0.5}``). Each image of each
            batch is cropped, resized and flipped with random numbers drawn from ``seed``, the
            epoch and its place in the batch. Only when fine-tuning (the inputs are images).
        loggers: registered metric loggers (``zslkit list logger``: ``csv``, ``tensorboard``, ``mlflow``,
            ``wandb``; :mod:`zslkit.loggers`) that ``train(..., out_dir=...)`` sends the run to; ``zslkit train``
            uses them unless ``--logger`` is given. Where the numbers go, not how they are made: not part of
            a benchmark cell's settings, and a resumed run may change them.
    """

    model: str = "msdn"
    epochs: int = 30
    batch_size: int = 50
    optimizer: str = "rmsprop"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    momentum: float = 0.9
    seed: int = 0
    sampler: str = "shuffle"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    eval_batch_size: int = 256
    num_threads: int = 0
    backbone_lr: float = 1e-5
    backbone_batchnorm: str = "frozen"
    num_workers: int = 0
    precision: str = "fp32"
    resident: str = "auto"
    resident_dtype: str = "source"
    compile: str = "off"
    head_only_epochs: int = 0
    head_only_lr: float = 0.0
    head_only_loss_weights: dict[str, float] = field(default_factory=dict)
    lr_decay: float = 1.0
    lr_decay_every: int = 0
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    schedule: str = "constant"
    schedule_options: dict[str, Any] = field(default_factory=dict)
    norm_bias_decay: bool = True
    layer_decay: float = 0.0
    freeze_backbone: list[str] = field(default_factory=list)
    accumulate_steps: int = 1
    augment: dict[str, Any] = field(default_factory=dict)
    loggers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"TrainConfig.{item.name} must be a finite number, got {value}")
        self._check_device()
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be 0 (no worker processes) or more, got {self.num_workers}")
        if self.num_threads < 0:
            raise ValueError(f"TrainConfig.num_threads must be 0 (the machine's cores) or more, got {self.num_threads}")
        for name in ("head_only_epochs", "lr_decay_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be 0 (off) or more, got {getattr(self, name)}")
        if self.head_only_lr < 0 or self.lr_decay <= 0:
            raise ValueError(f"TrainConfig.head_only_lr must be 0 (lr) or positive and lr_decay positive, got {self.head_only_lr}, {self.lr_decay}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr}")
        if self.backbone_lr < 0:
            raise ValueError(f"TrainConfig.backbone_lr must be 0 (frozen backbone) or positive, got {self.backbone_lr}")
        for name, choices in (("backbone_batchnorm", BATCHNORM_MODES), ("precision", PRECISIONS), ("resident", RESIDENCY), ("resident_dtype", RESIDENT_DTYPES),
                              ("compile", COMPILE_MODES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"TrainConfig.{name} must be one of {tuple(choices)}, got {getattr(self, name)!r}")
        self._check_recipe_options()
        self._check_registered()

    def _check_device(self) -> None:
        import torch

        if self.device == "auto":
            return
        try:
            torch.device(self.device)
        except (RuntimeError, ValueError, TypeError):
            raise ValueError(f"TrainConfig.device must be cpu, cuda, cuda:N or auto, got {self.device!r}") from None

    def _check_recipe_options(self) -> None:
        """Accumulation, layer decay, frozen names, augmentation, and a schedule without the epoch stages."""
        if self.accumulate_steps < 1:
            raise ValueError(f"TrainConfig.accumulate_steps must be at least 1 (no accumulation), got {self.accumulate_steps}")
        if not 0 <= self.layer_decay <= 1:
            raise ValueError(f"TrainConfig.layer_decay must be in [0, 1] (0: off), got {self.layer_decay}")
        if not all(isinstance(name, str) and name for name in self.loggers):
            raise ValueError(f"TrainConfig.loggers must be a list of registered logger names, got {self.loggers!r}")
        if not all(isinstance(name, str) and name for name in self.freeze_backbone):
            raise ValueError(f"TrainConfig.freeze_backbone must be a list of parameter names, got {self.freeze_backbone!r}")
        if (self.schedule != "constant" or self.schedule_options) and (self.head_only_epochs or self.lr_decay_every):
            raise ValueError(f"TrainConfig.schedule {self.schedule!r} cannot be combined with head_only_epochs or "
                             "lr_decay_every, which set the rates by epoch themselves: use one or the other")
        _check_augment(self.augment)

    def _check_registered(self) -> None:
        """The optimizer, schedule and sampler are registered and their options build them."""
        import torch

        from zslkit.registry import ComponentNotFoundError, create, list_components

        builds = (("optimizer", self.optimizer, "optimizer_options",
                   {"params": [torch.zeros(1, requires_grad=True)], "lr": self.lr, "weight_decay": self.weight_decay,
                    "momentum": self.momentum}),
                  ("schedule", self.schedule, "schedule_options", {"epochs": self.epochs}),
                  ("sampler", self.sampler, "sampler_options", {}))
        for kind, name, options, given in builds:
            if kind == "schedule" and name == "constant" and not self.schedule_options:
                continue  # the default: no schedule is built (nor timm imported)
            try:
                create(kind, name, **given, **getattr(self, options))
            except ComponentNotFoundError as exc:
                raise ValueError(f"TrainConfig.{kind}: {exc} (zslkit list {kind})") from None
            except (TypeError, ValueError) as exc:
                raise ValueError(f"TrainConfig.{options}: {exc}") from None
        known = list_components("logger")
        for name in self.loggers:
            if name not in known:
                raise ValueError(f"TrainConfig.loggers: no logger named {name!r}{_suggest(name, known)} (zslkit list logger)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a mapping, refusing unknown keys and values of the wrong type (naming ``where``)."""
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a mapping of TrainConfig fields, found {type(values).__name__}")
        defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in defaults:
                raise ValueError(f"{where}: unknown key {key!r}{_suggest(str(key), list(defaults))}")
            kwargs[key] = _coerce(value, defaults[key], f"{where}: {key}")
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


_TYPE_PHRASES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", dict: "a mapping",
                 list: "a list"}


def type_phrase(kind: type) -> str:
    """``int`` -> ``"a whole number"``: a type as a sentence names it (``"an object of type X"`` for others)."""
    return _TYPE_PHRASES.get(kind, f"an object of type {kind.__name__}")


def _check_augment(options: dict[str, Any]) -> None:
    """``augment`` holds only :data:`AUGMENT_OPTIONS`, with ``input_size``, and timm accepts them."""
    if not options:
        return
    unknown = sorted(set(options) - set(AUGMENT_OPTIONS))
    if unknown:
        raise ValueError(f"TrainConfig.augment: unknown option {unknown[0]!r}{_suggest(unknown[0], list(AUGMENT_OPTIONS))} "
                         "(augmentation acts on normalised input tensors: resize, crop and flip only)")
    if "input_size" not in options:
        raise ValueError("TrainConfig.augment needs input_size: the side of the crops the model sees (e.g. 224)")
    from zslkit.training.augment import build_augment

    try:
        build_augment(options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"TrainConfig.augment: {exc}") from None


def _coerce(value: Any, default: Any, where: str) -> Any:
    """``value`` as the type of ``default`` (numbers written like ``1e-4`` are strings to PyYAML)."""
    if isinstance(default, dict):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a mapping, found {value!r}")
        if where.endswith("loss_weights"):  # loss_weights and head_only_loss_weights
            return {k: _coerce(v, 0.0, f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if isinstance(value, bool) and not isinstance(default, bool):
        raise ValueError(f"{where} must be {type_phrase(type(default))}, found {value!r}")
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, found {value!r}") from None
    if not isinstance(value, type(default)):
        raise ValueError(f"{where} must be {type_phrase(type(default))}, found {value!r}")
    return value


def _config_dir():
    return resources.files("zslkit") / "configs"


def available_configs() -> list[str]:
    """Names of the packaged recipes, ``<model>/<dataset>`` (``zslkit/configs/<model>/<dataset>.yaml``)."""
    return sorted(f"{folder.name}/{p.name[: -len('.yaml')]}" for folder in _config_dir().iterdir() if folder.is_dir()
                  for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str | Path | TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a packaged recipe name (``"msdn/cub"``), a YAML path, or defaults (``None``).

    ``overrides`` replace fields after loading, e.g. ``load_config("msdn/cub", epochs=5)``.
    """
    if isinstance(name_or_path, TrainConfig):
        config = name_or_path
    elif name_or_path is None:
        config = TrainConfig()
    else:
        config = parse_config(*_read_config_text(name_or_path))
    if overrides:
        config = TrainConfig.from_dict({**config.to_dict(), **overrides}, "overrides")
    return config


def parse_config(text: str, where: str) -> TrainConfig:
    """The :class:`TrainConfig` a YAML recipe ``text`` holds (``where``: its file, for messages).

    A recipe describes the method: one that names a machine setting (:data:`MACHINE_SETTINGS`:
    threads, device, compile) is refused, in one line saying where that choice goes instead.
    """
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for key in MACHINE_SETTINGS:
        if isinstance(values, dict) and key in values:
            raise ValueError(f"{where}: {key!r} is a machine setting, not part of a recipe: remove it; "
                             f"{MACHINE_SETTINGS[key]}")
    return TrainConfig.from_dict(values or {}, where)


def _read_config_text(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        return path.read_text(), str(path)
    packaged = _config_dir().joinpath(*f"{name_or_path}.yaml".split("/"))
    if "/" not in str(name_or_path) or not packaged.is_file():
        names = available_configs()
        same = [n for n in names if n.split("/")[-1] == str(name_or_path)]
        hint = f" (a recipe is <model>/<dataset>: {' or '.join(same)}?)" if same else ""
        raise FileNotFoundError(
            f"no config named {str(name_or_path)!r}{hint}; packaged recipes: {', '.join(names)} "
            "(or give a path to a .yaml file)"
        )
    return packaged.read_text(), f"zslkit/configs/{name_or_path}.yaml"
