"""The standard attribute word vectors of CUB, SUN and AwA2, shipped with zslkit.

The ``(I, 300)`` vectors of the DAZLE, TransZero and MSDN repositories: for each attribute,
the sum of the Google News word2vec vectors of its words (the recipe is in ``docs/data.md``).
They are package data (``zslkit/datasets/vectors/<key>_attribute_w2v.npy``, float32), and
the ``cub``/``sun``/``awa2`` loaders use them when no ``attribute_vectors`` is given. Every
read checks the file's SHA-256 against the one recorded here (and in ``docs/data.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from zslkit.datasets.checks import sha256_file
from zslkit.datasets.container import DatasetError, ZSLDataset
from zslkit.datasets.word_vectors import load_attribute_vectors

__all__ = ["STANDARD_VECTORS", "StandardVectors", "standard_attribute_vectors", "with_standard_vectors"]

FOLDER = Path(__file__).resolve().parent / "vectors"


@dataclass(frozen=True)
class StandardVectors:
    """One packaged file: its name under ``zslkit/datasets/vectors``, shape ``(I, 300)`` and SHA-256."""

    file: str
    shape: tuple[int, int]
    sha256: str

    @property
    def path(self) -> Path:
        return FOLDER / self.file


STANDARD_VECTORS: dict[str, StandardVectors] = {
    "cub": StandardVectors("cub_attribute_w2v.npy", (312, 300), "af9535e3fccf11f6c728938b0e8bb7c7d4c0aa8fee0a83581b2ea503153aef26"),
    "sun": StandardVectors("sun_attribute_w2v.npy", (102, 300), "b7f322d789fe7bcc4a527c97fcad32ce8ff38229f4893a757406bef0dc072609"),
    "awa2": StandardVectors("awa2_attribute_w2v.npy", (85, 300), "4f96de7a1b80369c56ee75b82b32d4117575399626dcd0f88ca422034dcf33df"),
}


def standard_attribute_vectors(key: str) -> Path:
    """Path of the packaged word2vec attribute vectors of ``key`` (``cub``, ``sun``, ``awa2``), checksum verified."""
    if key not in STANDARD_VECTORS:
        raise ValueError(f"no packaged attribute vectors for {key!r}; zslkit ships them for {sorted(STANDARD_VECTORS)}")
    entry = STANDARD_VECTORS[key]
    if not entry.path.is_file():
        raise DatasetError(f"{entry.path}: packaged attribute vectors missing; reinstall zslkit or give attribute_vectors=PATH")
    digest = sha256_file(entry.path)
    if digest != entry.sha256:
        raise DatasetError(
            f"{entry.path}: SHA-256 {digest} is not the packaged file's {entry.sha256}; "
            "reinstall zslkit or give attribute_vectors=PATH"
        )
    return entry.path


def with_standard_vectors(dataset: ZSLDataset, key: str) -> ZSLDataset:
    """``dataset`` with the packaged vectors of ``key`` as its attribute embeddings; says so on stderr.

    ``dataset.metadata["attribute_vectors"]`` records ``"packaged:<file>"``.
    """
    path = standard_attribute_vectors(key)
    vectors = load_attribute_vectors(path, dataset.num_attributes)
    logging.getLogger(__name__).warning(
        "%s: no attribute_vectors given; using zslkit's packaged word2vec attribute vectors %s (%s; see docs/data.md)",
        key, tuple(vectors.shape), path.name)
    metadata = {**dataset.metadata, "attribute_vectors": f"packaged:{path.name}"}
    return replace(dataset, attribute_embeddings=vectors, metadata=metadata)
