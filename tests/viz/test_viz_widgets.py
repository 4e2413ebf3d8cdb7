"""Pure widget logic (no window, no GL): seed grid, transforms, truncation/noise, layers, capture, sessions."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

from engine.protocol import LayerInfo, NetInfo, RenderRequest, RenderResult
from engine.sources import is_network_source, list_runs
from viz.capture_widget import capture_sidecar, next_capture_index, write_capture
from viz.equivariance_widget import (
    EquivarianceWidget,
    advance_translate,
    make_input_transform,
    round_to_pixels,
)
from viz.frame_view import FrameView
from viz.latent_widget import LatentWidget, grid_to_seed, seed_grid_weights, seed_to_grid
from viz.layer_widget import LayerWidget, clamp_base_channel, layer_rows
from viz.performance_widget import PerformanceWidget, device_choices, mean_and_fps
from viz.pickle_widget import UNSET, PickleWidget, push_recent
from viz.session_widget import load_session, save_session
from viz.stylemix_widget import StylemixWidget, stylemix_indices
from viz.trunc_noise_widget import TruncNoiseWidget, cutoff_for_request, noise_mode_for


def make_net(**kw) -> NetInfo:
    d = dict(
        pkl='',
        resolved_path='models/default.pkl',
        arch='stylegan3',
        img_resolution=64,
        img_channels=3,
        z_dim=64,
        c_dim=0,
        w_dim=64,
        num_ws=16,
        has_noise=False,
        has_input_transform=True,
    )
    d.update(kw)
    return NetInfo(**d)


def fake_viz(net=None, layers=()):
    return types.SimpleNamespace(view=FrameView(net=net, layers=tuple(layers)), font_size=14.0)


# ---- latent ------------------------------------------------------------------------------------------------------
def test_viz_seed_grid_integer_point_is_one_seed():
    assert seed_grid_weights(3.0, 2.0) == ((203, 1.0),)


def test_viz_seed_grid_bilinear_weights():
    got = dict(seed_grid_weights(0.25, 0.5))
    assert got == pytest.approx({0: 0.375, 1: 0.125, 100: 0.375, 101: 0.125})
    assert sum(got.values()) == pytest.approx(1.0)


def test_viz_seed_grid_wraps_to_uint32():
    assert seed_grid_weights(-1.0, 0.0) == ((2**32 - 1, 1.0),)
    assert seed_grid_weights(0.0, -1.0) == ((2**32 - 100, 1.0),)
    with pytest.raises(ValueError, match='finite'):
        seed_grid_weights(math.nan, 0.0)


def test_viz_seed_grid_roundtrip():
    for seed in (0, 7, 99, 100, 12345):
        assert grid_to_seed(*seed_to_grid(seed)) == seed


def test_viz_latent_widget_request_anim_snap_and_class():
    w = LatentWidget(fake_viz(make_net(c_dim=10)))
    w.set_state({'x': 1.5, 'class_idx': 3})
    args = {}
    w.update_request(args, 0.0)
    assert args['w0_seeds'] == ((1, 0.5), (2, 0.5)) and args['class_idx'] == 3
    w.set_state({'anim': True, 'speed': 1.0})
    w.update_request(args, 0.25)
    assert w.x == pytest.approx(1.75)
    w.snap()
    assert (w.x, w.y) == (2.0, 0.0)
    w.reset()
    assert (w.x, w.y, w.anim, w.class_idx) == (0.0, 0.0, False, -1)
    w.drag(14.0 * 25, 0.0)  # 25 font sizes of mouse travel = 1 seed
    assert w.x == pytest.approx(1.0)


def test_viz_latent_unconditional_net_has_no_class():
    w = LatentWidget(fake_viz(make_net(c_dim=0)))
    w.class_idx = 4
    args = {}
    w.update_request(args, 0.0)
    assert args['class_idx'] is None


# ---- stylemix / truncation / noise -------------------------------------------------------------------------------
def test_viz_stylemix_indices_and_request():
    assert stylemix_indices([True, False, True, True], 3) == (0, 2)
    w = StylemixWidget(fake_viz(make_net(num_ws=4)))
    w.set_state({'seed': 5, 'enabled': [False, True]})
    args = {}
    w.update_request(args, 0.0)
    assert args == {'stylemix_idx': (1,), 'stylemix_seed': 5, 'stylemix_weight': 1.0}
    assert len(w.enabled) == 4


def test_viz_noise_mode_and_cutoff():
    assert noise_mode_for(False, 3) == 'none'
    assert noise_mode_for(True, 0) == 'const'
    assert noise_mode_for(True, 7) == 'random'
    assert cutoff_for_request(None, 16) is None
    assert cutoff_for_request(16, 16) is None
    assert cutoff_for_request(4, 16) == 4


def test_viz_trunc_noise_widget_ranges_and_anim():
    w = TruncNoiseWidget(fake_viz(make_net(has_noise=True)))
    w.set_state({'psi': 5.0, 'noise_anim': True, 'noise_seed': 1})
    assert w.psi == 2.0  # clamped to -1..2
    args = {}
    w.update_request(args, 0.1)
    assert args['trunc_psi'] == 2.0 and args['noise_mode'] == 'random' and args['noise_seed'] == 2
    w.reset()
    args = {}
    w.update_request(args, 0.1)
    assert (args['trunc_psi'], args['trunc_cutoff'], args['noise_mode'], args['noise_seed']) == (1.0, None, 'const', 0)


# ---- equivariance --------------------------------------------------------------------------------------------------
def test_viz_input_transform_matrix():
    m = np.asarray(make_input_transform(0.1, -0.2, 0.25))  # a quarter turn
    np.testing.assert_allclose(m, [[0, 1, 0.1], [-1, 0, -0.2], [0, 0, 1]], atol=1e-12)
    a = 2 * math.pi * 0.1
    m = np.asarray(make_input_transform(0.0, 0.0, 0.1))
    np.testing.assert_allclose(m[:2, :2], [[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    np.testing.assert_allclose(m @ np.linalg.inv(m), np.eye(3), atol=1e-12)


def test_viz_round_to_pixels_and_anim_radius():
    assert round_to_pixels(0.0101, 64) == pytest.approx(1 / 64)
    x, y = advance_translate(0.0, 0.0, 0.5, 0.02)
    assert math.hypot(x, y) == pytest.approx(0.1)
    x2, y2 = advance_translate(x, y, 0.5, 0.02)
    assert math.hypot(x2, y2) == pytest.approx(0.1) and (x2, y2) != (x, y)


def test_viz_equivariance_widget_greyed_without_transform():
    w = EquivarianceWidget(fake_viz(make_net(has_input_transform=False, arch='stylegan2')))
    w.set_state({'xlate_x': 0.2, 'untransform': True})
    args = {}
    w.update_request(args, 0.1)
    assert args == {'input_transform': None, 'untransform': False, 'lab_eq': False}


def test_viz_equivariance_widget_request():
    w = EquivarianceWidget(fake_viz(make_net()))
    args = {}
    w.update_request(args, 0.0)
    assert args['input_transform'] is None  # identity
    w.set_state({'xlate_x': 0.0101, 'xlate_round': True, 'rotate': 0.5, 'untransform': True})
    w.update_request(args, 0.0)
    m = np.asarray(args['input_transform'])
    np.testing.assert_allclose(m, [[-1, 0, 1 / 64], [0, -1, 0], [0, 0, 1]], atol=1e-12)
    assert args['untransform'] is True
    RenderRequest(**args)  # valid request fields


# ---- layers ---------------------------------------------------------------------------------------------------------
def test_viz_layer_rows_and_channel_clamp():
    layers = (LayerInfo('input', (1, 256, 36, 36), 'float32'), LayerInfo('output', (1, 3, 64, 64), 'float16'))
    assert layer_rows(layers) == [('input', '36x36', 256, 'float32'), ('output', '64x64', 3, 'float16')]
    assert clamp_base_channel(300, 256, 3) == 253
    assert clamp_base_channel(-2, 256, 1) == 0
    assert clamp_base_channel(5, 2, 3) == 0


def test_viz_layer_widget_request():
    layers = (LayerInfo('L0_36_8', (1, 8, 36, 36), 'float32'), LayerInfo('output', (1, 3, 64, 64), 'float32'))
    w = LayerWidget(fake_viz(make_net(), layers))
    w.set_state(
        {'layer_name': 'L0_36_8', 'sel_channels': 1, 'base_channel': 50, 'fft_show': True, 'fft_range_db': 500.0}
    )
    args = {}
    w.update_request(args, 0.0)
    assert args['layer_name'] == 'L0_36_8' and args['base_channel'] == 7 and args['fft_range_db'] == 100.0
    w.set_state({'layer_name': 'output'})
    assert w.layer_name is None
    RenderRequest(**args)


# ---- performance -----------------------------------------------------------------------------------------------------
def test_viz_performance_logic():
    assert device_choices(None, 'auto') == ['auto', 'cpu', 'cuda', 'mps']
    assert device_choices(['cpu', 'cuda:0', 'cuda:1'], 'mps') == ['auto', 'cpu', 'cuda:0', 'cuda:1', 'mps']
    assert mean_and_fps([10.0, 30.0]) == (20.0, 50.0)
    assert mean_and_fps([]) == (0.0, 0.0)
    w = PerformanceWidget(None)
    assert set(w.pending_changes()) == {'fps_limit', 'vsync', 'separate_process', 'frame_encoding'}
    w.mark_applied(w.pending_changes())
    w.set_state({'fps_limit': 100000})
    assert w.pending_changes() == {'fps_limit': 1000}
    w.on_result(RenderResult(render_ms=12.5, impl={'filtered_lrelu': 'ref'}, device='cpu'))
    assert list(w.render_times_ms) == [12.5] and w.ran_on == 'cpu' and w.impl == {'filtered_lrelu': 'ref'}
    w.on_result(RenderResult(render_ms=40000.0, load_ms=900.0, device='cpu'))  # warm-up right after a load
    assert list(w.render_times_ms) == [12.5]


# ---- pickle -----------------------------------------------------------------------------------------------------------
def test_viz_pickle_helpers(tmp_path):
    assert push_recent(['a', 'b', 'c'], 'b') == ['b', 'a', 'c']
    assert len(push_recent([str(i) for i in range(20)], 'x')) == 12
    assert is_network_source('x.PKL') and is_network_source('https://a/b') and is_network_source(str(tmp_path))
    assert not is_network_source('notes.txt')
    (tmp_path / 'loose.pkl').write_bytes(b'')
    run = tmp_path / '00001-stylegan3-t-data-gpus1-batch4-gamma1'
    run.mkdir()
    for k in (0, 40, 20):
        (run / f'network-snapshot-{k:06d}.pkl').write_bytes(b'')
    (tmp_path / 'empty-run').mkdir()
    runs = list_runs(tmp_path)
    assert [r for r, _ in runs] == [str(tmp_path), str(run)]
    assert runs[1][1][0].endswith('network-snapshot-000040.pkl')
    assert list_runs(tmp_path / 'missing') == [] and list_runs(None) == []


def test_viz_pickle_failed_load_reverts_and_refused_asks_trust():
    img = np.zeros((4, 4, 3), np.uint8)
    w = PickleWidget(fake_viz(make_net()))
    w.load(None)
    w.on_result(RenderResult(stamp=1, image=img, net=make_net(), source=None))
    assert not w.is_loading() and w.loaded_pkl is None
    w.load('good.pkl')
    w.on_result(RenderResult(stamp=2, image=img, net=make_net(), source=None))  # an older request: not decisive
    assert w.pending == 'good.pkl'
    w.on_result(RenderResult(stamp=3, image=img, net=make_net(pkl='good.pkl'), source='good.pkl'))
    assert w.loaded_pkl == 'good.pkl' and w.recent == ['good.pkl']
    w.load('evil.pkl')
    w.on_result(
        RenderResult(stamp=4, error='refused', refused_names=('os.system',), source='evil.pkl', load_failed=True)
    )
    assert w.pkl == 'good.pkl' and 'refused' in w.load_error and w.refused == ('evil.pkl', ('os.system',))
    args = {}
    w.update_request(args, 0.0)
    assert args == {'pkl': 'good.pkl', 'trust': False}
    w.confirm_trust()
    w.update_request(args, 0.0)
    assert args == {'pkl': 'evil.pkl', 'trust': True} and w.load_error is None


def test_viz_pickle_error_clears_when_its_source_loads_after_all():
    """A load that failed (e.g. on an unavailable device) and then succeeds (another device) takes its error away."""
    w = PickleWidget(fake_viz())
    w.load(None)
    w.on_result(RenderResult(stamp=1, error='no cuda', source=None, load_failed=True))
    assert w.load_error and not w.is_loading()
    w.on_result(RenderResult(stamp=2, error='render failed', net=make_net(), source='other.pkl'))
    assert w.load_error  # another source: still relevant
    w.on_result(RenderResult(stamp=3, image=np.zeros((4, 4, 3), np.uint8), net=make_net(), source=None))
    assert w.load_error is None and w.refused is None


def test_viz_pickle_drop():
    w = PickleWidget(fake_viz())
    assert not w.handle_drop(['/x/readme.txt']) and 'Drop a network pickle' in w.load_error
    assert w.handle_drop(['/x/readme.txt', '/x/net.pkl']) and w.pending == '/x/net.pkl'
    assert w.pending is not UNSET


# ---- capture and sessions -----------------------------------------------------------------------------------------
def test_viz_capture_sidecar_reproduces_request(tmp_path):
    req = RenderRequest(
        pkl='net.pkl',
        w0_seeds=((1, 0.25), (2, 0.75)),
        trunc_psi=0.5,
        input_transform=make_input_transform(0.1, 0, 0.1),
        stamp=9,
    )
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    side = capture_sidecar('image', req, make_net(pkl='net.pkl'), {'latent': {'x': 1.0}})
    png0, js0 = write_capture(tmp_path, img, 'image', side)
    png1, _ = write_capture(tmp_path, img, 'gui', side)
    assert png0.name == '00000-image.png' and png1.name == '00001-gui.png' and next_capture_index(tmp_path) == 2
    doc = json.loads(js0.read_text())
    assert RenderRequest.from_dict(doc['request']) == req
    assert doc['network']['pkl'] == 'net.pkl' and doc['kind'] == 'image'
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(png0)), img)
    assert load_session(js0) == {'latent': {'x': 1.0}}  # a sidecar reopens as a session
    with pytest.raises(ValueError, match='kind'):
        write_capture(tmp_path, img, 'video', side)


def test_viz_session_roundtrip_and_errors(tmp_path):
    widgets = [LatentWidget(), StylemixWidget(), TruncNoiseWidget(), EquivarianceWidget(), LayerWidget()]
    widgets[0].set_state({'x': 2.25, 'anim': True})
    widgets[2].set_state({'psi': 0.7, 'cutoff': 4})
    widgets[4].set_state({'layer_name': 'L3_52_256', 'fft_show': True})
    p = save_session(tmp_path / 'sub' / 's.json', {w.KEY: w.get_state() for w in widgets})
    fresh = [type(w)() for w in widgets]
    for w in fresh:
        w.set_state(load_session(p)[w.KEY])
    for a, b in zip(widgets, fresh):
        assert a.get_state() == b.get_state()
    (tmp_path / 'bad.json').write_text('{nope')
    with pytest.raises(ValueError, match='JSON'):
        load_session(tmp_path / 'bad.json')
    (tmp_path / 'other.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='not an sg3viz session'):
        load_session(tmp_path / 'other.json')
    with pytest.raises(ValueError, match='existing file'):
        load_session(tmp_path / 'missing.json')


def test_viz_pickle_newer_load_supersedes_one_in_flight():
    w = PickleWidget(fake_viz(make_net()))
    w.load('a.pkl')
    w.load('b.pkl')  # cancels a.pkl: its result no longer matters
    w.on_result(RenderResult(stamp=1, error='a.pkl is corrupt', source='a.pkl', load_failed=True))
    assert w.pkl == 'b.pkl' and w.pending == 'b.pkl' and w.load_error is None
    w.on_result(RenderResult(stamp=2, error='render process died', source='b.pkl'))  # no load outcome: still pending
    assert w.pending == 'b.pkl'
    w.on_result(RenderResult(stamp=3, image=np.zeros((4, 4, 3), np.uint8), net=make_net(pkl='b.pkl'), source='b.pkl'))
    assert not w.is_loading() and w.loaded_pkl == 'b.pkl'


def test_viz_frame_view_keeps_image_across_errors():
    img = np.zeros((4, 4, 3), np.uint8)
    req = RenderRequest(fft_show=True, fft_beta=3.0, stamp=1)
    v = FrameView().advance(RenderResult(stamp=1, image=img, fft=img, net=make_net(), stats={'mean': (0, 0)}), req)
    v2 = v.advance(RenderResult(stamp=2, error='boom'), None)
    assert v2.image is img and v2.image_request is req and v2.net == make_net() and v2.error == 'boom'
    assert v2.displayed_stamp == 2 and v2.stats == {'mean': (0, 0)} and v.error is None


# ---- script hook -------------------------------------------------------------------------------------------------
def test_viz_script_open_and_kill_renderer_steps():
    import signal
    import subprocess
    import sys

    from viz.script import ScriptRunner, validate_steps

    with pytest.raises(ValueError, match='step 0'):
        validate_steps([{'open_all': True}])
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        opened = {}
        viz = types.SimpleNamespace(
            renderer=types.SimpleNamespace(pid=child.pid),
            set_section_open=lambda key, is_open: opened.__setitem__(key, is_open),
            quit=lambda code: opened.__setitem__('quit', code),
        )
        runner = ScriptRunner([{'open': {'performance': 1}}, {'kill_renderer': True}])
        runner.step(viz)
        assert child.wait(timeout=10) == -signal.SIGKILL
        assert opened == {'performance': True, 'quit': 0}
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
