"""The bench's leak-free columns: U and H on the unseen classes the backbone's pretraining did not see.

The pretraining of a dataset's backbone is, in this order of authority:

1. ``--pretraining`` (``run_benchmark(pretraining=...)``), a label set or timm weight tag;
2. what the features say: a feature store's ``pretraining`` metadata, else the timm model name of its
   ``backbone`` when it carries a weight tag (``vit_base_patch16_224.augreg2_in21k_ft_in1k``);
3. the end-to-end backbone of ``--backbone``, when its model name carries a weight tag (a random
   initialisation saw nothing: the table stays as it is, ``--pretraining none`` adds equal columns).

Given and found pretrainings that disagree are refused. A runner with its own backbone (a CLIP
case, say) sets ``pretraining`` (a tag, e.g. ``"openai"``) on itself: its rows are checked against
that instead (:func:`for_runner`). :func:`attach_leakage` checks the dataset's
unseen classes (:mod:`zslkit.leakage`; the packaged xlsa17 names for cub, sun and awa2) and stores
the outcome in ``dataset.metadata["leakage"]``; :func:`with_leak_free` then adds the leak-free
``U``/``H`` to each test evaluation, and :func:`leak_columns` turns a row's cells into its columns.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import numpy as np

from zslkit.leakage import XLSA17_DATASETS, Pretraining, clean_unseen, pretraining_of, xlsa17_classes
from zslkit.metrics.evaluation import Evaluation
from zslkit.metrics.leak_free import leak_free_accuracy

__all__ = ["LEAK_COLUMNS", "attach_leakage", "for_runner", "found_pretraining", "leak_caption", "leak_columns",
           "leakage_record", "with_leak_free"]

#: the table's extra columns: U and H on the clean unseen classes, and H minus the leak-free H
LEAK_COLUMNS: tuple[str, ...] = ("U_leak_free", "H_leak_free", "H_leak_gap")
WEB_SCALE = "leakage unknown (web-scale)"
NO_CLEAN = "no clean unseen class"

_log = logging.getLogger("zslkit.bench")


def found_pretraining(dataset: Any, backbone: dict[str, Any] | None = None) -> Pretraining | None:
    """What the dataset's features (store metadata) or the end-to-end ``backbone`` options say, or ``None``."""
    metadata = getattr(getattr(dataset, "features", None), "metadata", None)
    if isinstance(metadata, dict):
        if metadata.get("pretraining"):
            return pretraining_of(str(metadata["pretraining"]))
        model = (metadata.get("backbone") or {}).get("model") if isinstance(metadata.get("backbone"), dict) else None
        if model and "." in str(model):
            return pretraining_of(str(model))
    if backbone and not backbone.get("random_init") and "." in str(backbone.get("model_name", "")):
        return pretraining_of(str(backbone["model_name"]))  # a random init saw nothing: no columns to add
    return None


def _resolve(given: Pretraining | None, found: Pretraining | None, dataset: str) -> Pretraining | None:
    if given is not None and found is not None and (given.label_sets, given.web_scale) != (found.label_sets, found.web_scale):
        raise ValueError(f"--pretraining {given.source} contradicts {dataset}'s backbone ({found.describe()}); "
                         "leave --pretraining out, or use features extracted with that backbone")
    return given or found


def _class_names(name: str, dataset: Any) -> list[str] | None:
    """The packaged xlsa17 names for cub, sun and awa2 (same class count), else the dataset's own names."""
    if name in XLSA17_DATASETS and len(xlsa17_classes(name)) == dataset.num_classes:
        return xlsa17_classes(name)
    names = list(getattr(dataset, "class_names", []) or [])
    return names if len(names) == dataset.num_classes else None


def attach_leakage(name: str, dataset: Any, given: Pretraining | None, backbone: dict[str, Any] | None = None) -> Any:
    """Check ``dataset``'s unseen classes against its backbone's pretraining; the record goes to
    ``dataset.metadata["leakage"]`` (nothing when no pretraining is known). Returns ``dataset``."""
    pretraining = _resolve(given, found_pretraining(dataset, backbone), name)
    if pretraining is not None:
        dataset.metadata["leakage"] = leakage_record(name, dataset, pretraining)
    return dataset


def for_runner(name: str, dataset: Any, runner: Any) -> Any:
    """``dataset``, or, for a runner that names its own ``pretraining``, a shallow copy checked against that."""
    own = getattr(runner, "pretraining", None)
    if own is None:
        return dataset
    view = copy.copy(dataset)
    view.metadata = {**dataset.metadata, "leakage": leakage_record(name, dataset, pretraining_of(str(own)))}
    return view


def leakage_record(name: str, dataset: Any, pretraining: Pretraining) -> dict[str, Any]:
    """The check of ``dataset``'s unseen classes against ``pretraining``: label sets, clean class indices
    (``None`` when unknown: web-scale, or no class names), overlapping class names."""
    unseen = [int(k) for k in dataset.unseen_classes]
    record: dict[str, Any] = {"pretraining": pretraining.source, "label_sets": list(pretraining.label_sets),
                              "web_scale": pretraining.web_scale, "unseen": len(unseen), "clean": None, "overlapping": None}
    names = _class_names(name, dataset)
    report = clean_unseen(names, unseen, pretraining) if names is not None else None
    if report is not None:
        record.update(clean=report.clean_indices(), overlapping=[c.name for c in report.overlapping])
    _log.info("%s: backbone pretraining %s; %s", name, pretraining.describe(),
              "leakage unknown" if report is None else f"{len(report.clean)} of {len(unseen)} unseen classes clean")
    return record


def with_leak_free(ev: Evaluation, scores: np.ndarray, labels: np.ndarray, dataset: Any) -> Evaluation:
    """``ev`` with its leak-free ``U``/``H`` (same scores and gamma) when the dataset has clean classes."""
    clean = (dataset.metadata.get("leakage") or {}).get("clean")
    if not clean:
        return ev
    result = leak_free_accuracy(scores, labels, dataset.seen_classes, dataset.unseen_classes, clean, ev.gamma)
    return ev if result is None else dataclasses.replace(ev, leak_free={"U": result.unseen, "H": result.harmonic})


def leak_columns(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """A row's leak-free columns from its cells (seeds): means (``_std`` over several seeds), or the reason there is none."""
    record = cells[0].get("leakage")
    if not record:
        return {}
    if record["web_scale"] or record["clean"] is None:
        return dict.fromkeys(LEAK_COLUMNS[:2], WEB_SCALE if record["web_scale"] else "class names unknown")
    values = [c.get("leak_free") for c in cells]
    if not record["clean"] or any(v is None for v in values):
        return dict.fromkeys(LEAK_COLUMNS[:2], NO_CLEAN)
    series = {"U_leak_free": [v["U"] for v in values], "H_leak_free": [v["H"] for v in values],
              "H_leak_gap": [c["metrics"]["H"] - v["H"] for c, v in zip(cells, values)]}
    out: dict[str, Any] = {}
    for column, numbers in series.items():
        out[column] = float(np.mean(numbers))
        if len(numbers) > 1:
            out[f"{column}_std"] = float(np.std(numbers, ddof=1))
    return out


def leak_caption(cells: list[dict[str, Any]]) -> str:
    """The caption's sentence on the leak-free columns ('' when no cell has a pretraining)."""
    records = {c["dataset"]: c["leakage"] for c in cells if c.get("leakage")}
    if not records:
        return ""
    parts = []
    for dataset, r in records.items():
        sets = "web-scale, leakage unknown" if r["web_scale"] else " + ".join(r["label_sets"]) or "no pretraining"
        clean = "" if r["clean"] is None else f", {len(r['clean'])} of {r['unseen']} unseen classes clean"
        parts.append(f"{dataset}: {r['pretraining']} ({sets}{clean})")
    return ("U_leak_free, H_leak_free: U and H on the unseen classes whose names are not in the backbone's "
            "pretraining label set (zslkit leakage), same gamma; H_leak_gap = H − H_leak_free. " + "; ".join(parts) + ".")
