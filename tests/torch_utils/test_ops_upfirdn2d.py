"""upfirdn2d: reference parity (ops.npz), scipy.signal.upfirdn oracle, fast-vs-ref case table, gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import _op_utils
from torch_utils.ops import upfirdn2d as U

# Tolerance table, fast vs ref (|fast - ref| <= atol * max|ref| + rtol * |ref|).
#   quantity            dtype     atol    rtol
TOLERANCES = {
    ('forward', torch.float32): (1e-6, 1e-5),
    ('grad', torch.float32): (1e-6, 1e-5),
    ('forward', torch.float64): (1e-12, 1e-10),
    ('grad', torch.float64): (1e-12, 1e-10),
}

# Case table: (shape [N, C, H, W], filter, up, down, padding, flip_filter, gain, layout).
# filter: 'sep8' 1-D 8 taps, 'sep12' 1-D 12 taps, 'sep3' 1-D 3 taps, 'box4' 2-D 4x4, 'rad5' 2-D 5x5 asymmetric,
# 'none' no filter; layout: 'contig', 'noncontig' (a transposed view), 'channels_last'.
CASES = [
    ([1, 1, 7, 5], 'sep8', 1, 1, 4, False, 1.0, 'contig'),
    ([2, 3, 9, 11], 'sep12', 2, 1, [6, 5, 6, 5], False, 1.0, 'contig'),
    ([1, 2, 9, 7], 'sep8', 1, 2, [3, 4, 3, 4], False, 1.0, 'noncontig'),
    ([2, 2, 5, 6], 'sep8', 4, 1, [-2, 3, 5, -1], True, 3.0, 'channels_last'),
    ([1, 3, 13, 11], 'sep12', 1, 4, [5, 6, 1, 2], False, 1.0, 'contig'),
    ([2, 1, 7, 9], 'rad5', 2, 2, [-1, 4, 2, 0], True, 0.5, 'contig'),
    ([1, 2, 8, 7], 'box4', 2, 1, 2, False, 4.0, 'noncontig'),
    ([2, 2, 11, 9], 'rad5', 1, 2, [2, 2, -1, 3], False, 1.0, 'channels_last'),
    ([1, 1, 6, 5], 'rad5', 4, 2, [0, -3, 1, 1], False, 1.0, 'contig'),
    ([1, 2, 5, 7], 'sep3', [2, 1], [1, 4], [1, 2, 3, 4], True, 2.0, 'contig'),
    ([2, 1, 6, 6], 'none', 2, 2, [1, 0, 0, 1], False, 1.0, 'contig'),
    ([1, 2, 9, 8], 'sep8', 4, 4, 3, False, 1.0, 'noncontig'),
    ([1, 2, 6, 5], 'rad5', [1, 2], 1, [1, 2, 3, -1], False, 1.0, 'contig'),
    ([2, 1, 5, 4], 'box4', [3, 2], 1, [2, 0, -1, 3], True, 2.0, 'channels_last'),
    ([1, 2, 5, 6], 'sep8', [1, 3], 1, [4, 3, 2, 5], False, 1.0, 'noncontig'),
    ([1, 1, 4, 5], 'sep3', 4, 1, [-3, -2, -1, -4], False, 1.0, 'contig'),
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


def _filter(kind: str, dtype=torch.float32) -> torch.Tensor | None:
    rnd = np.random.RandomState(1)
    if kind == 'none':
        return None
    if kind.startswith('sep'):
        return U.setup_filter(rnd.rand(int(kind[3:])) + 0.1).to(dtype)
    if kind == 'box4':
        return U.setup_filter([1, 3, 3, 1]).to(dtype)
    return torch.tensor(rnd.rand(5, 5) + 0.1, dtype=dtype)  # 'rad5'


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == 'noncontig':
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
        assert not x.is_contiguous()
    elif layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x


def _rel(tol, ref):
    atol, rtol = tol
    return dict(atol=atol * float(ref.detach().abs().max()), rtol=rtol)


# ----------------------------------------------------------------------------
# Parity with the reference implementation.


def test_parity_ops_npz(parity_dir, close_report):
    d = np.load(parity_dir / 'ops.npz')
    cases = [c for c in json.loads(str(d['meta'])) if c['key'].startswith('upfirdn2d.')]
    assert len(cases) >= 12
    x = torch.tensor(d['upfirdn2d.x'])
    for case in cases:
        kwargs = {k: v for k, v in case.items() if k not in ('key', 'filter')}
        f = torch.tensor(d[f'upfirdn2d.{case["filter"]}'])
        for impl in ('ref', 'fast', 'auto'):
            y = U.upfirdn2d(x, f, impl=impl, **kwargs)
            close_report(y, d[case['key']], atol=1e-6, rtol=1e-5, name=f'{case["key"]} impl={impl}')


# ----------------------------------------------------------------------------
# Independent oracle: scipy.signal.upfirdn per axis.


def _scipy_axis(x: np.ndarray, taps: np.ndarray, up: int, down: int, p0: int, p1: int, axis: int) -> np.ndarray:
    """Our 1-D semantics via scipy: out[j] = full_conv(zero_stuffed(x), taps)[down*j + K - 1 - p0] (0 outside)."""
    K, L = len(taps), x.shape[axis]
    full = scipy.signal.upfirdn(taps, x, up=up, down=1, axis=axis)
    n_out = (L * up + p0 + p1 - K) // down + 1
    idx = down * np.arange(n_out) + K - 1 - p0
    ok = (idx >= 0) & (idx < full.shape[axis])
    out = np.take(full, np.clip(idx, 0, full.shape[axis] - 1), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = n_out
    return out * ok.reshape(shape)


SCIPY_CASES = [
    # (taps_h, taps_w (None = same 1-D separable), up, down, padding, flip_filter, gain)
    (8, None, 1, 1, 0, False, 1.0),
    (8, None, 2, 1, [4, 3, 4, 3], False, 1.0),
    (12, None, 1, 2, [5, 4, 6, 5], True, 1.0),
    (8, None, [4, 2], [1, 3], [-3, 2, 1, -2], False, 2.5),
    (9, None, 3, 2, [-1, -1, 7, 0], True, 1.0),
    (3, 4, 2, 1, [2, 1, 3, 2], False, 1.0),  # 2-D outer-product filter, different taps per axis
    (5, 2, 1, 2, [-1, 3, 0, 2], True, 0.7),
]


@pytest.mark.parametrize('case', SCIPY_CASES)
def test_scipy_oracle(case, close_report):
    kh, kw, up, down, padding, flip_filter, gain = case
    rnd = np.random.RandomState(3)
    x = rnd.randn(2, 2, 11, 9)
    upx, upy = _op_utils.parse_scaling(up)
    downx, downy = _op_utils.parse_scaling(down)
    px0, px1, py0, py1 = _op_utils.parse_padding(padding)
    th = rnd.rand(kh) + 0.1
    if kw is None:
        f = torch.tensor(th, dtype=torch.float64)
        tw = th
    else:
        tw = rnd.rand(kw) + 0.1
        f = torch.tensor(np.outer(th, tw))
    eh, ew = (th[::-1], tw[::-1]) if flip_filter else (th, tw)
    expected = _scipy_axis(x, ew, upx, downx, px0, px1, axis=3)
    expected = _scipy_axis(expected, eh, upy, downy, py0, py1, axis=2) * gain
    for impl in ('ref', 'fast'):
        y = U.upfirdn2d(
            torch.tensor(x), f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain, impl=impl
        )
        close_report(y, expected, atol=1e-12, rtol=1e-10, name=f'scipy {case} impl={impl}')


# ----------------------------------------------------------------------------
# Fast path vs reference.


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_fast_matches_ref(case, close_report):
    shape, kind, up, down, padding, flip_filter, gain, layout = case
    torch.manual_seed(0)
    x0 = torch.randn(shape)
    f = _filter(kind)
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    x_ref = x0.clone().requires_grad_()
    x_fast = _layout(x0.clone(), layout).requires_grad_()
    y_ref = U.upfirdn2d(x_ref, f, impl='ref', **kw)
    y_fast = U.upfirdn2d(x_fast, f, impl='fast', **kw)
    close_report(y_fast, y_ref, **_rel(TOLERANCES[('forward', torch.float32)], y_ref), name='forward')
    dy = torch.randn_like(y_ref)
    (g_ref,) = torch.autograd.grad(y_ref, x_ref, dy)
    (g_fast,) = torch.autograd.grad(y_fast, x_fast, dy)
    close_report(g_fast, g_ref, **_rel(TOLERANCES[('grad', torch.float32)], g_ref), name='grad x')


# Tiny float64 cases for gradcheck / gradgradcheck w.r.t. x and f: (shape, filter, up, down, padding, flip, gain).
GRAD_CASES = [
    ([1, 1, 3, 3], 'sep3', 2, 1, [1, 1, 2, 1], False, 1.0),
    ([1, 1, 4, 4], 'box4', 1, 2, [1, 2, 0, 1], True, 2.0),
    ([1, 1, 3, 4], 'sep3', [2, 1], [1, 2], [0, 1, -1, 2], True, 0.5),
    ([1, 1, 3, 2], 'box4', 2, 1, [2, 1, 1, 2], False, 4.0),
]


@pytest.mark.parametrize('impl', ['ref', 'fast'])
@pytest.mark.parametrize('case', GRAD_CASES, ids=['sep-up2', '2d-down2', 'sep-mixed', '2d-up2'])
def test_gradcheck_and_gradgradcheck(impl, case):
    shape, kind, up, down, padding, flip_filter, gain = case
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    f = _filter(kind, torch.float64).clone().requires_grad_()
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain, impl=impl)
    fn = lambda x, f: U.upfirdn2d(x, f, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, f))
    assert torch.autograd.gradgradcheck(fn, (x, f))


def test_fast_float64_and_batch():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 7, 6, dtype=torch.float64)
    f = _filter('sep8', torch.float64)
    a = U.upfirdn2d(x, f, up=2, down=1, padding=[4, 3, 4, 3], impl='fast')
    b = U.upfirdn2d(x, f, up=2, down=1, padding=[4, 3, 4, 3], impl='ref')
    assert a.dtype == torch.float64
    torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    # Each sample is processed independently.
    torch.testing.assert_close(U.upfirdn2d(x[1:2], f, up=2, padding=[4, 3, 4, 3], impl='fast'), a[1:2])


# ----------------------------------------------------------------------------
# Wrappers, setup_filter, errors.


def test_wrapper_sizes_and_dc_gain():
    x = torch.ones(1, 1, 8, 6)
    f = U.setup_filter([1, 3, 3, 1])
    for impl in ('ref', 'fast'):
        assert U.upsample2d(x, f, impl=impl).shape == (1, 1, 16, 12)
        assert U.downsample2d(x, f, impl=impl).shape == (1, 1, 4, 3)
        assert U.filter2d(x, f, impl=impl).shape == (1, 1, 8, 6)
        assert U.filter2d(x, f, padding=[1, 0, 2, 1], impl=impl).shape == (1, 1, 11, 7)
        # Away from the borders a normalised filter keeps DC (upsample2d compensates the zeros with up^2).
        assert torch.allclose(U.upsample2d(x, f, impl=impl)[..., 4:-4, 4:-4], torch.ones(1), atol=1e-6)
        assert torch.allclose(U.downsample2d(x, f, impl=impl)[..., 1:-1, 1:-1], torch.ones(1), atol=1e-6)


def test_setup_filter():
    f = U.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    assert torch.isclose(f.sum(), torch.tensor(1.0))
    f8 = U.setup_filter(np.arange(1, 9))
    assert f8.shape == (8,) and torch.isclose(f8.sum(), torch.tensor(1.0))
    assert U.setup_filter([1, 2, 3], separable=True).shape == (3,)
    assert U.setup_filter(np.arange(1, 9), separable=False).shape == (8, 8)
    torch.testing.assert_close(
        U.setup_filter([1, 2], flip_filter=True, normalize=False, separable=True), torch.tensor([2.0, 1.0])
    )
    torch.testing.assert_close(U.setup_filter([1, 1], gain=4, separable=True), torch.tensor([1.0, 1.0]))
    assert U.setup_filter(None).shape == (1, 1)
    with pytest.raises(ValueError, match='setup_filter'):
        U.setup_filter(np.ones([2, 2, 2]))


def test_errors():
    x = torch.zeros(1, 1, 4, 4)
    f = U.setup_filter([1, 1])
    with pytest.raises(ValueError, match='impl'):
        U.upfirdn2d(x, f, impl='cuda')
    with pytest.raises(ValueError, match='x must be a 4-D'):
        U.upfirdn2d(x[0], f)
    with pytest.raises(TypeError, match='floating'):
        U.upfirdn2d(x.long(), f)
    with pytest.raises(ValueError, match='up must'):
        U.upfirdn2d(x, f, up=0)
    with pytest.raises(ValueError, match='padding'):
        U.upfirdn2d(x, f, padding=[1, 2, 3])
    with pytest.raises(ValueError, match='empty'):
        U.upfirdn2d(x, f, padding=-3)


def test_auto_falls_back_on_mps_backend_errors(caplog):
    import types

    fake_mps = types.SimpleNamespace(device=types.SimpleNamespace(type='mps'))

    def broken():
        raise NotImplementedError('conv_transpose2d with groups')

    with caplog.at_level('WARNING', logger=_op_utils.__name__):
        assert _op_utils.run_with_fallback('upfirdn2d_test', fake_mps, broken, lambda: 'ref') == 'ref'
        assert _op_utils.run_with_fallback('upfirdn2d_test', fake_mps, broken, lambda: 'ref') == 'ref'
    assert sum('upfirdn2d_test' in r.getMessage() for r in caplog.records) == 1  # logged once
    fake_cpu = types.SimpleNamespace(device=types.SimpleNamespace(type='cpu'))
    with pytest.raises(NotImplementedError):  # elsewhere errors propagate
        _op_utils.run_with_fallback('upfirdn2d_test', fake_cpu, broken, lambda: 'ref')
