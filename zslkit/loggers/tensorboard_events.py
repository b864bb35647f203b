"""The ``tensorboard`` logger: TensorBoard event files under ``out_dir/tensorboard/<run>/``.

``tensorboard --logdir OUT/tensorboard`` shows every run of the folder. Epoch numbers are
scalars at step = epoch; the config is a text entry (``config``, as JSON) and the hyper-parameters
tab (``add_hparams``-style summary, with the summary's numbers as its metrics); the summary's numbers
are scalars under ``summary/`` at step 0; tables are text entries (Markdown), PNGs images.
Needs ``pip install 'zslkit[tensorboard]'``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.loggers.base import flat_config, import_extra, run_folder, scalars
from zslkit.registry import register

__all__ = ["TensorBoardLogger"]


@register("logger", "tensorboard")
class TensorBoardLogger:
    """Event files through ``torch.utils.tensorboard.SummaryWriter`` (which needs the tensorboard package)."""

    def __init__(self, *, out_dir: str | Path, run: str, group: str | None = None) -> None:
        import_extra("tensorboard", "tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.folder = run_folder(out_dir, "tensorboard", run)
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self.config: dict[str, Any] = {}

    def log_config(self, config: Mapping[str, Any]) -> None:
        self.config = flat_config(config)
        self.writer.add_text("config", "```json\n" + json.dumps(dict(config), indent=2, default=str) + "\n```", 0)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        for key, value in scalars(metrics).items():
            self.writer.add_scalar(key, value, step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        numbers = scalars(summary)
        for key, value in numbers.items():
            self.writer.add_scalar(f"summary/{key}", value, 0)
        self.writer.add_text("summary", "```json\n" + json.dumps(dict(summary), indent=2, default=str) + "\n```", 0)
        if self.config:
            from torch.utils.tensorboard.summary import hparams

            params = {k: ("" if v is None else v) for k, v in self.config.items()}
            for event in hparams(params, {f"summary/{k}": v for k, v in numbers.items()}):
                self.writer.file_writer.add_summary(event)

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None:
        self.writer.add_text(name, markdown, 0)

    def log_image(self, name: str, path: Path) -> None:
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(name, pixels, 0, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
