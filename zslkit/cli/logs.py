"""Where the command line's messages go: results and tables to stdout, everything else to stderr.

Progress and messages (the recipe line, one line per epoch naming the model, dataset,
split and seed, one line per benchmark cell, what the cache reused) are :mod:`logging`
records of the ``zslkit`` loggers; the command line shows them on stderr, above any
progress bar, so that ``zslkit bench ... > table.txt`` captures the table alone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["configure_logging", "quieter"]


class _StderrHandler(logging.Handler):
    """Writes each record on stderr through ``tqdm.write``, which keeps progress bars below it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def configure_logging(level: int = logging.INFO) -> None:
    """Show the ``zslkit`` loggers' records at ``level`` and above on stderr (once per process)."""
    logger = logging.getLogger("zslkit")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


@contextmanager
def quieter(*names: str) -> Iterator[None]:
    """Inside the block, the loggers ``names`` show warnings and errors only (their levels restored after)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
