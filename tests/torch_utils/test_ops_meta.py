"""Meta-tests: every op has a case table and a test file, ops.npz is fully covered, impl_report is sane."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pathlib

import numpy as np
import pytest
import torch

OPS = ['bias_act', 'upfirdn2d', 'filtered_lrelu', 'conv2d_gradfix', 'conv2d_resample', 'fma', 'grid_sample_gradfix']
HERE = pathlib.Path(__file__).resolve().parent


def _load(op: str):
    path = HERE / f'test_ops_{op}.py'
    assert path.is_file(), f'{op} has no test file {path.name}'
    spec = importlib.util.spec_from_file_location(f'_meta_test_ops_{op}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('op', OPS)
def test_every_op_has_cases_and_gradchecks(op):
    module = _load(op)
    cases = getattr(module, 'CASES', None)
    assert cases, f'test_ops_{op}.py has no CASES table'
    assert any(name.startswith('test_gradcheck') for name in dir(module)), f'{op} has no gradcheck test'
    mod = importlib.import_module(f'torch_utils.ops.{op}')
    public = {'conv2d_gradfix': 'conv2d', 'grid_sample_gradfix': 'grid_sample'}.get(op, op)
    assert callable(getattr(mod, public))
    if op != 'conv2d_gradfix':  # conv2d_gradfix wraps torch's own convolutions: no separate specification
        assert callable(getattr(mod, f'_{public}_ref', None)), f'{op} lacks _{public}_ref'


def test_ops_npz_every_case_has_a_test(parity_dir):
    d = np.load(parity_dir / 'ops.npz')
    prefixes = {c['key'].split('.')[0] for c in json.loads(str(d['meta']))}
    for prefix in prefixes:
        assert prefix in OPS, f'ops.npz has cases for {prefix}, which has no op module'
        assert 'test_parity_ops_npz' in dir(_load(prefix)), f'test_ops_{prefix}.py does not check ops.npz'


def test_impl_report():
    from torch_utils import ops

    for dev in ('cpu', 'mps', 'cuda:0', torch.device('cpu')):
        report = ops.impl_report(dev)
        assert set(report) == set(OPS)
        assert all(isinstance(v, str) and v for v in report.values())
    assert ops.impl_report('cpu', torch.float16)['upfirdn2d'] == 'fast'
    with pytest.raises(ValueError, match='device'):
        ops.impl_report('nonsense')
    with pytest.raises(ValueError, match='dtype'):
        ops.impl_report('cpu', torch.int32)


def test_embedded_source_imports():
    """The names embedded network sources use (docs/ops.md)."""
    from torch_utils.ops import (
        bias_act,
        conv2d_gradfix,
        conv2d_resample,
        filtered_lrelu,
        fma,
        grid_sample_gradfix,
        upfirdn2d,
    )

    assert bias_act.activation_funcs['lrelu'].def_gain > 1
    for name in ('setup_filter', 'upfirdn2d', 'filter2d', 'upsample2d', 'downsample2d'):
        assert callable(getattr(upfirdn2d, name))
    assert callable(filtered_lrelu.filtered_lrelu) and callable(conv2d_resample.conv2d_resample) and callable(fma.fma)
    assert callable(conv2d_gradfix.no_weight_gradients) and isinstance(conv2d_gradfix.enabled, bool)
    assert isinstance(grid_sample_gradfix.enabled, bool) and callable(grid_sample_gradfix.grid_sample)


def test_default_impl_does_not_split_compiled_graphs():
    """torch.compile of the ops inside default_impl('ref') traces into one graph (the scoped choice is read once
    while tracing instead of breaking the graph at every op); gpu_check compiles the reference path this way."""
    from torch_utils import ops
    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    f = upfirdn2d.setup_filter([1, 3, 3, 1])

    def chain(x):
        x = bias_act.bias_act(upfirdn2d.upsample2d(x, f), act='lrelu')
        return filtered_lrelu.filtered_lrelu(x, f, f, up=2, down=2, padding=3)

    with ops.default_impl('ref'):
        explanation = torch._dynamo.explain(chain)(torch.randn(1, 2, 8, 8))
    assert explanation.graph_break_count == 0, explanation.break_reasons
