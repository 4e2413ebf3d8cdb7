"""engine.resample against independent computations: hand-computed Lanczos taps (numpy loops) and analytic
band-limited signals (sums of cosines evaluated at the transformed positions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import resample as rs


def _lanczos_np(d: float, a: int = 3) -> float:
    """sinc(d) sinc(d / a) written out: sin(pi d) sin(pi d / a) / (pi^2 d^2 / a)."""
    if d == 0:
        return 1.0
    if abs(d) >= a or d == round(d):
        return 0.0
    return a * math.sin(math.pi * d) * math.sin(math.pi * d / a) / (math.pi * d) ** 2


def _shift_row_by_hand(row: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """out[i] = sum over the six pixels j around i - shift of L(i - shift - j) x[j] / sum of the weights."""
    n = len(row)
    out = np.zeros(n)
    valid = np.ones(n, dtype=bool)
    for i in range(n):
        s = i - shift
        js = [math.floor(s) - 2 + k for k in range(6)]
        ws = [_lanczos_np(s - j) for j in js]
        total = sum(ws)
        for j, w in zip(js, ws):
            if w == 0:
                continue
            if 0 <= j < n:
                out[i] += w / total * row[j]
            else:
                valid[i] = False
    return out, valid


def test_lanczos_half_pixel_weights_by_hand():
    # A shift by 0.5 px puts the source half-way between pixels: taps at distances 2.5, 1.5, 0.5, -0.5, -1.5, -2.5.
    first, w = rs.lanczos_shift_weights(0.5)
    raw = np.array([_lanczos_np(d) for d in (2.5, 1.5, 0.5, -0.5, -1.5, -2.5)])
    assert first == -3
    np.testing.assert_allclose(w, raw / raw.sum(), atol=1e-15)
    np.testing.assert_allclose(w[2], 3 * math.sin(math.pi / 6) / (math.pi**2 * 0.25) / raw.sum(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize('tx, ty', [(0.5, 0.0), (-1.25, 0.3), (2.7, -0.61), (0.0, 0.0)])
def test_lanczos_translate_matches_hand_computation(tx, ty):
    rng = np.random.RandomState(0)
    img = rng.randn(2, 3, 11, 13)
    out, mask = rs.lanczos_translate(torch.from_numpy(img), tx, ty)
    expected = np.zeros_like(img)
    for n in range(2):
        for c in range(3):
            rows = np.stack([_shift_row_by_hand(r, tx)[0] for r in img[n, c]])
            expected[n, c] = np.stack([_shift_row_by_hand(col, ty)[0] for col in rows.T]).T
    valid_x = _shift_row_by_hand(np.zeros(13), tx)[1]
    valid_y = _shift_row_by_hand(np.zeros(11), ty)[1]
    np.testing.assert_array_equal(mask.numpy(), valid_y[:, None] & valid_x[None, :])
    np.testing.assert_allclose(out.numpy()[..., mask.numpy()], expected[..., mask.numpy()], atol=1e-12)


def test_lanczos_translate_whole_pixels_is_an_exact_copy():
    img = torch.randn([1, 2, 9, 10], dtype=torch.float64)
    out, mask = rs.lanczos_translate(img, 2.0, -1.0)
    assert torch.equal(out[..., 0:8, 2:], img[..., 1:9, :-2])
    assert not mask[:, :2].any() and not mask[-1].any() and mask[:-1, 2:].all()


# ----------------------------------------------------------------------------------------------------------------
# Band-limited affine resampling against analytic signals.


def _cosines(xs, ys, freqs):
    return sum(np.cos(2 * math.pi * (fx * xs + fy * ys) + ph) for fx, fy, ph in freqs)


def _affine_px(angle: float, t: tuple[float, float], size: int) -> np.ndarray:
    """Rotation by `angle` about the image centre followed by a shift t (pixels): output -> source positions."""
    lin = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    c = np.array([size / 2 - 0.5, size / 2 - 0.5])
    return np.concatenate([lin, (c - lin @ c + np.array(t))[:, None]], axis=1)


def _bilinear(img: torch.Tensor, m_px: np.ndarray) -> torch.Tensor:
    """The previous untransform: grid_sample (bilinear, zeros outside) at the same positions."""
    n, c, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing='ij')
    sx = m_px[0, 0] * xs + m_px[0, 1] * ys + m_px[0, 2]
    sy = m_px[1, 0] * xs + m_px[1, 1] * ys + m_px[1, 2]
    grid = torch.stack([(sx + 0.5) / w * 2 - 1, (sy + 0.5) / h * 2 - 1], dim=-1)[None]
    return torch.nn.functional.grid_sample(img, grid, mode='bilinear', align_corners=False)


LOW = [(0.06, 0.02, 0.3), (-0.03, 0.07, 1.1), (0.05, -0.05, 2.0)]  # cycles/pixel, |f| <= 0.08
MID = [(0.21, 0.05, 0.3), (-0.07, 0.2, 1.1), (0.16, -0.16, 2.0)]  # |f| <= 0.23


@pytest.mark.parametrize('angle', [0.0, 0.1, math.pi / 4, 2.0, -2.9])
@pytest.mark.parametrize('t', [(0.0, 0.0), (0.3, -1.7), (-0.5, 0.25)])
def test_bandlimited_affine_matches_analytic_signal(angle, t):
    size = 40
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing='ij')
    m_px = _affine_px(angle, t, size)
    sx = m_px[0, 0] * xs + m_px[0, 1] * ys + m_px[0, 2]
    sy = m_px[1, 0] * xs + m_px[1, 1] * ys + m_px[1, 2]
    for freqs, tol in ((LOW, 0.012), (MID, 0.1)):  # Max |error| of a sum of 3 unit cosines.
        img = torch.from_numpy(_cosines(xs, ys, freqs))[None, None]
        out, mask = rs.bandlimited_affine(img, m_px)
        assert mask.float().mean() > 0.3
        err = (out[0, 0] - torch.from_numpy(_cosines(sx, sy, freqs)))[mask].abs().max().item()
        assert err < tol, (freqs is LOW, err)
        if freqs is MID and t != (0.0, 0.0):  # Sub-pixel positions: bilinear attenuates these frequencies.
            bil = (_bilinear(img, m_px)[0, 0] - torch.from_numpy(_cosines(sx, sy, freqs)))[mask].abs().max().item()
            assert bil > 2 * err, (bil, err)


def test_bandlimited_affine_removes_frequencies_the_output_grid_cannot_hold():
    # (0.42, 0.42) cycles/pixel lies inside the source grid's band; rotated by 45 degrees it becomes (0.59, 0):
    # beyond the output grid's Nyquist frequency. Resampled without the output low-pass it would alias.
    size = 48
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing='ij')
    img = torch.from_numpy(np.cos(2 * math.pi * 0.42 * (xs + ys)))[None, None]
    m_px = _affine_px(math.pi / 4, (0.0, 0.0), size)
    out, mask = rs.bandlimited_affine(img, m_px)
    rms_in = img.square().mean().sqrt().item()
    rms_out = out[0, 0][mask].square().mean().sqrt().item()
    assert rms_out < 0.15 * rms_in
    assert _bilinear(img, m_px)[0, 0][mask].square().mean().sqrt().item() > 3 * rms_out  # Aliased by bilinear.
    # The same band limit applied in place (identity positions, band of the inverse rotation) removes it too,
    # while a low frequency passes.
    band = np.linalg.inv(m_px[:, :2])
    kept, kept_mask = rs.bandlimited_affine(img, np.eye(3), band_px=band)
    assert kept[0, 0][kept_mask].square().mean().sqrt().item() < 0.15 * rms_in
    low = torch.from_numpy(_cosines(xs, ys, LOW))[None, None]
    same, same_mask = rs.bandlimited_affine(low, np.eye(3), band_px=band)
    assert (same - low)[0, 0][same_mask].abs().max().item() < 4e-3


def test_bandlimited_affine_mask_covers_the_filter_support():
    # A constant image resamples to the constant exactly where the support is inside, less where it is not.
    img = torch.ones([1, 1, 32, 32], dtype=torch.float64)
    out, mask = rs.bandlimited_affine(img, _affine_px(0.7, (0.4, -0.3), 32))
    assert mask.any() and not mask.all()
    assert (out[0, 0][mask] - 1).abs().max().item() < 1e-9
    assert (out[0, 0][~mask] - 1).abs().max().item() > 1e-3
    assert out.dtype == torch.float64 and out.shape == img.shape


def test_centred_to_pixels_matches_the_image_centred_convention():
    # Image-centred units (the image spans `extent`): pixel i at ((i + 0.5) / W - 0.5) * extent.
    m = np.array([[0.6, -0.8, 0.1], [0.8, 0.6, -0.05], [0, 0, 1]])
    w = h = 20
    for extent in (1.0, 1.5):
        m_px = rs.centred_to_pixels(m, w, h, extent=extent)
        for i, j in ((0, 0), (3, 17), (19, 5)):
            p = np.array([((i + 0.5) / w - 0.5) * extent, ((j + 0.5) / h - 0.5) * extent])
            q = m[:2, :2] @ p + m[:2, 2]
            expected = q / extent * w + w / 2 - 0.5
            np.testing.assert_allclose(m_px[:, :2] @ [i, j] + m_px[:, 2], expected, atol=1e-12)


def test_bad_arguments_are_clear_errors():
    img = torch.zeros([1, 1, 8, 8])
    with pytest.raises(ValueError, match='matrix_px must be invertible'):
        rs.bandlimited_affine(img, [[0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match=r'matrix_px must be a finite \[2, 3\]'):
        rs.bandlimited_affine(img, [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r'x must be \[N, C, H, W\]'):
        rs.bandlimited_affine(img[0], np.eye(3))
    with pytest.raises(ValueError, match='shifts must be finite'):
        rs.lanczos_translate(img, float('nan'), 0.0)
