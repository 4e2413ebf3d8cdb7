"""bias_act: reference parity (ops.npz), numpy-loop oracle, gradients, activation_funcs metadata, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from torch_utils.ops import bias_act as BA


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    """Tiny ops are dominated by thread start-up on a loaded machine: run them on one intra-op thread."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# Scalar definitions written independently of torch (the oracle).
_SCALAR = {
    'linear': lambda v, a: v,
    'relu': lambda v, a: max(v, 0.0),
    'lrelu': lambda v, a: v if v >= 0 else v * a,
    'tanh': lambda v, a: math.tanh(v),
    'sigmoid': lambda v, a: 1 / (1 + math.exp(-v)),
    'elu': lambda v, a: v if v > 0 else math.exp(v) - 1,
    'selu': lambda v, a: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1)),
    'softplus': lambda v, a: math.log1p(math.exp(v)),
    'swish': lambda v, a: v / (1 + math.exp(-v)),
}

# Case table: (shape, dim, act, alpha, gain, clamp, layout).
CASES = [
    ([2, 3, 5, 4], 1, 'lrelu', None, None, None, 'contig'),
    ([1, 3, 5, 4], 1, 'lrelu', 0.1, 2.0, 0.3, 'channels_last'),
    ([2, 4], 1, 'linear', None, 0.5, None, 'contig'),
    ([3, 5], 0, 'relu', None, None, 0.7, 'noncontig'),
    ([2, 3, 4, 5], 3, 'swish', None, 1.5, None, 'noncontig'),
    ([2, 3, 4, 5], -1, 'elu', None, None, 0.5, 'contig'),
] + [([1, 3, 3, 2], 1, act, None, None, None, 'contig') for act in ('tanh', 'sigmoid', 'selu', 'softplus')]


def _oracle(x: np.ndarray, b: np.ndarray | None, dim, act, alpha, gain, clamp) -> np.ndarray:
    spec = BA.activation_funcs[act]
    alpha = spec.def_alpha if alpha is None else alpha
    gain = spec.def_gain if gain is None else gain
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        v = float(x[idx]) + (float(b[idx[dim]]) if b is not None else 0.0)
        v = _SCALAR[act](v, alpha) * gain
        if clamp is not None:
            v = min(max(v, -clamp), clamp)
        out[idx] = v
    return out


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == 'noncontig':
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
        assert not x.is_contiguous()
    elif layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x


def test_parity_ops_npz(parity_dir, close_report):
    d = np.load(parity_dir / 'ops.npz')
    cases = [c for c in json.loads(str(d['meta'])) if c['key'].startswith('bias_act.')]
    assert {c['act'] for c in cases} == set(BA.activation_funcs)
    x = torch.tensor(d['upfirdn2d.x'])
    b = torch.tensor(d['bias_act.b'])
    for case in cases:
        kwargs = {k: v for k, v in case.items() if k != 'key'}
        for impl in ('ref', 'auto'):
            y = BA.bias_act(x, b, impl=impl, **kwargs)
            close_report(y, d[case['key']], atol=1e-6, rtol=1e-6, name=f'{case["key"]} impl={impl}')


@pytest.mark.parametrize('case', CASES, ids=[f'{c[2]}-{i}' for i, c in enumerate(CASES)])
def test_numpy_oracle(case, close_report):
    shape, dim, act, alpha, gain, clamp, layout = case
    rnd = np.random.RandomState(0)
    x = rnd.randn(*shape) * 2
    b = rnd.randn(shape[dim])
    y = BA.bias_act(
        _layout(torch.tensor(x), layout), torch.tensor(b), dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp
    )
    close_report(y, _oracle(x, b, dim, act, alpha, gain, clamp), atol=1e-12, rtol=1e-12, name=f'{case}')
    y0 = BA.bias_act(torch.tensor(x), None, act=act, alpha=alpha, gain=gain, clamp=clamp)
    close_report(y0, _oracle(x, None, dim, act, alpha, gain, clamp), atol=1e-12, rtol=1e-12, name='no bias')


@pytest.mark.parametrize('act', sorted(BA.activation_funcs))
def test_gradcheck_and_gradgradcheck(act):
    torch.manual_seed(0)
    # Keep away from the kinks of relu/lrelu/elu and from the clamp edges, where finite differences are invalid.
    x = torch.randn(2, 3, 2, dtype=torch.float64)
    x = (x + 0.1 * x.sign()).requires_grad_()
    b = torch.tensor([0.05, -0.02, 0.03], dtype=torch.float64, requires_grad=True)
    clamp = 3.1 if act != 'linear' else 0.9
    fn = lambda x, b: BA.bias_act(x, b, act=act, gain=1.3, clamp=clamp)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_activation_funcs_metadata():
    specs = BA.activation_funcs
    assert set(specs) == {'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish'}
    for name in ('relu', 'lrelu', 'swish'):
        assert specs[name].def_gain == pytest.approx(math.sqrt(2))
    for name in ('linear', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus'):
        assert specs[name].def_gain == 1
    assert specs['lrelu'].def_alpha == 0.2 and specs['lrelu']['def_alpha'] == 0.2
    assert all(s.def_alpha == 0 for n, s in specs.items() if n != 'lrelu')
    assert specs['tanh'].has_2nd_grad and not specs['relu'].has_2nd_grad


def test_defaults_and_batch():
    x = torch.tensor([[-1.0, 2.0]])
    torch.testing.assert_close(BA.bias_act(x, act='lrelu'), torch.tensor([[-0.2, 2.0]]) * math.sqrt(2))
    torch.testing.assert_close(BA.bias_act(x, clamp=1.5), torch.tensor([[-1.0, 1.5]]))
    torch.testing.assert_close(BA.bias_act(x), x)
    xb = torch.randn(4, 3, 2)
    b = torch.randn(3)
    torch.testing.assert_close(BA.bias_act(xb, b, act='tanh')[2:3], BA.bias_act(xb[2:3], b, act='tanh'))


def test_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match='act must be'):
        BA.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match='impl'):
        BA.bias_act(x, impl='cuda')
    with pytest.raises(ValueError, match='entries'):
        BA.bias_act(x, torch.zeros(4))
    with pytest.raises(TypeError, match='floating'):
        BA.bias_act(x.long())
