"""Checkpoints pane in the running app (issue 15), with the real renderer on a tiny real training run (two snapshots):
the script hook and real mouse/keyboard input (xdotool) scrub to the second snapshot; the next snapshot is loaded ahead
before it is shown; the network and the image change, the seed stays."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from tests.engine.scrub_run import SNAPSHOT_NAMES, make_tiny_run

pytestmark = pytest.mark.gui

WINDOW = ['--device', 'cpu', '--window', '1024x640']
CLOSE_OTHERS = {'latent': False, 'stylemix': False, 'trunc_noise': False, 'layers': False, 'checkpoints': True}
IMAGE = (slice(40, 600), slice(450, 1010))  # the image area of the 1024x640 window


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory) -> pathlib.Path:
    return make_tiny_run(tmp_path_factory.mktemp('scrub_gui'))


def _state(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'
    assert 'Traceback' not in r.stderr, r.stderr[-4000:]


def _prologue(tiny_run: pathlib.Path) -> list:
    return [
        {'open': CLOSE_OTHERS},
        {'wait_result': True},
        {'set': {'latent': {'x': 7.0, 'y': 0.0}}},  # seed 7
        {'wait_result': True},
        {'wait_preload': True, 'timeout_sec': 120},
    ]


def _check_scrubbed(before: dict, after: dict, tiny_run: pathlib.Path, img0: np.ndarray, img1: np.ndarray) -> None:
    first, second = (str(tiny_run / n) for n in SNAPSHOT_NAMES)
    ck0, ck1 = before['checkpoints'], after['checkpoints']
    assert ck0['snapshots'] == [first, second] and ck0['position'] == 0
    assert ck0['preload_state'] == {second: 'ready'}, ck0  # loaded ahead before it is shown
    assert before['displayed_request']['pkl'] == first and after['displayed_request']['pkl'] == second
    assert after['displayed_request']['w0_seeds'] == before['displayed_request']['w0_seeds'] == [[7, 1.0]]
    assert ck1['position'] == 1 and ck1['displayed_position'] == 1
    assert ck1['metrics'] == ['eqt50k_int 20.5', 'fid50k_full 37.25'] and ck0['metrics'] == ['fid50k_full 41.5']
    assert after['widgets']['pickle']['recent'] == [first]  # scrubbing keeps Recent
    assert after['error_text'] is None
    assert not np.array_equal(img0[IMAGE], img1[IMAGE])  # another network drew the image


def test_script_hook_scrubs_to_the_second_snapshot(run_viz, tiny_run, tmp_path, png):
    first = str(tiny_run / SNAPSHOT_NAMES[0])
    script = [
        *_prologue(tiny_run),
        {'dump_state': str(tmp_path / 'before.json')},
        {'screenshot': str(tmp_path / 'before.png')},
        {'scrub': 'next'},
        {'wait_result': True},
        {'wait_frames': 2},
        {'dump_state': str(tmp_path / 'after.json')},
        {'screenshot': str(tmp_path / 'after.png')},
        {'save_scrub': str(tmp_path / 'scrub.json')},
        {'set': {'checkpoints': {'fps': 2, 'seconds_per_snapshot': 1.0}}},
        {'scrub': 'render'},  # Render video: through the Record pane
        {'wait_jobs': True, 'timeout_sec': 240},
    ]
    r = run_viz([first, *WINDOW], script, timeout=400)
    _ok(r)
    before, after = _state(tmp_path / 'before.json'), _state(tmp_path / 'after.json')
    _check_scrubbed(before, after, tiny_run, png(tmp_path / 'before.png'), png(tmp_path / 'after.png'))
    doc = json.loads((tmp_path / 'scrub.json').read_text())
    assert [k['state']['pkl'] for k in doc['keyframes']] == [str(tiny_run / n) for n in SNAPSHOT_NAMES]
    assert all(k['state']['w0_seeds'] == [[7, 1.0]] for k in doc['keyframes'])
    # The video: 2 snapshots x 1 s at 2 fps; its first and last frames are the two snapshots' renders of seed 7.
    import imageio.v2 as imageio

    from engine.protocol import RenderRequest
    from engine.renderer import Renderer

    frames = [np.asarray(f) for f in imageio.mimread(tmp_path / 'captures' / 'scrub-00000-tiny.mp4')]
    assert len(frames) == 4, len(frames)
    for frame, name in ((frames[0], SNAPSHOT_NAMES[0]), (frames[-1], SNAPSHOT_NAMES[1])):
        expected = Renderer('cpu').render(RenderRequest(pkl=str(tiny_run / name), w0_seeds=((7, 1.0),))).image
        h, w = expected.shape[:2]
        assert np.abs(frame[:h, :w].astype(np.float64) - expected).mean() < 6.0, name  # H.264 is lossy


@pytest.mark.parametrize('how', ['next_button', 'slider_click', 'slider_typed_beyond_range'])
def test_real_input_scrubs_to_the_second_snapshot(live_viz, tiny_run, tmp_path, png, how):
    first = str(tiny_run / SNAPSHOT_NAMES[0])
    ready, final = tmp_path / 'ready.json', tmp_path / 'final.json'
    script = [
        *_prologue(tiny_run),
        {'wait_frames': 2},
        {'screenshot': str(tmp_path / 'ready.png')},
        {'dump_state': str(ready)},
        {'wait_file': str(tmp_path / 'go'), 'timeout_sec': 120},
        {'wait_frames': 3},
        {'wait_result': True},
        {'wait_frames': 2},
        {'dump_state': str(final)},
        {'screenshot': str(tmp_path / 'final.png')},
    ]
    app = live_viz([first, *WINDOW], script)
    app.wait_for(ready, timeout=240)
    rects = _state(ready)['checkpoints']['rects']
    x, y, w, h = rects['next' if how == 'next_button' else 'slider']
    if how == 'next_button':
        app.click(x + w / 2, y + h / 2)
    elif how == 'slider_click':
        app.click(x + w * 0.9, y + h / 2)  # right end of a 2-position slider: #2
    else:
        app.click(x + w / 2, y + h / 2, modifiers='ctrl')  # Ctrl+click: type into the slider
        app.key('ctrl+a')
        app.type('99')
        app.key('Return')
    app.go()
    r = app.finish(timeout=240)
    _ok(r)
    before, after = _state(ready), _state(final)
    _check_scrubbed(before, after, tiny_run, png(tmp_path / 'ready.png'), png(tmp_path / 'final.png'))
    if how == 'slider_typed_beyond_range':
        assert any('#99 is outside #1..#2; showing #2' in n for n in after['notes']), after['notes']


@pytest.mark.slow
def test_remote_lists_the_servers_run_and_scrubs_it(gui_env, tiny_run, tmp_path):
    """--connect (torch blocked in the GUI): the pane lists the server's run, scrubs it, and says that metrics and
    preloading are not available there."""
    import shutil

    from tests.engine.remote_helpers import start_server_process
    from tests.viz.test_viz_remote import REPO as _REPO
    from tests.viz.test_viz_remote import run_blocked_visualizer

    if not (_REPO / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    root = tmp_path / 'root'
    shutil.copytree(tiny_run, root / tiny_run.name)
    first, second = (str(root / tiny_run.name / n) for n in SNAPSHOT_NAMES)
    proc, address, _token = start_server_process(tmp_path, '--root', str(root))
    wait = {'wait_result': True, 'timeout_sec': 240}
    script = [
        wait,
        {'open': CLOSE_OTHERS},
        {'load': first},
        wait,
        {'wait_frames': 300},  # the server's file list arrives; the pane looks again every 2 s
        {'dump_state': str(tmp_path / 'before.json')},
        {'scrub': 'next'},
        wait,
        {'dump_state': str(tmp_path / 'after.json')},
    ]
    try:
        r = run_blocked_visualizer(
            gui_env, ['--connect', address, '--token-file', str(tmp_path / 'token'), '--window', '1024x640'],
            script, tmp_path, timeout=600,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    _ok(r)
    before, after = _state(tmp_path / 'before.json'), _state(tmp_path / 'after.json')
    ck = before['checkpoints']
    assert ck['snapshots'] == [first, second] and ck['position'] == 0, ck
    assert ck['metrics'] == ['Metrics: not available from the render server']
    assert 'not available when rendering on a server' in ck['preload_text']
    assert after['displayed_request']['pkl'] == second and after['error_text'] is None
