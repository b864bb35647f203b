"""Named evaluation protocols: how a runner is tuned, trained and evaluated for one table cell.

``validation`` (the default, honest one)
    Hyper-parameters, epoch and the calibration gamma are chosen on the
    validation split (``dataset.validation_view()``: the ``train`` classes are
    seen, the ``val`` classes play unseen, a fifth of each train class is held
    out for ``S``); the criterion is the validation ``H`` after calibration. The
    chosen setting is then refit on ``trainval`` and evaluated **once** on test
    with that gamma. Test labels are read only in that last step.

``paper``
    What the paper repositories do: train every candidate setting (the
    method's grid; deep models: the recipe) on ``trainval``, evaluate on test
    after every epoch, report the best ``H`` over settings and epochs (gamma
    swept on test) and, separately, the best ``T1``. Optimistic; use it only to
    compare with published tables, or next to ``validation`` to see what
    choosing on test buys.

Several protocols in one run (:func:`run_protocols`) share their trainings: a
protocol given as a ``plan`` first makes its choices without test labels (the
validation grid runs on the validation view), then lists the trainings on
``trainval`` it needs evaluated on test (:class:`TestRun`); requests for the same
setting are served by one training, evaluated at every epoch any of them asks
for. Under ``validation,paper`` the validation protocol's final training is
the paper protocol's training of that setting, stopped at the chosen epoch, so
each (method, seed, setting) is trained at most once.

A plugin adds a protocol by returning a :class:`Protocol` from the
``zslkit_benchmark_cases`` hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from zslkit.bench.cache import settings_hash
from zslkit.bench.evaluate import thin_curve
from zslkit.bench.leakage import with_leak_free
from zslkit.bench.runner import Runner
from zslkit.datasets import DatasetError, ZSLDataset
from zslkit.metrics.evaluation import Evaluation, evaluate
from zslkit.registry import ComponentNotFoundError, did_you_mean

__all__ = ["PROTOCOLS", "Plan", "Protocol", "TestResult", "TestRun", "evaluate_test", "get_protocol",
           "paper_protocol", "register_protocol", "run_protocols", "validation_protocol"]

_log = logging.getLogger(__name__)  # zslkit.bench.protocols: the phases of a cell

#: A protocol's result for one cell: ``metrics`` (T1, U, S, H, AUSUC), ``gamma``, ``selected``,
#: ``curve`` (thinned seen-unseen curve), ``epochs`` (per-epoch log), ``train_history``.
Outcome = dict[str, Any]


@dataclass(frozen=True)
class TestRun:
    """One training on ``trainval`` with ``params`` that a protocol evaluates on test.

    ``epoch``: evaluate after that many epochs (``None``: when the training ends);
    ``calibration``: the gamma to apply, or ``"best"`` (swept on test);
    ``every_epoch``: evaluate after every epoch instead (and at the end for a method without epochs).
    """

    __test__ = False  # not a pytest test class
    params: dict[str, Any]
    epoch: int | None = None
    calibration: float | str = "best"
    every_epoch: bool = False


@dataclass
class TestResult:
    """What a :class:`TestRun` got: ``log`` of (record, evaluation) and the training history up to its epoch."""

    __test__ = False  # not a pytest test class
    run: TestRun
    log: list[tuple[dict[str, Any], Evaluation]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """A protocol's test-time needs: its runs, and ``finish(results)`` (in the runs' order) -> the outcome."""

    runs: list[TestRun]
    finish: Callable[[list[TestResult]], Outcome]


@dataclass(frozen=True)
class Protocol:
    """A named protocol. ``run(runner, dataset, seed, progress)`` returns the cell's outcome.

    Give either ``run`` or ``plan(runner, dataset, seed, progress) -> Plan``; a
    planned protocol shares its trainings with the others of a run
    (:func:`run_protocols`) and gets ``run`` for free.
    """

    name: str
    caption: str
    run: Callable[[Runner, ZSLDataset, int, bool], Outcome] | None = None
    plan: Callable[[Runner, ZSLDataset, int, bool], Plan] | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.plan is None):
            raise ValueError(f"protocol {self.name!r}: give exactly one of run= or plan=")
        if self.run is None:
            object.__setattr__(self, "run", lambda runner, dataset, seed, progress=False:
                               run_protocols([self], runner, dataset, seed, progress)[self.name])


def _name(runner: Runner) -> str:
    """The runner's component, for log lines."""
    return str(getattr(runner, "component", type(runner).__name__))


def _eval_indices(dataset: ZSLDataset) -> np.ndarray:
    return np.concatenate([dataset.splits["test_seen"], dataset.splits["test_unseen"]])


def _score(runner: Runner, predictor: Any, dataset: ZSLDataset, labels: np.ndarray, calibration,
           scores: np.ndarray | None = None) -> Evaluation:
    """``predictor`` evaluated on ``dataset``'s ``test_seen`` + ``test_unseen`` (``scores``: its scores there, if at hand)."""
    if scores is None:
        scores = runner.scores(predictor, dataset, _eval_indices(dataset))
    return evaluate(scores, labels, dataset.seen_classes, dataset.unseen_classes, calibration)


def evaluate_test(runner: Runner, predictor: Any, dataset: ZSLDataset, calibration,
                  scores: np.ndarray | None = None) -> Evaluation:
    """The evaluation on test (``test_seen`` + ``test_unseen``): the only place test labels are read.

    ``scores``: the predictor's test scores when already computed (several evaluations of one epoch).
    With a pretraining check on the dataset (``metadata["leakage"]``) the evaluation carries its
    leak-free ``U``/``H`` too (:func:`~zslkit.bench.leakage.with_leak_free`).
    """
    if scores is None:
        scores = runner.scores(predictor, dataset, _eval_indices(dataset))
    labels = dataset.labels[_eval_indices(dataset)]
    return with_leak_free(_score(runner, predictor, dataset, labels, calibration, scores), scores, labels, dataset)


def _outcome(ev: Evaluation, selected: dict[str, Any], epochs: list[dict[str, Any]],
             history: list[dict[str, Any]]) -> Outcome:
    return {
        "metrics": ev.metrics(),
        "gamma": ev.gamma,
        "selected": selected,
        "curve": thin_curve(ev.curve),
        "epochs": epochs,
        "train_history": history,
        **({"leak_free": ev.leak_free} if ev.leak_free is not None else {}),
    }


def _epoch_record(prefix: str, epoch: int | None, ev: Evaluation) -> dict[str, Any]:
    """One epoch's log record: ``epoch``, ``<prefix>_<metric>`` for each metric and ``<prefix>_gamma``."""
    return {"epoch": epoch, **{f"{prefix}_{k}": v for k, v in ev.metrics().items()}, f"{prefix}_gamma": ev.gamma}


def _train_and_log(runner: Runner, dataset: ZSLDataset, params: dict[str, Any], seed: int,
                   evaluate_epoch: Callable[[Any], Evaluation], prefix: str) -> list[tuple[dict, Evaluation]]:
    """Fit once, evaluating after every epoch (or once, for a method without epochs); the log of (record, evaluation).

    A record's ``epoch`` counts the epochs completed (1, 2, ...), whatever numbering
    the trainer uses, so that ``runner.fit(..., epochs=record["epoch"])`` stops there.
    """
    log: list[tuple[dict, Evaluation]] = []

    def record(completed: int | None, predictor: Any) -> dict[str, float]:
        ev = evaluate_epoch(predictor)
        entry = _epoch_record(prefix, completed, ev)
        log.append((entry, ev))
        return entry

    fit = runner.fit(dataset, params, seed, on_epoch=lambda _epoch, predictor: record(len(log) + 1, predictor))
    if not log:
        record(None, fit.predictor)
    return log


def _same_training(runner: Runner, runs: list[tuple[str, int, TestRun]]) -> list[list[tuple[str, int, TestRun]]]:
    """``runs`` grouped by the training that serves them: the same params and, unless the runner's
    ``epochs_are_prefixes`` (a training stopped at epoch ``e`` equals the first ``e`` epochs of a longer
    one), the same stopping epoch."""
    prefixes = getattr(runner, "epochs_are_prefixes", False)
    groups: dict[tuple[str, int | None], list[tuple[str, int, TestRun]]] = {}
    for item in runs:
        key = settings_hash(item[2].params), None if prefixes else item[2].epoch  # the cache's canonical form
        groups.setdefault(key, []).append(item)
    return list(groups.values())


def _serve(runner: Runner, dataset: ZSLDataset, seed: int, runs: list[TestRun]) -> list[TestResult]:
    """One training on ``trainval`` (``runs`` share their params), evaluated on test when each run asks."""
    results = [TestResult(run) for run in runs]
    stops = [run.epoch for run in runs]
    stop = None if None in stops else max(stops)
    per_epoch = any(run.every_epoch or run.epoch != stop for run in runs)
    added: set[str] = set()  # history keys of the every-epoch evaluations
    last: dict[str, Any] = {}  # the latest epoch's test scores: the final predictor's when training ends

    def evaluate_on_test(epoch: int | None, predictor: Any, due: list[TestResult]) -> dict[str, Any]:
        scores = last["scores"] if last.get("epoch", 0) == epoch else runner.scores(predictor, dataset, _eval_indices(dataset))
        last.update(epoch=epoch, scores=scores)
        entry: dict[str, Any] = {}
        for result in due:
            ev = evaluate_test(runner, predictor, dataset, result.run.calibration, scores=scores)
            record = _epoch_record("test", epoch, ev)
            result.log.append((record, ev))
            if result.run.every_epoch:
                entry.update(record)
        added.update(k for k in entry if k != "epoch")
        return entry

    completed = [0]  # epochs completed, whatever the trainer's numbering

    def on_epoch(_epoch: int, predictor: Any) -> dict[str, Any]:
        completed[0] += 1
        due = [r for r in results if r.run.every_epoch or r.run.epoch == completed[0]]
        return evaluate_on_test(completed[0], predictor, due) if due else {}

    _log.info("%s: final training on %s trainval%s%s", _name(runner), dataset.name,
              f" with {runs[0].params}" if runs[0].params else "", f", stopped at epoch {stop}" if stop else "")
    fit = runner.fit(dataset, runs[0].params, seed, epochs=stop, on_epoch=on_epoch if per_epoch else None)
    missed = [r for r in results if not r.log]  # evaluated when the training ended
    if missed:
        evaluate_on_test(completed[0] or stop, fit.predictor, missed)  # not followed per epoch: it ran `stop`
    for result in results:  # each run's history ends at its epoch, without the other runs' test metrics
        end = result.run.epoch
        keep = [h for h in fit.history if end is None or h.get("epoch", 0) <= end]
        result.history = keep if result.run.every_epoch else [{k: v for k, v in h.items() if k not in added} for h in keep]
    return results


def run_protocols(protocols: list[Protocol], runner: Runner, dataset: ZSLDataset, seed: int,
                  progress: bool = False) -> dict[str, Outcome]:
    """Each protocol's outcome for one (runner, dataset, seed), by name.

    Planned protocols make their choices first (no test label read), then every
    distinct training their :class:`TestRun` s need runs once (see :func:`_same_training`).
    Protocols given as ``run`` run on their own.
    """
    outcomes: dict[str, Outcome] = {}
    plans: dict[str, Plan] = {}
    for protocol in protocols:
        if protocol.plan is None:
            outcomes[protocol.name] = protocol.run(runner, dataset, seed, progress)
        else:
            plans[protocol.name] = protocol.plan(runner, dataset, seed, progress)
    runs = [(name, i, run) for name, plan in plans.items() for i, run in enumerate(plan.runs)]
    groups = _same_training(runner, runs)
    served: dict[tuple[str, int], TestResult] = {}
    for group in tqdm(groups, desc="  test runs", leave=False, disable=not progress or len(groups) < 2):
        for (name, i, _), result in zip(group, _serve(runner, dataset, seed, [run for *_, run in group])):
            served[name, i] = result
    for name, plan in plans.items():
        outcomes[name] = plan.finish([served[name, i] for i in range(len(plan.runs))])
    return {protocol.name: outcomes[protocol.name] for protocol in protocols}


def _validation_view(dataset: ZSLDataset) -> ZSLDataset:
    try:
        return dataset.validation_view()
    except DatasetError as exc:
        raise DatasetError(f"protocol 'validation' needs a train/val split: {exc} (or use --protocol paper)") from None


def _plan_validation(runner: Runner, dataset: ZSLDataset, seed: int, progress: bool = False) -> Plan:
    """Select (params, epoch, gamma) on the validation view; ask for one test evaluation of that setting."""
    view = _validation_view(dataset)
    val_labels = view.labels[_eval_indices(view)]
    best: tuple[float, dict, dict, Evaluation, bool] | None = None
    tried = []
    candidates = runner.candidates()
    _log.info("%s: model selection on %s (%d setting%s, every epoch scored on the validation split)",
              _name(runner), view.name, len(candidates), "" if len(candidates) == 1 else "s")
    for params in tqdm(candidates, desc="  grid", leave=False, disable=not progress or len(candidates) < 2):
        log = _train_and_log(runner, view, params, seed, lambda p: _score(runner, p, view, val_labels, "best"), "val")
        for record, ev in log:
            tried.append({"params": params, **record})
            if best is None or ev.H > best[0]:
                best = (ev.H, params, record, ev, record is log[-1][0])
    assert best is not None
    _, params, record, val_ev, to_the_end = best
    selected = {"params": params, "epoch": record["epoch"], "validation": val_ev.metrics(), "tried": len(tried)}
    chosen = [str(params)] * bool(params) + [f"epoch {record['epoch']}"] * (record["epoch"] is not None)
    _log.info("%s: chose %s (validation H %.1f%%)", _name(runner), ", ".join(chosen) or "its one setting", 100 * val_ev.H)
    epochs = [r for r in tried if r["params"] == params]

    def finish(results: list[TestResult]) -> Outcome:
        (result,) = results
        return _outcome(result.log[-1][1], selected, epochs, result.history)

    # the last epoch: a full training, the same as the other protocols' full trainings of these params
    return Plan([TestRun(params, None if to_the_end else record["epoch"], val_ev.gamma)], finish)


def _plan_paper(runner: Runner, dataset: ZSLDataset, seed: int, progress: bool = False) -> Plan:
    """Every candidate setting on ``trainval``, evaluated on test after every epoch with gamma swept on test."""
    candidates = runner.candidates()

    def finish(results: list[TestResult]) -> Outcome:
        logs = [(result, record, ev) for result in results for record, ev in result.log]
        result_h, record_h, ev_h = max(logs, key=lambda item: item[2].H)
        result_t1, record_t1, ev_t1 = max(logs, key=lambda item: item[2].T1)
        selected = {"params": result_h.run.params, "epoch_H": record_h["epoch"], "epoch_T1": record_t1["epoch"],
                    "tried": len(logs)}
        if result_t1.run.params != result_h.run.params:
            selected["params_T1"] = result_t1.run.params
        outcome = _outcome(ev_h, selected, [{"params": result_h.run.params, **r} for r, _ in result_h.log],
                           result_h.history)
        outcome["metrics"]["T1"] = ev_t1.T1
        return outcome

    return Plan([TestRun(params, None, "best", every_epoch=True) for params in candidates], finish)


validation_protocol = Protocol(
    "validation",
    "Protocol `validation`: hyper-parameters, epoch and calibration gamma chosen on the validation split "
    "(train/val classes, best validation H); refit on trainval and evaluated once on test.",
    plan=_plan_validation,
)
paper_protocol = Protocol(
    "paper",
    "Protocol `paper` (as in the paper repositories, optimistic): every candidate setting trained on trainval "
    "and evaluated on test after every epoch; best H over settings and epochs with gamma swept on test, and "
    "best T1, possibly from another setting or epoch.",
    plan=_plan_paper,
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
