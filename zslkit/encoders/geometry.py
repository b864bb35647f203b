"""The relative-geometry embedding of the cells of a region grid (TransZero's encoder term).

Each region of an ``H x W`` grid is a cell box on the unit square, computed as the
authors' code does: for row ``p`` and column ``q``, ``x_min = p / H``, ``x_max = (p + 1) / H``
(``y`` likewise with ``q`` and ``W``), centre ``c = (min + max) / 2`` and width
``w = (max - min) + 1`` (so every box has the same size and the two size terms are 0).
For the pair ``(r, r')``:

* ``dx = log(max(|cx_r - cx_r'| / w_r, 1e-3))``, ``dy`` likewise;
* ``dw = log(w_r / w_r')``, ``dh = log(h_r / h_r')``;
* each of the 4 values times ``100`` times the 8 frequencies ``1000^(-k/8)``, then
  ``sin`` of the 32 products followed by their ``cos``: ``E_{r,r'}`` of width 64.

``E`` depends only on the grid, never on the image: :func:`relative_geometry_embedding`
computes it once per grid, device and dtype, and caches it.
"""

from __future__ import annotations

import functools

import torch
from einops import rearrange

__all__ = ["GEOMETRY_DIM", "relative_geometry_embedding"]

#: Width of the embedding: 4 relative values x 8 frequencies x (sin, cos).
GEOMETRY_DIM = 64
_FREQUENCIES, _WAVE_LENGTH, _SCALE, _MIN_OFFSET = 8, 1000, 100.0, 1e-3


def _cell_boxes(height: int, width: int) -> tuple[torch.Tensor, ...]:
    """Centres and sizes ``(R,)`` of the grid cells, regions in row-major order (``r = p W + q``)."""
    rows = torch.arange(height, dtype=torch.float32).repeat_interleave(width)
    cols = torch.arange(width, dtype=torch.float32).repeat(height)
    x_min, x_max = rows / height, (rows + 1) / height
    y_min, y_max = cols / width, (cols + 1) / width
    return (x_min + x_max) * 0.5, (y_min + y_max) * 0.5, (x_max - x_min) + 1.0, (y_max - y_min) + 1.0


@functools.lru_cache(maxsize=16)
def _embedding(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    cx, cy, w, h = _cell_boxes(height, width)
    # [r, r'] = value of region r minus (or over) value of region r'
    dx = torch.log(torch.clamp(torch.abs((cx[:, None] - cx[None, :]) / w[:, None]), min=_MIN_OFFSET))
    dy = torch.log(torch.clamp(torch.abs((cy[:, None] - cy[None, :]) / h[:, None]), min=_MIN_OFFSET))
    dw = torch.log(w[:, None] / w[None, :])
    dh = torch.log(h[:, None] / h[None, :])
    relative = torch.stack((dx, dy, dw, dh), dim=-1)  # (R, R, 4)
    frequencies = 1.0 / torch.pow(_WAVE_LENGTH, torch.arange(_FREQUENCIES, dtype=torch.float32) / _FREQUENCIES)
    phases = rearrange((_SCALE * relative)[..., None] * frequencies, "r s value freq -> r s (value freq)")
    embedding = torch.cat((torch.sin(phases), torch.cos(phases)), dim=-1)
    return embedding.to(device=device, dtype=dtype)


def relative_geometry_embedding(
    grid: tuple[int, int], *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``E`` ``(R, R, 64)`` for an ``(H, W)`` grid, ``R = H W`` (cached; do not modify it in place)."""
    height, width = (int(v) for v in grid)
    if height < 1 or width < 1:
        raise ValueError(f"grid must be (H, W) with H, W >= 1, got {grid!r}")
    return _embedding(height, width, torch.device(device or "cpu"), dtype)
