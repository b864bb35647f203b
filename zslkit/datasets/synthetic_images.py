"""``synthetic_images``: the ``synthetic`` dataset as small pictures, for end-to-end models.

Same classes, attributes, word vectors and splits as ``synthetic`` with the same
arguments (the generator draws the same classes, part places, occlusions and
per-image colours and patterns from the seed); what differs is what an image *is*:
instead of a ``(C, grid, grid)`` feature map, an ``image_size`` px RGB picture
(``(3, S, S)``, 56 px by default: 8 px cells) that a backbone must learn to read.

How an image is drawn (deterministic from ``seed``):

* The picture is cut into the feature form's ``grid x grid`` cells; cell ``(i, j)``'s
  box is ``c = S // grid`` px square with its top-left corner at
  ``(floor(i * S / grid), floor(j * S / grid))`` (:func:`cell_boxes`). A part is drawn
  inside the box of the cell it occupies in the feature form, and nowhere else;
  an occluded part is not drawn at all.
* A part's drawing is its value's **colour** (the named colour's RGB, :data:`COLOUR_RGB`),
  textured by its **pattern** (solid; striped: every third row darkened; spotted: a dark
  dot every third pixel). Where in the box the colour lies is ``part_specificity``'s
  business, as in the feature form: a share ``s = part_specificity / (1 + part_specificity)``
  of it fills only the part's **shape** (a disc for the head, a square for the breast, a
  triangle for the wing, ...; :data:`SHAPES`), the rest the whole box. With a large ``s``
  (``fine-grained``, 2/3) a red head looks unlike a red wing; with a small one (``parts``,
  0.26) every part shows its colour as the same square. The part itself is also marked
  apart from its colour, by the outline of its shape in white at strength
  ``part_signal / (1 + part_signal)`` (1/3 ``fine-grained``, 2/3 ``parts``).
* **Nuisance**: grey background (0.5) with Gaussian pixel noise of std ``noise / 3``
  everywhere, a per-image colour offset of std ``nuisance`` and a per-image contrast
  factor drawn from ``contrast`` around grey. Pixels are clipped to ``[0, 1]`` and
  stored as bytes (``uint8``), like a real image.

The images are an array-like :class:`SyntheticImages` (``(N, 3, S, S)`` float32 when
indexed, normalised as ``(pixel - 0.5) / 0.25``) that also records where each part was
drawn (``boxes``, ``visible``) and what (``colour``, ``pattern``): ground truth for
localisation. A model reads them through a backbone, e.g. ``zslkit bench --dataset
synthetic_images --backbone resnet10t --random-init ...`` (``docs/data.md``).
"""

from __future__ import annotations

import numpy as np

from zslkit.datasets.lazy_rows import LazyRows

__all__ = ["COLOUR_RGB", "SHAPES", "SyntheticImages", "cell_boxes", "render_images"]

#: RGB in [0, 1] of each colour value of :data:`zslkit.datasets.synthetic.COLOURS`.
COLOUR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1), "blue": (0.1, 0.2, 0.85), "yellow": (0.95, 0.85, 0.1),
    "black": (0.05, 0.05, 0.05), "white": (0.95, 0.95, 0.95), "brown": (0.5, 0.3, 0.1),
}
#: The shape each part is drawn in (:data:`zslkit.datasets.synthetic.PARTS` order).
SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "bar", "ring", "cross")
#: Pixel mean and scale of the normalisation applied when the images are read.
MEAN, SCALE = 0.5, 0.25
_DARK = 0.35  # what stripes and spots multiply the colour by


def cell_boxes(grid: int, image_size: int) -> np.ndarray:
    """``(grid * grid, 4)`` int boxes ``(top, left, bottom, right)`` (bottom/right exclusive) of the cells, row-major."""
    size = image_size // grid
    starts = (np.arange(grid) * image_size) // grid
    top, left = np.repeat(starts, grid), np.tile(starts, grid)
    return np.stack([top, left, top + size, left + size], axis=1).astype(np.int64)


def shape_mask(shape: str, size: int) -> np.ndarray:
    """``(size, size)`` bool mask of a part's shape in its box."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    c, r = size / 2, size / 2
    if shape == "disc":
        return (y - c) ** 2 + (x - c) ** 2 <= (0.8 * r) ** 2
    if shape == "square":
        return (abs(y - c) <= 0.55 * r) & (abs(x - c) <= 0.55 * r)
    if shape == "triangle":
        return (y >= 0.15 * size) & (abs(x - c) <= (y - 0.15 * size) * 0.6)
    if shape == "bar":
        return abs(y - c) <= 0.3 * r
    if shape == "ring":
        d = (y - c) ** 2 + (x - c) ** 2
        return (d <= (0.9 * r) ** 2) & (d >= (0.45 * r) ** 2)
    if shape == "cross":
        return (abs(y - c) <= 0.25 * r) | (abs(x - c) <= 0.25 * r)
    raise ValueError(f"unknown shape {shape!r}; give one of {', '.join(SHAPES)}")


def pattern_texture(pattern: str, size: int) -> np.ndarray:
    """``(size, size)`` multiplier of the colour: 1 (solid) or :data:`_DARK` on stripes/spots."""
    y, x = np.mgrid[0:size, 0:size]
    if pattern == "solid":
        return np.ones((size, size))
    if pattern == "striped":
        return np.where(y % 3 == 2, _DARK, 1.0)
    if pattern == "spotted":
        return np.where((y % 3 == 1) & (x % 3 == 1), _DARK, 1.0)
    raise ValueError(f"unknown pattern {pattern!r}")


def shape_outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with a 4-neighbour outside it (or on the box's border)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def part_templates(parts, colours, patterns, size: int, part_signal: float, part_specificity: float) -> np.ndarray:
    """``(P, n_colours, n_patterns, size, size, 3)`` drawings: colour x pattern spread by shape, then the outline."""
    s, w = part_specificity / (1.0 + part_specificity), part_signal / (1.0 + part_signal)
    rgb = np.array([COLOUR_RGB[c] for c in colours])  # (n_col, 3)
    texture = np.stack([pattern_texture(t, size) for t in patterns])  # (n_pat, s, s)
    masks = np.stack([shape_mask(SHAPES[p], size) for p in range(len(parts))])  # (P, s, s)
    spread = (1.0 - s) + s * masks  # (P, s, s): the colour's share at each pixel
    out = rgb[None, :, None, None, None, :] * texture[None, None, :, :, :, None] * spread[:, None, None, :, :, None]
    outline = np.stack([shape_outline(m) for m in masks])[:, None, None, :, :, None]
    return np.clip(np.where(outline, (1.0 - w) * out + w, out), 0.0, 1.0)


def render_images(cell_of: np.ndarray, visible: np.ndarray, colour: np.ndarray, pattern: np.ndarray, *,
                  parts, colours, patterns, grid: int, image_size: int, part_signal: float, part_specificity: float,
                  noise: float, nuisance: float, contrast: tuple[float, float], seed: int, chunk: int = 512) -> np.ndarray:
    """``(N, 3, S, S)`` uint8 pictures; the per-image draws are ``(N, P)`` arrays (``cell_of``: cell index)."""
    rng = np.random.default_rng([seed, 0x5EED])  # its own stream: the feature form's draws stay as they are
    boxes = cell_boxes(grid, image_size)
    size = image_size // grid
    templates = part_templates(parts, colours, patterns, size, part_signal, part_specificity)
    n = cell_of.shape[0]
    out = np.empty((n, 3, image_size, image_size), dtype=np.uint8)
    span = np.arange(size)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        img = 0.5 + rng.normal(scale=noise / 3, size=(len(rows), image_size, image_size, 3))
        for p in range(cell_of.shape[1]):
            shown = rows[visible[rows, p]]
            top, left = boxes[cell_of[shown, p], 0], boxes[cell_of[shown, p], 1]
            ys = (top[:, None] + span)[:, :, None]
            xs = (left[:, None] + span)[:, None, :]
            img[(shown - start)[:, None, None], ys, xs] = templates[p, colour[shown, p], pattern[shown, p]]
        img += rng.normal(scale=nuisance, size=(len(rows), 1, 1, 3))
        img = 0.5 + (img - 0.5) * rng.uniform(*contrast, size=(len(rows), 1, 1, 1))
        out[rows] = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return out


class SyntheticImages(LazyRows):
    """``(N, 3, S, S)`` float32 images (``(pixel - 0.5) / 0.25``), held as bytes, with their ground truth.

    Attributes:
        pixels: ``(N, 3, S, S)`` uint8 pictures.
        boxes: ``(N, P, 4)`` int box ``(top, left, bottom, right)`` (exclusive) of each part.
        visible: ``(N, P)`` bool, ``False`` where the part is occluded (not drawn).
        colour, pattern: ``(N, P)`` int value index of each part's colour and pattern.
    """

    def __init__(self, pixels: np.ndarray, boxes: np.ndarray, visible: np.ndarray, colour: np.ndarray,
                 pattern: np.ndarray) -> None:
        self.pixels, self.boxes, self.visible = pixels, boxes, visible
        self.colour, self.pattern = colour, pattern
        self.shape = tuple(int(s) for s in pixels.shape)
        self.dtype = np.dtype(np.float32)

    def _read_run(self, start: int, stop: int, out: np.ndarray) -> None:
        np.multiply(self.pixels[start:stop], 1.0 / 255.0, out=out, casting="unsafe")
        out -= MEAN
        out /= SCALE
