"""For tests of ``zslkit viz attention`` on a checkpoint: a picture file from an image array, and what the CLI drew."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import zslkit.viz


def save_picture(image: np.ndarray, path: Path) -> Path:
    """``(3, H, W)`` values of any range -> an 8-bit PNG at ``path``."""
    picture = image.transpose(1, 2, 0)
    picture = ((picture - picture.min()) / (picture.max() - picture.min()) * 255).astype(np.uint8)
    Image.fromarray(picture).save(path)
    return path


def capture_drawings(monkeypatch, top_k: int = 2) -> dict:
    """Filled, once the CLI has drawn, with its ``model``, the image it fed (``features``) and the top-``top_k``
    attribute ``panels`` of every branch (``zslkit.viz.top_attribute_maps``)."""
    drawn: dict = {}
    draw = zslkit.viz.attention_figure

    def catch(model, image, features, **kwargs):
        drawn.update(model=model, features=features, panels=zslkit.viz.top_attribute_maps(model, features, top_k=top_k))
        return draw(model, image, features, **kwargs)

    monkeypatch.setattr(zslkit.viz, "attention_figure", catch)
    return drawn
