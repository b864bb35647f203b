"""Metric loggers (kind ``logger``): where a run's recipe, per-epoch numbers, outcome, table and plots go.

Built in: ``csv`` (the default: plain CSV/JSON files), ``tensorboard`` (event files), ``mlflow`` (a
local file store or any tracking URI) and ``wandb`` (offline unless told otherwise). Choose them with
``zslkit train/bench --logger csv,tensorboard`` or a recipe's ``loggers: [tensorboard]``; a plugin
registers its own as ``registrar.register("logger", name, factory)``. The contract
(:class:`~zslkit.loggers.base.MetricLogger`) and when each method is called: :mod:`zslkit.loggers.base`;
the user's guide: ``docs/tracking.md``.
"""

from zslkit.loggers.base import LoggerSet, MetricLogger, build_loggers, flat_config, scalars
from zslkit.loggers.csv_history import CSVLogger, write_history
from zslkit.loggers.mlflow_tracking import MLflowLogger
from zslkit.loggers.tensorboard_events import TensorBoardLogger
from zslkit.loggers.wandb_runs import WandbLogger

__all__ = ["CSVLogger", "LoggerSet", "MLflowLogger", "MetricLogger", "TensorBoardLogger", "WandbLogger",
           "build_loggers", "flat_config", "scalars", "write_history"]
