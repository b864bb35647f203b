"""The prompts of the CLIP rows: one documented template set per dataset, for class names and for attributes.

A class name becomes a phrase (:func:`class_phrase`: ``"001.Black_footed_Albatross"`` ->
``"Black footed Albatross"``, ``"grizzly+bear"`` -> ``"grizzly bear"``), an attribute name a phrase
by :func:`zslkit.embed_attributes.attribute_phrase` (``"has_bill_shape::curved_(up_or_down)"`` ->
``"bill shape curved up or down"``); each phrase fills every template of the dataset's set.
Without ensembling only the first template is used; with it, the unit text embeddings of all
templates are averaged and normalised again (CLIP's prompt ensembling).

=================  ===================================================  ======================================
dataset            class-name templates (first: the single prompt)      attribute templates
=================  ===================================================  ======================================
cub                a photo of a {}, a type of bird.  (+3 more)          a photo of a bird with {}.  (+1 more)
sun                a photo of a {}, a type of scene.  (+3 more)         a photo of a scene with {}.  (+1 more)
awa2               a photo of a {}, a type of animal.  (+3 more)        a photo of an animal with {}.  (+1 more)
synthetic*         a picture of a {}, a kind of toy bird.  (+1 more)    a picture of a toy bird with {}.
other              a photo of a {}.  (+2 more)                          a photo of something with {}.
=================  ===================================================  ======================================

(:data:`CLASS_TEMPLATES` and :data:`ATTRIBUTE_TEMPLATES` hold the full sets.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from zslkit.embed_attributes import attribute_phrase

__all__ = ["ATTRIBUTE_TEMPLATES", "CLASS_TEMPLATES", "attribute_prompts", "class_phrase", "class_prompts", "templates_for"]

#: Class-name templates per dataset (``"default"``: any other dataset). The first is the single prompt.
CLASS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "cub": ("a photo of a {}, a type of bird.", "a close-up photo of a {}, a type of bird.",
            "a photo of the small {}, a type of bird.", "a blurry photo of a {}, a type of bird."),
    "sun": ("a photo of a {}, a type of scene.", "a photo of the {}.", "a bright photo of a {}.",
            "a dark photo of a {}."),
    "awa2": ("a photo of a {}, a type of animal.", "a photo of the large {}.", "a photo of the small {}.",
             "a blurry photo of a {}."),
    "synthetic": ("a picture of a {}, a kind of toy bird.", "a drawing of a {}."),
    "default": ("a photo of a {}.", "a photo of the {}.", "a blurry photo of a {}."),
}
#: Attribute templates per dataset (``"default"``: any other dataset). The first is the single prompt.
ATTRIBUTE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "cub": ("a photo of a bird with {}.", "a photo of a bird that has {}."),
    "sun": ("a photo of a scene with {}.", "a photo of a place with {}."),
    "awa2": ("a photo of an animal with {}.", "a photo of an animal that is {}."),
    "synthetic": ("a picture of a toy bird with {}.",),
    "default": ("a photo of something with {}.",),
}


def _family(dataset: str) -> str:
    return "synthetic" if dataset.startswith("synthetic") else dataset


def templates_for(dataset: str, what: str = "class", ensemble: bool = False) -> tuple[str, ...]:
    """The templates of ``dataset`` for ``what`` (``"class"`` or ``"attribute"``): all, or the first alone."""
    table = {"class": CLASS_TEMPLATES, "attribute": ATTRIBUTE_TEMPLATES}.get(what)
    if table is None:
        raise ValueError(f"templates for {what!r}: give 'class' or 'attribute'")
    found = table.get(_family(dataset), table["default"])
    return found if ensemble else found[:1]


def class_phrase(name: str) -> str:
    """A readable class name: drops a leading ``NNN.``, turns ``_`` and ``+`` into spaces.

    >>> class_phrase("001.Black_footed_Albatross")
    'Black footed Albatross'
    >>> class_phrase("grizzly+bear")
    'grizzly bear'
    """
    text = re.sub(r"^\d+\.", "", name.strip())
    text = re.sub(r"\s+", " ", re.sub(r"[_+/]", " ", text)).strip()
    if not text:
        raise ValueError(f"class name {name!r} gives an empty phrase")
    return text


def class_prompts(names: Sequence[str], dataset: str, ensemble: bool = False) -> list[list[str]]:
    """Per class, its prompts (one per template of ``dataset``)."""
    return [[t.format(class_phrase(n)) for t in templates_for(dataset, "class", ensemble)] for n in names]


def attribute_prompts(names: Sequence[str], dataset: str, ensemble: bool = False) -> list[list[str]]:
    """Per attribute, its prompts (one per attribute template of ``dataset``)."""
    return [[t.format(attribute_phrase(n)) for t in templates_for(dataset, "attribute", ensemble)] for n in names]
