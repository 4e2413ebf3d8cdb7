"""gen_images.py end to end: the bundled network, seed file names, user errors."""

from __future__ import annotations

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

import gen_images  # noqa: E402


@pytest.fixture(scope='module')
def cond_pkl(tmp_path_factory):
    from training import networks_stylegan2

    torch.manual_seed(0)
    G = networks_stylegan2.Generator(
        z_dim=8, c_dim=4, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8
    )
    path = tmp_path_factory.mktemp('cond') / 'cond.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G}))
    return path


def test_bundled_network_end_to_end(tmp_path):
    if not (REPO / 'models' / 'default.pkl').is_file():
        pytest.skip('models/default.pkl not written yet')
    result = CliRunner().invoke(gen_images.main, ['--seeds', '7', '--outdir', str(tmp_path), '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    img = np.asarray(PIL.Image.open(tmp_path / 'seed0007.png'))
    assert img.shape[2] == 3 and img.dtype == np.uint8 and img.shape[0] == img.shape[1] >= 16


def test_conditional_network_and_seed_files(tmp_path, cond_pkl):
    runner = CliRunner()
    args = ['--network', str(cond_pkl), '--seeds', '0,3-4', '--outdir', str(tmp_path), '--device', 'cpu']
    result = runner.invoke(gen_images.main, args + ['--class', '2', '--trunc', '0.7', '--noise-mode', 'random'])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob('*.png')) == ['seed0000.png', 'seed0003.png', 'seed0004.png']


def test_same_seed_same_image_as_direct_call(tmp_path, cond_pkl):
    from engine.loading import load_generator

    gen_images.generate_images(network=cond_pkl, seeds=[5], outdir=tmp_path, class_idx=1, device='cpu', progress=False)
    G = load_generator(cond_pkl)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        img = G(z, torch.eye(4)[1:2], noise_mode='const')
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / 'seed0005.png')), expected)


@pytest.mark.parametrize(
    'extra, message',
    [
        ([], 'needs a class: pass --class in [0, 4)'),
        (['--class', '4'], '--class must be in [0, 4)'),
        (['--class', '1', '--rotate', '10'], 'need a StyleGAN3 network'),
    ],
)
def test_user_errors_are_one_line(tmp_path, cond_pkl, extra, message):
    result = CliRunner().invoke(
        gen_images.main, ['--network', str(cond_pkl), '--seeds', '0', '--outdir', str(tmp_path)] + extra
    )
    assert result.exit_code != 0
    assert message in result.output
    assert 'Traceback' not in result.output and result.output.strip().count('\n') == 0


def test_missing_network_and_bad_seeds(tmp_path):
    result = CliRunner().invoke(gen_images.main, ['--network', str(tmp_path / 'x.pkl'), '--outdir', str(tmp_path)])
    assert result.exit_code == 1 and 'not found' in result.output and 'Traceback' not in result.output
    result = CliRunner().invoke(gen_images.main, ['--seeds', '3-1', '--outdir', str(tmp_path)])
    assert result.exit_code == 2 and '0,3,5-9' in result.output


@pytest.fixture(scope='module')
def sg2_pkl(tmp_path_factory):
    from training import networks_stylegan2

    torch.manual_seed(1)
    G = networks_stylegan2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8
    )
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([8]))
    path = tmp_path_factory.mktemp('sg2') / 'sg2.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G}))
    return path


def _png(path):
    return np.asarray(PIL.Image.open(path))


def test_projected_w_renders_the_saved_latent(tmp_path, sg2_pkl):
    from engine.latent_files import write_ws
    from engine.loading import load_generator

    G = load_generator(sg2_pkl)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, 8).astype(np.float32))
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.6)
    write_ws(tmp_path / 'projected_w.npz', ws.numpy(), state={'seed': 5})
    base = ['--network', str(sg2_pkl), '--outdir', str(tmp_path / 'out'), '--device', 'cpu']
    r = CliRunner().invoke(gen_images.main, base + ['--projected-w', str(tmp_path / 'projected_w.npz')])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(gen_images.main, base + ['--seeds', '5', '--trunc', '0.6'])
    assert r.exit_code == 0, r.output
    assert np.array_equal(_png(tmp_path / 'out' / 'proj00.png'), _png(tmp_path / 'out' / 'seed0005.png'))

    np.save(tmp_path / 'bad.npy', np.zeros([3, 8], np.float32))  # num_ws is 4
    r = CliRunner().invoke(gen_images.main, base + ['--projected-w', str(tmp_path / 'bad.npy')])
    assert r.exit_code != 0 and 'num_ws=4' in r.output and 'w_dim=8' in r.output


def test_grid_of_seeds(tmp_path, sg2_pkl):
    args = ['--network', str(sg2_pkl), '--seeds', '0-4', '--grid', '2x3', '--outdir', str(tmp_path)]
    r = CliRunner().invoke(gen_images.main, args)
    assert r.exit_code == 0, r.output
    grid = _png(tmp_path / 'grid.png')
    assert grid.shape == (2 * 8, 3 * 8, 3)
    for i, seed in enumerate(range(5)):
        r_, c_ = divmod(i, 3)
        assert np.array_equal(grid[r_ * 8 : r_ * 8 + 8, c_ * 8 : c_ * 8 + 8], _png(tmp_path / f'seed{seed:04d}.png'))
    assert not grid[8:, 16:].any()  # the sixth cell stays empty

    r = CliRunner().invoke(gen_images.main, args[:-1] + [str(tmp_path / 'b'), '--grid', '1x3'])
    assert r.exit_code != 0 and '3 cells for 5 images' in r.output


def test_truncation_sweep_grid_with_avg(tmp_path, sg2_pkl):
    args = ['--network', str(sg2_pkl), '--seeds', '1,2', '--trunc', '1,0.5,0', '--show-avg', '--outdir', str(tmp_path)]
    r = CliRunner().invoke(gen_images.main, args)
    assert r.exit_code == 0, r.output
    grid = _png(tmp_path / 'grid.png')
    assert grid.shape == (3 * 8, 3 * 8, 3)
    assert np.array_equal(grid[8:16, 8:16], _png(tmp_path / 'seed0001-psi0.5.png'))
    assert np.array_equal(grid[0:8, 16:24], _png(tmp_path / 'seed0002-psi1.png'))
    avg = grid[0:8, 0:8]
    # psi = 0 gives w_avg for every seed: the avg column and the last row agree.
    for r_ in range(3):
        assert np.array_equal(grid[r_ * 8 : r_ * 8 + 8, 0:8], avg)
    assert np.array_equal(grid[16:24, 8:16], avg) and np.array_equal(grid[16:24, 16:24], avg)

    r = CliRunner().invoke(gen_images.main, args[:-1] + [str(tmp_path / 'c'), '--grid-only', '--grid', '3x3'])
    assert r.exit_code != 0 and 'one row per psi' in r.output
    r = CliRunner().invoke(gen_images.main, args[:-1] + [str(tmp_path / 'd'), '--grid-only'])
    assert r.exit_code == 0 and [p.name for p in (tmp_path / 'd').iterdir()] == ['grid.png']
