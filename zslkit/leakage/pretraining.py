"""Which pretraining a timm weight tag implies: the ImageNet label sets whose images the backbone saw.

A timm weight is ``<model>.<tag>`` (``vit_base_patch16_224.augreg2_in21k_ft_in1k``); the tag
names the data of each stage, and every stage counts (a model fine-tuned on in1k after
in21k pretraining has seen in21k). :func:`pretraining_of` reads it:

==================================  =====================================================
tag (examples)                      pretraining
==================================  =====================================================
``in1k``, ``tv_in1k``, ``a1_in1k``  ``in1k`` only
``augreg_in21k_ft_in1k``            ``in21k`` and ``in1k`` (Google's ImageNet-21k)
``in12k_ft_in1k``, ``sw_in12k``     ``in12k`` and ``in1k``
``fb_in22k_ft_in1k``, ``mim_in22k``  ``in22k`` (fall11) and ``in1k``
``miil_in21k_ft_in1k``              ``in21k-miil`` and ``in1k``
``mae``, ``fcmae``, ``dino``        ``in1k`` (self-supervised on ImageNet-1k images)
``clip_laion2b...``, ``openai``,    web-scale: leakage unknown (every class name is on the
``laion2b``, ``dfn2b``, ``webli``,  web); an ImageNet fine-tuning stage does not change that
``lvd142m``, ``ig1b``, ``jft``...
==================================  =====================================================

A model name without a tag (``vit_base_patch16_224``) stands for timm's default weights of
that model (:func:`timm.models.get_pretrained_cfg`): here ``augreg2_in21k_ft_in1k``. A bare
label-set name (``in21k``) is accepted as well. Anything else is refused with one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zslkit.leakage.label_sets import LABEL_SETS

__all__ = ["IMAGENET_TOKENS", "WEB_TOKENS", "Pretraining", "pretraining_of"]

#: tag word(s) -> the ImageNet label sets they name
IMAGENET_TOKENS: dict[str, tuple[str, ...]] = {
    "in1k": ("in1k",), "in12k": ("in12k",), "in21k": ("in21k",), "in22k": ("in22k",), "inw21k": ("in21k",),
    "miil_in21k": ("in21k-miil",), "mae": ("in1k",), "fcmae": ("in1k",), "dino": ("in1k",),
}

#: tag words of web-scale or other non-ImageNet data (the label set is unknown)
WEB_TOKENS: frozenset[str] = frozenset({
    "clip", "openai", "laion", "laion2b", "laion400m", "laiona", "datacomp", "datacomp1b", "datacompxl", "dfn2b",
    "dfn5b", "webli", "metaclip", "metaclip2", "lvd142m", "lvd1689m", "dinov2", "dinov3", "ig1b", "wsl", "swsl",
    "yfcc100m", "yfcc15m", "cc12m", "jft", "m38m", "m30m", "merged2b", "seer", "swag", "sa1b", "siglip", "mclip",
    "tinyclip", "pali", "sat493m", "bamboo",
})


@dataclass(frozen=True)
class Pretraining:
    """What a backbone saw: ImageNet ``label_sets`` (empty when ``web_scale``), read from ``source``."""

    source: str
    label_sets: tuple[str, ...]
    web_scale: bool = False

    @property
    def known(self) -> bool:
        """Whether its label sets are known (not web-scale data)."""
        return not self.web_scale

    def describe(self) -> str:
        if self.web_scale:
            return f"{self.source}: web-scale pretraining, leakage unknown"
        return f"{self.source}: {' + '.join(self.label_sets)}"


def _default_tag(model: str) -> str | None:
    """timm's default weight tag of ``model`` (``None`` when timm knows no pretrained weights for it)."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(model)
    except Exception:  # noqa: BLE001 - an unknown architecture is reported by the caller
        return None
    return getattr(cfg, "tag", None) if cfg is not None else None


def _from_tag(source: str, tag: str) -> Pretraining | None:
    words = [w for w in re.split(r"[_\-.]", tag.lower()) if w]
    if any(w in WEB_TOKENS or w.startswith(("laion", "dfn", "metaclip", "datacomp")) for w in words):
        return Pretraining(source, (), web_scale=True)
    found: list[str] = []
    joined = "_".join(words)
    for token, sets in IMAGENET_TOKENS.items():
        if re.search(rf"(^|_){token}(_|$)", joined) and not (token == "in21k" and "miil_in21k" in joined):
            found += sets
    if not found:
        return None
    order = list(LABEL_SETS)
    return Pretraining(source, tuple(sorted(set(found), key=order.index)))


def pretraining_of(name: str) -> Pretraining:
    """The pretraining of a label-set name (``in21k``), a weight tag (``augreg_in21k_ft_in1k``) or a timm
    model name with or without its tag (``vit_base_patch16_224.augreg2_in21k_ft_in1k``, ``resnet101``).

    ``none`` (random initialisation) gives no label set: every class is clean.
    """
    text = str(name).strip()
    if text.lower() in ("none", "random", "random-init"):
        return Pretraining(text, ())
    if text in LABEL_SETS:
        return Pretraining(text, (text,))
    tag = text.split(".", 1)[1] if "." in text else text
    found = _from_tag(text, tag)
    if found is None and "." not in text:
        default = _default_tag(text)
        if default:
            found = _from_tag(f"{text}.{default}", default)
    if found is None:
        raise ValueError(
            f"pretraining {text!r}: not a known label set or timm weight tag; give one of {', '.join(LABEL_SETS)}, "
            "a tag such as augreg_in21k_ft_in1k, or model.tag (web-scale tags such as clip_laion2b: leakage unknown)")
    return found
