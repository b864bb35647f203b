"""Command-line options shared by several commands: ``KEY=VALUE`` data options, the timm backbone."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = [
    "add_backbone_options",
    "add_data_options",
    "add_threads_option",
    "backbone_from_args",
    "load_dataset_from_args",
    "parse_assignments",
    "require_dataset_options",
]


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}``; values are read as YAML (numbers, lists, ...)."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ValueError(f"{flag} {item!r}: the value is not valid YAML") from None
        *parents, leaf = key.split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"{flag} {item!r}: {part!r} was already set to a value")
        target[leaf] = value
    return result


def add_data_options(parser) -> None:
    parser.add_argument(
        "--data-option", action="append", metavar="KEY=VALUE", help="option for the dataset loader (repeatable)"
    )


def require_dataset_options(name: str, options: dict[str, Any], flag: str, prefix: str = "") -> None:
    """Refuse, in one line naming the option and how to give it, a dataset whose loader lacks a required option.

    Checked before anything runs (no progress bar yet): e.g. ``dataset 'cub' needs option
    'xlsa17': give --dataset-option xlsa17=PATH``. ``prefix`` (``"cub."``) is put before the
    key when the flag must name the dataset.
    """
    import inspect

    import zslkit
    from zslkit.cli import CLIError

    try:
        params = inspect.signature(zslkit.get_component("dataset", name)).parameters.values()
    except (TypeError, ValueError):
        return
    for param in params:
        if param.default is inspect.Parameter.empty and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            if param.name not in options:
                placeholder = "PATH" if "Path" in str(param.annotation) else "VALUE"
                raise CLIError(
                    f"dataset {name!r} needs option {param.name!r}: give {flag} {prefix}{param.name}={placeholder}"
                )


def load_dataset_from_args(name: str, args):
    import zslkit

    options = parse_assignments(args.data_option, "--data-option")
    require_dataset_options(name, options, "--data-option")
    return zslkit.load_dataset(name, **options)


def add_threads_option(parser) -> None:
    """``--threads N``: PyTorch's CPU threads (default: the cores this process may use, see :mod:`zslkit.threads`)."""
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="CPU threads for training (default: the cores this process may use, "
                             "os.sched_getaffinity; give fewer on a machine shared with other jobs)")


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 thread, got {value}")
    return value


def add_backbone_options(parser, *, default: str | None, help: str) -> None:
    """``--backbone`` (a timm model name), ``--weights``, ``--random-init`` and ``--image-size``."""
    parser.add_argument("--backbone", default=default, help=help)
    parser.add_argument("--weights", default=None, help="local weights file (.pth state dict or .safetensors)")
    parser.add_argument("--random-init", action="store_true", help="random backbone weights (tests only)")
    parser.add_argument("--image-size", type=int, default=448)


def backbone_from_args(args):
    """The ``timm`` backbone of :func:`add_backbone_options`; weights must be given (nothing is downloaded)."""
    import zslkit
    from zslkit.cli import CLIError

    if args.weights is None and not args.random_init:
        raise CLIError("give --weights PATH (a local .pth/.safetensors file; nothing is downloaded) or --random-init")
    return zslkit.create("backbone", "timm", model_name=args.backbone, weights=args.weights, random_init=args.random_init)
