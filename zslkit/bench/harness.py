"""The benchmark harness: every (dataset, case, seed) cell under one protocol, cached, tabulated, plotted.

>>> from zslkit.bench import run_benchmark
>>> result = run_benchmark(["synthetic"], ["eszsl", "ale"], protocol="validation", seeds=3, out_dir="runs/b")
>>> print(result.table())

Each cell's result is cached in ``out_dir/cells`` as soon as it finishes, so a
run that is interrupted and started again only computes the missing cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import zslkit
from zslkit.atomic import write_atomic, write_json_atomic
from zslkit.bench.cache import CellCache, plain, settings_hash
from zslkit.bench.case import BenchmarkCase, select_cases
from zslkit.bench.environment import environment
from zslkit.bench.plots import plot_seen_unseen_curves, plot_training_curves
from zslkit.bench.protocols import Protocol, get_protocol
from zslkit.bench.published import PUBLISHED_SOURCES, published
from zslkit.bench.table import COLUMNS, format_markdown, write_csv

__all__ = ["HARNESS_VERSION", "BenchmarkResult", "run_benchmark", "write_outputs"]

#: Bumped when the protocols change in a way that invalidates cached cells.
HARNESS_VERSION = 1


@dataclass
class BenchmarkResult:
    """Every cell of a run, and the views of them the outputs need."""

    protocol: Protocol
    datasets: list[str]
    cells: list[dict[str, Any]]
    environment: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (dataset, method): mean of each metric over seeds, ``<metric>_std`` when several seeds."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for cell in self.cells:
            groups.setdefault((cell["dataset"], cell["method"]), []).append(cell)
        rows = []
        for (dataset, method), cells in groups.items():
            row: dict[str, Any] = {"dataset": dataset, "method": method, "kind": cells[0]["kind"],
                                   "protocol": self.protocol.name, "seeds": [c["seed"] for c in cells]}
            for column in COLUMNS:
                values = np.array([c["metrics"][column] for c in cells])
                row[column] = float(values.mean())
                if len(values) > 1:
                    row[f"{column}_std"] = float(values.std(ddof=1))
            row["gamma"] = float(np.mean([c["gamma"] for c in cells]))
            row["wall_s"] = float(sum(c["wall_s"] for c in cells))
            rows.append(row)
        return rows

    def recipe_lines(self) -> list[str]:
        """One line per distinct recipe the deep models of the run trained with (``Recipe.line``)."""
        return list(dict.fromkeys(cell["recipe"]["line"] for cell in self.cells if cell.get("recipe")))

    def caption(self, with_published: bool = True) -> str:
        seeds = sorted({c["seed"] for c in self.cells})
        parts = [self.protocol.caption,
                 f"Per-class mean accuracy (%), mean ± std over {len(seeds)} seeds;" if len(seeds) > 1
                 else f"Per-class mean accuracy (%), seed {seeds[0] if seeds else '-'};",
                 "U, S, H after calibrated stacking; AUSUC: area under the seen-unseen curve."]
        sources = sorted({PUBLISHED_SOURCES[r["method"]] for r in self._published_rows()}) if with_published else []
        if sources:
            parts.append("Rows marked (published) are not measured here: " + "; ".join(sources) + ".")
        return " ".join(parts)

    def _published_rows(self) -> list[dict[str, Any]]:
        rows = []
        for row in self.rows():
            values = published(row["method"], row["dataset"])
            if values is not None:
                rows.append({"dataset": row["dataset"], "method": row["method"], **values})
        return rows

    def table(self, with_published: bool = True) -> str:
        """The Markdown table: methods as rows, dataset blocks of T1, U, S, H, AUSUC side by side."""
        rows = []
        extra = {(r["dataset"], r["method"]): r for r in self._published_rows()} if with_published else {}
        for row in self.rows():
            rows.append(row)
            ref = extra.get((row["dataset"], row["method"]))
            if ref is not None:
                rows.append({**ref, "method": f"{row['method']} (published)"})
        return format_markdown(rows, title=self.caption(with_published))


def _cell_settings(dataset: str, dataset_options: dict[str, Any], case: BenchmarkCase, protocol: str,
                   seed: int) -> dict[str, Any]:
    return {"dataset": dataset, "dataset_options": dataset_options, "case": case.name, **case.settings(),
            "protocol": protocol, "seed": seed, "harness_version": HARNESS_VERSION, "zslkit": zslkit.__version__}


def run_benchmark(
    datasets: list[str],
    methods: list[str] | None = None,
    protocol: str = "validation",
    seeds: int | list[int] = 1,
    out_dir: str | Path | None = None,
    dataset_options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> BenchmarkResult:
    """Run ``methods`` (case names; ``None``: the defaults) on ``datasets`` under ``protocol``.

    ``seeds``: a count (seeds ``0 .. n-1``) or explicit seeds. ``dataset_options``:
    dataset name -> options for its loader. Finished cells are cached in
    ``out_dir/cells`` (unless ``use_cache`` is false) and reused.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds: need at least one seed")
    options = dataset_options or {}
    for name in datasets:  # unknown names fail here, before any work
        zslkit.get_component("dataset", name)
    plan = [(d, select_cases(methods, d)) for d in datasets]
    proto = get_protocol(protocol)  # plugin protocols are known once the cases were collected
    cache = CellCache(Path(out_dir) / "cells" if out_dir is not None and use_cache else None)
    env = environment()
    cells: list[dict[str, Any]] = []
    total = sum(len(cases) for _, cases in plan) * len(seed_list)
    bar = tqdm(total=total, desc="bench", unit="cell", disable=not progress)
    for dataset_name, cases in plan:
        dataset = None
        for case in cases:
            runner = None
            for seed in seed_list:
                settings = _cell_settings(dataset_name, options.get(dataset_name, {}), case, proto.name, seed)
                digest = settings_hash(settings)
                path = cache.path(dataset_name, case.name, proto.name, seed, digest)
                bar.set_postfix_str(f"{dataset_name}/{case.name}/seed {seed}")
                cell = cache.load(path)
                if cell is None:
                    if dataset is None:
                        dataset = zslkit.load_dataset(dataset_name, **options.get(dataset_name, {}))
                    runner = runner or case.runner(progress=progress)
                    start = time.perf_counter()
                    outcome = proto.run(runner, dataset, seed, progress)
                    if hasattr(runner, "recipe"):  # deep models: the recipe they trained with
                        outcome["recipe"] = runner.recipe(dataset).record()
                    cell = plain({
                        "dataset": dataset_name, "method": case.name, "component": case.component,
                        "kind": case.kind, "source": case.source, "protocol": proto.name, "seed": seed,
                        "settings": settings, "settings_hash": digest, **outcome,
                        "wall_s": time.perf_counter() - start, "environment": env,
                        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    })
                    cache.save(path, cell)
                cells.append(cell)
                bar.update()
    bar.close()
    return BenchmarkResult(proto, list(datasets), cells, env)


_CSV_FIELDS = ("dataset", "method", "component", "kind", "source", "protocol", "seed", *COLUMNS, "gamma",
               "wall_s", "selected", "settings", "settings_hash", "recipe", "finished")


def write_outputs(result: BenchmarkResult, out_dir: str | Path, with_published: bool = True) -> list[Path]:
    """``results.csv`` (one line per cell), ``results.json`` (everything), ``table.md`` and the PNG plots."""
    out = Path(out_dir)
    lines = []
    for cell in result.cells:
        line = {k: cell.get(k) for k in _CSV_FIELDS if k not in COLUMNS}
        line.update(cell["metrics"])
        line["device"] = cell["environment"]["device"]
        line["versions"] = {"python": cell["environment"]["python"], **cell["environment"]["packages"]}
        lines.append({k: line.get(k) for k in (*_CSV_FIELDS, "device", "versions")})
    csv_path = write_csv(lines, out / "results.csv")
    json_path = out / "results.json"
    write_json_atomic(json_path, plain({
        "protocol": result.protocol.name, "caption": result.caption(with_published),
        "environment": result.environment, "rows": result.rows(),
        "published": result._published_rows() if with_published else [], "cells": result.cells,
    }))
    table_path = out / "table.md"
    write_atomic(table_path, lambda tmp: tmp.write_text(result.table(with_published) + "\n"))
    written = [csv_path, json_path, table_path]
    for dataset in result.datasets:
        written.append(plot_seen_unseen_curves(result.cells, dataset, out / f"curves_{dataset}.png", result.protocol.name))
    for cell in result.cells:
        if cell["kind"] == "model":
            name = f"training_{cell['dataset']}_{cell['method']}_seed{cell['seed']}.png"
            written.append(plot_training_curves(cell, out / name))
    return written
