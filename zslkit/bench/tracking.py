"""A benchmark's runs in the metric loggers (kind ``logger``): one run per cell, and one for the table.

Called once the cells are done and the outputs written (:func:`log_benchmark`), so cells read from the
cache are logged too. Each cell's run (named ``<dataset>/<method>/<protocol>/seed<seed>``, group
``bench``) gets the cell's settings (case, recipe, protocol, seed) as its config; per epoch, the final
training's losses and learning rate (``train_history``) and the protocol's per-epoch metrics (``val_*`` of
the model-selection run under ``validation``, ``test_*`` under ``paper``); as its summary the reported
T1/U/S/H/AUSUC, the calibration gamma, the chosen setting and epoch and the protocol; and its training PNG.
The run ``table`` gets the table (rows and Markdown) and every PNG the benchmark wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zslkit.loggers import build_loggers

__all__ = ["cell_epochs", "cell_run_name", "log_benchmark"]


def cell_run_name(cell: dict[str, Any]) -> str:
    """``synthetic/msdn/validation/seed0``: the cell's run name."""
    return f"{cell['dataset']}/{cell['method']}/{cell['protocol']}/seed{cell['seed']}"


def cell_epochs(cell: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Epoch -> the cell's numbers of that epoch: ``train_history`` merged with the protocol's ``epochs`` log
    (of the chosen setting); entries without an epoch (a method without epochs) are left out."""
    epochs: dict[int, dict[str, Any]] = {}
    for entry in [*cell.get("train_history", []), *cell.get("epochs", [])]:
        if entry.get("epoch") is not None:
            epochs.setdefault(int(entry["epoch"]), {}).update({k: v for k, v in entry.items() if k not in ("epoch", "params")})
    return dict(sorted(epochs.items()))


def _summary(cell: dict[str, Any]) -> dict[str, Any]:
    selected = cell.get("selected", {})
    chosen = selected.get("epoch", selected.get("epoch_H"))
    return {**cell["metrics"], "gamma": cell["gamma"], "protocol": cell["protocol"], "epoch": chosen,
            "selected": selected, "wall_s": cell["wall_s"]}


def log_benchmark(result: Any, names: list[str], out_dir: str | Path, written: list[Path],
                  with_published: bool = True) -> None:
    """Send ``result`` (a :class:`~zslkit.bench.BenchmarkResult`) to the loggers ``names`` under ``out_dir``;
    ``written``: the files :func:`~zslkit.bench.write_outputs` wrote (their PNGs are logged)."""
    images = [Path(p) for p in written if Path(p).suffix == ".png"]
    for cell in result.cells:
        with build_loggers(names, out_dir, cell_run_name(cell), group="bench") as loggers:
            loggers.log_config(cell["settings"])
            for epoch, numbers in cell_epochs(cell).items():
                loggers.log_metrics(numbers, epoch)
            loggers.log_summary(_summary(cell))
            suffix = "" if cell["protocol"] == result.protocol.name else f"_{cell['protocol']}"
            mine = f"training_{cell['dataset']}_{cell['method']}_seed{cell['seed']}{suffix}.png"
            for image in (p for p in images if p.name == mine):
                loggers.log_image("training", image)
    with build_loggers(names, out_dir, "table", group="bench") as loggers:
        loggers.log_config({"protocols": [p.name for p in result.protocols], "datasets": result.datasets,
                            "environment": result.environment})
        loggers.log_table("results", result.rows(), result.table(with_published=with_published))
        for image in images:
            loggers.log_image(image.stem, image)
