"""Hook specifications for zslkit plugins (pluggy project name ``zslkit``).

A plugin is a module or object with functions marked ``@zslkit.hookimpl``,
advertised in its package metadata under the ``zslkit`` entry-point group::

    [project.entry-points.zslkit]
    my_plugin = "my_package.zslkit_plugin"

Every hook below is documented in the "Hook reference" of
``docs/writing-a-plugin.md`` with its exact signature (a test keeps the two in sync).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from zslkit.plugins import Registrar

PROJECT_NAME = "zslkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def zslkit_register_components(registrar: Registrar) -> None:
    """Register the plugin's components.

    Call ``registrar.register(kind, name, factory)`` once per component. The
    registration of one plugin is all-or-nothing: if any call fails (a name
    clash, an unknown kind, a factory that breaks its kind's contract), none of
    that plugin's components are kept and the error is recorded in
    :func:`zslkit.list_plugins`.
    """


@hookspec
def zslkit_benchmark_cases() -> list[Any]:
    """Return benchmark cases (:class:`zslkit.bench.BenchmarkCase`) to add to ``zslkit bench``.

    Each case is a table row: a registered method or model with fixed options,
    its own hyper-parameter grid, and optionally the datasets it applies to
    (datasets and components themselves are added through
    ``zslkit_register_components``). The list may also hold
    :class:`zslkit.bench.Protocol` objects, which become available as
    ``zslkit bench --protocol NAME``. A hook that raises, or returns anything
    else, is reported with a warning and skipped.
    """
