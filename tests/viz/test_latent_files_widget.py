"""Latent pane: Load W / Save W without a display (widget decisions are plain methods)."""

from __future__ import annotations

import types

import numpy as np

from engine.latent_files import read_latent_state, write_ws
from engine.protocol import NetInfo, RenderRequest, RenderResult
from viz.frame_view import FrameView
from viz.latent_widget import LatentWidget


def _net(num_ws=4, w_dim=8):
    return NetInfo(pkl='net.pkl', resolved_path='net.pkl', arch='stylegan2', img_resolution=8, img_channels=3, z_dim=8,
                   c_dim=0, w_dim=w_dim, num_ws=num_ws, has_noise=True, has_input_transform=False)  # fmt: skip


def _app(net=None):
    return types.SimpleNamespace(view=FrameView(net=net), font_size=14.0)


def _request(w):
    args = {}
    w.update_request(args, 0.0)
    return args


def test_loaded_latent_replaces_seeds_until_the_seed_changes(tmp_path):
    ws = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    np.save(tmp_path / 'w.npy', ws)
    w = LatentWidget(_app(_net()))
    assert w.load_w(tmp_path / 'w.npy')
    args = _request(w)
    np.testing.assert_array_equal(np.asarray(args['ws'], np.float32), ws)
    assert args['w0_seeds'] == ((0, 1.0),)
    assert 'ws' in _request(w)  # stays while the seed stays
    w.x = 1.0  # the user picks another seed
    args = _request(w)
    assert 'ws' not in args and w.loaded_ws is None and 'back to the seed' in w.w_status


def test_wrong_shape_is_reported_not_raised(tmp_path):
    np.save(tmp_path / 'bad.npy', np.zeros([5, 8], np.float32))
    w = LatentWidget(_app(_net()))
    assert not w.load_w(tmp_path / 'bad.npy')
    assert 'num_ws=4' in w.w_status and 'w_dim=8' in w.w_status and 'ws' not in _request(w)
    assert not w.load_w(tmp_path / 'missing.npz') and 'not found' in w.w_status


def test_load_waits_for_the_network_and_clears_on_another_network(tmp_path):
    np.savez(tmp_path / 'p.npz', w=np.ones([1, 4, 8], np.float32))
    app = _app(None)
    w = LatentWidget(app)
    assert not w.load_w(tmp_path / 'p.npz') and 'waiting' in w.w_status
    app.view = FrameView(net=_net())
    w.on_result(RenderResult(stamp=1, net=_net()))
    assert w.loaded_ws is not None and 'ws' in _request(w)
    app.view = FrameView(net=_net(num_ws=6))  # the user opened another network
    assert 'ws' not in _request(w) and 'num_ws=6' in w.w_status


def test_save_asks_for_ws_and_writes_once_without_overwriting(tmp_path):
    app = _app(_net())
    w = LatentWidget(app)
    write_ws(tmp_path / 'mine.npz', np.zeros([4, 8]))  # an existing file is kept
    w.save_w(tmp_path / 'mine.npz')
    assert _request(w)['return_ws'] is True
    ws = np.arange(32, dtype=np.float32).reshape(4, 8) / 10
    req = RenderRequest(pkl='net.pkl', w0_seeds=((5, 1.0),), trunc_psi=0.7, return_ws=True)
    app.view = FrameView(net=_net()).advance(RenderResult(stamp=2, net=_net(), ws=None), req)
    w.on_result(app.view.result)  # an older frame without ws: keep waiting
    assert 'return_ws' in _request(w)
    result = RenderResult(stamp=3, net=_net(), ws=tuple(tuple(float(v) for v in r) for r in ws))
    app.view = app.view.advance(result, req)
    w.on_result(result)
    assert 'return_ws' not in _request(w)
    saved = tmp_path / 'mine-0001.npz'
    assert saved.is_file() and 'Saved' in w.w_status
    with np.load(saved) as f:
        np.testing.assert_array_equal(f['w'], ws[None])
    np.testing.assert_array_equal(np.load(tmp_path / 'mine.npz')['w'], np.zeros([1, 4, 8]))
    state = read_latent_state(saved)
    assert state['request']['trunc_psi'] == 0.7 and state['request']['w0_seeds'] == [[5, 1.0]]
    assert state['network'] == {'pkl': 'net.pkl', 'num_ws': 4, 'w_dim': 8}


def test_hostile_state_values():
    w = LatentWidget(_app(_net()))
    w.set_state({'w_file': 12345, 'x': float('nan')})
    assert w.w_file == 'latent.npz' and w.x == 0.0
    w.set_state({'w_file': 'x' * 10000})
    assert not w.load_w(w.w_file)


def test_session_with_a_loaded_latent_reloads_it_once_its_network_is_shown(tmp_path):
    """A session saved while a Load W latent was shown restores it (it used to keep only the path)."""
    ws = np.random.RandomState(1).randn(4, 8).astype(np.float32)
    np.save(tmp_path / 'w.npy', ws)
    saver = LatentWidget(_app(_net()))
    saver.set_state({'x': 3.0})
    assert saver.load_w(tmp_path / 'w.npy')
    state = saver.get_state()
    assert state['w_loaded'] is True and state['w_file'] == str(tmp_path / 'w.npy')
    saver.x = 4.0  # another seed: the file is no longer what is shown
    assert saver.get_state()['w_loaded'] is True and 'ws' not in _request(saver)
    assert saver.get_state()['w_loaded'] is False

    # The session is applied while its network loads (another one is on screen): the latent waits for it.
    pickle = types.SimpleNamespace(pending='net.pkl', is_loading=lambda: True)
    app = types.SimpleNamespace(view=FrameView(net=_net(num_ws=6)), font_size=14.0, pickle=pickle)
    w = LatentWidget(app)
    w.set_state(dict(reversed(list(state.items()))))  # the order of the keys does not matter
    assert w.loaded_ws is None and 'waiting' in w.w_status and w.get_state()['w_loaded'] is True
    w.on_result(RenderResult(stamp=1, net=_net(num_ws=6), source='old.pkl'))  # a frame of the old network
    assert w.loaded_ws is None and 'waiting' in w.w_status
    app.view = FrameView(net=_net())
    w.on_result(RenderResult(stamp=2, net=_net(), source='net.pkl'))  # the session's network is shown
    args = _request(w)
    np.testing.assert_array_equal(np.asarray(args['ws'], np.float32), ws)
    assert w.x == 3.0 and w.get_state()['w_loaded'] is True

    # A session without a loaded latent goes back to seeds; one without the key leaves the latent alone.
    w.set_state({'x': 3.0})
    assert 'ws' in _request(w)
    w.set_state({'x': 3.0, 'w_loaded': False})
    assert w.loaded_ws is None and 'ws' not in _request(w)
    # A missing file is reported, not raised.
    w.set_state({'w_file': str(tmp_path / 'gone.npz'), 'w_loaded': True})
    pickle.is_loading = lambda: False
    w.on_result(RenderResult(stamp=3, net=_net()))
    assert w.loaded_ws is None and 'not found' in w.w_status


def test_reset_and_old_sessions_without_w_loaded():
    w = LatentWidget(_app(_net()))
    w.set_state({'w_file': 'a.npz', 'w_loaded': 'yes'})  # typed values: truthy
    assert w.get_state()['w_loaded'] is True
    w.reset()
    assert w.get_state() == LatentWidget(None).get_state() and w.get_state()['w_loaded'] is False
    w.set_state({'x': 1.0, 'y': 2.0, 'anim': False, 'speed': 0.25, 'class_idx': -1, 'w_file': 'b.npz'})  # old file
    assert w.get_state()['w_loaded'] is False and w.w_status == ''
