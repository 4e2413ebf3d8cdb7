"""Keyframe timelines: z slerp, fractional truncation cutoff and stylemix weight (engine and renderer, against
hand-computed values), per-segment interpolation, frame sampling and the JSON round trip."""

from __future__ import annotations

import json
import math
import pathlib
import pickle

import numpy as np
import pytest
import torch

from engine.latents import slerp, z_from_seed
from engine.protocol import RenderRequest, clamp_request, request_errors
from engine.states import (
    KeyframeTimeline,
    expand_keyframes,
    interpolate_states,
    keyframes_from_doc,
    load_keyframes,
    load_timeline,
    make_keyframes_doc,
    slerp_allowed,
    write_json,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


# ---- slerp ------------------------------------------------------------------------------------------------------


def test_slerp_hand_values():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])  # 90 degrees apart: sin(omega) = 1
    np.testing.assert_allclose(slerp(a, b, 1 / 3), [2 * math.sin(math.pi / 3), 2 * math.sin(math.pi / 6)], atol=1e-15)
    np.testing.assert_allclose(slerp(a, b, 0.5), [math.sqrt(2), math.sqrt(2)], atol=1e-15)
    # 60 degrees apart, unit vectors: the midpoint is the unit vector at 30 degrees.
    c = np.array([math.cos(math.pi / 3), math.sin(math.pi / 3), 0.0])
    np.testing.assert_allclose(
        slerp([1.0, 0.0, 0.0], c, 0.5), [math.cos(math.pi / 6), math.sin(math.pi / 6), 0], atol=1e-15
    )
    # Ends are exact (bit for bit), parallel / antipodal vectors fall back to the lerp.
    za, zb = z_from_seed(1, 16)[0], z_from_seed(2, 16)[0]
    assert np.array_equal(slerp(za, zb, 0.0), za.astype(np.float64))
    assert np.array_equal(slerp(za, zb, 1.0), zb.astype(np.float64))
    np.testing.assert_allclose(slerp([1.0], [-3.0], 0.25), [0.0], atol=1e-15)
    np.testing.assert_allclose(slerp([1.0, 1.0], [2.0, 2.0], 0.5), [1.5, 1.5], atol=1e-15)
    with pytest.raises(ValueError, match='same shape'):
        slerp([1.0, 0.0], [1.0], 0.5)
    with pytest.raises(ValueError, match='non-zero'):
        slerp([0.0, 0.0], [1.0, 0.0], 0.5)


def test_slerp_of_two_seeds_matches_the_formula():
    za, zb = z_from_seed(3, 512)[0].astype(np.float64), z_from_seed(4, 512)[0].astype(np.float64)
    t = 0.3
    omega = math.acos(za @ zb / (np.linalg.norm(za) * np.linalg.norm(zb)))
    expected = math.sin((1 - t) * omega) / math.sin(omega) * za + math.sin(t * omega) / math.sin(omega) * zb
    np.testing.assert_allclose(slerp(za, zb, t), expected, rtol=0, atol=1e-12)
    # Equal norms stay equal along the arc (the lerp midpoint is ~1/sqrt(2) shorter for orthogonal z).
    ua, ub = za / np.linalg.norm(za), zb / np.linalg.norm(zb)
    for tt in (0.1, 0.5, 0.9):
        assert np.linalg.norm(slerp(ua, ub, tt)) == pytest.approx(1.0, abs=1e-12)


# ---- request fields: limits, errors, round trips --------------------------------------------------------------


def test_new_request_fields_are_validated_and_clamped():
    assert request_errors(RenderRequest(w0_seeds=((1, 0.25), (2, 0.75)), seed_blend='slerp_z')) == ()
    assert request_errors(RenderRequest(w0_seeds=((1, 1.0),), seed_blend='slerp_z')) == ()
    for seeds in (((1, 0.5), (2, 0.25)), ((1, 1.5), (2, -0.5)), ((1, 0.2), (2, 0.3), (3, 0.5)), ((1, 0.5),)):
        (err,) = request_errors(RenderRequest(w0_seeds=seeds, seed_blend='slerp_z'))
        assert "seed_blend 'slerp_z' needs one seed, or two seeds" in err and "use seed_blend 'w'" in err
    assert 'seed_blend must be one of' in request_errors(RenderRequest(seed_blend='lerp'))[0]

    req, notes = clamp_request(RenderRequest(stylemix_weight=1.5, trunc_cutoff=2.5))
    assert (
        req.stylemix_weight == 1.0
        and req.trunc_cutoff == 2.5
        and notes == ('stylemix_weight 1.5 is outside 0..1; clamped to 1',)
    )
    req, notes = clamp_request(RenderRequest(stylemix_weight=-3, trunc_cutoff=-0.5))
    assert req.stylemix_weight == 0.0 and req.trunc_cutoff == 0.0 and len(notes) == 2
    req, notes = clamp_request(RenderRequest(trunc_cutoff=7))
    assert req.trunc_cutoff == 7 and isinstance(req.trunc_cutoff, int) and notes == ()
    req, notes = clamp_request(RenderRequest(trunc_cutoff=10**12))
    assert req.trunc_cutoff == 2**31 - 1 and isinstance(req.trunc_cutoff, int) and len(notes) == 1
    assert any('stylemix_weight must be a finite' in e for e in request_errors(RenderRequest(stylemix_weight=math.nan)))
    assert any('trunc_cutoff must be' in e for e in request_errors(RenderRequest(trunc_cutoff=math.inf)))


def test_request_round_trips_and_old_files_load():
    from engine import wire

    req = RenderRequest(w0_seeds=((1, 0.4), (2, 0.6)), seed_blend='slerp_z', stylemix_weight=0.25, trunc_cutoff=2.5)
    assert RenderRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req
    assert wire.request_from_wire(json.loads(json.dumps(wire.request_to_wire(req)))) == req
    old = req.to_dict()
    for k in ('seed_blend', 'stylemix_weight'):
        del old[k]
    loaded = RenderRequest.from_dict(old)
    assert loaded.seed_blend == 'w' and loaded.stylemix_weight == 1.0
    # The example shipped before these fields existed still renders as a timeline.
    states, fps, _ = load_timeline(REPO / 'docs' / 'examples' / 'keyframes.json')
    assert len(states) > 2 and all(s.seed_blend == 'w' and s.stylemix_weight == 1.0 for s in states)


# ---- renderer ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def net(tmp_path_factory):
    from training import networks_stylegan2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        G = networks_stylegan2.Generator(
            z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8
        ).eval()
        with torch.no_grad():
            G.mapping.w_avg.copy_(torch.randn([8]))
    path = tmp_path_factory.mktemp('kf') / 'sg2.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G}))
    return str(path), G


@pytest.fixture(scope='module')
def renderer():
    from engine.renderer import Renderer

    return Renderer('cpu')


def _ws(res) -> np.ndarray:
    assert res.error is None, res.error
    return np.asarray(res.ws, np.float64)


def _map(G, z, c=None) -> np.ndarray:
    with torch.no_grad():
        return G.mapping(torch.from_numpy(np.asarray(z, np.float32)[None]), c, truncation_psi=1)[0].double().numpy()


def test_renderer_slerp_z_maps_the_slerped_z(net, renderer):
    pkl, G = net
    t = 0.3
    req = RenderRequest(pkl=pkl, device='cpu', w0_seeds=((5, 1 - t), (9, t)), seed_blend='slerp_z', return_ws=True)
    res = renderer.render(req)
    z = slerp(z_from_seed(5, 8)[0], z_from_seed(9, 8)[0], t).astype(np.float32)
    expected = _map(G, z)
    np.testing.assert_allclose(_ws(res), expected, atol=1e-6)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(expected.astype(np.float32))[None], noise_mode='const')[0]
    img_u8 = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(res.image.astype(int) - img_u8.astype(int)).max() <= 1
    # Not the W blend of the same weights (different path), and one seed is the seed itself.
    w_blend = _ws(renderer.render(req.replace(seed_blend='w')))
    assert np.abs(w_blend - expected).max() > 1e-3
    one = renderer.render(req.replace(w0_seeds=((5, 1.0),)))
    assert np.array_equal(_ws(one), _ws(renderer.render(req.replace(w0_seeds=((5, 1.0),), seed_blend='w'))))
    bad = renderer.render(req.replace(w0_seeds=((5, 0.5), (9, 0.2))))
    assert bad.error is not None and 'slerp_z' in bad.error


def test_renderer_stylemix_weight_and_fractional_cutoff(net, renderer):
    pkl, G = net
    w_avg = G.mapping.w_avg.double().numpy()
    base = RenderRequest(pkl=pkl, device='cpu', w0_seeds=((2, 1.0),), return_ws=True)
    w2 = _map(G, z_from_seed(2, 8)[0])
    w6 = _map(G, z_from_seed(6, 8)[0])
    mixed = _ws(renderer.render(base.replace(stylemix_idx=(1, 3), stylemix_seed=6, stylemix_weight=0.25)))
    expected = w2.copy()
    expected[[1, 3]] = 0.75 * w2[[1, 3]] + 0.25 * w6[[1, 3]]
    np.testing.assert_allclose(mixed, expected, atol=1e-6)
    # Weight 1 replaces (the reference's stylemix), weight 0 is no mixing, both bit for bit.
    full = renderer.render(base.replace(stylemix_idx=(1, 3), stylemix_seed=6))
    expected[[1, 3]] = w6[[1, 3]]
    np.testing.assert_allclose(_ws(full), expected, atol=1e-6)
    none = renderer.render(base.replace(stylemix_idx=(1, 3), stylemix_seed=6, stylemix_weight=0.0))
    assert np.array_equal(none.image, renderer.render(base).image)

    # Fractional cutoff 1.5 with psi 0.5: w0 truncated fully, w1 by half (psi 0.75), w2.. untouched.
    cut = _ws(renderer.render(base.replace(trunc_psi=0.5, trunc_cutoff=1.5)))
    expected = w2.copy()
    expected[0] = w_avg + 0.5 * (w2[0] - w_avg)
    expected[1] = w_avg + 0.75 * (w2[1] - w_avg)
    np.testing.assert_allclose(cut, expected, atol=1e-6)
    # The lab's seed latents (Average N seeds) use the same fractional truncation.
    from engine.lab import seed_latents

    with torch.no_grad():
        lab_ws = seed_latents(G, [2], base.replace(trunc_psi=0.5, trunc_cutoff=1.5), torch.device('cpu'))
    np.testing.assert_allclose(lab_ws[0].double().numpy(), expected, atol=1e-6)
    int_cut = renderer.render(base.replace(trunc_psi=0.5, trunc_cutoff=2))
    float_cut = renderer.render(base.replace(trunc_psi=0.5, trunc_cutoff=2.0))
    assert np.array_equal(int_cut.image, float_cut.image)


# ---- interpolation ----------------------------------------------------------------------------------------------


def test_interpolate_slerp_cutoff_and_stylemix_by_hand():
    a = RenderRequest(w0_seeds=((1, 1.0),), trunc_cutoff=2, stylemix_idx=(0, 1), stylemix_seed=5)
    b = RenderRequest(
        w0_seeds=((8, 1.0),), trunc_cutoff=None, stylemix_idx=(1, 0), stylemix_seed=5, stylemix_weight=0.5
    )
    m = interpolate_states(a, b, 0.25, interp='slerp_z', num_ws=10)
    assert m.w0_seeds == ((1, 0.75), (8, 0.25)) and m.seed_blend == 'slerp_z'
    assert m.trunc_cutoff == pytest.approx(0.75 * 2 + 0.25 * 10)
    assert m.stylemix_weight == pytest.approx(0.875) and m.stylemix_idx == (0, 1)
    assert interpolate_states(a, b, 0.25).trunc_cutoff == 2  # num_ws unknown: None switches at the keyframe
    assert interpolate_states(a, b, 0.25).w0_seeds == ((1, 0.75), (8, 0.25))
    assert interpolate_states(a, b, 0.25).seed_blend == 'w'
    assert interpolate_states(a, a.replace(trunc_cutoff=4), 0.5).trunc_cutoff == pytest.approx(3.0)
    # Stylemix fades in from a keyframe without mixing, and out toward one.
    plain = RenderRequest(w0_seeds=((1, 1.0),))
    fade_in = interpolate_states(plain, b, 0.5)
    assert fade_in.stylemix_idx == (1, 0) and fade_in.stylemix_seed == 5 and fade_in.stylemix_weight == 0.25
    fade_out = interpolate_states(a, plain, 0.75)
    assert fade_out.stylemix_idx == (0, 1) and fade_out.stylemix_weight == pytest.approx(0.25)
    other = interpolate_states(a, b.replace(stylemix_seed=6), 0.5)  # another seed: switches at the keyframe
    assert other.stylemix_seed == 5 and other.stylemix_weight == 1.0
    # Same seed on both ends: no blend needed.
    assert interpolate_states(a, a.replace(trunc_psi=0.5), 0.5, interp='slerp_z').w0_seeds == ((1, 1.0),)
    # Refusals.
    frac = RenderRequest(w0_seeds=((1, 0.5), (2, 0.5)))
    assert not slerp_allowed(frac, b) and slerp_allowed(a, b)
    with pytest.raises(ValueError, match='one seed each'):
        interpolate_states(frac, b, 0.5, interp='slerp_z')
    with pytest.raises(ValueError, match='one seed each'):
        interpolate_states(frac, b, 0.0, interp='slerp_z')
    with pytest.raises(ValueError, match='interp must be'):
        interpolate_states(a, b, 0.5, interp='cubic')
    with pytest.raises(ValueError, match='blended in W'):
        interpolate_states(m, b, 0.5)


def test_timeline_frames_equal_expand_and_wrap():
    a = RenderRequest(w0_seeds=((1, 1.0),), trunc_psi=1.0)
    b = RenderRequest(w0_seeds=((2, 1.0),), trunc_psi=0.0)
    c = RenderRequest(w0_seeds=((3, 1.0),), trunc_psi=0.5)
    tl = KeyframeTimeline((a, b, c), (0.5, 0.25, 0.75), fps=4, loop=True, interps=('slerp_z', 'w', 'slerp_z'))
    assert tl.segment_frames == (2, 1, 3) and tl.num_frames == 6 and tl.keyframe_frames() == (0, 2, 3)
    frames = tl.expand()
    assert frames == expand_keyframes([a, b, c], [0.5, 0.25, 0.75], 4, True, interps=['slerp_z', 'w', 'slerp_z'])
    assert frames[1].w0_seeds == ((1, 0.5), (2, 0.5)) and frames[1].seed_blend == 'slerp_z'
    assert frames[2] == b and frames[3] == c
    (s3, w3), (s1, w1) = frames[4].w0_seeds  # frame 1 of the 3-frame segment c -> a
    assert (
        (s3, s1) == (3, 1) and (w3, w1) == pytest.approx((2 / 3, 1 / 3)) and frames[4].trunc_psi == pytest.approx(2 / 3)
    )
    assert tl.frame_index(0.0) == 0 and tl.frame_index(0.49) == 1 and tl.frame_index(1.5) == 0  # 6 frames = 1.5 s
    assert tl.frame_index(-0.25) == 5 and tl.duration_sec == 1.5
    open_tl = KeyframeTimeline((a, b), (0.5,), fps=4)
    assert open_tl.num_frames == 3 and open_tl.frame_index(99) == 2 and open_tl.frame(2) == b
    with pytest.raises(ValueError, match='segment 0'):
        KeyframeTimeline((RenderRequest(w0_seeds=((1, 0.5), (2, 0.5))), b), (1.0,), interps=('slerp_z',))
    with pytest.raises(ValueError, match='interpolations'):
        KeyframeTimeline((a, b), (1.0,), interps=('w', 'w'))


def test_keyframe_doc_round_trip_and_bad_files(tmp_path):
    a = RenderRequest(w0_seeds=((1, 1.0),), trunc_cutoff=3)
    b = RenderRequest(w0_seeds=((2, 1.0),), stylemix_idx=(0,), stylemix_seed=4, stylemix_weight=0.5)
    tl = KeyframeTimeline((a, b), (0.5,), fps=8, interps=('slerp_z',), num_ws=6)
    extras = [{'widgets': {'latent': {'x': 1.0}}, 'thumbnail_png': 'AAAA'}, {'widgets': {'latent': {'x': 2.0}}}]
    doc = make_keyframes_doc(tl, network={'pkl': None, 'num_ws': 6}, extras=extras, durations=[0.5, 2.0],
                             interps=['slerp_z', 'w'])  # fmt: skip
    path = write_json(tmp_path / 'kf.json', doc)
    back = load_keyframes(path)
    assert back.timeline == tl and back.extras == tuple(extras) and back.network == {'pkl': None, 'num_ws': 6}
    assert back.durations == (0.5, 2.0) and back.interps == ('slerp_z', 'w')
    states, fps, view = load_timeline(path)
    assert states == tl.expand() and fps == 8 and view == 'image' and len(states) == 5
    assert states[2].trunc_cutoff == pytest.approx(0.5 * 3 + 0.5 * 6)  # None counts as num_ws=6 from the file

    def broken(**changes) -> str:
        d = json.loads(json.dumps(doc))
        for k, v in changes.items():
            if k.startswith('kf0_'):
                d['keyframes'][0][k[4:]] = v
            else:
                d[k] = v
        with pytest.raises(ValueError) as e:
            keyframes_from_doc(d, 'kf.json')
        return str(e.value)

    assert 'interp' in broken(kf0_interp='cubic')
    assert 'duration must be' in broken(kf0_duration=-1)
    assert 'loop' in broken(loop='yes')
    assert 'one seed each' in broken(kf0_state={'w0_seeds': [[1, 0.5], [2, 0.5]]})
    assert 'keyframes' in broken(keyframes={})
    assert 'kf.json keyframe 0: clamp_value(): trunc_psi must be a number' in broken(kf0_state={'trunc_psi': 'high'})
    assert 'keyframe 0: trunc_psi 3' in broken(kf0_state={'trunc_psi': 3})
    (tmp_path / 'states.json').write_text(json.dumps({'format': 'sg3viz-timeline', 'states': [a.to_dict()]}))
    with pytest.raises(ValueError, match='not a keyframe timeline'):
        load_keyframes(tmp_path / 'states.json')
