"""engine.latent_files: the projector .npz format in and out, accepted shapes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine.latent_files import LatentFileError, read_latent_state, read_latents, read_ws, write_ws

L, D = 6, 8


def test_write_read_round_trip_with_state(tmp_path):
    ws = np.random.RandomState(0).randn(1, L, D).astype(np.float32)
    path = write_ws(tmp_path / 'sub' / 'me', ws, state={'pkl': 'net.pkl', 'w0_seeds': [[3, 1.0]], 'trunc_psi': 0.7})
    assert path.name == 'me.npz' and sorted(p.name for p in path.parent.iterdir()) == ['me.npz']
    with np.load(path, allow_pickle=False) as f:
        assert f['w'].shape == (1, L, D) and f['w'].dtype == np.float32  # the projector format
    np.testing.assert_array_equal(read_ws(path, num_ws=L, w_dim=D), ws[0])
    assert read_latent_state(path) == {'pkl': 'net.pkl', 'w0_seeds': [[3, 1.0]], 'trunc_psi': 0.7}


@pytest.mark.parametrize('shape', [(L, D), (1, L, D), (D,)])
@pytest.mark.parametrize('key, suffix', [('w', '.npz'), ('ws', '.npz'), (None, '.npy')])
def test_accepted_shapes_and_keys(tmp_path, shape, key, suffix):
    arr = np.random.RandomState(1).randn(*shape).astype(np.float64)
    path = tmp_path / f'x{suffix}'
    if key is None:
        np.save(path, arr)
    else:
        np.savez(path, **{key: arr})
    ws = read_ws(path, num_ws=L, w_dim=D)
    assert ws.shape == (L, D) and ws.dtype == np.float32
    expected = np.broadcast_to(arr.reshape(-1, D), (L, D)) if shape == (D,) else arr.reshape(L, D)
    np.testing.assert_allclose(ws, expected, rtol=1e-6)
    assert read_latent_state(path) is None


def test_several_latents(tmp_path):
    np.savez(tmp_path / 'b.npz', w=np.zeros([3, L, D], np.float32))
    assert read_latents(tmp_path / 'b.npz', num_ws=L, w_dim=D).shape == (3, L, D)
    with pytest.raises(LatentFileError, match='holds 3 latents'):
        read_ws(tmp_path / 'b.npz', num_ws=L, w_dim=D)
    np.save(tmp_path / 'frames.npy', np.zeros([4, D], np.float32))
    assert read_latents(tmp_path / 'frames.npy', num_ws=L, w_dim=D, allow_frames=True).shape == (4, L, D)


@pytest.mark.parametrize('shape', [(L + 1, D), (1, L, D + 1), (D - 1,), (2, 2, L, D), (0, L, D)])
def test_wrong_shape_names_num_ws_and_w_dim(tmp_path, shape):
    np.save(tmp_path / 'bad.npy', np.zeros(shape, np.float32))
    with pytest.raises(LatentFileError) as e:
        read_ws(tmp_path / 'bad.npy', num_ws=L, w_dim=D)
    assert f'num_ws={L}' in str(e.value) and f'w_dim={D}' in str(e.value) and str(list(shape)) in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(LatentFileError, match='not found'):
        read_ws(tmp_path / 'missing.npz', num_ws=L, w_dim=D)
    (tmp_path / 'text.npz').write_text('hello')
    with pytest.raises(LatentFileError, match='cannot read'):
        read_ws(tmp_path / 'text.npz', num_ws=L, w_dim=D)
    np.save(tmp_path / 'nan.npy', np.full([L, D], np.nan, np.float32))
    with pytest.raises(LatentFileError, match='NaN'):
        read_ws(tmp_path / 'nan.npy', num_ws=L, w_dim=D)
    np.savez(tmp_path / 'two.npz', a=np.zeros([L, D]), b=np.zeros([L, D]))
    with pytest.raises(LatentFileError, match="'w' or 'ws'"):
        read_ws(tmp_path / 'two.npz', num_ws=L, w_dim=D)
    np.save(tmp_path / 'str.npy', np.array(['a', 'b']))
    with pytest.raises(LatentFileError, match='float'):
        read_ws(tmp_path / 'str.npy', num_ws=L, w_dim=D)


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ('executed!',))

    arr = np.empty(1, dtype=object)
    arr[0] = Boom()
    with open(tmp_path / 'obj.npy', 'wb') as f:
        np.save(f, arr, allow_pickle=True)
    with pytest.raises(LatentFileError):
        read_ws(tmp_path / 'obj.npy', num_ws=L, w_dim=D)


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match='shape'):
        write_ws(tmp_path / 'a.npz', np.zeros([2, L, D]))
    with pytest.raises(ValueError, match='NaN'):
        write_ws(tmp_path / 'a.npz', np.full([L, D], np.inf))
    assert list(tmp_path.iterdir()) == []
