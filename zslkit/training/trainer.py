"""The training loop: the model's recipe for the dataset by default, checkpoints every epoch, resumable.

Under ``torchrun`` (a process group of more than one process, see
:mod:`zslkit.distributed`) the same call trains data-parallel: every process draws
the same global batches, runs the model on its shard of each inside
:class:`~torch.nn.parallel.DistributedDataParallel`, and evaluates the loss on the
gathered global batch (:mod:`zslkit.training.parallel`); rank 0 alone writes
checkpoints and logs (one line per epoch, logger ``zslkit.training``) and shows
progress. Every rank must call :func:`train` with the
same arguments.

:func:`train` runs named stages, each a function of its own: :func:`resolve_run` (the
recipe, split, inputs and device), :func:`seed_run`, :func:`build_run` (model, loss
weights, optimizer), :func:`start_run` (resume or a fresh ``out_dir``), DDP
:func:`~zslkit.training.parallel.wrap`, :func:`resident_inputs` (the residency decision
shared with the benchmark runner), ``torch.compile``, :func:`process_settings` (thread
count, TF32) around the epochs, each checkpointed with :func:`checkpoint_meta`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from zslkit import distributed
from zslkit.atomic import write_csv_atomic, write_json_atomic
from zslkit.contracts import ZSLModel, check_model_losses, describe_model, owns_backbone, registered_name
from zslkit.datasets.container import ZSLDataset
from zslkit.datasets.resident import ResidentFeatures
from zslkit.distributed import shard_range
from zslkit.models.backbone_model import BackboneModel, backbone_channels
from zslkit.models.class_space import MissingAttributeGroupsError
from zslkit.models.output import check_model_output
from zslkit.optim.param_groups import (
    freeze_stages,
    group_rate,
    group_roles,
    parameter_groups,
    trained_backbone,
)
from zslkit.registry import create
from zslkit.threads import using_threads
from zslkit.training.augment import augment_batch, build_augment
from zslkit.training.checkpoint import (
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
)
from zslkit.training.config import TrainConfig
from zslkit.training.data import batch_indices, batch_targets, read_batch, shard_inputs
from zslkit.training.guards import (
    NonFiniteLossError,
    check_finite_step,
    check_fresh_out_dir,
    check_same_run,
    remove_stale_temporaries,
    run_identity,
)
from zslkit.training.parallel import gather_output, wrap
from zslkit.training.recipes import Recipe, choose_recipe
from zslkit.training.residency import hold_features, training_device
from zslkit.training.updates import EpochUpdates, micro_batches

__all__ = [
    "RunPlan",
    "TrainResult",
    "build_optimizer",
    "build_run",
    "checkpoint_meta",
    "process_settings",
    "resident_inputs",
    "resolve_run",
    "run_loggers",
    "run_name",
    "seed_run",
    "start_run",
    "train",
]

EpochCallback = Callable[[int, torch.nn.Module], "dict[str, Any] | None"]
_log = logging.getLogger("zslkit.training")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model, in eval mode.
        history: one dict per epoch (``epoch`` from 1, ``loss``, ``loss_<term>``,
            ``lr``, ``wall_s``, plus what ``on_epoch`` returned).
        config: the config used (after ``seed`` was applied).
        out_dir: where checkpoints and logs went, or ``None``.
        checkpoint: the last checkpoint's JSON path, or ``None``.
        unused_loss_weights: config loss weights naming terms this model does not have
            (only when the config was written for another model).
        resident: the features held on the device while training
            (:class:`~zslkit.datasets.ResidentFeatures`, see ``TrainConfig.resident``), or
            ``None`` when they were read from the source every step.
        recipe: the :class:`~zslkit.training.recipes.Recipe` trained with (its ``config`` is ``config``).
    """

    model: ZSLModel
    history: list[dict[str, Any]]
    config: TrainConfig
    out_dir: Path | None = None
    checkpoint: Path | None = None
    unused_loss_weights: dict[str, float] = field(default_factory=dict)
    resident: ResidentFeatures | None = None
    recipe: Recipe | None = None


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The recipe's registered optimizer (``config.optimizer``, :mod:`zslkit.optim.optimizers`) with its lr,
    weight decay, momentum and ``optimizer_options``.

    ``params``: parameters, or parameter groups (dicts with ``params`` and their own
    settings, e.g. ``lr``); parameters that do not require gradients are left out.
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**group, "params": [p for p in group["params"] if p.requires_grad]} for group in params]
    else:
        params = [p for p in params if p.requires_grad]
    return create("optimizer", config.optimizer, params=params, lr=config.lr, weight_decay=config.weight_decay,
                  momentum=config.momentum, **config.optimizer_options)


def _takes_groups(model: str, dataset) -> bool:
    """Whether to pass ``dataset.attribute_groups``: the dataset has them and the model's factory takes them."""
    import inspect

    from zslkit.registry import ComponentNotFoundError, get_component

    if dataset.attribute_groups is None:
        return False
    try:
        params = inspect.signature(get_component("model", model)).parameters.values()
    except (ComponentNotFoundError, TypeError, ValueError):  # create_model then names the problem
        return False
    return any(p.name == "attribute_groups" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _build_model(dataset, model, config: TrainConfig, model_options: dict[str, Any], backbone=None, sample=None) -> ZSLModel:
    """The model to train: ``model`` built for ``dataset``, behind ``backbone`` when one is given.

    ``sample``: one input (read when the model reads other inputs than ``dataset.features``): with a
    backbone, to find its channels if it does not say; without, its channels are ``feature_dim``
    (e.g. 3 for a model that reads images, :class:`~zslkit.models.TokenAttentionModel`).
    """
    if isinstance(model, torch.nn.Module):
        if model_options:
            raise TypeError(f"model options {sorted(model_options)} given with an already built model")
        head = model
    else:
        import zslkit

        if backbone is None and sample is None and dataset.features is None:
            raise ValueError(f"dataset {dataset.name!r} has no region features (features is None); attention models need them")
        groups = {"attribute_groups": dataset.attribute_groups} if _takes_groups(model, dataset) else {}
        try:
            head = zslkit.create_model(
                model,
                class_attributes=dataset.class_attributes,
                attribute_embeddings=dataset.attribute_embeddings,
                seen_classes=dataset.seen_classes,
                unseen_classes=dataset.unseen_classes,
                feature_dim=_feature_dim(dataset, backbone, sample),
                **{**groups, **config.model_options, **model_options},
            )
        except MissingAttributeGroupsError as exc:
            raise MissingAttributeGroupsError(
                f"dataset {dataset.name!r} has no attribute groups, and loss term {exc.term!r} of model {model!r} needs them "
                "(give the dataset attribute_groups, or drop the term from the model's losses)", term=exc.term
            ) from None
    return head if backbone is None else BackboneModel(backbone, head, batchnorm=config.backbone_batchnorm)


def _feature_dim(dataset, backbone, sample) -> int:
    """``feature_dim`` of the model: the backbone's channels, else those of the inputs read (``sample``), else the dataset's."""
    if backbone is not None:
        return backbone_channels(backbone, sample)
    return int(sample.shape[1]) if sample is not None else dataset.feature_dim


def _parameters(net, config: TrainConfig) -> list[dict[str, Any]]:
    """What the optimizer trains (:func:`~zslkit.optim.parameter_groups`): the head at ``lr``, the backbone at
    ``backbone_lr`` when fine-tuning (or owning) one, less its ``freeze_backbone`` parameters."""
    backbone = trained_backbone(net)
    if backbone is not None and config.freeze_backbone:
        freeze_stages(backbone, config.freeze_backbone)
    return parameter_groups(net, lr=config.lr, backbone_lr=config.backbone_lr, weight_decay=config.weight_decay,
                            norm_bias_decay=config.norm_bias_decay, layer_decay=config.layer_decay)


def _apply_loss_weights(net, config: TrainConfig, model_name: str) -> dict[str, float]:
    """Set the config's loss weights; return those for absent terms (an error if the config targets this model)."""
    known = {k: v for k, v in config.loss_weights.items() if k in net.loss_weights}
    unused = {k: v for k, v in config.loss_weights.items() if k not in net.loss_weights}
    if unused and config.model == model_name:
        raise ValueError(f"config loss_weights name term {sorted(unused)[0]!r} that model {model_name!r} does not have; it has {list(net.loss_weights)}")
    net.set_loss_weights(known)
    return unused


def _stage_weights(net, cfg: TrainConfig, model_name: str) -> dict[str, float]:
    """The loss weights after the head-only epochs (the model's, as the config set them); checks
    ``head_only_loss_weights`` names only the model's terms."""
    unknown = sorted(set(cfg.head_only_loss_weights) - set(net.loss_weights))
    if unknown:
        raise ValueError(f"config head_only_loss_weights name term {unknown[0]!r} that model {model_name!r} does not have; it has {list(net.loss_weights)}")
    return dict(net.loss_weights)


def _stage(net, optimizer, cfg: TrainConfig, epoch: int, loss_weights: dict[str, float]) -> None:
    """Set the learning rates and loss weights of ``epoch`` (from 1): head-only epochs, then the decayed lr.

    Only for recipes with stages (``head_only_epochs`` or ``lr_decay_every``); others keep the optimizer as built.
    """
    if not (cfg.head_only_epochs or cfg.lr_decay_every):
        return
    head_only = epoch <= cfg.head_only_epochs
    decay = cfg.lr_decay ** ((epoch - 1) // cfg.lr_decay_every) if cfg.lr_decay_every and not head_only else 1.0
    rates = {"head": cfg.head_only_lr or cfg.lr, "backbone": 0.0} if head_only else \
        {"head": cfg.lr * decay, "backbone": cfg.backbone_lr * decay}
    for group, role in zip(optimizer.param_groups, group_roles(optimizer.param_groups)):
        group["lr"] = group_rate({**group, "role": role}, rates)
    # the dict the model reads, changed in place: the model's options (checked on resume) stay as built
    net.loss_weights.update(loss_weights)
    if head_only:
        net.loss_weights.update(cfg.head_only_loss_weights)


def _backbone_lr(optimizer: torch.optim.Optimizer, net) -> dict[str, float]:
    """``{"backbone_lr": ...}`` (its top layer's rate, undoing layer decay's ``lr_scale``: the top layer may be frozen)
    when fine-tuning (or owning) a backbone that is not frozen, else ``{}``."""
    groups = [g for g, role in zip(optimizer.param_groups, group_roles(optimizer.param_groups)) if role == "backbone"]
    if trained_backbone(net) is not None and groups:
        return {"backbone_lr": max(g["lr"] / g.get("lr_scale", 1.0) for g in groups)}
    return {}


def _write_logs(out_dir: Path, history: list[dict[str, Any]]) -> None:
    write_csv_atomic(history, out_dir / "history.csv")
    write_json_atomic(out_dir / "history.json", history, indent=2, default=str)


def _resume(
    out_dir: Path, net: ZSLModel, optimizer, rng: np.random.Generator, model_name: str, run: dict[str, Any], epochs: int
) -> tuple[int, list[dict[str, Any]]]:
    """Load the latest checkpoint of ``out_dir`` into ``net``, ``optimizer``, ``rng``; return (epoch, history).

    ``run`` (:func:`~zslkit.training.guards.run_identity`) must match the checkpoint's, and the
    checkpoint may not be past ``epochs``. A directory with no checkpoint is refused, unless a run
    started there and finished no epoch (it left ``history.json``): that run starts again.
    """
    remove_stale_temporaries(out_dir)
    path = latest_checkpoint(out_dir)
    if path is None:
        return _resume_nothing(out_dir)
    ckpt = load_checkpoint(path)
    check_same_run(path, ckpt.meta, run)
    if ckpt.epoch > epochs:
        raise ValueError(f"{path}: cannot resume a run of {ckpt.epoch} finished epochs to {_count(epochs, 'epoch')}; "
                         f"give {ckpt.epoch} epochs or more, or score the run as it is (zslkit eval {out_dir})")
    saved = ckpt.meta.get("model", {})
    if saved.get("name") != model_name or saved.get("options") != json.loads(json.dumps(net.options)):
        raise ValueError(
            f"{path}: cannot resume, the checkpoint holds model {saved.get('name')!r} with other options; "
            "use a fresh out_dir or the same model and options"
        )
    net.load_state_dict(ckpt.section("model"))
    restore_training_state(ckpt, optimizer)  # the optimizer and the torch RNGs, CPU and CUDA
    rng.bit_generator.state = ckpt.meta["rng"]["numpy"]
    return ckpt.epoch, list(ckpt.meta.get("history", []))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _resume_nothing(out_dir: Path) -> tuple[int, list[dict[str, Any]]]:
    """Resuming ``out_dir``, which holds no checkpoint: a run that started there starts again, else an error."""
    if (out_dir / "history.json").is_file():  # written when the run started: it finished no epoch
        logging.getLogger(__name__).warning("%s: the run there finished no epoch; starting it from epoch 1", out_dir)
        return 0, []
    what = "does not exist" if not out_dir.exists() else "holds no checkpoint (epoch_NNN.json) and no started run"
    raise FileNotFoundError(f"cannot resume from {out_dir}: the directory {what}; check the path, "
                            "or drop --resume (resume=True) to start a new run there")


def _mark_started(out_dir: Path) -> None:
    """A new run's empty ``history.json``: a later resume knows a run started here (:func:`_resume_nothing`)."""
    if distributed.is_main():
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{out_dir}: cannot create the output directory ({exc.strerror}); "
                          "give a directory you can write to") from None
        write_json_atomic(out_dir / "history.json", [], indent=2)


def _compiled(parallel, net, mode: str):
    """``(forward, loss)``: the model's forward and loss, compiled by ``torch.compile`` in ``mode`` unless ``off``."""
    if mode == "off":
        return parallel, net.loss
    return torch.compile(parallel, mode=mode), torch.compile(net.loss, mode=mode)


def _batch_losses(
    forward, loss, net, batch: np.ndarray, local: torch.Tensor, targets: torch.Tensor, device, precision: str = "fp32",
    identity: tuple[str, str] = ("model", ""), with_labels: bool = False,
) -> dict[str, torch.Tensor]:
    """The losses (``loss(output, targets)``) of one global ``batch``; ``forward`` (``net``, ``net`` in DDP, or
    either compiled) sees this rank's ``local`` inputs; ``targets``: the batch's labels, on the device.
    ``with_labels``: the forward also takes this rank's labels (``forward(local, labels=...)``).

    With ``precision="bf16"`` the forward runs under bfloat16 autocast and the loss terms in float32.
    The output and the losses are checked against the model contract (``identity``: the model's name and origin).
    """
    world = distributed.world_size()
    kwargs = {"labels": targets[slice(*distributed.shard_range(len(batch), distributed.rank(), world))]} if with_labels else {}
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            output = forward(local.to(device), **kwargs)
        output = output.float()
    else:
        output = forward(local.to(device), **kwargs)
    name, source = identity
    check_model_output(output, batch=len(local), num_classes=net.num_classes, name=name, source=source)
    if world > 1:
        output = gather_output(output, distributed.shard_counts(len(batch), world), with_maps=getattr(net, "needs_maps", True))
    losses = loss(output, targets)
    check_model_losses(losses, name=name, source=source)
    return losses


def _train_one_epoch(parallel, optimizer, batches, losses_of, steps: int, desc: str, progress: bool,
                     updates: EpochUpdates) -> dict[str, float]:
    """One pass over ``batches`` (``((global batch, local inputs), labels)``, micro-batches when accumulating:
    ``updates`` weighs them and says when to step); returns ``loss`` and ``loss_<term>`` averaged over images."""
    parallel.train()
    sums: dict[str, float] = {}
    seen_images, update, fresh = 0, 0, True
    with tqdm(total=steps, desc=desc, disable=not progress, leave=False, unit="batch") as bar:
        for step, ((batch, local), targets) in enumerate(batches):
            losses = losses_of(batch, local, targets)
            if fresh:
                optimizer.zero_grad(set_to_none=True)
            weight = updates.weights[step]
            (losses["total"] if weight is None else losses["total"] * weight).backward()
            values = check_finite_step(losses, parallel, step + 1)  # the step's one host synchronisation
            fresh = updates.ends[step]
            if fresh:
                updates.before_update(optimizer, update)
                optimizer.step()
                update += 1
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value * len(batch)
            seen_images += len(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{values['total']:.4f}")
    record = {"loss": sums.pop("total") / seen_images}
    record.update({f"loss_{name}": value / seen_images for name, value in sums.items()})
    return record


# ------------------------------------------------------------------ the stages of train()
@dataclass
class RunPlan:
    """What :func:`resolve_run` decided before anything is built.

    Attributes:
        recipe: the :class:`~zslkit.training.recipes.Recipe` (``config`` with ``seed`` applied).
        model: registered name or built module; ``model_name``: its name.
        split, indices: the split trained on and its image indices.
        inputs: what the model reads for image ``i`` (``inputs[i]``).
        device: this process's training device.
        out_dir: where checkpoints go, or ``None``; ``resume``: continue from its latest.
    """

    recipe: Recipe
    model: Any
    model_name: str
    split: str
    indices: np.ndarray
    inputs: Any
    device: torch.device
    out_dir: Path | None = None
    resume: bool = False

    @property
    def config(self) -> TrainConfig:
        return self.recipe.config


def resolve_run(dataset: ZSLDataset, model: Any = None, config: Any = None, *, split: str = "trainval",
                seed: int | None = None, backbone: Any = None, inputs: Any = None, out_dir: Any = None,
                resume: bool = False) -> RunPlan:
    """Stage 1 of :func:`train`: the recipe, the split, the inputs and the device (arguments as there)."""
    model, recipe = choose_recipe(model, dataset.name, config)
    if seed is not None:
        recipe = recipe.with_config(replace(recipe.config, seed=int(seed)))
    if split not in dataset.splits:
        raise KeyError(f"dataset {dataset.name!r} has no split {split!r}; it has {sorted(dataset.splits)}")
    indices = dataset.splits[split]
    if len(indices) == 0:
        raise ValueError(f"split {split!r} of dataset {dataset.name!r} is empty")
    if backbone is not None and inputs is None:
        raise ValueError("train(..., backbone=...) needs inputs=: the images, (N, 3, S, S) in the dataset's image order")
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir that holds the checkpoints")
    if backbone is None and recipe.config.augment and not owns_backbone(model):
        raise ValueError("the recipe's augment crops and flips images: it applies when fine-tuning "
                         "(train(..., backbone=..., inputs=images)) or to a model that owns its backbone "
                         "(svip, ...); drop augment to train on region features")
    # a built model that checkpoints must rebuild by name is refused now, not when its checkpoint is read
    model_name = model if isinstance(model, str) else registered_name(model) if out_dir is not None else describe_model(model)[0]
    return RunPlan(recipe, model, model_name, split, indices, dataset.features if inputs is None else inputs,
                   training_device(recipe.config), None if out_dir is None else Path(out_dir), resume)


def seed_run(config: TrainConfig) -> np.random.Generator:
    """Stage 2: seed torch (the model's initialisation) and return the batch order's generator."""
    torch.manual_seed(config.seed)
    return np.random.default_rng(config.seed)


def build_run(dataset: ZSLDataset, plan: RunPlan, model_options: dict[str, Any], backbone=None):
    """Stage 3: ``(net, unused loss weights, optimizer)``, the model on the plan's device."""
    cfg = plan.config
    own_inputs = backbone is not None or plan.inputs is not dataset.features
    sample = read_batch(plan.inputs, plan.indices[:1]) if own_inputs else None
    net = _build_model(dataset, plan.model, cfg, model_options, backbone, sample).to(plan.device)
    unused = _apply_loss_weights(net, cfg, plan.model_name)
    return net, unused, build_optimizer(cfg, _parameters(net, cfg))


def start_run(dataset: ZSLDataset, plan: RunPlan, net: ZSLModel, optimizer, rng: np.random.Generator):
    """Stage 4: ``(epochs done, history)``: from the latest checkpoint when resuming, else ``(0, [])``
    (a new run refuses an ``out_dir`` that holds checkpoints)."""
    if plan.resume:
        run = run_identity(plan.config.to_dict(), dataset.name, plan.split)
        return _resume(plan.out_dir, net, optimizer, rng, plan.model_name, run, plan.config.epochs)
    if plan.out_dir is not None:
        check_fresh_out_dir(plan.out_dir)
        _mark_started(plan.out_dir)
    return 0, []


def resident_inputs(plan: RunPlan) -> Any:
    """Stage 6: the training split's features held on the device, or the inputs as they are
    (:func:`~zslkit.training.residency.hold_features`, the decision the benchmark runner shares)."""
    what = f"the {len(np.unique(plan.indices))} training images"
    return hold_features(plan.inputs, plan.indices, plan.device, plan.config, what)


def _losses_of(parallel, net, plan: RunPlan):
    """Stage 7: ``losses_of(batch, local, targets)``, the losses of one batch through the forward and loss,
    compiled as ``compile`` says and checked against the model contract."""
    import inspect

    forward, loss = _compiled(parallel, net, plan.config.compile)
    return partial(_batch_losses, forward, loss, net, device=plan.device, precision=plan.config.precision,
                   identity=describe_model(net), with_labels="labels" in inspect.signature(net.forward).parameters)


@contextmanager
def process_settings(config: TrainConfig) -> Iterator[None]:
    """Stage 8: the process-global switches of a run, restored on exit: PyTorch's CPU thread
    count (``num_threads``; 0: the machine's share, :func:`zslkit.threads.thread_count`) and CUDA
    TF32 matrix products (on for ``precision: tf32``)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = config.precision == "tf32"
    try:
        with using_threads(config.num_threads):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def checkpoint_meta(dataset: ZSLDataset, plan: RunPlan, rng: np.random.Generator, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What every checkpoint's JSON records besides the model and optimizer (``inputs``: how images were
    preprocessed, where the inputs say, as :class:`zslkit.extract.ImageFiles` does)."""
    meta = {"dataset": dataset.name, "split": plan.split, "config": plan.config.to_dict(), "recipe": plan.recipe.record(),
            "rng": {"numpy": rng.bit_generator.state}, "history": history,
            "attribute_names": list(dataset.attribute_names), "class_names": list(dataset.class_names)}
    inputs = getattr(plan.inputs, "preprocessing", None)
    if inputs is not None:
        meta["inputs"] = inputs
    return meta


@dataclass
class _Loop:
    """Everything the epoch loop reads, built by the stages before it."""

    dataset: ZSLDataset
    plan: RunPlan
    net: ZSLModel
    parallel: torch.nn.Module
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    inputs: Any
    losses_of: Callable[..., dict[str, torch.Tensor]]
    history: list[dict[str, Any]]
    on_epoch: EpochCallback | None
    progress: bool
    checkpoint: Path | None = None
    #: the run's metric loggers (kind ``logger``), sent every epoch's record (rank 0)
    loggers: Any = None
    #: the loss weights after the head-only epochs (see :func:`_stage`)
    stage_weights: dict[str, float] = field(init=False)
    #: the recipe's learning-rate schedule, or ``None`` for constant rates (see :func:`_schedule`)
    schedule: Callable[[float], float] | None = field(init=False)

    def __post_init__(self) -> None:
        self.stage_weights = _stage_weights(self.net, self.plan.config, self.plan.model_name)
        if self.history and self.plan.out_dir is not None:  # resumed: its checkpoint, until an epoch writes another
            self.checkpoint = latest_checkpoint(self.plan.out_dir)
        self.schedule = _schedule(self.plan.config)


def _schedule(cfg: TrainConfig) -> Callable[[float], float] | None:
    """The registered schedule ``cfg.schedule`` built for ``cfg.epochs``; ``None`` for ``constant`` without options
    (the rates stay as the optimizer was built or :func:`_stage` set them)."""
    if cfg.schedule == "constant" and not cfg.schedule_options:
        return None
    return create("schedule", cfg.schedule, epochs=cfg.epochs, **cfg.schedule_options)


def _epoch(loop: _Loop, epoch: int) -> dict[str, Any]:
    """One epoch: draw its batches, train on them, call ``on_epoch``; return its history entry."""
    cfg, plan, dataset = loop.plan.config, loop.plan, loop.dataset
    began = time.perf_counter()
    _stage(loop.net, loop.optimizer, cfg, epoch, loop.stage_weights)
    drawn = list(batch_indices(cfg.sampler, plan.indices, dataset.labels, cfg.batch_size, loop.rng, cfg.sampler_options))
    batches, weights, ends = micro_batches(drawn, cfg.accumulate_steps)
    updates = EpochUpdates(weights, ends, epoch, len(drawn), loop.schedule, {"head": cfg.lr, "backbone": cfg.backbone_lr})
    targets = batch_targets(dataset.labels, batches, plan.device)  # one copy per epoch, none per step
    local = _augmented(loop, epoch, shard_inputs(loop.inputs, batches, distributed.rank(), distributed.world_size(),
                                                 cfg.num_workers))
    record: dict[str, Any] = {"epoch": epoch}
    try:
        record.update(_train_one_epoch(loop.parallel, loop.optimizer, zip(local, targets), loop.losses_of, len(batches),
                                       f"epoch {epoch}/{cfg.epochs}", loop.progress, updates))
    except NonFiniteLossError as exc:  # nothing non-finite reached the parameters or a checkpoint
        out = plan.out_dir
        raise exc.stopped(epoch, cfg.epochs, out and latest_checkpoint(out), out) from None
    record.update({"lr": loop.optimizer.param_groups[0]["lr"], **_backbone_lr(loop.optimizer, loop.net),
                   "wall_s": time.perf_counter() - began})
    if loop.on_epoch is not None:
        loop.net.eval()
        record.update(loop.on_epoch(epoch, loop.net) or {})
    return record


def _augmented(loop: _Loop, epoch: int, shards):
    """The ``(batch, local inputs)`` of ``shards``, each local image cropped and flipped by the recipe's ``augment``."""
    cfg = loop.plan.config
    if not cfg.augment:
        yield from shards
        return
    transform = build_augment(cfg.augment)
    for step, (batch, local) in enumerate(shards):
        offset = shard_range(len(batch), distributed.rank(), distributed.world_size())[0]
        yield batch, augment_batch(transform, local, seed=cfg.seed, epoch=epoch, step=step, offset=offset)


def _save_epoch(loop: _Loop, epoch: int) -> None:
    """Rank 0 writes the epoch's checkpoint and logs; every rank waits until they are on disk."""
    out = loop.plan.out_dir
    if out is None:
        return
    if distributed.is_main():
        save_checkpoint(out, epoch, loop.net, loop.optimizer, meta=checkpoint_meta(loop.dataset, loop.plan, loop.rng, loop.history))
        _write_logs(out, loop.history)
    loop.checkpoint = checkpoint_paths(out, epoch)[1]
    distributed.barrier()  # no rank goes on (or returns) before the checkpoint is on disk


def _run_epochs(loop: _Loop, start: int) -> None:
    """Stage 9: the epochs after ``start``, each logged and checkpointed."""
    for epoch in range(start + 1, loop.plan.config.epochs + 1):
        record = _epoch(loop, epoch)
        loop.history.append(record)
        if distributed.is_main():
            _log.info("%s: epoch %d/%d %s", _run_label(loop.dataset, loop.plan), epoch, loop.plan.config.epochs,
                      " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
                               if k != "epoch"))
        _save_epoch(loop, epoch)
        if loop.loggers and distributed.is_main():
            loop.loggers.log_metrics(record, epoch)


def _run_label(dataset: ZSLDataset, plan: RunPlan) -> str:
    """Which run a log line belongs to: the model, the dataset (``synthetic/validation``: the selection
    view of the validation protocol) and the split trained on, e.g. ``msdn on synthetic (trainval, seed 0)``."""
    return f"{plan.model_name} on {dataset.name} ({plan.split}, seed {plan.config.seed})"


def run_name(dataset: ZSLDataset, plan: RunPlan) -> str:
    """The run's name for metric loggers: ``msdn-synthetic-trainval-seed0`` (no ``/``: a validation view's
    dataset name ``synthetic/validation`` becomes ``synthetic-validation``)."""
    return f"{plan.model_name}-{dataset.name}-{plan.split}-seed{plan.config.seed}".replace("/", "-")


@contextmanager
def run_loggers(dataset: ZSLDataset, plan: RunPlan, loggers: Any = None) -> Iterator[Any]:
    """The run's metric loggers (a :class:`~zslkit.loggers.LoggerSet`): ``loggers`` as given (not closed here),
    else the recipe's ``loggers`` built for this run under ``out_dir``, sent the run's config and closed on exit;
    none off rank 0."""
    from zslkit.loggers import LoggerSet, build_loggers

    if loggers is not None or not plan.config.loggers or not distributed.is_main():
        yield LoggerSet(loggers or ())
        return
    if plan.out_dir is None:
        raise ValueError(f"the recipe's loggers {plan.config.loggers} write under out_dir, which was not given; "
                         "give out_dir, or loggers=[] to log nothing")
    with build_loggers(plan.config.loggers, plan.out_dir, run_name(dataset, plan)) as opened:
        opened.log_config({"model": plan.model_name, "dataset": dataset.name, "split": plan.split,
                           "recipe": plan.recipe.name, **plan.config.to_dict()})
        yield opened


def _notes(dataset: ZSLDataset, plan: RunPlan, unused: dict[str, float], inputs: Any, said_recipe: bool) -> None:
    """The lines a run logs before its first epoch (logger ``zslkit.training``, on rank 0)."""
    label = _run_label(dataset, plan)
    if said_recipe:
        _log.info("%s: %s", label, plan.recipe.line())
    if unused:
        _log.warning("%s: config %r loss weights %s do not apply to %r", label, plan.config.model, unused, plan.model_name)
    if isinstance(inputs, ResidentFeatures):
        _log.info("%s: features held on the device: %r", label, inputs)


def train(
    dataset: ZSLDataset,
    model: str | torch.nn.Module | None = None,
    config: str | Path | TrainConfig | Recipe | dict[str, Any] | None = None,
    *,
    split: str = "trainval",
    seed: int | None = None,
    on_epoch: EpochCallback | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = False,
    backbone: torch.nn.Module | None = None,
    inputs: Any = None, loggers: Any = None,
    **model_options: Any,
) -> TrainResult:
    """Train a registered model (by name) on the images of ``split``.

    Args:
        dataset: a :class:`~zslkit.datasets.ZSLDataset`; its seen/unseen classes define the model's
            class space (pass ``dataset.validation_view()`` for model selection).
        model: registered model name (or an already built model); ``None``: the config's ``model``
            (``"msdn"`` when no config is given).
        config: a :class:`~zslkit.training.recipes.Recipe`, a :class:`TrainConfig`, a packaged recipe
            name (``"msdn/cub"``), a YAML path, or a dict of TrainConfig fields (``{"epochs": 1}``) over
            the model's recipe for the dataset; ``None``: that recipe
            (:func:`~zslkit.training.recipes.recipe_for`; its line is logged).
        split: the split whose images are trained on. ``seed``: overrides ``config.seed``.
        on_epoch: called as ``on_epoch(epoch, model)`` after every epoch (model in eval mode, ``epoch``
            from 1); a returned dict is merged into that epoch's history entry.
        out_dir: checkpoints (one per epoch) and ``history.csv``/``history.json`` go here; a new run
            refuses a directory that already holds checkpoints.
        progress: a progress bar on stderr; each epoch logs a line either way (logger ``zslkit.training``, INFO).
        resume: continue from the latest checkpoint in ``out_dir`` (same dataset, split and recipe;
            only :data:`~zslkit.training.guards.RESUMABLE_CHANGES` may change).
        backbone: fine-tune end to end: any module mapping images ``(B, 3, S, S)`` to a feature map
            ``(B, C, H, W)`` (or a list of maps, the last used), put in front of the model in a
            :class:`~zslkit.models.BackboneModel`; it trains at ``config.backbone_lr``, the head at
            ``config.lr``, its BatchNorm layers follow ``config.backbone_batchnorm``.
        inputs: what the model reads for image ``i``: ``inputs[i]``. Default ``dataset.features``;
            with a ``backbone``, the images, required: an ``(N, 3, S, S)`` array-like or a map-style
            torch ``Dataset`` of ``(3, S, S)`` tensors, in the dataset's image order.
        loggers: metric loggers sent each epoch's entry on rank 0 (the caller's); ``None``: :func:`run_loggers`.
        model_options: extra options for ``zslkit.create_model`` (over ``config.model_options``).
    """
    plan = resolve_run(dataset, model, config, split=split, seed=seed, backbone=backbone, inputs=inputs,
                       out_dir=out_dir, resume=resume)
    cfg, progress = plan.config, progress and distributed.is_main()
    rng = seed_run(cfg)
    net, unused, optimizer = build_run(dataset, plan, model_options, backbone)
    start, history = start_run(dataset, plan, net, optimizer, rng)
    parallel, held = wrap(net, plan.device), resident_inputs(plan)
    if distributed.is_main():
        _notes(dataset, plan, unused, held, said_recipe=config is None or isinstance(config, dict))
    losses_of = _losses_of(parallel, net, plan)
    with run_loggers(dataset, plan, loggers) as loggers, process_settings(cfg):
        loop = _Loop(dataset, plan, net, parallel, optimizer, rng, held, losses_of, history, on_epoch, progress,
                     loggers=loggers)
        _run_epochs(loop, start)
    resident = held if isinstance(held, ResidentFeatures) else None
    return TrainResult(net.eval(), history, cfg, plan.out_dir, loop.checkpoint, unused, resident, plan.recipe)
