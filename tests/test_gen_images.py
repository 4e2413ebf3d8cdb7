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
