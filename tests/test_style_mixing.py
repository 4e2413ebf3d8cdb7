"""style_mixing.py: grid layout, mixed cells equal a manual mix, clear errors."""

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

import style_mixing  # noqa: E402


@pytest.fixture(scope='module')
def sg2_pkl(tmp_path_factory):
    from training import networks_stylegan2

    torch.manual_seed(4)
    G = networks_stylegan2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8
    )
    path = tmp_path_factory.mktemp('sm') / 'sg2.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G}))
    return path


def test_grid_layout_and_cells(tmp_path, sg2_pkl):
    args = ['--network', str(sg2_pkl), '--rows', '85,100', '--cols', '55,821,1789', '--styles', '0-1',
            '--outdir', str(tmp_path)]  # fmt: skip
    r = CliRunner().invoke(style_mixing.main, args)
    assert r.exit_code == 0, r.output
    grid = np.asarray(PIL.Image.open(tmp_path / 'grid.png'))
    assert grid.shape == (3 * 8, 4 * 8, 3)
    assert not grid[:8, :8].any()  # empty corner

    def cell(i, j):
        return grid[i * 8 : i * 8 + 8, j * 8 : j * 8 + 8]

    png = lambda name: np.asarray(PIL.Image.open(tmp_path / name))  # noqa: E731
    assert np.array_equal(cell(0, 2), png('821-821.png'))  # first row: column seeds
    assert np.array_equal(cell(2, 0), png('100-100.png'))  # first column: row seeds
    assert np.array_equal(cell(1, 3), png('85-1789.png'))

    # A mixed cell is the row seed's ws with ws 0-1 from the column seed.
    from engine.loading import load_generator

    G = load_generator(sg2_pkl)
    with torch.no_grad():
        ws = [G.mapping(torch.from_numpy(np.random.RandomState(s).randn(1, 8).astype(np.float32)), None)
              for s in (85, 1789)]  # fmt: skip
        mixed = ws[0].clone()
        mixed[:, 0:2] = ws[1][:, 0:2]
        img = G.synthesis(mixed, noise_mode='const')
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert np.array_equal(cell(1, 3), expected)
    assert not np.array_equal(cell(1, 3), cell(1, 0))


def test_styles_outside_num_ws_name_it(tmp_path, sg2_pkl):
    args = ['--network', str(sg2_pkl), '--rows', '1', '--cols', '2', '--styles', '0-6', '--outdir', str(tmp_path)]
    r = CliRunner().invoke(style_mixing.main, args)
    assert r.exit_code != 0 and 'num_ws=4' in r.output and 'Traceback' not in r.output
