"""The ImageNet label sets a backbone can be pretrained on, read from timm's own files.

timm ships, in ``timm/data/_info``, the WordNet synset ids of each ImageNet label set
and one file mapping every synset to its lemmas (``imagenet_synset_to_lemma.txt``,
``n01847806<TAB>mallard, Anas platyrhynchos``) and definition. Nothing is downloaded.

=============  ==========================================  =======  ===============================
name           timm file                                   classes  what it is
=============  ==========================================  =======  ===============================
``in1k``       ``imagenet_synsets.txt``                    1000     ImageNet-1k (ILSVRC 2012)
``in12k``      ``imagenet12k_synsets.txt``                 11821    timm's 12k subset of fall11
``in21k``      ``imagenet21k_goog_synsets.txt``            21843    Google's ImageNet-21k (``augreg_in21k``...)
``in22k``      ``imagenet22k_synsets.txt``                 21841    fall11 ImageNet-22k (``fb_in22k``...)
``in21k-miil`` ``imagenet21k_miil_synsets.txt``            11221    MIIL's ImageNet-21k-P (``miil_in21k``)
=============  ==========================================  =======  ===============================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

__all__ = ["LABEL_SETS", "LabelSet", "Synset", "label_set", "synset_lemmas"]

#: label-set name -> (timm file, what it is)
LABEL_SETS: dict[str, tuple[str, str]] = {
    "in1k": ("imagenet_synsets.txt", "ImageNet-1k (ILSVRC 2012), 1000 classes"),
    "in12k": ("imagenet12k_synsets.txt", "timm's ImageNet-12k subset of fall11, 11821 classes"),
    "in21k": ("imagenet21k_goog_synsets.txt", "Google's ImageNet-21k, 21843 classes"),
    "in22k": ("imagenet22k_synsets.txt", "fall11 ImageNet-22k, 21841 classes"),
    "in21k-miil": ("imagenet21k_miil_synsets.txt", "MIIL's ImageNet-21k-P, 11221 classes"),
}

_LEMMA_FILE = "imagenet_synset_to_lemma.txt"
_DEFINITION_FILE = "imagenet_synset_to_definition.txt"


@dataclass(frozen=True)
class Synset:
    """One class of a label set: its WordNet id, lemmas (``("mallard", "Anas platyrhynchos")``) and gloss."""

    id: str
    lemmas: tuple[str, ...]
    definition: str


@dataclass(frozen=True)
class LabelSet:
    """A pretraining label set: its ``name`` (a key of :data:`LABEL_SETS`) and synsets in timm's order."""

    name: str
    synsets: tuple[Synset, ...]


def _info_text(file: str) -> str:
    return (resources.files("timm.data") / "_info" / file).read_text(encoding="utf-8")


def _tab_file(file: str) -> dict[str, str]:
    rows = (line.split("\t", 1) for line in _info_text(file).splitlines() if line.strip())
    return {key: value.strip() for key, value in rows}


@functools.lru_cache(maxsize=1)
def synset_lemmas() -> dict[str, tuple[tuple[str, ...], str]]:
    """Every synset timm knows: id -> (lemmas, definition)."""
    lemmas, definitions = _tab_file(_LEMMA_FILE), _tab_file(_DEFINITION_FILE)
    return {key: (tuple(p.strip() for p in value.split(",") if p.strip()), definitions.get(key, ""))
            for key, value in lemmas.items()}


@functools.cache
def label_set(name: str) -> LabelSet:
    """The label set ``name`` (``in1k``, ``in12k``, ``in21k``, ``in22k``, ``in21k-miil``) from timm's files."""
    if name not in LABEL_SETS:
        raise ValueError(f"unknown pretraining label set {name!r}; give one of {', '.join(LABEL_SETS)}")
    known = synset_lemmas()
    ids = [line.strip() for line in _info_text(LABEL_SETS[name][0]).splitlines() if line.strip()]
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValueError(f"timm's {LABEL_SETS[name][0]} lists {len(missing)} synsets without lemmas (first {missing[0]})")
    return LabelSet(name, tuple(Synset(i, *known[i]) for i in ids))
