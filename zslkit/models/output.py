"""What a zslkit model returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from zslkit.contracts import ContractError, check_tensor_dict

__all__ = ["ModelOutput", "check_model_output", "map_tensors"]


def map_tensors(value: Any, fn) -> Any:
    """``value`` with ``fn`` applied to every tensor in it (tensors, nested dicts of them, ``None`` kept)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {key: map_tensors(item, fn) for key, item in value.items()}
    return value


@dataclass
class ModelOutput:
    """The result of ``model(features)``.

    Attributes:
        scores: ``(B, K)`` prediction scores (margin included): the weighted sum of
            the branch scores, ``-inf`` for classes that are neither seen nor unseen.
        branch_scores: branch name -> ``(B, K)`` class scores ``y`` of that branch
            (margin included).
        attribute_scores: branch name -> ``(B, I)`` attribute scores ``psi``.
        maps: branch name -> ``(B, I, R)`` attention maps, or ``None`` for blocks
            without one.
        extras: branch name -> the block's per-image quantities, each batch-first
            ``(B, ...)`` (e.g. attribute features); gathered over processes like the scores. A model
            that owns its backbone adds adapter entry -> what the adapter recorded.
        constants: branch name -> the block's image-independent tensors (e.g. attribute
            prototypes ``(I, C)``); identical on every process, never gathered.
        grid: ``(H, W)`` of the region grid when the features came as ``(B, C, H, W)``,
            ``None`` for ``(B, C, R)`` features.
        global_token: ``(B, D)`` the global (CLS) token of a model that owns a token backbone
            (after the backbone's final norm), ``None`` for models without one.
    """

    scores: torch.Tensor
    branch_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    attribute_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    maps: dict[str, torch.Tensor | None] = field(default_factory=dict)
    extras: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    constants: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    grid: tuple[int, int] | None = None
    global_token: torch.Tensor | None = None

    def float(self) -> ModelOutput:
        """The same output with every floating-point tensor in float32 (loss terms run in full precision after
        autocast); one loop over the fields, so a new field needs no edit here."""

        def to_float(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.float() if tensor.is_floating_point() else tensor

        changes = {f.name: map_tensors(getattr(self, f.name), to_float) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **changes)


def check_model_output(output: Any, *, batch: int, num_classes: int, name: str, source: str = "") -> None:
    """A model's forward returns a :class:`ModelOutput` with ``.scores`` ``(B, K)`` and batch-first extras.

    ``source`` (where the model came from) is named in the error.
    """
    where = f"model {name!r}" + (f" ({source})" if source else "")
    if not isinstance(output, ModelOutput):
        raise ContractError(f"{where}: forward must return a zslkit.models.ModelOutput; found {type(output).__name__}")
    if tuple(output.scores.shape) != (batch, num_classes):
        raise ContractError(f"{where}: ModelOutput.scores must be ({batch}, {num_classes}); found {tuple(output.scores.shape)}")
    token = output.global_token
    if token is not None and (not isinstance(token, torch.Tensor) or token.ndim != 2 or token.shape[0] != batch):
        raise ContractError(f"{where}: ModelOutput.global_token must be ({batch}, D) or None; found {getattr(token, 'shape', token)}")
    for branch, extras in output.extras.items():
        check_tensor_dict(extras, batch, f"{where}: .extras[{branch!r}]")
