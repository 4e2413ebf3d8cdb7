"""GUI tier: the visualizer under a private Xvfb, driven by --script, read back and compared with goldens.

Most tests use the numpy fake renderer (deterministic pixels, fast); one runs the real render process on the
bundled default network end to end.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

pytestmark = pytest.mark.gui

REPO = pathlib.Path(__file__).resolve().parents[2]
WINDOW = ['--window', '1024x640']
FAKE = ['--fake-renderer', *WINDOW]


def _state(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


def test_viz_gui_screenshot_default_golden(run_viz, golden, png, tmp_path):
    shot = tmp_path / 'shot.png'
    r = run_viz([*FAKE, '--screenshot', str(shot)])
    _ok(r)
    img = png(shot)
    assert img.shape == (640, 1024, 3)
    golden(shot, 'fake_default')


def test_viz_gui_widget_states_golden(run_viz, golden, tmp_path):
    shot, state = tmp_path / 'shot.png', tmp_path / 'state.json'
    script = [
        {'wait_result': True},
        {
            'set': {
                'latent': {'x': 1.5, 'y': 0.25},
                'trunc_noise': {'psi': 0.5, 'cutoff': 8},
                'stylemix': {'seed': 7, 'enabled': [False, True, True]},
                'equivariance': {'xlate_x': 0.125, 'rotate': 0.25, 'untransform': False},
                'layers': {'layer_name': 'L2_52_256', 'sel_channels': 1, 'base_channel': 4, 'fft_show': True},
            }
        },
        {'wait_result': True},
        {'wait_frames': 3},
        {'screenshot': str(shot)},
        {'dump_state': str(state)},
    ]
    _ok(run_viz(FAKE, script))
    st = _state(state)
    req = st['displayed_request']
    assert req['w0_seeds'] == [[1, 0.375], [2, 0.375], [101, 0.125], [102, 0.125]]
    assert (req['trunc_psi'], req['trunc_cutoff'], req['stylemix_idx'], req['stylemix_seed']) == (0.5, 8, [1, 2], 7)
    np.testing.assert_allclose(req['input_transform'], [[0, 1, 0.125], [-1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert (req['layer_name'], req['sel_channels'], req['base_channel'], req['fft_show']) == ('L2_52_256', 1, 4, True)
    assert st['fft_shape'] == [64, 64, 3] and st['error_text'] is None
    golden(shot, 'fake_layers_fft')


def test_viz_gui_drop_and_bad_pickle_overlay(run_viz, golden, tmp_path):
    bad = tmp_path / 'corrupt.pkl'
    bad.write_bytes(b'\x80\x04garbage')
    good = tmp_path / 'good.pkl'
    good.write_bytes(b'FAKENET')
    notes = tmp_path / 'notes.txt'
    notes.write_text('x')
    shot = tmp_path / 'error.png'
    s1, s2, s3 = (tmp_path / f's{i}.json' for i in (1, 2, 3))
    script = [
        {'wait_result': True},
        {'drop': [notes.name]},  # through the window's drop callback; relative: goldens must not show tmp paths
        {'wait_frames': 2},
        {'dump_state': str(s1)},
        {'drop': [bad.name]},
        {'wait_result': True},
        {'wait_frames': 3},
        {'screenshot': str(shot)},
        {'dump_state': str(s2)},
        {'drop': [good.name]},
        {'wait_result': True},
        {'dump_state': str(s3)},
    ]
    _ok(run_viz(FAKE, script))
    st1, st2, st3 = _state(s1), _state(s2), _state(s3)
    assert 'Drop a network pickle' in st1['error_text']
    assert 'not a network pickle' in st2['error_text'] and 'corrupt.pkl' in st2['error_text']
    assert st2['request']['pkl'] is None and st2['image_shape'] == [64, 64, 3]  # the previous network stays usable
    assert st3['error_text'] is None and st3['displayed_request']['pkl'] == good.name
    assert st3['widgets']['pickle']['recent'][0] == good.name
    golden(shot, 'fake_error_overlay')


def test_viz_gui_trust_dialog(run_viz, golden, tmp_path):
    unsafe = tmp_path / 'unsafe.pkl'
    unsafe.write_bytes(b'UNSAFE')
    shot, s1, s2 = tmp_path / 'trust.png', tmp_path / 's1.json', tmp_path / 's2.json'
    script = [
        {'wait_result': True},
        {'load': unsafe.name},
        {'wait_result': True},
        # ImGui fades the modal's dimmed background in over ~0.2 s of ImGui time; scripted runs step it by a fixed
        # 1/fps_limit per frame (not wall time), so 40 frames are always fully dimmed.
        {'wait_frames': 40},
        {'screenshot': str(shot)},
        {'dump_state': str(s1)},
        {'trust': True},
        {'wait_result': True},
        {'dump_state': str(s2)},
    ]
    _ok(run_viz(FAKE, script))
    st1, st2 = _state(s1), _state(s2)
    assert st1['refused'] == ['os.system', 'builtins.eval'] and 'Safe mode refused' in st1['error_text']
    assert st2['error_text'] is None and st2['displayed_request'] == {
        **st2['displayed_request'],
        'pkl': unsafe.name,
        'trust': True,
    }
    golden(shot, 'fake_trust_dialog')


def test_viz_gui_capture_and_session(run_viz, png, tmp_path):
    cap = tmp_path / 'caps'
    sess = tmp_path / 'session.json'
    state = tmp_path / 'state.json'
    script = [
        {'set': {'latent': {'x': 3.0}, 'trunc_noise': {'psi': 0.7}}},
        {'wait_result': True},
        {'capture': 'image'},
        {'capture': 'gui'},
        {'wait_frames': 1},
        {'save_session': str(sess)},
        {'set': {'latent': {'x': 9.0}, 'trunc_noise': {'psi': -1.0}}},
        {'wait_result': True},
        {'load_session': str(sess)},
        {'wait_result': True},
        {'dump_state': str(state)},
    ]
    _ok(run_viz([*FAKE, '--capture-dir', str(cap)], script))
    names = sorted(p.name for p in cap.iterdir())
    assert names == ['00000-image.json', '00000-image.png', '00001-gui.json', '00001-gui.png']
    side = json.loads((cap / '00000-image.json').read_text())
    assert side['request']['w0_seeds'] == [[3, 1.0]] and side['request']['trunc_psi'] == 0.7
    assert side['network']['arch'] == 'stylegan3' and side['widgets']['latent']['x'] == 3.0
    assert png(cap / '00000-image.png').shape == (64, 64, 3)
    assert png(cap / '00001-gui.png').shape == (640, 1024, 3)
    st = _state(state)
    assert st['displayed_request']['w0_seeds'] == [[3, 1.0]] and st['displayed_request']['trunc_psi'] == 0.7


def _click(x: float, y: float) -> list[dict]:
    """Script steps of a left click at window pixel (x, y) through ImGui's input queue."""
    return [
        {'mouse': [x, y]},
        {'wait_frames': 2},
        {'mouse': [x, y, True]},
        {'wait_frames': 2},
        {'mouse': [x, y, False]},
    ]


def test_viz_gui_mouse_browse_open_sections_and_fixed_dt(run_viz, tmp_path):
    """Real mouse input: Browse -> run -> Newest snapshot loads it; 'open' expands sections; scripted runs advance
    animations by a fixed 1/fps_limit per frame (no wall-clock dependence)."""
    run = tmp_path / 'runs' / '00003-run'
    run.mkdir(parents=True)
    for k in (10, 20):
        (run / f'network-snapshot-{k:06d}.pkl').write_bytes(b'FAKENET')
    s1, s2 = tmp_path / 's1.json', tmp_path / 's2.json'
    script = [
        {'wait_result': True},
        *_click(87, 66),  # Browse (pane at UI scale 1)
        {'wait_frames': 2},
        {'mouse': [123, 81]},  # hover the run: its snapshot menu opens after ImGui's hover delay (fixed-dt frames)
        {'wait_frames': 30},
        {'mouse': [200, 81]},
        {'wait_frames': 2},
        {'screenshot': str(tmp_path / 'browse.png')},
        *_click(230, 81),  # Newest snapshot
        {'wait_result': True},
        {'dump_state': str(s1)},
        {'open': {'performance': True, 'equivariance': True}},
        {'set': {'latent': {'x': 0.0, 'anim': True, 'speed': 0.6}}},
        {'wait_frames': 30},
        {'set': {'latent': {'anim': False}}},
        {'dump_state': str(s2)},
    ]
    _ok(run_viz([*FAKE, '--browse-dir', str(tmp_path / 'runs'), '--fps-limit', '60'], script))
    st1, st2 = _state(s1), _state(s2)
    assert st1['displayed_request']['pkl'] == str(run / 'network-snapshot-000020.pkl') and st1['error_text'] is None
    assert st2['widgets']['latent']['x'] == pytest.approx(30 * 0.6 / 60, abs=1e-9)


def test_viz_gui_real_renderer_end_to_end(run_viz, png, tmp_path):
    """The real render process on the bundled default network: a bad pickle first (error overlay, fallback to the
    default network), then --screenshot once the image is displayed."""
    pytest.importorskip('engine.async_renderer')
    if not (REPO / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    bad = tmp_path / 'corrupt.pkl'
    bad.write_bytes(b'not a pickle at all')
    shot, state = tmp_path / 'real.png', tmp_path / 'state.json'
    r = run_viz(
        [str(bad), *WINDOW, '--device', 'cpu', '--screenshot', str(shot)],
        [{'wait_result': True}, {'dump_state': str(state)}],
        timeout=420,
    )
    _ok(r)
    st = _state(state)
    assert st['error_text'] and 'corrupt.pkl' in st['error_text']
    assert 'Traceback' not in st['error_text']
    assert st['net']['arch'] in ('stylegan3', 'stylegan2') and st['image_shape'] is not None
    assert st['displayed_request']['pkl'] is None  # fell back to the bundled default
    img = png(shot)
    area = img[40:600, 480:1000].astype(np.float64)
    assert area.std() > 5.0  # an image, not an empty background
    assert 'corrupt.pkl' in r.stderr  # logged to the console once
    assert r.stderr.count('Could not load') == 1
