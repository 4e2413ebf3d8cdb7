"""GUI tier: record a layer video in the running app (render process, bundled 64 px network), with the script hook
and with real clicks (xdotool) on Start / Stop; the video's frames equal engine renders of the recorded states, and
dropping the mp4 restores the first recorded state."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import PIL.Image
import pytest

pytestmark = pytest.mark.gui

REPO = pathlib.Path(__file__).resolve().parents[2]
WINDOW = ['--window', '1024x640']
LAYER = 'L3_36_32'  # a 36x36 layer of the bundled network
# Sections collapsed so that the Record pane is near the top of the control pane.
COLLAPSE = {k: False for k in ('pickle', 'latent', 'stylemix', 'trunc_noise', 'equivariance', 'layers')}


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


def _need_bundled() -> None:
    pytest.importorskip('engine.async_renderer')
    if not (REPO / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma


def _engine_frames(doc: dict, indices) -> dict[int, np.ndarray]:
    from engine.protocol import RenderRequest
    from engine.recording import fit_frame, frame_size, render_frame
    from engine.renderer import Renderer

    r = Renderer('cpu')
    states = [RenderRequest.from_dict(s) for s in doc['states']]
    first = render_frame(r, states[0], doc['view'])
    size = frame_size(first.shape[:2], doc.get('height_px'), even=True)
    return {i: fit_frame(render_frame(r, states[i], doc['view']), size, pad_ok=True) for i in indices}


def test_record_layer_animation_to_mp4_and_drop_it_back(run_viz, tmp_path):
    _need_bundled()
    import imageio.v2 as imageio

    from engine.protocol import RenderRequest
    from engine.states import read_state_doc

    cap = tmp_path / 'caps'
    s_rec, s_done, s_drop = tmp_path / 'rec.json', tmp_path / 'done.json', tmp_path / 'drop.json'
    script = [
        {'wait_result': True, 'timeout_sec': 300},
        {'open': {**COLLAPSE, 'record': True}},
        {
            'set': {
                'layers': {'layer_name': LAYER, 'img_scale_db': 3.0},
                'latent': {'x': 2.0, 'speed': 3.0},
                'record': {'fps': 30, 'video_view': 'image'},
            }
        },  # fmt: skip
        {'wait_result': True, 'timeout_sec': 120},
        {'set': {'latent': {'anim': True}}},
        {'record': 'start'},
        {'wait_frames': 10},
        {'screenshot': str(tmp_path / 'recording.png')},
        {'dump_state': str(s_rec)},
        {'wait_frames': 10},
        {'record': 'stop'},  # 21 GUI frames sampled at 1/60 s: video frames at 0, 1/30, ..., 10/30 s
        {'wait_frames': 3},
        {'screenshot': str(tmp_path / 'rendering.png')},
        {'wait_jobs': True, 'timeout_sec': 400},
        {'set': {'latent': {'anim': False, 'x': 9.0}}},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(s_done)},
        {'screenshot': str(tmp_path / 'done.png')},
        {'drop': [str(cap / '00000-record.mp4')]},
        {'wait_frames': 2},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(s_drop)},
    ]
    _ok(run_viz([*WINDOW, '--device', 'cpu', '--capture-dir', str(cap)], script, timeout=900))
    rec, done, drop = (json.loads(p.read_text()) for p in (s_rec, s_done, s_drop))
    assert rec['record']['recording'] and rec['record']['num_frames'] == 6  # frames 0..5 after 10 GUI frames
    assert done['record']['last_error'] is None, done['record']['status']
    result = done['record']['last_result']
    assert result['frames'] == 11 and (result['width'], result['height']) == (36, 36) and result['embedded']
    assert sorted(p.name for p in cap.iterdir()) == ['00000-record.json', '00000-record.mp4']

    mp4 = cap / '00000-record.mp4'
    frames = [np.asarray(f) for f in imageio.mimread(mp4)]
    doc = read_state_doc(mp4)
    assert doc == json.loads((cap / '00000-record.json').read_text())
    assert len(frames) == len(doc['states']) == 11 and frames[0].shape == (36, 36, 3)
    states = [RenderRequest.from_dict(s) for s in doc['states']]
    assert all(s.layer_name == LAYER for s in states) and len({s.w0_seeds for s in states}) == 11  # it animated
    ref = _engine_frames(doc, range(11))
    for i in (0, 10):
        # H.264 yuv420p keeps luma at full resolution; the chroma of a 36 px layer view loses much more.
        err = [np.abs(_luma(frames[i]) - _luma(ref[j])).mean() for j in range(11)]
        assert err[i] < 4 and int(np.argmin(err)) == i, (i, err)
        assert ref[i].std() > 3  # a real layer view

    # gen_video.py --timeline on the mp4 alone reproduces the GUI's video frame for frame (same encoder input).
    import gen_video

    assert gen_video.render_timeline(mp4, str(tmp_path / 'again.mp4'), progress=False) == 11
    again = [np.asarray(f) for f in imageio.mimread(tmp_path / 'again.mp4')]
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))

    # Dropping the mp4 restores the first recorded state (animation off) and nothing else changes.
    assert drop['error_text'] is None, drop['error_text']
    assert doc['widgets']['latent']['anim'] is True and doc['widgets']['latent']['x'] > 2.0  # it moved before frame 0
    assert (
        drop['widgets']['latent']['anim'] is False and drop['widgets']['latent']['x'] == doc['widgets']['latent']['x']
    )
    from engine.recording import video_state

    shown = RenderRequest.from_dict(drop['displayed_request'])
    assert video_state(shown, 'image') == states[0], (shown, states[0])  # (live-only lab readouts are not recorded)


def test_record_with_real_clicks_png_sequence_rotate_anim(live_viz, tmp_path):
    """Start and Stop are clicked with the mouse (xdotool) while the Equivariance rotation animates; the PNG sequence
    equals engine renders of the recorded states exactly."""
    _need_bundled()
    import time

    from engine.protocol import RenderRequest

    cap = tmp_path / 'caps'
    ready, final = tmp_path / 'ready.json', tmp_path / 'final.json'
    script = [
        {'wait_result': True, 'timeout_sec': 300},
        {'open': {**COLLAPSE, 'record': True}},
        {
            'set': {
                'equivariance': {'rotate_anim': True, 'rotate_speed': 0.5},
                'record': {'fps': 15, 'format': 'png', 'native_size': False, 'height_px': 128},
            }
        },  # fmt: skip
        {'wait_frames': 5},
        {'dump_state': str(ready)},
        {'wait_file': str(tmp_path / 'go'), 'timeout_sec': 300},
        {'wait_jobs': True, 'timeout_sec': 400},
        {'set': {'equivariance': {'rotate_anim': False}}},
        {'dump_state': str(final)},
        {'screenshot': str(tmp_path / 'final.png')},
    ]
    app = live_viz(['--device', 'cpu', *WINDOW, '--capture-dir', str(cap)], script)
    app.wait_for(ready, timeout=300)
    x0, y0, x1, y1 = json.loads(ready.read_text())['record']['button_rects']['start']
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    app.click(*centre)  # Start
    time.sleep(1.5)
    app.click(*centre)  # the same button now reads Stop
    app.go()
    r = app.finish(timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    st = json.loads(final.read_text())
    assert st['record']['last_error'] is None, st['record']['status']
    out = cap / '00000-record'
    files = sorted(out.glob('*.png'))
    doc = json.loads((out / 'states.json').read_text())
    assert len(files) == len(doc['states']) == st['record']['last_result']['frames'] >= 2
    assert doc['fps'] == 15 and doc['height_px'] == 128 and doc['widgets']['equivariance']['rotate_anim'] is True
    angles = {RenderRequest.from_dict(s).input_transform for s in doc['states']}
    assert len(angles) > 1  # the rotation animated while recording
    last = len(files) - 1
    ref = _engine_frames(doc, [0, last])
    for i in (0, last):
        got = np.asarray(PIL.Image.open(files[i]))
        assert got.shape == (128, 128, 3) and np.array_equal(got, ref[i]), i
