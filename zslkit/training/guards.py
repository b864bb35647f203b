"""Guards of the training loop: stop on non-finite numbers, never mix two runs in one directory.

* :func:`check_finite_losses` / :func:`check_finite_gradients` run every step: a NaN or
  inf loss term (before the backward pass) or gradient (before the optimizer step)
  raises :class:`NonFiniteLossError` naming the term or parameter and the step, so
  that no non-finite number ever reaches the parameters or a checkpoint. The trainer
  adds the epoch and the last good checkpoint to the message.
* :func:`check_fresh_out_dir`: a new run refuses a directory that holds checkpoints
  (a later ``--resume`` would otherwise pick up the old run's epochs).
* :func:`check_same_run`: ``--resume`` refuses a checkpoint of another dataset, split
  or recipe (only ``epochs``, ``device``, ``eval_batch_size`` and ``num_threads`` may change).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from zslkit.atomic import remove_stale_temporaries  # re-exported: the trainer cleans up with it

__all__ = [
    "RESUMABLE_CHANGES",
    "NonFiniteLossError",
    "check_finite_gradients",
    "check_finite_losses",
    "check_fresh_out_dir",
    "check_same_run",
    "remove_stale_temporaries",
    "run_identity",
]

#: Config fields that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES: frozenset[str] = frozenset({"epochs", "device", "eval_batch_size", "num_threads"})


class NonFiniteLossError(FloatingPointError):
    """A loss term or gradient became NaN/inf; training stopped before the parameters were touched."""

    def __init__(self, what: str, value: float, step: int) -> None:
        self.what, self.value, self.step = what, value, step
        super().__init__(f"{what} became {value} at step {step}")

    def stopped(self, epoch: int, epochs: int, last_good: Path | None, out_dir: Path | None) -> NonFiniteLossError:
        """The same error, its message completed with the epoch and the checkpoint to go back to."""
        if out_dir is None:
            kept = "no checkpoints are written without out_dir"
        elif last_good is None:
            kept = f"no checkpoint in {out_dir} yet"
        else:
            kept = f"the last good checkpoint is {last_good}"
        error = NonFiniteLossError(self.what, self.value, self.step)
        error.args = (
            f"{self.what} became {self.value} at epoch {epoch}/{epochs}, step {self.step}; training stopped, {kept} "
            "(try a smaller lr, or check the features and loss terms)",
        )
        return error


def check_finite_losses(losses: dict[str, torch.Tensor], step: int) -> None:
    """Raise naming the first non-finite term of ``losses`` (``total`` last: it is their sum)."""
    values = {name: float(value.detach()) for name, value in losses.items()}
    for name in [n for n in values if n != "total"] + ["total"]:
        if name in values and not math.isfinite(values[name]):
            what = "the total loss" if name == "total" else f"loss term {name!r}"
            raise NonFiniteLossError(what, values[name], step)


def check_finite_gradients(model: torch.nn.Module, step: int) -> None:
    """Raise naming the first parameter whose gradient holds a NaN/inf (before the optimizer uses it)."""
    grads = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    if not grads:
        return
    finite = torch.stack([torch.isfinite(g).all() for _, g in grads])
    if bool(finite.all()):
        return
    name, grad = grads[int((~finite).nonzero()[0])]
    name = name.removeprefix("module.")  # DistributedDataParallel's wrapper
    bad = grad[~torch.isfinite(grad)].reshape(-1)[0]
    raise NonFiniteLossError(f"the gradient of parameter {name!r}", float(bad), step)


def check_fresh_out_dir(out_dir: Path) -> None:
    """Refuse to start a new run in a directory holding another run's checkpoints."""
    if not out_dir.is_dir():
        return
    found = sorted(p.name for p in out_dir.glob("epoch_*.json"))
    if found:
        raise FileExistsError(
            f"{out_dir}: holds checkpoints of an earlier run ({found[-1]}); resume it (--resume / resume=True) "
            "or choose another output directory"
        )


def run_identity(config: dict[str, Any], dataset: str, split: str) -> dict[str, Any]:
    """What must stay the same for a run to be resumed: dataset, split and the recipe (JSON form)."""
    recipe = {k: v for k, v in config.items() if k not in RESUMABLE_CHANGES}
    return json.loads(json.dumps({"dataset": dataset, "split": split, "config": recipe}))


def check_same_run(path: Path, meta: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse to resume from ``meta`` (a checkpoint's JSON) when its run differs from ``expected`` (:func:`run_identity`)."""
    saved = run_identity(meta.get("config", {}), meta.get("dataset"), meta.get("split"))
    for key in ("dataset", "split"):
        if saved[key] != expected[key]:
            raise ValueError(f"{path}: cannot resume, the checkpoint was trained on {key} {saved[key]!r}, not {expected[key]!r}")
    for key in sorted(set(saved["config"]) | set(expected["config"])):
        old, new = saved["config"].get(key), expected["config"].get(key)
        if old != new:
            raise ValueError(
                f"{path}: cannot resume, config {key} is {old!r} in the checkpoint and {new!r} now "
                f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
            )



