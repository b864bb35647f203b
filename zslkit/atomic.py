"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it in.

A reader (or a process resumed after a kill) sees either the old file or the new
one, never a half-written file under the final name. Used by checkpoints, the
feature store, training logs and the benchmark cache.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["remove_stale_temporaries", "write_atomic", "write_csv_atomic", "write_json_atomic"]


def write_atomic(path: Path, write: Callable[[Path], None], *, fsync: bool = False) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it onto ``path``.

    ``fsync=True`` flushes the temporary file to disk before the move (for records
    that must survive a power cut, like the store's progress). A failed write
    leaves ``path`` untouched and removes the temporary file. The file gets the mode
    any file the user creates gets (``0666`` less the umask, as ``open`` gives), whatever
    mode ``write`` created it with.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # some writers (safetensors) create 0600 files: every file gets one mode
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, content: Any, *, fsync: bool = False, indent: int = 1, default=None) -> None:
    """:func:`write_atomic` of ``json.dumps(content)``."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(content, indent=indent, default=default)), fsync=fsync)


def write_csv_atomic(rows: list[dict[str, Any]], path: Path) -> Path:
    """One CSV line per row, columns in order of first appearance, nested values as JSON strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()})

    write_atomic(path, write)
    return path


def remove_stale_temporaries(directory: Path, pattern: str = ".*.tmp") -> None:
    """Delete the temporary files a killed writer left in ``directory`` (``.name.<pid>.tmp``).

    Call it only when no other writer can be active there (resuming, finishing).
    """
    for tmp in Path(directory).glob(pattern):
        tmp.unlink(missing_ok=True)

