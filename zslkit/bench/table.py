"""Result tables: Markdown for the terminal (dataset blocks side by side), CSV and JSON for files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zslkit.atomic import write_csv_atomic, write_json_atomic

COLUMNS: tuple[str, ...] = ("T1", "U", "S", "H", "AUSUC")

__all__ = ["COLUMNS", "format_markdown", "format_value", "write_csv", "write_results"]


def format_value(value: float | None, std: float | None = None, signed: bool = False) -> str:
    """A fraction as a percentage with one decimal, ``mean ± std`` when ``std`` is given, ``-`` when missing;
    ``signed``: with its sign (``+4.5``), for differences. A text (why there is no number) is shown as it is."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    mean = f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    return mean if std is None else f"{mean} ± {100 * std:.1f}"


def format_markdown(rows: list[dict[str, Any]], columns=COLUMNS, title: str | None = None,
                    signed_columns: tuple[str, ...] = ()) -> str:
    """Pivot rows into one Markdown table.

    Each row is a dict with ``method``, optionally ``dataset``, metric values in
    [0, 1] under the column names, optional ``<column>_std`` and optional ``signed``
    (a row of differences, shown with signs; ``signed_columns``: columns that are always differences). Rows of the same
    method on different datasets share a line; each dataset gets a block of
    columns (headed ``<dataset> <column>`` when there are several datasets).
    """
    datasets = list(dict.fromkeys(str(r.get("dataset", "")) for r in rows))
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    cell = {(str(r["method"]), str(r.get("dataset", ""))): r for r in rows}
    head = [f"{d} {c}".strip() if len(datasets) > 1 else c for d in datasets for c in columns]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(["method", *head]) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(head)) + "|")
    for method in methods:
        values = []
        for dataset in datasets:
            row = cell.get((method, dataset), {})
            values += [format_value(row.get(c), row.get(f"{c}_std"), row.get("signed", False) or c in signed_columns)
                       for c in columns]
        lines.append("| " + " | ".join([method, *values]) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """One line per row, columns in order of first appearance; nested values as JSON strings (atomic)."""
    return write_csv_atomic(rows, Path(path))


def write_results(rows: list[dict[str, Any]], out_dir: str | Path, stem: str = "results") -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.json`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    csv_path, json_path = write_csv(rows, out / f"{stem}.csv"), out / f"{stem}.json"
    write_json_atomic(json_path, rows, indent=2, default=str)
    return csv_path, json_path
