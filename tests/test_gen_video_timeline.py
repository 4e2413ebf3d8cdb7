"""gen_video.py --timeline: recorded states render frame for frame like individual Renderer renders."""

from __future__ import annotations

import json
import pathlib
import pickle
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gen_video  # noqa: E402
from engine.protocol import RenderRequest  # noqa: E402
from engine.renderer import Renderer  # noqa: E402
from engine.states import compose_view, make_timeline, write_json  # noqa: E402


@pytest.fixture(scope='module')
def sg3_pkl(tmp_path_factory):
    from training import networks_stylegan3

    torch.manual_seed(0)
    G = networks_stylegan3.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
        mapping_kwargs={'num_layers': 2},
    )  # fmt: skip
    path = tmp_path_factory.mktemp('tl') / 'g.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G.eval()}))
    return str(path)


def _states(pkl: str) -> list[RenderRequest]:
    rot = np.deg2rad(20)
    m = ((np.cos(rot), np.sin(rot), 0.1), (-np.sin(rot), np.cos(rot), 0.0), (0.0, 0.0, 1.0))
    return [
        RenderRequest(pkl=pkl, device='cpu', w0_seeds=((1, 1.0),), fft_show=True),
        RenderRequest(pkl=pkl, device='cpu', w0_seeds=((1, 0.5), (2, 0.5)), trunc_psi=0.5, fft_show=True),
        RenderRequest(pkl=pkl, device='cpu', w0_seeds=((2, 1.0),), input_transform=m, fft_show=True),
        RenderRequest(pkl=pkl, device='cpu', w0_seeds=((3, 1.0),), layer_name='L1_36_16', fft_show=True),
    ]


def test_timeline_png_frames_equal_individual_renders(tmp_path, sg3_pkl):
    states = _states(sg3_pkl)
    r = Renderer('cpu')
    names = [layer.name for layer in r.render(states[0]).layers]
    layer = next(n for n in names if n.startswith('L1_'))
    states[3] = states[3].replace(layer_name=layer)
    tl = write_json(tmp_path / 'states.json', make_timeline(states, fps=12, view='image+fft'))
    out = tmp_path / 'frames'
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tl), '--output', str(out)])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob('*.png'))
    assert [f.name for f in files] == ['0000.png', '0001.png', '0002.png', '0003.png']
    ref = Renderer('cpu')
    for f, s in zip(files, states):
        rr = ref.render(s)
        expected = compose_view(rr.image, rr.fft, 'image+fft')
        got = np.asarray(PIL.Image.open(f))
        if expected.shape != got.shape:  # the layer frame is resized to the first frame's size (downscale: Lanczos)
            expected = np.asarray(PIL.Image.fromarray(expected).resize(got.shape[1::-1], PIL.Image.Resampling.LANCZOS))
        assert np.array_equal(got, expected), f.name
    side = json.loads((out / 'states.json').read_text())
    assert side['format'] == 'sg3viz-timeline' and side['fps'] == 12 and len(side['states']) == 4
    assert RenderRequest.from_dict(side['states'][2]) == states[2]


def test_timeline_mp4_frame_count_and_errors(tmp_path, sg3_pkl):
    import imageio.v2 as imageio

    states = [RenderRequest(pkl=sg3_pkl, device='cpu', w0_seeds=((i, 1.0),)) for i in range(5)]
    tl = write_json(tmp_path / 't.json', make_timeline(states, fps=10))
    out = tmp_path / 'v.mp4'
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tl), '--output', str(out), '--fps', '5'])
    assert res.exit_code == 0, res.output
    frames = imageio.mimread(out)
    assert len(frames) == 5 and frames[0].shape == (16, 16, 3)
    first = Renderer('cpu').render(states[0]).image.astype(np.float64)
    assert np.abs(frames[0].astype(np.float64) - first).mean() < 12  # H.264 yuv420p is lossy
    assert json.loads((tmp_path / 'v.json').read_text())['fps'] == 5
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tl), '--seeds', '1', '--output', str(out)])
    assert res.exit_code != 0 and '--seeds' in res.output
    (tmp_path / 'bad.json').write_text('{"format": "sg3viz-timeline", "states": []}')
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tmp_path / 'bad.json'), '--output', str(out)])
    assert res.exit_code != 0 and '1..' in res.output
    bad = make_timeline([states[0].replace(pkl=str(tmp_path / 'missing.pkl'))], fps=10)
    write_json(tmp_path / 'miss.json', bad)
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tmp_path / 'miss.json'), '--output', str(out)])
    assert res.exit_code != 0 and 'frame 0' in res.output


def test_keyframe_timeline_renders_expanded_states(tmp_path, sg3_pkl):
    from engine.states import expand_keyframes

    a = RenderRequest(pkl=sg3_pkl, device='cpu', w0_seeds=((1, 1.0),), trunc_psi=1.0)
    b = RenderRequest(pkl=sg3_pkl, device='cpu', w0_seeds=((5, 1.0),), trunc_psi=0.5)
    doc = {
        'format': 'sg3viz-timeline',
        'fps': 6,
        'keyframes': [{'state': a.to_dict(), 'duration': 0.5}, {'state': b.to_dict()}],
    }
    tl = write_json(tmp_path / 'k.json', doc)
    res = CliRunner().invoke(gen_video.main, ['--timeline', str(tl), '--output', str(tmp_path / 'f' / '%03d.png')])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / 'f').glob('*.png'))
    expected_states = expand_keyframes([a, b], [0.5], fps=6)
    assert len(files) == len(expected_states) == 4
    r = Renderer('cpu')
    for f, s in zip(files, expected_states):
        assert np.array_equal(np.asarray(PIL.Image.open(f)), r.render(s).image), f.name
    side = json.loads((tmp_path / 'f' / 'states.json').read_text())
    assert [RenderRequest.from_dict(s) for s in side['states']] == expected_states
