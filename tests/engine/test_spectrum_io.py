"""engine.spectrum_io: radial profile of known signals, slices identical to `avg_spectra.py slices`, npz/CSV files."""

from __future__ import annotations

import csv
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import spectrum as sp
from engine import spectrum_io as spio

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cos_images(res: int, kx: int, ky: int) -> torch.Tensor:
    y, x = np.mgrid[0:res, 0:res]
    img = 128 + 100 * np.cos(2 * np.pi * (kx * x + ky * y) / res)
    return torch.from_numpy(np.broadcast_to(img, (1, 3, res, res)).copy()).round().to(torch.uint8)


@pytest.mark.parametrize('kx,ky', [(6, 0), (0, 9), (5, 5), (12, 3)])
def test_radial_average_peaks_at_sinusoid_frequency(kx, ky):
    res, interp = 32, 4
    spec = sp.power_spectrum_sum(_cos_images(res, kx, ky), mean=128, std=70, interp=interp).numpy()
    prof = spio.spectrum_profiles(spec)
    f_true = float(np.hypot(kx, ky) / res)
    v = prof['radial'][3:]  # skip the window's DC leakage
    f_peak = prof['freq_r'][3:][int(np.argmax(v))]
    assert abs(f_peak - f_true) <= 0.5 / (res * interp) + 1e-12, (f_peak, f_true)
    # The peak towers over the floor by far (a pure tone against quantisation noise).
    assert v.max() - np.median(v) > 30
    assert prof['freq_r'][0] == 0 and np.all(np.diff(prof['freq_r']) > 0)
    assert prof['freq_r'][-1] == pytest.approx(np.hypot(0.5, 0.5), abs=1 / (res * interp))


def test_radial_average_of_flat_spectrum_is_flat_and_counts_rings():
    s = 16
    freq, power = spio.radial_average(np.full((s, s), 3.0))
    np.testing.assert_allclose(power, 3.0)
    assert len(freq) == len(power) and freq[1] == pytest.approx(1 / s)
    with pytest.raises(ValueError, match='square'):
        spio.radial_average(np.zeros((4, 5)))
    with pytest.raises(ValueError, match='square'):
        spio.spectrum_profiles(np.zeros(4))


def _synthetic_npz(path: pathlib.Path, seed: int) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    spio.save_spectrum(
        str(path),
        dict(spectrum=rng.gamma(2.0, size=(64, 64)), image_size=16, beta=8.0, interp=4, num=3, mean=1.0, std=2.0,
             source='synthetic'),
    )  # fmt: skip
    return path


@pytest.mark.parametrize('smooth', [0.0, 1.25])
def test_slices_equal_avg_spectra_slices_csv(tmp_path, smooth):
    a = _synthetic_npz(tmp_path / 'a.npz', 0)
    out = tmp_path / 'slices.csv'
    cmd = [sys.executable, str(REPO / 'avg_spectra.py'), 'slices', str(a), '--save', str(tmp_path / 's.png')]
    cmd += ['--csv', str(out), '--smooth', str(smooth)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, cwd=REPO)
    with open(out) as f:
        rows = list(csv.reader(f))[1:]
    cli = {angle: np.array([[float(r[2]), float(r[3])] for r in rows if r[1] == angle]) for angle in ('0', '45')}
    prof = spio.spectrum_profiles(spio.load_spectrum(str(a))['spectrum'], smooth=smooth)
    np.testing.assert_allclose(cli['0'][:, 0], prof['freq_0'], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cli['0'][:, 1], prof['slice_0'], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cli['45'][:, 0], prof['freq_45'], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cli['45'][:, 1], prof['slice_45'], rtol=0, atol=1e-9)


def test_files_round_trip_and_csv(tmp_path):
    p = _synthetic_npz(tmp_path / 'sub' / 'x.npz', 1)
    spec = spio.load_spectrum(str(p))
    assert spec['spectrum'].shape == (64, 64) and spec['num'] == 3 and spec['source'] == 'synthetic'
    assert not [q for q in p.parent.iterdir() if q.name.startswith('.tmp-')]  # atomic write left nothing behind
    rows = spio.profile_rows('x', spio.spectrum_profiles(spec['spectrum']), radial=True)
    spio.save_rows_csv(str(tmp_path / 'x.csv'), rows)
    lines = (tmp_path / 'x.csv').read_text().splitlines()
    assert lines[0] == ','.join(spio.CSV_HEADER)
    assert {line.split(',')[1] for line in lines[1:]} == {'0', '45', 'avg'}
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='not an .npz'):
        spio.load_spectrum(str(tmp_path / 'bad.npz'))


def test_chunked_power_sum_equals_unchunked():
    x = torch.randn(2, 7, 12, 12)
    ref = sp.power_spectrum_sum(x, mean=0.1, std=1.3, interp=2)
    got = sp.power_spectrum_sum_chunked(x, mean=0.1, std=1.3, interp=2, max_elems=2 * 24 * 13 * 3)  # 3 channels
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-8)
    same = sp.power_spectrum_sum_chunked(x, mean=0.1, std=1.3, interp=2)
    assert torch.equal(same, ref)
