"""CPU threads: the one place that decides how many a run uses.

A recipe describes a method, never a machine: the thread count comes from the
machine or from the user (``--threads N`` on the command line, ``num_threads`` of
a :class:`~zslkit.training.TrainConfig` built in Python). The machine's answer
is the cores this process may run on (``os.sched_getaffinity``) less those other
jobs keep busy (the one-minute load average when the process first asks: on a
2-core machine with one busy job beside it, one thread, as two threads there
wait on each other), at least one. Processes that run side by side on one
machine (``torchrun --nproc-per-node N``: ``LOCAL_WORLD_SIZE``) share those
cores rather than each taking all of them.

Small numerical work (metrics, the pooled-feature methods) runs on one thread
(:func:`single_threaded`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["available_cores", "free_cores", "single_threaded", "thread_count", "using_threads"]

_log = logging.getLogger(__name__)
_controller = None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@functools.cache
def free_cores() -> int:
    """:func:`available_cores` less the load of other jobs (one-minute load average, rounded), at least one.

    Measured once per process, when first asked (before this process's own work adds to the load).
    """
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows)
        load = 0.0
    free = max(1, min(cores, cores - round(load)))
    _log.info("%d of the %d cores this process may use are free (load average %.1f): %d thread%s by default "
              "(--threads N chooses)", free, cores, load, free, "" if free == 1 else "s")
    return free


def _side_by_side() -> int:
    """How many processes of this job share the machine (``LOCAL_WORLD_SIZE``, set by torchrun; else 1)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def thread_count(requested: int | None = None, sharing: int | None = None) -> int:
    """The threads a run uses: ``requested`` (the user's choice) when given and positive, else its share
    of :func:`free_cores` among ``sharing`` processes running side by side (default: torchrun's
    ``LOCAL_WORLD_SIZE``, else 1), at least one."""
    if requested is not None and requested < 0:
        raise ValueError(f"threads must be a positive number (or 0: the machine's cores), got {requested}")
    if requested:
        return int(requested)
    return max(1, free_cores() // (sharing or _side_by_side()))


@contextmanager
def using_threads(requested: int | None = None) -> Iterator[int]:
    """PyTorch's CPU thread count set to :func:`thread_count` (``requested``) inside the block, restored after."""
    before = torch.get_num_threads()
    count = thread_count(requested)
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS on one thread inside the block.

    Metrics and the pooled-feature methods work on small matrices, where extra
    threads only add synchronisation (several times slower on a busy 2-core machine).
    """
    global _controller
    if _controller is None:  # finding the BLAS libraries is slow: once per process
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _controller.limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)
