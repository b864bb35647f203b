"""Result tables: Markdown for the terminal, CSV and JSON for files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

COLUMNS: tuple[str, ...] = ("T1", "U", "S", "H", "AUSUC")


def format_markdown(rows: list[dict[str, Any]], columns=COLUMNS, title: str | None = None) -> str:
    """Rows are dicts with ``method`` and metric values in [0, 1]; printed as percentages."""
    head = ["method", *columns]
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(columns)) + "|")
    for row in rows:
        cells = [str(row["method"])]
        for col in columns:
            value = row.get(col)
            std = row.get(f"{col}_std")
            if value is None:
                cells.append("-")
            elif std is not None:
                cells.append(f"{100 * value:.1f} ± {100 * std:.1f}")
            else:
                cells.append(f"{100 * value:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], out_dir: str | Path, stem: str = "results") -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.json`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()})
    json_path.write_text(json.dumps(rows, indent=2, default=str))
    return csv_path, json_path
