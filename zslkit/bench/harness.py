"""The benchmark harness: every (dataset, case, seed) cell under one or more protocols, cached, tabulated, plotted.

>>> from zslkit.bench import run_benchmark
>>> result = run_benchmark(["synthetic"], ["eszsl", "ale"], protocol="validation", seeds=3, out_dir="runs/b")
>>> print(result.table())

Each cell's result is cached in ``out_dir/cells`` as soon as it finishes, so a
run that is interrupted and started again only computes the missing cells; a
cached cell is reused only while the code that computed it is unchanged
(:mod:`zslkit.bench.code`), and the run logs how many it reused and from where.
With several protocols (``protocol="validation,paper"``) the cells of one
(dataset, case, seed) are computed together, sharing their trainings
(:func:`~zslkit.bench.protocols.run_protocols`), and the table adds, per method,
the difference of each protocol from the first (:meth:`BenchmarkResult.gaps`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
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
from zslkit.bench.code import record_component, recording
from zslkit.bench.environment import environment
from zslkit.bench.leakage import LEAK_COLUMNS, attach_leakage, for_runner, leak_caption, leak_columns
from zslkit.bench.plots import plot_protocol_gap, plot_seen_unseen_curves, plot_training_curves
from zslkit.bench.protocols import Protocol, get_protocol, run_protocols
from zslkit.bench.published import PUBLISHED_SOURCES, published
from zslkit.bench.table import COLUMNS, format_markdown, write_csv
from zslkit.leakage import Pretraining, pretraining_of
from zslkit.registry import component_info

__all__ = ["HARNESS_VERSION", "BenchmarkResult", "run_benchmark", "write_outputs"]

#: Bumped when the protocols (or what a cell's numbers depend on beyond its settings) change in a
#: way that invalidates cached cells (2: ``paper`` searches the methods' grids; the default
#: ``synthetic`` dataset is the ``fine-grained`` variant. 3: the transformer blocks' dropout masks
#: come from another random stream, so TransZero cells train differently. 4: the TransZero decoders'
#: attribute self-attention draws its masks per image in training, not once per batch).
HARNESS_VERSION = 4

_log = logging.getLogger("zslkit.bench")
#: What marks the rows whose runner states a caveat (a random-init CLIP's plumbing check); the caption says it.
CAVEAT_MARK = "†"


@dataclass
class BenchmarkResult:
    """Every cell of a run, and the views of them the outputs need.

    Metrics in :attr:`cells`, :meth:`rows` and :meth:`gaps` are fractions in [0, 1] (``0.729``);
    :meth:`table` and the command line show them x 100, in percent (``72.9``).

    ``protocol``: the protocol, or the list of protocols of a run with several
    (then ``protocol`` is the first, the one the others are compared with, and
    ``protocols`` all of them).
    """

    protocol: Protocol | list[Protocol]
    datasets: list[str]
    cells: list[dict[str, Any]]
    environment: dict[str, Any] = field(default_factory=dict)
    protocols: list[Protocol] = field(init=False)

    def __post_init__(self) -> None:
        self.protocols = [self.protocol] if isinstance(self.protocol, Protocol) else list(self.protocol)
        self.protocol = self.protocols[0]

    def __repr__(self) -> str:
        methods = list(dict.fromkeys(c["method"] for c in self.cells))
        return (f"BenchmarkResult({', '.join(p.name for p in self.protocols)}; {', '.join(self.datasets)}; "
                f"{len(self.cells)} cells of {', '.join(methods)}; metrics are fractions of 1, table() shows %)")

    def _protocol_of(self, cell: dict[str, Any]) -> str:
        return cell.get("protocol", self.protocol.name)

    def _grouped(self) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for cell in self.cells:
            groups.setdefault((cell["dataset"], cell["method"], self._protocol_of(cell)), []).append(cell)
        return groups

    def rows(self) -> list[dict[str, Any]]:
        """One row per (dataset, method, protocol): mean of each metric over seeds, ``<metric>_std`` when several seeds."""
        rows = []
        for (dataset, method, protocol), cells in self._grouped().items():
            row: dict[str, Any] = {"dataset": dataset, "method": method, "kind": cells[0]["kind"],
                                   "protocol": protocol, "seeds": [c["seed"] for c in cells]}
            row.update(_mean_std([c["metrics"] for c in cells]))
            row.update(leak_columns(cells))  # U/H on the unseen classes the pretraining did not see, when known
            row["gamma"] = float(np.mean([c["gamma"] for c in cells]))
            row["wall_s"] = float(sum(c["wall_s"] for c in cells))
            if cells[0].get("caveat"):
                row["caveat"] = cells[0]["caveat"]
            rows.append(row)
        return rows

    def recipe_lines(self) -> list[str]:
        """One line per distinct recipe the deep models of the run trained with (``Recipe.line``)."""
        return list(dict.fromkeys(cell["recipe"]["line"] for cell in self.cells if cell.get("recipe")))

    def gaps(self) -> list[dict[str, Any]]:
        """Per (dataset, method) and protocol after the first: that protocol's metrics minus the first's.

        Differences are taken per seed (seeds both ran), then averaged (``<metric>_std`` over seeds when
        several); ``protocol`` reads ``"paper - validation"``.
        """
        groups = self._grouped()
        base = self.protocol.name
        gaps = []
        for other in (p.name for p in self.protocols[1:]):
            for (dataset, method, protocol), cells in groups.items():
                if protocol != base or (dataset, method, other) not in groups:
                    continue
                theirs = {c["seed"]: c["metrics"] for c in groups[dataset, method, other]}
                pairs = [(theirs[c["seed"]], c["metrics"]) for c in cells if c["seed"] in theirs]
                diffs = [{k: a[k] - b[k] for k in COLUMNS} for a, b in pairs]
                gaps.append({"dataset": dataset, "method": method, "kind": cells[0]["kind"],
                             "protocol": f"{other} - {base}", "seeds": [c["seed"] for c in cells if c["seed"] in theirs],
                             **_mean_std(diffs)})
        return gaps

    def caption(self, with_published: bool = True) -> str:
        return self._caption(with_published)

    def _caption(self, with_published: bool, rows: list[dict[str, Any]] | None = None) -> str:
        """The caption; ``rows``: :meth:`rows` when the caller has them (else computed if needed)."""
        seeds = sorted({c["seed"] for c in self.cells})
        parts = [p.caption for p in self.protocols]
        if len(self.protocols) > 1:
            others = ", ".join(f"`{p.name} − {self.protocol.name}`" for p in self.protocols[1:])
            parts.append(f"Rows {others}: the difference in points (per seed, then averaged), what choosing on "
                         f"test adds.")
        parts += [f"Per-class mean accuracy (%), mean ± std over {len(seeds)} seeds;" if len(seeds) > 1
                  else f"Per-class mean accuracy (%), seed {seeds[0] if seeds else '-'};",
                  "U, S, H after calibrated stacking; AUSUC: area under the seen-unseen curve."]
        sources = sorted({PUBLISHED_SOURCES[r["method"]] for r in self._published_rows(rows)}) if with_published else []
        if sources:
            parts.append("Rows marked (published) are not measured here: " + "; ".join(sources) + ".")
        caveats = sorted({r["caveat"] for r in (self.rows() if rows is None else rows) if r.get("caveat")})
        if caveats:
            parts.append(f"Rows marked {CAVEAT_MARK}: " + "; ".join(caveats) + ".")
        leak = leak_caption(self.cells)
        return " ".join(parts + [leak] if leak else parts)

    def _published_rows(self, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The published numbers of the measured (dataset, method) pairs; ``rows``: :meth:`rows`, if at hand."""
        found = []
        for row in self.rows() if rows is None else rows:
            values = published(row["method"], row["dataset"])
            if values is not None and row["protocol"] == self.protocol.name:
                found.append({"dataset": row["dataset"], "method": row["method"], **values})
        return found

    def table(self, with_published: bool = True) -> str:
        """The Markdown table: methods as rows, dataset blocks of T1, U, S, H, AUSUC side by side.

        With several protocols each method has a row per protocol, ``method (protocol)``, then its
        difference rows, ``method (paper − validation)``, with signed values.
        """
        return self._table(with_published, self.rows())

    def _table(self, with_published: bool, measured: list[dict[str, Any]]) -> str:
        """The table of :meth:`table`, from ``measured`` (:meth:`rows`, computed once by the caller)."""
        several = len(self.protocols) > 1
        rows = []
        extra = {(r["dataset"], r["method"]): r for r in self._published_rows(measured)} if with_published else {}
        gaps: dict[str, list[dict[str, Any]]] = {}
        for gap in self.gaps():
            gaps.setdefault(gap["method"], []).append(gap)
        for method in dict.fromkeys(r["method"] for r in measured):
            mine = [r for r in measured if r["method"] == method]
            label = f"{method} {CAVEAT_MARK}" if mine[0].get("caveat") else method
            for name in (p.name for p in self.protocols):
                rows += [{**r, "method": f"{label} ({name})" if several else label} for r in mine if r["protocol"] == name]
            for gap in gaps.get(method, []):
                rows.append({**gap, "method": f"{method} ({gap['protocol'].replace(' - ', ' − ')})", "signed": True})
            rows += [{**ref, "method": f"{method} (published)"} for key, ref in extra.items() if key[1] == method]
        columns = COLUMNS + LEAK_COLUMNS if any("U_leak_free" in r for r in measured) else COLUMNS
        return format_markdown(rows, columns, title=self._caption(with_published, measured), signed_columns=("H_leak_gap",))


def _mean_std(metrics: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each column over ``metrics``, and ``<column>_std`` (sample std) when there are several."""
    out: dict[str, float] = {}
    for column in COLUMNS:
        values = np.array([m[column] for m in metrics])
        out[column] = float(values.mean())
        if len(values) > 1:
            out[f"{column}_std"] = float(values.std(ddof=1))
    return out


def _cell_settings(dataset: str, dataset_options: dict[str, Any], case: BenchmarkCase, recipe: Any, protocol: str,
                   seed: int, backbone: dict[str, Any] | None = None, pretraining: str | None = None,
                   clip: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a cell's numbers depend on besides the code (its cache key): for a deep model, the recipe's
    config too (less the thread count, a machine setting), so that editing a recipe file recomputes the
    cells trained with it. The code is checked separately (the cell's ``code``, :class:`CellCache`).

    ``recipe``: the case's recipe for ``dataset`` (``None`` for a method without one); ``backbone``: the
    models' backbone options (recorded only when given, so cells without one keep their keys); ``pretraining``:
    the ``--pretraining`` given (likewise; one the features say is part of the features); ``clip``: the CLIP
    model of the CLIP rows (recorded for those rows only)."""
    through = {} if backbone is None or case.kind != "model" else {"backbone": backbone}
    if case.clip is not None:
        through["clip_model"] = clip
    # the thread count (a machine setting) and the loggers (where the numbers go) change no number
    config = {k: v for k, v in recipe.config.to_dict().items() if k not in ("num_threads", "loggers")} \
        if recipe is not None else None
    return {"dataset": dataset, "dataset_options": dataset_options, "case": case.name, **case.settings(), **through,
            "recipe": config, "protocol": protocol, "seed": seed, **({"pretraining": pretraining} if pretraining else {}),
            "harness_version": HARNESS_VERSION, "zslkit": zslkit.__version__}


def _protocols(protocol: str | list[str]) -> list[Protocol]:
    names = [n.strip() for n in protocol.split(",")] if isinstance(protocol, str) else list(protocol)
    names = [n for n in names if n]
    if not names:
        raise ValueError("protocol: give at least one protocol name, e.g. 'validation' or 'validation,paper'")
    if len(set(names)) < len(names):
        raise ValueError(f"protocol: {','.join(names)} names a protocol twice")
    return [get_protocol(n) for n in names]


def run_benchmark(
    datasets: list[str],
    methods: list[str] | None = None,
    protocol: str | list[str] = "validation",
    seeds: int | list[int] = 1,
    out_dir: str | Path | None = None,
    dataset_options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    use_cache: bool = True,
    backbone: dict[str, Any] | None = None,
    recompute: bool = False,
    threads: int | None = None,
    pretraining: str | None = None,
    clip: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Run ``methods`` (case names; ``None``: the defaults) on ``datasets`` under ``protocol``.

    ``protocol``: a name, comma-separated names or a list (``"validation,paper"``): the
    cells of one (dataset, case, seed) under several protocols are computed together and
    share their trainings. ``seeds``: a count (seeds ``0 .. n-1``) or explicit seeds.
    ``dataset_options``: dataset name -> options for its loader. Finished cells are cached
    in ``out_dir/cells`` (unless ``use_cache`` is false) and reused while their settings and
    the code that computed them are unchanged; ``recompute=True`` computes every cell again
    and refreshes the cache. What was reused is logged (logger ``zslkit.bench``).
    ``backbone``: options of the ``timm`` backbone the models train through, end to end, on image
    datasets (``synthetic_images``; :class:`~zslkit.bench.model_runner.ModelRunner`). ``threads``:
    CPU threads for the deep models' trainings (``None``: :func:`zslkit.threads.thread_count`).
    ``pretraining``: what the backbone was pretrained on (a label set such as ``in21k`` or a timm weight
    tag; default: what the features or ``backbone`` say, if anything): the rows add U and H on the unseen
    classes outside its label set (:mod:`zslkit.bench.leakage`). ``clip``: the CLIP model of the CLIP rows
    (:func:`zslkit.clip.load_clip`'s arguments, e.g. ``{"model": "ViT-B-16", "weights": PATH}``;
    :class:`~zslkit.bench.clip_runner.ClipRunner`, which names its own pretraining: web-scale).
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds: need at least one seed")
    options = dataset_options or {}
    given = pretraining_of(pretraining) if pretraining is not None else None
    for name in datasets:  # unknown names fail here, before any work
        zslkit.get_component("dataset", name)
    plan = [(d, select_cases(methods, d)) for d in datasets]
    protos = _protocols(protocol)  # plugin protocols are known once the cases were collected
    cache = CellCache(Path(out_dir) / "cells" if out_dir is not None and use_cache else None, recompute)
    env = environment(threads)
    cells: list[dict[str, Any]] = []
    bar = tqdm(total=sum(len(cases) for _, cases in plan) * len(seed_list) * len(protos), desc="bench",
               unit="cell", disable=not progress)
    for dataset_name, cases in plan:
        dataset = _once(_load, dataset_name, options.get(dataset_name, {}), given, backbone)
        for case in cases:
            with recording() as used:  # the packages of every component the case builds
                runner = case.runner(progress=progress, backbone=backbone, threads=threads, clip=clip)  # every seed
                recipe = runner.recipe(dataset_name) if hasattr(runner, "recipe") else None
                for kind, name in ((case.kind, case.component), ("dataset", dataset_name)):
                    record_component(component_info(kind, name))
                for seed in seed_list:
                    bar.set_postfix_str(f"{dataset_name}/{case.name}/seed {seed}")
                    cells += _cells(protos, (dataset_name, dataset), options.get(dataset_name, {}), case, seed,
                                    cache, env, (runner, recipe), progress, used, backbone, given, clip)
                    bar.update(len(protos))
    bar.close()
    cache.report()
    return BenchmarkResult(protos, list(datasets), cells, env)


def _load(name: str, options: dict[str, Any], given: Pretraining | None, backbone: dict[str, Any] | None) -> Any:
    """The dataset ``name``, with the check of its unseen classes against its backbone's pretraining."""
    return attach_leakage(name, zslkit.load_dataset(name, **options), given, backbone)


def _once(make: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """``make(*args, **kwargs)``, called the first time it is needed and then remembered."""
    return functools.cache(functools.partial(make, *args, **kwargs))


def _cells(protos: list[Protocol], dataset: tuple[str, Callable[[], Any]], options: dict[str, Any],
           case: BenchmarkCase, seed: int, cache: CellCache, env: dict[str, Any], runner: tuple[Any, Any],
           progress: bool, used: frozenset[str] | set[str] = frozenset(),
           backbone: dict[str, Any] | None = None, pretraining: Pretraining | None = None,
           clip: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The cells of (dataset, case, seed) under ``protos``: cached ones read, the others computed together.

    ``dataset`` is (name, loader; loaded once, shared by the seeds) and ``runner`` is (the case's runner,
    its recipe for the dataset or ``None``), both shared by the seeds. ``used``: the packages of the
    components the case built so far (:func:`~zslkit.bench.code.recording`), recorded as the cells' code.
    ``backbone``, ``pretraining``, ``clip``: the run's, part of the cells' settings where they apply.
    """
    dataset_name, load = dataset
    fit, recipe = runner
    keys = {}
    for proto in protos:
        settings = _cell_settings(dataset_name, options, case, recipe, proto.name, seed, backbone,
                                  None if pretraining is None else pretraining.source, clip)
        digest = settings_hash(settings)
        keys[proto.name] = (settings, digest, cache.path(dataset_name, case.name, proto.name, seed, digest))
    found = {name: cache.fetch(path) for name, (_, _, path) in keys.items()}
    missing = [p for p in protos if found[p.name] is None]
    if missing:
        data = for_runner(dataset_name, load(), fit)  # a runner with its own backbone names its pretraining
        start = time.perf_counter()
        outcomes = run_protocols(missing, fit, data, seed, progress)
        if hasattr(fit, "recipe"):  # deep models: the recipe they trained with
            record = fit.recipe(data).record()  # remembered by the runner: derived once per dataset
            for outcome in outcomes.values():
                outcome["recipe"] = dict(record)
        if getattr(fit, "caveat", None):  # e.g. a random-init CLIP: a plumbing check
            for outcome in outcomes.values():
                outcome["caveat"] = fit.caveat
        wall = time.perf_counter() - start
        finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        code = cache.digests.code_of(used)
        for proto in missing:
            settings, digest, path = keys[proto.name]
            found[proto.name] = plain({
                "dataset": dataset_name, "method": case.name, "component": case.component,
                "kind": case.kind, "source": case.source, "protocol": proto.name, "seed": seed,
                "settings": settings, "settings_hash": digest, **outcomes[proto.name],
                "wall_s": wall, "shared_with": [p.name for p in missing if p is not proto],
                "environment": env, "code": code, "finished": finished,
                **({"leakage": data.metadata["leakage"]} if "leakage" in data.metadata else {}),
            })
            cache.save(path, found[proto.name])
            cache.computed += 1
            _log.info("%s", _cell_line(found[proto.name]))
    return [found[p.name] for p in protos]


def _cell_line(cell: dict[str, Any]) -> str:
    """One line summing up a computed cell (the minimal progress ``--no-progress`` keeps)."""
    metrics = " ".join(f"{k} {100 * cell['metrics'][k]:.1f}%" for k in ("T1", "U", "S", "H"))
    return f"cell {cell['dataset']} / {cell['method']} / seed {cell['seed']} ({cell['protocol']}): {metrics}, {cell['wall_s']:.1f} s"


_CSV_FIELDS = ("dataset", "method", "component", "kind", "source", "protocol", "seed", *COLUMNS, "gamma",
               "wall_s", "shared_with", "selected", "settings", "settings_hash", "finished")


def write_outputs(result: BenchmarkResult, out_dir: str | Path, with_published: bool = True) -> list[Path]:
    """``results.csv`` (one line per cell), ``results.json`` (everything), ``table.md`` and the PNG plots.

    With several protocols also ``gaps.csv`` (one line per dataset, method and protocol difference) and
    ``gaps_<dataset>.png``; the plots of protocols after the first carry ``_<protocol>`` in their names.
    """
    out = Path(out_dir)
    lines = []
    for cell in result.cells:
        line = {k: cell.get(k) for k in _CSV_FIELDS if k not in COLUMNS}
        line.update(cell["metrics"])
        line["device"] = cell["environment"]["device"]
        line["versions"] = {"python": cell["environment"]["python"], **cell["environment"]["packages"]}
        leak = ("U_leak_free", "H_leak_free", "leakage") if any("leakage" in c for c in result.cells) else ()
        line.update({f"{k}_leak_free": v for k, v in (cell.get("leak_free") or {}).items()}, leakage=cell.get("leakage"))
        lines.append({k: line.get(k) for k in (*_CSV_FIELDS, *leak, "device", "versions")})
    written = [write_csv(lines, out / "results.csv")]
    names = [p.name for p in result.protocols]
    gaps = result.gaps()
    rows = result.rows()  # once, for the JSON, the caption, the table and the gap plots
    written.append(out / "results.json")
    write_json_atomic(written[-1], plain({
        "protocol": ",".join(names), "protocols": names, "caption": result._caption(with_published, rows),
        "environment": result.environment, "rows": rows, "gaps": gaps,
        "published": result._published_rows(rows) if with_published else [], "cells": result.cells,
    }))
    written.append(out / "table.md")
    write_atomic(written[-1], lambda tmp: tmp.write_text(result._table(with_published, rows) + "\n"))
    if len(names) > 1:
        written.append(write_csv(gaps, out / "gaps.csv"))
    for proto in names:
        suffix = "" if proto == names[0] else f"_{proto}"
        cells = [c for c in result.cells if result._protocol_of(c) == proto]
        for dataset in result.datasets:
            written.append(plot_seen_unseen_curves(cells, dataset, out / f"curves_{dataset}{suffix}.png", proto))
        for cell in cells:
            if cell["kind"] == "model":
                name = f"training_{cell['dataset']}_{cell['method']}_seed{cell['seed']}{suffix}.png"
                written.append(plot_training_curves(cell, out / name))
    if len(names) > 1:
        for dataset in result.datasets:
            written.append(plot_protocol_gap(rows, dataset, names, out / f"gaps_{dataset}.png"))
    return written
