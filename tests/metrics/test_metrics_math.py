"""The maths of the metrics against independent formulations: PSNR, masked comparison, image transforms,
Fréchet distance (scipy.linalg.sqrtm), KID (direct double sum) and the feature statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics import equivariance as eq
from metrics import frechet_inception_distance as fid
from metrics import kernel_inception_distance as kid
from metrics import metric_utils


def test_psnr_formula():
    assert eq.psnr_db(1.0) == pytest.approx(20 * math.log10(2))
    assert eq.psnr_db(4.0) == pytest.approx(0.0, abs=1e-12)  # MSE = I_max^2 -> 0 dB.
    assert eq.psnr_db(0.01) == pytest.approx(10 * math.log10(4 / 0.01))
    assert eq.psnr_db(0.0) == eq.PSNR_MAX_DB  # Finite for identical images.


def test_masked_squared_error_ignores_invalid_pixels():
    a = torch.zeros([2, 3, 4, 4])
    b = torch.zeros([2, 3, 4, 4])
    b[..., 0, :] = 5.0  # Garbage in the first row only.
    b[..., 1:, :] = 0.5
    mask = torch.ones([4, 4], dtype=torch.bool)
    mask[0] = False
    se, count = eq.masked_squared_error(a, b, mask)
    assert count == 2 * 3 * 3 * 4
    assert se / count == pytest.approx(0.25)


def test_integer_translate_moves_content_and_masks_wrapped_pixels():
    img = torch.arange(5 * 6, dtype=torch.float32).reshape(1, 1, 5, 6)
    out, mask = eq.integer_translate(img, 2, -1)  # Right by 2, up by 1.
    assert out[0, 0, 0, 2] == img[0, 0, 1, 0]
    assert mask.shape == (5, 6)
    assert not mask[:, :2].any() and not mask[-1, :].any()
    assert mask[:-1, 2:].all()


def _bandlimited(res: int, coords_fn, fmax: float = 0.3) -> torch.Tensor:
    """Sum of sinusoids below fmax cycles/pixel evaluated at coords_fn(x, y) (image-centred units)."""
    rng = np.random.RandomState(1)
    c = (torch.arange(res, dtype=torch.float64) + 0.5) / res - 0.5
    gy, gx = torch.meshgrid(c, c, indexing='ij')
    x, y = coords_fn(gx, gy)
    img = torch.zeros([res, res], dtype=torch.float64)
    for _ in range(6):
        r, a, p = rng.uniform(0.02, fmax) * res, rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
        img += torch.sin(2 * math.pi * r * (math.cos(a) * x + math.sin(a) * y) + p) / 6
    return img[None, None]


def _lanczos3(d: float) -> float:
    return 0.0 if abs(d) >= 3 else float(np.sinc(d) * np.sinc(d / 3))


def test_fractional_translate_is_the_six_tap_lanczos_shift_by_hand():
    # Shift right by 0.25 of a 16 px image = 4 px exactly -> an exact copy; by 0.3 / 16 -> six taps per axis.
    img = torch.from_numpy(np.random.RandomState(0).randn(1, 1, 16, 16))
    out, mask = eq.fractional_translate(img, 4 / 16, 0.0)
    assert torch.equal(out[..., 4:], img[..., :-4]) and mask[:, 4:].all() and not mask[:, :4].any()
    out, mask = eq.fractional_translate(img, 0.3 / 16, -1.6 / 16)
    x = img[0, 0].numpy()
    for i, j in ((3, 8), (7, 5), (10, 11)):  # Output (row, column) well inside the image.
        sy, sx = i + 1.6, j - 0.3  # Source position of the output pixel.
        rows = [int(np.floor(sy)) - 2 + k for k in range(6)]
        cols = [int(np.floor(sx)) - 2 + k for k in range(6)]
        wy = np.array([_lanczos3(sy - r) for r in rows])
        wx = np.array([_lanczos3(sx - c) for c in cols])
        expected = (wy / wy.sum()) @ x[np.ix_(rows, cols)] @ (wx / wx.sum())
        assert float(out[0, 0, i, j]) == pytest.approx(expected, abs=1e-12)
        assert bool(mask[i, j])
    # Valid where all six taps per axis are inside: rows need 0 <= floor(i + 1.6) - 2 and floor(i + 1.6) + 3 <= 15,
    # columns 0 <= floor(j - 0.3) - 2 and floor(j - 0.3) + 3 <= 15.
    rows_ok = np.array([0 <= np.floor(i + 1.6) - 2 and np.floor(i + 1.6) + 3 <= 15 for i in range(16)])
    cols_ok = np.array([0 <= np.floor(j - 0.3) - 2 and np.floor(j - 0.3) + 3 <= 15 for j in range(16)])
    np.testing.assert_array_equal(mask.numpy(), rows_ok[:, None] & cols_ok[None, :])
    assert rows_ok.tolist() == [False] + [True] * 11 + [False] * 4


def test_fractional_translate_error_counts_against_the_generator():
    # A perfectly translated band-limited signal scores well below the integer case: the reference definition
    # keeps the Lanczos filter's own error (an ideal interpolator would report more optimistic numbers).
    res = 48
    t = (0.37 / res, -0.81 / res)
    img = _bandlimited(res, lambda x, y: (x - t[0], y - t[1]))
    orig = _bandlimited(res, lambda x, y: (x, y))
    m = eq.translation_matrix(*t)
    psnr = eq.psnr_db(np.divide(*eq.sample_squared_error(orig, img, m, 'frac')))
    assert 30 < psnr < 80, psnr


@pytest.mark.parametrize('angle', [0.3, 1.1, -2.5])
def test_affine_reference_matches_analytic_rotation(angle):
    res = 48
    matrix = eq.rotation_matrix(angle)

    def mapped(x, y):
        return (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2], matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2])

    orig = _bandlimited(res, lambda x, y: (x, y), fmax=0.12)
    expected = _bandlimited(res, mapped, fmax=0.12)
    ref, cmp, mask = eq.affine_reference(orig, expected, matrix)
    assert mask.float().mean() > 0.3
    se, count = eq.masked_squared_error(ref, expected, mask)
    assert eq.psnr_db(se / count) > 50
    se, count = eq.masked_squared_error(cmp, expected, mask)  # The band limit keeps these low frequencies.
    assert eq.psnr_db(se / count) > 50
    assert eq.psnr_db(np.divide(*eq.sample_squared_error(orig, expected, matrix, 'affine'))) > 50


def test_sample_squared_error_kinds():
    img = torch.randn([1, 3, 16, 16], dtype=torch.float64)
    m = eq.translation_matrix(3 / 16, -2 / 16)
    moved, _ = eq.integer_translate(img, 3, -2)
    assert eq.sample_squared_error(img, moved, m, 'int')[0] == 0
    assert eq.sample_squared_error(img, moved, m, 'frac')[0] < 1e-20  # Whole pixels: the Lanczos shift is exact.
    with pytest.raises(ValueError, match='kind must be one of'):
        eq.sample_squared_error(img, moved, m, 'shear')
    with pytest.raises(ValueError, match='pure translation'):
        eq.sample_squared_error(img, moved, eq.rotation_matrix(0.1), 'frac')


def _fid_scipy(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.RandomState(0)
    a = rng.randn(200, 16)
    b = rng.randn(300, 16) @ rng.randn(16, 16) * 0.3 + 0.5
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_fid_scipy(mu1, s1, mu2, s2), rel=1e-6)
    assert fid.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match='frechet_distance'):
        fid.frechet_distance(mu1, s1, mu2[:3], s2)


def _mmd2_direct(x, y):
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_unbiased_mmd_matches_direct_formula():
    rng = np.random.RandomState(0)
    x, y = rng.randn(12, 5), rng.randn(12, 5) + 0.3
    assert kid.mmd2_unbiased(x, y) == pytest.approx(_mmd2_direct(x, y), rel=1e-9)
    # Subsets: the same draws as the implementation (generated rows first), averaged.
    real, gen = rng.randn(30, 5), rng.randn(25, 5) + 0.2
    draw = np.random.RandomState(7)
    expected = []
    for _ in range(3):
        g = gen[draw.choice(25, 10, replace=False)]
        r = real[draw.choice(30, 10, replace=False)]
        expected.append(_mmd2_direct(g, r))
    got = kid.kernel_inception_distance(real, gen, num_subsets=3, max_subset_size=10, seed=7)
    assert got == pytest.approx(np.mean(expected), rel=1e-9)
    # Unbiased: identical distributions give ~0 (can be negative).
    assert abs(kid.kernel_inception_distance(rng.randn(400, 5), rng.randn(400, 5), 5, 200)) < 0.05


def test_feature_stats_mean_cov_and_max_items():
    rng = np.random.RandomState(0)
    feats = rng.randn(50, 6).astype(np.float32)
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=40)
    for chunk in np.split(feats, 5):
        stats.append(chunk)
    assert stats.num_items == 40 and stats.is_full()
    mu, sigma = stats.get_mean_cov()
    np.testing.assert_allclose(mu, feats[:40].mean(0), atol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(feats[:40].astype(np.float64), rowvar=False, bias=True), atol=1e-6)
    np.testing.assert_array_equal(stats.get_all(), feats[:40])


def test_all_gather_rows_single_process_is_identity():
    x = torch.arange(6.0).reshape(3, 2)
    assert metric_utils.all_gather_rows(x, 1) is x
