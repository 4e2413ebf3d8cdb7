"""EQ-T / EQ-R on generators whose equivariance is known by construction, plus the metric API and the jsonl."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metrics import equivariance as eq
from metrics import metric_main


@pytest.mark.parametrize('metric', ['eqt50k_int', 'eqt50k_frac', 'eqr50k'])
def test_equivariant_stub_scores_high_and_fixed_pattern_scores_low(stub_generator, metric):
    good = metric_main.calc_metric(metric, stub_generator(img_resolution=32), num=8)
    bad = metric_main.calc_metric(metric, stub_generator(img_resolution=32, fixed_pattern=True), num=8)
    threshold = 100 if metric == 'eqt50k_int' else 40  # Integer shifts are exact; resampling is not.
    assert good.results[metric] > threshold, good
    assert bad.results[metric] < 15, bad
    assert good.metric == metric and good.num_gpus == 1 and good.num_samples == 8


def test_metric_does_not_modify_the_callers_generator(stub_generator):
    G = stub_generator()
    G.synthesis.input.transform[0, 2] = 0.25
    before = G.synthesis.input.transform.clone()
    metric_main.calc_metric('eqt50k_int', G, num=4)
    assert torch.equal(G.synthesis.input.transform, before)


def test_real_stylegan3_integer_translation_is_equivariant():
    """Sign convention on a tiny StyleGAN3-T: the input transform moves content by +t (docs/compatibility.md §3)."""
    from training.networks_stylegan3 import Generator

    torch.manual_seed(0)
    G = Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
        num_layers=4, mapping_kwargs=dict(num_layers=2),
    ).eval()  # fmt: skip
    result = metric_main.calc_metric('eqt50k_int', G, num=2)
    assert result.results['eqt50k_int'] > 60, result
    # The opposite sign would be far worse: the metric would be measuring the wrong direction.
    ws = G.mapping(torch.randn([1, 8]), None)
    with torch.no_grad():
        orig = eq._render(G, ws, np.eye(3))
        img = eq._render(G, ws, eq.translation_matrix(2 / 16, 1 / 16))
    ref, mask = eq.integer_translate(orig, -2, -1)
    assert eq.psnr_db(np.divide(*eq.masked_squared_error(img, ref, mask))) < 40


def test_network_without_input_transform_is_a_clear_error(stub_generator):
    with pytest.raises(metric_main.MetricError, match=r'input transform.*StyleGAN2'):
        metric_main.calc_metric('eqr50k', stub_generator(transform=False), num=2)


def test_api_validation():
    assert set(metric_main.list_valid_metrics()) >= {
        'eqt50k_int',
        'eqt50k_frac',
        'eqr50k',
        'fid50k_full',
        'kid50k_full',
    }
    assert metric_main.is_valid_metric('fid50k_full') and not metric_main.is_valid_metric('fid')
    with pytest.raises(ValueError, match='metric must be one of'):
        metric_main.calc_metric('fid', None)
    with pytest.raises(ValueError, match='num must be'):
        metric_main.calc_metric('eqr50k', None, num=0)


def test_report_metric_appends_reference_jsonl(stub_generator, tmp_path):
    snapshot = tmp_path / 'network-snapshot-000000.pkl'
    snapshot.write_bytes(b'')
    result = metric_main.calc_metric('eqt50k_int', stub_generator(), num=2)
    for _ in range(2):
        metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=str(snapshot))
    lines = (tmp_path / 'metric-eqt50k_int.jsonl').read_text().splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[-1])
    assert set(entry) >= {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp'}
    assert entry['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert entry['metric'] == 'eqt50k_int' and 'eqt50k_int' in entry['results']
    assert metric_main.format_time(3725) == '1h 02m 05s'
