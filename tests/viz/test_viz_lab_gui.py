"""GUI tier: the spectral / equivariance lab in the running app with the real render process.

The numbers the window shows must be the CLIs': the EQ readout equals metrics.equivariance's per-sample value, the
radial profile is avg_spectra's spectrum of the displayed image, "Average N seeds" equals avg_spectra calc on the
same seeds, "Measure" equals calc_metrics' equivariance metrics, and StyleGAN2 networks grey the lab's EQ parts out.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import sys

import numpy as np
import pytest
import torch

from engine import spectrum_io as spio

pytestmark = pytest.mark.gui

REPO = pathlib.Path(__file__).resolve().parents[2]
WINDOW = ['--window', '1280x800', '--device', 'cpu']
DEFAULT_PKL = REPO / 'models' / 'default.pkl'


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


def _state(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def _default_G():
    from engine.loading import load_generator

    return load_generator(str(DEFAULT_PKL), device=torch.device('cpu'))


def _run_with_env(env: dict, args: list, script: list, tmp_path: pathlib.Path, timeout: float):
    import subprocess

    path = tmp_path / 'script.json'
    path.write_text(json.dumps(script))
    cmd = [sys.executable, str(REPO / 'visualizer.py'), *args, '--script', str(path)]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_viz_lab_readout_profile_average_export_measure(gui_env, png, tmp_path):
    if not DEFAULT_PKL.exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    ref = tmp_path / 'ref.npz'
    rng = np.random.default_rng(0)
    spio.save_spectrum(str(ref), dict(spectrum=rng.gamma(2.0, size=(256, 256)), image_size=64, beta=8.0, interp=4,
                                      num=9, mean=188.9322, std=78.30056, source='synthetic'))  # fmt: skip
    tx, ty = 0.0371, -0.0213
    s1, s2, shot, plot = tmp_path / 's1.json', tmp_path / 's2.json', tmp_path / 'lab.png', tmp_path / 'exp'
    script = [
        {'set': {'spectrum_lab': {'show_plot': True, 'ref_path': str(ref), 'avg_num': 5, 'export_dir': str(plot)},
                 'equivariance': {'xlate_x': tx, 'xlate_y': ty, 'measure_num': 4,
                                  'measure_log': str(tmp_path / 'eq.jsonl')},
                 'latent': {'x': 3.0}}},
        {'open': {'spectrum_lab': True, 'equivariance': True}},
        {'wait_result': True, 'timeout_sec': 300},  # the network: then the transform applies (SG3 only)
        {'wait_frames': 3},
        {'wait_result': True, 'timeout_sec': 300},
        {'wait_frames': 3},
        {'dump_state': str(s1)},
        {'screenshot': str(shot)},
        {'lab': 'pin'},
        {'lab': 'average'},
        {'lab': 'measure'},
        {'wait_jobs': True, 'timeout_sec': 400},
        {'lab': 'export_npz'},
        {'lab': 'export_csv'},
        {'wait_frames': 2},
        {'lab': 'export_png'},
        {'wait_frames': 2},
        {'dump_state': str(s2)},
    ]  # fmt: skip
    # One torch thread in the render process, as below: the average is then bit for bit avg_spectra's.
    _ok(_run_with_env(dict(gui_env, OMP_NUM_THREADS='1'), [*WINDOW], script, tmp_path, timeout=600))
    st1, st2 = _state(s1), _state(s2)
    assert st1['error_text'] is None and st1['displayed_request']['w0_seeds'] == [[3, 1.0]]

    # The readout is metrics.equivariance's per-sample value for this sample and transform.
    from engine.latents import make_transform, z_from_seed
    from metrics import equivariance as eq

    G = _default_G()
    m = np.linalg.inv(make_transform((tx, ty), 0.0))
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z_from_seed(3, G.z_dim)), torch.zeros([1, G.c_dim]), truncation_psi=1)
        orig = eq._render(G, ws, np.eye(3))
        se, count = eq.sample_squared_error(orig, eq._render(G, ws, m), m, 'frac')
    assert st1['eq']['eq_kind'] == 'frac'
    assert st1['eq_psnr_db'] == pytest.approx(eq.psnr_db(se / count), abs=1e-4)

    # The radial profile is avg_spectra's spectrum of the displayed image, normalised by the reference's mean/std.
    from engine import lab

    with torch.no_grad():
        img = eq._render(G, ws, m)[0]  # the displayed (transformed) final image
    spec = lab.view_spectrum(img, is_image=True, mean=188.9322, std=78.30056, interp=4)
    want = spio.spectrum_profiles(spec['spectrum'])
    for k in ('slice_0', 'slice_45', 'radial'):
        np.testing.assert_allclose(st1['radial_profile'][k], want[k], atol=1e-3)
    assert st1['lab']['reference']['label'] == 'ref (9 images)'

    # Screenshot: the radial plot is drawn right of the image (curves on a dark plot background).
    shot_img = png(shot)
    assert shot_img[:, -300:].astype(np.float64).std() > 10

    # Average over 5 seeds (from seed 3) equals avg_spectra calc on the same seeds. Rendered in the same batches
    # (4) with the same thread count (1) the images are bit-identical; other batchings flip a few 8-bit pixels
    # (float rounding of the convolutions), which moves the weakest bins by ~1e-3 dB -- calc with two --batch values
    # differs from itself as much.
    sys.path.insert(0, str(REPO))
    import avg_spectra

    exported = spio.load_spectrum(str(next(plot.glob('*.npz'))))
    assert exported['num'] == 5 and st2['lab']['average']['label'] == 'avg 5 seeds from 3 (output)'
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        src = avg_spectra.ImageSource(str(DEFAULT_PKL), num=5, seed=3, device=torch.device('cpu'))
        next(src.batches(1, progress=False))  # warm-up: the first call may take another op path (impl='auto')
        cli = avg_spectra.compute_spectrum(src, mean=188.9322, std=78.30056, batch=4, progress=False)
    finally:
        torch.set_num_threads(num_threads)
    assert np.abs(spio.to_db(exported['spectrum']) - spio.to_db(cli['spectrum'])).max() < 1e-3
    csv_lines = next(plot.glob('*.csv')).read_text().splitlines()
    assert csv_lines[0] == 'file,angle_deg,freq_cycles_per_px,power_db' and any(',avg,' in x for x in csv_lines)
    labels = {x.split(',')[0] for x in csv_lines[1:]}
    assert any(x.startswith('pin 1') for x in labels) and any(x.startswith('avg 5 seeds') for x in labels)
    plot_png = png(next(plot.glob('*.png')))
    assert 200 < plot_png.shape[1] < 700 and plot_png.astype(np.float64).std() > 10

    # Measure: EQ-T, EQ-T frac, EQ-R over 4 samples, shown and appended like calc_metrics.py writes them.
    lines = [json.loads(x) for x in (tmp_path / 'eq.jsonl').read_text().splitlines()]
    assert [x['metric'] for x in lines] == ['eqt50k_int', 'eqt50k_frac', 'eqr50k'] and lines[0]['num_samples'] == 4
    from metrics import metric_main

    want_frac = metric_main.calc_metric('eqt50k_frac', G=G, num=4, device='cpu').results['eqt50k_frac']
    assert lines[1]['results']['eqt50k_frac'] == pytest.approx(want_frac, abs=1e-6)
    assert st2['measure']['results']['eqr50k'] == lines[2]['results']['eqr50k']


def test_viz_lab_stylegan2_greys_out_equivariance(run_viz, tmp_path):
    from training import networks_stylegan2 as sg2

    G = sg2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=8)
    pkl = tmp_path / 'sg2.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(G_ema=G.eval()), f)
    state = tmp_path / 's.json'
    script = [
        {'set': {'spectrum_lab': {'show_plot': True}, 'equivariance': {'xlate_x': 0.1, 'rotate': 0.1}}},
        {'wait_result': True, 'timeout_sec': 300},
        {'wait_frames': 3},
        {'wait_result': True, 'timeout_sec': 300},
        {'lab': 'measure'},
        {'wait_frames': 3},
        {'dump_state': str(state)},
    ]
    _ok(run_viz([str(pkl), *WINDOW], script, timeout=300))
    st = _state(state)
    assert st['net']['arch'] == 'stylegan2' and st['error_text'] is None
    assert st['request']['input_transform'] is None and st['request']['lab_eq'] is False
    assert st['eq_psnr_db'] is None and st['measure'] is None and st['lab']['job']['id'] is None
    assert st['radial_profile'] is not None  # the spectra apply to any network
