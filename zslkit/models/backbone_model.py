"""End-to-end models: an image backbone feeding a region-feature head (MSDN, DAZLE, ...).

``BackboneModel(backbone, head)`` maps images ``(B, 3, S, S)`` through any ``nn.Module``
backbone to a feature map ``(B, C, H, W)`` and scores it with ``head``, a model such
as :class:`~zslkit.models.msdn.MSDN` built with ``feature_dim=C``. The backbone may
return the map itself or a list/tuple of maps whose last is used (what timm's
``features_only=True`` models return).

BatchNorm layers of the backbone (``batchnorm``):

* ``"frozen"`` (default): kept in eval mode, normalising with their running
  statistics (their affine weights still train). The usual choice when fine-tuning
  with small batches, and the one under which data-parallel training equals
  single-process training with the same global batch.
* ``"train"``: batch statistics of each forward; under data parallelism these are
  the statistics of each process's share of the batch, so results depend on the
  number of processes.
* ``"sync"``: :class:`torch.nn.SyncBatchNorm`, batch statistics over all processes
  (CUDA only; a single process behaves like ``"train"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from zslkit.contracts import registered_name
from zslkit.datasets.checks import sha256_file
from zslkit.models.output import ModelOutput

__all__ = ["BATCHNORM_MODES", "BackboneModel", "backbone_channels", "describe_backbone", "feature_map"]

BATCHNORM_MODES: tuple[str, ...] = ("frozen", "train", "sync")


def feature_map(output: Any) -> torch.Tensor:
    """The ``(B, C, H, W)`` map of a backbone's output: the tensor, or the last of a list/tuple of maps."""
    if isinstance(output, (list, tuple)) and output:
        output = output[-1]
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"the backbone must return a (B, C, H, W) feature map (or a list of them); found {found}")
    return output


def backbone_channels(backbone: nn.Module, sample: torch.Tensor | None = None) -> int:
    """``C`` of the backbone's feature map: its ``feature_dim``, timm's ``feature_info``, or one forward of ``sample``.

    ``sample`` is a ``(1, 3, S, S)`` batch, run in eval mode without gradients.
    """
    if getattr(backbone, "feature_dim", None) is not None:
        return int(backbone.feature_dim)
    info = getattr(backbone, "feature_info", None)
    if hasattr(info, "channels"):
        return int(info.channels()[-1])
    if sample is None:
        raise ValueError(
            f"cannot tell the channels of backbone {type(backbone).__name__}: it has no feature_dim or feature_info; "
            "give feature_dim or a sample image"
        )
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        channels = feature_map(backbone(sample)).shape[1]
    backbone.train(was_training)
    return int(channels)


def describe_backbone(backbone: nn.Module, *, weights_checksum: bool = False) -> dict[str, Any]:
    """JSON-ready description of a backbone, the one used by checkpoints and feature stores.

    ``backbone.describe()`` if it has one, else its class. With ``weights_checksum``
    (feature stores), a ``weights`` file the backbone was loaded from is recorded by
    name with its SHA-256 (``weights``, ``weights_sha256``).
    """
    if hasattr(backbone, "describe"):
        described = dict(backbone.describe())
    else:
        kind = type(backbone)
        described = {"class": f"{kind.__module__}.{kind.__qualname__}"}
    weights = getattr(backbone, "weights", None)
    if weights_checksum and weights is not None:
        described.update(weights=Path(weights).name, weights_sha256=sha256_file(weights))
    return described


class BackboneModel(nn.Module):
    """``images -> backbone -> (B, C, H, W) -> head``, trained end to end.

    Args:
        backbone: images ``(B, 3, S, S)`` -> ``(B, C, H, W)`` (or a list of maps).
        head: a region-feature model (``forward(features)`` -> :class:`ModelOutput`,
            ``loss(output, labels)``, ``classes``), built with ``feature_dim=C``.
        batchnorm: one of :data:`BATCHNORM_MODES` (see the module docstring).

    The head's attributes a training loop or checkpoint needs (``classes``,
    ``loss_weights``, its registered name...) are forwarded; ``options`` adds the
    backbone's description and the BatchNorm mode to the head's.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, batchnorm: str = "frozen"):
        super().__init__()
        if batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
        for needed in ("loss", "classes"):
            if not hasattr(head, needed):
                raise TypeError(f"head {type(head).__name__} has no {needed!r}: use a zslkit model such as msdn or dazle")
        self.batchnorm = batchnorm
        self.backbone = nn.SyncBatchNorm.convert_sync_batchnorm(backbone) if batchnorm == "sync" else backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> ModelOutput:
        """Score images ``(B, 3, S, S)``; returns the head's :class:`ModelOutput`."""
        return self.head(feature_map(self.backbone(images)))

    def loss(self, output: ModelOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head's loss terms (see :meth:`AttentionZSLModel.loss`)."""
        return self.head.loss(output, labels)

    def train(self, mode: bool = True) -> BackboneModel:
        super().train(mode)
        if self.batchnorm == "frozen":
            for module in self.backbone.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    # -------------------------------------------------- forwarded to the head
    @property
    def classes(self):
        return self.head.classes

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def loss_weights(self) -> dict[str, float]:
        return self.head.loss_weights

    @property
    def needs_maps(self) -> bool:
        return getattr(self.head, "needs_maps", True)

    @property
    def component_name(self) -> str:
        """The head's registered name (:func:`zslkit.contracts.registered_name`): what a checkpoint rebuilds."""
        return registered_name(self.head)

    @property
    def model_name(self) -> str:
        """Same as :attr:`component_name`."""
        return self.component_name

    @property
    def options(self) -> dict[str, Any]:
        return {**self.head.options, "backbone": describe_backbone(self.backbone), "batchnorm": self.batchnorm}

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        self.head.set_loss_weights(weights)

    def extra_repr(self) -> str:
        return f"batchnorm={self.batchnorm!r}"
