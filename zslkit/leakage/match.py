"""Match class names against the lemmas of a pretraining label set: which unseen classes the backbone has seen.

:func:`match_classes` compares each class's normalised name with every lemma of every
synset of the label sets (:mod:`zslkit.leakage.label_sets`), under the rules of
:mod:`zslkit.leakage.names`; every match carries its synset id, lemma, definition
and rule. A class with at least one match overlaps the pretraining; the others form
the clean subset. Synsets listed in :data:`WRONG_SENSE` (a class name that is also the
lemma of an unrelated synset) are reported as excluded and do not make a class overlap.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from zslkit.leakage.label_sets import label_set
from zslkit.leakage.names import (
    SYNONYMS,
    head,
    lemma_key,
    normalise,
    number_variants,
    possessive_keys,
    squash,
)

__all__ = ["WRONG_SENSE", "ClassMatch", "LeakageReport", "Match", "match_classes"]

#: (normalised class name, synset id) -> why that synset is another thing of the same name (hand-checked
#: against timm's definition file). Such matches are printed as excluded; they do not make the class overlap.
WRONG_SENSE: dict[tuple[str, str], str] = {
    ("sandbox", "n04134523"): "a foundry mould box; SUN's sandbox is a children's sandpit",
    ("tunnel/road outdoor", "n09230041"): "an animal's burrow; SUN's class is a road tunnel",
    ("yard", "n04610676"): "a ship's spar",
    ("yard", "n13650447"): "a unit of length",
    ("elevator/interior", "n03281524"): "an aircraft's control surface",
    ("field/cultivated", "n02687992"): "an airfield",
    ("field/cultivated", "n08659446"): "a region holding a natural resource (oil field)",
    ("horse", "n03538037"): "a gymnastics apparatus",
    ("horse", "n03624767"): "a chess piece",
    ("horse", "n04140631"): "a sawhorse",
    ("sheep", "n10588074"): "a timid person",
    ("seal", "n04160036"): "a sealing compound",
    ("seal", "n10348526"): "a Navy SEAL",
    ("bat", "n02806379"): "a club for hitting a ball",
    ("bat", "n03132076"): "a cricket bat",
    ("bat", "n04292414"): "a squash racket",
    ("rat", "n10206173"): "an informer",
    ("dolphin", "n02581957"): "the dolphinfish; AwA2's dolphin is the mammal",
}


@dataclass(frozen=True)
class Match:
    """A synset of the label set whose lemma matched a class name under ``rule``."""

    label_set: str
    synset: str
    lemma: str
    rule: str
    definition: str
    excluded: str | None = None  # the WRONG_SENSE reason when the synset is another thing of that name


@dataclass
class ClassMatch:
    """One class: its name as given, the normalised name, and its matches (strictest rule first)."""

    index: int
    name: str
    normalised: str
    matches: list[Match] = field(default_factory=list)

    @property
    def overlaps(self) -> bool:
        """Whether a synset of the pretraining is this class (a match not excluded as another sense)."""
        return any(m.excluded is None for m in self.matches)


@dataclass
class LeakageReport:
    """The classes checked (``index``: their class index in the dataset), against ``label_sets``."""

    label_sets: tuple[str, ...]
    classes: list[ClassMatch]

    @property
    def overlapping(self) -> list[ClassMatch]:
        return [c for c in self.classes if c.overlaps]

    @property
    def clean(self) -> list[ClassMatch]:
        return [c for c in self.classes if not c.overlaps]

    def clean_indices(self) -> list[int]:
        """The class indices of the clean subset."""
        return [c.index for c in self.clean]

    def to_dict(self) -> dict:
        return {
            "label_sets": list(self.label_sets),
            "classes": len(self.classes),
            "overlapping": [c.name for c in self.overlapping],
            "clean": [c.name for c in self.clean],
            "matches": [{"class": c.name, "index": c.index, "normalised": c.normalised,
                         "matches": [asdict(m) for m in c.matches]} for c in self.classes],
        }


@functools.lru_cache(maxsize=8)
def _index(name: str) -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """Per comparison form (exact, squashed, possessive): key -> [(synset, lemma, definition)] of label set ``name``."""
    labels = label_set(name)
    forms = {"exact": lambda lemma: (lemma_key(lemma),), "squashed": lambda lemma: (squash(lemma_key(lemma)),),
             "possessive": possessive_keys}
    index: dict[str, dict[str, list[tuple[str, str, str]]]] = {form: {} for form in forms}
    for synset in labels.synsets:
        for lemma in synset.lemmas:
            for form, keys in forms.items():
                for key in keys(lemma):
                    index[form].setdefault(key, []).append((synset.id, lemma, synset.definition))
    return index


def _lookups(name: str) -> list[tuple[str, str, str]]:
    """(rule, index form, key) in order of strictness for a normalised name."""
    out = [("exact", "exact", name), ("separators", "squashed", squash(name)), ("possessive", "possessive", squash(name))]
    out += [("plural", "possessive", squash(v)) for v in number_variants(name)]
    return out


def _candidates(name: str) -> list[tuple[str, str, str]]:
    plain = _lookups(name)
    bare = head(name)
    dropped = [("qualifier dropped" + ("" if r == "exact" else f", {r}"), f, k) for r, f, k in _lookups(bare)] if bare != name else []
    synonyms = [("synonym", "exact", lemma_key(s)) for s in SYNONYMS.get(name, ())]
    return plain + dropped + synonyms


def _match_one(index: dict, set_name: str, name: str) -> list[Match]:
    found: dict[str, Match] = {}
    for rule, form, key in _candidates(name):
        for synset, lemma, definition in index[form].get(key, []):
            if synset not in found:  # the strictest rule that reaches the synset
                found[synset] = Match(set_name, synset, lemma, rule, definition, WRONG_SENSE.get((name, synset)))
    return list(found.values())


def match_classes(names: Sequence[str], label_sets: Iterable[str], indices: Sequence[int] | None = None) -> LeakageReport:
    """Match class ``names`` (as the dataset writes them) against the lemmas of ``label_sets`` (their union).

    ``indices``: the classes' indices in their dataset (default ``0 .. len(names)-1``), kept in the report.
    """
    sets = tuple(dict.fromkeys(label_sets))
    if not sets:
        raise ValueError("match_classes: give at least one label set (e.g. 'in21k')")
    indices = list(range(len(names))) if indices is None else [int(i) for i in indices]
    if len(indices) != len(names):
        raise ValueError(f"match_classes: {len(indices)} indices for {len(names)} names")
    classes = [ClassMatch(i, str(n), normalise(n)) for i, n in zip(indices, names)]
    for set_name in sets:
        index = _index(set_name)
        for cls in classes:
            seen = {m.synset for m in cls.matches}
            cls.matches += [m for m in _match_one(index, set_name, cls.normalised) if m.synset not in seen]
    return LeakageReport(sets, classes)
