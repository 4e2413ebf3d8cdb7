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
