"""Data parallelism on ``torch.distributed``: the process group, ranks, and gathering rows.

``torchrun --nproc-per-node N -m zslkit train ...`` starts ``N`` processes with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their
environment. :func:`init` (or the :func:`process_group` context manager) joins the
group they describe: NCCL when the processes train on CUDA, gloo on CPU. Without
torchrun (``WORLD_SIZE`` unset or 1) nothing happens and every helper here answers
for a single process: rank 0 of a world of 1.

:func:`all_gather_rows` concatenates a ``(n_r, ...)`` tensor of every rank into
``(sum_r n_r, ...)`` in rank order, on every rank, and is differentiable: the
gradient reaching rank ``r``'s rows is the sum over ranks of the gradient of their
copy of those rows (the adjoint of the gather). The training loop uses it to
compute every loss on the whole global batch (see ``docs/distributed.md``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "all_gather_rows",
    "backend_for",
    "barrier",
    "broadcast_module",
    "gather_array",
    "init",
    "is_distributed",
    "is_main",
    "launched_world_size",
    "local_rank",
    "process_group",
    "rank",
    "rank_device",
    "shard_counts",
    "shard_range",
    "teardown",
    "world_size",
]

_TORCHRUN_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, found {value!r}") from None


def launched_world_size() -> int:
    """``WORLD_SIZE`` from the environment (set by torchrun); 1 when unset."""
    return _env_int("WORLD_SIZE", 1)


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank on this node: ``LOCAL_RANK`` (set by torchrun), else :func:`rank`."""
    return _env_int("LOCAL_RANK", rank())


def is_main() -> bool:
    """True on rank 0, the process that writes files and prints."""
    return rank() == 0


def backend_for(device: str | torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` for everything else."""
    kind = device if isinstance(device, str) else device.type
    return "nccl" if kind in {"cuda", "auto"} and torch.cuda.is_available() else "gloo"


def init(device: str | torch.device = "cpu", backend: str | None = None) -> bool:
    """Join the process group torchrun's environment describes; returns True if this call created it.

    Does nothing (returns False) when ``WORLD_SIZE`` is unset or 1, or a group already
    exists. ``backend`` defaults to :func:`backend_for` ``(device)``; with NCCL each
    process takes GPU ``LOCAL_RANK``.
    """
    if dist.is_initialized() or launched_world_size() <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={launched_world_size()} but {', '.join(missing)} unset: start the processes with "
            "torchrun (or set RANK, MASTER_ADDR and MASTER_PORT yourself)"
        )
    backend = backend or backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, init_method="env://")
    return True


#: seconds :func:`teardown` leaves the GIL free after leaving the group (see there)
DRAIN_SECONDS = 0.1


def teardown(synchronize: bool = False) -> None:
    """Leave the process group (if any).

    ``synchronize=True`` (how :func:`process_group` leaves on a normal exit) first waits
    at a barrier for every rank, and after leaving sleeps :data:`DRAIN_SECONDS` with the
    GIL free. Why: gloo runs collectives on its own worker threads, and a collective
    issued during backward (DDP's gradient all-reduce, the adjoint of
    :func:`all_gather_rows`) holds a Python object, the context torch's autograd stashes
    for the backward pass. The worker thread that drops the finished collective last
    needs the GIL to free that object; if the interpreter is already finalising, the
    thread is stopped inside a C++ destructor and the process aborts with "terminate
    called without an active exception" (torch 2.14.1: 3 of 25 two-process jobs on a busy
    2-core machine, none of 25 with the barrier and the pause; ``benchmarks/ddp_exit.py``).
    The barrier makes every earlier collective complete on every rank; the pause lets the
    workers drop them. After an exception nothing waits: the other ranks may never reach
    a barrier.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if synchronize and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()
    if synchronize:
        time.sleep(DRAIN_SECONDS)


@contextmanager
def process_group(device: str | torch.device = "cpu", backend: str | None = None) -> Iterator[None]:
    """``with process_group("cuda"): ...``: :func:`init` on entry, :func:`teardown` on exit if it created the group.

    A normal exit synchronises the ranks first (``teardown(synchronize=True)``); an exit by
    exception leaves at once.
    """
    created = init(device, backend)
    try:
        yield
    except BaseException:
        if created:
            teardown()
        raise
    if created:
        teardown(synchronize=True)


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    if is_distributed():
        dist.barrier()


def broadcast_module(module: torch.nn.Module) -> torch.nn.Module:
    """Give every rank rank 0's parameters and buffers (in place; no-op outside a process group)."""
    if is_distributed():
        with torch.no_grad():
            for tensor in (*module.parameters(), *module.buffers()):
                dist.broadcast(tensor.data, src=0)
    return module


def rank_device(device: torch.device) -> torch.device:
    """The device this rank uses: under a process group a bare ``cuda`` becomes ``cuda:LOCAL_RANK``.

    An explicit ``cuda:N`` with more than one process is refused (every process would
    share GPU ``N``); pick GPUs with ``CUDA_VISIBLE_DEVICES`` instead.
    """
    if device.type != "cuda" or not is_distributed():
        return device
    if device.index is not None:
        raise ValueError(
            f"device {str(device)!r} with {world_size()} processes would put them all on one GPU; use device 'cuda' "
            "(each process takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES"
        )
    return torch.device("cuda", local_rank())


def shard_counts(total: int, world_size: int) -> list[int]:
    """Items of each rank when ``total`` items are split in contiguous near-equal parts, larger parts first."""
    base, extra = divmod(total, world_size)
    return [base + (r < extra) for r in range(world_size)]


def shard_range(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s contiguous part of ``total`` items (``np.array_split`` bounds)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    counts = shard_counts(total, world_size)
    start = sum(counts[:rank])
    return start, start + counts[rank]


def _row_counts(rows: int, device: torch.device) -> list[int]:
    mine = torch.tensor([rows], dtype=torch.long, device=device)
    counts = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(counts, mine)
    return [int(c) for c in counts]


def _gather(tensor: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Concatenate every rank's ``(counts[r], ...)`` tensor (padded to the longest for the collective)."""
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


class _GatherRows(torch.autograd.Function):
    """Forward: every rank's rows, concatenated. Backward: the summed gradient of this rank's rows."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, counts: list[int]) -> torch.Tensor:  # type: ignore[override]
        ctx.counts = counts
        return _gather(tensor.detach(), counts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's copy of the rows contributed to its loss
        start = sum(ctx.counts[: rank()])
        return grad[start : start + ctx.counts[rank()]], None


def all_gather_rows(tensor: torch.Tensor, counts: Sequence[int] | None = None) -> torch.Tensor:
    """``(n_r, ...)`` on rank ``r`` -> ``(sum_r n_r, ...)``, rank 0's rows first, on every rank.

    Differentiable (see the module docstring). ``counts`` (every rank's ``n_r``) skips
    the exchange of row counts when the caller knows them. Outside a process group
    ``tensor`` is returned unchanged.
    """
    if not is_distributed():
        return tensor
    counts = list(counts) if counts is not None else _row_counts(tensor.shape[0], tensor.device)
    if len(counts) != world_size() or counts[rank()] != tensor.shape[0]:
        raise ValueError(f"rank {rank()}: counts {counts} do not match {world_size()} ranks with {tensor.shape[0]} rows here")
    if tensor.requires_grad:
        return _GatherRows.apply(tensor, counts)
    return _gather(tensor, counts)


def gather_array(array: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Every rank's ``(n_r, ...)`` numpy array concatenated in rank order (a copy of ``array`` outside a group).

    ``device`` is where the collective runs (a CUDA device under NCCL).
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return all_gather_rows(tensor).cpu().numpy()
