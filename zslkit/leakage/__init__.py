"""Which unseen classes a backbone has already seen: class names against its pretraining's label set.

* :func:`pretraining_of` (:mod:`~zslkit.leakage.pretraining`): a timm weight tag or label-set name ->
  the ImageNet label sets the backbone saw (or web-scale: unknown).
* :func:`match_classes` (:mod:`~zslkit.leakage.match`): class names vs every lemma of every synset,
  under the rules of :mod:`~zslkit.leakage.names`; :class:`LeakageReport` lists overlapping and clean classes.
* :func:`unseen_leakage`, :func:`format_report` (:mod:`~zslkit.leakage.report`): the xlsa17 benchmarks'
  unseen classes (packaged names, :mod:`~zslkit.leakage.classes`) and the printed report.

The label sets come from timm's own files (``timm/data/_info``); nothing is downloaded.
"""

from zslkit.leakage.classes import XLSA17_DATASETS, xlsa17_classes, xlsa17_unseen
from zslkit.leakage.label_sets import LABEL_SETS, label_set
from zslkit.leakage.match import WRONG_SENSE, ClassMatch, LeakageReport, Match, match_classes
from zslkit.leakage.names import RULES, SYNONYMS, normalise
from zslkit.leakage.pretraining import Pretraining, pretraining_of
from zslkit.leakage.report import clean_unseen, format_report, unseen_leakage

__all__ = [
    "LABEL_SETS",
    "RULES",
    "SYNONYMS",
    "WRONG_SENSE",
    "XLSA17_DATASETS",
    "ClassMatch",
    "LeakageReport",
    "Match",
    "Pretraining",
    "clean_unseen",
    "format_report",
    "label_set",
    "match_classes",
    "normalise",
    "pretraining_of",
    "unseen_leakage",
    "xlsa17_classes",
    "xlsa17_unseen",
]
