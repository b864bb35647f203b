"""The component registry: one plain dict per kind, filled by a decorator.

Every swappable part of zslkit (backbones, attention blocks, loss terms, models,
non-deep methods, datasets) is a *factory* -- a class or a function -- stored under
``(kind, name)``. Built-in parts register themselves when their module is
imported; plugins register theirs through the ``zslkit_register_components``
hook (see :mod:`zslkit.plugins`). Lookups load both lazily on first use.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "did_you_mean",
    "KINDS",
    "Component",
    "ComponentNotFoundError",
    "DuplicateComponentError",
    "Origin",
    "component_info",
    "create",
    "get_component",
    "list_components",
    "register",
    "register_component",
    "unregister",
]

#: The kinds of component zslkit knows, in the order they appear in listings.
KINDS: tuple[str, ...] = ("backbone", "attention", "loss", "model", "method", "dataset", "sampler")

#: Modules whose import registers the built-in components.
_BUILTIN_MODULES: tuple[str, ...] = (
    "zslkit.backbones",
    "zslkit.attention",
    "zslkit.losses",
    "zslkit.models",
    "zslkit.methods",
    "zslkit.datasets",
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Origin:
    """Where a component came from: the defining object and, for plugins, the distribution."""

    qualname: str
    plugin: str | None = None
    plugin_version: str | None = None

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


class ComponentNotFoundError(KeyError):
    """Unknown kind or component name. The message lists the closest known names."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class DuplicateComponentError(ValueError):
    """A name was registered twice for one kind without ``override=True``."""


_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
_builtins_loaded = False


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


def _ensure_loaded() -> None:
    """Import the built-in component modules and load plugins, once."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
    from zslkit import plugins  # local import: plugins imports this module

    plugins.load_plugins()


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
    taken, unless ``override=True``.
    """
    _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ValueError(f"component name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"{kind} {name!r}: factory must be a class or function, got {type(factory).__name__}")
    origin = origin or Origin(_qualname(factory))
    existing = _REGISTRY[kind].get(name)
    if existing is not None and not override and existing.factory is not factory:
        raise DuplicateComponentError(
            f"{kind} {name!r} is already registered by {existing.origin}; "
            f"{origin} tried to register it again (pass override=True to replace it)"
        )
    _REGISTRY[kind][name] = Component(kind, name, factory, origin)
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
    _ensure_loaded()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise ComponentNotFoundError(
            f"no {kind} named {name!r}{_suggest(name, list(_REGISTRY[kind]))}"
        ) from None


def get_component(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered under ``(kind, name)``."""
    return component_info(kind, name).factory


def create(kind: str, name: str, **options: Any) -> Any:
    """Call the factory registered under ``(kind, name)`` with ``options``.

    Unknown options raise a ``TypeError`` naming the nearest accepted option.
    """
    factory = get_component(kind, name)
    _check_options(kind, name, factory, options)
    return factory(**options)


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
    _ensure_loaded()
    if kind is None:
        return {k: sorted(fnmatch.filter(_REGISTRY[k], pattern)) for k in KINDS}
    _check_kind(kind)
    return sorted(fnmatch.filter(_REGISTRY[kind], pattern))
