"""What the adapter-alignment terms share: the records of a model's adapters in ``ModelOutput.extras``.

An adapter of a model that owns its backbone records per-image tensors under its entry
(:meth:`zslkit.adapters.TokenState.record`); the model puts them in ``output.extras[entry]``.
:class:`RecordL1` is the base of the terms that pull each such record towards a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RecordL1", "adapter_records"]


def adapter_records(output, key: str, adapters: Sequence[str] | None, term: str) -> list[torch.Tensor]:
    """The tensors recorded as ``key`` by the adapter entries ``adapters`` (every entry that recorded one when ``None``).

    Refuses a named entry without the record, and ``None`` when no entry recorded one (the adapters record
    in training only: the term belongs to training losses).
    """
    if adapters is None:
        found = [extras[key] for extras in output.extras.values() if key in extras]
        if not found:
            raise ValueError(f"loss {term!r}: no adapter recorded {key!r} in this output (extras: {sorted(output.extras)}); "
                             "it needs adapters such as 'semantic_query', which record it in training (labels given)")
        return found
    missing = [entry for entry in adapters if key not in output.extras.get(entry, {})]
    if missing:
        raise ValueError(f"loss {term!r}: adapter entry {missing[0]!r} recorded no {key!r} "
                         f"(entries with records: {sorted(output.extras)}); it records in training only")
    return [output.extras[entry][key] for entry in adapters]


class RecordL1(nn.Module):
    """``sum_e mean |record_e - target|`` over the adapter entries ``adapters`` (default: every entry with the record).

    Subclasses name the ``record`` and give the ``target`` ``(B, ...)``.
    """

    #: the key adapters record the compared tensor under
    record: ClassVar[str] = ""

    def __init__(self, adapters: Sequence[str] | None = None) -> None:
        super().__init__()
        self.adapters = None if adapters is None else list(adapters)

    def target(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        target = self.target(output, labels, classes)
        name = getattr(self, "component_name", type(self).__name__)
        found = adapter_records(output, self.record, self.adapters, name)
        return torch.stack([F.l1_loss(r, target.to(r.dtype)) for r in found]).sum()
