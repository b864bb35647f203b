"""The ``wandb`` logger: one Weights & Biases run per zslkit run.

Files go under ``out_dir/wandb``. The mode is the ``mode`` option, else ``WANDB_MODE``, else
``offline``: an offline run needs no account nor network, and ``wandb sync OUT/wandb/offline-run-*``
uploads it later; set ``WANDB_MODE=online`` (after ``wandb login``) to log live. Project: the
``project`` option, else ``WANDB_PROJECT``, else ``zslkit``; the run is named ``run``, in group
``group``. The config is the run's config; epoch numbers are logged at step = epoch; the summary goes
to the run's summary; tables are ``wandb.Table`` s, PNGs ``wandb.Image`` s. Needs
``pip install 'zslkit[wandb]'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zslkit.loggers.base import import_extra, scalars
from zslkit.registry import register

__all__ = ["WandbLogger"]


@register("logger", "wandb")
class WandbLogger:
    """A wandb run (see the module)."""

    def __init__(self, *, out_dir: str | Path, run: str, group: str | None = None, project: str | None = None,
                 mode: str | None = None) -> None:
        self.wandb = import_extra("wandb", "wandb", "wandb")
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.run = self.wandb.init(dir=str(folder), project=project or os.environ.get("WANDB_PROJECT") or "zslkit",
                                   name=run, group=group, mode=mode or os.environ.get("WANDB_MODE") or "offline",
                                   reinit="create_new", settings=self.wandb.Settings(console="off", silent=True))
        self.step = 0  # the last epoch logged: tables and images join its row

    def log_config(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(json.loads(json.dumps(dict(config), default=str)), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self.step = max(self.step, step)
        self.run.log(scalars(metrics), step=step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self.run.summary.update(json.loads(json.dumps(dict(summary), default=str)))

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        data = [[_cell(row.get(k)) for k in columns] for row in rows]
        self.run.log({name: self.wandb.Table(columns=columns, data=data)}, step=self.step)

    def log_image(self, name: str, path: Path) -> None:
        self.run.log({name: self.wandb.Image(str(path))}, step=self.step)

    def close(self) -> None:
        self.run.finish()


def _cell(value: Any) -> Any:
    """A table cell wandb can store: numbers and text as they are, anything else as JSON text."""
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, default=str)
