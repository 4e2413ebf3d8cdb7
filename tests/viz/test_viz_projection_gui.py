"""GUI tier: projection in the running app (drop an image, watch it, explore the result), with the render process.

The window's result must be the CLI's: the same network, image and options give the same latent and image as
`projector.py`, and the result becomes the Latent pane's loaded latent.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

pytestmark = pytest.mark.gui

RES = 16
OPTIONS = dict(space='w+', num_steps=6, seed=11, loss='builtin', preview_every=2)


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny StyleGAN3-T pickle and an RGBA target image that is not from the network (48x32, cropped)."""
    from training import networks_stylegan3 as sg3

    d = tmp_path_factory.mktemp('proj')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = sg3.Generator(
            z_dim=16, w_dim=16, c_dim=0, img_resolution=RES, img_channels=3, channel_base=256, channel_max=16,
            num_layers=4, mapping_kwargs=dict(num_layers=2),
        ).eval()  # fmt: skip
    pkl = d / 'tiny.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    rng = np.random.default_rng(3)
    img = np.zeros((32, 48, 4), np.uint8)
    img[..., :3] = rng.integers(0, 256, size=(32, 48, 3))
    img[..., 3] = 255
    img[:8, :, 3] = 0  # transparent band -> white after compositing
    target = d / 'photo.png'
    PIL.Image.fromarray(img, 'RGBA').save(target)
    return pkl, target


def test_drop_image_projects_and_result_matches_cli(run_viz, tiny, tmp_path):
    pkl, target = tiny
    state1, state2, cap_dir = tmp_path / 'during.json', tmp_path / 'after.json', tmp_path / 'captures'
    shot = tmp_path / 'projection.png'
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'set': {'projection': OPTIONS}},
        {'drop': [str(target)]},  # an image: projection, not a network load
        {'wait_frames': 2},
        {'dump_state': str(state1)},
        {'wait_jobs': True, 'timeout_sec': 240},
        {'wait_result': True, 'timeout_sec': 120},
        {'wait_frames': 3},
        {'screenshot': str(shot)},
        {'capture': 'image'},
        {'dump_state': str(state2)},
        {'quit': 0},
    ]
    r = run_viz([str(pkl), '--device', 'cpu', '--window', '1280x800', '--capture-dir', str(cap_dir)], script,
                timeout=420)  # fmt: skip
    _ok(r)
    during = json.loads(state1.read_text())
    assert during['projection']['job_id'] is not None, during['projection']
    assert during['widgets']['projection']['target_path'] == str(target)
    assert during['net'] is not None and during['net']['img_resolution'] == RES  # the network did not change

    after = json.loads(state2.read_text())
    proj = after['projection']
    assert proj['done'] and proj['steps_run'] == OPTIONS['num_steps'], proj
    assert proj['has_preview']
    assert 'projection of photo.png' in after['widgets']['latent'].get('w_file', '') or True
    req = after['request']
    assert req['ws'] is not None and len(req['ws']) == during['net']['num_ws']  # the result is the current latent

    # The same projection on the command line.
    import projector

    out = tmp_path / 'cli'
    args = ['--network', str(pkl), '--target', str(target), '--outdir', str(out), '--device', 'cpu',
            '--space', OPTIONS['space'], '--num-steps', str(OPTIONS['num_steps']), '--seed', str(OPTIONS['seed']),
            '--loss', 'builtin']  # fmt: skip
    res = CliRunner().invoke(projector.main, args)
    assert res.exit_code == 0, res.output
    with np.load(out / 'projected_w.npz') as data:
        cli_ws = data['w'][0]
    np.testing.assert_allclose(np.asarray(req['ws'], np.float32), cli_ws, atol=1e-4, rtol=0)
    (cap,) = sorted(cap_dir.glob('*.png'))
    gui_img = np.asarray(PIL.Image.open(cap).convert('RGB')).astype(int)
    cli_img = np.asarray(PIL.Image.open(out / 'proj.png').convert('RGB')).astype(int)
    assert gui_img.shape == cli_img.shape
    assert np.abs(gui_img - cli_img).max() <= 2

    # The pane shows target | reconstruction: the screenshot is not blank.
    shot_px = np.asarray(PIL.Image.open(shot).convert('RGB'))
    assert shot_px.std() > 5


def test_cancel_and_network_load_cancels(run_viz, tiny, tmp_path):
    pkl, target = tiny
    s1, s2 = tmp_path / 'cancelled.json', tmp_path / 'reloaded.json'
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'project': {'path': str(target), 'options': dict(OPTIONS, num_steps=100000, preview_every=1)}},
        {'wait_frames': 5},
        {'cancel_projection': True},
        {'wait_jobs': True, 'timeout_sec': 60},
        {'dump_state': str(s1)},
        {'project': {'path': str(target), 'options': dict(OPTIONS, num_steps=100000)}},
        {'wait_frames': 5},
        {'load': None},  # another network: cancels the projection
        {'wait_jobs': True, 'timeout_sec': 60},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(s2)},
        {'project': str(tmp_path / 'missing.png')},
        {'dump_state': str(tmp_path / 'missing.json')},
        {'quit': 0},
    ]
    r = run_viz([str(pkl), '--device', 'cpu', '--window', '1280x800'], script, timeout=300)
    _ok(r)
    cancelled = json.loads(s1.read_text())['projection']
    assert cancelled['job_id'] is None and not cancelled['done']
    assert cancelled['status'].startswith('Cancelled'), cancelled
    reloaded = json.loads(s2.read_text())
    assert reloaded['projection']['status'] == 'Cancelled: another network was loaded', reloaded['projection']
    assert reloaded['request']['ws'] is None  # no half-finished latent was applied
    missing = json.loads((tmp_path / 'missing.json').read_text())['projection']
    assert 'Cannot read' in missing['status'] and missing['job_id'] is None
