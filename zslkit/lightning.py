"""A ``lightning.LightningModule`` over any zslkit model and recipe: ``lightning.Trainer(...).fit`` trains it.

>>> from zslkit.lightning import ZSLModule
>>> module = ZSLModule(zslkit.load_dataset("synthetic"), "msdn")           # the model's recipe for the dataset
>>> lightning.Trainer(max_epochs=module.config.epochs).fit(module)
>>> module.history  # one dict per epoch: epoch, loss, loss_<term>, lr, as zslkit's trainer records

The module is built by the trainer's own stages (:func:`~zslkit.training.resolve_run`,
:func:`~zslkit.training.seed_run`, :func:`~zslkit.training.build_run`): the same seeded model, loss weights,
optimizer and parameter groups. Its training data loader gives the batches the recipe's sampler draws from the
seeded generator, read as the trainer reads them; each epoch sets the recipe's staged learning rates and loss
weights, and every optimizer step the schedule's rate. One Lightning epoch on the CPU therefore equals one
epoch of :func:`zslkit.training.train` (tests/test_lightning.py: the same losses, the same weights bit for bit).
Its validation loader scores the dataset's ``test_seen`` + ``test_unseen`` images and logs T1, U, S, H and
AUSUC (:class:`~zslkit.metrics.ZSLAccuracy`, synchronised across processes) as ``val/<metric>``.

Not supported (refused in a sentence): ``accumulate_steps`` (use the Trainer's ``accumulate_grad_batches``),
``augment``, ``compile`` and ``precision`` other than ``fp32`` (use the Trainer's ``precision``). Needs
``pip install 'zslkit[lightning]'``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from typing import Any

import numpy as np
import torch

try:
    import lightning
except ImportError:
    raise ImportError("zslkit.lightning needs the lightning package, which is not installed: "
                      "pip install 'zslkit[lightning]'") from None

from zslkit.datasets.container import ZSLDataset
from zslkit.metrics import ZSLAccuracy
from zslkit.training.data import batch_indices, read_batch
from zslkit.training.trainer import (
    _schedule,
    _stage,
    _stage_weights,
    build_run,
    process_settings,
    resolve_run,
    seed_run,
)
from zslkit.training.updates import EpochUpdates

__all__ = ["ZSLModule"]


class _Rows(torch.utils.data.Dataset):
    """Images ``i`` of ``inputs`` with their labels, read a batch at a time (``__getitems__``) as the trainer does."""

    def __init__(self, inputs: Any, labels: np.ndarray) -> None:
        self.inputs, self.labels = inputs, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = np.asarray(indices, dtype=np.int64)
        return read_batch(self.inputs, batch), torch.as_tensor(self.labels[batch])


class _EpochBatches(torch.utils.data.Sampler):
    """Each epoch, the batches the recipe's sampler draws from the run's generator (the trainer's draw)."""

    def __init__(self, module: ZSLModule) -> None:
        self.module = module

    def _draw(self, rng: np.random.Generator) -> list[np.ndarray]:
        cfg, plan = self.module.config, self.module.plan
        return list(batch_indices(cfg.sampler, plan.indices, self.module.dataset.labels, cfg.batch_size, rng,
                                  cfg.sampler_options))

    def __iter__(self):
        return iter([batch.tolist() for batch in self._draw(self.module.rng)])

    def __len__(self) -> int:
        return len(self._draw(copy.deepcopy(self.module.rng)))  # counted on a copy: the draw itself is unchanged


def _whole(items):
    return items  # __getitems__ already gives the batch


class ZSLModule(lightning.LightningModule):
    """A zslkit model trained by Lightning with its zslkit recipe (see the module).

    Args:
        dataset: a :class:`~zslkit.datasets.ZSLDataset`; ``model``, ``config``, ``split``, ``seed``, ``inputs``
            and ``model_options``: as :func:`zslkit.training.train` takes them.
        calibration: the gamma of the validation metrics (0: none; ``"best"``: swept on the scored images).
    """

    def __init__(self, dataset: ZSLDataset, model: Any = None, config: Any = None, *, split: str = "trainval", seed: int | None = None,
                 inputs: Any = None, calibration: float | str = 0.0, **model_options: Any) -> None:
        super().__init__()
        plan = resolve_run(dataset, model, config, split=split, seed=seed, inputs=inputs)
        _refuse(plan.config)
        self.dataset, self.plan, self.config = dataset, plan, plan.config
        self.rng = seed_run(self.config)
        self.net, self.unused_loss_weights, self._optimizer = build_run(dataset, plan, model_options)
        self.stage_weights = _stage_weights(self.net, self.config, plan.model_name)
        self.schedule = _schedule(self.config)
        self.with_labels = "labels" in inspect.signature(self.net.forward).parameters
        self.metric = ZSLAccuracy(dataset.seen_classes, dataset.unseen_classes, calibration)
        self.history: list[dict[str, Any]] = []
        self._sums: dict[str, float] = {}
        self._seen = 0
        self._update = 0
        self._updates: EpochUpdates | None = None
        self._settings = contextlib.ExitStack()

    # ----------------------------------------------------------------- data
    def train_dataloader(self) -> torch.utils.data.DataLoader:
        rows = _Rows(self.plan.inputs, self.dataset.labels)
        # its own generator: a loader's iterator draws a seed from it, which would shift the global stream
        # (the dropout masks) away from the trainer's, which reads its batches without a loader
        return torch.utils.data.DataLoader(rows, batch_sampler=_EpochBatches(self), collate_fn=_whole,
                                           generator=torch.Generator())

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        indices = np.concatenate([self.dataset.splits["test_seen"], self.dataset.splits["test_unseen"]])
        size = self.config.eval_batch_size
        batches = [indices[i:i + size].tolist() for i in range(0, len(indices), size)]
        return torch.utils.data.DataLoader(_Rows(self.plan.inputs, self.dataset.labels), batch_sampler=batches,
                                           collate_fn=_whole, generator=torch.Generator())

    # ----------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        """The trainer's process settings while fitting (:func:`~zslkit.training.process_settings`: the CPU thread
        count, which changes the rounding of CPU matrix products, and TF32), restored when the fit ends."""
        self._settings = contextlib.ExitStack()
        self._settings.enter_context(process_settings(self.config))

    def on_fit_end(self) -> None:
        self._settings.close()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._optimizer

    def forward(self, x: torch.Tensor, **kwargs: Any):
        return self.net(x, **kwargs)

    def on_train_epoch_start(self) -> None:
        epoch = self.current_epoch + 1
        optimizer = self.optimizers().optimizer
        _stage(self.net, optimizer, self.config, epoch, self.stage_weights)
        steps = len(self.trainer.train_dataloader) if self.trainer is not None else 0
        self._updates = EpochUpdates([None] * steps, [True] * steps, epoch, steps, self.schedule,
                                     {"head": self.config.lr, "backbone": self.config.backbone_lr})
        self._sums, self._seen, self._update = {}, 0, 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        output = self.net(x, **({"labels": y} if self.with_labels else {}))
        losses = self.net.loss(output, y)
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach()) * len(y)
        self._seen += len(y)
        self.log("train/loss", losses["total"].detach(), batch_size=len(y), prog_bar=True)
        return losses["total"]

    def on_before_optimizer_step(self, optimizer) -> None:
        if self._updates is not None and self._updates.updates:
            self._updates.before_update(optimizer, self._update)
        self._update += 1

    def on_train_epoch_end(self) -> None:
        record = {"epoch": self.current_epoch + 1, "loss": self._sums.pop("total") / self._seen}
        record.update({f"loss_{name}": value / self._seen for name, value in self._sums.items()})
        record["lr"] = self.optimizers().optimizer.param_groups[0]["lr"]
        self.history.append(record)
        for key, value in record.items():
            if key != "epoch":
                self.log(f"train/{key}", value)

    # ----------------------------------------------------------------- validation: the ZSL metrics
    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.metric.update(self.net(x).scores, y)

    def on_validation_epoch_end(self) -> None:
        for key, value in self.metric.compute().items():
            self.log(f"val/{key}", value)
        self.metric.reset()


def _refuse(config) -> None:
    """Recipe settings this adapter does not reproduce, each refused naming what to use instead."""
    if config.accumulate_steps != 1:
        raise ValueError(f"ZSLModule: the recipe's accumulate_steps={config.accumulate_steps} is not reproduced; "
                         "give accumulate_steps=1 and the Trainer's accumulate_grad_batches instead")
    if config.augment:
        raise ValueError("ZSLModule: the recipe's augment is not reproduced; train with zslkit.training.train")
    if config.compile != "off" or config.precision != "fp32":
        raise ValueError(f"ZSLModule: compile={config.compile!r}, precision={config.precision!r}: give the Trainer's "
                         "precision= and compile the module yourself; the recipe must say compile off, precision fp32")
