"""Class names as the datasets write them, normalised, and the looser forms the matching rules compare.

A dataset's class name is first decoded from its folder form (:func:`normalise`):
CUB's ``087.Mallard`` loses its number, ``_`` (CUB, SUN) and ``+`` (AwA2) stand for a
space, case is dropped; SUN's ``bazaar/indoor`` keeps its qualifier after ``/``
(:func:`head` drops it). A WordNet lemma is only lower-cased.

The rules, from strict to loose (:data:`RULES`); a match names the first rule that made it:

``exact``
    the normalised name equals the lemma (``mallard``).
``separators``
    equal once hyphens and spaces are ignored (``yellow headed blackbird`` ~ ``yellow-headed blackbird``,
    ``fish pond`` ~ ``fishpond``).
``possessive``
    equal once the lemma's possessive is dropped too, with or without its ``s`` (CUB writes
    ``Wilson_Warbler`` for ``Wilson's warbler``, SUN ``artists_loft`` for ``artist's loft``).
``plural``
    the name's last word in the other number (``-s``, ``-es``, ``-ies``), separators ignored.
``qualifier dropped``
    SUN's ``bazaar/indoor`` compared as ``bazaar`` (any of the rules above).
``synonym``
    an entry of :data:`SYNONYMS`: a documented other name of the class.
"""

from __future__ import annotations

import re

__all__ = ["RULES", "SYNONYMS", "head", "lemma_key", "normalise", "number_variants", "possessive_keys", "squash"]

RULES: tuple[str, ...] = ("exact", "separators", "possessive", "plural", "qualifier dropped", "synonym")

#: normalised class name -> lemmas it is also known by (checked by hand against timm's lemma file). Only for
#: names that no other rule links to the WordNet name of the same taxon or place; see docs/benchmark.md.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # CUB's Northern Fulmar is Fulmarus glacialis, WordNet's "fulmar, fulmar petrel, Fulmarus glacialis" (n02060133)
    "northern fulmar": ("Fulmarus glacialis",),
}


def normalise(name: str) -> str:
    """``087.Mallard`` -> ``mallard``; ``blue+whale`` -> ``blue whale``; ``arena/basketball`` -> ``arena/basketball``."""
    text = re.sub(r"^\d+\.", "", str(name).strip())
    text = re.sub(r"[_+\s]+", " ", text).casefold().strip()
    return re.sub(r"\s*/\s*", "/", text)


def head(name: str) -> str:
    """The normalised name without its SUN qualifier: ``bazaar/indoor`` -> ``bazaar``."""
    return name.split("/", 1)[0].strip()


def lemma_key(lemma: str) -> str:
    """A lemma as the ``exact`` rule compares it: lower-case, single spaces."""
    return re.sub(r"\s+", " ", lemma.replace("_", " ")).casefold().strip()


def squash(text: str) -> str:
    """Hyphens and spaces removed (the ``separators`` rule): ``yellow-headed blackbird`` -> ``yellowheadedblackbird``."""
    return re.sub(r"[\s\-]+", "", text)


def possessive_keys(lemma: str) -> tuple[str, ...]:
    """The ``possessive`` rule's forms of a lemma: ``Wilson's warbler`` -> ``wilsonwarbler``, ``wilsonswarbler``."""
    key = lemma_key(lemma)
    return tuple(dict.fromkeys(squash(re.sub(pattern, "", key)) for pattern in (r"'s?\b", "'")))


def number_variants(name: str) -> list[str]:
    """The name with its last word in the other grammatical number (singular <-> plural), simple English rules."""
    stem, last = (name.rsplit(" ", 1) + [""])[:2] if " " in name else ("", name)
    forms = set()
    if last.endswith("ies"):
        forms.add(last[:-3] + "y")
    if last.endswith("es"):
        forms.add(last[:-2])
    if last.endswith("s") and not last.endswith("ss"):
        forms.add(last[:-1])
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        forms.add(last[:-1] + "ies")
    forms.add(last + ("es" if re.search(r"(s|x|z|ch|sh)$", last) else "s"))
    return sorted(f"{stem} {form}".strip() for form in forms if form)
