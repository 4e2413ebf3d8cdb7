"""engine.states: capture PNGs carry their state, state files round-trip, bad files give clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.protocol import RenderRequest
from engine.states import (
    PNG_STATE_KEY,
    compose_view,
    is_state_file,
    load_timeline,
    make_timeline,
    png_state,
    read_state_doc,
    request_from_doc,
    save_png_with_state,
    write_json,
)


def _doc(req: RenderRequest) -> dict:
    return {'format': 'sg3viz-capture', 'version': 1, 'request': req.to_dict(), 'widgets': {'latent': {'x': 2.5}}}


def test_png_state_round_trip_keeps_pixels(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    req = RenderRequest(
        w0_seeds=((3, 0.25), (4, 0.75)),
        trunc_psi=0.5,
        layer_name='L2',
        input_transform=((1, 0, 0.5), (0, 1, 0), (0, 0, 1)),
    )
    p = save_png_with_state(tmp_path / 'a' / 'x.png', img, _doc(req))
    assert np.array_equal(np.asarray(Image.open(p)), img)
    doc = read_state_doc(p)
    assert request_from_doc(doc) == req
    assert doc['widgets'] == {'latent': {'x': 2.5}}
    assert is_state_file(p) and not list((tmp_path / 'a').glob('*.tmp'))
    plain = tmp_path / 'plain.png'
    Image.fromarray(img).save(plain)
    assert png_state(plain) is None and not is_state_file(plain)
    with pytest.raises(ValueError, match='carries no sg3viz state'):
        read_state_doc(plain)


def test_png_with_foreign_chunk_is_not_state(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt(PNG_STATE_KEY, '{"format": "other"}')
    p = tmp_path / 'f.png'
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(p, pnginfo=info)
    assert png_state(p) is None
    info = PngImagePlugin.PngInfo()
    info.add_itxt(PNG_STATE_KEY, '{not json')
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(p, pnginfo=info)
    assert png_state(p) is None


def test_bad_state_files(tmp_path):
    with pytest.raises(ValueError, match='existing file'):
        read_state_doc(tmp_path / 'missing.json')
    (tmp_path / 'bad.json').write_text('{nope')
    with pytest.raises(ValueError, match='JSON'):
        read_state_doc(tmp_path / 'bad.json')
    write_json(tmp_path / 'other.json', {'format': 'x'})
    with pytest.raises(ValueError, match="got format 'x'"):
        read_state_doc(tmp_path / 'other.json')
    write_json(tmp_path / 'new.json', {'format': 'sg3viz-session', 'version': 99})
    with pytest.raises(ValueError, match='newer release'):
        read_state_doc(tmp_path / 'new.json')
    write_json(tmp_path / 'old.json', {'format': 'sg3viz-session', 'version': 1, 'widgets': {}})
    with pytest.raises(ValueError, match='no render request'):
        request_from_doc(read_state_doc(tmp_path / 'old.json'))
    write_json(tmp_path / 'mal.json', {'format': 'sg3viz-capture', 'request': {'w0_seeds': [[1]]}})
    with pytest.raises(ValueError, match='malformed'):
        request_from_doc(read_state_doc(tmp_path / 'mal.json'))


def test_timeline_round_trip_and_errors(tmp_path):
    states = [RenderRequest(w0_seeds=((i, 1.0),), trunc_psi=0.1 * i, fft_show=True) for i in range(5)]
    p = write_json(tmp_path / 't.json', make_timeline(states, fps=24, view='image+fft'))
    got, fps, view = load_timeline(p)
    assert got == states and fps == 24.0 and view == 'image+fft'
    # A capture is a one-frame timeline.
    cap = write_json(tmp_path / 'c.json', _doc(states[2]))
    assert load_timeline(cap) == ([states[2]], 30.0, 'image')
    for bad, match in [
        ({'states': []}, '1..'),
        ({'states': 'x'}, 'must be a list'),
        ({'states': [{}], 'fps': 0}, 'fps'),
        ({'states': [{}], 'fps': True}, 'fps'),
        ({'states': [{}], 'view': 'gui'}, 'view'),
        ({'states': [{}, 3]}, 'state 1'),
    ]:
        write_json(tmp_path / 'b.json', {'format': 'sg3viz-timeline', 'version': 1, **bad})
        with pytest.raises(ValueError, match=match):
            load_timeline(tmp_path / 'b.json')
    with pytest.raises(ValueError):
        make_timeline([], fps=30)
    doc = json.loads(p.read_text())
    assert doc['format'] == 'sg3viz-timeline' and len(doc['states']) == 5


def test_compose_view():
    img = np.full((8, 8, 3), 10, np.uint8)
    fft = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    assert compose_view(img, None, 'image') is img
    assert compose_view(img, fft, 'fft') is fft
    both = compose_view(img, fft, 'image+fft')
    assert both.shape == (8, 16, 3) and np.array_equal(both[:, :8], img)
    assert np.array_equal(both[::2, 8::2], fft)  # nearest-neighbour x2
    with pytest.raises(ValueError, match='fft_show'):
        compose_view(img, None, 'fft')


def test_keyframe_interpolation_hand_computed():
    from engine.states import expand_keyframes, interpolate_states

    rot90 = ((0.0, 1.0, 0.2), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0))  # 90 degrees, translate (0.2, 0)
    a = RenderRequest(w0_seeds=((1, 1.0),), trunc_psi=1.0, img_scale_db=0.0, layer_name='L1', sel_channels=1)
    b = RenderRequest(w0_seeds=((2, 1.0),), trunc_psi=0.5, img_scale_db=6.0, layer_name='L3', input_transform=rot90)
    m = interpolate_states(a, b, 0.25)
    assert m.w0_seeds == ((1, 0.75), (2, 0.25))
    assert m.trunc_psi == pytest.approx(0.875) and m.img_scale_db == pytest.approx(1.5)
    assert m.layer_name == 'L1' and m.sel_channels == 1  # discrete: a's until the keyframe
    c, s = np.cos(np.pi / 8), np.sin(np.pi / 8)  # a quarter of 90 degrees
    np.testing.assert_allclose(np.array(m.input_transform), [[c, s, 0.05], [-s, c, 0.0], [0, 0, 1]], atol=1e-12)
    assert interpolate_states(a, b, 1.0) == b
    # Shortest way round: 170 -> -170 degrees passes through 180.
    r1, r2 = np.deg2rad(170), np.deg2rad(-170)
    ka = a.replace(input_transform=((np.cos(r1), np.sin(r1), 0), (-np.sin(r1), np.cos(r1), 0), (0, 0, 1)))
    kb = a.replace(input_transform=((np.cos(r2), np.sin(r2), 0), (-np.sin(r2), np.cos(r2), 0), (0, 0, 1)))
    mid = np.array(interpolate_states(ka, kb, 0.5).input_transform)
    np.testing.assert_allclose(mid[:2, :2], [[-1, 0], [0, -1]], atol=1e-12)
    # Explicit ws lerp.
    wa = a.replace(ws=((0.0, 2.0),), w0_seeds=((0, 1.0),))
    wb = a.replace(ws=((4.0, -2.0),))
    assert interpolate_states(wa, wb, 0.5).ws == ((2.0, 0.0),)
    with pytest.raises(ValueError, match='t must be'):
        interpolate_states(a, b, 1.5)

    frames = expand_keyframes([a, b], [0.5], fps=4)  # 2 frames + the last keyframe
    assert [f.w0_seeds for f in frames] == [((1, 1.0),), ((1, 0.5), (2, 0.5)), ((2, 1.0),)]
    loop = expand_keyframes([a, b], [0.5, 0.25], fps=4, loop=True)  # 2 + 1 frames, back to a
    assert len(loop) == 3 and loop[0] == a and loop[2] == b
    with pytest.raises(ValueError, match='2 keyframes'):
        expand_keyframes([a], [], fps=4)
    with pytest.raises(ValueError, match='durations'):
        expand_keyframes([a, b], [1, 1], fps=4)
    with pytest.raises(ValueError, match='duration must be'):
        expand_keyframes([a, b], [-1], fps=4)


def test_keyframe_timeline_file(tmp_path):
    a = RenderRequest(w0_seeds=((1, 1.0),), trunc_psi=1.0)
    b = RenderRequest(w0_seeds=((2, 1.0),), trunc_psi=0.0)
    doc = {
        'format': 'sg3viz-timeline',
        'version': 1,
        'fps': 10,
        'loop': True,
        'keyframes': [{'state': a.to_dict(), 'duration': 0.4}, {'state': b.to_dict(), 'duration': 0.2}],
    }
    states, fps, view = load_timeline(write_json(tmp_path / 'k.json', doc))
    assert fps == 10 and view == 'image' and len(states) == 6
    assert [round(s.trunc_psi, 6) for s in states] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.5]
    doc['keyframes'] = 'x'
    with pytest.raises(ValueError, match='keyframes'):
        load_timeline(write_json(tmp_path / 'k.json', doc))
