"""The visualizer with latent files, end to end: --w at start, Save W, the seed change that returns to seeds.
Real render process on a small StyleGAN2 network under Xvfb."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gui

WINDOW = ['--window', '1024x640']


def _state(path):
    return json.loads(path.read_text())


def test_viz_gui_w_file_save_and_seed_change(run_viz, png, tmp_path):
    from training import networks_stylegan2

    torch.manual_seed(6)
    G = networks_stylegan2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3, channel_base=128, channel_max=16
    )
    pkl = tmp_path / 'sg2.pkl'
    pkl.write_bytes(pickle.dumps({'G_ema': G}))
    ws = (np.random.RandomState(1).randn(1, G.num_ws, 8) * 2).astype(np.float32)
    np.savez(tmp_path / 'projected_w.npz', w=ws)  # the projector format
    s1, s2, s3, s4 = (tmp_path / f's{i}.json' for i in (1, 2, 3, 4))
    shot1, shot3 = tmp_path / 'loaded.png', tmp_path / 'seeds.png'
    script = [
        {'wait_result': True},
        {'wait_frames': 2},
        {'wait_result': True},
        {'dump_state': str(s1)},
        {'screenshot': str(shot1)},
        {'save_w': str(tmp_path / 'saved.npz')},
        {'wait_frames': 3},
        {'wait_result': True},
        {'wait_frames': 3},
        {'dump_state': str(s2)},
        {'set': {'latent': {'x': 1.0}}},
        {'wait_frames': 2},
        {'wait_result': True},
        {'dump_state': str(s3)},
        {'screenshot': str(shot3)},
        {'drop': [str(tmp_path / 'saved.npz')]},  # dropping a latent file on the window loads it
        {'wait_frames': 2},
        {'wait_result': True},
        {'dump_state': str(s4)},
    ]
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415 -- keep the screenshots for a look when asked (SG3VIZ_KEEP_SHOTS=dir)

    keep = os.environ.get('SG3VIZ_KEEP_SHOTS')
    r = run_viz([str(pkl), *WINDOW, '--device', 'cpu', '--w', str(tmp_path / 'projected_w.npz')], script, timeout=420)
    assert r.returncode == 0, r.stderr[-3000:]
    st1, st2, st3 = _state(s1), _state(s2), _state(s3)
    assert st1['error_text'] is None, st1['error_text']
    np.testing.assert_allclose(np.asarray(st1['displayed_request']['ws'], np.float32), ws[0], rtol=1e-6)
    with np.load(tmp_path / 'saved.npz') as f:  # Save W wrote what was rendered (psi = 1: the loaded latent)
        np.testing.assert_allclose(f['w'], ws, rtol=1e-6)
    assert st2['widgets']['latent']['w_file'] == str(tmp_path / 'projected_w.npz')  # --w filled the field
    assert st3['displayed_request']['ws'] is None  # the seed changed: back to the seed blend
    assert st3['displayed_request']['w0_seeds'] == [[1, 1.0]]
    st4 = _state(s4)
    np.testing.assert_allclose(np.asarray(st4['displayed_request']['ws'], np.float32), ws[0], rtol=1e-6)
    assert st4['load_error'] is None and st4['displayed_request']['pkl'] == str(pkl)
    a, b = png(shot1).astype(np.float64), png(shot3).astype(np.float64)
    assert np.abs(a - b).mean() > 0.5  # the image changed with the latent
    if keep:
        for p in (shot1, shot3):
            shutil.copy(p, os.path.join(keep, p.name))
