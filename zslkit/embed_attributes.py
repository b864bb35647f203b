"""Attribute embeddings from attribute names, with a local sentence-transformer model.

``zslkit embed-attributes NAMES.txt --model DIR --out FILE.npy`` turns each name into a
short phrase (:func:`attribute_phrase`: ``"has_wing_color::red"`` -> ``"wing color red"``)
and embeds it. The model is loaded from a local directory (one saved with
``SentenceTransformer.save``), from an installed Python package that ships such a
directory, or by name from the local Hugging Face cache only -- never downloaded.
Needs the optional extra ``text`` (``pip install 'zslkit[text]'``).

The ``(I, 300)`` word2vec files of the paper repositories (DAZLE, TransZero, MSDN) were
made differently; see ``docs/data.md`` for that recipe. zslkit reads those files as
they are (:func:`zslkit.datasets.load_attribute_vectors`).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["attribute_phrase", "embed_attributes", "load_sentence_encoder"]


def attribute_phrase(name: str) -> str:
    """A readable phrase for an attribute name.

    Drops a leading ``has_``, turns ``::``, ``_``, ``-`` and ``/`` into spaces (``/`` into
    "or"), removes parentheses and collapses whitespace:

    >>> attribute_phrase("has_bill_shape::curved_(up_or_down)")
    'bill shape curved up or down'
    >>> attribute_phrase("sailing/ boating")
    'sailing or boating'
    """
    text = name.strip()
    text = re.sub(r"^has_", "", text)
    text = re.sub(r"\s*/\s*", " or ", text)
    text = re.sub(r"::|[_\-()]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise ValueError(f"attribute name {name!r} gives an empty phrase")
    return text


def load_sentence_encoder(model: str | Path, device: str | None = None) -> Any:
    """A ``SentenceTransformer`` from a local directory, an installed package, or the local HF cache."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ImportError(
            "embedding attribute names needs sentence-transformers: pip install 'zslkit[text]'"
        ) from None
    path = Path(model).expanduser()
    if not path.is_dir():
        spec = importlib.util.find_spec(str(model)) if re.fullmatch(r"[\w.]+", str(model)) else None
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations)))
    if path.is_dir():
        return SentenceTransformer(str(path), device=device)
    try:
        return SentenceTransformer(str(model), device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - hub errors vary by version
        raise ValueError(
            f"sentence-transformer model {str(model)!r} is neither a local directory, an installed package, "
            f"nor in the local Hugging Face cache ({type(exc).__name__}); zslkit downloads nothing"
        ) from None


def embed_attributes(
    names: Sequence[str], model: str | Path | Any, *, batch_size: int = 64, device: str | None = None
) -> np.ndarray:
    """``(I, D)`` float32 embeddings of the phrases of ``names``.

    ``model`` is a path/name for :func:`load_sentence_encoder` or any object with an
    ``encode(list_of_str) -> (I, D)`` method.
    """
    if not names:
        raise ValueError("no attribute names to embed")
    encoder = load_sentence_encoder(model, device=device) if isinstance(model, (str, Path)) else model
    phrases = [attribute_phrase(n) for n in names]
    vectors = np.asarray(encoder.encode(phrases, batch_size=batch_size, convert_to_numpy=True), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(phrases):
        raise ValueError(f"encoder returned shape {vectors.shape} for {len(phrases)} phrases; expected ({len(phrases)}, D)")
    return vectors
