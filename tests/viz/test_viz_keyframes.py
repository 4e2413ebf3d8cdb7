"""GUI tier: the Keyframes pane in the running app -- add keyframes (script hook and real clicks), reorder, delete,
jump to, scrub (the displayed request and image are the timeline's frame), play / pause, save + load round trip and a
bad file that changes nothing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine.protocol import RenderRequest
from engine.states import load_keyframes, load_timeline

pytestmark = pytest.mark.gui

# Everything but the Keyframes section collapsed, so that its controls are on screen.
OPEN_KEYFRAMES = {'keyframes': True, 'stylemix': False, 'layers': False, 'equivariance': False,
                  'spectrum_lab': False, 'projection': False, 'trunc_noise': False}  # fmt: skip


def _ok(r) -> None:
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'


def _req(d: dict) -> RenderRequest:
    return RenderRequest.from_dict(d)


def test_keyframes_scripted_scrub_reorder_jump_save_load(run_viz, tmp_path, png):
    kf_file, bad = tmp_path / 'kf.json', tmp_path / 'bad.json'
    bad.write_text('{"format": "sg3viz-timeline", "keyframes": [{"state": {"w0_seeds": "x"}}]}')
    dumps = {k: tmp_path / f'{k}.json' for k in ('added', 'scrub', 'moved', 'jump', 'badload', 'loaded')}
    shot = tmp_path / 'pane.png'
    cap = tmp_path / 'captures'
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'open': OPEN_KEYFRAMES},
        {'keyframes': 'add'},  # seed 0
        {'set': {'latent': {'x': 7.0}, 'trunc_noise': {'psi': 0.5}}},
        {'wait_result': True, 'timeout_sec': 60},
        {'keyframes': 'add'},  # seed 7, psi 0.5
        {'set': {'latent': {'x': 3.0}, 'trunc_noise': {'psi': 1.0, 'cutoff': 4}}},
        {'wait_result': True, 'timeout_sec': 60},
        {'keyframes': 'add'},  # seed 3, cutoff 4
        {'keyframes': {'interp': [0, 'slerp_z']}},
        {'keyframes': {'duration': [1, 0.5]}},
        {'keyframes': {'duration': [2, -5]}},  # clamped with a note
        {'set': {'keyframes': {'fps': 12}}},
        {'wait_frames': 3},
        {'dump_state': str(dumps['added'])},
        {'keyframes': {'save': str(kf_file)}},
        {'keyframes': {'scrub': 1.25}},  # frame 15: 1.25 s into the z slerp 0 -> 7 (2 s = 24 frames)
        {'wait_result': True, 'timeout_sec': 60},
        {'wait_frames': 2},
        {'capture': 'image'},
        {'screenshot': str(shot)},
        {'dump_state': str(dumps['scrub'])},
        {'keyframes': {'right': 0}},  # order 7, 0, 3
        {'keyframes': 'add'},  # live state again: seed 3 (inserted after the selected, now index 1 -> 2)
        {'keyframes': {'delete': 2}},
        {'wait_frames': 2},
        {'dump_state': str(dumps['moved'])},
        {'set': {'latent': {'x': 55.0}}},
        {'keyframes': {'jump': 0}},  # seed 7, psi 0.5: the widgets as they were
        {'wait_result': True, 'timeout_sec': 60},
        {'dump_state': str(dumps['jump'])},
        {'keyframes': {'load': str(bad)}},
        {'dump_state': str(dumps['badload'])},
        {'keyframes': {'load': str(kf_file)}},
        {'wait_frames': 2},
        {'dump_state': str(dumps['loaded'])},
        {'set': {'keyframes': {'fps': 2, 'path': 'kf_video.json'}}},  # 4 + 1 + 1 frames
        {'keyframes': 'render'},
        {'wait_frames': 2},
        {'wait_jobs': True, 'timeout_sec': 240},
        {'dump_state': str(tmp_path / 'rendered.json')},
        {'quit': 0},
    ]
    r = run_viz(['--device', 'cpu', '--window', '1280x800', '--capture-dir', str(cap)], script, timeout=400)
    _ok(r)
    d = {k: json.loads(p.read_text()) for k, p in dumps.items()}

    added = d['added']['keyframes']
    assert added['count'] == 3 and added['thumbs'] == [[64, 64, 3]] * 3, added
    reqs = [_req(x) for x in added['requests']]
    assert [x.w0_seeds for x in reqs] == [((0, 1.0),), ((7, 1.0),), ((3, 1.0),)]
    assert reqs[1].trunc_psi == 0.5 and reqs[2].trunc_cutoff == 4
    assert any('duration -5' in n and 'clamped to 0.05' in n for n in d['added']['notes']), d['added']['notes']

    # The file: what the pane shows, and gen_video's states.
    doc = load_keyframes(kf_file)
    tl = doc.timeline
    assert tl.states == tuple(reqs) and tl.durations == (2.0, 0.5, 0.05) and tl.fps == 12 and tl.loop
    assert tl.interps == ('slerp_z', 'w', 'w') and doc.network['num_ws'] == 16
    assert all(ex['thumbnail_png'] and 'latent' in ex['widgets'] for ex in doc.extras)
    states, fps, _ = load_timeline(kf_file)
    assert states == tl.expand() and len(states) == 24 + 6 + 1

    # Scrubbed to 1.25 s: frame 15 of the video, the z slerp 15/24 of the way from seed 0 to seed 7.
    scrub = d['scrub']
    k = math.floor(1.25 * 12)
    assert scrub['keyframes']['frame'] == k
    expected = states[k]
    assert expected.w0_seeds == ((0, 1 - 15 / 24), (7, 15 / 24)) and expected.seed_blend == 'slerp_z'
    assert _req(scrub['request']) == expected and _req(scrub['displayed_request']) == expected
    # The image on screen is the engine's render of that state.
    from engine.renderer import Renderer

    ref = Renderer('cpu').render(expected)
    assert ref.error is None
    shown = png(sorted(cap.glob('*-image.png'))[0])
    assert np.abs(shown.astype(int) - ref.image.astype(int)).max() <= 1

    # Reorder / insert / delete.
    moved = d['moved']['keyframes']
    assert [_req(x).w0_seeds[0][0] for x in moved['requests']] == [7, 0, 3], moved['requests']
    # Jump to: the GUI's widgets come back as they were, the submitted request is the keyframe's.
    jump = d['jump']
    assert jump['widgets']['latent']['x'] == 7.0 and jump['widgets']['trunc_noise']['psi'] == 0.5
    assert _req(jump['request']) == reqs[1] and not jump['widgets']['keyframes']['preview']
    # A bad file: a clear error, nothing lost.
    bad_state = d['badload']['keyframes']
    assert bad_state['count'] == 3 and bad_state['status'].startswith('Load failed: bad.json')
    assert 'keyframe 0: malformed render request' in bad_state['status'], bad_state['status']
    # Load: the saved timeline comes back.
    loaded = d['loaded']['keyframes']
    assert [_req(x) for x in loaded['requests']] == reqs and loaded['thumbs'] == [[64, 64, 3]] * 3
    assert d['loaded']['widgets']['keyframes']['fps'] == 12

    # Render video: the Record pane's job writes the timeline's frames (the first one is keyframe 0's image).
    import imageio.v2 as imageio

    from engine.states import read_state_doc

    rendered = json.loads((tmp_path / 'rendered.json').read_text())
    assert rendered['keyframes']['status'].startswith('Rendering 6 frames'), rendered['keyframes']['status']
    assert rendered['record']['last_error'] is None, rendered['record']['status']
    (mp4,) = cap.glob('*kf_video*.mp4')
    frames = [np.asarray(f) for f in imageio.mimread(mp4)]
    video_doc = read_state_doc(mp4)
    video_tl = tl.__class__(tl.states, tl.durations, fps=2.0, loop=True, interps=tl.interps, num_ws=16)
    assert len(frames) == 6
    from engine.recording import video_state  # the frames as a video renders them (live-only lab readouts off)

    expected_video = [video_state(x, 'image') for x in video_tl.expand()]
    for i, (got, want) in enumerate(zip([_req(x) for x in video_doc['states']], expected_video, strict=True)):
        diff = {k: (v, want.to_dict()[k]) for k, v in got.to_dict().items() if v != want.to_dict()[k]}
        assert not diff, (i, diff)
    luma = [0.299, 0.587, 0.114]
    ref0 = Renderer('cpu').render(video_tl.frame(0)).image
    assert np.abs(frames[0] @ luma - ref0 @ luma).mean() < 4
    assert video_doc['widgets']['latent']['x'] == 0.0  # dropping the video restores keyframe 0's panes

    # The pane with its thumbnail strip is on screen (three thumbnails, not background).
    img = png(shot)
    for i in range(3):
        x, y, w, h = (int(v) for v in d['scrub']['keyframes']['rects'][f'thumb{i}'])
        assert w > 20 and h > 20
        patch = img[y + 4 : y + h - 4, x + 4 : x + w - 4].astype(float)
        assert patch.std() > 10, f'thumbnail {i} looks empty'


def test_keyframes_real_clicks_add_play_pause(live_viz, tmp_path):
    """A person's path: click Add keyframe, change the seed, click Add keyframe, click Play, click Pause."""
    f = {k: tmp_path / f'{k}.json' for k in ('s0', 's1', 's2', 's3', 's4')}
    g = {k: tmp_path / k for k in ('g1', 'g2', 'g3', 'g4')}
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'open': OPEN_KEYFRAMES},
        {'wait_frames': 3},
        {'dump_state': str(f['s0'])},
        {'wait_file': str(g['g1'])},  # click: Add keyframe
        {'wait_frames': 3},
        {'set': {'latent': {'x': 5.0}}},
        {'wait_result': True, 'timeout_sec': 60},
        {'wait_frames': 3},
        {'dump_state': str(f['s1'])},
        {'wait_file': str(g['g2'])},  # click: Add keyframe
        {'wait_result': True, 'timeout_sec': 60},
        {'wait_frames': 3},
        {'dump_state': str(f['s2'])},
        {'wait_file': str(g['g3'])},  # click: Play
        {'wait_frames': 20},
        {'dump_state': str(f['s3'])},
        {'wait_file': str(g['g4'])},  # click: Pause; type -5 into Duration, 99999 into fps
        {'wait_frames': 5},
        {'dump_state': str(f['s4'])},
        {'quit': 0},
    ]
    app = live_viz(['--fake-renderer', '--window', '1280x800'], script)

    def center(state, name):
        x, y, w, h = json.loads(state.read_text())['keyframes']['rects'][name]
        return x + w / 2, y + h / 2

    app.wait_for(f['s0'])
    app.click(*center(f['s0'], 'add'))
    g['g1'].write_text('go')
    app.wait_for(f['s1'])
    s1 = json.loads(f['s1'].read_text())
    assert s1['keyframes']['count'] == 1, s1['keyframes']
    app.click(*center(f['s1'], 'add'))
    g['g2'].write_text('go')
    app.wait_for(f['s2'])
    s2 = json.loads(f['s2'].read_text())
    assert s2['keyframes']['count'] == 2 and s2['keyframes']['thumbs'] == [[64, 64, 3]] * 2, s2['keyframes']
    assert [_req(x).w0_seeds for x in s2['keyframes']['requests']] == [((0, 1.0),), ((5, 1.0),)]
    app.click(*center(f['s2'], 'play'))
    g['g3'].write_text('go')
    app.wait_for(f['s3'])
    s3 = json.loads(f['s3'].read_text())
    kw = s3['widgets']['keyframes']
    assert kw['play_anim'] and kw['preview'] and kw['time_sec'] > 0, kw
    # The submitted request is the timeline's frame at the preview time (a W lerp between the two seeds).
    from engine.states import KeyframeTimeline

    reqs = [_req(x) for x in s3['keyframes']['requests']]
    tl = KeyframeTimeline(tuple(reqs), (2.0, 2.0), fps=30, loop=True, num_ws=s3['net']['num_ws'])
    assert _req(s3['request']) == tl.frame(s3['keyframes']['frame'])
    app.click(*center(f['s3'], 'play'))  # the same button reads Pause while playing
    for name, text in (('duration', '-5'), ('fps', '99999')):  # typed out of range: clamped with a note
        x, y, w, h = json.loads(f['s3'].read_text())['keyframes']['rects'][name]
        app.click(x + w * 0.2, y + h / 2)
        app.key('ctrl+a')
        app.type(text)
        app.key('Return')
    g['g4'].write_text('go')
    app.wait_for(f['s4'])
    s4 = json.loads(f['s4'].read_text())
    kw4 = s4['widgets']['keyframes']
    assert not kw4['play_anim'] and kw4['preview']
    assert kw4['keyframes'][1]['duration'] == 0.05 and kw4['fps'] == 120, kw4  # keyframe 2 was selected
    assert any('duration -5' in n and 'clamped to 0.05' in n for n in s4['notes']), s4['notes']
    assert any('fps 99999' in n and 'clamped to 120' in n for n in s4['notes']), s4['notes']
    r = app.finish()
    _ok(r)


_IDLE_CHILD = textwrap.dedent(
    """
    import json, time
    from tests.viz.fake_visualizer import fake_renderer_factory
    from viz.visualizer import Visualizer

    app = Visualizer(window_size=(640, 480), separate_process=False, renderer_factory=fake_renderer_factory)
    out = {}

    def settle():
        deadline = time.monotonic() + 60
        while (app.displayed_stamp < app.submitted_stamp or app.view.image is None) and time.monotonic() < deadline:
            app.frame()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:  # past the grace period
            app.frame()

    try:
        gate = app.window.idle
        gate.grace_sec, gate.max_wait_sec = 0.2, 0.05
        settle()
        app.keyframes.add_keyframe()
        app.latent.set_state({'x': 4.0})
        app.window.idle.mark_active()
        settle()
        app.keyframes.add_keyframe()
        settle()
        drawn = app.window.frames_drawn
        for _ in range(10):
            app.frame()
        out['idle_drawn'] = app.window.frames_drawn - drawn
        app.keyframes.play()  # from outside the frame loop, like a click
        drawn, stamp = app.window.frames_drawn, app.submitted_stamp
        for _ in range(10):
            app.frame()
        out['play_drawn'] = app.window.frames_drawn - drawn
        out['play_requests'] = app.submitted_stamp - stamp
        app.keyframes.pause()
        settle()
        drawn = app.window.frames_drawn
        for _ in range(10):
            app.frame()
        out['paused_drawn'] = app.window.frames_drawn - drawn
    finally:
        app.close()
    print('RESULT ' + json.dumps(out))
    """
)


def test_playing_keeps_the_window_drawing_and_pause_lets_it_idle(gui_env, tmp_path):
    proc = subprocess.run(
        [sys.executable, '-c', _IDLE_CHILD], env=gui_env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len('RESULT ') :])
    assert r['idle_drawn'] == 0, r  # two keyframes, not playing: idle
    assert r['play_drawn'] == 10 and r['play_requests'] >= 5, r  # playing: every frame drawn, new states submitted
    assert r['paused_drawn'] == 0, r


def test_dropping_a_keyframe_file_loads_the_pane_and_shows_the_first_keyframe(run_viz, tmp_path):
    from engine.states import KeyframeTimeline, make_keyframes_doc, write_json

    a = RenderRequest(w0_seeds=((3, 1.0),), trunc_psi=0.7)
    b = RenderRequest(w0_seeds=((4, 1.0),))
    doc = make_keyframes_doc(KeyframeTimeline((a, b), (1.0, 1.0), fps=10, loop=True), extras=[
        {'widgets': {'latent': {'x': 3.0, 'y': 0.0}, 'trunc_noise': {'psi': 0.7}}}, {}])  # fmt: skip
    with_widgets, plain = write_json(tmp_path / 'kf.json', doc), tmp_path / 'plain.json'
    doc['keyframes'][0].pop('widgets')
    doc['keyframes'][0]['state']['w0_seeds'] = [[8, 1.0]]
    write_json(plain, doc)
    broken = tmp_path / 'broken.json'
    doc['keyframes'][1]['duration'] = 'long'
    write_json(broken, doc)
    dumps = [tmp_path / f'd{i}.json' for i in range(3)]
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'drop': [str(with_widgets)]},
        {'wait_frames': 2},  # the drop arrives at the next frame's start
        {'wait_result': True, 'timeout_sec': 60},
        {'dump_state': str(dumps[0])},
        {'drop': [str(plain)]},  # no panes stored: the timeline's first frame is previewed
        {'wait_frames': 2},
        {'wait_result': True, 'timeout_sec': 60},
        {'dump_state': str(dumps[1])},
        {'drop': [str(broken)]},
        {'wait_frames': 2},
        {'dump_state': str(dumps[2])},
        {'quit': 0},
    ]
    _ok(run_viz(['--fake-renderer', '--window', '1280x800'], script, timeout=180))
    d0, d1, d2 = (json.loads(p.read_text()) for p in dumps)
    assert d0['keyframes']['count'] == 2 and d0['error_text'] is None, (d0['keyframes'], d0['error_text'])
    assert d0['widgets']['latent']['x'] == 3.0, (d0['widgets']['latent'], d0['notes'], d0['keyframes']['status'])
    assert _req(d0['displayed_request']).w0_seeds == ((3, 1.0),) and _req(d0['displayed_request']).trunc_psi == 0.7
    assert d1['widgets']['keyframes']['preview'] and _req(d1['displayed_request']).w0_seeds == ((8, 1.0),)
    assert d1['widgets']['latent']['x'] == 3.0  # the panes stay as they were
    assert d2['keyframes']['count'] == 2 and 'broken.json' in d2['error_text'] and 'duration' in d2['error_text']
