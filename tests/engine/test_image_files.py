"""engine.image_files (atomic PNGs, grids) and engine.cli_types.SeedList, shared by the image-writing CLIs."""

from __future__ import annotations

import click
import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from engine.cli_types import SeedList
from engine.image_files import save_png, tile_grid


@pytest.mark.parametrize(('channels', 'mode'), [(1, 'L'), (3, 'RGB'), (4, 'RGBA')])
def test_save_png_round_trips(tmp_path, channels, mode):
    img = np.random.RandomState(channels).randint(0, 256, [5, 7, channels]).astype(np.uint8)
    path = save_png(tmp_path / 'a.png', img)
    assert path == tmp_path / 'a.png' and sorted(p.name for p in tmp_path.iterdir()) == ['a.png']  # no temp files
    with PIL.Image.open(path) as back:
        assert back.mode == mode
        arr = np.asarray(back)
    np.testing.assert_array_equal(arr.reshape(img.shape), img)


@pytest.mark.parametrize(
    'bad', [np.zeros([4, 4, 3], np.float32), np.zeros([4, 4], np.uint8), np.zeros([4, 4, 2], np.uint8)]
)
def test_save_png_refuses_other_layouts(tmp_path, bad):
    with pytest.raises(ValueError, match=r'save_png\(\): image must be uint8'):
        save_png(tmp_path / 'b.png', bad)
    assert not any(tmp_path.iterdir())


def test_save_png_failure_leaves_nothing(tmp_path):
    (tmp_path / 'taken.png').mkdir()  # a folder where the file should go: the final rename fails
    with pytest.raises(OSError):
        save_png(tmp_path / 'taken.png', np.zeros([2, 2, 3], np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ['taken.png'] and not any((tmp_path / 'taken.png').iterdir())


def test_save_png_creates_parent_folders(tmp_path):
    assert save_png(tmp_path / 'a' / 'b' / 'c.png', np.zeros([2, 2, 3], np.uint8)).is_file()


def test_tile_grid_places_cells_and_fills_gaps_black():
    a = np.full([2, 3, 1], 10, np.uint8)
    b = np.full([2, 3, 1], 20, np.uint8)
    grid = tile_grid({(0, 1): a, (2, 0): b})
    assert grid.shape == (6, 6, 1) and grid.dtype == np.uint8
    assert (grid[0:2, 3:6] == 10).all() and (grid[4:6, 0:3] == 20).all()
    assert grid[0:2, 0:3].sum() == 0 and grid[2:4].sum() == 0 and grid[4:6, 3:6].sum() == 0


@pytest.mark.parametrize(
    ('cells', 'match'),
    [
        ({}, 'no images'),
        ({(0, 0): np.zeros([2, 2, 3], np.uint8), (0, 1): np.zeros([2, 3, 3], np.uint8)}, 'one shape'),
        ({(-1, 0): np.zeros([2, 2, 3], np.uint8)}, '>= 0'),
    ],
)
def test_tile_grid_errors(cells, match):
    with pytest.raises(ValueError, match=match):
        tile_grid(cells)


def test_seed_list_parses_and_names_bad_values():
    @click.command()
    @click.option('--seeds', type=SeedList())
    @click.option('--styles', type=SeedList('style indices'), default='0-2')
    def cmd(seeds, styles):
        click.echo(f'{seeds} {styles}')

    run = CliRunner().invoke
    assert run(cmd, ['--seeds', '0-3,7']).output.strip() == '[0, 1, 2, 3, 7] [0, 1, 2]'
    out = run(cmd, ['--seeds', '1,4294967296']).output
    assert 'seeds must be in [0, 2**32), got 4294967296' in out
    out = run(cmd, ['--seeds', '1', '--styles', '4294967296']).output
    assert 'style indices must be in [0, 2**32), got 4294967296' in out
    assert run(cmd, ['--seeds', 'x']).exit_code == 2


def test_to_u8_hwc_is_the_reference_conversion():
    import torch

    from engine.image_files import to_u8_hwc

    img = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.999, 1.0, 3.0]).reshape(1, 1, 1, 7).repeat(1, 3, 2, 1)  # [1, 3, 2, 7]
    out = to_u8_hwc(img)
    assert out.dtype == np.uint8 and out.shape == (2, 7, 3)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 64, 128, 255, 255, 255])  # x * 127.5 + 128, clamped, truncated
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
