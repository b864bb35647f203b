"""The component registry: one plain dict per kind, filled by a decorator.

Every swappable part of zslkit (backbones, attention blocks, loss terms, models,
non-deep methods, datasets) is a *factory* -- a class or a function -- stored under
``(kind, name)``. Built-in parts register themselves when their module is
imported, on the first lookup.

The registry knows nothing of its users. Others add components through its
public API only: :func:`register` / :func:`register_component` for one, and
:func:`register_components` for several at once, all or nothing (the one place
that checks name clashes). Code that has components to add before the first
lookup -- the plugin loader, which zslkit's package installs -- registers a
*loader* with :func:`add_loader`; every lookup runs the built-in imports and then
the loaders first (:func:`ensure_loaded`).

>>> import zslkit
>>> @zslkit.register("loss", "my_loss")
... class MyLoss(torch.nn.Module): ...
>>> zslkit.create("loss", "my_loss")

Components stay plain Python objects: ``zslkit.get_component("loss", "my_loss")
is MyLoss``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "did_you_mean",
    "KINDS",
    "BuiltinImportError",
    "Component",
    "ComponentNotFoundError",
    "DuplicateComponentError",
    "Origin",
    "Registration",
    "add_loader",
    "component_info",
    "create",
    "ensure_loaded",
    "get_component",
    "list_components",
    "on_build",
    "on_register",
    "register",
    "register_component",
    "register_components",
    "unregister",
]

#: The kinds of component zslkit knows, in the order they appear in listings.
KINDS: tuple[str, ...] = ("backbone", "adapter", "attention", "encoder", "scorer", "loss", "model", "method", "dataset", "sampler",
                          "optimizer", "schedule", "converter", "logger")

#: Modules whose import registers the built-in components.
_BUILTIN_MODULES: tuple[str, ...] = (
    "zslkit.backbones",
    "zslkit.adapters",
    "zslkit.attention",
    "zslkit.encoders",
    "zslkit.scorers",
    "zslkit.losses",
    "zslkit.models",
    "zslkit.methods",
    "zslkit.datasets",
    "zslkit.optim",
    "zslkit.loggers",
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Origin:
    """Where a component came from: the defining object and, for plugins, the distribution."""

    qualname: str
    plugin: str | None = None
    plugin_version: str | None = None

    @classmethod
    def of(cls, factory: Callable[..., Any], plugin: str | None = None, plugin_version: str | None = None) -> Origin:
        """The origin of ``factory``: its ``module.qualname``, plus the plugin that gave it, if any."""
        return cls(_qualname(factory), plugin=plugin, plugin_version=plugin_version)

    def __str__(self) -> str:
        if self.plugin is None:
            return self.qualname
        version = f" {self.plugin_version}" if self.plugin_version else ""
        return f"{self.qualname} (plugin {self.plugin}{version})"


@dataclass(frozen=True)
class Component:
    """One registry entry."""

    kind: str
    name: str
    factory: Callable[..., Any]
    origin: Origin


@dataclass(frozen=True)
class Registration:
    """One component to add with :func:`register_components`.

    ``origin`` defaults to :meth:`Origin.of` the factory; ``override=True`` replaces
    an entry of the same name instead of refusing it.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    origin: Origin | None = None
    override: bool = False


class ComponentNotFoundError(KeyError):
    """Unknown kind or component name. The message lists the closest known names.

    ``kind`` and ``name``: the component looked up (``None`` for an unknown kind).
    """

    def __init__(self, message: str, kind: str | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.name = kind, name

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class DuplicateComponentError(ValueError):
    """A name was registered twice for one kind without ``override=True``."""


class BuiltinImportError(ImportError):
    """A built-in component module failed to import; every lookup raises this, naming it."""


_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
#: "new" -> "loading" -> "loaded"; or the BuiltinImportError a failed import left behind.
_builtins_state: str | BuiltinImportError = "new"
_loaders: list[Callable[[], Any]] = []
#: functions ``hook(component)`` run on every component before it is registered (they raise to refuse it).
_REGISTER_HOOKS: list[Callable[[Component], None]] = []
#: kind -> functions ``hook(component, instance)`` run on every instance :func:`create` builds.
_BUILD_HOOKS: dict[str, list[Callable[[Component, Any], None]]] = {kind: [] for kind in KINDS}


def _qualname(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", None) or "<unknown module>"
    name = getattr(factory, "__qualname__", None) or repr(factory)
    return f"{module}.{name}"


def did_you_mean(word: str, choices, *, n: int = 3, cutoff: float = 0.5) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=cutoff)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def _suggest(word: str, choices: list[str]) -> str:
    hint = did_you_mean(word, choices)
    if hint:
        return hint
    if choices:
        return "; known: " + ", ".join(sorted(choices))
    return "; none are registered"


def _check_kind(kind: str) -> None:
    if kind not in _REGISTRY:
        raise ComponentNotFoundError(f"unknown component kind {kind!r}{_suggest(kind, list(KINDS))}")


def add_loader(loader: Callable[[], Any]) -> None:
    """Run ``loader()`` before every lookup, after the built-in components are in place.

    A loader adds components through this module's public API (zslkit's package
    installs the plugin loader this way). It is called on each lookup, so it must
    return at once when it has nothing new to add; adding the same loader twice
    adds it once.
    """
    if loader not in _loaders:
        _loaders.append(loader)


def _load_builtins() -> bool:
    """Import the built-in modules once; False while they are being imported (a lookup from one of them)."""
    global _builtins_state
    if isinstance(_builtins_state, BuiltinImportError):
        raise _builtins_state
    if _builtins_state != "new":
        return _builtins_state == "loaded"
    _builtins_state = "loading"
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except BaseException as exc:  # an interrupted import leaves them incomplete too
            _builtins_state = BuiltinImportError(
                f"zslkit's built-in components are incomplete: importing {module} failed: {type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, Exception):
                raise
            raise _builtins_state from exc
    _builtins_state = "loaded"
    return True


def ensure_loaded() -> None:
    """What every lookup does first: import the built-in components (once), then run the loaders.

    Raises :class:`BuiltinImportError` naming the module and its error, on this and
    every later call, when a built-in module failed to import.
    """
    if not _load_builtins():
        return  # loaders run once the built-ins are all in place, so that a clash names both sides
    for loader in list(_loaders):
        loader()


def _check_registration(entry: Registration, staged: dict[tuple[str, str], Component]) -> Component:
    """The entry as a :class:`Component`, or the error refusing it (clash with the registry or the batch)."""
    kind, name, factory = entry.kind, entry.name, entry.factory
    _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ValueError(f"component name must be a non-empty string, got {name!r}")
    if not callable(factory):
        plugin = entry.origin.plugin if entry.origin is not None else None
        where = f" (plugin {plugin})" if plugin else ""
        raise TypeError(f"{kind} {name!r}{where}: factory must be a class or function, got {type(factory).__name__}")
    origin = entry.origin or Origin.of(factory)
    existing = staged.get((kind, name)) or _REGISTRY[kind].get(name)
    if existing is not None and not entry.override and existing.factory is not factory:
        raise DuplicateComponentError(
            f"{kind} {name!r} is already registered by {existing.origin}; "
            f"{origin} tried to register it again (pass override=True to replace it)"
        )
    component = Component(kind, name, factory, origin)
    for hook in _REGISTER_HOOKS:
        hook(component)
    return component


def register_components(entries: Iterable[Registration]) -> list[Component]:
    """Register several components at once, all or nothing; return their entries.

    Every entry is checked first -- known kind, non-empty name, callable factory, no
    clash with a registered name or another entry of the batch unless
    ``override=True``, and the :func:`on_register` hooks (the package's contract check) --
    and nothing is registered if one fails. A clash raises
    :class:`DuplicateComponentError` naming both origins. Registering the very same
    factory under its name again is allowed (it changes nothing but the origin).
    """
    staged: dict[tuple[str, str], Component] = {}
    for entry in entries:
        component = _check_registration(entry, staged)
        staged[(component.kind, component.name)] = component
    for (kind, name), component in staged.items():
        _REGISTRY[kind][name] = component
    return list(staged.values())


def register_component(
    kind: str,
    name: str,
    factory: F,
    *,
    override: bool = False,
    origin: Origin | None = None,
) -> F:
    """Store ``factory`` under ``(kind, name)`` and return it unchanged.

    Raises :class:`DuplicateComponentError` naming both origins when the name is
    taken, unless ``override=True``. (One entry of :func:`register_components`.)
    """
    register_components([Registration(kind, name, factory, origin=origin, override=override)])
    return factory


def register(kind: str, name: str | None = None, *, override: bool = False) -> Callable[[F], F]:
    """Decorator registering a class or function as a component.

    ``name`` defaults to the factory's ``__name__`` lower-cased.
    """
    _check_kind(kind)

    def decorator(factory: F) -> F:
        return register_component(kind, name or factory.__name__.lower(), factory, override=override)

    return decorator


def unregister(kind: str, name: str) -> Component:
    """Remove and return a registry entry (mainly for tests and interactive use)."""
    _check_kind(kind)
    try:
        return _REGISTRY[kind].pop(name)
    except KeyError:
        raise ComponentNotFoundError(
            f"no {kind} named {name!r}{_suggest(name, list(_REGISTRY[kind]))}"
        ) from None


def component_info(kind: str, name: str) -> Component:
    """The registry entry: factory plus origin (which module or plugin gave it)."""
    _check_kind(kind)
    ensure_loaded()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise ComponentNotFoundError(
            f"no {kind} named {name!r}{_suggest(name, list(_REGISTRY[kind]))}", kind, name
        ) from None


def get_component(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered under ``(kind, name)``."""
    return component_info(kind, name).factory


def create(kind: str, name: str, **options: Any) -> Any:
    """Call the factory registered under ``(kind, name)`` with ``options``.

    Unknown options raise a ``TypeError`` naming the nearest accepted option.
    """
    component = component_info(kind, name)
    _check_options(kind, name, component.factory, options)
    instance = component.factory(**options)
    for hook in _BUILD_HOOKS[kind]:
        hook(component, instance)
    return instance


def on_register(hook: Callable[[Component], None]) -> None:
    """Run ``hook(component)`` on every component before it is registered; an exception refuses it (once per hook).

    The package installs its contract check of factories this way (the registry knows nothing of it).
    """
    if hook not in _REGISTER_HOOKS:
        _REGISTER_HOOKS.append(hook)


def on_build(kind: str, hook: Callable[[Component, Any], None]) -> None:
    """Run ``hook(component, instance)`` on every instance :func:`create` builds for ``kind`` (once per hook).

    The package installs its contract checks this way (the registry knows nothing of them).
    """
    _check_kind(kind)
    if hook not in _BUILD_HOOKS[kind]:
        _BUILD_HOOKS[kind].append(hook)


def _check_options(kind: str, name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in options:
        if key not in accepted:
            raise TypeError(f"{kind} {name!r} has no option {key!r}{_suggest(key, accepted)}")


def list_components(kind: str | None = None, pattern: str = "*") -> list[str] | dict[str, list[str]]:
    """Sorted component names matching ``pattern`` (fnmatch); with no kind, a dict kind -> names."""
    ensure_loaded()
    if kind is None:
        return {k: sorted(fnmatch.filter(_REGISTRY[k], pattern)) for k in KINDS}
    _check_kind(kind)
    return sorted(fnmatch.filter(_REGISTRY[kind], pattern))
