"""ONNX export of the small test networks, verified against PyTorch in ONNX Runtime (needs the `onnx` extra)."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from engine.onnx_export import OnnxExportError, export_generator_onnx, make_export_module, onnx_inputs  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def _sg3(cfg, c_dim=0):
    from training.networks_stylegan3 import Generator

    torch.manual_seed(3)
    kwargs = dict(conv_kernel=1, channel_base=512, channel_max=32, use_radial_filters=True) if cfg == 'r' else {}
    G = Generator(
        z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3, num_layers=4,
        mapping_kwargs=dict(num_layers=2), **({'channel_base': 256, 'channel_max': 16} | kwargs),
    )  # fmt: skip
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([8]))
    return G.eval()


def _sg2(c_dim=0):
    from training.networks_stylegan2 import Generator

    torch.manual_seed(2)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=16)
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([8]))
        for name, buf in G.named_buffers():
            if name.endswith('noise_const'):
                buf.copy_(torch.randn(buf.shape))
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.fill_(0.3)
    return G.eval()


def _run_ort(path, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == list(feeds)
    return session.run(['img'], feeds)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    'make, inputs, batch',
    [
        (lambda: _sg2(c_dim=3), 'z', 2),  # StyleGAN2, conditional, const noise baked in
        (lambda: _sg3('t'), 'ws', 1),  # StyleGAN3-T from ws
        (lambda: _sg3('r', c_dim=2), 'z', 1),  # StyleGAN3-R, conditional
    ],
)
def test_export_matches_pytorch(tmp_path, make, inputs, batch, close_report):
    G = make()
    report = export_generator_onnx(G, tmp_path / 'G.onnx', batch=batch, inputs=inputs)
    assert report['max_abs_diff'] <= 1e-3 and report['opset'] == 18
    assert report['output_shape'] == [batch, 3, 16, 16]
    # Independent check with other inputs: the truncation psi is a live input, the batch is N.
    feeds = onnx_inputs(G, inputs, batch, seed=7, psi=0.4)
    actual = _run_ort(tmp_path / 'G.onnx', feeds)
    with torch.no_grad():
        if inputs == 'ws':
            expected = G.synthesis(torch.from_numpy(feeds['ws']), noise_mode='const')
        else:
            c = torch.from_numpy(feeds['c']) if 'c' in feeds else torch.zeros([batch, 0])
            expected = G(torch.from_numpy(feeds['z']), c, truncation_psi=0.4, noise_mode='const')
    close_report(actual, expected, atol=1e-3, name='ORT vs PyTorch')
    assert float(np.abs(actual).max()) > 1e-3  # not a blank image


def test_bad_arguments_write_nothing(tmp_path):
    G = _sg2()
    with pytest.raises(ValueError, match='opset must be >= 18'):
        export_generator_onnx(G, tmp_path / 'a.onnx', opset=13)
    with pytest.raises(ValueError, match='batch must be >= 1'):
        export_generator_onnx(G, tmp_path / 'a.onnx', batch=0)
    with pytest.raises(ValueError, match="inputs must be 'z' or 'ws'"):
        make_export_module(G, 'x')
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_leaves_no_file(tmp_path, monkeypatch):
    G = _sg3('t')
    with pytest.raises(OnnxExportError, match='differs from PyTorch'):
        export_generator_onnx(G, tmp_path / 'a.onnx', inputs='ws', tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_exports_a_tiny_pickle(tmp_path):
    path = tmp_path / 'net.pkl'
    path.write_bytes(pickle.dumps({'G_ema': _sg2()}))
    r = subprocess.run(
        [sys.executable, str(REPO / 'export_onnx.py'), '--network', str(path), '--output', str(tmp_path / 'G.onnx'),
         '--inputs', 'ws', '--batch', '2'],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert 'verified in ONNX Runtime: max abs diff' in r.stdout and 'ws [2, 6, 8]' in r.stdout, r.stdout
    assert (tmp_path / 'G.onnx').is_file()
