"""Guards of the training loop: stop on non-finite numbers, never mix two runs in one directory.

* :func:`check_finite_step` runs every step, between the backward pass and the optimizer
  step: a NaN or inf loss term or gradient raises :class:`NonFiniteLossError` naming the
  term or parameter and the step, so that no non-finite number ever reaches the
  parameters or a checkpoint. The trainer
  adds the epoch and the last good checkpoint to the message.
* :func:`check_fresh_out_dir`: a new run refuses a directory that holds checkpoints
  (a later ``--resume`` would otherwise pick up the old run's epochs).
* :func:`check_same_run`: ``--resume`` refuses a checkpoint of another dataset, split
  or recipe (only :data:`RESUMABLE_CHANGES` may change: ``epochs``, ``device``, ``eval_batch_size``,
  ``num_threads``, ``resident``, ``compile``, ``loggers``).
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
    "check_finite_step",
    "check_fresh_out_dir",
    "check_same_run",
    "remove_stale_temporaries",
    "run_identity",
]

#: Config fields that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES: frozenset[str] = frozenset(
    {"epochs", "device", "eval_batch_size", "num_threads", "resident", "compile", "loggers"}
)


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


def check_finite_step(losses: dict[str, torch.Tensor], model: torch.nn.Module, step: int) -> dict[str, float]:
    """The loss terms as floats, after the backward pass and before the optimizer step.

    Raise :class:`NonFiniteLossError` naming the first non-finite loss term (``total``
    last: it is their sum), else the first parameter whose gradient holds a NaN/inf.
    The loss values and one finite-flag per gradient come to the host in a single
    transfer: one synchronisation per step on a GPU.
    """
    grads = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    values = [value.detach().float().reshape(()) for value in losses.values()]
    flags = [torch.isfinite(grad).all().to(values[0].device, torch.float32) for _, grad in grads]
    fetched = torch.stack(values + flags).tolist()
    numbers = dict(zip(losses, fetched[: len(values)]))
    for name in [n for n in numbers if n != "total"] + ["total"]:
        if name in numbers and not math.isfinite(numbers[name]):
            what = "the total loss" if name == "total" else f"loss term {name!r}"
            raise NonFiniteLossError(what, numbers[name], step)
    for (name, grad), finite in zip(grads, fetched[len(values):]):
        if not finite:
            bad = grad[~torch.isfinite(grad)].reshape(-1)[0]
            raise NonFiniteLossError(f"the gradient of parameter {name.removeprefix('module.')!r}", float(bad), step)
    return numbers


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
    """Refuse to resume from ``meta`` (a checkpoint's JSON) when its run differs from ``expected`` (:func:`run_identity`).

    A field the checkpoint's config does not record (written before the field existed) counts as its default.
    """
    from zslkit.training.config import TrainConfig

    defaults = run_identity(TrainConfig().to_dict(), None, None)["config"]
    saved = run_identity({**defaults, **meta.get("config", {})}, meta.get("dataset"), meta.get("split"))
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



