"""engine.recording (the 'render_video' job) and engine.mp4_state (the state inside a recorded mp4)."""

from __future__ import annotations

import json
import pathlib
import pickle
import struct
import zlib

import numpy as np
import PIL.Image
import pytest
import torch

from engine import mp4_state
from engine.atomic_files import default_mode
from engine.jobs import JobRunner, JobSpec
from engine.protocol import RenderRequest
from engine.recording import render_video_job, run_video_job
from engine.renderer import Renderer
from engine.states import compose_view, is_state_file, read_state_doc


@pytest.fixture(scope='module')
def sg3_pkl(tmp_path_factory):
    from training import networks_stylegan3

    torch.manual_seed(0)
    G = networks_stylegan3.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
        mapping_kwargs={'num_layers': 2},
    )  # fmt: skip
    path = tmp_path_factory.mktemp('rec') / 'g.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G.eval()}))
    return str(path)


@pytest.fixture(scope='module')
def renderer():
    return Renderer('cpu')


def _walk(pkl: str, n: int = 5, **kw) -> list[RenderRequest]:
    return [RenderRequest(pkl=pkl, device='cpu', w0_seeds=((1, 1 - i / n), (2, i / n)), **kw) for i in range(n)]


def _listing(d: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob('*'))


def _decode(path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    return [np.asarray(f) for f in imageio.mimread(path)]


def test_states_render_to_the_same_frames_as_individual_requests(tmp_path, sg3_pkl, renderer):
    rot = np.deg2rad(30)
    m = ((np.cos(rot), np.sin(rot), 0.1), (-np.sin(rot), np.cos(rot), 0.0), (0.0, 0.0, 1.0))
    layer = next(x.name for x in renderer.render(_walk(sg3_pkl)[0]).layers if x.name.startswith('L1_'))
    states = _walk(sg3_pkl, 4) + [
        RenderRequest(pkl=sg3_pkl, device='cpu', w0_seeds=((3, 1.0),), input_transform=m, trunc_psi=0.5),
        RenderRequest(pkl=sg3_pkl, device='cpu', layer_name=layer, sel_channels=1, base_channel=2, img_scale_db=6),
    ]
    for view in ('image', 'image+fft'):
        out = tmp_path / view
        res = run_video_job(renderer, states, str(out), fps=10, view=view)
        files = sorted(out.glob('*.png'))
        assert res['frames'] == len(files) == len(states)
        ref = Renderer('cpu')
        first = None
        for f, s in zip(files, states):
            rr = ref.render(s.replace(fft_show=view != 'image'))
            expected = compose_view(rr.image, rr.fft, view)
            first = expected.shape if first is None else first
            if expected.shape != first:  # the layer frame (36 px) is resized to the first frame's size with Lanczos
                expected = np.asarray(PIL.Image.fromarray(expected).resize(first[1::-1], PIL.Image.Resampling.LANCZOS))
            assert np.array_equal(np.asarray(PIL.Image.open(f)), expected), (view, f.name)
        assert out.stat().st_mode & 0o777 == default_mode(is_dir=True)
        doc = json.loads((out / 'states.json').read_text())
        assert doc['format'] == 'sg3viz-timeline' and doc['view'] == view and doc['fps'] == 10
        assert RenderRequest.from_dict(doc['states'][4]).input_transform == states[4].input_transform


def test_chosen_height_integer_upscale_is_exact_nearest(tmp_path, sg3_pkl, renderer):
    states = _walk(sg3_pkl, 2)
    run_video_job(renderer, states, str(tmp_path / 'f' / '%03d.png'), fps=5, height_px=64)
    got = np.asarray(PIL.Image.open(tmp_path / 'f' / '001.png'))
    img = renderer.render(states[1]).image
    assert got.shape == (64, 64, 3) and np.array_equal(got, img.repeat(4, 0).repeat(4, 1))
    run_video_job(renderer, states, str(tmp_path / 'g'), fps=5, height_px=24)  # not an integer factor: Lanczos
    got = np.asarray(PIL.Image.open(tmp_path / 'g' / '0000.png'))
    want = np.asarray(
        PIL.Image.fromarray(renderer.render(states[0]).image).resize((24, 24), PIL.Image.Resampling.LANCZOS)
    )
    assert np.array_equal(got, want)


def test_mp4_frames_size_and_metadata_round_trip(tmp_path, sg3_pkl, renderer):
    states = _walk(sg3_pkl, 6)
    widgets = {'latent': {'x': 2.5, 'anim': True}}
    out = tmp_path / 'v.mp4'
    res = run_video_job(renderer, states, str(out), fps=12, view='image+fft', widgets=widgets)
    assert res['embedded'] and (res['width'], res['height']) == (32, 16)
    frames = _decode(out)
    assert len(frames) == 6 and frames[0].shape == (16, 32, 3)
    for i in (0, 5):
        rr = renderer.render(states[i].replace(fft_show=True))
        want = compose_view(rr.image, rr.fft, 'image+fft').astype(np.float64)
        assert np.abs(frames[i] - want).mean() < 8, i  # H.264 yuv420p (crf 15) is close, not exact
    side = json.loads((tmp_path / 'v.json').read_text())
    inside = read_state_doc(out)
    assert inside == side and is_state_file(out)
    assert inside['widgets'] == widgets and [RenderRequest.from_dict(s) for s in inside['states']] == [
        s.replace(fft_show=True) for s in states
    ]
    assert _listing(tmp_path) == ['v.json', 'v.mp4']  # no temporary files left
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ('v.json', 'v.mp4')} == {default_mode()}  # not 0o600
    # An odd native size is padded to even for H.264.
    odd = [s.replace(layer_name='output') for s in states[:2]]
    r2 = run_video_job(renderer, odd, str(tmp_path / 'o.mp4'), fps=12, view='image', height_px=17)
    assert (r2['width'], r2['height']) == (18, 18) and _decode(tmp_path / 'o.mp4')[0].shape == (18, 18, 3)


def test_gen_video_timeline_reproduces_a_recording_frame_for_frame(tmp_path, sg3_pkl, renderer):
    import gen_video

    states = _walk(sg3_pkl, 5, fft_show=True)
    run_video_job(renderer, states, str(tmp_path / 'rec'), fps=8, view='fft', height_px=32)
    run_video_job(renderer, states, str(tmp_path / 'rec.mp4'), fps=8, view='fft', height_px=32)
    n = gen_video.render_timeline(tmp_path / 'rec' / 'states.json', str(tmp_path / 'again'), progress=False)
    assert n == 5
    for name in [f'{i:04d}.png' for i in range(5)]:
        assert np.array_equal(
            np.asarray(PIL.Image.open(tmp_path / 'rec' / name)), np.asarray(PIL.Image.open(tmp_path / 'again' / name))
        )
    # From the mp4 alone (the states inside it), to an mp4 again: same decoded frames.
    gen_video.render_timeline(tmp_path / 'rec.mp4', str(tmp_path / 'again.mp4'), progress=False)
    a, b = _decode(tmp_path / 'rec.mp4'), _decode(tmp_path / 'again.mp4')
    assert len(a) == len(b) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert read_state_doc(tmp_path / 'again.mp4')['height_px'] == 32


@pytest.mark.parametrize('where', ['mp4', 'png'])
def test_cancel_and_failure_leave_nothing_behind(tmp_path, sg3_pkl, renderer, where):
    out = tmp_path / 'out'
    out.mkdir()
    target = str(out / ('v.mp4' if where == 'mp4' else 'frames'))
    states = _walk(sg3_pkl, 6)
    gen = render_video_job(renderer, states=states, output=target, fps=10)
    for _ in range(3):
        next(gen)
    assert _listing(out), 'temporary files exist while rendering'
    gen.close()  # what engine.jobs does on cancel
    assert _listing(out) == []
    bad = states[:2] + [states[2].replace(pkl=str(tmp_path / 'missing.pkl'))]
    with pytest.raises(ValueError, match='frame 2'):
        run_video_job(renderer, bad, target, fps=10)
    assert _listing(out) == []


def test_job_runner_cancel_and_progress(tmp_path, sg3_pkl, renderer):
    updates = []
    runner = JobRunner(renderer, updates.append)
    params = dict(states=[s.to_dict() for s in _walk(sg3_pkl, 8)], output=str(tmp_path / 'x.mp4'), fps=10.0)
    runner.handle(('job_start', JobSpec(1, 'render_video', params)))
    for _ in range(4):
        runner.step()
    assert updates[-1].state == 'running' and updates[-1].total == 8 and 1 <= updates[-1].done <= 4
    runner.cancel(1)
    assert updates[-1].state == 'cancelled' and _listing(tmp_path) == []
    runner.handle(('job_start', JobSpec(2, 'render_video', {**params, 'fps': 0})))
    runner.step()
    assert updates[-1].state == 'error' and 'fps' in updates[-1].error
    runner.handle(('job_start', JobSpec(3, 'render_video', params)))
    while runner.busy:
        runner.step()
    assert updates[-1].state == 'done' and updates[-1].result['frames'] == 8
    assert _listing(tmp_path) == ['x.json', 'x.mp4']


# ---- hostile mp4 input ------------------------------------------------------------------------------------------


def _box(typ: bytes, payload: bytes, extra: int = 0) -> bytes:
    """A box whose size also counts ``extra`` bytes that follow ``payload`` (written sparse by the caller)."""
    return struct.pack('>I4s', 8 + len(payload) + extra, typ) + payload


def _fake_mp4(value: bytes, *, extra: int = 0, data_size: int | None = None) -> bytes:
    """ftyp, mdat, then moov/udta/meta(hdlr, keys, ilst/item/data) with our key; the value ends the file, ``extra``
    more bytes of it to be appended by the caller."""
    key = b'sg3viz-state'
    keys = _box(b'keys', b'\0\0\0\0' + struct.pack('>I', 1) + struct.pack('>I4s', 8 + len(key), b'mdta') + key)
    data = _box(b'data', struct.pack('>II', 1, 0) + value, extra)
    if data_size is not None:
        data = struct.pack('>I4s', data_size, b'data') + data[8:]
    ilst = _box(b'ilst', _box(struct.pack('>I', 1), data, extra), extra)
    meta = _box(b'meta', b'\0\0\0\0' + _box(b'hdlr', b'\0' * 25) + keys + ilst, extra)
    moov = _box(b'moov', _box(b'udta', meta, extra), extra)
    return _box(b'ftyp', b'isom\0\0\2\0') + _box(b'mdat', b'\0' * 16) + moov


def test_mp4_reader_reads_a_hand_built_file_and_a_plain_video(tmp_path, sg3_pkl, renderer):
    doc = {'format': 'sg3viz-timeline', 'version': 1, 'fps': 5.0, 'view': 'image', 'states': [{}]}
    p = tmp_path / 'hand.mp4'
    p.write_bytes(_fake_mp4(mp4_state.encode_value(doc).encode()))
    assert mp4_state.read_mp4_state(p) == doc
    import imageio.v2 as imageio

    plain = tmp_path / 'plain.mp4'
    imageio.mimwrite(plain, [np.zeros((16, 16, 3), np.uint8)] * 2, fps=5, macro_block_size=1)
    assert mp4_state.read_mp4_state(plain) is None and not is_state_file(plain)
    with pytest.raises(ValueError, match='carries no sg3viz state'):
        read_state_doc(plain)


@pytest.mark.parametrize(
    'case, match',
    [
        ('random', 'not an MP4'),
        ('empty', 'not an MP4'),
        ('truncated', 'truncated or corrupt|no movie box'),
        ('box_too_big', 'claims'),
        ('value_claims_huge', 'claims|more than'),
        ('value_over_limit', 'more than'),
        ('zip_bomb', 'inflates to more than'),
        ('bad_base64', 'base64'),
        ('not_ours', "must start with 'zlib"),
        ('not_json', 'not JSON'),
        ('many_boxes', 'more than 10000 boxes'),
        ('size_zero_inside', 'size 0'),
    ],
)
def test_mp4_reader_rejects_hostile_files_clearly(tmp_path, case, match):
    p = tmp_path / f'{case}.mp4'
    good = _fake_mp4(mp4_state.encode_value({'format': 'sg3viz-timeline', 'states': [{}]}).encode())
    if case == 'random':
        p.write_bytes(np.random.RandomState(0).bytes(4096))
    elif case == 'empty':
        p.write_bytes(b'')
    elif case == 'truncated':
        p.write_bytes(good[:60])
    elif case == 'box_too_big':
        p.write_bytes(_box(b'ftyp', b'isom') + struct.pack('>I4s', 1 << 30, b'moov') + b'\0' * 64)
    elif case == 'value_claims_huge':
        p.write_bytes(_fake_mp4(b'zlib+base64:AAAA', data_size=0x7FFFFFFF))
    elif case == 'value_over_limit':  # a real (sparse) 60 MB value: refused before it is read
        with open(p, 'wb') as f:
            f.write(_fake_mp4(b'zlib+base64:', extra=60 << 20))
            f.truncate(f.tell() + (60 << 20))
    elif case == 'zip_bomb':
        import base64

        bomb = b'zlib+base64:' + base64.b64encode(zlib.compress(b' ' * (80 << 20), 9))
        p.write_bytes(_fake_mp4(bomb))
    elif case == 'bad_base64':
        p.write_bytes(_fake_mp4(b'zlib+base64:@@@@'))
    elif case == 'not_ours':
        p.write_bytes(_fake_mp4(b'{"format": "sg3viz-timeline"}'))
    elif case == 'not_json':
        import base64

        p.write_bytes(_fake_mp4(b'zlib+base64:' + base64.b64encode(zlib.compress(b'\xff\xfe not json'))))
    elif case == 'many_boxes':
        p.write_bytes(_box(b'ftyp', b'isom') + _box(b'free', b'') * 20000)
    elif case == 'size_zero_inside':
        p.write_bytes(_box(b'ftyp', b'isom') + _box(b'moov', struct.pack('>I4s', 0, b'udta') + b'\0' * 8))
    with pytest.raises(ValueError, match=match):
        read_state_doc(p)
    assert not is_state_file(p)


def test_a_render_does_not_depend_on_what_the_renderer_mapped_before():
    """The GUI's renderer has mapped other seeds (in other batches) before it renders a recording; the headless
    re-render starts cold. Both must give the same ws and pixels (the mapping's float rounding depends on the batch
    size, so seeds are mapped one at a time). The bundled network: a tiny mapping rounds alike in any batch."""
    if not (pathlib.Path(__file__).resolve().parents[2] / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    state = RenderRequest(device='cpu', w0_seeds=((1, 0.3), (2, 0.7)), return_ws=True)
    warm = Renderer('cpu')
    warm.render(RenderRequest(device='cpu', w0_seeds=((5, 0.25), (1, 0.25), (7, 0.25), (2, 0.25))))
    a, b = warm.render(state), Renderer('cpu').render(state)
    assert a.ws == b.ws and np.array_equal(a.image, b.image)


@pytest.mark.slow  # starts a render process (tens of seconds on a busy 2-core machine)
def test_closing_the_render_process_mid_job_leaves_nothing(tmp_path, sg3_pkl):
    """Quitting the visualizer while a video renders: the worker returns, the job generator is finalised and its
    temporary files go (a SIGKILLed process can leave hidden ``.NAME.*`` temporaries; nothing else)."""
    import time

    from engine.async_renderer import AsyncRenderer

    states = _walk(sg3_pkl, 60)
    with AsyncRenderer('cpu', separate_process=True, spare_process=False) as r:
        job = r.start_job('render_video', {'states': states, 'output': str(tmp_path / 'v.mp4'), 'fps': 10.0})
        done, deadline = 0, time.monotonic() + 300
        while done < 2 and time.monotonic() < deadline:
            done = max([done] + [u.done for u in r.job_updates() if u.job_id == job and u.state == 'running'])
            time.sleep(0.01)
        assert done >= 2 and _listing(tmp_path)  # rendering, temporaries present
    assert _listing(tmp_path) == []


def test_widgets_a_dropped_recording_restores():
    from engine.states import widgets_from_doc

    tl = {'format': 'sg3viz-timeline', 'states': [{}], 'widgets': {'latent': {'x': 1.5, 'anim': True, 'speed': 2.0}}}
    assert widgets_from_doc(tl) == {'latent': {'x': 1.5, 'anim': False, 'speed': 2.0}}  # a still of frame 0
    kf = {'format': 'sg3viz-timeline', 'keyframes': [{'state': {}, 'widgets': {'equivariance': {'rotate_anim': True}}}]}
    assert widgets_from_doc(kf) == {'equivariance': {'rotate_anim': False}}
    with pytest.raises(ValueError, match='timeline without GUI state'):
        widgets_from_doc({'format': 'sg3viz-timeline', 'states': [{}]}, 'hand.json')
    with pytest.raises(ValueError, match='must be an object'):
        widgets_from_doc({'format': 'sg3viz-timeline', 'widgets': {'latent': 3}})
    cap = {'format': 'sg3viz-capture', 'widgets': {'latent': {'anim': True}}}
    assert widgets_from_doc(cap) == {'latent': {'anim': True}}  # a capture restores as it was saved
