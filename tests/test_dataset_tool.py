"""dataset_tool.py: sources (folder, zip, MNIST idx), transforms, alpha compositing, labels, errors."""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dataset_tool  # noqa: E402


def _run(*args: str):
    result = CliRunner().invoke(dataset_tool.main, list(args))
    return result


def _ok(*args: str):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return result


def _fail(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code != 0
    assert 'Traceback' not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith('Error:')]
    assert len(lines) == 1, result.output
    return lines[0]


def _read_zip(path) -> tuple[list[str], dict, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
        names = zf.namelist()
        meta = json.loads(zf.read('dataset.json'))
        imgs = {n: np.asarray(PIL.Image.open(io.BytesIO(zf.read(n)))) for n in names if n.endswith('.png')}
    return names, meta, imgs


def _save(path: pathlib.Path, arr: np.ndarray, mode: str | None = None, **kw) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(arr, mode).save(path, **kw) if mode else PIL.Image.fromarray(arr).save(path, **kw)
    return path


# ----------------------------------------------------------------------------


def test_twemoji_subset_zip(shared_dir, tmp_path):
    src = shared_dir / 'data' / 'twemoji-64'
    dest = tmp_path / 'tw.zip'
    _ok('--source', str(src), '--dest', str(dest), '--max-images', '64')
    names, meta, imgs = _read_zip(dest)
    assert names[0] == '00000/img00000000.png' and '00000/img00000063.png' in names
    assert len(imgs) == 64 and meta == {'labels': None}
    for arr in imgs.values():
        assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    # Transparent corners are composited onto white (default --background).
    corners = np.stack([a[0, 0] for a in imgs.values()])
    assert (corners == 255).all()
    # PNGs are stored without deflate: bigger than the raw pixels.
    with zipfile.ZipFile(dest) as zf:
        assert zf.getinfo('00000/img00000000.png').file_size > 64 * 64 * 3


def test_twemoji_folder_dest_and_background(shared_dir, tmp_path):
    src = shared_dir / 'data' / 'twemoji-64'
    dest = tmp_path / 'out'
    _ok('--source', str(src), '--dest', str(dest), '--max-images', '4', '--background', '0,0,0')
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob('*') if p.is_file())
    assert files == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png',
                     '00000/img00000003.png', 'dataset.json']  # fmt: skip
    arr = np.asarray(PIL.Image.open(dest / '00000/img00000000.png'))
    assert arr.shape == (64, 64, 3) and (arr[0, 0] == 0).all()


def test_fashion_mnist_idx(shared_dir, tmp_path):
    idx = shared_dir / 'data' / 'fashion-mnist' / 'train-images-idx3-ubyte.gz'
    dest = tmp_path / 'fm.zip'
    _ok('--source', str(idx), '--dest', str(dest), '--max-images', '12')
    names, meta, imgs = _read_zip(dest)
    assert len(imgs) == 12
    with gzip.open(idx.parent / 'train-labels-idx1-ubyte.gz') as f:
        expected = np.frombuffer(f.read(), np.uint8, offset=8)[:12]
    assert [lab for _f, lab in meta['labels']] == expected.tolist()
    assert [f for f, _lab in meta['labels']] == sorted(imgs)
    with gzip.open(idx) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16)[: 12 * 784].reshape(12, 28, 28)
    for i, name in enumerate(sorted(imgs)):
        arr = imgs[name]
        assert arr.shape == (32, 32)  # greyscale, padded 28 -> 32
        np.testing.assert_array_equal(arr[2:30, 2:30], raw[i])
        assert arr[:2].max() == 0 and arr[:, :2].max() == 0 and arr[30:].max() == 0 and arr[:, 30:].max() == 0


def test_rgba_palette_greyscale(tmp_path):
    src = tmp_path / 'src'
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[0, 0] = [0, 0, 0, 0]  # fully transparent
    rgba[0, 1] = [0, 0, 0, 128]  # half transparent black over white -> ~127
    _save(src / 'a.png', rgba, 'RGBA')
    pal = PIL.Image.fromarray(np.array([[0, 1] * 4] * 8, np.uint8), 'P')
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.info['transparency'] = 0
    pal.save(src / 'b.png', transparency=0)
    _save(src / 'c.png', np.full((8, 8), 77, np.uint8), 'L')
    dest = tmp_path / 'out.zip'
    _ok('--source', str(src), '--dest', str(dest))
    _, _, imgs = _read_zip(dest)
    a, b, c = (imgs[f'00000/img0000000{i}.png'] for i in range(3))
    assert a.shape == b.shape == c.shape == (8, 8, 3)  # mixed colour/greyscale -> RGB
    assert (
        a[0, 0].tolist() == [255, 255, 255] and a[0, 1].tolist() == [127, 127, 127] and a[1, 1].tolist() == [200, 0, 0]
    )
    assert b[0, 0].tolist() == [255, 255, 255] and b[0, 1].tolist() == [0, 0, 255]
    assert c[0, 0].tolist() == [77, 77, 77]


def test_greyscale_alpha_stays_one_channel(tmp_path):
    src = tmp_path / 'src'
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 1] = 255
    la[0, 0, 1] = 0
    _save(src / 'a.png', la, 'LA')
    _save(src / 'b.png', np.full((4, 4), 10, np.uint8), 'L')
    dest = tmp_path / 'out'
    _ok('--source', str(src), '--dest', str(dest), '--background', '0,0,255')
    a = np.asarray(PIL.Image.open(dest / '00000/img00000000.png'))
    assert a.shape == (4, 4) and a[0, 0] == 29 and a[1, 1] == 0  # luma of pure blue = 0.114 * 255


def test_mixed_sizes_error_names_two_files(tmp_path):
    src = tmp_path / 'src'
    _save(src / 'one.png', np.zeros((8, 8, 3), np.uint8))
    _save(src / 'two.png', np.zeros((16, 16, 3), np.uint8))
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'))
    assert 'one.png' in msg and 'two.png' in msg and '--resolution' in msg
    assert not (tmp_path / 'o.zip').exists()
    # With --resolution both are resized.
    _ok('--source', str(src), '--dest', str(tmp_path / 'o.zip'), '--resolution', '8x8')
    _, _, imgs = _read_zip(tmp_path / 'o.zip')
    assert [a.shape for a in imgs.values()] == [(8, 8, 3), (8, 8, 3)]


def test_resolution_must_be_square_pow2(tmp_path):
    src = tmp_path / 'src'
    _save(src / 'x.png', np.zeros((24, 24, 3), np.uint8))
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'))
    assert 'power-of-two' in msg and '--resolution=32x32' in msg
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'), '--resolution', '48x32')
    assert 'square power of two' in msg
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'), '--resolution', 'big')
    assert 'WxH' in msg
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'), '--transform', 'center-crop')
    assert '--resolution' in msg


def test_center_crop_and_wide(tmp_path):
    src = tmp_path / 'src'
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, 16:48] = 255  # white centre square, black sides
    _save(src / 'wide.png', arr)
    _ok('--source', str(src), '--dest', str(tmp_path / 'c'), '--transform', 'center-crop', '--resolution', '16x16')
    c = np.asarray(PIL.Image.open(tmp_path / 'c/00000/img00000000.png'))
    assert c.shape == (16, 16, 3) and c.min() >= 250
    _ok('--source', str(src), '--dest', str(tmp_path / 'w'), '--transform', 'center-crop-wide', '--resolution', '32x16')
    w = np.asarray(PIL.Image.open(tmp_path / 'w/00000/img00000000.png'))
    assert w.shape == (32, 32, 3)
    assert w[:8].max() == 0 and w[24:].max() == 0  # letterbox bars
    assert w[8:24, 12:20].min() >= 250 and w[8:24, :4].max() <= 5


def test_labels_from_folders_and_dataset_json(tmp_path):
    src = tmp_path / 'src'
    for cls, n in (('cat', 2), ('ant', 1)):
        for i in range(n):
            _save(src / cls / f'{i}.png', np.full((4, 4, 3), 9, np.uint8))
    _ok('--source', str(src), '--dest', str(tmp_path / 'o.zip'), '--labels-from-folders')
    _, meta, _ = _read_zip(tmp_path / 'o.zip')
    assert meta['class_names'] == ['ant', 'cat']
    assert [lab for _f, lab in meta['labels']] == [0, 1, 1]

    (src / 'dataset.json').write_text(json.dumps({'labels': [['ant/0.png', 5], ['cat/0.png', 3], ['cat/1.png', 4]]}))
    _ok('--source', str(src), '--dest', str(tmp_path / 'p.zip'))
    _, meta, _ = _read_zip(tmp_path / 'p.zip')
    assert meta == {
        'labels': [['00000/img00000000.png', 5], ['00000/img00000001.png', 3], ['00000/img00000002.png', 4]]
    }

    _save(src / 'loose.png', np.zeros((4, 4, 3), np.uint8))
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'q.zip'), '--labels-from-folders')
    assert 'loose.png' in msg


def test_zip_source_and_bad_inputs(tmp_path):
    src = tmp_path / 'in.zip'
    with zipfile.ZipFile(src, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        buf = io.BytesIO()
        PIL.Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format='png')
        zf.writestr('a/good.png', buf.getvalue())
        zf.writestr('a/broken.png', b'\x89PNG\r\n\x1a\nnot really')
    msg = _fail('--source', str(src), '--dest', str(tmp_path / 'o.zip'))
    assert 'broken.png' in msg
    msg = _fail('--source', str(tmp_path / 'missing'), '--dest', str(tmp_path / 'o.zip'))
    assert 'does not exist' in msg
    (tmp_path / 'empty').mkdir()
    msg = _fail('--source', str(tmp_path / 'empty'), '--dest', str(tmp_path / 'o.zip'))
    assert 'no images' in msg
    nonempty = tmp_path / 'nonempty'
    nonempty.mkdir()
    (nonempty / 'x.txt').write_text('x')
    good = tmp_path / 'good'
    _save(good / 'g.png', np.zeros((4, 4, 3), np.uint8))
    msg = _fail('--source', str(good), '--dest', str(nonempty))
    assert 'empty' in msg


def test_convert_dataset_library_call(tmp_path):
    src = tmp_path / 'src'
    _save(src / 'g.png', np.zeros((4, 4, 3), np.uint8))
    summary = dataset_tool.convert_dataset(str(src), str(tmp_path / 'o.zip'), progress=False)
    assert summary['num_images'] == 1 and summary['resolution'] == (4, 4) and summary['channels'] == 3
    with pytest.raises(ValueError, match='--resolution'):
        dataset_tool.convert_dataset(str(src), str(tmp_path / 'p.zip'), transform='center-crop', progress=False)
