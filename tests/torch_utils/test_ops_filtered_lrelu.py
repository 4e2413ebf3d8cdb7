"""filtered_lrelu: reference parity (ops.npz), composition oracle, fast/cpp-vs-ref case table, gradients, errors.

The fused C++ CPU kernel (impl='cpp') is compiled on first use (~15 s with g++ + ninja); without a compiler its tests
are skipped and impl='auto' falls back to 'fast' (tested with a monkeypatched build failure).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from torch_utils.ops import bias_act as BA
from torch_utils.ops import filtered_lrelu as FL
from torch_utils.ops import upfirdn2d as U

# Tolerance table, fast vs ref (|fast - ref| <= atol * max|ref| + rtol * |ref|).
#   quantity            dtype     atol    rtol
TOLERANCES = {
    ('forward', torch.float32): (1e-6, 1e-5),
    ('grad', torch.float32): (1e-6, 1e-5),
}

# Case table: (shape, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, with_bias, layout).
# Filters: 'sepK' 1-D (separable) K taps, 'radK' 2-D KxK, None = no filter.
CASES = [
    ([2, 3, 9, 7], 'sep12', 'sep12', 2, 2, [7, 6, 7, 6], math.sqrt(2), 0.2, None, False, True, 'contig'),
    ([1, 2, 11, 13], 'sep8', 'sep8', 2, 1, 3, 1.0, 1.0, None, False, True, 'noncontig'),
    ([1, 3, 7, 9], 'rad6', 'rad4', 4, 2, [5, 4, 3, 6], math.sqrt(2), 0.2, 0.5, True, True, 'channels_last'),
    ([2, 2, 14, 12], 'sep8', 'sep8', 1, 2, [-1, 5, 3, 2], 2.0, 0.1, 1.0, False, False, 'contig'),
    ([1, 2, 8, 8], None, 'sep8', 1, 4, [2, 3, 1, 4], math.sqrt(2), 0.2, None, False, True, 'contig'),
    ([2, 1, 5, 6], 'sep8', None, 4, 1, [-2, 1, 0, 3], math.sqrt(2), 0.2, 0.3, True, True, 'noncontig'),
    ([1, 2, 9, 9], 'rad5', 'rad5', 2, 2, 5, 1.0, 0.0, None, False, True, 'contig'),
    ([1, 1, 6, 7], 'sep3', 'sep3', 1, 1, 0, math.sqrt(2), 0.2, None, False, False, 'channels_last'),
]


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    """Tiny ops are dominated by thread start-up on a loaded machine: run them on one intra-op thread."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope='module')
def cpp_kernel():
    """The compiled kernel module; skips when this machine cannot build it."""
    from torch_utils import custom_ops
    from torch_utils.ops import _cpu_kernels

    try:
        return _cpu_kernels.plugin(raise_errors=True)
    except custom_ops.PluginBuildError as e:
        pytest.skip(f'fused CPU kernel unavailable: {e}')


def _cpp_ok(fu, fd):
    """The kernel's domain: 1-D (or no) fu, 1-D / square 2-D (or no) fd."""
    return (fu is None or fu.startswith('sep')) and (fd is None or fd.startswith(('sep', 'rad')))


def _filter(kind, dtype=torch.float32, seed=0):
    if kind is None:
        return None
    rnd = np.random.RandomState(seed + int(kind[3:]))
    taps = rnd.rand(int(kind[3:])) + 0.2
    if kind.startswith('sep'):
        return U.setup_filter(taps).to(dtype) if len(taps) >= 8 else U.setup_filter(taps, separable=True).to(dtype)
    return U.setup_filter(np.outer(taps, taps[::-1]) + 0.1 * rnd.rand(len(taps), len(taps))).to(dtype)


def _layout(x, layout):
    if layout == 'noncontig':
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
        assert not x.is_contiguous()
    elif layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x


def _rel(tol, ref):
    atol, rtol = tol
    return dict(atol=atol * float(ref.detach().abs().max()), rtol=rtol)


def test_parity_ops_npz(parity_dir, close_report):
    d = np.load(parity_dir / 'ops.npz')
    cases = [c for c in json.loads(str(d['meta'])) if c['key'].startswith('filtered_lrelu.')]
    assert len(cases) >= 5
    x, fu, fd, b = (torch.tensor(d[f'filtered_lrelu.{k}']) for k in ('x', 'fu', 'fd', 'b'))
    for case in cases:
        kwargs = {k: v for k, v in case.items() if k != 'key'}
        for impl in ('ref', 'fast', 'auto'):
            y = FL.filtered_lrelu(x, fu, fd, b, impl=impl, **kwargs)
            close_report(y, d[case['key']], atol=1e-5, rtol=1e-5, name=f'{case["key"]} impl={impl}')
            with torch.no_grad():  # impl='auto' runs the fused kernel (if buildable) for inference
                y = FL.filtered_lrelu(x, fu, fd, b, impl=impl, **kwargs)
            close_report(y, d[case['key']], atol=1e-5, rtol=1e-5, name=f'{case["key"]} impl={impl} no_grad')


def test_composition_oracle(close_report):
    """The specification written out with the (scipy-tested) upfirdn2d and (numpy-tested) bias_act, float64."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    fu, fd = _filter('sep8', torch.float64), _filter('rad4', torch.float64)
    y = U.upfirdn2d(x + b[None, :, None, None], fu, up=2, padding=[4, 5, 3, 6], gain=4, impl='ref')
    y = (torch.where(y >= 0, y, y * 0.25) * 1.7).clamp(-0.8, 0.8)
    y = U.upfirdn2d(y, fd, down=2, impl='ref')
    for impl in ('ref', 'fast'):
        out = FL.filtered_lrelu(
            x, fu, fd, b, up=2, down=2, padding=[4, 5, 3, 6], gain=1.7, slope=0.25, clamp=0.8, impl=impl
        )
        close_report(out, y, atol=1e-12, rtol=1e-10, name=f'composition impl={impl}')


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_fast_matches_ref(case, close_report):
    shape, fu, fd, up, down, padding, gain, slope, clamp, flip, with_bias, layout = case
    torch.manual_seed(0)
    x0 = torch.randn(shape)
    b0 = torch.randn(shape[1]) * 0.3 if with_bias else None
    fu_t, fd_t = _filter(fu), _filter(fd, seed=1)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    xs = [x0.clone().requires_grad_(), _layout(x0.clone(), layout).requires_grad_()]
    bs = [b0.clone().requires_grad_() if with_bias else None for _ in range(2)]
    ys = [FL.filtered_lrelu(xi, fu_t, fd_t, bi, impl=impl, **kw) for xi, bi, impl in zip(xs, bs, ('ref', 'fast'))]
    close_report(ys[1], ys[0], **_rel(TOLERANCES[('forward', torch.float32)], ys[0]), name='forward')
    dy = torch.randn_like(ys[0])
    grads = [torch.autograd.grad(y, [xi] + ([bi] if with_bias else []), dy) for y, xi, bi in zip(ys, xs, bs)]
    for g_fast, g_ref, name in zip(grads[1], grads[0], ('x', 'b')):
        close_report(g_fast, g_ref, **_rel(TOLERANCES[('grad', torch.float32)], g_ref), name=f'grad {name}')
    with torch.no_grad():  # the in-place elementwise stage
        close_report(
            FL.filtered_lrelu(xs[1], fu_t, fd_t, bs[1], impl='fast', **kw),
            ys[0],
            **_rel(TOLERANCES[('forward', torch.float32)], ys[0]),
            name='no_grad',
        )


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_cpp_matches_ref(case, cpp_kernel, close_report):
    """Forward only (the kernel serves inference; with autograd 'auto' uses 'fast')."""
    shape, fu, fd, up, down, padding, gain, slope, clamp, flip, with_bias, layout = case
    torch.manual_seed(0)
    x = torch.randn(shape)
    b = torch.randn(shape[1]) * 0.3 if with_bias else None
    fu_t, fd_t = _filter(fu), _filter(fd, seed=1)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    y_ref = FL.filtered_lrelu(x, fu_t, fd_t, b, impl='ref', **kw)
    if not _cpp_ok(fu, fd):
        with pytest.raises(ValueError, match='cpp'):
            FL.filtered_lrelu(x, fu_t, fd_t, b, impl='cpp', **kw)
        return
    y = FL.filtered_lrelu(_layout(x.clone(), layout), fu_t, fd_t, b, impl='cpp', **kw)
    close_report(y, y_ref, **_rel(TOLERANCES[('forward', torch.float32)], y_ref), name='cpp forward')


# SG3 layer shapes (reduced channels): up 2/4 with 12/24-tap separable fu, radial (mirror-symmetric) or separable fd.
def _kaiser_sinc(n):
    return np.kaiser(n, 6) * np.sinc((np.arange(n) - (n - 1) / 2) / 2)


@pytest.mark.parametrize(
    'size, up, fu_taps, fd_kind, padding',
    [
        (36, 2, 12, 'radial', [11, 10, 11, 10]),
        (20, 4, 24, 'radial', [-2, -5, -2, -5]),
        (20, 4, 24, 'sep', [-6, -9, -6, -9]),
        ([30, 23], 2, 12, 'sep', [9, 8, -11, -12]),
        ([19, 13], 3, 9, 'radial', [4, 7, 2, 3]),
    ],
)
def test_cpp_network_shapes(size, up, fu_taps, fd_kind, padding, cpp_kernel, close_report):
    h, w = (size, size) if isinstance(size, int) else size
    t = _kaiser_sinc(12)
    fu = U.setup_filter(_kaiser_sinc(fu_taps))
    fd = U.setup_filter(np.outer(t, t)) if fd_kind == 'radial' else U.setup_filter(t)
    torch.manual_seed(0)
    x, b = torch.randn(2, 5, h, w), torch.randn(5)
    kw = dict(up=up, down=2, padding=padding, gain=math.sqrt(2), slope=0.2, clamp=256)
    y_ref = FL.filtered_lrelu(x, fu, fd, b, impl='ref', **kw)
    y = FL.filtered_lrelu(x, fu, fd, b, impl='cpp', **kw)
    close_report(y, y_ref, **_rel(TOLERANCES[('forward', torch.float32)], y_ref), name='cpp forward')


def test_cpp_dispatch(cpp_kernel):
    """'auto' uses the kernel only without autograd and for float32; 'cpp' refuses what it cannot do."""
    f = _filter('sep8')
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    y = FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
    assert y.grad_fn is not None  # autograd path ('fast')
    with pytest.raises(ValueError, match='cpp'):
        FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7, impl='cpp')
    with pytest.raises(ValueError, match='cpp'):
        FL.filtered_lrelu(x.detach().double(), f, f, up=2, down=2, padding=7, impl='cpp')
    with torch.no_grad():
        a = FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
        b = FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7, impl='cpp')
    assert a.grad_fn is None and torch.equal(a, b)
    from torch_utils import ops

    assert ops.impl_report('cpu')['filtered_lrelu'] == 'cpp'


def test_auto_falls_back_when_build_fails(monkeypatch, caplog):
    from torch_utils import custom_ops
    from torch_utils.ops import _cpu_kernels

    def broken(*args, **kwargs):
        raise custom_ops.PluginBuildError('get_plugin(): no compiler; see the build log /x/build.log')

    monkeypatch.setattr(_cpu_kernels, '_state', {})
    monkeypatch.setattr(custom_ops, 'get_plugin', broken)
    f = _filter('sep8')
    x = torch.randn(1, 2, 6, 6)
    with torch.no_grad(), caplog.at_level('WARNING'):
        y = FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)  # starts the (failing) build in the background
        assert _cpu_kernels.plugin() is None  # waits for it
        FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
    torch.testing.assert_close(y, FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7, impl='ref'))
    warnings = [r for r in caplog.records if 'build.log' in r.getMessage()]
    assert len(warnings) == 1  # warned once, with the log path
    from torch_utils import ops

    assert ops.impl_report('cpu')['filtered_lrelu'] == 'fast'
    with pytest.raises(custom_ops.PluginBuildError):
        FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7, impl='cpp')


def test_default_impl_context():
    from torch_utils import ops

    f = _filter('sep8')
    x = torch.randn(1, 2, 6, 6)
    calls = []
    orig_ref, orig_fast = FL._filtered_lrelu_ref, FL._filtered_lrelu_fast
    try:
        FL._filtered_lrelu_ref = lambda *a: calls.append('ref') or orig_ref(*a)
        FL._filtered_lrelu_fast = lambda *a: calls.append('fast') or orig_fast(*a)
        with ops.default_impl('ref'):
            assert ops.current_default_impl() == 'ref'
            FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
            FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7, impl='fast')  # explicit impl wins
            with ops.default_impl('fast'):
                FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
            FL.filtered_lrelu(x, f, f, up=2, down=2, padding=7)
            assert ops.impl_report('cpu')['filtered_lrelu'] == 'ref'
    finally:
        FL._filtered_lrelu_ref, FL._filtered_lrelu_fast = orig_ref, orig_fast
    assert calls == ['ref', 'fast', 'fast', 'ref']
    assert ops.current_default_impl() == 'auto'
    with pytest.raises(ValueError, match='impl'):
        with ops.default_impl('cuda'):
            pass


@pytest.mark.parametrize('impl', ['ref', 'fast'])
def test_gradcheck_and_gradgradcheck(impl):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    fu = _filter('sep3', torch.float64).clone().requires_grad_()
    fd = _filter('rad3', torch.float64).clone().requires_grad_()
    fn = lambda x, b, fu, fd: FL.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=2, clamp=5.0, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b, fu, fd))
    assert torch.autograd.gradgradcheck(fn, (x, b, fu, fd))


def test_auto_selects_fast_on_cpu():
    from torch_utils import ops

    assert ops.impl_report('cpu')['filtered_lrelu'] in ('cpp', 'fast')
    from torch_utils.ops import _triton_support

    assert ops.impl_report('cuda')['filtered_lrelu'] == ('triton' if _triton_support.installed() else 'ref')


def test_errors():
    x = torch.zeros(1, 2, 6, 6)
    f = _filter('sep3')
    with pytest.raises(ValueError, match='impl'):
        FL.filtered_lrelu(x, f, f, impl='cuda')
    with pytest.raises(ValueError, match='up must'):
        FL.filtered_lrelu(x, f, f, up=0)
    with pytest.raises(ValueError, match='b must'):
        FL.filtered_lrelu(x, f, f, b=torch.zeros(3))
    with pytest.raises(ValueError, match='empty'):
        FL.filtered_lrelu(x, f, f, padding=-3)
    assert isinstance(BA.activation_funcs['lrelu'].def_gain, float)


def test_select_impl_is_the_one_dispatch():
    """_select_impl names the implementation for every impl value, device and autograd state."""
    from torch_utils import ops

    f = _filter('sep8')
    x = torch.randn(1, 2, 6, 6)
    meta = torch.empty(1, 2, 6, 6, device='meta')  # a non-CPU device type without any fast path
    assert FL._select_impl('ref', x, f, f, None) == ('ref', False)
    assert FL._select_impl('fast', x, f, f, None) == ('fast', False)
    assert FL._select_impl('auto', meta, f, f, None) == ('ref', True)
    with torch.enable_grad():
        xg = x.clone().requires_grad_()
        assert FL._select_impl('auto', xg, f, f, None) == ('fast', True)  # the kernel has no autograd
    assert FL._select_impl('auto', x.double(), f, f, None) == ('fast', True)  # the kernel is float32 only
    with ops.default_impl('ref'):
        assert FL._select_impl('auto', x, f, f, None) == ('ref', True)
        assert FL._select_impl('fast', x, f, f, None) == ('fast', False)
    with ops.default_impl('cpp'):  # scoped 'cpp' outside the kernel's domain falls back to 'fast'
        assert FL._select_impl('auto', x.double(), f, f, None) == ('fast', True)
    with pytest.raises(ValueError, match='impl'):
        FL._select_impl('cuda', x, f, f, None)


def test_cpp_not_under_torch_compile(monkeypatch):
    """The kernel takes raw pointers: while torch.compile traces, 'auto' must pick the traceable PyTorch path."""
    from torch_utils.ops import _cpu_kernels

    x, f = torch.zeros([1, 2, 8, 8]), torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8  # 1-D (separable) filter
    assert _cpu_kernels.supported(x, f, f, None)
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    assert not _cpu_kernels.supported(x, f, f, None)
