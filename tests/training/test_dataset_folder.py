"""training.dataset.ImageFolderDataset on zips and folders: labels, xflip, max_size, errors."""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest

from training.dataset import DatasetError, ImageFolderDataset, flatten_image


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    (PIL.Image.fromarray(arr, mode) if mode else PIL.Image.fromarray(arr)).save(buf, format='png')
    return buf.getvalue()


def _images(n: int, res: int = 8, channels: int = 3) -> list[np.ndarray]:
    rnd = np.random.RandomState(123)
    shape = (res, res, channels) if channels > 1 else (res, res)
    return [rnd.randint(0, 256, size=shape).astype(np.uint8) for _ in range(n)]


def _make(tmp_path: pathlib.Path, kind: str, imgs, labels=None, compression=zipfile.ZIP_STORED) -> pathlib.Path:
    names = [f'00000/img{i:08d}.png' for i in range(len(imgs))]
    meta = json.dumps({'labels': None if labels is None else [[n, lab] for n, lab in zip(names, labels)]})
    if kind == 'zip':
        path = tmp_path / 'ds.zip'
        with zipfile.ZipFile(path, 'w', compression=compression) as zf:
            for n, a in zip(names, imgs):
                zf.writestr(n, _png(a))
            zf.writestr('dataset.json', meta)
    else:
        path = tmp_path / 'ds'
        for n, a in zip(names, imgs):
            (path / n).parent.mkdir(parents=True, exist_ok=True)
            (path / n).write_bytes(_png(a))
        (path / 'dataset.json').write_text(meta)
    return path


@pytest.mark.parametrize('kind', ['zip', 'deflated', 'dir'])
def test_reads_images_and_onehot_labels(tmp_path, kind):
    imgs = _images(5)
    labels = [0, 2, 1, 2, 0]
    comp = zipfile.ZIP_DEFLATED if kind == 'deflated' else zipfile.ZIP_STORED
    path = _make(tmp_path, 'dir' if kind == 'dir' else 'zip', imgs, labels, comp)
    ds = ImageFolderDataset(path, use_labels=True)
    assert len(ds) == 5 and ds.image_shape == [3, 8, 8] and ds.resolution == 8 and ds.num_channels == 3
    assert ds.has_labels and ds.label_shape == [3] and ds.label_dim == 3 and ds.has_onehot_labels
    assert ds.name == 'ds'
    for i in range(5):
        img, lab = ds[i]
        assert img.dtype == np.uint8 and img.shape == (3, 8, 8)
        np.testing.assert_array_equal(img, imgs[i].transpose(2, 0, 1))
        assert lab.dtype == np.float32 and lab.tolist() == np.eye(3)[labels[i]].tolist()
        np.testing.assert_array_equal(ds.get_label(i), lab)


def test_unlabelled_and_use_labels_false(tmp_path):
    path = _make(tmp_path, 'zip', _images(3), labels=[1, 0, 1])
    ds = ImageFolderDataset(path)  # use_labels=False
    assert not ds.has_labels and ds.label_shape == [0] and ds[0][1].shape == (0,)
    path2 = _make(tmp_path / 'b', 'dir', _images(3), labels=None)
    ds2 = ImageFolderDataset(path2, use_labels=True)
    assert not ds2.has_labels and ds2[1][1].shape == (0,)


def test_float_labels(tmp_path):
    path = _make(tmp_path, 'dir', _images(2), labels=[[0.5, 1.5], [2.0, -1.0]])
    ds = ImageFolderDataset(path, use_labels=True)
    assert ds.label_shape == [2] and not ds.has_onehot_labels
    assert ds[1][1].tolist() == [2.0, -1.0]


def test_xflip_doubles(tmp_path):
    imgs = _images(3)
    ds = ImageFolderDataset(_make(tmp_path, 'zip', imgs), xflip=True)
    assert len(ds) == 6
    for i in range(3):
        np.testing.assert_array_equal(ds[i + 3][0], ds[i][0][:, :, ::-1])
        assert ds.get_details(i + 3)['xflip'] and not ds.get_details(i)['xflip']


def test_max_size_is_deterministic_subset(tmp_path):
    path = _make(tmp_path, 'dir', _images(20, res=4))
    full = ImageFolderDataset(path)
    a = ImageFolderDataset(path, max_size=7, random_seed=1)
    b = ImageFolderDataset(path, max_size=7, random_seed=1)
    c = ImageFolderDataset(path, max_size=7, random_seed=2)
    raw = lambda ds: [ds.get_details(i)['raw_idx'] for i in range(len(ds))]  # noqa: E731
    assert len(a) == 7 and raw(a) == raw(b) and raw(a) != raw(c) and raw(a) == sorted(raw(a))
    np.testing.assert_array_equal(a[3][0], full[raw(a)[3]][0])
    assert len(ImageFolderDataset(path, max_size=100)) == 20
    assert len(ImageFolderDataset(path, max_size=7, xflip=True)) == 14


def test_greyscale_and_rgba_folder(tmp_path):
    (tmp_path / 'g').mkdir()
    PIL.Image.fromarray(np.full((4, 4), 9, np.uint8), 'L').save(tmp_path / 'g/a.png')
    ds = ImageFolderDataset(tmp_path / 'g')
    assert ds.image_shape == [1, 4, 4] and ds[0][0].max() == 9
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent -> white
    (tmp_path / 'c').mkdir()
    PIL.Image.fromarray(rgba, 'RGBA').save(tmp_path / 'c/a.png')
    ds = ImageFolderDataset(tmp_path / 'c')
    assert ds.image_shape == [3, 4, 4] and ds[0][0].min() == 255


def test_flatten_image_palette():
    pal = PIL.Image.fromarray(np.array([[0, 1]], np.uint8), 'P')
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    assert flatten_image(pal).tolist() == [[[10, 20, 30], [40, 50, 60]]]
    pal.info['transparency'] = 1
    assert flatten_image(pal, background=(1, 2, 3)).tolist() == [[[10, 20, 30], [1, 2, 3]]]


def test_pickle_after_open(tmp_path):
    ds = ImageFolderDataset(_make(tmp_path, 'zip', _images(2)))
    _ = ds[0]
    ds2 = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(ds2[1][0], ds[1][0])


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        ImageFolderDataset(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no image files'):
        ImageFolderDataset(tmp_path / 'empty')
    (tmp_path / 'f.txt').write_text('x')
    with pytest.raises(DatasetError, match='directory or a .zip'):
        ImageFolderDataset(tmp_path / 'f.txt')
    (tmp_path / 'cut.zip').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(DatasetError, match='not a valid zip file'):
        ImageFolderDataset(tmp_path / 'cut.zip')

    bad = tmp_path / 'bad.zip'
    with zipfile.ZipFile(bad, 'w') as zf:
        zf.writestr('a.png', _png(np.zeros((4, 4, 3), np.uint8)))
        zf.writestr('b.png', b'\x89PNG\r\n\x1a\ngarbage')
    ds = ImageFolderDataset(bad)
    with pytest.raises(DatasetError, match="'b.png'"):
        ds[1]

    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    PIL.Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(mixed / 'a.png')
    PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mixed / 'b.png')
    ds = ImageFolderDataset(mixed)
    with pytest.raises(DatasetError, match='same size.*b.png'):
        ds[1]
    with pytest.raises(DatasetError, match='resolution must match'):
        ImageFolderDataset(mixed, resolution=8)

    nonsquare = tmp_path / 'ns'
    nonsquare.mkdir()
    PIL.Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(nonsquare / 'a.png')
    with pytest.raises(DatasetError, match='square'):
        _ = ImageFolderDataset(nonsquare).resolution

    path = _make(tmp_path / 'lab', 'dir', _images(2), labels=[0, 1])
    (path / 'dataset.json').write_text(json.dumps({'labels': [['00000/img00000000.png', 0]]}))
    with pytest.raises(DatasetError, match='no label for 1'):
        ImageFolderDataset(path, use_labels=True).get_label(0)
