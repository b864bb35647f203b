"""Benchmark cases: the rows of the table, built in or contributed by plugins.

Every registered method and model is a case under its own name. The built-in
methods, plus ``msdn`` and ``dazle`` when registered, run by default. A plugin
adds cases (a component with fixed options, its own grid, restricted to some
datasets) and protocols by implementing the ``zslkit_benchmark_cases`` hook::

    @zslkit.hookimpl
    def zslkit_benchmark_cases():
        return [BenchmarkCase("msdn+mine", component="msdn", kind="model",
                              options={"branches": {...}})]

A plugin whose hook fails, or returns something that is not a case or a
protocol, is reported with a warning and skipped; the rest still run.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from zslkit.bench.clip_runner import ClipRunner
from zslkit.bench.method_runner import MethodRunner
from zslkit.bench.model_runner import ModelRunner
from zslkit.bench.protocols import PROTOCOLS, Protocol, register_protocol
from zslkit.bench.runner import Runner
from zslkit.plugins import PluginWarning, get_plugin_manager
from zslkit.registry import ComponentNotFoundError, component_info, did_you_mean, list_components

__all__ = ["DEFAULT_MODELS", "BenchmarkCase", "available_cases", "clip_cases", "select_cases"]

#: Deep models in the default run when they are registered.
DEFAULT_MODELS: tuple[str, ...] = ("msdn", "dazle")
_KINDS = ("method", "model")
_APN_GLOBAL_CE = {"loss": "attribute_ce", "branches": ["global"], "classes": "seen", "on_probabilities": True}


@dataclass(frozen=True)
class BenchmarkCase:
    """One row of the benchmark table.

    Attributes:
        name: row label, unique among cases (e.g. ``"msdn+temperature"``).
        component: registered method or model it runs.
        kind: ``"method"`` (pooled features, :class:`~zslkit.bench.method_runner.MethodRunner`)
            or ``"model"`` (deep, :class:`~zslkit.bench.model_runner.ModelRunner`).
        options: constructor options (method) or model options (model) fixed for this row.
        param_grid: grid searched by the ``validation`` protocol (name -> values, or a
            list of such dicts); ``None``: the method's ``param_grid`` (models: none).
        train_config: ``kind="model"`` only: ``TrainConfig``, packaged config name or dict of fields.
        datasets: datasets it runs on by default (empty: any).
        default: whether it runs when no ``--model`` are given.
        source: who defined it (``"zslkit"`` or the plugin name); set by the harness.
        clip: ``kind="method"`` only: a CLIP row, ``{"semantics": "names" | "attributes", "ensemble": bool}``
            (:class:`~zslkit.bench.clip_runner.ClipRunner`: the method reads a CLIP model's image and text
            embeddings, the model given to the run); ``None``: pooled features and class attributes.
    """

    name: str
    component: str
    kind: str = "method"
    options: dict[str, Any] = field(default_factory=dict)
    param_grid: Any = None
    train_config: Any = None
    datasets: tuple[str, ...] = ()
    default: bool = False
    source: str = "zslkit"
    clip: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"BenchmarkCase name must be a non-empty string, got {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"BenchmarkCase {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if self.clip is not None and self.kind != "method":
            raise ValueError(f"BenchmarkCase {self.name!r}: clip= is for kind='method' rows, not {self.kind!r}")

    def applies_to(self, dataset: str) -> bool:
        return not self.datasets or dataset in self.datasets

    def settings(self) -> dict[str, Any]:
        """Everything about the case that changes its numbers, as JSON-compatible data."""
        clip = {} if self.clip is None else {"clip": self.clip}
        return json.loads(json.dumps(
            {"component": self.component, "kind": self.kind, "options": self.options,
             "param_grid": self.param_grid, "train_config": self.train_config, **clip},
            sort_keys=True, default=repr,
        ))

    def runner(self, progress: bool = False, backbone: dict[str, Any] | None = None, threads: int | None = None,
               clip: dict[str, Any] | None = None) -> Runner:
        """A fresh runner for this case (``backbone``: models train through it, :class:`ModelRunner`;
        ``threads``: a deep model's CPU threads, ``None``: the machine's choice; ``clip``: the CLIP model
        of a CLIP row, :func:`zslkit.clip.load_clip`'s arguments)."""
        if self.clip is not None:
            return ClipRunner(self.component, self.options, self.param_grid, model=clip, **self.clip)
        if self.kind == "method":
            return MethodRunner(self.component, self.options, self.param_grid)
        return ModelRunner(self.component, self.options, self.param_grid, self.train_config, progress=progress,
                           backbone=backbone, threads=threads)


def pooled_case() -> BenchmarkCase:
    """``pooled``: the pooled-feature baseline of a backbone trained end to end (``--backbone``).

    APN (``apn``, its recipe) with its global branch alone, average-pooled: ``psi = W mean_r(x_r)``,
    ALE on the backbone's pooled map, trained with APN's cross-entropy and attribute regression
    and nothing that localises (no prototypes, no compactness). What attention adds over pooling
    on the same backbone is the difference between this row and ``apn``'s.
    """
    branches = {"global": {"attention": "ale_global", "weight": 1.0, "pool": "mean"}}
    losses = {"xe_global": {**_APN_GLOBAL_CE, "weight": 1.0},
              "attri_global": {"loss": "attribute_regression", "branches": ["global"], "weight": 1e-2}}
    return BenchmarkCase("pooled", component="apn", kind="model", options={"branches": branches, "losses": losses})


def clip_cases() -> list[BenchmarkCase]:
    """The CLIP rows (run when named, with a CLIP model: ``zslkit bench --clip MODEL --clip-weights PATH``).

    ``clip_names`` (class-name prompts; ``clip_names+ensemble``: every template of the dataset's set),
    ``clip_attributes`` (attribute prompts through the class-attribute matrix, no class names) and
    ``clip_linear``: ESZSL (the pooled-feature baseline) on CLIP image embeddings with the class-name
    text embeddings as class semantics (:mod:`zslkit.methods.clip`, :mod:`zslkit.bench.clip_runner`).
    """
    names = {"semantics": "names", "ensemble": False}
    return [BenchmarkCase("clip_names", "clip_names", clip=names),
            BenchmarkCase("clip_names+ensemble", "clip_names", clip={**names, "ensemble": True}),
            BenchmarkCase("clip_attributes", "clip_attributes", clip={"semantics": "attributes", "ensemble": False}),
            BenchmarkCase("clip_linear", "eszsl", clip=names)]


def _builtin_cases() -> list[BenchmarkCase]:
    cases = [pooled_case()] if "apn" in list_components("model") else []
    cases += clip_cases()
    for kind in _KINDS:
        for name in list_components(kind):
            if any(c.name == name for c in cases):
                continue
            plugin = component_info(kind, name).origin.plugin
            default = plugin is None and (kind == "method" or name in DEFAULT_MODELS)
            cases.append(BenchmarkCase(name, name, kind, default=default, source=plugin or "zslkit"))
    return cases


def _plugin_contributions() -> tuple[list[BenchmarkCase], list[Protocol]]:
    cases, protocols = [], []
    hook = get_plugin_manager().hook.zslkit_benchmark_cases
    for impl in hook.get_hookimpls():
        try:
            items = list(impl.function() or [])
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the benchmark
            warnings.warn(f"zslkit plugin {impl.plugin_name!r}: zslkit_benchmark_cases failed: "
                          f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
            continue
        for item in items:
            if isinstance(item, BenchmarkCase):
                cases.append(dataclasses.replace(item, source=impl.plugin_name))
            elif isinstance(item, Protocol):
                protocols.append(item)
            else:
                warnings.warn(f"zslkit plugin {impl.plugin_name!r}: zslkit_benchmark_cases returned "
                              f"{type(item).__name__}, expected BenchmarkCase or Protocol; skipped",
                              PluginWarning, stacklevel=2)
    return cases, protocols


def available_cases() -> dict[str, BenchmarkCase]:
    """Every case by name: registered methods and models, then plugin cases (plugin protocols are registered too)."""
    cases = {c.name: c for c in _builtin_cases()}  # also loads the plugins
    plugin_cases, protocols = _plugin_contributions()
    for case in plugin_cases:
        if case.name in cases:
            warnings.warn(f"zslkit plugin {case.source!r}: benchmark case {case.name!r} is already defined by "
                          f"{cases[case.name].source}; skipped", PluginWarning, stacklevel=2)
            continue
        cases[case.name] = case
    for protocol in protocols:
        if protocol.name not in PROTOCOLS:
            register_protocol(protocol)
    return cases


def select_cases(names: list[str] | None, dataset: str) -> list[BenchmarkCase]:
    """The cases called ``names`` (in that order), or the default cases that apply to ``dataset``."""
    cases = available_cases()
    if names is None:
        return [c for c in cases.values() if c.default and c.applies_to(dataset)]
    chosen = []
    for name in names:
        if name not in cases:
            raise ComponentNotFoundError(
                f"unknown benchmark method {name!r}{did_you_mean(name, cases)} (known: {', '.join(sorted(cases))})"
            )
        chosen.append(cases[name])
    return chosen
