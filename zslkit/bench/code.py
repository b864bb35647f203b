"""Which code computed a benchmark cell: a digest of the source of every package it used.

A cached cell answers only for the code that filled it. While a cell is computed,
:func:`recording` collects every component the registry builds (``zslkit.create``:
models, their attention blocks, encoders and loss terms, datasets); the harness adds the
case's own component. :func:`code_of` turns them into ``{package: digest}``: for each
top-level package (``zslkit``, a plugin's package, a lone module such as a script), its
distribution's version and a SHA-256 of its source files (``.py`` and the recipe
``.yaml`` files under the package's folders, or the module's file). A cached cell is
reused only when every package it names still has the same digest
(:meth:`CodeDigests.stale`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from zslkit.registry import KINDS, Component, on_build

__all__ = ["CodeDigests", "package_of", "record_component", "recording"]

_SOURCE_SUFFIXES = (".py", ".yaml", ".yml")
_recorders: list[set[str]] = []
_plugin_versions: dict[str, str] = {}  # package -> version of the plugin distribution that registered it


def package_of(factory: Any) -> str:
    """The top-level package (or lone module) that defines ``factory`` (``"__main__"`` for a script)."""
    module = getattr(factory, "__module__", None) or getattr(type(factory), "__module__", "")
    return module.split(".")[0] or "__main__"


def _record(component: Component, instance: Any) -> None:
    package = package_of(component.factory)
    if component.origin.plugin_version:
        _plugin_versions[package] = component.origin.plugin_version
    for found in _recorders:
        found.add(package)


def record_component(component: Component) -> None:
    """Count ``component`` as used by the cells being recorded (one looked up, not built: a method's factory)."""
    _record(component, None)


@contextmanager
def recording() -> Iterator[set[str]]:
    """The packages of every component the registry builds inside the block (a set, filled as they are built)."""
    for kind in KINDS:
        on_build(kind, _record)  # once per kind: on_build ignores a hook it already has
    found: set[str] = set()
    _recorders.append(found)
    try:
        yield found
    finally:
        _recorders.remove(found)


def _source_files(package: str) -> list[Path] | None:
    """The source files of ``package`` (all under its folders, or its one file); ``None`` when it has none."""
    module = sys.modules.get(package)
    if module is None:
        try:
            module = importlib.import_module(package)
        except ImportError:
            return None
    folders = list(getattr(module, "__path__", []) or [])
    if folders:
        return sorted(p for folder in folders for p in Path(folder).rglob("*")
                      if p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts and p.is_file())
    try:
        path = inspect.getsourcefile(module)
    except TypeError:  # built-in, or defined at an interactive prompt
        return None
    return [Path(path)] if path and Path(path).is_file() else None


def _version(package: str) -> str | None:
    """The version of the distribution holding ``package``: the plugin's that registered it, else the one
    whose files list it."""
    if package in _plugin_versions:
        return _plugin_versions[package]
    for dist in metadata.packages_distributions().get(package, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _digest(package: str) -> str | None:
    """``"<version>+sha256:<16 hex>"`` of ``package``'s source files, or ``None`` when it has no source to hash."""
    files = _source_files(package)
    if not files:
        return None
    sha = hashlib.sha256()
    root = files[0].parent if len(files) == 1 else Path(sys.modules[package].__path__[0]).parent
    for path in files:
        sha.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        sha.update(b"\0" + path.read_bytes() + b"\0")
    return f"{_version(package) or 'no-version'}+sha256:{sha.hexdigest()[:16]}"


class CodeDigests:
    """The digests of one run, each package hashed once (the source does not change under a running benchmark)."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def digest(self, package: str) -> str | None:
        if package not in self._known:
            self._known[package] = _digest(package)
        return self._known[package]

    def code_of(self, packages: Iterable[str]) -> dict[str, str | None]:
        """``{package: digest}`` for ``packages`` (``zslkit`` always included), sorted by name."""
        return {name: self.digest(name) for name in sorted({"zslkit", *packages})}

    def stale(self, code: Any) -> list[str]:
        """The packages whose source differs from when a cached cell recorded ``code`` (``{package: digest}``);
        a cell without that record, or with a package that has no source to hash, is stale as a whole."""
        if not isinstance(code, dict) or not code:
            return ["(no code record: cached by an older zslkit)"]
        return [name for name, digest in sorted(code.items()) if digest is None or self.digest(name) != digest]
