"""The leakage check on the real class lists and timm's own ImageNet files.

The expected matches were checked by hand in ``timm/data/_info/imagenet_synset_to_lemma.txt``
(and the synset lists); the exact-rule matches are also recomputed here from a plain parse of
those files, independently of zslkit's matcher.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest

from zslkit.leakage import (
    SYNONYMS,
    WRONG_SENSE,
    label_set,
    match_classes,
    unseen_leakage,
    xlsa17_classes,
    xlsa17_unseen,
)
from zslkit.leakage.names import normalise, number_variants, possessive_keys

INFO = resources.files("timm.data") / "_info"


def _lines(name: str) -> list[str]:
    return [line for line in (INFO / name).read_text().splitlines() if line.strip()]


def _lemmas() -> dict[str, list[str]]:
    return {s: [p.strip() for p in rest.split(",")] for s, rest in (line.split("\t", 1) for line in _lines("imagenet_synset_to_lemma.txt"))}


def _matches(report, name: str) -> dict[str, tuple[str, str, str | None]]:
    (cls,) = [c for c in report.classes if c.name == name]
    return {m.synset: (m.lemma, m.rule, m.excluded) for m in cls.matches}


# ------------------------------------------------------------------ the packaged class names
@pytest.mark.parametrize("dataset", ["cub", "sun", "awa2"])
def test_packaged_class_names_are_the_folders_of_the_xlsa17_split(shared_data, dataset):
    splits = np.load(shared_data(dataset) / "xlsa17_splits.npz")
    folders = {}
    for path, label in zip(splits["image_files"], splits["labels"]):
        parts = str(path).split("/")[:-1]
        anchor = parts.index("JPEGImages" if dataset == "awa2" else "images")
        rest = parts[anchor + 1:]
        folders.setdefault(int(label), "/".join(rest[1:] if dataset == "sun" else rest))  # SUN: images/<letter>/...
    assert xlsa17_classes(dataset) == [folders[k] for k in range(len(folders))]
    assert xlsa17_unseen(dataset) == sorted(int(u) for u in splits["unseenclasses"])


def test_packaged_lists_have_the_benchmark_sizes():
    assert [len(xlsa17_unseen(d)) for d in ("cub", "sun", "awa2")] == [50, 72, 10]
    assert xlsa17_classes("cub")[150] == "001.Black_footed_Albatross"  # xlsa17's order, not the folders' (README)
    assert xlsa17_classes("cub")[xlsa17_unseen("cub")[0]] == "012.Yellow_headed_Blackbird"
    with pytest.raises(ValueError, match="unknown dataset 'apy'.*cub, sun, awa2"):
        xlsa17_unseen("apy")


# ---------------------------------------------------------------------- timm's label sets
@pytest.mark.parametrize(("name", "file", "size"), [
    ("in1k", "imagenet_synsets.txt", 1000), ("in12k", "imagenet12k_synsets.txt", 11821),
    ("in21k", "imagenet21k_goog_synsets.txt", 21843), ("in22k", "imagenet22k_synsets.txt", 21841)])
def test_label_sets_are_timms_synset_lists(name, file, size):
    labels = label_set(name)
    assert [s.id for s in labels.synsets] == _lines(file) and len(labels.synsets) == size
    lemmas = _lemmas()
    assert all(list(s.lemmas) == lemmas[s.id] for s in labels.synsets[:50])


def test_unknown_label_set_is_refused():
    with pytest.raises(ValueError, match="unknown pretraining label set 'in5k'; give one of in1k"):
        label_set("in5k")


# ---------------------------------------------------------------------- hand-checked matches
def test_cub_against_in21k_hand_checked():
    report = unseen_leakage("cub", "in21k")
    assert _matches(report, "087.Mallard") == {"n01847806": ("mallard", "exact", None)}
    assert _matches(report, "052.Pied_billed_Grebe") == {"n02051059": ("pied-billed grebe", "separators", None)}
    assert _matches(report, "191.Red_headed_Woodpecker") == {"n01840775": ("redheaded woodpecker", "separators", None)}
    assert _matches(report, "180.Wilson_Warbler") == {"n01567879": ("Wilson's warbler", "possessive", None)}
    assert _matches(report, "045.Northern_Fulmar") == {"n02060133": ("Fulmarus glacialis", "synonym", None)}
    # two WordNet tree sparrows (American, Eurasian): both in the label set, both reported
    assert set(_matches(report, "130.Tree_Sparrow")) == {"n01536334", "n01540090"}
    # not in ImageNet-21k under its own name (only the genus "kingbird", which is another class)
    assert _matches(report, "077.Tropical_Kingbird") == {}
    assert len(report.overlapping) == 21 and len(report.clean) == 29


def test_in1k_against_the_unseen_classes():
    """xlsa17 kept ImageNet-1k's classes out of the unseen ones: no match for CUB and AwA2; SUN's three
    hits come only from dropping the scene qualifier (in1k's church, monastery, mosque are buildings)."""
    assert unseen_leakage("cub", "in1k").overlapping == []
    assert unseen_leakage("awa2", "in1k").overlapping == []
    sun = unseen_leakage("sun", "in1k")
    hits = {c.name: [(m.synset, m.lemma, m.rule) for m in c.matches] for c in sun.overlapping}
    assert hits == {"church/indoor": [("n03028079", "church", "qualifier dropped")],
                    "monastery/outdoor": [("n03781244", "monastery", "qualifier dropped")],
                    "mosque/indoor": [("n03788195", "mosque", "qualifier dropped")]}


def test_sun_and_awa2_against_in21k():
    sun = unseen_leakage("sun", "in22k")
    assert _matches(sun, "artists_loft") == {"n02746683": ("artist's loft", "possessive", None)}
    # the only synset named sandbox is a foundry mould: excluded, the class stays clean
    assert _matches(sun, "sandbox") == {"n04134523": ("sandbox", "exact", WRONG_SENSE["sandbox", "n04134523"])}
    assert "sandbox" in [c.name for c in sun.clean]
    awa2 = unseen_leakage("awa2", "in21k")
    assert awa2.clean == [] and _matches(awa2, "blue+whale") == {"n02064816": ("blue whale", "exact", None)}
    assert _matches(awa2, "bat")["n02806379"][2] == "a club for hitting a ball"  # reported, excluded
    assert (len(sun.overlapping), len(unseen_leakage("sun", "in21k").overlapping)) == (40, 40)


@pytest.mark.parametrize("dataset", ["cub", "sun", "awa2"])
def test_exact_matches_equal_a_plain_recomputation(dataset):
    """Every ``exact`` match, recomputed from the raw files: the folder name decoded by hand, compared
    case-insensitively with every lemma of every in21k synset."""
    lemmas = _lemmas()
    by_lemma: dict[str, set[str]] = {}
    for synset in _lines("imagenet21k_goog_synsets.txt"):
        for lemma in lemmas[synset]:
            by_lemma.setdefault(lemma.lower(), set()).add(synset)
    report = unseen_leakage(dataset, "in21k")
    for cls in report.classes:
        name = re.sub(r"^\d+\.", "", cls.name).replace("_", " ").replace("+", " ").lower()
        expected = by_lemma.get(name, set())
        assert {m.synset for m in cls.matches if m.rule == "exact"} == expected, cls.name


def test_tables_refer_to_real_synsets():
    """Each WRONG_SENSE entry is a synset of some label set whose lemma is the class name; each synonym a lemma."""
    lemmas = _lemmas()
    for (name, synset), reason in WRONG_SENSE.items():
        assert reason and any(lemma.lower() in (name, name.split("/")[0]) for lemma in lemmas[synset]), (name, synset)
    every = {lemma for ls in lemmas.values() for lemma in ls}
    assert all(lemma in every for targets in SYNONYMS.values() for lemma in targets)


# ----------------------------------------------------------------------------- the rules
def test_names_and_rules():
    assert normalise("087.Mallard") == "mallard" and normalise("blue+whale") == "blue whale"
    assert normalise("theater/indoor_seats") == "theater/indoor seats"
    assert number_variants("bat") == ["bats"] and "ruin" in number_variants("ruins")
    assert "library" in number_variants("libraries") and number_variants("lily") == ["lilies", "lilys"]
    assert possessive_keys("Wilson's warbler") == ("wilsonwarbler", "wilsonswarbler")


def test_plural_and_custom_names():
    report = match_classes(["elevators", "fish_pond", "White-Breasted Nuthatches"], ["in21k"], [7, 8, 9])
    found = {c.name: {m.synset: m.rule for m in c.matches} for c in report.classes}
    assert found["elevators"]["n03281145"] == "plural"
    assert found["White-Breasted Nuthatches"] == {"n01591301": "plural"}
    assert report.clean_indices() == [8]  # "fishpond" is in none of timm's label sets
