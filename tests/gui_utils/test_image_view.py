"""gui_utils.image_view: integer magnification (uniform pixel blocks), fractional downscaling, snapped corners."""

from __future__ import annotations

import itertools

import pytest

from gui_utils.image_view import fit_rect, zoom_for


def test_zoom_is_floored_to_an_integer_when_magnifying():
    assert zoom_for(986, 986, 64, 64) == 15  # Not 15.4: 15- and 16-pixel blocks would alternate.
    assert zoom_for(1000, 700, 64, 64) == 10
    assert zoom_for(64, 64, 64, 64) == 1
    assert zoom_for(127, 500, 64, 64) == 1
    assert zoom_for(32, 48, 64, 64) == pytest.approx(0.5)  # Downscaling stays fractional (mipmapped).
    assert zoom_for(0, 10, 64, 64) == 0 and zoom_for(10, 10, 0, 64) == 0


def test_zoom_counts_whole_framebuffer_pixels_on_hidpi():
    # 2 framebuffer pixels per screen unit: 986 units = 1972 px -> 30 px per image pixel = 15 units.
    assert zoom_for(986, 986, 64, 64, pixel_scale=2) == 15
    # 1.5 px per unit: 700 units = 1050 px -> 16 px per image pixel (not 16.4) = 10.666 units.
    assert zoom_for(700, 700, 64, 64, pixel_scale=1.5) * 1.5 == pytest.approx(16)


@pytest.mark.parametrize('ps', [1.0, 2.0, 1.25])
def test_fit_rect_is_centred_snapped_and_inside(ps):
    for x0, y0, w, h, iw, ih in itertools.product((0, 13.3), (0, 7.7), (100, 986.5), (90, 640), (64, 37), (64, 256)):
        x, y, fw, fh = fit_rect(x0, y0, w, h, iw, ih, pixel_scale=ps)
        assert x0 - 1 / ps < x and x + fw <= x0 + w + 1e-9 and y0 - 1 / ps < y and y + fh <= y0 + h + 1e-9
        assert (x * ps) == pytest.approx(round(x * ps)) and (y * ps) == pytest.approx(round(y * ps))
        z = fw / iw
        assert fh / ih == pytest.approx(z)
        if z * ps >= 1:
            assert z * ps == pytest.approx(round(z * ps))
        assert abs((x - x0) - (x0 + w - x - fw)) <= 2 / ps + 1e-9  # Centred up to the snap.
