"""Plugin loading through pluggy and the ``zslkit`` entry-point group.

This module sits above :mod:`zslkit.registry` and uses only its public API: the
package (``zslkit/__init__.py``) installs :func:`load_plugins` as a registry
loader (:func:`zslkit.registry.add_loader`), and each plugin's components are
added with :func:`zslkit.registry.register_components`, all or nothing.

Plugins are loaded lazily, on the first registry lookup (not at ``import
zslkit``). Each plugin is imported and asked to register its components inside
its own guard: a plugin that fails to import or to register is reported with a
warning and recorded in :func:`list_plugins`, and never breaks zslkit or the
other plugins.

Environment variables:

``ZSLKIT_DISABLE_PLUGIN_AUTOLOAD=1``
    do not load plugins from entry points at all;
``ZSLKIT_DISABLED_PLUGINS=a,b``
    skip the named plugins (entry-point name or distribution name).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from zslkit import hookspecs, registry
from zslkit.contracts import check_factory
from zslkit.registry import Origin, Registration

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginWarning",
    "Registrar",
    "get_plugin_manager",
    "installed_plugins",
    "list_plugins",
    "load_plugins",
    "register_plugin",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
AUTOLOAD_ENV = "ZSLKIT_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_ENV = "ZSLKIT_DISABLED_PLUGINS"


class PluginWarning(UserWarning):
    """A plugin failed to load or register; zslkit goes on without it."""


@dataclass
class PluginInfo:
    """What :func:`list_plugins` reports for one plugin."""

    name: str
    version: str | None
    components: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    distribution: str | None = None


class Registrar:
    """Handed to ``zslkit_register_components``; collects one plugin's components.

    Registrations are staged and committed together once the hook returns, so a
    plugin that fails half-way leaves nothing behind.
    """

    def __init__(self, plugin: str, version: str | None = None) -> None:
        self.plugin = plugin
        self.version = version
        self._staged: list[Registration] = []

    def register(self, kind: str, name: str, factory: Callable[..., Any], *, override: bool = False) -> None:
        """Register ``factory`` as component ``name`` of ``kind``."""
        check_factory(kind, name, factory, source=f"plugin {self.plugin}")
        origin = Origin.of(factory, plugin=self.plugin, plugin_version=self.version)
        self._staged.append(Registration(kind, name, factory, origin=origin, override=override))

    def _commit(self) -> list[tuple[str, str]]:
        return [(c.kind, c.name) for c in registry.register_components(self._staged)]


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_plugins: dict[str, PluginInfo] = {}
_autoloaded = False


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide pluggy manager with zslkit's hook specs."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            _manager.add_hookspecs(hookspecs)
        return _manager


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLED_ENV, "").split(",") if n.strip()}


def _add_to_pluggy(plugin: object, name: str) -> None:
    """Register ``plugin`` with pluggy and check its hook implementations (``check_pending``).

    A hook implementation no spec matches (a misspelled hook name) raises
    :class:`pluggy.PluginValidationError` naming the closest hook, and the plugin is
    taken out again.
    """
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        callers = {n: c for n, c in vars(pm.hook).items() if not n.startswith("_")}
        unknown = [n for n, c in callers.items() if not c.has_spec() and any(i.plugin is plugin for i in c.get_hookimpls())]
        if not unknown:
            return  # another plugin's, registered with this manager outside zslkit's loader
        pm.unregister(plugin)
        hint = registry.did_you_mean(unknown[0], [n for n, c in callers.items() if c.has_spec()])
        raise pluggy.PluginValidationError(plugin, f"unknown hook {unknown[0]!r} in plugin {plugin!r}{hint}") from None


def _register_components_of(plugin: object, info: PluginInfo) -> None:
    pm = get_plugin_manager()
    others = [p for p in pm.get_plugins() if p is not plugin]
    caller = pm.subset_hook_caller("zslkit_register_components", remove_plugins=others)
    registrar = Registrar(info.distribution or info.name, info.version)
    caller(registrar=registrar)
    info.components = registrar._commit()


def _report(info: PluginInfo, stage: str, exc: BaseException) -> None:
    info.error = f"{stage} failed: {type(exc).__name__}: {exc}"
    warnings.warn(f"zslkit plugin {info.name!r}: {info.error}", PluginWarning, stacklevel=3)


def register_plugin(plugin: object, name: str | None = None, version: str | None = None) -> PluginInfo:
    """Register an in-process plugin object or module (no entry point needed).

    Its components are registered at once. Errors are reported, not raised.
    """
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    with _lock:
        info = PluginInfo(name=name, version=version)
        _plugins[name] = info
        try:
            _add_to_pluggy(plugin, name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break zslkit
            _report(info, "registration with pluggy", exc)
            return info
        registry.ensure_loaded()  # built-ins (and entry-point plugins) first, so that a clash names both sides
        try:
            _register_components_of(plugin, info)
        except Exception as exc:  # noqa: BLE001
            _report(info, "zslkit_register_components", exc)
        return info


def load_plugins() -> list[PluginInfo]:
    """Load plugins from the ``zslkit`` entry-point group, once per process."""
    global _autoloaded
    with _lock:
        if _autoloaded:
            return list(_plugins.values())
        _autoloaded = True
        for ep, info in _enabled_entry_points():
            _plugins[ep.name] = info
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001
                _report(info, "import", exc)
                continue
            try:
                _add_to_pluggy(plugin, ep.name)
            except Exception as exc:  # noqa: BLE001
                _report(info, "registration with pluggy", exc)
                continue
            try:
                _register_components_of(plugin, info)
            except Exception as exc:  # noqa: BLE001
                _report(info, "zslkit_register_components", exc)
        return list(_plugins.values())


def _enabled_entry_points() -> list[tuple[metadata.EntryPoint, PluginInfo]]:
    """The ``zslkit`` entry points that autoloading would load (none under ``ZSLKIT_DISABLE_PLUGIN_AUTOLOAD``,
    less ``ZSLKIT_DISABLED_PLUGINS``), each with its (not yet loaded) :class:`PluginInfo`; nothing is imported."""
    if os.environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return []
    disabled, found = _disabled_names(), []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        if ep.name in disabled or (dist_name and dist_name in disabled):
            continue
        found.append((ep, PluginInfo(name=ep.name, version=dist.version if dist is not None else None, distribution=dist_name)))
    return found


def installed_plugins() -> list[PluginInfo]:
    """The plugins that the first registry lookup would load, read from the package metadata without importing
    them (``components`` empty: only loading a plugin tells them; see :func:`list_plugins`)."""
    return sorted((info for _, info in _enabled_entry_points()), key=lambda p: p.name)


def list_plugins() -> list[PluginInfo]:
    """Every plugin seen: name, version, components given and load error (or None)."""
    registry.ensure_loaded()
    return sorted(_plugins.values(), key=lambda p: p.name)


def _reset_for_tests() -> None:
    """Forget loaded plugins and their components (tests only)."""
    global _manager, _autoloaded
    with _lock:
        for info in _plugins.values():
            for kind, name in info.components:
                try:
                    registry.unregister(kind, name)
                except registry.ComponentNotFoundError:
                    pass
        _plugins.clear()
        _manager = None
        _autoloaded = False

