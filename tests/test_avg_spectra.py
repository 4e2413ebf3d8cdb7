"""avg_spectra.py: stats, calc (dataset and network), heatmap/slices goldens, user errors."""

from __future__ import annotations

import os
import pathlib
import re
import sys

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import avg_spectra  # noqa: E402
import dataset_tool  # noqa: E402

GOLDEN_DIR = REPO / 'tests' / 'golden' / 'spectra'
ACTUAL_DIR = REPO / 'tests' / 'golden' / 'actual' / 'spectra'  # git-ignored
UPDATE_GOLDENS = os.environ.get('SG3VIZ_UPDATE_GOLDENS') == '1'
MAX_RMS = 6.0  # 0..255 scale; covers font/antialiasing differences between matplotlib builds


def _run(*args: str):
    return CliRunner().invoke(avg_spectra.main, [str(a) for a in args])


def _ok(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return result.output


def _fail(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code != 0, result.output
    assert 'Traceback' not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith('Error:')]
    assert len(lines) == 1, result.output
    return lines[0]


def _folder(path: pathlib.Path, imgs: list[np.ndarray]) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(imgs):
        PIL.Image.fromarray(a).save(path / f'{i:04d}.png')
    return path


# ----------------------------------------------------------------------------


def test_stats_matches_numpy(tmp_path):
    rnd = np.random.RandomState(7)
    imgs = [rnd.randint(0, 256, size=(8, 8, 3)).astype(np.uint8) for _ in range(6)]
    src = _folder(tmp_path / 'ds', imgs)
    out = _ok('stats', '--source', src)
    match = re.search(r'--mean=(\S+) --std=(\S+)', out)
    assert match, out
    mean, std = float(match.group(1)), float(match.group(2))
    all_px = np.stack(imgs).astype(np.float64)
    assert mean == pytest.approx(all_px.mean(), rel=1e-5) and std == pytest.approx(all_px.std(), rel=1e-5)
    # A subset of --num images: the same deterministic subset as ImageFolderDataset(max_size, random_seed).
    out = _ok('stats', '--source', src, '--num', '3', '--seed', '5')
    from training.dataset import ImageFolderDataset

    sub = ImageFolderDataset(src, max_size=3, random_seed=5)
    px = np.stack([sub[i][0] for i in range(3)]).astype(np.float64)
    assert f'--mean={px.mean():.7g} --std={px.std():.7g}' in out


def test_calc_sinusoid_dataset_peak(tmp_path):
    res, k = 16, 3
    _y, x = np.mgrid[0:res, 0:res]
    img = np.round(128 + 100 * np.cos(2 * np.pi * k * x / res)).astype(np.uint8)
    src = _folder(tmp_path / 'sin', [np.stack([img] * 3, axis=2)] * 4)
    dest = tmp_path / 'sin.npz'
    out = _ok('calc', '--source', src, '--dest', dest, '--interp', '2', '--device', 'cpu')
    assert 'computing them' in out and '--mean=' in out
    spec = avg_spectra.load_spectrum(str(dest))
    assert spec['spectrum'].shape == (32, 32) and spec['image_size'] == 16 and spec['num'] == 4
    assert spec['interp'] == 2 and spec['beta'] == 8.0 and spec['source'] == str(src)
    hmap = np.fft.fftshift(spec['spectrum'])
    row, col = np.unravel_index(np.argmax(hmap), hmap.shape)
    assert row == 16 and col in (16 + 2 * k, 16 - 2 * k)


def test_calc_agrees_with_renderer_fft_view(tmp_path):
    """avg_spectra calc (interp 1, the image's own mean) and the visualizer's FFT view give the same relative dB map."""
    import torch

    from engine.spectrum import layer_spectrum_db

    gray = np.random.RandomState(1).randint(0, 256, size=(16, 16)).astype(np.uint8)
    src = _folder(tmp_path / 'one', [np.stack([gray] * 3, axis=2)])
    dest = tmp_path / 'one.npz'
    mean = float(gray.astype(np.float64).mean())
    _ok('calc', '--source', src, '--dest', dest, '--mean', mean, '--std', 1, '--interp', 1, '--device', 'cpu')
    spec = np.fft.fftshift(avg_spectra.load_spectrum(str(dest))['spectrum'])
    calc_db = 10 * np.log10(spec / spec.mean())
    img = torch.from_numpy(np.stack([gray] * 3)).float() / 127.5 - 1  # the renderer sees [-1, 1] images
    view_db = layer_spectrum_db(img, beta=8.0).numpy()
    np.testing.assert_allclose(view_db, calc_db, atol=1e-3)


def test_calc_twemoji_end_to_end(shared_dir, tmp_path):
    zip_path = tmp_path / 'tw.zip'
    dataset_tool.convert_dataset(str(shared_dir / 'data' / 'twemoji-64'), str(zip_path), max_images=24, progress=False)
    dest = tmp_path / 'tw.npz'
    _ok('calc', '--source', zip_path, '--dest', dest, '--num', '16', '--mean', '150', '--std', '90', '--batch', '5')
    with np.load(dest) as data:
        assert data['spectrum'].dtype == np.float64 and data['spectrum'].shape == (256, 256)
        assert int(data['image_size']) == 64 and int(data['num']) == 16 and float(data['mean']) == 150.0
        spec = data['spectrum']
    assert np.isfinite(spec).all() and (spec > 0).all()
    assert np.argmax(spec) == 0  # DC dominates natural images
    # Batch size does not change the result.
    dest1 = tmp_path / 'tw1.npz'
    _ok('calc', '--source', zip_path, '--dest', dest1, '--num', '16', '--mean', '150', '--std', '90', '--batch', '16')
    np.testing.assert_allclose(np.load(dest1)['spectrum'], spec, rtol=1e-5)
    # The raw RGBA folder gives the same spectrum as the composited dataset (both composite onto white).
    raw = tmp_path / 'raw'
    raw.mkdir()
    for f in sorted((shared_dir / 'data' / 'twemoji-64').glob('*.png'))[:24]:
        (raw / f.name).write_bytes(f.read_bytes())
    dest2 = tmp_path / 'raw.npz'
    _ok('calc', '--source', raw, '--dest', dest2, '--num', '16', '--mean', '150', '--std', '90')
    np.testing.assert_allclose(np.load(dest2)['spectrum'], spec, rtol=1e-5)


def test_user_errors(tmp_path):
    assert 'does not exist' in _fail('stats', '--source', tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    assert 'no image files' in _fail('calc', '--source', tmp_path / 'empty', '--dest', tmp_path / 'x.npz')
    mixed = _folder(tmp_path / 'mixed', [np.zeros((8, 8, 3), np.uint8)])
    PIL.Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(mixed / 'z.png')
    msg = _fail('calc', '--source', mixed, '--dest', tmp_path / 'x.npz', '--mean', '1', '--std', '1')
    assert 'same size' in msg and 'z.png' in msg
    small = _folder(tmp_path / 'small', [np.zeros((8, 8, 3), np.uint8)] * 2)
    assert 'at most the number of images' in _fail(
        'calc', '--source', small, '--dest', tmp_path / 'x.npz', '--num', '5'
    )
    assert 'both --mean and --std' in _fail('calc', '--source', small, '--dest', tmp_path / 'x.npz', '--mean', '3')
    assert 'constant' in _fail('calc', '--source', small, '--dest', tmp_path / 'x.npz')

    a = tmp_path / 'a.npz'
    b = tmp_path / 'b.npz'
    np.savez(a, spectrum=np.ones((16, 16)), image_size=4)
    np.savez(b, spectrum=np.ones((32, 32)), image_size=8)
    assert 'same size' in _fail('slices', a, b)
    np.savez(tmp_path / 'other.npz', foo=np.ones(3))
    assert 'not a spectrum file' in _fail('heatmap', tmp_path / 'other.npz')
    (tmp_path / 'junk.npz').write_bytes(b'not a zip')
    assert 'not an .npz' in _fail('slices', tmp_path / 'junk.npz')
    assert 'does not exist' in _fail('heatmap', tmp_path / 'nope.npz')
    assert '.png, .pdf or .svg' in _fail('heatmap', a, '--save', tmp_path / 'x.gif')
    np.save(tmp_path / 'plain.npy', np.ones((16, 16)))
    assert 'single .npy array' in _fail('heatmap', tmp_path / 'plain.npy')
    np.savez(tmp_path / 'bad_size.npz', spectrum=np.ones((16, 16)), image_size=np.array([4, 4]))
    assert '"image_size"' in _fail('slices', tmp_path / 'bad_size.npz')


# ----------------------------------------------------------------------------
# Figures vs goldens.


def _synthetic_spectrum(path: pathlib.Path, name: str, tilt: float) -> pathlib.Path:
    """A deterministic anisotropic spectrum spanning roughly -50..30 dB (image_size 16, interp 4)."""
    s = 64
    f = np.fft.fftfreq(s)
    fy, fx = np.meshgrid(f, f, indexing='ij')
    r = np.sqrt(fx**2 + fy**2)
    db = 25 - 90 * r + tilt * np.cos(4 * np.arctan2(fy, fx)) * r * 10
    result = dict(spectrum=10 ** (db / 10), image_size=16, beta=8.0, interp=4, num=100, mean=0.0, std=1.0, source=name)
    avg_spectra.save_spectrum(str(path), result)
    return path


def _compare_golden(actual_png: pathlib.Path, golden_name: str) -> None:
    golden = GOLDEN_DIR / golden_name
    if UPDATE_GOLDENS or not golden.exists():
        if not UPDATE_GOLDENS:
            pytest.fail(f'missing golden {golden}; run with SG3VIZ_UPDATE_GOLDENS=1 once and inspect it')
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual_png.read_bytes())
        return
    act = np.asarray(PIL.Image.open(actual_png).convert('RGB'), dtype=np.float64)
    exp = np.asarray(PIL.Image.open(golden).convert('RGB'), dtype=np.float64)
    if act.shape != exp.shape:
        rms = float('inf')
    else:
        rms = float(np.sqrt(np.mean((act - exp) ** 2)))
    if rms > MAX_RMS:
        ACTUAL_DIR.mkdir(parents=True, exist_ok=True)
        out = ACTUAL_DIR / golden_name
        out.write_bytes(actual_png.read_bytes())
        msg = f'{golden_name}: RMS {rms:.2f} > {MAX_RMS} (0..255) vs golden; actual written to {out}'
        if act.shape == exp.shape:
            diff = np.clip(np.abs(act - exp) * 4, 0, 255).astype(np.uint8)
            PIL.Image.fromarray(diff).save(ACTUAL_DIR / golden_name.replace('.png', '-diff.png'))
            msg += ' (+ -diff.png)'
        else:
            msg += f' (size {act.shape[:2]} vs golden {exp.shape[:2]})'
        pytest.fail(msg)


def test_heatmap_golden(tmp_path):
    npz = _synthetic_spectrum(tmp_path / 'synthetic.npz', 'synthetic', tilt=1.0)
    png = tmp_path / 'heatmap.png'
    _ok('heatmap', npz, '--save', png, '--dpi', '60')
    _compare_golden(png, 'heatmap.png')
    for ext in ('pdf', 'svg'):
        _ok('heatmap', npz, '--save', tmp_path / f'h.{ext}', '--smooth', '0')
        head = (tmp_path / f'h.{ext}').read_bytes()[:64]
        assert head.startswith(b'%PDF') if ext == 'pdf' else b'<svg' in (tmp_path / f'h.{ext}').read_bytes()[:2000]


def test_slices_golden_and_csv(tmp_path):
    a = _synthetic_spectrum(tmp_path / 'dataset.npz', 'dataset', tilt=1.0)
    b = _synthetic_spectrum(tmp_path / 'network.npz', 'network', tilt=-1.5)
    png = tmp_path / 'slices.png'
    csv_path = tmp_path / 'slices.csv'
    _ok('slices', a, b, '--save', png, '--dpi', '60', '--csv', csv_path)
    _compare_golden(png, 'slices.png')
    lines = csv_path.read_text().splitlines()
    assert lines[0] == 'file,angle_deg,freq_cycles_per_px,power_db'
    assert len(lines) == 1 + 2 * 2 * 32
    first = lines[1].split(',')
    assert first[:3] == ['dataset', '0', '0.0'] and float(first[3]) == pytest.approx(25.0)


# ----------------------------------------------------------------------------
# Network source (needs the bundled network and engine.loading from the core helper).


def _default_network() -> pathlib.Path:
    path = REPO / 'models' / 'default.pkl'
    if not path.is_file():
        pytest.skip('models/default.pkl does not exist yet')
    try:
        import engine.loading  # noqa: F401
    except ImportError as e:
        pytest.skip(f'engine.loading is not available: {e}')
    return path


def test_calc_network(tmp_path):
    pkl = _default_network()
    dest = tmp_path / 'net.npz'
    out = _ok('calc', '--source', pkl, '--dest', dest, '--num', '1', '--device', 'cpu', '--mean', '128', '--std', '64')
    assert 'Saved' in out
    spec = avg_spectra.load_spectrum(str(dest))
    res = spec['image_size']
    assert res >= 4 and res & (res - 1) == 0 and spec['spectrum'].shape == (4 * res, 4 * res)
    assert np.isfinite(spec['spectrum']).all() and spec['num'] == 1 and spec['source'] == str(pkl)


@pytest.mark.slow
def test_calc_network_batched_equals_single(tmp_path):
    pkl = _default_network()
    common = ('--source', pkl, '--num', '2', '--device', 'cpu', '--mean', '128', '--std', '64')
    _ok('calc', *common, '--dest', tmp_path / 'b2.npz', '--batch', '2')
    _ok('calc', *common, '--dest', tmp_path / 'b1.npz', '--batch', '1')
    # noise_mode='const' and seeds 0, 1: the batch size must not change the average.
    b1 = avg_spectra.load_spectrum(str(tmp_path / 'b1.npz'))['spectrum']
    b2 = avg_spectra.load_spectrum(str(tmp_path / 'b2.npz'))['spectrum']
    np.testing.assert_allclose(b1, b2, rtol=1e-3, atol=1e-6 * float(b2.max()))
