"""train.py --metrics end to end: a tiny StyleGAN3-T run computes eqt50k_int at each network snapshot (issue 7)."""

import json
import math
import pathlib

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import train

BASE = ['--cfg', 'stylegan3-t', '--gamma', '1', '--batch', '4', '--device', 'cpu', '--workers', '0']
TINY = ['--cbase', '128', '--cmax', '8', '--aug', 'noaug', '--tick', '0.004', '--snap', '1']
REFERENCE_KEYS = {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp'}


def _dataset(path: pathlib.Path, res=16, num=4) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(num):
        PIL.Image.fromarray(rnd.randint(0, 256, [res, res, 3]).astype(np.uint8)).save(path / f'img{i:03d}.png')
    return path


def _run(args):
    return CliRunner().invoke(train.main, args)


def test_eqt50k_int_is_written_at_each_snapshot(tmp_path, monkeypatch):
    # The only shortcut: 2x2 image-snapshot grids instead of the CLI's 12x8 at 16 px (most of the run time on a CPU).
    build = train.build_training_options
    monkeypatch.setattr(train, 'build_training_options', lambda **kwargs: dict(build(**kwargs), grid_size=[2, 2]))
    data = _dataset(tmp_path / 'data')
    out = tmp_path / 'out'
    # 2 iterations of 4 images, a tick per iteration and a snapshot per tick: 2 snapshots (both named 000000).
    args = ['--outdir', str(out), '--data', str(data), '--kimg', '0.008', '--metrics', 'eqt50k_int',
            '--metrics-num', '4', *BASE, *TINY]  # fmt: skip
    result = _run(args)
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / 'training_options.json').read_text())['metrics_num'] == 4
    num_snapshots = (run_dir / 'log.txt').read_text().count('Evaluating metrics...')
    assert num_snapshots == 2

    lines = (run_dir / 'metric-eqt50k_int.jsonl').read_text().splitlines()
    assert len(lines) == num_snapshots
    for line in lines:
        entry = json.loads(line)
        assert REFERENCE_KEYS <= set(entry), entry
        assert entry['metric'] == 'eqt50k_int' and entry['num_gpus'] == 1 and entry['num_samples'] == 4
        assert set(entry['results']) == {'eqt50k_int'}
        assert math.isfinite(entry['results']['eqt50k_int']), entry
        assert math.isfinite(entry['total_time']) and entry['total_time'] >= 0
        assert entry['snapshot_pkl'].startswith(
            'network-snapshot-000000.'
        )  # Relative to the run dir, as the reference.
        assert (run_dir / entry['snapshot_pkl']).is_file()
    assert len({json.loads(line)['snapshot_pkl'] for line in lines}) == num_snapshots  # ticks < 1 kimg: no overwrite
    assert not list(run_dir.glob('metric-*.jsonl'))[1:], 'only the requested metric is written'


@pytest.mark.parametrize(
    'extra, fragments',
    [
        (['--metrics', 'eqt50k_nonsense'], ['--metrics', 'eqt50k_nonsense', 'eqt50k_int', 'fid50k_full']),
        (['--metrics', 'eqt50k_int,fid51k'], ['--metrics', 'fid51k']),
        (['--metrics', 'eqt50k_int', '--metrics-num', '0'], ['--metrics-num']),
    ],
)
def test_bad_metrics_options_are_clear_errors(extra, fragments, tmp_path):
    data = _dataset(tmp_path / 'data')
    out = tmp_path / 'out'
    result = _run(['--outdir', str(out), '--data', str(data), '--kimg', '0.004', *extra, *BASE, *TINY])
    assert result.exit_code != 0
    assert 'Traceback' not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert not out.exists(), 'nothing is trained or written'
