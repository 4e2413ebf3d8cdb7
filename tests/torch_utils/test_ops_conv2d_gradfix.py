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


# ----------------------------------------------------------------------------
# Winograd F(6x6, 3x3) fast path for float32 CPU inference (torch_utils/ops/_cpu_conv.py).

WINOGRAD_RTOL_OF_MAX = 1e-4  # |winograd - direct| <= this * max|direct| (measured about 1.5e-5)


@pytest.mark.parametrize(
    'n, groups, ci, co, size, padding, bias',
    [
        (1, 1, 128, 96, 33, 2, False),  # SG3 'full' 3x3 conv (padding 2), odd size
        (1, 2, 96, 128, 32, 1, True),  # modulated-conv batch trick: [1, N*I, H, W], groups = N
        (2, 1, 100, 100, 35, 0, True),  # batch > 1, no padding
    ],
)
def test_winograd_matches_direct(n, groups, ci, co, size, padding, bias, close_report):
    from torch_utils.ops import _cpu_conv

    if not _cpu_conv.available():
        pytest.skip('NNPACK is not available in this torch build')
    torch.manual_seed(0)
    x = torch.randn([n, ci * groups, size, size])
    w = torch.randn([co * groups, ci, 3, 3])
    b = torch.randn([co * groups]) if bias else None
    assert _cpu_conv.applies(x, w, b, 1, padding, 1, groups)
    y = G.conv2d(x, w, b, padding=padding, groups=groups)
    y_ref = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=padding, groups=groups)
    close_report(y.double(), y_ref, atol=WINOGRAD_RTOL_OF_MAX * float(y_ref.abs().max()), rtol=0, name='winograd')


def test_winograd_gate():
    """Only float32 CPU inference 3x3 stride-1 convs of large images/channels; never under default_impl('ref')."""
    from torch_utils import ops
    from torch_utils.ops import _cpu_conv

    x, w = torch.randn([1, 128, 40, 40]), torch.randn([128, 128, 3, 3])
    ok = _cpu_conv.available()
    assert _cpu_conv.applies(x, w, None, 1, 1, 1, 1) == ok
    with ops.default_impl('ref'):
        assert not _cpu_conv.applies(x, w, None, 1, 1, 1, 1)
    assert not _cpu_conv.applies(x.double(), w.double(), None, 1, 1, 1, 1)
    assert not _cpu_conv.applies(x, w.requires_grad_(), None, 1, 1, 1, 1)  # autograd: the plain conv
    w = w.detach()
    assert not _cpu_conv.applies(x, w, None, 2, 1, 1, 1)  # strided
    assert not _cpu_conv.applies(x, w, None, 1, 1, 2, 1)  # dilated
    assert not _cpu_conv.applies(x, w[:, :, :1, :1], None, 1, 0, 1, 1)  # 1x1
    assert not _cpu_conv.applies(x[:, :, :8, :8], w, None, 1, 1, 1, 1)  # small image: oneDNN is faster
    assert not _cpu_conv.applies(x[:, :16], w[:16, :16], None, 1, 1, 1, 1)  # few channels
    assert not _cpu_conv.applies(x, w, None, 1, 3, 1, 1)  # padding beyond the kernel support
