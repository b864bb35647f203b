"""Thread limits for small numerical work (metrics, the pooled-feature methods)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded"]

_controller: ThreadpoolController | None = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS on one thread inside the block.

    Metrics and the pooled-feature methods work on small matrices, where extra
    threads only add synchronisation (several times slower on a busy 2-core machine).
    """
    global _controller
    if _controller is None:  # finding the BLAS libraries is slow: once per process
        _controller = ThreadpoolController()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _controller.limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)
