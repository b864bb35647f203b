"""Per-cell result cache: a restarted benchmark reuses every cell that already finished.

A cell is one (dataset, case, protocol, seed) with its settings; its file name
carries a hash of everything that changes its numbers, so changing an option
or the grid reruns it, while an interrupted run picks up where it stopped.
A cached cell also records the code that computed it (``code``: a digest of
every package whose components it used, :mod:`zslkit.bench.code`); it is reused
only while that code is unchanged. Files are written atomically (temporary
file, then rename): a cell is either complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from zslkit.atomic import write_json_atomic
from zslkit.bench.code import CodeDigests

__all__ = ["CellCache", "plain", "settings_hash"]

_log = logging.getLogger("zslkit.bench")


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
    """JSON files under ``directory`` (``None``: cache nothing).

    ``recompute``: read nothing (every cell is computed again and its file replaced).
    ``digests``: the run's :class:`~zslkit.bench.code.CodeDigests`, against which
    :meth:`fetch` checks a cached cell's ``code``. It counts what it reused and why
    it did not; :meth:`report` logs it.
    """

    def __init__(self, directory: str | Path | None, recompute: bool = False, digests: CodeDigests | None = None):
        self.directory = Path(directory) if directory is not None else None
        self.recompute = recompute
        self.digests = digests or CodeDigests()
        self.reused = 0
        self.computed = 0
        self.stale = 0  # cached cells found, computed with other code
        self.changed: set[str] = set()  # the packages whose code changed

    def fetch(self, path: Path | None) -> dict[str, Any] | None:
        """The cached cell at ``path`` when it may be reused (present, readable, same code), else ``None``."""
        if self.recompute:
            return None
        cell = self.load(path)
        if cell is None:
            return None
        stale = self.digests.stale(cell.get("code"))
        if stale:
            self.stale += 1
            self.changed.update(stale)
            _log.debug("%s: computed with other code (%s); computing it again", path, ", ".join(stale))
            return None
        self.reused += 1
        return cell

    def report(self) -> None:
        """Log (INFO) how many cells were reused and from where, and how many were computed and why."""
        if self.directory is None:
            _log.info("computed %d cells (no cache: nothing read or written)", self.computed)
            return
        parts = [f"reused {self.reused} cached cell{'s' if self.reused != 1 else ''} from {self.directory}"]
        if self.reused:
            parts[0] += " (same settings and code; --recompute computes them again)"
        if self.recompute:
            parts = [f"recomputed every cell (--recompute); the cache in {self.directory} is refreshed"]
        if self.stale:
            parts.append(f"{self.stale} cached cell{'s were' if self.stale != 1 else ' was'} computed with other "
                         f"code ({', '.join(sorted(self.changed))} changed) and computed again")
        fresh = self.computed - self.stale
        if fresh > 0 and not self.recompute:
            parts.append(f"computed {fresh} new cell{'s' if fresh != 1 else ''}")
        _log.info("; ".join(parts))

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
