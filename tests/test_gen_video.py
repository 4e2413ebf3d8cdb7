"""gen_video.py: frame counts, sizes, looping, --ws sequences, --layer views, output kinds and errors."""

from __future__ import annotations

import pathlib
import pickle

import imageio.v2 as imageio
import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import gen_video

REPO = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = REPO / 'models' / 'default.pkl'


@pytest.fixture(scope='module')
def tiny_pkl(tmp_path_factory):
    """A tiny StyleGAN3-T (16 px, 4 layers) pickled like a snapshot; renders in a fraction of a second."""
    from training.networks_stylegan3 import Generator

    torch.manual_seed(0)
    G = Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
        num_layers=4, mapping_kwargs=dict(num_layers=2),
    ).eval()  # fmt: skip
    path = tmp_path_factory.mktemp('net') / 'tiny.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'G_ema': G}, f)
    return path


def _run(*args):
    result = CliRunner().invoke(gen_video.main, [str(a) for a in args])
    return result


def _pngs(folder) -> list[np.ndarray]:
    return [np.asarray(PIL.Image.open(p)) for p in sorted(pathlib.Path(folder).glob('*.png'))]


@pytest.mark.skipif(not BUNDLED.is_file(), reason='models/default.pkl not built yet')
def test_bundled_network_mp4_frame_count_and_size(tmp_path):
    out = tmp_path / 'video.mp4'
    result = _run('--grid', '2x1', '--seeds', '0-3', '--num-keyframes', '2', '--w-frames', '1', '--output', out,
                  '--device', 'cpu')  # fmt: skip
    assert result.exit_code == 0, result.output
    reader = imageio.get_reader(str(out))
    try:
        assert reader.count_frames() == 2 * 1  # keyframes x w-frames
        assert tuple(reader.get_meta_data()['size']) == (2 * 64, 64)  # (width, height) = grid x resolution
    finally:
        reader.close()


def test_png_sequence_counts_sizes_and_loops(tiny_pkl, tmp_path):
    out = tmp_path / 'frames'
    result = _run('--network', tiny_pkl, '--seeds', '0-3', '--grid', '2x1', '--num-keyframes', '2', '--w-frames', '3',
                  '--output', out, '--device', 'cpu')  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = _pngs(out)
    assert len(frames) == 2 * 3 and frames[0].shape == (16, 2 * 16, 3)
    assert not np.array_equal(frames[0], frames[3])  # Keyframes differ.

    # The frame after the last one equals the first: render frame index K * w_frames with the same machinery.
    from engine.loading import load_generator

    G = load_generator(tiny_pkl)
    kf = gen_video.keyframe_ws(G, seeds=list(range(4)), grid=(2, 1), num_keyframes=2)
    interp = gen_video.looping_interpolator(kf)
    np.testing.assert_array_equal(interp(2.0), interp(0.0))
    np.testing.assert_allclose(interp(1.0), kf[:, :, 1].reshape(2, *kf.shape[3:]), atol=1e-6)
    after_last = next(gen_video.render_frames(G, lambda f: interp((6 + f) / 3), 1, (2, 1)))
    np.testing.assert_array_equal(after_last, frames[0])


def test_ws_sequence_renders_each_frame(tiny_pkl, tmp_path):
    rng = np.random.RandomState(0)
    np.save(tmp_path / 'ws.npy', rng.randn(10, 6, 8).astype(np.float32))  # [T, num_ws, w_dim]
    result = _run('--network', tiny_pkl, '--ws', tmp_path / 'ws.npy', '--output', tmp_path / 'a' / '%04d.png')
    assert result.exit_code == 0, result.output
    assert len(_pngs(tmp_path / 'a')) == 10

    np.savez(tmp_path / 'w.npz', w=rng.randn(4, 8).astype(np.float32))  # [T, w_dim], broadcast to all layers.
    result = _run('--network', tiny_pkl, '--ws', tmp_path / 'w.npz', '--output', tmp_path / 'b.mp4')
    assert result.exit_code == 0, result.output
    reader = imageio.get_reader(str(tmp_path / 'b.mp4'))
    assert reader.count_frames() == 4
    reader.close()

    np.save(tmp_path / 'bad.npy', np.zeros([10, 5, 8], np.float32))
    result = _run('--network', tiny_pkl, '--ws', tmp_path / 'bad.npy', '--output', tmp_path / 'c')
    assert result.exit_code != 0
    assert 'num_ws=6' in result.output and 'w_dim=8' in result.output and '[10, 5, 8]' in result.output


def test_layer_view(tiny_pkl, tmp_path):
    result = _run(
        '--network', tiny_pkl, '--seeds', '0', '--w-frames', '2', '--layer', 'L1_36_16', '--output', tmp_path / 'l'
    )
    assert result.exit_code == 0, result.output
    frames = _pngs(tmp_path / 'l')
    assert len(frames) == 2 and frames[0].shape == (36, 36, 3) and frames[0].std() > 0

    result = _run('--network', tiny_pkl, '--seeds', '0', '--layer', 'nope', '--output', tmp_path / 'm')
    assert result.exit_code != 0 and 'L1_36_16' in result.output and 'input' in result.output


def test_user_errors_are_one_line(tiny_pkl, tmp_path):
    result = _run('--network', tiny_pkl, '--seeds', '0-4', '--grid', '2x2', '--output', tmp_path / 'x')
    assert result.exit_code != 0 and 'multiple of the grid size 2x2' in result.output
    assert 'Traceback' not in result.output
    result = _run('--network', tiny_pkl, '--grid', '2by2')
    assert result.exit_code != 0 and 'WxH' in result.output
    result = _run('--network', tiny_pkl, '--output', tmp_path / 'x.gif')
    assert result.exit_code != 0 and '%04d.png' in result.output
    result = _run('--network', tmp_path / 'missing.pkl')
    assert result.exit_code != 0 and 'not found' in result.output
