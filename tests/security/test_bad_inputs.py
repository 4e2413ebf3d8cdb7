"""Issue 11 items 8-10: bad CLI values and files end in one clear message (no traceback, no silent wrong output)."""

from __future__ import annotations

import json
import pathlib
import resource
import struct
import subprocess
import sys
import zlib

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import avg_spectra  # noqa: E402
import calc_metrics  # noqa: E402
import dataset_tool  # noqa: E402
import gen_images  # noqa: E402
import gen_video  # noqa: E402


def _invoke(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    output = result.output + (str(result.exception) if result.exception else '')
    # A clean refusal is a click error (SystemExit 1/2); any other exception is a traceback for the user.
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(result.exception)
    return result.exit_code, output


def _run_capped(args, memory_bytes=2 << 30, timeout=300):
    """A CLI in a subprocess with an address-space cap (a bomb fails instead of eating the machine)."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    proc = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, preexec_fn=cap, cwd=REPO
    )
    return proc.returncode, proc.stdout + proc.stderr


def _bomb_png(path: pathlib.Path, width=100_000, height=100_000) -> pathlib.Path:
    """A ~100-byte PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    data = (
        b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b'')
    )
    path.write_bytes(data)
    return path


def _images(folder: pathlib.Path, num=4, res=16) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        PIL.Image.fromarray(np.full([res, res, 3], 40 * i, np.uint8)).save(folder / f'img{i}.png')
    return folder


# ----------------------------------------------------------------------------
# Non-finite and absurd numbers (item 9) and huge seed ranges (item 8).


@pytest.mark.parametrize(
    'args, match',
    [
        (['--trunc', 'nan'], 'finite'),
        (['--trunc', 'inf'], 'finite'),
        (['--translate', 'inf,0'], 'finite'),
        (['--translate', '0,nan'], 'finite'),
        (['--rotate', '1e300'], '1e300'),
        (['--rotate', 'nan'], 'nan'),
    ],
)
def test_gen_images_refuses_non_finite_numbers(tmp_path, args, match):
    code, out = _invoke(gen_images.main, ['--seeds', '0', '--outdir', tmp_path / 'out', *args])
    assert code == 2 and match in out.lower()
    assert not (tmp_path / 'out').exists()


def test_gen_images_huge_seed_range_is_refused_at_once(tmp_path):
    code, out = _run_capped(['gen_images.py', '--seeds', '0-99999999999', '--outdir', tmp_path / 'out'])
    assert code == 2 and 'more than 1,000,000 values' in out and 'Traceback' not in out


@pytest.mark.parametrize('option', ['--trunc', '--rotate'])
def test_other_tools_refuse_non_finite_numbers(tmp_path, option):
    if option == '--trunc':
        code, out = _invoke(gen_video.main, ['--seeds', '0-1', '--output', tmp_path / 'v.mp4', '--trunc', 'nan'])
        assert code == 2 and 'finite' in out
        code, out = _invoke(avg_spectra.main, ['stats', '--source', tmp_path, '--trunc', '-inf'])
        assert code == 2 and 'finite' in out
    else:
        code, out = _invoke(
            avg_spectra.main, ['calc', '--source', tmp_path, '--dest', tmp_path / 's.npz', '--mean', 'nan']
        )
        assert code == 2 and 'finite' in out


# ----------------------------------------------------------------------------
# Tracebacks (item 8).


def test_deep_tuple_dict_key_network_is_a_clear_error(tmp_path):
    path = tmp_path / 'deep.pkl'
    path.write_bytes(b'\x80\x04}' + b')' + b'\x85' * 100_000 + b'Ns.')
    code, out = _invoke(gen_images.main, ['--network', path, '--seeds', '0', '--outdir', tmp_path / 'out'])
    assert code == 1 and 'deeper than 100 levels' in out
    code, out = _invoke(avg_spectra.main, ['stats', '--source', path, '--num', '2'])
    assert code == 1 and 'deeper than 100 levels' in out


def test_decompression_bomb_images_are_clear_errors(tmp_path):
    data = _images(tmp_path / 'data')
    _bomb_png(data / 'zbomb.png')
    code, out = _invoke(dataset_tool.main, ['--source', data, '--dest', tmp_path / 'ds.zip'])
    assert code == 1 and 'zbomb.png' in out and 'decompression bomb' in out
    assert not (tmp_path / 'ds.zip').exists()
    code, out = _invoke(avg_spectra.main, ['stats', '--source', data])
    assert code == 1 and 'zbomb.png' in out


def test_output_paths_that_are_files_fail_before_the_work(tmp_path):
    existing = tmp_path / 'frames'
    existing.write_text('not a folder')
    code, out = _invoke(gen_video.main, ['--seeds', '0-1', '--output', existing])
    assert code == 1 and 'existing file' in out
    code, out = _invoke(calc_metrics.main, ['--metrics', 'eqt50k_int', '--num', '4', '--run-dir', existing])
    assert code == 1 and 'existing file' in out and 'Appended' not in out


def test_huge_class_labels_are_a_dataset_error(tmp_path):
    from training import dataset

    data = _images(tmp_path / 'data')
    labels = [[f'img{i}.png', 1e20 if i == 2 else i] for i in range(4)]
    (data / 'dataset.json').write_text(json.dumps({'labels': labels}))
    ds = dataset.ImageFolderDataset(str(data), use_labels=True)
    with pytest.raises(dataset.DatasetError, match=r"whole numbers in \[0, 65536\), got 1e\+20 for 'img2.png'"):
        ds.label_shape  # noqa: B018


# ----------------------------------------------------------------------------
# dataset_tool (item 9).


def test_dataset_tool_huge_resolution_is_refused_and_leaves_nothing(tmp_path):
    data = _images(tmp_path / 'data')
    dest = tmp_path / 'big.zip'
    code, out = _run_capped(['dataset_tool.py', '--source', data, '--dest', dest, '--resolution', '65536x65536'])
    assert code != 0 and 'at most 8192 pixels' in out and 'Traceback' not in out
    assert not dest.exists() and not list(tmp_path.glob('.big.zip*'))


def test_dataset_tool_failure_midway_leaves_no_partial_output(tmp_path):
    data = _images(tmp_path / 'data')
    noise = np.random.RandomState(0).randint(0, 256, [16, 16, 3], dtype=np.uint8)
    PIL.Image.fromarray(noise).save(tmp_path / 'noise.png')
    good = (tmp_path / 'noise.png').read_bytes()
    (data / 'img9.png').write_bytes(good[: len(good) * 4 // 5])  # header reads (the size scan passes), decoding fails
    for dest in (tmp_path / 'out.zip', tmp_path / 'outdir'):
        code, out = _invoke(dataset_tool.main, ['--source', data, '--dest', dest])
        assert code == 1 and 'img9.png' in out
        assert not dest.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith('.out')]


def test_dataset_tool_uses_first_frame_of_animated_gif_and_says_so(tmp_path):
    data = _images(tmp_path / 'data', num=2)
    frames = [PIL.Image.fromarray(np.full([16, 16, 3], v, np.uint8)) for v in (200, 10)]
    frames[0].save(data / 'anim.gif', save_all=True, append_images=frames[1:])
    code, out = _invoke(dataset_tool.main, ['--source', data, '--dest', tmp_path / 'ds'])
    assert code == 0 and 'Wrote 3 images' in out and "'anim.gif' is animated (2 frames): using its first frame" in out
    first = np.asarray(PIL.Image.open(tmp_path / 'ds' / '00000' / 'img00000000.png'))
    assert abs(int(first.mean()) - 200) <= 2  # anim.gif sorts first: frame 0 (200), not frame 1 (10)


@pytest.mark.parametrize(
    'labels, match',
    [
        ({'img0.png': 0, 'img1.png': 1, 'img2.png': 1}, 'no label'),  # img3.png missing
        ({'img0.png': 0, 'img1.png': 'cat', 'img2.png': 1, 'img3.png': 0}, 'neither a class index'),
        ({'img0.png': 0, 'img1.png': 10**9, 'img2.png': 1, 'img3.png': 0}, 'outside'),
    ],
)
def test_dataset_tool_bad_labels_are_errors_unless_asked(tmp_path, labels, match):
    data = _images(tmp_path / 'data')
    (data / 'dataset.json').write_text(json.dumps({'labels': [[k, v] for k, v in labels.items()]}))
    code, out = _invoke(dataset_tool.main, ['--source', data, '--dest', tmp_path / 'ds.zip'])
    assert code == 1 and match in out and '--drop-bad-labels' in out and not (tmp_path / 'ds.zip').exists()
    code, out = _invoke(dataset_tool.main, ['--source', data, '--dest', tmp_path / 'ds.zip', '--drop-bad-labels'])
    assert code == 0 and 'no labels' in out and match in out


# ----------------------------------------------------------------------------
# The GUI side (item 9): the one request validation refuses non-finite numbers.


@pytest.mark.parametrize('field', ['trunc_psi', 'img_scale_db', 'fft_range_db', 'fft_beta'])
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), float('-inf')])
def test_render_requests_refuse_non_finite_numbers(field, bad):
    from engine.protocol import RenderRequest, request_errors

    errors = request_errors(RenderRequest(**{field: bad}))
    assert any(field in e and 'finite' in e for e in errors), errors
    assert request_errors(RenderRequest()) == ()


def test_render_request_latent_must_be_finite():
    from engine.protocol import RenderRequest, request_errors

    assert any('ws must hold finite' in e for e in request_errors(RenderRequest(ws=((0.0, float('nan')),))))
    assert request_errors(RenderRequest(ws=((0.0, 1.0),))) == ()
