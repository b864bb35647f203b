"""The leakage check of a benchmark's unseen classes, and its report as a Markdown table.

:func:`unseen_leakage` matches the unseen classes of an xlsa17 benchmark against a
pretraining (:func:`~zslkit.leakage.pretraining.pretraining_of`); :func:`format_report`
prints every match (synset, lemma, rule; excluded other senses marked) and the clean subset.
"""

from __future__ import annotations

from collections.abc import Sequence

from zslkit.leakage.classes import xlsa17_classes, xlsa17_unseen
from zslkit.leakage.label_sets import LABEL_SETS
from zslkit.leakage.match import LeakageReport, match_classes
from zslkit.leakage.pretraining import Pretraining, pretraining_of

__all__ = ["clean_unseen", "format_report", "unseen_leakage"]


def clean_unseen(class_names: Sequence[str], unseen: Sequence[int], pretraining: Pretraining) -> LeakageReport | None:
    """The leakage report of the ``unseen`` classes (indices into ``class_names``); ``None`` when the
    pretraining is web-scale (its label set, and so the leakage, is unknown)."""
    if pretraining.web_scale:
        return None
    return match_classes([class_names[int(k)] for k in unseen], pretraining.label_sets, unseen)


def unseen_leakage(dataset: str, pretraining: str | Pretraining) -> LeakageReport | None:
    """The unseen classes of the xlsa17 benchmark ``dataset`` (``cub``, ``sun``, ``awa2``) against ``pretraining``."""
    known = pretraining if isinstance(pretraining, Pretraining) else pretraining_of(pretraining)
    return clean_unseen(xlsa17_classes(dataset), xlsa17_unseen(dataset), known)


def format_report(report: LeakageReport | None, dataset: str, pretraining: Pretraining) -> str:
    """The report as Markdown: a header line, one table row per match, the overlapping and clean classes."""
    if report is None:
        return f"**{dataset} unseen classes vs {pretraining.describe()}**: no class can be called clean."
    sets = "; ".join(f"{name}: {LABEL_SETS[name][1]}" for name in report.label_sets) or "no pretraining"
    lines = [f"**{dataset} unseen classes ({len(report.classes)}, xlsa17) vs {pretraining.source} ({sets}): "
             f"{len(report.overlapping)} overlap, {len(report.clean)} clean**", "",
             "| class | label set | synset | lemma | rule | definition |", "|---|---|---|---|---|---|"]
    for cls in report.classes:
        for m in cls.matches:
            rule = m.rule if m.excluded is None else f"{m.rule}; excluded: {m.excluded}"
            definition = m.definition if len(m.definition) <= 70 else m.definition[:67] + "..."
            lines.append(f"| {cls.name} | {m.label_set} | {m.synset} | {m.lemma} | {rule} | {definition} |")
    lines += ["", f"overlapping ({len(report.overlapping)}): " + ", ".join(c.name for c in report.overlapping),
              f"clean ({len(report.clean)}): " + ", ".join(c.name for c in report.clean)]
    return "\n".join(lines)
