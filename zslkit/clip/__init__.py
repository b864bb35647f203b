"""CLIP (open-clip-torch, optional extra ``clip``): encoders from local weights, prompts, zero-shot inputs.

* :func:`load_clip` / :class:`ClipEncoder` (:mod:`zslkit.clip.model`): a CLIP model's two towers; the tiny
  random-init :data:`TINY_CLIP` for tests and the demo.
* :mod:`zslkit.clip.prompts`: the documented template sets per dataset.
* :mod:`zslkit.clip.zero_shot`: prompt-group and image embeddings.

The bench's CLIP rows (``clip_names``, ``clip_attributes``, ``clip_linear``) are in
:mod:`zslkit.methods.clip` and :mod:`zslkit.bench.clip_runner`; ``docs/clip.md`` tells the story.
"""

from zslkit.clip.model import (
    TINY_CLIP,
    TINY_CLIP_CONFIG,
    ClipEncoder,
    ClipError,
    load_clip,
    require_open_clip,
)
from zslkit.clip.prompts import attribute_prompts, class_phrase, class_prompts, templates_for
from zslkit.clip.zero_shot import image_embeddings, name_embeddings, prompt_embeddings

__all__ = [
    "TINY_CLIP",
    "TINY_CLIP_CONFIG",
    "ClipEncoder",
    "ClipError",
    "attribute_prompts",
    "class_phrase",
    "class_prompts",
    "image_embeddings",
    "load_clip",
    "name_embeddings",
    "prompt_embeddings",
    "require_open_clip",
    "templates_for",
]
