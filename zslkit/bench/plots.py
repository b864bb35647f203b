"""PNG plots of benchmark results (matplotlib, no display needed).

* :func:`plot_seen_unseen_curves`: for one dataset, every method's seen-unseen
  accuracy curve (calibrated stacking as gamma sweeps) on one chart, AUSUC in the legend.
* :func:`plot_training_curves`: for one deep-model cell, its training losses (one
  axis per term) and the per-epoch metrics the protocol logged, the chosen epoch marked.
* :func:`plot_protocol_gap`: for one dataset, every method's H under each protocol
  of a run with several (validation vs paper), the difference written above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["chosen_epoch", "plot_protocol_gap", "plot_seen_unseen_curves", "plot_training_curves", "training_figure"]


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_seen_unseen_curves(cells: list[dict[str, Any]], dataset: str, path: str | Path, caption: str = "") -> Path:
    """One chart: x = U, y = S (in %), one line per method (its first seed's curve), a dot at its reported (U, S)."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    shown = set()
    for cell in cells:
        if cell["dataset"] != dataset or cell["method"] in shown or not cell.get("curve"):
            continue
        shown.add(cell["method"])
        curve = cell["curve"]
        u = [100 * v for v in curve["unseen"]]
        s = [100 * v for v in curve["seen"]]
        (line,) = ax.plot(u, s, label=f"{cell['method']} (AUSUC {100 * cell['metrics']['AUSUC']:.1f})")
        ax.plot(100 * cell["metrics"]["U"], 100 * cell["metrics"]["S"], "o", color=line.get_color())
    ax.set_xlabel("unseen accuracy U (%)")
    ax.set_ylabel("seen accuracy S (%)")
    ax.set_title(f"{dataset}: seen-unseen curves (test){' - ' + caption if caption else ''}")
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize="small")
    return _save(fig, path)


def chosen_epoch(cell: dict[str, Any]) -> int | None:
    """The epoch the cell's reported model stopped at: the one chosen on validation (``selected.epoch``)
    or, under ``paper``, the best-``H`` epoch on test (``selected.epoch_H``); ``None`` when not known."""
    selected = cell.get("selected") or {}
    epoch = selected.get("epoch", selected.get("epoch_H"))
    return int(epoch) if isinstance(epoch, (int, float)) else None


def _loss_keys(history: list[dict[str, Any]]) -> list[str]:
    """The history's loss entries, total (``loss``) first."""
    keys = {k for h in history for k, v in h.items() if "loss" in k and isinstance(v, (int, float))}
    return sorted(keys, key=lambda k: (k != "loss", k))


def training_figure(cell: dict[str, Any]) -> Figure:
    """The figure of :func:`plot_training_curves`: one small axis per loss term (each on its own scale),
    and the protocol's per-epoch metrics, the chosen epoch marked on every axis."""
    history = cell.get("train_history") or []
    keys = _loss_keys(history)
    epochs = [e for e in cell.get("epochs") or [] if e.get("epoch") is not None]
    chosen = chosen_epoch(cell)
    rows = max(len(keys), 1)
    fig = Figure(figsize=(11, 1.0 + 1.6 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 2)
    last = len(history) and max(h.get("epoch", i + 1) for i, h in enumerate(history))
    selection = "validation split" if cell.get("protocol") == "validation" else "test split"
    fig.suptitle(f"{cell['method']} on {cell['dataset']}, seed {cell['seed']} ({cell['protocol']} protocol): "
                 f"losses of the final training on trainval (epochs 1-{last}, stopped at the chosen epoch); "
                 f"metrics of every epoch scored on the {selection}", fontsize="small")
    for row, key in enumerate(keys):
        ax = fig.add_subplot(grid[row, 0])
        points = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(history) if isinstance(h.get(key), (int, float))]
        ax.plot(*zip(*points), marker=".", label=key)
        ax.set_ylabel(key.removeprefix("loss_") if key != "loss" else "total loss", fontsize="small")
        ax.grid(alpha=0.3)
        if row == rows - 1:
            ax.set_xlabel("epoch (final training)")
    metrics = fig.add_subplot(grid[:, 1])
    for key in sorted({k for e in epochs for k in e if k.endswith(("_T1", "_H"))}):
        metrics.plot([e["epoch"] for e in epochs], [100 * e[key] for e in epochs], marker=".", label=key)
    metrics.set_xlabel(f"epoch ({'model-selection run' if cell.get('protocol') == 'validation' else 'training'})")
    metrics.set_ylabel("%")
    metrics.grid(alpha=0.3)
    span = max([last or 0, chosen or 0, *(e["epoch"] for e in epochs)])
    for ax in fig.axes:  # one epoch axis for both runs, so that the final training's shorter range shows
        ax.set_xlim(0.5, span + 0.5)
        if chosen is not None:
            ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"chosen epoch {chosen}")
    if epochs or chosen is not None:
        metrics.legend(fontsize="small")
    return fig


def plot_training_curves(cell: dict[str, Any], path: str | Path) -> Path:
    """One deep-model cell's training, as a PNG (:func:`training_figure`).

    Left, one axis per loss term (losses of very different scales each keep their own): the
    history of the final training on ``trainval``, the run that produced the reported model,
    which stops at the chosen epoch; right, the protocol's per-epoch metrics (``val_*`` of the
    model-selection run, which trains the recipe's whole length, or ``test_*`` under ``paper``).
    A dashed line marks the chosen epoch on every axis.
    """
    return _save(training_figure(cell), path)


def plot_protocol_gap(rows: list[dict[str, Any]], dataset: str, protocols: list[str], path: str | Path) -> Path:
    """One chart: per method, a bar of its H (mean over seeds, std as error bar) under each of ``protocols``,
    and above them the difference of the last protocol from the first (e.g. paper − validation), in points."""
    mine = {(r["method"], r["protocol"]): r for r in rows if r["dataset"] == dataset}
    methods = [m for m in dict.fromkeys(m for m, _ in mine) if all((m, p) in mine for p in protocols)]
    fig = Figure(figsize=(max(6.0, 0.9 * len(methods) + 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(len(protocols), 1)
    for k, protocol in enumerate(protocols):
        heights = [100 * mine[m, protocol]["H"] for m in methods]
        errors = [100 * mine[m, protocol].get("H_std", 0.0) for m in methods]
        ax.bar([i + (k - (len(protocols) - 1) / 2) * width for i in range(len(methods))], heights, width,
               yerr=errors if any(errors) else None, capsize=2, label=protocol)
    for i, method in enumerate(methods):
        first, last = mine[method, protocols[0]]["H"], mine[method, protocols[-1]]["H"]
        ax.annotate(f"{100 * (last - first):+.1f}", (i, 100 * max(first, last)), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize="small")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    ax.set_ylabel("H (%)")
    ax.set_title(f"{dataset}: H under {' vs '.join(protocols)} ({protocols[-1]} − {protocols[0]} above)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)
