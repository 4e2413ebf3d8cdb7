"""bench/gpu_check.py in its no-CUDA mode: every section runs its CPU-checkable part and the report is complete."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_its_cpu_parts(tmp_path):
    pytest.importorskip('triton')
    out = tmp_path / 'report.json'
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    proc = subprocess.run(
        [sys.executable, 'bench/gpu_check.py', '--quick', '--device', 'cpu', '--out', str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert 'No CUDA device' in proc.stdout and 'report written' in proc.stdout
    report = json.loads(out.read_text())
    assert report['ok'] and report['cuda'] is False
    assert {(r['op'], r['dtype']) for r in report['parity']} == {
        (op, dt) for op in ('filtered_lrelu', 'upfirdn2d', 'bias_act') for dt in ('float32', 'float16')
    }
    assert all(r['status'] == 'pass' and r['forward_rel_err'] < 1e-2 for r in report['parity'])
    assert {r['config'] for r in report['frames']} == {'sg3t-cpu', 'sg3r-cpu'}
    assert all(r['status'] == 'pass' and r['ref_ms_per_frame'] > 0 and r['finite'] for r in report['frames'])
    modes = {(r['mode'], r['request']) for r in report['renderer']}
    for mode in ('in-process', 'separate process'):
        assert {(mode, q) for q in ('output', 'layer', 'fft', 'transform', 'force_fp32')} <= modes
    assert all(r['status'] == 'pass' for r in report['renderer'])
    assert [r['cfg'] for r in report['training']] == ['stylegan3-t', 'stylegan2']
    assert all(r['status'] == 'pass' and {'Greg', 'Dreg'} <= set(r['phases']) for r in report['training'])


def test_gpu_check_rejects_bad_arguments():
    proc = subprocess.run(
        [sys.executable, 'bench/gpu_check.py', '--sections', 'parity,nonsense'],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and 'nonsense' in proc.stderr
