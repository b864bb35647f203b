"""The training loop: the paper's recipe by default, checkpoints every epoch, resumable.

Under ``torchrun`` (a process group of more than one process, see
:mod:`zslkit.distributed`) the same call trains data-parallel: every process draws
the same global batches, runs the model on its shard of each inside
:class:`~torch.nn.parallel.DistributedDataParallel`, and evaluates the loss on the
gathered global batch (:mod:`zslkit.training.parallel`); rank 0 alone writes
checkpoints and logs and shows progress.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from zslkit import distributed
from zslkit.atomic import write_csv_atomic, write_json_atomic
from zslkit.contracts import check_model_losses, describe_model, registered_name
from zslkit.datasets.container import ZSLDataset
from zslkit.datasets.resident import ResidentFeatures, hold_on_device, resident_bytes
from zslkit.models.backbone_model import BackboneModel, backbone_channels
from zslkit.models.class_space import MissingAttributeGroupsError
from zslkit.models.output import check_model_output
from zslkit.training.checkpoint import (
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from zslkit.training.config import TrainConfig, available_configs, load_config
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

__all__ = ["TrainResult", "build_optimizer", "config_for", "resolve_device", "train"]

EpochCallback = Callable[[int, torch.nn.Module], "dict[str, Any] | None"]


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
    """

    model: torch.nn.Module
    history: list[dict[str, Any]]
    config: TrainConfig
    out_dir: Path | None = None
    checkpoint: Path | None = None
    unused_loss_weights: dict[str, float] = field(default_factory=dict)
    resident: ResidentFeatures | None = None


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; anything else as ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but PyTorch sees no CUDA device (use device: cpu or auto)")
    return device


def config_for(dataset, config: str | Path | TrainConfig | None, model: str | None = None) -> TrainConfig:
    """``config`` as a :class:`TrainConfig`; ``None`` picks the packaged recipe of ``model`` for the dataset
    (``zslkit/configs/<model>/<dataset>.yaml``, e.g. ``apn/cub``) when there is one, else the packaged config
    named like the dataset (``"synthetic"`` for ``synthetic`` and its ``synthetic/validation`` view) or,
    failing that, the defaults."""
    if config is not None:
        return load_config(config)
    base = str(dataset.name).split("/")[0]
    if isinstance(model, str) and f"{model}/{base}" in available_configs():
        return load_config(f"{model}/{base}")
    return load_config(base if base in available_configs() else None)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """RMSprop, Adam or SGD with the config's lr, weight decay and momentum.

    All use PyTorch's multi-tensor (``foreach``) implementation, on CPU too: a few kernels
    per step for all parameters, with the same numbers as the per-parameter loop.

    ``params``: parameters, or parameter groups (dicts with ``params`` and their own
    settings, e.g. ``lr``); parameters that do not require gradients are left out.
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**group, "params": [p for p in group["params"] if p.requires_grad]} for group in params]
    else:
        params = [p for p in params if p.requires_grad]
    common = {"lr": config.lr, "weight_decay": config.weight_decay, "foreach": True}
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, momentum=config.momentum, **common)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, betas=(config.momentum, 0.999), **common)
    return torch.optim.SGD(params, momentum=config.momentum, **common)


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


def _build_model(dataset, model, config: TrainConfig, model_options: dict[str, Any], backbone=None, sample=None):
    """The model to train: ``model`` built for ``dataset``, behind ``backbone`` when one is given.

    ``sample``: one input ``(1, 3, S, S)``, to find the backbone's channels if it does not say.
    """
    if isinstance(model, torch.nn.Module):
        if model_options:
            raise TypeError(f"model options {sorted(model_options)} given with an already built model")
        head = model
    else:
        import zslkit

        if backbone is None and dataset.features is None:
            raise ValueError(f"dataset {dataset.name!r} has no region features (features is None); attention models need them")
        groups = {"attribute_groups": dataset.attribute_groups} if _takes_groups(model, dataset) else {}
        try:
            head = zslkit.create_model(
                model,
                class_attributes=dataset.class_attributes,
                attribute_embeddings=dataset.attribute_embeddings,
                seen_classes=dataset.seen_classes,
                unseen_classes=dataset.unseen_classes,
                feature_dim=dataset.feature_dim if backbone is None else backbone_channels(backbone, sample),
                **{**groups, **config.model_options, **model_options},
            )
        except MissingAttributeGroupsError as exc:
            raise MissingAttributeGroupsError(
                f"dataset {dataset.name!r} has no attribute groups, and loss term {exc.term!r} of model {model!r} needs them "
                "(give the dataset attribute_groups, or drop the term from the model's losses)", term=exc.term
            ) from None
    return head if backbone is None else BackboneModel(backbone, head, batchnorm=config.backbone_batchnorm)


def _parameters(net, config: TrainConfig):
    """What the optimizer trains: the head at ``lr`` and the backbone at ``backbone_lr`` when fine-tuning."""
    return net.parameter_groups(config.lr, config.backbone_lr) if isinstance(net, BackboneModel) else net.parameters()


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
    rates = [cfg.head_only_lr or cfg.lr, 0.0] if head_only else [cfg.lr * decay, cfg.backbone_lr * decay]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    # the dict the model reads, changed in place: the model's options (checked on resume) stay as built
    net.loss_weights.update(loss_weights)
    if head_only:
        net.loss_weights.update(cfg.head_only_loss_weights)


def _backbone_lr(optimizer: torch.optim.Optimizer, net) -> dict[str, float]:
    """``{"backbone_lr": ...}`` when fine-tuning a backbone that is not frozen, else ``{}``."""
    if isinstance(net, BackboneModel) and len(optimizer.param_groups) > 1:
        return {"backbone_lr": optimizer.param_groups[1]["lr"]}
    return {}


def _write_logs(out_dir: Path, history: list[dict[str, Any]]) -> None:
    write_csv_atomic(history, out_dir / "history.csv")
    write_json_atomic(out_dir / "history.json", history, indent=2, default=str)


def _resume(
    out_dir: Path, net, optimizer, rng: np.random.Generator, model_name: str, run: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Load the latest checkpoint of ``out_dir`` into ``net``, ``optimizer``, ``rng``; return (epoch, history).

    ``run`` (:func:`~zslkit.training.guards.run_identity`) must match the checkpoint's.
    """
    remove_stale_temporaries(out_dir)
    path = latest_checkpoint(out_dir)
    if path is None:
        return 0, []
    ckpt = load_checkpoint(path)
    check_same_run(path, ckpt.meta, run)
    saved = ckpt.meta.get("model", {})
    if saved.get("name") != model_name or saved.get("options") != json.loads(json.dumps(net.options)):
        raise ValueError(
            f"{path}: cannot resume, the checkpoint holds model {saved.get('name')!r} with other options; "
            "use a fresh out_dir or the same model and options"
        )
    net.load_state_dict(ckpt.section("model"))
    opt_meta = ckpt.meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in ckpt.section("optimizer").items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    for index, values in opt_meta.get("state", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    rng.bit_generator.state = ckpt.meta["rng"]["numpy"]
    return ckpt.epoch, list(ckpt.meta.get("history", []))


def _resident_inputs(inputs, indices: np.ndarray, device: torch.device, mode: str, dtype: str = "source"):
    """``inputs`` with the images ``indices`` held on ``device`` as ``TrainConfig.resident`` and
    ``resident_dtype`` say (see there)."""
    if mode == "off":
        return inputs
    if isinstance(inputs, ResidentFeatures) and inputs.device == device:
        return inputs  # made resident by the caller (zslkit.datasets.make_resident)
    if isinstance(inputs, torch.utils.data.Dataset):
        if mode == "on":
            raise ValueError("TrainConfig.resident='on' holds (N, ...) arrays on the device; these inputs are a torch "
                             "Dataset read item by item (use resident: off or auto)")
        return inputs
    images, stored = np.unique(indices), None if dtype == "source" else dtype
    if not hold_on_device(resident_bytes(inputs, len(images), stored), device, mode, f"the {len(images)} training images"):
        return inputs
    return ResidentFeatures.load(inputs, images, device, dtype=stored)


def _compiled(parallel, net, mode: str):
    """``(forward, loss)``: the model's forward and loss, compiled by ``torch.compile`` in ``mode`` unless ``off``."""
    if mode == "off":
        return parallel, net.loss
    return torch.compile(parallel, mode=mode), torch.compile(net.loss, mode=mode)


def _batch_losses(
    forward, loss, net, batch: np.ndarray, local: torch.Tensor, targets: torch.Tensor, device, precision: str = "fp32",
    identity: tuple[str, str] = ("model", ""),
) -> dict[str, torch.Tensor]:
    """The losses (``loss(output, targets)``) of one global ``batch``; ``forward`` (``net``, ``net`` in DDP, or
    either compiled) sees this rank's ``local`` inputs; ``targets``: the batch's labels, on the device.

    With ``precision="bf16"`` the forward runs under bfloat16 autocast and the loss terms in float32.
    The output and the losses are checked against the model contract (``identity``: the model's name and origin).
    """
    world = distributed.world_size()
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            output = forward(local.to(device))
        output = output.float()
    else:
        output = forward(local.to(device))
    name, source = identity
    check_model_output(output, batch=len(local), num_classes=net.num_classes, name=name, source=source)
    if world > 1:
        output = gather_output(output, distributed.shard_counts(len(batch), world), with_maps=getattr(net, "needs_maps", True))
    losses = loss(output, targets)
    check_model_losses(losses, name=name, source=source)
    return losses


def _train_one_epoch(parallel, optimizer, batches, losses_of, steps: int, desc: str, progress: bool) -> dict[str, float]:
    """One pass over ``batches`` (``((global batch, local inputs), labels)``); returns ``loss`` and ``loss_<term>``
    averaged over images."""
    parallel.train()
    sums: dict[str, float] = {}
    seen_images = 0
    with tqdm(total=steps, desc=desc, disable=not progress, leave=False, unit="batch") as bar:
        for step, ((batch, local), targets) in enumerate(batches):
            losses = losses_of(batch, local, targets)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            values = check_finite_step(losses, parallel, step + 1)  # the step's one host synchronisation
            optimizer.step()
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value * len(batch)
            seen_images += len(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{values['total']:.4f}")
    record = {"loss": sums.pop("total") / seen_images}
    record.update({f"loss_{name}": value / seen_images for name, value in sums.items()})
    return record


def train(
    dataset: ZSLDataset,
    model: str | torch.nn.Module | None = None,
    config: str | Path | TrainConfig | None = None,
    *,
    split: str = "trainval",
    seed: int | None = None,
    on_epoch: EpochCallback | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = False,
    backbone: torch.nn.Module | None = None,
    inputs: Any = None,
    **model_options: Any,
) -> TrainResult:
    """Train a registered model (by name) on the images of ``split``.

    Args:
        dataset: a :class:`~zslkit.datasets.ZSLDataset`; its seen/unseen classes
            define the model's class space (pass ``dataset.validation_view()`` for
            model selection).
        model: registered model name (or an already built model); ``None``: the
            config's ``model`` (``"msdn"`` unless the config says otherwise).
        config: packaged config name, YAML path or :class:`TrainConfig`; ``None``
            picks the packaged config named like the dataset, else the defaults.
        split: the split whose images are trained on.
        seed: overrides ``config.seed``.
        on_epoch: called as ``on_epoch(epoch, model)`` after every epoch (model in
            eval mode, ``epoch`` counted from 1); a returned dict is merged into
            that epoch's history entry.
        out_dir: checkpoints (one per epoch) and ``history.csv``/``history.json`` go here;
            a new run refuses a directory that already holds checkpoints.
        progress: show a progress bar and a line per epoch.
        resume: continue from the latest checkpoint in ``out_dir`` (same dataset, split and
            recipe; only :data:`~zslkit.training.guards.RESUMABLE_CHANGES` may change: ``epochs``,
            ``device``, ``eval_batch_size``, ``num_threads``, ``resident``, ``compile``).
        backbone: fine-tune end to end: any module mapping images ``(B, 3, S, S)`` to a
            feature map ``(B, C, H, W)`` (or a list of maps, the last used), put in front
            of the model in a :class:`~zslkit.models.BackboneModel`. The model's head
            trains at ``config.lr``, the backbone at ``config.backbone_lr``; its
            BatchNorm layers follow ``config.backbone_batchnorm``.
        inputs: what the model reads for image ``i``: ``inputs[i]``. Default
            ``dataset.features``; with a ``backbone``, the images, required: an
            ``(N, 3, S, S)`` array-like or a map-style torch ``Dataset`` of ``(3, S, S)``
            tensors, in the dataset's image order.
        model_options: extra options for ``zslkit.create_model`` (over ``config.model_options``).

    Inside a process group (``torchrun``) every rank must call it with the same
    arguments; see the module docstring.
    """
    cfg = config_for(dataset, config, model if isinstance(model, str) else None)
    if seed is not None:
        cfg = replace(cfg, seed=int(seed))
    if split not in dataset.splits:
        raise KeyError(f"dataset {dataset.name!r} has no split {split!r}; it has {sorted(dataset.splits)}")
    indices = dataset.splits[split]
    if len(indices) == 0:
        raise ValueError(f"split {split!r} of dataset {dataset.name!r} is empty")
    if backbone is not None and inputs is None:
        raise ValueError("train(..., backbone=...) needs inputs=: the images, (N, 3, S, S) in the dataset's image order")
    inputs = dataset.features if inputs is None else inputs
    device = distributed.rank_device(resolve_device(cfg.device))
    model = cfg.model if model is None else model
    # a built model that checkpoints must rebuild by name is refused now, not when its checkpoint is read
    model_name = model if isinstance(model, str) else registered_name(model) if out_dir is not None else describe_model(model)[0]
    main = distributed.is_main()
    progress = progress and main

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sample = read_batch(inputs, indices[:1]) if backbone is not None else None
    net = _build_model(dataset, model, cfg, model_options, backbone, sample).to(device)
    unused = _apply_loss_weights(net, cfg, model_name)
    stage_weights = _stage_weights(net, cfg, model_name)
    optimizer = build_optimizer(cfg, _parameters(net, cfg))
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ValueError("resume=True needs the out_dir that holds the checkpoints")
    if resume:
        start, history = _resume(out, net, optimizer, rng, model_name, run_identity(cfg.to_dict(), dataset.name, split))
    else:
        start, history = 0, []
        if out is not None:
            check_fresh_out_dir(out)
    parallel = wrap(net, device)
    if progress and unused:
        tqdm.write(f"note: config {cfg.model!r} loss weights {unused} do not apply to {model_name!r}")
    inputs = _resident_inputs(inputs, indices, device, cfg.resident, cfg.resident_dtype)
    resident = inputs if isinstance(inputs, ResidentFeatures) else None
    if progress and resident is not None:
        tqdm.write(f"features held on the device: {resident!r}")

    checkpoint = None
    forward, loss = _compiled(parallel, net, cfg.compile)
    losses_of = partial(_batch_losses, forward, loss, net, device=device, precision=cfg.precision, identity=describe_model(net))
    threads, tf32 = torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.backends.cuda.matmul.allow_tf32 = cfg.precision == "tf32"
    try:
        for epoch in range(start + 1, cfg.epochs + 1):
            began = time.perf_counter()
            _stage(net, optimizer, cfg, epoch, stage_weights)
            batches = list(batch_indices(cfg.sampler, indices, dataset.labels, cfg.batch_size, rng, cfg.sampler_options))
            steps = len(batches)
            targets = batch_targets(dataset.labels, batches, device)  # one copy per epoch, none per step
            local = shard_inputs(inputs, batches, distributed.rank(), distributed.world_size(), cfg.num_workers)
            batches = zip(local, targets)
            record: dict[str, Any] = {"epoch": epoch}
            try:
                record.update(_train_one_epoch(parallel, optimizer, batches, losses_of, steps, f"epoch {epoch}/{cfg.epochs}", progress))
            except NonFiniteLossError as exc:  # nothing non-finite reached the parameters or a checkpoint
                raise exc.stopped(epoch, cfg.epochs, out and latest_checkpoint(out), out) from None
            record.update({"lr": optimizer.param_groups[0]["lr"], **_backbone_lr(optimizer, net), "wall_s": time.perf_counter() - began})
            if on_epoch is not None:
                net.eval()
                record.update(on_epoch(epoch, net) or {})
            history.append(record)
            if progress:
                tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            if out is not None:
                if main:
                    meta = {"dataset": dataset.name, "split": split, "config": cfg.to_dict(),
                            "rng": {"numpy": rng.bit_generator.state}, "history": history,
                            "attribute_names": list(dataset.attribute_names), "class_names": list(dataset.class_names)}
                    save_checkpoint(out, epoch, net, optimizer, meta=meta)
                    _write_logs(out, history)
                checkpoint = checkpoint_paths(out, epoch)[1]
                distributed.barrier()  # no rank goes on (or returns) before the checkpoint is on disk
    finally:
        torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32 = tf32
    net.eval()
    return TrainResult(net, history, cfg, out, checkpoint, unused, resident)
