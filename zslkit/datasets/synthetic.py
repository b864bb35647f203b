"""``synthetic``: a procedurally generated fine-grained ZSL dataset where attention matters.

Two variants share the generator and differ in four knobs (:data:`VARIANTS`):

* ``"fine-grained"`` (the default) behaves like a real fine-grained benchmark: the
  evidence of a colour is mostly specific to the part that shows it ("red wing"
  looks unlike "red head", as in CNN features), so globally pooled features tell
  the classes of a family apart reasonably well (the pooled-feature baselines
  reach S 33-39%, T1 55-70% in ``make demo``), while weaker part cues, more
  background noise and more occlusion make the parts harder to find: attention
  still wins clearly (H 73-75 vs 39-47), without being perfect.
* ``"parts"`` is built so that pooled features cannot tell the classes of a family
  apart at all (colour evidence shared by every part, strong part cues): the
  pooled baselines stay near 20% T1 and 2-5% H while attention reaches H 88. A
  good unit-test case for attention.

Any of the knobs given explicitly overrides the variant's value.

How it is built (all deterministic from ``seed``):

* **Attributes** are ``has_<part>_<kind>::<value>`` for every body part (head,
  breast, wing, ...) and every value of every kind (colour: red, blue, ...;
  pattern: solid, striped, spotted), like CUB's 312 attributes.
* **Classes** come in *families*. A family fixes a multiset of dominant colours
  and patterns; each class of the family assigns them to the parts in a different
  order ("red wing, blue breast" vs "blue wing, red breast"). Each class has
  per-attribute frequencies: the dominant value with probability ``purity``
  (drawn per class and part), the rest spread over the other values. The
  class-attribute matrix holds these frequencies (like CUB's percentages).
* **Images** draw, per part, a colour and a pattern from their class. The parts
  sit at random, distinct cells of an ``H x W`` grid that change from image to
  image, and each part is occluded with probability ``occlusion``. The feature
  vector at a part's cell is ``part_proto[part] + colour_proto[colour] +
  part_colour[part, colour] + pattern_proto[pattern]``, and ``spread`` times that
  in the 4 neighbouring cells; ``part_proto`` (what locates the part) has norm
  about ``part_signal``. The colour and pattern prototypes are shared by all
  parts; ``part_colour`` is a part-specific component of relative size
  ``part_specificity``. When it is small (``"parts"``) a globally pooled feature
  knows *which* colours are present but hardly *where*: pooled features confuse
  the classes of one family, while attention that finds the part first and reads
  its colour second can tell them apart. When it is large (``"fine-grained"``)
  the pooled feature also knows where, up to noise.
* **Nuisance**: Gaussian background noise on every cell, a per-image offset
  vector added to all cells and a per-image contrast factor.
* **Attribute word vectors** mix the attribute's part and value prototypes
  through fixed random projections plus noise: informative but imperfect, like
  word2vec vectors of attribute names.
* **Splits** follow xlsa17: about ``unseen_fraction`` of the classes are unseen,
  chosen ``unseen_per_family`` per family from some families, so that every
  unseen class has a look-alike among the unseen and among the seen classes; ``val`` classes (playing unseen during model selection) are carved
  from the seen ones; ``test_seen`` holds out a fifth of each seen class.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from zslkit.datasets.container import ZSLDataset
from zslkit.registry import register

__all__ = ["COLOURS", "PARTS", "PATTERNS", "VARIANTS", "make_synthetic", "make_synthetic_images"]

PARTS: tuple[str, ...] = ("head", "breast", "wing", "tail", "back", "leg")
COLOURS: tuple[str, ...] = ("red", "blue", "yellow", "black", "white", "brown")
PATTERNS: tuple[str, ...] = ("solid", "striped", "spotted")

#: The knobs each ``variant`` sets (an explicit argument overrides its value).
VARIANTS: dict[str, dict[str, float]] = {
    "fine-grained": {"part_specificity": 2.0, "part_signal": 0.5, "noise": 0.35, "occlusion": 0.25},
    "parts": {"part_specificity": 0.35, "part_signal": 2.0, "noise": 0.25, "occlusion": 0.15},
}


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _value_frequencies(rng: np.random.Generator, dominant: np.ndarray, num_values: int, low: float, high: float) -> np.ndarray:
    """``(P, V)`` per-part value distribution: ``purity`` on the dominant value, the rest uniform."""
    purity = rng.uniform(low, high, size=dominant.shape[0])
    freq = np.repeat(((1.0 - purity) / (num_values - 1))[:, None], num_values, axis=1)
    freq[np.arange(dominant.shape[0]), dominant] = purity
    return freq


@register("dataset", "synthetic")
def make_synthetic(
    num_classes: int = 100,
    family_size: int = 4,
    images_per_class: int = 40,
    num_parts: int = 6,
    channels: int = 64,
    grid: int = 7,
    embedding_dim: int = 64,
    unseen_fraction: float = 0.25,
    unseen_per_family: int = 2,
    val_fraction: float = 0.2,
    test_seen_fraction: float = 0.2,
    purity: tuple[float, float] = (0.75, 0.95),
    part_specificity: float | None = None,
    part_signal: float | None = None,
    spread: float = 0.5,
    occlusion: float | None = None,
    noise: float | None = None,
    nuisance: float = 0.05,
    contrast: tuple[float, float] = (0.7, 1.3),
    word_noise: float = 0.35,
    seed: int = 0,
    variant: str = "fine-grained",
    image_size: int | None = None,
) -> ZSLDataset:
    """Generate the dataset. See the module docstring for what each knob does.

    ``variant`` (``"fine-grained"`` or ``"parts"``) sets ``part_specificity``,
    ``part_signal``, ``noise`` and ``occlusion`` to the values in :data:`VARIANTS`
    unless they are given. Returns a :class:`~zslkit.datasets.container.ZSLDataset`
    with ``features`` of shape ``(N, channels, grid, grid)``, ``N = num_classes * images_per_class``.

    ``image_size``: the image form instead (``synthetic_images``, named so, whose recipes differ):
    ``features`` are ``(N, 3, image_size, image_size)`` pictures of the same draws
    (:mod:`zslkit.datasets.synthetic_images`); everything else is as without it.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown synthetic variant {variant!r}; give one of {', '.join(sorted(VARIANTS))}")
    given = {"part_specificity": part_specificity, "part_signal": part_signal, "noise": noise, "occlusion": occlusion}
    knobs = {k: float(v if v is not None else VARIANTS[variant][k]) for k, v in given.items()}
    part_specificity, part_signal, noise, occlusion = (knobs[k] for k in given)
    if num_parts > len(PARTS):
        raise ValueError(f"num_parts must be at most {len(PARTS)}, got {num_parts}")
    if num_classes % family_size:
        raise ValueError(f"num_classes ({num_classes}) must be a multiple of family_size ({family_size})")
    if not 0 < unseen_per_family < family_size:
        raise ValueError(f"unseen_per_family must be in [1, family_size), got {unseen_per_family}")
    if num_parts > grid * grid:
        raise ValueError(f"grid {grid}x{grid} has fewer cells than num_parts={num_parts}")
    if image_size is not None and image_size < 3 * grid:
        raise ValueError(f"image_size {image_size} leaves the {grid}x{grid} cells under 3 px; give at least {3 * grid}")
    rng = np.random.default_rng(seed)
    parts = PARTS[:num_parts]
    n_col, n_pat = len(COLOURS), len(PATTERNS)

    # --- prototypes (shared across parts: the crux of the dataset)
    part_proto = rng.normal(size=(num_parts, channels)) / np.sqrt(channels) * part_signal
    colour_proto = rng.normal(size=(n_col, channels)) / np.sqrt(channels) * 2.0
    pattern_proto = rng.normal(size=(n_pat, channels)) / np.sqrt(channels) * 1.5
    # a small part-specific component of each value's evidence ("red wing" is mostly "red")
    part_colour = rng.normal(size=(num_parts, n_col, channels)) / np.sqrt(channels) * 2.0 * part_specificity

    # --- classes: families of part permutations
    num_families = num_classes // family_size
    colour_freq = np.zeros((num_classes, num_parts, n_col))
    pattern_freq = np.zeros((num_classes, num_parts, n_pat))
    family_of = np.repeat(np.arange(num_families), family_size)
    all_perms = list(itertools.permutations(range(num_parts)))
    for f in range(num_families):
        base_colour = rng.choice(n_col, size=num_parts, replace=num_parts > n_col)
        base_pattern = rng.integers(0, n_pat, size=num_parts)
        perm_ids = rng.choice(len(all_perms), size=family_size - 1, replace=False)
        perms = [np.arange(num_parts)] + [np.array(all_perms[i]) for i in perm_ids]
        for m, perm in enumerate(perms):
            k = f * family_size + m
            colour_freq[k] = _value_frequencies(rng, base_colour[perm], n_col, *purity)
            pattern_freq[k] = _value_frequencies(rng, base_pattern[np.roll(perm, 1)], n_pat, *purity)

    attribute_names = [f"has_{p}_color::{c}" for p in parts for c in COLOURS] + [
        f"has_{p}_pattern::{t}" for p in parts for t in PATTERNS
    ]
    class_attributes = np.concatenate(
        [colour_freq.reshape(num_classes, -1), pattern_freq.reshape(num_classes, -1)], axis=1
    ).astype(np.float32)

    # --- images
    labels = np.repeat(np.arange(num_classes), images_per_class)
    n = labels.shape[0]
    cells = grid * grid
    cell_of = np.argsort(rng.random((n, cells)), axis=1)[:, :num_parts]  # distinct cells per image
    visible = rng.random((n, num_parts)) >= occlusion
    colours = _sample_categorical(rng, colour_freq[labels])  # (N, P)
    patterns = _sample_categorical(rng, pattern_freq[labels])
    part_idx = np.arange(num_parts)[None, :]
    evidence = part_proto[None] + colour_proto[colours] + part_colour[part_idx, colours] + pattern_proto[patterns]
    evidence *= visible[..., None]

    placed = np.zeros((n, cells, channels))
    np.add.at(placed, (np.arange(n)[:, None], cell_of), evidence)
    if spread:  # each part also shows, weaker, in its 4 neighbouring cells
        kernel = np.array([[0, spread, 0], [spread, 1, spread], [0, spread, 0]])[None, :, :, None]
        placed = ndimage.convolve(placed.reshape(n, grid, grid, channels), kernel, mode="constant")
        placed = placed.reshape(n, cells, channels)
    feats = placed + rng.normal(scale=noise, size=(n, cells, channels))
    feats += rng.normal(scale=nuisance, size=(n, 1, channels))
    feats *= rng.uniform(*contrast, size=(n, 1, 1))
    features = np.ascontiguousarray(feats.transpose(0, 2, 1).reshape(n, channels, grid, grid), dtype=np.float32)

    # --- attribute word vectors
    proj_part = rng.normal(size=(embedding_dim, channels)) / np.sqrt(channels)
    proj_value = rng.normal(size=(embedding_dim, channels)) / np.sqrt(channels)
    value_proto = np.concatenate([colour_proto, pattern_proto])
    attr_part = [j for j in range(num_parts) for _ in COLOURS] + [j for j in range(num_parts) for _ in PATTERNS]
    attr_value = [c for _ in parts for c in range(n_col)] + [n_col + t for _ in parts for t in range(n_pat)]
    words = part_proto[attr_part] @ proj_part.T + value_proto[attr_value] @ proj_value.T
    words = _unit_rows(words) + rng.normal(scale=word_noise / np.sqrt(embedding_dim), size=words.shape)
    words = words.astype(np.float32)

    # --- splits (xlsa17 convention)
    num_unseen_families = max(1, int(round(unseen_fraction * num_classes / unseen_per_family)))
    if num_unseen_families > num_families:
        raise ValueError(f"unseen_fraction={unseen_fraction} needs more families than the {num_families} there are")
    unseen = []
    for f in rng.choice(num_families, size=num_unseen_families, replace=False):
        members = np.arange(f * family_size, (f + 1) * family_size)
        unseen.extend(rng.choice(members, size=unseen_per_family, replace=False).tolist())
    unseen_classes = np.array(sorted(unseen))
    seen_classes = np.setdiff1d(np.arange(num_classes), unseen_classes)
    n_val = max(1, int(round(val_fraction * len(seen_classes))))
    val_classes = np.sort(rng.choice(seen_classes, size=n_val, replace=False))

    trainval, test_seen = [], []
    for c in seen_classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_seen_fraction * len(idx)))
        test_seen.append(idx[:n_test])
        trainval.append(idx[n_test:])
    trainval_idx = np.sort(np.concatenate(trainval))
    splits = {
        "trainval": trainval_idx,
        "test_seen": np.sort(np.concatenate(test_seen)),
        "test_unseen": np.flatnonzero(np.isin(labels, unseen_classes)),
        "train": trainval_idx[~np.isin(labels[trainval_idx], val_classes)],
        "val": trainval_idx[np.isin(labels[trainval_idx], val_classes)],
    }
    if image_size is not None:  # the same draws, drawn as pictures (the feature maps above only advanced the seed's stream)
        features = _images(cell_of, visible, colours, patterns, grid, image_size, knobs, nuisance, contrast, seed)
    return ZSLDataset(
        name="synthetic" if image_size is None else "synthetic_images",
        labels=labels,
        class_attributes=class_attributes,
        splits=splits,
        features=features,
        class_names=[f"family{family_of[k]:02d}_variant{k % family_size}" for k in range(num_classes)],
        attribute_names=attribute_names,
        attribute_embeddings=words,
        metadata={
            "generator": "zslkit.datasets.synthetic.make_synthetic",
            "seed": seed,
            "variant": variant,
            **knobs,
            "family_of_class": family_of.tolist(),
            "parts": list(parts),
            **({} if image_size is None else {"form": "images", "image_size": image_size,
                                              "pixels": {"mean": 0.5, "std": 0.25}}),  # stored (p - mean) / std
        },
    )


def _images(cell_of, visible, colours, patterns, grid, image_size, knobs, nuisance, contrast, seed):
    """The :class:`~zslkit.datasets.synthetic_images.SyntheticImages` of the draws."""
    from zslkit.datasets.synthetic_images import SyntheticImages, cell_boxes, render_images

    pixels = render_images(cell_of, visible, colours, patterns, parts=PARTS[: cell_of.shape[1]], colours=COLOURS,
                           patterns=PATTERNS, grid=grid, image_size=image_size, part_signal=knobs["part_signal"],
                           part_specificity=knobs["part_specificity"], noise=knobs["noise"], nuisance=nuisance,
                           contrast=contrast, seed=seed)
    return SyntheticImages(pixels, cell_boxes(grid, image_size)[cell_of], visible, colours, patterns)


@register("dataset", "synthetic_images")
def make_synthetic_images(image_size: int = 56, **options) -> ZSLDataset:
    """``synthetic`` as ``(N, 3, image_size, image_size)`` pictures (:mod:`zslkit.datasets.synthetic_images`).

    ``options``: any argument of :func:`make_synthetic` (``seed``, ``variant``, ``num_classes``...):
    the same classes, attributes and splits as ``make_synthetic(**options)``.
    """
    return make_synthetic(**options, image_size=image_size)


def _sample_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one index per row of ``probs`` (``(..., V)``)."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,))
    return np.minimum((u > cdf).sum(axis=-1), probs.shape[-1] - 1)
