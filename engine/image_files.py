"""Image files written by the command-line tools: atomic PNGs of uint8 images and grids of equal-sized images.

Shared by ``gen_images.py``, ``style_mixing.py`` and ``projector.py`` (one writer, one tiling rule). Images are
uint8 [H, W, C] with C = 1 (greyscale), 3 (RGB) or 4 (RGBA), the layout :func:`to_u8_hwc` makes from a
generator output in [-1, 1] (:func:`to_u8_hwc`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from engine.states import save_png_with_state

__all__ = ['save_png', 'tile_grid', 'to_u8_hwc']


def to_u8_hwc(img: Any) -> np.ndarray:
    """A generator output to an 8-bit image, as the reference tools convert it: ``x * 127.5 + 128``, clamped.

    Args:
        img: torch tensor [1, C, H, W] in [-1, 1], any device and float dtype.

    Returns:
        numpy uint8 [H, W, C] on the CPU.
    """
    import torch

    return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def save_png(path: str | os.PathLike, img_u8: np.ndarray) -> pathlib.Path:
    """Writes an 8-bit PNG atomically (a temporary file renamed over ``path``; parent folders are created).

    Args:
        path: the PNG file.
        img_u8: uint8 [H, W, C], C = 1 (written as greyscale 'L'), 3 ('RGB') or 4 ('RGBA').

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``img_u8`` is not uint8 [H, W, 1 | 3 | 4].
        OSError: the file cannot be written (nothing is left behind).
    """
    img_u8 = np.asarray(img_u8)
    if img_u8.dtype != np.uint8 or img_u8.ndim != 3 or img_u8.shape[2] not in (1, 3, 4):
        raise ValueError(f'save_png(): image must be uint8 [H, W, 1|3|4], got {img_u8.dtype} {list(img_u8.shape)}')
    return save_png_with_state(path, img_u8[:, :, 0] if img_u8.shape[2] == 1 else img_u8, None)


def tile_grid(cells: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Tiles equal-sized images into one: the image at (row, col) goes to that grid cell; empty cells are black.

    Args:
        cells: {(row, col): uint8 [H, W, C]}, rows and columns counted from 0; at least one image.

    Returns:
        uint8 [rows * H, cols * W, C] with rows / cols = 1 + the largest row / column index.

    Raises:
        ValueError: no cells, a negative index, or images of different shapes.
    """
    if not cells:
        raise ValueError('tile_grid(): no images to tile')
    shapes = {np.shape(img) for img in cells.values()}
    if len(shapes) != 1:
        raise ValueError(f'tile_grid(): images must all have one shape, got {sorted(shapes)}')
    if min(min(rc) for rc in cells) < 0:
        raise ValueError(f'tile_grid(): cell indices must be >= 0, got {sorted(cells)}')
    h, w, ch = shapes.pop()
    rows = 1 + max(r for r, _ in cells)
    cols = 1 + max(c for _, c in cells)
    canvas = np.zeros([rows * h, cols * w, ch], np.uint8)
    for (r, c), img in cells.items():
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = img
    return canvas
