"""Placement of images on screen: integer magnification (uniform pixel blocks), smooth downscaling via mipmaps.

A 64 px image shown at 986 px would alternate 15- and 16-pixel blocks under nearest-neighbour magnification;
the reference visualizer floors the zoom to an integer whenever it is >= 1, and so do we. Smaller zooms are left
fractional: :class:`gui_utils.gl_utils.Texture` minifies with trilinear mipmapping, which averages texels instead
of skipping them. The rectangle's corner is snapped to whole framebuffer pixels so the blocks line up.
"""

from __future__ import annotations

import math

__all__ = ['fit_rect', 'zoom_for']


def zoom_for(w: float, h: float, img_w: int, img_h: int, pixel_scale: float = 1.0) -> float:
    """Display zoom (screen units per image pixel) of an ``img_w`` x ``img_h`` image in a ``w`` x ``h`` area.

    The largest zoom that fits; when it is >= 1 framebuffer pixel per image pixel it is floored to a whole number
    of framebuffer pixels (``pixel_scale`` framebuffer pixels per screen unit). 0 for an empty image or area.
    """
    if img_w <= 0 or img_h <= 0 or w <= 0 or h <= 0:
        return 0.0
    ps = pixel_scale if pixel_scale > 0 else 1.0
    s = min(w / img_w, h / img_h) * ps  # Framebuffer pixels per image pixel.
    return (float(math.floor(s)) if s >= 1 else float(s)) / ps


def fit_rect(
    x0: float, y0: float, w: float, h: float, img_w: int, img_h: int, pixel_scale: float = 1.0
) -> tuple[float, float, float, float]:
    """Rectangle ``(x, y, w, h)`` showing the image centred in the area ``(x0, y0, w, h)`` at :func:`zoom_for`.

    Args:
        x0, y0, w, h: Available area in screen units.
        img_w, img_h: Image size in pixels.
        pixel_scale: Framebuffer pixels per screen unit (HiDPI); the corner is snapped to whole framebuffer pixels.

    Returns:
        ``(x, y, fw, fh)``; ``(x0, y0, 0, 0)`` when nothing fits.
    """
    s = zoom_for(w, h, img_w, img_h, pixel_scale)
    if s <= 0:
        return x0, y0, 0.0, 0.0
    fw, fh = img_w * s, img_h * s
    ps = pixel_scale if pixel_scale > 0 else 1.0
    x = math.floor((x0 + (w - fw) / 2) * ps) / ps
    y = math.floor((y0 + (h - fh) / 2) * ps) / ps
    return x, y, fw, fh
