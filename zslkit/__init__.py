"""zslkit: attention-based zero-shot learning components for PyTorch.

The public API lives here; every component is also importable from its own
module as a plain Python object.

Importing the package installs the plugin loader into the registry
(:func:`zslkit.registry.add_loader`): the registry itself knows nothing of
plugins, and plugins are loaded on the first lookup, not here.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from zslkit import contracts as _contracts
from zslkit import plugins as _plugins
from zslkit import registry as _registry
from zslkit.hookspecs import hookimpl
from zslkit.plugins import list_plugins
from zslkit.registry import (
    KINDS,
    ComponentNotFoundError,
    DuplicateComponentError,
    component_info,
    create,
    get_component,
    list_components,
    register,
)

_registry.on_register(_contracts.check_registration)  # a factory that cannot take its kind's options is refused
for _kind in ("attention", "encoder", "scorer", "loss", "model", "converter"):
    _registry.on_build(_kind, _contracts.on_built)  # registered names recorded, model contract checked

try:
    __version__ = _metadata.version("zslkit")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_registry.add_loader(_plugins.load_plugins)


def create_model(name: str, **options):
    """Build a registered model, e.g. ``zslkit.create_model("msdn", class_attributes=..., ...)``.

    The model is checked against the model contract (``docs/concepts.md``) and remembers its
    registered name (``model.component_name``), which checkpoints record.
    """
    return create("model", name, **options)


def from_pretrained(directory):
    """The model saved in a model folder (``model.save_pretrained(dir)``, ``zslkit export RUN DIR``), rebuilt
    from the folder alone: :func:`zslkit.pretrained.from_pretrained`."""
    import importlib

    # by name, as the registry imports the built-ins: zslkit.pretrained sits above the package's API
    return importlib.import_module("zslkit.pretrained").from_pretrained(directory)


def load_dataset(name: str, **options):
    """Build a registered dataset, e.g. ``zslkit.load_dataset("synthetic", seed=0)``."""
    return create("dataset", name, **options)


__all__ = [
    "KINDS",
    "ComponentNotFoundError",
    "DuplicateComponentError",
    "__version__",
    "component_info",
    "create",
    "create_model",
    "from_pretrained",
    "get_component",
    "hookimpl",
    "list_components",
    "list_plugins",
    "load_dataset",
    "register",
]
