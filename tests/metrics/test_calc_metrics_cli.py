"""calc_metrics.py end to end on a tiny StyleGAN3 snapshot: jsonl beside the snapshot, clear one-line errors."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from click.testing import CliRunner

import calc_metrics


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    from training.networks_stylegan3 import Generator

    torch.manual_seed(0)
    G = Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
        num_layers=4, mapping_kwargs=dict(num_layers=2),
    ).eval()  # fmt: skip
    path = tmp_path_factory.mktemp('run') / 'network-snapshot-000000.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'G_ema': G, 'training_set_kwargs': None}, f)
    return path


def test_eqt_int_appends_jsonl_beside_snapshot(snapshot):
    result = CliRunner().invoke(
        calc_metrics.main,
        ['--network', str(snapshot), '--metrics', 'eqt50k_int', '--num', '2', '--device', 'cpu', '--no-progress'],
    )
    assert result.exit_code == 0, result.output
    lines = (snapshot.parent / 'metric-eqt50k_int.jsonl').read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry['snapshot_pkl'] == snapshot.name and entry['num_gpus'] == 1 and entry['num_samples'] == 2
    assert entry['results']['eqt50k_int'] > 60
    printed = [json.loads(s) for s in result.output.splitlines() if s.startswith('{')]
    assert printed[-1]['metric'] == 'eqt50k_int'


def test_cli_errors(snapshot, tmp_path, monkeypatch):
    monkeypatch.setenv('SG3VIZ_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('SG3VIZ_DETECTOR', raising=False)
    runner = CliRunner()
    result = runner.invoke(calc_metrics.main, ['--network', str(snapshot), '--metrics', 'fid'])
    assert result.exit_code != 0 and 'fid50k_full' in result.output
    result = runner.invoke(calc_metrics.main, ['--network', str(snapshot), '--metrics', 'fid50k_full', '--num', '2'])
    assert result.exit_code != 0 and '--data' in result.output and 'Traceback' not in result.output
    result = runner.invoke(
        calc_metrics.main,
        ['--network', str(snapshot), '--metrics', 'fid50k_full', '--data', str(tmp_path), '--num', '2'],
    )
    assert result.exit_code != 0 and 'inception-2015-12-05.pkl' in result.output


def test_multi_process_missing_network_fails_before_spawning(tmp_path, monkeypatch):
    def no_spawn(*args, **kwargs):
        raise AssertionError('spawned worker processes for a missing network file')

    monkeypatch.setattr('torch.multiprocessing.spawn', no_spawn)
    args = ['--network', str(tmp_path / 'missing.pkl'), '--metrics', 'eqt50k_int', '--gpus', '2', '--device', 'cpu']
    result = CliRunner().invoke(calc_metrics.main, args)
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert [ln for ln in result.output.splitlines() if ln.strip()] == [
        f'Error: network file not found: {tmp_path / "missing.pkl"}; check the path (or pass a URL or a training run '
        'directory)'
    ]
