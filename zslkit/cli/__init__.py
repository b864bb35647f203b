"""The ``zslkit`` command line.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``,
which registers the parser and sets ``func`` (``args -> int`` exit code).
Errors reach the user as one line on stderr and a non-zero exit, no traceback
(set ``ZSLKIT_DEBUG=1`` to see it). Results and tables go to stdout, everything
else to stderr through :mod:`logging` (:mod:`zslkit.cli.logs`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Modules of ``zslkit.cli`` that define subcommands, in help order.
COMMANDS: tuple[str, ...] = ("listing", "data", "extract", "embed", "train", "evaluate", "export", "viz", "bench",
                             "leakage")


class CLIError(Exception):
    """An error meant for the user: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from zslkit import __version__

    parser = _Parser(prog="zslkit", description="Attention-based zero-shot learning toolkit.")
    parser.add_argument("--version", action="version", version=f"zslkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"zslkit.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from zslkit.cli.logs import configure_logging

    configure_logging()  # messages and progress to stderr, results to stdout
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("zslkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`zslkit list | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 141
    except Exception as exc:  # noqa: BLE001 - the CLI reports, it does not crash
        if os.environ.get("ZSLKIT_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"zslkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
