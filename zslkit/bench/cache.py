"""Per-cell result cache: a restarted benchmark reuses every cell that already finished.

A cell is one (dataset, case, protocol, seed) with its settings; its file name
carries a hash of everything that changes its numbers, so changing an option
or the grid reruns it, while an interrupted run picks up where it stopped.
Files are written atomically (temporary file, then rename): a cell is either
complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from zslkit.atomic import write_json_atomic

__all__ = ["CellCache", "plain", "settings_hash"]


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    return repr(value)


def plain(data: Any) -> Any:
    """``data`` as plain JSON types (numbers, strings, lists, dicts), as it will read back from the cache."""
    return json.loads(json.dumps(data, default=_default))


def settings_hash(settings: dict[str, Any]) -> str:
    """12 hex digits identifying ``settings`` (JSON with sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=_default)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text)


class CellCache:
    """JSON files under ``directory`` (``None``: cache nothing)."""

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory is not None else None

    def path(self, dataset: str, case: str, protocol: str, seed: int, digest: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{_slug(dataset)}__{_slug(case)}__{_slug(protocol)}__seed{seed}__{digest}.json"

    def load(self, path: Path | None) -> dict[str, Any] | None:
        """The cached cell, or ``None`` when absent or unreadable (then it is recomputed)."""
        if path is None or not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, path: Path | None, cell: dict[str, Any]) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cell, default=_default)
