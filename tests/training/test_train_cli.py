"""train.py command line: presets in training_options.json, run-dir naming, clear one-line errors; plot_stats."""

import json
import pathlib

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import train
from training import plot_stats


def _dataset(path: pathlib.Path, res=16, num=4, corrupt_index=None) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        fname = path / f'img{i:03d}.png'
        if i == corrupt_index:
            fname.write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
        else:
            PIL.Image.fromarray(np.full([res, res, 3], 40 * i, np.uint8)).save(fname)
    return path


def _run(args):
    result = CliRunner().invoke(train.main, args)
    return result


BASE = ['--gamma', '1', '--batch', '4', '--device', 'cpu', '--workers', '0']


@pytest.mark.parametrize('cfg', ['stylegan2', 'stylegan3-t', 'stylegan3-r'])
def test_dry_run_writes_preset_options(cfg, tmp_path):
    data = _dataset(tmp_path / 'mydata')
    result = _run(['--outdir', str(tmp_path / 'out'), '--cfg', cfg, '--data', str(data), '--dry-run', *BASE])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / 'out').iterdir()
    assert run_dir.name == f'00000-{cfg}-mydata-gpus1-batch4-gamma1'
    c = json.loads((run_dir / 'training_options.json').read_text())
    assert c['batch_size'] == 4 and c['batch_gpu'] == 4 and c['ema_kimg'] == pytest.approx(4 * 10 / 32)
    assert c['D_opt_kwargs']['betas'] == [0, 0.99] and c['D_opt_kwargs']['lr'] == 0.002
    assert c['ada_target'] == 0.6 and c['augment_kwargs']['xflip'] == 1
    if cfg == 'stylegan2':
        assert c['G_opt_kwargs']['lr'] == 0.002 and c['G_kwargs']['mapping_kwargs']['num_layers'] == 8
        assert c['loss_kwargs']['style_mixing_prob'] == 0.9 and c['loss_kwargs']['pl_weight'] == 2
    else:
        assert c['G_opt_kwargs']['lr'] == 0.0025 and c['G_kwargs']['mapping_kwargs']['num_layers'] == 2
        assert c['G_kwargs']['magnitude_ema_beta'] == pytest.approx(0.5 ** (4 / 20000))
    if cfg == 'stylegan3-r':
        assert c['loss_kwargs']['blur_fade_kimg'] == pytest.approx(4 * 200 / 32)
    # A second run gets the next id.
    result = _run(['--outdir', str(tmp_path / 'out'), '--cfg', cfg, '--data', str(data), '--dry-run', *BASE])
    assert result.exit_code == 0 and (tmp_path / 'out' / f'00001-{cfg}-mydata-gpus1-batch4-gamma1').is_dir()


def _assert_clear_error(result, *fragments):
    assert result.exit_code != 0
    assert 'Traceback' not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_errors_are_clear(tmp_path):
    data = _dataset(tmp_path / 'ok')
    out = str(tmp_path / 'out')
    _assert_clear_error(_run(['--outdir', out, '--cfg', 'stylegan4', '--data', str(data), *BASE]), '--cfg')
    empty = tmp_path / 'empty'
    empty.mkdir()
    _assert_clear_error(_run(['--outdir', out, '--cfg', 'stylegan2', '--data', str(empty), *BASE]), 'no image')
    corrupt = _dataset(tmp_path / 'corrupt', corrupt_index=0)
    _assert_clear_error(_run(['--outdir', out, '--cfg', 'stylegan2', '--data', str(corrupt), *BASE]), 'img000.png')
    args = ['--outdir', out, '--cfg', 'stylegan2', '--data', str(data), '--gpus', '3', *BASE]
    _assert_clear_error(_run(args), '--batch')
    args = ['--outdir', out, '--cfg', 'stylegan2', '--data', str(data), '--batch-gpu', '3', *BASE]
    _assert_clear_error(_run(args), '--batch')
    args = ['--outdir', out, '--cfg', 'stylegan2', '--data', str(data), '--metrics', 'nonsense', *BASE]
    _assert_clear_error(_run(args), '--metrics')
    args = ['--outdir', out, '--cfg', 'stylegan2', '--data', str(data), '--resume', str(tmp_path / 'nope.pkl'), *BASE]
    _assert_clear_error(_run(args), 'nope.pkl')


def test_corrupt_image_during_training_is_a_clear_error(tmp_path):
    data = _dataset(tmp_path / 'late', num=4, corrupt_index=2)
    args = ['--outdir', str(tmp_path / 'out'), '--cfg', 'stylegan2', '--data', str(data), '--kimg', '0.004',
            '--cbase', '64', '--cmax', '8', '--aug', 'noaug', *BASE]  # fmt: skip
    _assert_clear_error(_run(args), 'img002.png')


def test_plot_stats_writes_png(tmp_path):
    rows = [
        {'Progress/kimg': {'num': 1, 'mean': k, 'std': 0}, 'Loss/G/loss': {'num': 4, 'mean': 1 - k, 'std': 0.1},
         'Loss/D/loss': {'num': 4, 'mean': 1 + k, 'std': 0.1}, 'Progress/augment': {'num': 1, 'mean': k / 2, 'std': 0},
         'Timing/sec_per_kimg': {'num': 1, 'mean': 10.0, 'std': 0}, 'timestamp': 0}
        for k in (0.0, 0.1, 0.2)
    ]  # fmt: skip
    (tmp_path / 'stats.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n{"trunc')
    out = plot_stats.plot_stats(tmp_path)
    assert out == tmp_path / 'stats.png'
    with PIL.Image.open(out) as img:
        assert img.size == (1000, 700)
    result = CliRunner().invoke(plot_stats.main, [str(tmp_path / 'missing')])
    assert result.exit_code != 0 and 'Traceback' not in result.output


def test_plot_stats_csv_one_row_per_tick(tmp_path):
    import csv

    rows = [
        {'Progress/kimg': {'num': 1, 'mean': 0.0, 'std': 0}, 'Loss/G/loss': {'num': 4, 'mean': 0.5, 'std': 0.1},
         'timestamp': 100.5},
        {'Progress/kimg': {'num': 1, 'mean': 0.1, 'std': 0}, 'Loss/G/loss': {'num': 4, 'mean': 0.25, 'std': 0.1},
         'Metrics/fid50k': {'num': 1, 'mean': 42.0, 'std': 0}, 'timestamp': 200.0},
    ]  # fmt: skip
    (tmp_path / 'stats.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    result = CliRunner().invoke(plot_stats.main, [str(tmp_path), '--csv', str(tmp_path / 'csv' / 'out.csv')])
    assert result.exit_code == 0, result.output
    assert (tmp_path / 'stats.png').is_file()
    with open(tmp_path / 'csv' / 'out.csv', newline='') as f:
        table = list(csv.reader(f))
    assert table[0] == ['tick', 'timestamp', 'Progress/kimg', 'Loss/G/loss', 'Metrics/fid50k']
    assert table[1] == ['0', '100.5', '0.0', '0.5', '']
    assert table[2] == ['1', '200.0', '0.1', '0.25', '42.0']
    assert sorted(p.name for p in (tmp_path / 'csv').iterdir()) == ['out.csv']
