"""The ``csv`` logger (the default): plain files, the CSV/JSON history the trainer writes beside its checkpoints.

Under ``out_dir/csv/<run>/``: ``config.json`` (the recipe and options), ``history.csv`` and
``history.json`` (one row per epoch, ``epoch`` first, as in a training's ``history.csv``),
``summary.json``, ``<table>.md`` and ``<table>.csv`` for each table, and the PNGs copied in.
Every file is rewritten whole (atomically) at each call, so a run stopped at any point leaves
readable files.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zslkit.atomic import write_atomic, write_csv_atomic, write_json_atomic
from zslkit.loggers.base import run_folder
from zslkit.registry import register

__all__ = ["CSVLogger", "write_history"]


def write_history(folder: Path, history: list[dict[str, Any]]) -> None:
    """``history.csv`` and ``history.json`` of ``history`` (one dict per epoch) in ``folder``: the trainer's format."""
    write_csv_atomic(history, folder / "history.csv")
    write_json_atomic(folder / "history.json", history, indent=2, default=str)


@register("logger", "csv")
class CSVLogger:
    """Plain CSV/JSON files under ``out_dir/csv/<run>/`` (see the module)."""

    def __init__(self, *, out_dir: str | Path, run: str, group: str | None = None) -> None:
        self.folder = run_folder(out_dir, "csv", run)
        self.history: list[dict[str, Any]] = []

    def log_config(self, config: Mapping[str, Any]) -> None:
        write_json_atomic(self.folder / "config.json", dict(config), indent=2, default=str)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self.history.append({"epoch": step, **{k: v for k, v in metrics.items() if k != "epoch"}})
        write_history(self.folder, self.history)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.folder / "summary.json", dict(summary), indent=2, default=str)

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None:
        write_csv_atomic(rows, self.folder / f"{name}.csv")
        write_atomic(self.folder / f"{name}.md", lambda tmp: tmp.write_text(markdown + "\n"))

    def log_image(self, name: str, path: Path) -> None:
        target = self.folder / f"{name}{Path(path).suffix}"
        if Path(path).resolve() != target.resolve():
            write_atomic(target, lambda tmp: shutil.copyfile(path, tmp))

    def close(self) -> None:
        pass
