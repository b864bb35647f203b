"""Named evaluation protocols: how a runner is tuned, trained and evaluated for one table cell.

``validation`` (the default, honest one)
    Hyper-parameters, epoch and the calibration gamma are chosen on the
    validation split (``dataset.validation_view()``: the ``train`` classes are
    seen, the ``val`` classes play unseen, a fifth of each train class is held
    out for ``S``); the criterion is the validation ``H`` after calibration. The
    chosen setting is then refit on ``trainval`` and evaluated **once** on test
    with that gamma. Test labels are read only in that last step.

``paper``
    What the paper repositories do: train with the default setting, evaluate on
    test after every epoch, report the best ``H`` over epochs (gamma swept on
    test) and, separately, the best ``T1`` over epochs. Optimistic; use it only
    to compare with published tables.

A plugin adds a protocol by returning a :class:`Protocol` from the
``zslkit_benchmark_cases`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from zslkit.bench.evaluate import thin_curve
from zslkit.bench.runner import Fit, Runner
from zslkit.datasets import DatasetError, ZSLDataset
from zslkit.metrics.evaluation import Evaluation, evaluate
from zslkit.registry import ComponentNotFoundError, did_you_mean

__all__ = ["PROTOCOLS", "Protocol", "evaluate_test", "get_protocol", "paper_protocol", "register_protocol",
           "validation_protocol"]

#: A protocol's result for one cell: ``metrics`` (T1, U, S, H, AUSUC), ``gamma``, ``selected``,
#: ``curve`` (thinned seen-unseen curve), ``epochs`` (per-epoch log), ``train_history``.
Outcome = dict[str, Any]


@dataclass(frozen=True)
class Protocol:
    """A named protocol. ``run(runner, dataset, seed, progress)`` returns the cell's outcome."""

    name: str
    caption: str
    run: Callable[[Runner, ZSLDataset, int, bool], Outcome]


def _eval_indices(dataset: ZSLDataset) -> np.ndarray:
    return np.concatenate([dataset.splits["test_seen"], dataset.splits["test_unseen"]])


def _score(runner: Runner, predictor: Any, dataset: ZSLDataset, labels: np.ndarray, calibration) -> Evaluation:
    scores = runner.scores(predictor, dataset, _eval_indices(dataset))
    return evaluate(scores, labels, dataset.seen_classes, dataset.unseen_classes, calibration)


def evaluate_test(runner: Runner, predictor: Any, dataset: ZSLDataset, calibration) -> Evaluation:
    """The evaluation on test (``test_seen`` + ``test_unseen``): the only place test labels are read."""
    labels = dataset.labels[_eval_indices(dataset)]
    return _score(runner, predictor, dataset, labels, calibration)


def _outcome(ev: Evaluation, selected: dict[str, Any], epochs: list[dict[str, Any]], fit: Fit) -> Outcome:
    return {
        "metrics": ev.metrics(),
        "gamma": ev.gamma,
        "selected": selected,
        "curve": thin_curve(ev.curve),
        "epochs": epochs,
        "train_history": fit.history,
    }


def _train_and_log(runner: Runner, dataset: ZSLDataset, params: dict[str, Any], seed: int,
                   evaluate_epoch: Callable[[Any], Evaluation], prefix: str) -> tuple[Fit, list[tuple[dict, Evaluation]]]:
    """Fit once, evaluating after every epoch (or once, for a method without epochs).

    A record's ``epoch`` counts the epochs completed (1, 2, ...), whatever numbering
    the trainer uses, so that ``runner.fit(..., epochs=record["epoch"])`` stops there.
    """
    log: list[tuple[dict, Evaluation]] = []

    def record(completed: int | None, predictor: Any) -> dict[str, float]:
        ev = evaluate_epoch(predictor)
        entry = {"epoch": completed, **{f"{prefix}_{k}": v for k, v in ev.metrics().items()}, f"{prefix}_gamma": ev.gamma}
        log.append((entry, ev))
        return entry

    fit = runner.fit(dataset, params, seed, on_epoch=lambda _epoch, predictor: record(len(log) + 1, predictor))
    if not log:
        record(None, fit.predictor)
    return fit, log


def _validation_view(dataset: ZSLDataset) -> ZSLDataset:
    try:
        return dataset.validation_view()
    except DatasetError as exc:
        raise DatasetError(f"protocol 'validation' needs a train/val split: {exc} (or use --protocol paper)") from None


def _run_validation(runner: Runner, dataset: ZSLDataset, seed: int, progress: bool = False) -> Outcome:
    view = _validation_view(dataset)
    val_labels = view.labels[_eval_indices(view)]
    best: tuple[float, dict, dict, Evaluation] | None = None
    tried = []
    candidates = runner.candidates()
    for params in tqdm(candidates, desc="  grid", leave=False, disable=not progress or len(candidates) < 2):
        _, log = _train_and_log(runner, view, params, seed, lambda p: _score(runner, p, view, val_labels, "best"), "val")
        for record, ev in log:
            tried.append({"params": params, **record})
            if best is None or ev.H > best[0]:
                best = (ev.H, params, record, ev)
    assert best is not None
    _, params, record, val_ev = best
    final = runner.fit(dataset, params, seed, epochs=record["epoch"])
    test_ev = evaluate_test(runner, final.predictor, dataset, val_ev.gamma)
    selected = {"params": params, "epoch": record["epoch"], "validation": val_ev.metrics(), "tried": len(tried)}
    epochs = [r for r in tried if r["params"] == params]
    return _outcome(test_ev, selected, epochs, final)


def _run_paper(runner: Runner, dataset: ZSLDataset, seed: int, progress: bool = False) -> Outcome:
    fit, log = _train_and_log(runner, dataset, {}, seed, lambda p: evaluate_test(runner, p, dataset, "best"), "test")
    best_h = max(log, key=lambda item: item[1].H)
    best_t1 = max(log, key=lambda item: item[1].T1)
    outcome = _outcome(best_h[1], {"params": {}, "epoch_H": best_h[0]["epoch"], "epoch_T1": best_t1[0]["epoch"]},
                       [record for record, _ in log], fit)
    outcome["metrics"]["T1"] = best_t1[1].T1
    return outcome


validation_protocol = Protocol(
    "validation",
    "Protocol `validation`: hyper-parameters, epoch and calibration gamma chosen on the validation split "
    "(train/val classes, best validation H); refit on trainval and evaluated once on test.",
    _run_validation,
)
paper_protocol = Protocol(
    "paper",
    "Protocol `paper` (as in the paper repositories, optimistic): default settings, evaluated on test after "
    "every epoch; best H over epochs with gamma swept on test, and best T1 over epochs, possibly from "
    "different epochs.",
    _run_paper,
)

#: Protocols by name; plugins add theirs through ``zslkit_benchmark_cases``.
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (validation_protocol, paper_protocol)}


def register_protocol(protocol: Protocol, *, override: bool = False) -> Protocol:
    """Make ``protocol`` available by name; a taken name is an error unless ``override``."""
    if not isinstance(protocol, Protocol):
        raise TypeError(f"expected a zslkit.bench.Protocol, got {type(protocol).__name__}")
    existing = PROTOCOLS.get(protocol.name)
    if existing is not None and existing is not protocol and not override:
        raise ValueError(f"benchmark protocol {protocol.name!r} is already defined")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; unknown names raise a ``KeyError`` listing the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ComponentNotFoundError(
            f"unknown protocol {name!r}{did_you_mean(name, PROTOCOLS, n=1, cutoff=0.6)} "
            f"(known: {', '.join(sorted(PROTOCOLS))})"
        ) from None
