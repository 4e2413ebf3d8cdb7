"""conv2d_gradfix: same results as torch, no_weight_gradients semantics, double backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix as G

# Case table: (op, input shape, weight shape, kwargs, layout).
CASES = [
    ('conv2d', [2, 4, 7, 6], [6, 2, 3, 3], dict(stride=1, padding=1, groups=2), 'contig'),
    ('conv2d', [1, 3, 8, 7], [2, 3, 3, 1], dict(stride=2, padding=[0, 1], dilation=1), 'channels_last'),
    ('conv_transpose2d', [2, 4, 5, 4], [4, 3, 3, 3], dict(stride=2, padding=0), 'noncontig'),
    ('conv_transpose2d', [1, 2, 4, 5], [2, 2, 4, 4], dict(stride=2, padding=1, output_padding=1, groups=2), 'contig'),
]


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture
def gradfix_enabled():
    old = G.enabled
    G.enabled = True
    try:
        yield
    finally:
        G.enabled = old


def _layout(x, layout):
    if layout == 'noncontig':
        return x.transpose(2, 3).contiguous().transpose(2, 3)
    if layout == 'channels_last':
        return x.to(memory_format=torch.channels_last)
    return x


@pytest.mark.parametrize('enabled', [False, True])
@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_matches_torch(case, enabled, monkeypatch, close_report):
    op, xs, ws, kwargs, layout = case
    monkeypatch.setattr(G, 'enabled', enabled)
    torch.manual_seed(0)
    x = torch.randn(xs)
    w = torch.randn(ws, requires_grad=True)
    b = torch.randn(ws[0] if op == 'conv2d' else ws[1] * kwargs.get('groups', 1))
    ours = getattr(G, op)(_layout(x, layout), w, b, **kwargs)
    theirs = getattr(F, op)(x, w, b, **kwargs)
    close_report(ours, theirs, atol=1e-5, rtol=1e-5, name=op)
    (g1,) = torch.autograd.grad(ours.square().sum(), w)
    (g2,) = torch.autograd.grad(theirs.square().sum(), w)
    close_report(g1, g2, atol=1e-4, rtol=1e-5, name='weight grad')


@pytest.mark.parametrize('op', ['conv2d', 'conv_transpose2d'])
def test_gradcheck_and_gradgradcheck(op, gradfix_enabled):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fn = lambda x, w, b: getattr(G, op)(x, w, b, stride=2 if op == 'conv_transpose2d' else 1, padding=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_no_weight_gradients(gradfix_enabled):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    y = G.conv2d(x, w, padding=1)
    # Read at backward time, like the reference (the context wraps autograd.grad, not the forward).
    with G.no_weight_gradients():
        assert G.weight_gradients_disabled
        gx, gw = torch.autograd.grad(y.sum(), [x, w], allow_unused=True, create_graph=True)
    assert not G.weight_gradients_disabled
    assert gw is None and gx is not None
    # Second order through the input gradient still reaches the weight (path-length regulariser pattern).
    (gw2,) = torch.autograd.grad(gx.square().sum(), [w])
    assert gw2.abs().sum() > 0
    # disable=False is a no-op; outside the block weight gradients are back.
    with G.no_weight_gradients(disable=False):
        assert G.conv2d(x, w).sum().backward() is None
    assert w.grad is not None


def test_no_weight_gradients_ignored_when_disabled(monkeypatch):
    monkeypatch.setattr(G, 'enabled', False)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    y = G.conv2d(torch.randn(1, 2, 5, 5), w)
    with G.no_weight_gradients():
        (gw,) = torch.autograd.grad(y.sum(), [w])
    assert gw is not None


def test_no_weight_gradients_restores_on_error():
    with pytest.raises(RuntimeError):
        with G.no_weight_gradients():
            raise RuntimeError('boom')
    assert not G.weight_gradients_disabled
