"""engine.renderer: request -> result for tiny SG2/SG3 networks (CPU), latents, views, transforms, errors."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest
import torch

from engine.latents import class_from_seed, make_transform, z_from_seed
from engine.protocol import OUTPUT_LAYER, RenderRequest, RenderResult, fft_colormap
from engine.renderer import Renderer

RES = 16


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """Tiny networks render ~10x faster with one thread on a busy shared machine."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def _nudge(G: torch.nn.Module, seed: int) -> None:
    """Moves w_avg and SG2 noise strengths away from their init values (0) so that they matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(G.mapping.w_avg.shape, generator=gen))
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.fill_(0.5)


def _save(G: torch.nn.Module, path) -> str:
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    return str(path)


@pytest.fixture(scope='module')
def nets(tmp_path_factory) -> dict[str, str]:
    """Pickles of tiny random networks: 'sg3' (unconditional), 'sg2' (conditional, c_dim=4), 'sg2_grey'."""
    from training import networks_stylegan2 as sg2
    from training import networks_stylegan3 as sg3

    d = tmp_path_factory.mktemp('nets')
    small = dict(
        z_dim=16, w_dim=16, img_resolution=RES, channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G3 = sg3.Generator(c_dim=0, img_channels=3, num_layers=4, **small).eval()
        G2 = sg2.Generator(c_dim=4, img_channels=3, **small).eval()
        G1 = sg2.Generator(c_dim=0, img_channels=1, **small).eval()
    for i, G in enumerate((G3, G2, G1)):
        _nudge(G, i)
    bad = d / 'not_a_pickle.pkl'
    bad.write_bytes(b'this is not a pickle at all\n' * 10)
    unsafe = d / 'unsafe.pkl'
    unsafe.write_bytes(pickle.dumps({'G_ema': os.getcwd}))  # References a global safe mode refuses.
    return dict(
        sg3=_save(G3, d / 'sg3.pkl'),
        sg2=_save(G2, d / 'sg2.pkl'),
        sg2_grey=_save(G1, d / 'sg2_grey.pkl'),
        bad=str(bad),
        unsafe=str(unsafe),
        missing=str(d / 'missing.pkl'),
    )


@pytest.fixture(scope='module')
def renderer() -> Renderer:
    return Renderer('cpu')


def _G(renderer: Renderer, pkl: str) -> torch.nn.Module:
    """The renderer's cached copy of a network (after a render of it)."""
    return renderer.net_cache.get(pkl, False, 'cpu')[0].G


def _ok(res: RenderResult) -> RenderResult:
    assert res.error is None, f'{res.error}\n{res.error_detail}'
    return res


def _to_u8(img: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] in [-1, 1] -> uint8 [H, W, 3] the way the renderer shows the final image."""
    u8 = (img[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return u8.expand(3, -1, -1).permute(1, 2, 0).numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()


def _capture_ws(G: torch.nn.Module) -> tuple[list, object]:
    seen: list = []
    handle = G.synthesis.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    return seen, handle


# ------------------------------------------------------------------------------------------------------------------
# Basics.


def test_sg3_result(renderer, nets):
    res = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], fft_show=True, stamp=7)))
    assert res.stamp == 7 and res.device == 'cpu' and res.layer_name == OUTPUT_LAYER
    assert res.image.shape == (RES, RES, 3) and res.image.dtype == np.uint8
    assert res.fft.shape == (RES, RES, 3) and res.fft.dtype == np.uint8
    names = [l.name for l in res.layers]
    assert names[0] == 'input' and names[-1] == OUTPUT_LAYER and all(n.startswith('L') for n in names[1:-1])
    assert names[-2].endswith(f'_{RES}_3') and res.layers[-1].shape == (1, 3, RES, RES)
    assert all(len(l.shape) == 4 and l.dtype == 'float32' for l in res.layers)
    assert set(res.stats) == {'mean', 'std', 'max'} and all(len(v) == 2 for v in res.stats.values())
    assert res.stats['mean'][0] == pytest.approx(res.stats['mean'][1])  # 3 channels shown = all channels
    net = res.net
    assert net.arch == 'stylegan3' and net.has_input_transform and not net.has_noise
    assert (net.img_resolution, net.img_channels, net.z_dim, net.c_dim, net.num_ws) == (RES, 3, 16, 0, 6)
    assert net.pkl == nets['sg3'] and res.render_ms > 0 and isinstance(res.impl, dict)
    assert (res.base_channel, res.sel_channels) == (0, 3)
    assert _ok(renderer.render(RenderRequest(pkl=nets['sg3']))).fft is None


def test_sg2_result_and_classes(renderer, nets):
    res = _ok(renderer.render(RenderRequest(pkl=nets['sg2'], w0_seeds=((3, 1.0),))))
    names = [l.name for l in res.layers]
    assert names == ['b4', 'b4:1', 'b8', 'b8:1', 'b16', 'b16:1', OUTPUT_LAYER]
    assert res.net.arch == 'stylegan2' and res.net.has_noise and res.net.c_dim == 4
    assert res.image.shape == (RES, RES, 3)
    # class_idx None: the class is drawn from the seed, as the reference GUI does.
    drawn = class_from_seed(3, 4, 16)
    same = _ok(renderer.render(RenderRequest(pkl=nets['sg2'], w0_seeds=((3, 1.0),), class_idx=drawn)))
    other = _ok(renderer.render(RenderRequest(pkl=nets['sg2'], w0_seeds=((3, 1.0),), class_idx=(drawn + 1) % 4)))
    np.testing.assert_array_equal(res.image, same.image)
    assert not np.array_equal(res.image, other.image)
    bad = renderer.render(RenderRequest(pkl=nets['sg2'], class_idx=4))
    assert bad.image is None and 'class_idx must be in 0..3' in bad.error


def test_final_image_matches_generator(renderer, nets):
    req = RenderRequest(pkl=nets['sg2'], w0_seeds=((5, 1.0),), trunc_psi=0.7, trunc_cutoff=3, class_idx=2)
    res = _ok(renderer.render(req))
    G = _G(renderer, nets['sg2'])
    c = torch.zeros([1, 4])
    c[0, 2] = 1
    with torch.no_grad():
        img = G(torch.from_numpy(z_from_seed(5, 16)), c, truncation_psi=0.7, truncation_cutoff=3, noise_mode='const')
    np.testing.assert_array_equal(res.image, _to_u8(img))


def test_greyscale_net(renderer, nets):
    res = _ok(renderer.render(RenderRequest(pkl=nets['sg2_grey'])))
    assert res.image.shape == (RES, RES, 3) and res.sel_channels == 1
    assert (res.image[..., 0] == res.image[..., 1]).all() and (res.image[..., 0] == res.image[..., 2]).all()


# ------------------------------------------------------------------------------------------------------------------
# Latents.


def test_w0_seeds_blend_in_w(renderer, nets, close_report):
    req = RenderRequest(pkl=nets['sg3'], w0_seeds=((1, 0.25), (2, 0.75)))
    _ok(renderer.render(req))
    G = _G(renderer, nets['sg3'])
    seen, handle = _capture_ws(G)
    try:
        _ok(renderer.render(req.replace(trunc_psi=0.5)))
    finally:
        handle.remove()
    with torch.no_grad():
        w1, w2 = (G.mapping(torch.from_numpy(z_from_seed(s, 16)), torch.zeros([1, 0])) for s in (1, 2))
        w_avg = G.mapping.w_avg
        expected = w_avg + 0.5 * (0.25 * (w1 - w_avg) + 0.75 * (w2 - w_avg))
    close_report(seen[0], expected, atol=1e-5, name='ws')


def test_truncation_psi0_gives_w_avg_image(renderer, nets):
    images = [
        _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((s, 1.0),), trunc_psi=0))).image
        for s in (0, 1, 99)
    ]
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0], images[2])
    G = _G(renderer, nets['sg3'])
    with torch.no_grad():
        img = G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode='const')
    np.testing.assert_array_equal(images[0], _to_u8(img))
    # cutoff 0 truncates nothing.
    full = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((1, 1.0),))))
    cut0 = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((1, 1.0),), trunc_psi=0, trunc_cutoff=0)))
    np.testing.assert_array_equal(full.image, cut0.image)


def test_stylemix_replaces_only_chosen_ws(renderer, nets, close_report):
    base = RenderRequest(pkl=nets['sg3'], w0_seeds=((1, 1.0),), stylemix_seed=8)
    _ok(renderer.render(base))
    G = _G(renderer, nets['sg3'])
    seen, handle = _capture_ws(G)
    try:
        images = [
            _ok(renderer.render(base.replace(stylemix_idx=idx))).image for idx in ((), (2, 4, 99), tuple(range(6)))
        ]
        other = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((8, 1.0),)))).image
    finally:
        handle.remove()
    ws_base, ws_mix, ws_all, ws_other = (w[0] for w in seen)  # [num_ws, w_dim] each
    mixed = torch.zeros(6, dtype=torch.bool)
    mixed[[2, 4]] = True
    close_report(ws_mix[~mixed], ws_base[~mixed], atol=1e-6, name='unmixed ws')
    close_report(ws_mix[mixed], ws_other[mixed], atol=1e-6, name='mixed ws')
    assert not torch.allclose(ws_base[mixed], ws_other[mixed])
    assert not np.array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[2], other)  # every ws mixed = the second seed's image


def test_mapping_cached_per_seed(renderer, nets):
    _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((11, 1.0),))))
    G = _G(renderer, nets['sg3'])
    calls: list = []
    handle = G.mapping.register_forward_hook(lambda *_: calls.append(1))
    try:
        _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((11, 1.0),), trunc_psi=0.3, stylemix_idx=(0,))))
        assert calls == []
        _ok(renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((11, 0.5), (12, 0.5)))))
        assert calls == [1]
    finally:
        handle.remove()


def test_noise_modes(renderer, nets):
    base = RenderRequest(pkl=nets['sg2'], w0_seeds=((4, 1.0),))
    state = torch.get_rng_state()
    r1, r1b, r2 = (_ok(renderer.render(base.replace(noise_mode='random', noise_seed=s))).image for s in (1, 1, 2))
    assert torch.equal(state, torch.get_rng_state()), 'render() must not change the global RNG state'
    const = _ok(renderer.render(base)).image
    none = _ok(renderer.render(base.replace(noise_mode='none'))).image
    np.testing.assert_array_equal(r1, r1b)
    assert not np.array_equal(r1, r2) and not np.array_equal(const, none) and not np.array_equal(r1, const)


# ------------------------------------------------------------------------------------------------------------------
# Layer view, FFT view.


def test_layer_view_channels_and_stats(renderer, nets):
    _ok(renderer.render(RenderRequest(pkl=nets['sg3'])))  # Layer list known -> early exit below.
    G = _G(renderer, nets['sg3'])
    last = list(G.synthesis.children())[-1]
    calls: list = []
    handle = last.register_forward_hook(lambda *_: calls.append(1))
    try:
        res = _ok(
            renderer.render(RenderRequest(pkl=nets['sg3'], layer_name='L0_36_16', base_channel=100, fft_show=True))
        )
        grey = _ok(
            renderer.render(RenderRequest(pkl=nets['sg3'], layer_name='L0_36_16', sel_channels=1, base_channel=2))
        )
        fft_sel = _ok(
            renderer.render(RenderRequest(pkl=nets['sg3'], layer_name='L0_36_16', fft_show=True, fft_all=False))
        )
    finally:
        handle.remove()
    assert calls == [], 'synthesis should stop right after the selected layer'
    assert res.layer_name == 'L0_36_16' and [l.name for l in res.layers][-1] == OUTPUT_LAYER  # full list
    assert res.image.shape == (36, 36, 3) and res.fft.shape == (36, 36, 3)
    assert (res.base_channel, res.sel_channels) == (13, 3)  # clamped to 16 - 3
    assert res.stats['mean'][0] != pytest.approx(res.stats['mean'][1])
    assert (grey.base_channel, grey.sel_channels) == (2, 1)
    assert (grey.image[..., 0] == grey.image[..., 2]).all()
    assert not np.array_equal(res.fft, fft_sel.fft)
    unknown = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], layer_name='b4')))  # another net's layer
    assert unknown.layer_name == OUTPUT_LAYER and unknown.image.shape == (RES, RES, 3)


def test_layer_view_first_render(nets):
    """A layer selected before the layer list is known: full run, then the layer is shown."""
    res = _ok(Renderer('cpu').render(RenderRequest(pkl=nets['sg2'], layer_name='b8:1')))
    assert res.layer_name == 'b8:1' and res.image.shape == (8, 8, 3) and len(res.layers) == 7


def _layer_output(renderer: Renderer, req: RenderRequest) -> tuple[RenderResult, torch.Tensor]:
    """Renders req and returns the raw output [C, H, W] of its layer, captured independently by a forward hook."""
    _ok(renderer.render(req.replace(layer_name=None)))
    G = _G(renderer, req.pkl)
    seen: list = []
    handle = getattr(G.synthesis, req.layer_name).register_forward_hook(lambda _m, _i, o: seen.append(o[0].clone()))
    try:
        res = _ok(renderer.render(req))
    finally:
        handle.remove()
    return res, seen[-1].to(torch.float32)


def _u8(v: torch.Tensor) -> np.ndarray:
    return (v * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def test_brightness_normalize_and_centre_views(renderer, nets):
    """Normalize divides each shown channel by its max |value| (the reference view); Centre subtracts the mean
    first. The stats' third row is the max |value| (inf-norm) over all / the shown channels."""
    base = RenderRequest(pkl=nets['sg3'], layer_name='L3_16_16', sel_channels=3, base_channel=4)
    plain, x = _layer_output(renderer, base)
    xs = x[4:7]  # [3, H, W] shown channels
    np.testing.assert_array_equal(plain.image, _u8(xs).transpose(1, 2, 0))
    loud = _ok(renderer.render(base.replace(img_scale_db=20))).image
    np.testing.assert_array_equal(loud, _u8(xs * 10).transpose(1, 2, 0))
    norm = _ok(renderer.render(base.replace(img_normalize=True))).image
    expected = xs / xs.abs().amax(dim=[1, 2], keepdim=True)
    assert np.abs(norm.astype(np.int32) - _u8(expected).transpose(1, 2, 0)).max() <= 1  # float rounding
    assert not np.array_equal(norm, _u8(expected - expected.mean(dim=[1, 2], keepdim=True)).transpose(1, 2, 0))
    centred = _ok(renderer.render(base.replace(img_normalize=True, img_center=True))).image
    c = xs - xs.mean(dim=[1, 2], keepdim=True)
    expected_c = c / c.abs().amax(dim=[1, 2], keepdim=True)
    assert np.abs(centred.astype(np.int32) - _u8(expected_c).transpose(1, 2, 0)).max() <= 1
    assert plain.stats['mean'] == (pytest.approx(float(x.mean())), pytest.approx(float(xs.mean())))
    assert plain.stats['max'] == (pytest.approx(float(x.abs().max())), pytest.approx(float(xs.abs().max())))
    _, y = _layer_output(renderer, base.replace(layer_name='L4_16_3'))
    ch = [c for c in range(3) if float(y[c].abs().max()) > float(y[c].max()) + 1e-3]  # Negative extremes.
    assert ch, 'the test needs a channel whose max |value| is not its max value'
    grey = _ok(renderer.render(base.replace(layer_name='L4_16_3', sel_channels=1, base_channel=ch[0])))
    assert grey.stats['max'] == (pytest.approx(float(y.abs().max())), pytest.approx(float(y[ch[0]].abs().max())))


def test_fft_colormap_and_view(renderer, nets):
    lut = fft_colormap()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    res = _ok(renderer.render(RenderRequest(pkl=nets['sg3'], fft_show=True, fft_range_db=30)))
    colours = {tuple(c) for c in lut}
    assert all(tuple(c) in colours for c in res.fft.reshape(-1, 3))


# ------------------------------------------------------------------------------------------------------------------
# Input transform.


def test_translate_and_untransform(renderer, nets, close_report):
    base = RenderRequest(pkl=nets['sg3'], w0_seeds=((6, 1.0),))
    orig = _ok(renderer.render(base)).image.astype(np.int32)
    m = make_transform((2 / RES, -1 / RES), 0)
    req = base.replace(input_transform=tuple(tuple(float(v) for v in row) for row in m))
    moved = _ok(renderer.render(req)).image.astype(np.int32)
    back = _ok(renderer.render(req.replace(untransform=True))).image.astype(np.int32)
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(moved - orig)[inner].mean() > 2  # the content moved ...
    assert np.abs(moved - np.roll(orig, (-1, 2), axis=(0, 1)))[inner].max() <= 2  # ... by (+2, -1) pixels
    assert np.abs(back - orig)[inner].max() <= 2
    G = _G(renderer, nets['sg3'])
    close_report(G.synthesis.input.transform, torch.eye(3), atol=0, name='transform')  # restored after the render


def test_untransform_undoes_a_rotation_of_the_input_layer(renderer, nets):
    """The SG3 input layer samples its Fourier features at the transformed coordinates, so it is exactly
    equivariant: untransforming a rotated + translated render must give back the untransformed layer (up to the
    band limit and the layer's margins), and the unrotated content must not line up."""
    base = RenderRequest(pkl=nets['sg3'], layer_name='input', sel_channels=3, base_channel=0)
    orig = _ok(renderer.render(base)).image.astype(np.int32)
    m = make_transform((0.05, -0.03), 25.0)
    req = base.replace(input_transform=tuple(tuple(float(v) for v in row) for row in m))
    moved = _ok(renderer.render(req)).image.astype(np.int32)
    back = _ok(renderer.render(req.replace(untransform=True))).image.astype(np.int32)
    h = orig.shape[0]
    inner = (slice(h // 4, -h // 4), slice(h // 4, -h // 4))  # Away from the zero-filled corners.
    assert np.abs(moved - orig)[inner].mean() > 10
    assert np.abs(back - orig)[inner].mean() < 1.0  # Mean error in uint8 levels (measured ~0.2).
    # Sampling in the opposite direction would rotate by twice the angle instead of undoing it.
    assert np.abs(back - orig)[inner].mean() < 0.05 * np.abs(moved - orig)[inner].mean()


# ------------------------------------------------------------------------------------------------------------------
# Errors.


def test_load_errors_keep_previous_net(renderer, nets):
    good = _ok(renderer.render(RenderRequest(pkl=nets['sg3'])))
    for key, text in (('missing', 'missing.pkl'), ('bad', '')):
        res = renderer.render(RenderRequest(pkl=nets[key]))
        assert isinstance(res.error, str) and res.error and text in res.error
        assert res.image is None and res.net is None
        again = _ok(renderer.render(RenderRequest(pkl=nets['sg3'])))
        np.testing.assert_array_equal(again.image, good.image)


def test_unsafe_pickle_refused(renderer, nets):
    res = renderer.render(RenderRequest(pkl=nets['unsafe']))
    assert res.error and res.refused_names and any('getcwd' in n for n in res.refused_names)
    trusted = renderer.render(RenderRequest(pkl=nets['unsafe'], trust=True))
    assert trusted.error and not trusted.refused_names  # trusted: loads, but holds no network


def test_request_errors(renderer, nets):
    assert 'w0_seeds' in renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=())).error
    assert 'noise_mode' in renderer.render(RenderRequest(pkl=nets['sg3'], noise_mode='loud')).error
    assert 'seed' in renderer.render(RenderRequest(pkl=nets['sg3'], w0_seeds=((-1, 1.0),))).error
    assert 'input_transform' in renderer.render(RenderRequest(pkl=nets['sg3'], input_transform=((0.0,) * 3,) * 3)).error
    assert renderer.render(RenderRequest(pkl=nets['sg3'], device='nonsense')).error


def test_exception_inside_synthesis(renderer, nets, close_report, monkeypatch):
    req = RenderRequest(pkl=nets['sg3'], input_transform=tuple(map(tuple, make_transform((0.1, 0), 10))))
    _ok(renderer.render(req))
    G = _G(renderer, nets['sg3'])
    layer = list(G.synthesis.children())[2]

    def boom(*args, **kwargs):
        raise RuntimeError('boom in layer')

    monkeypatch.setattr(layer, 'forward', boom)
    res = renderer.render(req)
    assert 'RuntimeError' in res.error and 'boom in layer' in res.error and 'Traceback' in res.error_detail
    ok = _ok(renderer.render(req.replace(layer_name='input')))  # stops before the broken layer
    assert res.net == ok.net and res.net.pkl == nets['sg3']  # a loaded network: not a load failure
    assert res.layers == ok.layers and res.layers[-1].name == OUTPUT_LAYER and res.image is None
    close_report(G.synthesis.input.transform, torch.eye(3), atol=0, name='transform')  # restored despite the error
    monkeypatch.undo()
    _ok(renderer.render(req))


def test_request_error_after_load_carries_net(renderer, nets):
    ok = _ok(renderer.render(RenderRequest(pkl=nets['sg2'])))
    bad = renderer.render(RenderRequest(pkl=nets['sg2'], class_idx=9))
    assert bad.error and bad.image is None and bad.net == ok.net and bad.layers == ok.layers


# ------------------------------------------------------------------------------------------------------------------
# Devices, detached loading.


def test_available_devices_cached(nets, monkeypatch):
    from engine import devices

    r = Renderer('cpu')
    expected = tuple(devices.available_devices())
    assert expected[-1] == 'cpu'
    first = _ok(r.render(RenderRequest(pkl=nets['sg3'])))
    monkeypatch.setattr(devices, 'available_devices', lambda: ['cuda', 'cpu'])  # asked once: not seen
    results = [
        first,
        r.render(RenderRequest(pkl=nets['missing'])),  # load error
        r.render(RenderRequest(pkl=nets['sg3'], device='mps')),  # device error
    ]
    assert results[1].error and results[2].error
    assert all(res.available_devices == expected for res in results)


def test_try_render_waits_for_background_load(nets):
    """try_render() answers None while the network loads in the cache's thread, then renders it; results name their
    source and whether its load failed."""
    r = Renderer('cpu')
    req = RenderRequest(pkl=nets['sg3'])
    first = r.try_render(req)
    results = [first]
    while results[-1] is None:
        time.sleep(0.01)
        results.append(r.try_render(req))
    res = _ok(results[-1])
    assert first is None and res.source == nets['sg3'] and not res.load_failed and res.load_ms > 0
    assert _ok(r.try_render(req.replace(w0_seeds=((1, 1.0),)))).load_ms == 0  # cached: answered at once
    bad = r.render(RenderRequest(pkl=nets['bad']))
    assert bad.load_failed and bad.source == nets['bad'] and bad.net is None and bad.image is None
    after_load = r.render(RenderRequest(pkl=nets['sg3'], class_idx=5, w0_seeds=()))
    assert after_load.error and not after_load.load_failed and after_load.net is not None
