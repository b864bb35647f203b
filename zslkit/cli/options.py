"""Parsing ``KEY=VALUE`` command-line options shared by ``zslkit train`` and ``zslkit eval``."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["add_data_options", "load_dataset_from_args", "parse_assignments"]


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


def load_dataset_from_args(name: str, args):
    import zslkit

    return zslkit.load_dataset(name, **parse_assignments(args.data_option, "--data-option"))
