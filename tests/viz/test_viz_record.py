"""Captures that reopen: a real-renderer capture PNG carries its state, dropping it restores that state, and
``gen_images.py --session`` renders it pixel-identically without a window."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.gui

REPO = pathlib.Path(__file__).resolve().parents[2]
WINDOW = ['--window', '1024x640']


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


def test_viz_capture_reopens_by_drop_and_renders_headless(run_viz, png, tmp_path):
    pytest.importorskip('engine.async_renderer')
    if not (REPO / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    import gen_images
    from engine.states import png_state

    cap = tmp_path / 'caps'
    s1, s2, s3 = tmp_path / 's1.json', tmp_path / 's2.json', tmp_path / 's3.json'
    shown = {
        'latent': {'x': 3.0},
        'trunc_noise': {'psi': 0.6},
        'equivariance': {'xlate_x': 0.125, 'rotate': 0.1},
        'layers': {'layer_name': 'L3_36_32', 'sel_channels': 3, 'base_channel': 4, 'img_scale_db': 3.0,
                   'fft_show': True},
    }  # fmt: skip
    other = {
        'latent': {'x': 11.0},
        'trunc_noise': {'psi': -0.5},
        'equivariance': {'xlate_x': 0.0, 'rotate': 0.0},
        'layers': {'layer_name': None, 'fft_show': False, 'img_scale_db': 0.0},
    }
    script = [
        {'wait_result': True, 'timeout_sec': 300},
        {'set': shown},
        {'wait_result': True, 'timeout_sec': 120},
        {'capture': 'image'},
        {'wait_frames': 1},
        {'dump_state': str(s1)},
        {'set': other},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(s2)},
        {'drop': [str(cap / '00000-image.png')]},
        {'wait_frames': 2},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(s3)},
    ]
    _ok(run_viz([*WINDOW, '--device', 'cpu', '--capture-dir', str(cap)], script, timeout=480))
    st1, st2, st3 = (json.loads(p.read_text()) for p in (s1, s2, s3))
    assert sorted(p.name for p in cap.iterdir()) == ['00000-image-fft.png', '00000-image.json', '00000-image.png']
    assert st2['displayed_request'] != st1['displayed_request']
    assert st3['widgets']['latent']['x'] == 3.0, st3['widgets']
    assert st3['displayed_request'] == st1['displayed_request']  # the drop restored the captured state
    assert st3['error_text'] is None
    doc = png_state(cap / '00000-image.png')
    assert doc == json.loads((cap / '00000-image.json').read_text())
    assert doc['request'] == st1['displayed_request']
    assert doc['request']['layer_name'] == 'L3_36_32' and doc['request']['input_transform'] is not None

    out = tmp_path / 'out'
    r = CliRunner().invoke(gen_images.main, ['--session', str(cap / '00000-image.png'), '--outdir', str(out)])
    assert r.exit_code == 0, r.output
    gui_img, cli_img = png(cap / '00000-image.png'), png(out / '00000-image.png')
    assert gui_img.shape == cli_img.shape and np.array_equal(gui_img, cli_img)
    assert np.array_equal(png(cap / '00000-image-fft.png'), png(out / '00000-image-fft.png'))
    assert gui_img.std() > 3  # a real layer view, not a blank
    # The sidecar renders the same; extra latent options are refused.
    r = CliRunner().invoke(gen_images.main, ['--session', str(cap / '00000-image.json'), '--outdir', str(out / 'j')])
    assert r.exit_code == 0, r.output
    assert np.array_equal(png(out / 'j' / '00000-image.png'), gui_img)
    r = CliRunner().invoke(gen_images.main, ['--session', str(cap / '00000-image.png'), '--seeds', '1'])
    assert r.exit_code != 0 and '--seeds' in r.output


def test_viz_drop_routing_fake(run_viz, tmp_path):
    """A plain PNG (no state chunk) starts a projection, not a network load, a timeline JSON without GUI state is refused with a clear message and
    the app keeps running, a capture sidecar restores its state."""
    from PIL import Image

    cap = tmp_path / 'caps'
    plain = tmp_path / 'plain.png'
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain)
    tl = tmp_path / 'tl.json'
    tl.write_text(json.dumps({'format': 'sg3viz-timeline', 'version': 1, 'states': [{}]}))
    s = [tmp_path / f's{i}.json' for i in range(4)]
    script = [
        {'wait_result': True},
        {'set': {'latent': {'x': 5.0}, 'trunc_noise': {'psi': 0.3}}},
        {'wait_result': True},
        {'capture': 'image'},
        {'wait_frames': 1},
        {'set': {'latent': {'x': 8.0}, 'trunc_noise': {'psi': 1.0}}},
        {'wait_result': True},
        {'drop': [str(plain)]},
        {'wait_frames': 2},
        {'dump_state': str(s[0])},
        {'drop': [str(tl)]},
        {'wait_frames': 2},
        {'dump_state': str(s[1])},
        {'drop': [str(cap / '00000-image.json')]},
        {'wait_frames': 2},
        {'wait_result': True},
        {'dump_state': str(s[2])},
    ]
    _ok(run_viz(['--fake-renderer', *WINDOW, '--capture-dir', str(cap)], script))
    st = [json.loads(p.read_text()) for p in s[:3]]
    assert st[0]['widgets']['projection']['target_path'] == str(plain)  # a photo to project
    assert st[0]['error_text'] is None or 'Drop a network pickle' not in st[0]['error_text']
    assert 'timeline without GUI state' in st[1]['error_text']
    assert st[1]['displayed_request']['w0_seeds'] == [[8, 1.0]]
    assert st[2]['error_text'] is None
    assert st[2]['displayed_request']['w0_seeds'] == [[5, 1.0]] and st[2]['displayed_request']['trunc_psi'] == 0.3
