"""Projector (engine.projector and projector.py): schedules, regulariser, targets, convergence, VGG16 path, CLI."""

from __future__ import annotations

import math
import pathlib
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from engine import projector as P
from engine.loading import LoadError

RES = 16
SMALL = dict(
    z_dim=16, w_dim=16, img_resolution=RES, channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks run much faster with one thread on a busy shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def nets():
    from training import networks_stylegan2 as sg2
    from training import networks_stylegan3 as sg3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G3 = sg3.Generator(c_dim=0, img_channels=3, num_layers=4, **SMALL).eval()
        G2 = sg2.Generator(c_dim=0, img_channels=3, **SMALL).eval()
        torch.manual_seed(5)
        G3b = sg3.Generator(c_dim=0, img_channels=3, num_layers=4, **SMALL).eval()
        G1 = sg2.Generator(c_dim=0, img_channels=1, **SMALL).eval()
    return dict(sg3=G3, sg2=G2, sg3b=G3b, grey=G1)


def _target_of(G, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        img = G.synthesis(G.mapping(torch.randn([1, G.z_dim], generator=g), None), noise_mode='const')
    return ((img[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _psnr_db(img: torch.Tensor, target_u8: torch.Tensor) -> float:
    mse = ((img[0] - (target_u8.float() / 127.5 - 1)) ** 2).mean()
    return float(10 * torch.log10(4 / mse))


# ----------------------------------------------------------------------------
# Schedules and regulariser against hand-computed values.


def test_learning_rate_schedule_hand_computed():
    cfg = P.ProjectorConfig()
    assert P.learning_rate(0.0, cfg) == 0.0
    assert P.learning_rate(0.025, cfg) == pytest.approx(0.05)  # half-way up the 5% ramp-up
    assert P.learning_rate(0.05, cfg) == pytest.approx(0.1)
    assert P.learning_rate(0.5, cfg) == pytest.approx(0.1)  # plateau
    assert P.learning_rate(0.75, cfg) == pytest.approx(0.1)  # the ramp-down starts at 75%
    # t = 0.9: (1 - 0.9) / 0.25 = 0.4 -> 0.5 - 0.5 cos(0.4 pi) = 0.3454915
    assert P.learning_rate(0.9, cfg) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))
    assert P.learning_rate(0.9, cfg) == pytest.approx(0.03454915, abs=1e-8)


def test_w_noise_schedule_hand_computed():
    cfg = P.ProjectorConfig()
    assert P.w_noise_scale(0.0, 2.0, cfg) == pytest.approx(2.0 * 0.05)
    assert P.w_noise_scale(0.375, 2.0, cfg) == pytest.approx(2.0 * 0.05 * 0.25)  # (1 - 0.375/0.75)^2 = 0.25
    assert P.w_noise_scale(0.75, 2.0, cfg) == 0.0
    assert P.w_noise_scale(0.9, 2.0, cfg) == 0.0


def test_noise_regularizer_hand_computed():
    checker4 = torch.tensor([[(-1.0) ** (i + j) for j in range(4)] for i in range(4)])
    # Every pixel times its horizontal / vertical neighbour is -1: mean -1, squared 1, twice -> 2; no pooling at 4.
    assert float(P.noise_regularizer([checker4])) == pytest.approx(2.0)
    checker16 = torch.tensor([[(-1.0) ** (i + j) for j in range(16)] for i in range(16)])
    # 16 px: 2; pooled to 8 px: all zeros -> 0; stop at 8.
    assert float(P.noise_regularizer([checker16])) == pytest.approx(2.0)
    ones16 = torch.ones(16, 16)
    assert float(P.noise_regularizer([ones16])) == pytest.approx(4.0)  # 2 at 16 px + 2 at 8 px
    assert float(P.noise_regularizer([checker4, ones16])) == pytest.approx(6.0)
    assert float(P.noise_regularizer([])) == 0.0


def test_normalize_noise():
    bufs = [torch.randn(8, 8) * 3 + 2, torch.randn(4, 4) * 0.1 - 1]
    P.normalize_noise_(bufs)
    for b in bufs:
        assert float(b.mean()) == pytest.approx(0.0, abs=1e-6)
        assert float(b.square().mean()) == pytest.approx(1.0, abs=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match='space'):
        P.ProjectorConfig(space='z')
    with pytest.raises(ValueError, match='num_steps'):
        P.ProjectorConfig(num_steps=0)
    with pytest.raises(ValueError, match='initial_learning_rate'):
        P.ProjectorConfig(initial_learning_rate=float('nan'))
    with pytest.raises(ValueError, match='loss'):
        P.ProjectorConfig(loss='lpips')


# ----------------------------------------------------------------------------
# Targets.


def test_load_target_crops_resizes_and_composites(tmp_path):
    # 60x20: left third red, middle green, right third blue -> the centre crop keeps only green.
    arr = np.zeros((20, 60, 3), np.uint8)
    arr[:, :20, 0] = 255
    arr[:, 20:40, 1] = 255
    arr[:, 40:, 2] = 255
    PIL.Image.fromarray(arr).save(tmp_path / 'wide.png')
    t = P.load_target(tmp_path / 'wide.png', 16)
    assert t.dtype == torch.uint8 and tuple(t.shape) == (3, 16, 16)
    assert t[1].float().mean() > 250 and t[0].float().mean() < 5 and t[2].float().mean() < 5

    # Fully transparent red -> white; half-transparent black -> mid grey.
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 0
    rgba[4:, :, :3] = 0
    rgba[4:, :, 3] = 128
    PIL.Image.fromarray(rgba, 'RGBA').save(tmp_path / 'alpha.png')
    t = P.load_target(tmp_path / 'alpha.png', 8)
    assert (t[:, :3] == 255).all()
    assert (t[:, 5:].float() - 127).abs().max() <= 2

    # Palette with transparency, grayscale network.
    pal = PIL.Image.new('P', (8, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info['transparency'] = 0
    pal.save(tmp_path / 'pal.png', transparency=0)
    g = P.load_target(tmp_path / 'pal.png', 4, num_channels=1)
    assert tuple(g.shape) == (1, 4, 4) and (g == 255).all()


def test_load_target_errors(tmp_path):
    (tmp_path / 'x.png').write_bytes(b'not an image')
    with pytest.raises(ValueError, match='not an image'):
        P.load_target(tmp_path / 'x.png', 16)
    with pytest.raises(ValueError, match='does not exist'):
        P.load_target(tmp_path / 'missing.png', 16)
    with pytest.raises(ValueError, match='resolution'):
        P.load_target(np.zeros((4, 4, 3), np.uint8), -3)


# ----------------------------------------------------------------------------
# Convergence.


def test_projection_recovers_own_image_in_w(nets):
    G = nets['sg3']
    target = _target_of(G, 2)
    res = P.project(G, target, cfg=P.ProjectorConfig(num_steps=80, w_avg_samples=1000))
    assert tuple(res.ws.shape) == (1, G.num_ws, G.w_dim)
    assert torch.equal(res.ws[:, :1].expand_as(res.ws), res.ws)  # space 'w': one w for all layers
    assert res.loss_name == 'builtin'
    start_psnr = _psnr_db(P.render_ws(G, G.mapping.w_avg[None, None].expand(1, G.num_ws, -1)), target)
    psnr = _psnr_db(res.image, target)
    assert psnr >= 30.0, f'reconstruction PSNR {psnr:.2f} dB (from {start_psnr:.2f} dB at w_avg)'
    assert res.losses[-1] < 0.2 * res.losses[0]


def test_w_plus_beats_w_on_an_image_from_another_network(nets):
    target = _target_of(nets['sg3b'], 2)
    psnr = {}
    for space in ('w', 'w+'):
        res = P.project(nets['sg3'], target, cfg=P.ProjectorConfig(num_steps=60, w_avg_samples=500, space=space))
        psnr[space] = _psnr_db(res.image, target)
    assert psnr['w+'] > psnr['w'] + 1.0, psnr


def test_stylegan2_optimises_noise_maps_and_is_deterministic(nets):
    G = nets['sg2']
    target = _target_of(G, 3)
    before = {k: v.clone() for k, v in P.noise_buffers(G).items()}
    assert before, 'the StyleGAN2 test network has noise maps'
    cfg = P.ProjectorConfig(num_steps=12, w_avg_samples=200, seed=7)
    maps_a: dict = {}
    steps_a = list(P.iter_project(G, target, cfg=cfg, keep_noise_maps=maps_a))
    maps_b: dict = {}
    steps_b = list(P.iter_project(G, target, cfg=cfg, keep_noise_maps=maps_b))
    assert len(steps_a) == 12 and steps_a[-1].step == 12
    assert torch.equal(steps_a[-1].ws, steps_b[-1].ws)  # same seed, same result on the CPU
    assert maps_a.keys() == before.keys()
    for k, v in maps_a.items():
        assert torch.equal(v, maps_b[k])
        assert not torch.equal(v, before[k])  # optimised (and the network itself is left untouched)
        assert float(v.mean()) == pytest.approx(0, abs=1e-5) and float(v.square().mean()) == pytest.approx(1, abs=1e-4)
        assert torch.equal(P.noise_buffers(G)[k], before[k])
    other = list(P.iter_project(G, target, cfg=P.ProjectorConfig(num_steps=12, w_avg_samples=200, seed=8)))
    assert not torch.equal(other[-1].ws, steps_a[-1].ws)


def test_cancel_and_previews(nets):
    G = nets['sg3']
    target = _target_of(G, 1)
    seen = []

    def cb(st):
        seen.append(st)
        return st.step < 4

    res = P.project(G, target, cfg=P.ProjectorConfig(num_steps=50, w_avg_samples=100), callback=cb, preview_every=2)
    assert res.steps_run == 4 and len(res.losses) == 4
    assert [st.synth is not None for st in seen] == [False, True, False, True]
    assert tuple(seen[1].synth.shape) == (1, 3, RES, RES)


def test_start_latent_and_shape_errors(nets):
    G = nets['sg3']
    target = _target_of(G, 1)
    with pytest.raises(ValueError, match=f'num_ws={G.num_ws} and w_dim={G.w_dim}'):
        next(P.iter_project(G, target, w_start=torch.zeros(3, 5)))
    with pytest.raises(ValueError, match='uint8'):
        next(P.iter_project(G, target.float()))
    with pytest.raises(ValueError, match='vgg16'):
        next(P.iter_project(G, target, cfg=P.ProjectorConfig(loss='vgg16')))
    w = torch.randn(1, G.num_ws, G.w_dim)
    st = next(P.iter_project(G, target, cfg=P.ProjectorConfig(num_steps=1, w_avg_samples=10, space='w+'), w_start=w))
    assert tuple(st.ws.shape) == (1, G.num_ws, G.w_dim)
    assert (st.ws - w).abs().max() < 1.0  # started from w, not from w_avg


def test_grayscale_network(nets):
    G = nets['grey']
    target = _target_of(G, 4)
    assert target.shape[0] == 1
    res = P.project(G, target, cfg=P.ProjectorConfig(num_steps=3, w_avg_samples=50))
    assert tuple(res.image.shape) == (1, 1, RES, RES)


# ----------------------------------------------------------------------------
# The VGG16 feature file path with a stand-in TorchScript network.


class _StandInVGG(torch.nn.Module):
    """Same call signature as the published feature file: f(img_0_255, resize_images, return_lpips) -> [N, F]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.calls = torch.nn.Parameter(torch.zeros([]), requires_grad=False)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        assert not resize_images
        assert return_lpips
        assert img.shape[1] == 3 and img.shape[2] <= 256
        f = torch.relu(self.conv(img / 255.0)).flatten(1)
        return f / f.square().sum(dim=1, keepdim=True).sqrt().clamp_min(1e-8)


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('vgg') / 'vgg16.pt'
    torch.jit.script(_StandInVGG()).save(str(path))
    return path


def test_vgg16_file_refused_without_trust_and_used_with_it(nets, vgg_file):
    with pytest.raises(LoadError, match='TorchScript'):
        P.load_vgg16(vgg_file)
    vgg = P.load_vgg16(vgg_file, trust=True)
    G = nets['sg3']
    target = _target_of(G, 1)
    res = P.project(G, target, cfg=P.ProjectorConfig(num_steps=5, w_avg_samples=50), vgg16=vgg)
    assert res.loss_name == 'vgg16'
    assert res.losses[-1] < res.losses[0]
    # The distance is the squared L2 between the feature vectors of synth and target.
    synth = res.image
    feats = P.vgg16_features(vgg, (synth + 1) * 127.5)
    tf = P.vgg16_features(vgg, target[None].float())
    assert float(P.vgg16_distance(vgg, synth, tf)) == pytest.approx(float((feats - tf).square().sum()), rel=1e-5)


def test_vgg16_file_runs_when_its_digest_is_pinned(vgg_file, monkeypatch):
    import hashlib

    monkeypatch.setenv('SG3VIZ_TRUSTED_SHA256', hashlib.sha256(vgg_file.read_bytes()).hexdigest())
    vgg = P.load_vgg16(vgg_file)
    assert tuple(vgg(torch.zeros(1, 3, 8, 8), resize_images=False, return_lpips=True).shape) == (1, 4 * 8 * 8)


def test_vgg16_foreign_file(tmp_path):
    bad = tmp_path / 'vgg16.pt'
    bad.write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(LoadError, match='TorchScript'):
        P.load_vgg16(bad, trust=True)


# ----------------------------------------------------------------------------
# The command line.


def test_cli_writes_reference_format_outputs(nets, tmp_path):
    import projector

    pkl = tmp_path / 'net.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(G=nets['sg3'], D=None, G_ema=nets['sg3'], augment_pipe=None, training_set_kwargs=None), f)
    img = _target_of(nets['sg3'], 1).permute(1, 2, 0).numpy()
    tdir = tmp_path / 'targets'
    tdir.mkdir()
    PIL.Image.fromarray(img).resize((48, 48)).save(tdir / 'a.png')
    PIL.Image.fromarray(img).save(tdir / 'b.jpg')
    out = tmp_path / 'out'
    args = ['--network', pkl, '--target', tdir, '--outdir', out, '--num-steps', 4, '--device', 'cpu', '--save-video',
            '--video-every', 2, '--loss', 'builtin']  # fmt: skip
    result = CliRunner().invoke(projector.main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    for name in ('a', 'b'):
        d = out / name
        with np.load(d / 'projected_w.npz') as data:
            w = data['w']
        assert w.shape == (1, nets['sg3'].num_ws, nets['sg3'].w_dim) and w.dtype == np.float32
        assert PIL.Image.open(d / 'proj.png').size == (RES, RES)
        assert PIL.Image.open(d / 'target.png').size == (RES, RES)
        import imageio.v2 as imageio

        frames = imageio.mimread(d / 'proj.mp4')
        assert len(frames) == 2 and frames[0].shape[:2] == (RES, 2 * RES)
        assert not list(d.glob('*.tmp*'))

    # The latent renders the reconstruction (the format `generate.py --projected-w` reads).
    with np.load(out / 'a' / 'projected_w.npz') as data:
        ws = torch.from_numpy(data['w'])
    recon = np.asarray(PIL.Image.open(out / 'a' / 'proj.png'))
    again = projector._to_u8(P.render_ws(nets['sg3'], ws))
    assert np.abs(recon.astype(int) - again.astype(int)).max() <= 1

    # gen_images.py --projected-w (the reference generate.py option) renders the same image from the file.
    import gen_images

    r = CliRunner().invoke(gen_images.main, ['--network', str(pkl), '--projected-w', str(out / 'a' / 'projected_w.npz'),
                                             '--outdir', str(tmp_path / 'gen'), '--device', 'cpu'])  # fmt: skip
    assert r.exit_code == 0, r.output
    (png,) = sorted((tmp_path / 'gen').glob('*.png'))
    assert np.abs(np.asarray(PIL.Image.open(png)).astype(int) - recon.astype(int)).max() <= 1

    # ... and the projector starts from it.
    args2 = ['--network', pkl, '--target', tdir / 'a.png', '--outdir', out / 'again', '--num-steps', 1, '--device',
             'cpu', '--start', out / 'a' / 'projected_w.npz', '--loss', 'builtin', '--space', 'w+']  # fmt: skip
    r = CliRunner().invoke(projector.main, [str(a) for a in args2])
    assert r.exit_code == 0, r.output


def test_cli_errors(tmp_path):
    import projector

    r = CliRunner().invoke(projector.main, ['--target', str(tmp_path / 'nope.png'), '--outdir', str(tmp_path / 'o')])
    assert r.exit_code != 0 and 'no such file' in r.output
    r = CliRunner().invoke(
        projector.main, ['--target', str(tmp_path), '--outdir', str(tmp_path / 'o'), '--start', 'seed:x']
    )
    assert r.exit_code != 0
    (tmp_path / 'i.png').write_bytes(b'')
    r = CliRunner().invoke(projector.main, ['--target', str(tmp_path / 'i.png'), '--outdir', str(tmp_path / 'o'),
                                            '--loss', 'vgg16', '--device', 'cpu'])  # fmt: skip
    assert r.exit_code != 0 and 'VGG16 feature file' in r.output


def test_expand_targets(tmp_path):
    import projector

    (tmp_path / 'b.png').write_bytes(b'x')
    (tmp_path / 'a.JPG').write_bytes(b'x')
    (tmp_path / 'notes.txt').write_text('x')
    assert [p.name for p in projector.expand_targets([str(tmp_path)])] == ['a.JPG', 'b.png']
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no images'):
        projector.expand_targets([str(empty)])
    assert pathlib.Path(projector.expand_targets([str(tmp_path / 'b.png')])[0]).name == 'b.png'
