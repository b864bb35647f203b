"""The benchmark harness: run registered methods and models under one protocol, print the table.

* :func:`run_benchmark` / :func:`write_outputs` (:mod:`zslkit.bench.harness`): the cells, the cache, the files.
* :class:`BenchmarkCase` (:mod:`zslkit.bench.case`): a row; plugins add theirs via ``zslkit_benchmark_cases``.
* :class:`Protocol` (:mod:`zslkit.bench.protocols`): ``validation`` (default) and ``paper``;
  :func:`run_protocols` runs several for one cell, sharing their trainings.
* :func:`evaluate` (from :mod:`zslkit.metrics.evaluation`, its home): scores -> T1, U, S, H, AUSUC with
  calibrated stacking.
"""

from zslkit.bench.case import BenchmarkCase, available_cases, select_cases
from zslkit.bench.harness import BenchmarkResult, run_benchmark, write_outputs
from zslkit.bench.protocols import PROTOCOLS, Protocol, get_protocol, register_protocol, run_protocols
from zslkit.bench.published import PUBLISHED, published
from zslkit.bench.table import COLUMNS, format_markdown, write_results
from zslkit.metrics.evaluation import Evaluation, best_calibration, evaluate, evaluate_scores

__all__ = [
    "COLUMNS",
    "PROTOCOLS",
    "PUBLISHED",
    "BenchmarkCase",
    "BenchmarkResult",
    "Evaluation",
    "Protocol",
    "available_cases",
    "best_calibration",
    "evaluate",
    "evaluate_scores",
    "format_markdown",
    "get_protocol",
    "published",
    "register_protocol",
    "run_benchmark",
    "run_protocols",
    "select_cases",
    "write_outputs",
    "write_results",
]
