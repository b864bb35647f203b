"""The ``mlflow`` logger: one MLflow run per zslkit run, through ``mlflow.MlflowClient`` (no global state).

Tracking URI: the ``tracking_uri`` option, else the ``MLFLOW_TRACKING_URI`` environment variable, else a
local store in one file, ``out_dir/mlflow.db`` (SQLite, MLflow's recommended local store; artifacts in
``out_dir/mlartifacts``; ``mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db``). Experiment: the
``experiment`` option, else ``MLFLOW_EXPERIMENT_NAME``, else ``zslkit``; the run is named ``run`` and tagged
``zslkit.group``. The config becomes the run's parameters (nested keys joined with dots) and the artifact
``config.json``; epoch numbers are metrics at step = epoch; the summary's numbers are metrics named
``summary.<key>`` and the whole summary the artifact ``summary.json``; tables are ``<name>.md`` and
``<name>.json`` artifacts, PNGs go under ``images/``. Needs ``pip install 'zslkit[mlflow]'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zslkit.loggers.base import flat_config, import_extra, scalars
from zslkit.registry import register

__all__ = ["MLflowLogger"]

#: MLflow's longest parameter value (longer ones are cut, ending in "...")
_PARAM_LENGTH = 6000


@register("logger", "mlflow")
class MLflowLogger:
    """A run in the tracking store (see the module)."""

    def __init__(self, *, out_dir: str | Path, run: str, group: str | None = None, tracking_uri: str | None = None,
                 experiment: str | None = None) -> None:
        mlflow = import_extra("mlflow", "mlflow", "mlflow")
        self.entities = import_extra("mlflow.entities", "mlflow", "mlflow")
        local = Path(out_dir).resolve()
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{local / 'mlflow.db'}"
        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.tracking_uri = uri
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "zslkit"
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found is not None else \
            self.client.create_experiment(name, artifact_location=(local / "mlartifacts").as_uri())
        tags = {"zslkit.group": group} if group else {}
        self.run_id = self.client.create_run(experiment_id, run_name=run, tags=tags).info.run_id

    def _metrics(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        now = int(time.time() * 1000)
        metrics = [self.entities.Metric(f"{prefix}{k}", v, now, step) for k, v in scalars(values).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_config(self, config: Mapping[str, Any]) -> None:
        params = [self.entities.Param(k, _cut(str(v))) for k, v in flat_config(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])
        self.client.log_dict(self.run_id, dict(config), "config.json")

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self._metrics(metrics, step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self._metrics(summary, 0, "summary.")
        self.client.log_dict(self.run_id, dict(summary), "summary.json")

    def log_table(self, name: str, rows: list[dict[str, Any]], markdown: str) -> None:
        self.client.log_text(self.run_id, markdown + "\n", f"{name}.md")
        self.client.log_dict(self.run_id, {"rows": rows}, f"{name}.json")

    def log_image(self, name: str, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), "images")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _cut(text: str) -> str:
    return text if len(text) <= _PARAM_LENGTH else text[: _PARAM_LENGTH - 3] + "..."
