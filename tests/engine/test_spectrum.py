"""engine.spectrum: known signals (sinusoid peak, flat white noise), window energy, FFT view, slices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import spectrum as sp


def _cos_images(n: int, res: int, kx: int, ky: int = 0, amp: float = 100.0) -> torch.Tensor:
    y, x = np.mgrid[0:res, 0:res]
    img = 128 + amp * np.cos(2 * np.pi * (kx * x + ky * y) / res)
    return torch.from_numpy(np.broadcast_to(img, (n, 3, res, res)).copy()).round().to(torch.uint8)


def test_kaiser_window_unit_energy():
    w = sp.kaiser_window_2d(16, 8, beta=8.0)
    assert w.shape == (16, 8) and w.dtype == torch.float32
    assert float(w.square().sum()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(w.numpy(), w.numpy()[::-1, ::-1], atol=1e-7)  # symmetric
    assert float(w[8, 4]) > float(w[0, 0])
    with pytest.raises(ValueError, match='beta must be'):
        sp.kaiser_window_2d(4, 4, beta=-1)


@pytest.mark.parametrize('kx,ky', [(8, 0), (0, 4), (5, 5)])
def test_sinusoid_peaks_at_expected_bin(kx, ky):
    res, interp = 32, 4
    spec = sp.power_spectra(_cos_images(2, res, kx, ky), mean=128, std=70, interp=interp)  # [N, S, S]
    assert spec.shape == (2, res * interp, res * interp)
    hmap = sp.center_spectrum(spec[0].numpy())
    s = hmap.shape[0]
    c = s // 2
    peak = np.unravel_index(np.argmax(hmap), hmap.shape)  # (row=fy, col=fx)
    expected = {(c + ky * interp, c + kx * interp), (c - ky * interp, c - kx * interp)}
    assert tuple(int(i) for i in peak) in expected
    freqs = sp.centered_freqs(s)
    assert abs(abs(freqs[peak[1]]) - kx / res) < 1e-9 and abs(abs(freqs[peak[0]]) - ky / res) < 1e-9


def test_white_noise_is_flat_at_zero_db():
    gen = torch.Generator().manual_seed(0)
    n, res, sigma = 512, 16, 20.0
    imgs = 100.0 + sigma * torch.randn(n, 1, res, res, generator=gen)
    total = sp.power_spectrum_sum(imgs, mean=100.0, std=sigma, beta=8.0, interp=2)  # [S, S] float64
    assert total.dtype == torch.float64 and total.shape == (32, 32)
    avg = (total / n).numpy()
    # Unit-variance white noise through a unit-energy window: E|X(f)|^2 = 1 at every frequency (0 dB).
    assert avg.mean() == pytest.approx(1.0, abs=0.03)
    db = sp.to_db(avg)
    assert np.abs(db).max() < 1.0, f'max deviation {np.abs(db).max():.2f} dB'
    # Halving std (i.e. doubling the normalised signal) gives +6.02 dB.
    total2 = sp.power_spectrum_sum(imgs, mean=100.0, std=sigma / 2, beta=8.0, interp=2)
    assert float(sp.to_db(total2 / total).mean()) == pytest.approx(20 * math.log10(2), abs=1e-6)


def test_power_spectra_errors():
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match='std must be > 0'):
        sp.power_spectra(x, mean=0, std=0)
    with pytest.raises(ValueError, match='interp'):
        sp.power_spectra(x, mean=0, std=1, interp=0)
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'):
        sp.power_spectra(x[0], mean=0, std=1)


def test_to_db_and_center():
    assert sp.to_db(np.array([1.0, 10.0, 0.0])).tolist() == [0.0, 10.0, -100.0]
    assert torch.allclose(sp.to_db(torch.tensor([100.0])), torch.tensor([20.0]))
    a = np.zeros((4, 4))
    a[0, 0] = 1
    assert sp.center_spectrum(a)[2, 2] == 1
    assert sp.centered_freqs(4).tolist() == [-0.5, -0.25, 0.0, 0.25]


def test_radial_slices_and_smoothing():
    s = 8
    f = sp.centered_freqs(s)
    fy, fx = np.meshgrid(f, f, indexing='ij')
    hmap = -100 * np.sqrt(fx**2 + fy**2)  # radial ramp in dB
    sl = sp.radial_slices(hmap)
    assert sl['freq_0'].tolist() == [0, 0.125, 0.25, 0.375]
    np.testing.assert_allclose(sl['slice_0'], -100 * sl['freq_0'])
    np.testing.assert_allclose(sl['slice_45'], -100 * sl['freq_45'])
    assert sl['freq_45'][-1] == pytest.approx(0.375 * math.sqrt(2))
    assert sp.smooth_db(hmap, 0) is not None and np.allclose(sp.smooth_db(hmap, 0), hmap)
    sm = sp.smooth_db(np.pad(np.ones((1, 1)), 3), 1.0)
    assert sm.sum() == pytest.approx(1.0, rel=0.05) and sm.max() < 0.5
    with pytest.raises(ValueError):
        sp.radial_slices(np.zeros((4, 5)))


def test_layer_spectrum_db_view():
    res = 16
    y, x = np.mgrid[0:res, 0:res]
    feat = torch.from_numpy(np.stack([np.cos(2 * np.pi * 3 * x / res), np.zeros((res, res)) + 5]).astype(np.float32))
    db = sp.layer_spectrum_db(feat)  # [C, H, W]
    assert db.shape == (res, res) and db.dtype == torch.float32
    # Normalised to the mean power: mean of the linear values is 1.
    assert float((10 ** (db / 10)).mean()) == pytest.approx(1.0, rel=1e-4)
    peak = np.unravel_index(int(db.argmax()), db.shape)
    assert peak in {(8, 11), (8, 5)}
    # The constant channel contributes nothing (mean removed): same as the single cosine channel.
    np.testing.assert_allclose(db.numpy(), sp.layer_spectrum_db(feat[:1]).numpy(), atol=1e-4)
    # [1, C, H, W] is the same as [C, H, W]; half input is computed in float32.
    np.testing.assert_allclose(db.numpy(), sp.layer_spectrum_db(feat[None]).numpy(), atol=1e-5)
    assert sp.layer_spectrum_db(feat.half()).dtype == torch.float32
    # Non-square and constant inputs.
    assert sp.layer_spectrum_db(torch.randn(2, 3, 8, 12)).shape == (8, 12)
    assert float(sp.layer_spectrum_db(torch.ones(3, 4, 4)).max()) == pytest.approx(-100.0)
    with pytest.raises(ValueError, match='layer_spectrum_db'):
        sp.layer_spectrum_db(torch.zeros(4, 4))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    imgs = _cos_images(4, 32, 3, 2)
    cpu = sp.power_spectrum_sum(imgs, mean=128, std=70)
    gpu = sp.power_spectrum_sum(imgs.cuda(), mean=128, std=70)
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-3, atol=1e-3 * float(cpu.max()))
    feat = torch.randn(8, 16, 16)
    np.testing.assert_allclose(
        sp.layer_spectrum_db(feat.cuda()).cpu().numpy(), sp.layer_spectrum_db(feat).numpy(), atol=1e-3
    )


@pytest.mark.parametrize('shape,interp', [((3, 2, 16, 16), 4), ((2, 3, 5, 7), 3), ((1, 1, 8, 6), 1)])
def test_power_spectra_equals_padded_fft2(shape, interp):
    # The fast path (real FFT over the non-zero rows) equals the plain zero-padded |FFT2|^2 channel mean.
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 255
    win = sp.kaiser_window_2d(shape[2], shape[3], beta=6.0)
    s = (shape[2] * interp, shape[3] * interp)
    ref = torch.fft.fft2((x - 100) / 50 * win, s=s).abs().square().mean(dim=1)  # [N, Sh, Sw]
    got = sp.power_spectra(x, mean=100, std=50, beta=6.0, interp=interp)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5 * float(ref.max()))
    total = sp.power_spectrum_sum(x, mean=100, std=50, beta=6.0, interp=interp)
    np.testing.assert_allclose(total.numpy(), ref.sum(dim=0).double().numpy(), rtol=1e-4, atol=1e-5 * float(ref.max()))
