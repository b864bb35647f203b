"""The benchmark harness: run registered methods and models under one protocol, print the table."""

from zslkit.bench.evaluate import evaluate_scores
from zslkit.bench.table import COLUMNS, format_markdown, write_results

__all__ = ["COLUMNS", "evaluate_scores", "format_markdown", "write_results"]
