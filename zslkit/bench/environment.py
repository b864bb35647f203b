"""Where and with what a benchmark ran: software versions and the compute device, for the result files."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["environment"]

_PACKAGES = ("zslkit", "torch", "numpy", "scipy", "scikit-learn", "timm")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(threads: int | None = None) -> dict[str, Any]:
    """Python and package versions, platform, CPU, the cores this process may use, the training threads
    (``threads``, else the machine's choice, :func:`zslkit.threads.thread_count`) and CUDA device (if any)."""
    import torch

    from zslkit.threads import available_cores, thread_count

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in _PACKAGES},
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "cores_available": available_cores(),
        "torch_threads": thread_count(threads),
        "device": f"cuda: {cuda}" if cuda else "cpu",
    }
