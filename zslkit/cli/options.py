"""Command-line options shared by several commands: dataset options, ``--import``, the timm backbone.

One name per concept across commands: ``--dataset-option`` (``--data-option`` also works, with
a note on stderr), ``--model``, ``--seed``. Every option's help states its default or where
the default comes from (the recipe).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import yaml

__all__ = [
    "ImportModule",
    "RegisteredNames",
    "RenamedAppend",
    "RenamedStore",
    "IMAGE_SIZE",
    "add_backbone_options",
    "resolve_image_size",
    "add_dataset_options",
    "add_import_option",
    "add_threads_option",
    "backbone_from_args",
    "import_modules",
    "load_dataset_from_args",
    "parse_assignments",
    "note_other_name",
    "parse_dataset_options",
    "positive_int",
    "positive_number",
    "device_name",
    "refuse_without",
    "check_out_dir",
    "require_dataset_options",
]


class RegisteredNames:
    """argparse ``choices``: the names registered for ``kind``, looked up when argparse reads them (a value to
    check, the help or an error's list), not when the parser is built, so plugins' components are among them."""

    def __init__(self, kind: str):
        self.kind = kind

    def _names(self) -> list[str]:
        import zslkit

        return zslkit.list_components(self.kind)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


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


def add_dataset_options(parser, *, several: bool = False) -> None:
    """``--dataset-option [DATASET.]KEY=VALUE`` (repeatable); ``--data-option`` is accepted as its other name."""
    scope = "for all datasets or, as DATASET.KEY=VALUE, one of them" if several else "(DATASET.KEY=VALUE also works)"
    parser.add_argument("--dataset-option", "--data-option", dest="dataset_option", action=RenamedAppend, default=[],
                        metavar="[DATASET.]KEY=VALUE",
                        help=f"option for the dataset loader, a YAML value, {scope}; repeatable (default: the loader's defaults)")


def parse_dataset_options(items: list[str] | None, datasets: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` (every dataset) or ``DATASET.KEY=VALUE`` (that one) -> dataset -> options."""
    options: dict[str, dict[str, Any]] = {d: {} for d in datasets}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--dataset-option expects [DATASET.]KEY=VALUE, got {item!r}")
        target, dot, name = key.rpartition(".")
        if dot and target not in options:
            raise ValueError(f"--dataset-option {item!r} names dataset {target!r}, not one of {', '.join(datasets)}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"--dataset-option {item!r}: the value is not valid YAML") from None
        for dataset in [target] if dot else datasets:
            options[dataset][name] = parsed
    return options


def load_dataset_from_args(name: str, args):
    """Dataset ``name`` loaded with the ``--dataset-option`` values of ``args`` (checked first)."""
    import zslkit

    options = parse_dataset_options(args.dataset_option, [name])[name]
    require_dataset_options(name, options, "--dataset-option")
    return zslkit.load_dataset(name, **options)


def add_threads_option(parser) -> None:
    """``--threads N``: PyTorch's CPU threads (default: the machine's choice, see :mod:`zslkit.threads`)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads for training (default: the cores this process may use, "
                             "os.sched_getaffinity, less those other jobs keep busy)")


def add_logger_option(parser) -> None:
    """``--logger NAMES``: the metric loggers of the run (kind ``logger``, see docs/tracking.md)."""
    parser.add_argument("--logger", default=None, metavar="NAMES",
                        help="comma-separated metric loggers, written under --out: csv, tensorboard, mlflow, wandb "
                             "(zslkit list logger) (default: the recipe's loggers, else none: the CSV/JSON files in --out)")


def logger_names(text: str | None, recipe: list[str] | None, out: str | None) -> list[str]:
    """The loggers of ``--logger``, else the recipe's, each registered; ``[]`` when neither names any (the
    default: the CSV/JSON files the command writes in ``--out`` are the record). They write under ``--out``:
    naming any without ``--out`` is refused."""
    from zslkit.cli import CLIError
    from zslkit.registry import _suggest, list_components

    names = [n.strip() for n in text.split(",") if n.strip()] if text is not None else list(recipe or [])
    if text is not None and not names:
        raise CLIError(f"--logger {text!r} names no logger; give comma-separated names, e.g. --logger csv,tensorboard")
    known = list_components("logger")
    for name in names:
        if name not in known:
            raise CLIError(f"--logger: no logger named {name!r}{_suggest(name, known)} (zslkit list logger)")
    if names and out is None:
        raise CLIError(f"the loggers {','.join(names)} write under --out, which was not given; add --out DIR")
    return names


# ----------------------------------------------------------------------------- other names
def note_other_name(prog: str, used: str | None, name: str, detail: str = "") -> None:
    """The note on stderr (once per option and process) when an option was given by another name (``used``) than ``name``."""
    if used is None or used == name or (prog, used) in _NOTED:
        return
    _NOTED.add((prog, used))
    logging.getLogger("zslkit.cli").warning("%s: note: %s is another name of %s, the name all zslkit commands use%s",
                                            prog, used, name, detail)


_NOTED: set[tuple[str, str]] = set()


class RenamedStore(argparse._StoreAction):
    """A stored option whose first option string is its name; the others work too, with a note on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        note_other_name(parser.prog, option_string, self.option_strings[0])
        super().__call__(parser, namespace, values, option_string)


class RenamedAppend(argparse._AppendAction):
    """A repeatable option whose first option string is its name; the others work too, with a note on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        note_other_name(parser.prog, option_string, self.option_strings[0])
        super().__call__(parser, namespace, values, option_string)


def add_import_option(parser) -> None:
    """``--import MODULE`` (repeatable): modules imported before the command runs, e.g. to register components."""
    parser.add_argument("--import", dest="imports", action=ImportModule, default=[], metavar="MODULE",
                        help="import this module first (a name importable from here or a path to a .py file), "
                             "e.g. one that registers components with zslkit.register; repeatable (default: none)")


class ImportModule(argparse._AppendAction):
    """``--import MODULE``: imported as soon as it is read, before the command runs (errors: one line, exit 2)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from zslkit.cli import CLIError

        try:
            import_modules([values])
        except CLIError as exc:
            parser.error(str(exc))
        super().__call__(parser, namespace, values, option_string)


def import_modules(names: list[str]) -> None:
    """Import each of ``names``: a module name (the current directory searched first) or a ``.py`` file."""
    import importlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    from zslkit.cli import CLIError

    for name in names:
        path = Path(name)
        try:
            if name.endswith(".py") or os.sep in name:
                if not path.is_file():
                    raise CLIError(f"--import {name}: no such file; give a module name or the path to a .py file")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[path.stem]  # no half-run module left behind
                    raise
            else:
                if "" not in sys.path and os.getcwd() not in sys.path:
                    sys.path.insert(0, os.getcwd())  # as `python -m` does: the current directory's modules
                importlib.import_module(name)
        except CLIError:
            raise
        except ModuleNotFoundError as exc:
            if exc.name != name and not name.startswith(f"{exc.name}."):
                raise CLIError(f"--import {name}: importing it failed: {exc}") from None
            raise CLIError(f"--import {name}: no module named {name!r} in the current directory or the installed "
                           "packages; give an importable module name or the path to a .py file") from None
        except Exception as exc:  # noqa: BLE001 - whatever the user's module raised, named
            raise CLIError(f"--import {name}: importing it failed: {type(exc).__name__}: {exc}") from None


def positive_number(text: str) -> float:
    """argparse ``type``: a finite number above 0 (``--lr nan`` refused naming the flag)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse ``type``: an integer of at least 1 (``--epochs 0`` refused naming the flag)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def device_name(text: str) -> str:
    """argparse ``type``: ``cpu``, ``cuda``, ``cuda:N``, ``auto`` or another device type PyTorch knows."""
    import torch

    if text == "auto":
        return text
    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device PyTorch knows; give cpu, cuda, cuda:N or auto") from None
    return text


#: the side images are read at when nothing says otherwise (``--image-size``'s default)
IMAGE_SIZE = 448


def add_backbone_options(parser, *, default: str | None, help: str, image_size: int | None = IMAGE_SIZE,
                         image_size_help: str = "images are resized and cropped to this many pixels a side") -> None:
    """``--backbone`` (a timm model name), ``--weights``, ``--random-init`` and ``--image-size`` (its default
    ``image_size``; ``None``: the command decides, e.g. from what a checkpoint records)."""
    parser.add_argument("--backbone", default=default, help=help)
    parser.add_argument("--weights", default=None,
                        help="the backbone's local weights file, a .pth state dict or .safetensors (default: none; "
                             "nothing is downloaded, so give this or --random-init)")
    parser.add_argument("--random-init", action="store_true", help="random backbone weights instead of --weights (tests only)")
    parser.add_argument("--image-size", type=positive_int, default=image_size,
                        help=image_size_help + (" (default: %(default)s)" if image_size is not None else ""))


def resolve_image_size(args, meta: dict | None, where) -> int:
    """The side images are read at: ``--image-size``, else the one the checkpoint's run recorded (``meta``'s
    ``inputs``; ``None``: an official state dict); a given size other than the recorded one is used, with a
    warning naming both. ``where``: the checkpoint, for the message."""
    from zslkit.cli import CLIError

    recorded = None if meta is None else (meta.get("inputs") or {}).get("input_size")
    trained = None if recorded is None else int(recorded[-1])
    if args.image_size is None:
        if trained is None:
            source = (f"{where}: an official state dict does not record the image size its model was trained at"
                      if meta is None else f"{where}: the checkpoint does not record the image size its run trained at "
                      "(runs trained on tensors rather than image files, and runs of older zslkit versions, do not)")
            raise CLIError(f"{source}; give --image-size, e.g. --image-size 224")
        return trained
    if trained is not None and args.image_size != trained:
        logging.getLogger("zslkit.cli").warning("--image-size %d: reading images at %d px; the run trained at %d px",
                                                args.image_size, args.image_size, trained)
    return args.image_size


def backbone_from_args(args):
    """The ``timm`` backbone of :func:`add_backbone_options`; weights must be given (nothing is downloaded)."""
    import zslkit
    from zslkit.cli import CLIError

    if args.weights is None and not args.random_init:
        raise CLIError("give --weights PATH (a local .pth/.safetensors file; nothing is downloaded) or --random-init")
    if args.weights is not None and args.random_init:
        raise CLIError(f"--weights {args.weights} and --random-init contradict each other; give one of them")
    return zslkit.create("backbone", "timm", model_name=args.backbone, weights=args.weights, random_init=args.random_init)


def check_out_dir(path: str | None, *, create: bool = True, flag: str = "--out") -> None:
    """Refuse, in a sentence, an output directory that is a file or cannot be made (before any work is done)."""
    import os
    from pathlib import Path

    from zslkit.cli import CLIError

    if path is None:
        return
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"{flag} {path} is a file, not a directory; give a directory for the output files")
    if not create:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"{flag} {path}: cannot create this directory there ({exc.strerror.lower()}); "
                       "give a directory you can write to") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path}: this directory is not writable by you; give a directory you can write to")


def refuse_without(needed: str, needed_given: bool, flags: dict[str, bool]) -> None:
    """Refuse, naming both sides, the flags of ``flags`` (flag -> given?) that apply only with ``needed``
    when ``needed`` was not given."""
    from zslkit.cli import CLIError

    given = [flag for flag, present in flags.items() if present]
    if given and not needed_given:
        raise CLIError(f"{given[0]} applies only with {needed}, which was not given; add {needed} or drop {given[0]}")
