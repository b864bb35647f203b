"""What every metric logger (kind ``logger``) does, and the helpers they share.

A logger is built as ``zslkit.create("logger", name, out_dir=..., run=..., group=...)`` for one run
(one training; one benchmark cell) and then called, in this order:

* ``log_config(config)``: the run's recipe and options (a nested mapping);
* ``log_metrics(metrics, step)``: one epoch's numbers (``loss``, ``loss_<term>``, ``lr``, ``val_H``...),
  ``step`` the epoch counted from 1; called once per epoch, steps increasing;
* ``log_summary(summary)``: the run's outcome (chosen epoch, calibration gamma, T1/U/S/H/AUSUC);
* ``log_table(name, rows, markdown)``: a final table, as rows and as Markdown;
* ``log_image(name, path)``: a PNG already written to ``path``;
* ``close()``: finish the run (files flushed, the tracker's run ended).

``out_dir``: the folder of the experiment, under which each logger keeps its own files
(``csv/<run>``, ``tensorboard/<run>``, ``mlruns``, ``wandb``); ``run``: the run's name, unique in
``out_dir``; ``group``: what the runs of one command share (a benchmark's cells), or ``None``.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

__all__ = ["LoggerSet", "MetricLogger", "build_loggers", "flat_config", "import_extra", "run_folder", "scalars"]


@runtime_checkable
class MetricLogger(Protocol):
    """The methods a logger has (see the module's docstring for when each is called)."""

    def log_config(self, config: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None: ...

    def log_summary(self, summary: Mapping[str, Any]) -> None: ...

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None: ...

    def log_image(self, name: str, path: Path) -> None: ...

    def close(self) -> None: ...


def import_extra(module: str, logger: str, extra: str) -> ModuleType:
    """``import module``, or an ImportError in one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"logger {logger!r} needs the {module} package, which is not installed: "
                          f"pip install 'zslkit[{extra}]'") from None


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` (not booleans, not ``epoch``), as floats: what a tracker plots."""
    return {k: float(v) for k, v in values.items() if k != "epoch" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(float(v))}


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": "[1, 2]"}``: nested keys joined with dots,
    lists and other values that are not str/int/float/bool/None as JSON text (trackers' parameters are flat)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_config(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)) or value is None:
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def run_folder(out_dir: str | Path, logger: str, run: str) -> Path:
    """``out_dir/<logger>/<run>``, created (a run name's ``/`` make sub-folders)."""
    folder = Path(out_dir) / logger / run
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class LoggerSet:
    """Several loggers called as one (each call goes to every logger, in order); ``close`` closes all."""

    def __init__(self, loggers: Iterable[MetricLogger] = ()) -> None:
        self.loggers = list(loggers)

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def __iter__(self):
        return iter(self.loggers)

    def log_config(self, config: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_config(config)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_summary(summary)

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None:
        for logger in self.loggers:
            logger.log_table(name, rows, markdown)

    def log_image(self, name: str, path: Path) -> None:
        for logger in self.loggers:
            logger.log_image(name, Path(path))

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

    def __enter__(self) -> LoggerSet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def build_loggers(names: Iterable[str], out_dir: str | Path, run: str, group: str | None = None) -> LoggerSet:
    """The registered loggers ``names`` (``zslkit list logger``), each built for run ``run`` under ``out_dir``."""
    from zslkit.registry import create

    return LoggerSet(create("logger", name, out_dir=Path(out_dir), run=run, group=group) for name in names)
