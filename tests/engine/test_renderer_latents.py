"""Renderer with an explicit latent (RenderRequest.ws) and returned ws (return_ws): replaces the seed blend,
stylemix and truncation apply on top, wrong shapes name num_ws and w_dim."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from engine.protocol import RenderRequest
from engine.renderer import Renderer


@pytest.fixture(scope='module')
def net(tmp_path_factory):
    from training import networks_stylegan2

    torch.manual_seed(5)
    G = networks_stylegan2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8
    )
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([8]))
    path = tmp_path_factory.mktemp('lat') / 'sg2.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G}))
    return str(path), G.eval()


def _nested(a):
    return tuple(tuple(float(v) for v in row) for row in np.asarray(a))


def test_explicit_ws_replaces_seed_blend(net):
    pkl, G = net
    r = Renderer('cpu')
    seeded = r.render(RenderRequest(pkl=pkl, device='cpu', w0_seeds=((7, 1.0),), return_ws=True))
    assert seeded.error is None, seeded.error
    ws7 = np.asarray(seeded.ws, np.float32)
    assert ws7.shape == (G.num_ws, G.w_dim)
    # The same ws given explicitly, with other seeds in w0_seeds: identical image (the seeds are ignored).
    explicit = r.render(RenderRequest(pkl=pkl, device='cpu', w0_seeds=((1, 1.0),), ws=_nested(ws7)))
    assert explicit.error is None and np.array_equal(explicit.image, seeded.image)
    assert explicit.ws is None  # only when asked

    # Truncation and stylemix apply on top of the explicit latent.
    both = r.render(
        RenderRequest(pkl=pkl, device='cpu', ws=_nested(ws7), trunc_psi=0.5, stylemix_idx=(0,), stylemix_seed=3,
                      return_ws=True)
    )  # fmt: skip
    w_avg = G.mapping.w_avg.numpy()
    with torch.no_grad():
        ws3 = G.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, 8).astype(np.float32)), None)[0].numpy()
    expected = ws7.copy()
    expected[0] = ws3[0]
    expected = w_avg + 0.5 * (expected - w_avg)
    np.testing.assert_allclose(np.asarray(both.ws), expected, atol=1e-5)


def test_wrong_shape_names_num_ws_and_w_dim(net):
    pkl, G = net
    res = Renderer('cpu').render(RenderRequest(pkl=pkl, device='cpu', ws=_nested(np.zeros([3, 8]))))
    assert res.error is not None and 'num_ws=4' in res.error and 'w_dim=8' in res.error
    res = Renderer('cpu').render(RenderRequest(pkl=pkl, device='cpu', ws=_nested(np.full([4, 8], np.nan))))
    assert res.error is not None and 'finite' in res.error


def test_request_round_trips_through_dict_and_wire():
    from engine import wire

    req = RenderRequest(ws=_nested(np.arange(12).reshape(3, 4) / 7), return_ws=True)
    assert RenderRequest.from_dict(req.to_dict()) == req
    assert wire.request_from_wire(wire.request_to_wire(req)) == req
