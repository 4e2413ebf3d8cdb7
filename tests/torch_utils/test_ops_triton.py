"""Triton kernels (impl='triton') of upfirdn2d, filtered_lrelu and bias_act against their _ref specifications.

Every kernel runs through the case tables below, forward and gradients, float32 and float16. Without a GPU they
run on CPU tensors in Triton's interpreter: the fixture ``kernels`` imports ``_triton_kernels`` with
``TRITON_INTERPRET=1`` set for the duration of that import only (Triton reads it when the kernels are decorated),
so nothing leaks into other tests. With CUDA the same tables run compiled on the GPU. Shapes are tiny because the
interpreter's cost is per program and per operation (about 0.2 s per kernel program on a 2-core machine).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('triton')

from torch_utils.ops import _triton_support  # noqa: E402
from torch_utils.ops import bias_act as BA  # noqa: E402
from torch_utils.ops import filtered_lrelu as FL  # noqa: E402
from torch_utils.ops import upfirdn2d as U  # noqa: E402

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'

# Tolerance table, triton vs ref: |triton - ref| <= atol * max|ref| + rtol * |ref|. The kernels accumulate in float32
# and round once; the float16 reference rounds after every stage (and its FIR sums run in float16 on some
# backends), hence the looser float16 rows.
#   (quantity,   dtype)            atol    rtol
TOLERANCES = {
    ('forward', torch.float32): (2e-6, 1e-5),
    ('grad', torch.float32): (2e-6, 1e-5),
    ('grad2', torch.float32): (2e-6, 1e-5),
    ('forward', torch.float16): (4e-3, 1e-2),
    ('grad', torch.float16): (6e-3, 1e-2),
    ('grad2', torch.float16): (6e-3, 1e-2),
}

# upfirdn2d cases: (shape, filter, up, down, padding, flip_filter, gain, layout). Filters: 'sepK' 1-D (separable)
# K taps, 'radK' 2-D KxK, None. Covers up/down 1, 2, 4, per-axis factors, negative padding, one- and two-pass
# separable paths.
UPFIRDN2D_CASES = [
    ([1, 2, 9, 7], 'sep4', 2, 1, [2, 1, 2, 1], False, 1.0, 'contig'),
    ([1, 2, 10, 9], 'sep4', 1, 2, [1, 1, 1, 1], True, 1.0, 'channels_last'),
    ([1, 2, 7, 8], 'rad5', [2, 1], [1, 2], [3, -1, 2, 4], False, 1.5, 'noncontig'),
    ([2, 1, 5, 6], None, 4, 1, 0, False, 1.0, 'contig'),
    ([1, 1, 12, 11], 'sep12', 1, 2, [5, 5, 5, 5], False, 1.0, 'contig'),  # 12x12 taps: two 1-D passes
    ([1, 2, 8, 8], 'sep8', 1, 4, [2, 3, 1, 2], False, 2.0, 'contig'),
]

# filtered_lrelu cases: (shape, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, with_bias, layout).
# The first two are StyleGAN3-T and -R layers in miniature (12-tap separable up/down; radial 2-D down filter).
FILTERED_LRELU_CASES = [
    ([1, 2, 8, 8], 'sep12', 'sep12', 2, 2, [7, 6, 7, 6], math.sqrt(2), 0.2, None, False, True, 'contig'),
    ([1, 2, 7, 7], 'sep12', 'rad6', 2, 2, [6, 5, 6, 5], math.sqrt(2), 0.2, 0.5, False, True, 'channels_last'),
    ([1, 2, 6, 5], 'sep8', 'sep4', 4, 2, [3, 4, 2, 5], 1.0, 0.1, 1.0, True, True, 'noncontig'),
    ([2, 1, 7, 6], 'sep3', 'sep3', 1, 1, 0, math.sqrt(2), 1.0, None, False, False, 'channels_last'),
    ([1, 2, 6, 6], 'sep4', None, 2, 1, [-1, 2, 1, 0], 2.0, 0.2, 0.3, False, True, 'contig'),
    ([1, 2, 9, 9], None, 'sep4', 1, 4, [2, 3, 1, 4], math.sqrt(2), 0.2, None, True, True, 'contig'),
]

# bias_act cases: (shape, dim, act, alpha, gain, clamp, layout).
BIAS_ACT_CASES = [
    ([2, 3, 5, 4], 1, 'lrelu', None, None, None, 'contig'),
    ([2, 3, 5, 4], 1, 'lrelu', 0.1, 2.0, 0.5, 'channels_last'),
    ([4, 6], 1, 'linear', None, None, 0.4, 'contig'),
    ([3, 5, 2], 2, 'relu', None, None, None, 'noncontig'),
    ([2, 3, 4], 0, 'tanh', None, None, None, 'contig'),
    ([2, 3, 4], 1, 'sigmoid', None, 1.5, None, 'contig'),
    ([2, 3, 4], 1, 'elu', None, None, 0.8, 'contig'),
    ([2, 3, 4], -1, 'selu', None, None, None, 'contig'),
    ([2, 3, 4], 1, 'softplus', None, None, None, 'contig'),
    ([2, 3, 4], 1, 'swish', None, None, 1.0, 'contig'),
]
CASES = UPFIRDN2D_CASES + FILTERED_LRELU_CASES + BIAS_ACT_CASES  # read by test_ops_meta
DTYPES = [torch.float32, torch.float16]


@pytest.fixture(scope='module', autouse=True)
def kernels():
    """The kernel module: compiled on CUDA, else imported for the interpreter (restores the support state)."""
    saved = dict(_triton_support._state)
    name = 'torch_utils.ops._triton_kernels'
    try:
        if DEVICE == 'cpu':
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv('TRITON_INTERPRET', '1')
                module = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
            assert module.INTERPRETED
        else:
            module = importlib.import_module(name)
        _triton_support._state.clear()
        _triton_support._state['module'] = module
        yield module
    finally:
        _triton_support._state.clear()
        _triton_support._state.update(saved)


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _filter(spec, seed=1):
    if spec is None:
        return None
    kind, k = spec[:3], int(spec[3:])
    rnd = np.random.RandomState(seed + k)
    if kind == 'sep':
        return U.setup_filter(np.hanning(k + 2)[1:-1] + 0.1 * rnd.rand(k), device=DEVICE, separable=True)
    r = np.hypot(*np.meshgrid(np.arange(k) - (k - 1) / 2, np.arange(k) - (k - 1) / 2))
    return U.setup_filter(np.cos(r / k * np.pi / 1.5) + 0.05 * rnd.rand(k, k), device=DEVICE)


def _layout(t, layout):
    if layout == 'channels_last' and t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == 'noncontig':
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    return t


def _close(actual, expected, key, name, close_report):
    atol, rtol = TOLERANCES[key]
    scale = float(expected.detach().abs().max().float()) or 1.0
    assert actual.dtype == expected.dtype, f'{name}: dtype {actual.dtype} != {expected.dtype}'
    assert torch.isfinite(actual).all(), f'{name}: non-finite values'
    close_report(actual.float(), expected.float(), atol=atol * scale, rtol=rtol, name=name)


def _inputs(shape, dtype, layout, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * scale).to(DEVICE, dtype)
    return _layout(x, layout).requires_grad_()


@pytest.mark.parametrize('dtype', DTYPES, ids=['fp32', 'fp16'])
@pytest.mark.parametrize('case', UPFIRDN2D_CASES, ids=[f'case{i}' for i in range(len(UPFIRDN2D_CASES))])
def test_upfirdn2d_triton_matches_ref(case, dtype, close_report):
    """Forward, input gradient and second order (the gradient's gradient with respect to the incoming gradient)."""
    shape, fspec, up, down, padding, flip, gain, layout = case
    f = _filter(fspec)
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    results = {}
    for impl in ('triton', 'ref'):
        x = _inputs(shape, dtype, layout)
        y = U.upfirdn2d(x, f, impl=impl, **kw)
        dy = _inputs(y.shape, dtype, 'contig', seed=1)
        (dx,) = torch.autograd.grad(y, x, dy, create_graph=True)
        (ddy,) = torch.autograd.grad(dx, dy, _inputs(x.shape, dtype, 'contig', seed=2))
        results[impl] = (y, dx, ddy)
    for name, key, a, e in zip(('forward', 'grad x', 'grad2'), ('forward', 'grad', 'grad2'), *results.values()):
        _close(a, e, (key, dtype), name, close_report)


@pytest.mark.parametrize('dtype', DTYPES, ids=['fp32', 'fp16'])
@pytest.mark.parametrize('case', FILTERED_LRELU_CASES, ids=[f'case{i}' for i in range(len(FILTERED_LRELU_CASES))])
def test_filtered_lrelu_triton_matches_ref(case, dtype, close_report):
    """Forward and first-order gradients of x and b (what training needs)."""
    shape, fu, fd, up, down, padding, gain, slope, clamp, flip, with_bias, layout = case
    fu, fd = _filter(fu), _filter(fd, seed=2)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    results = {}
    for impl in ('triton', 'ref'):
        x = _inputs(shape, dtype, layout)
        b = _inputs([shape[1]], dtype, 'contig', seed=3, scale=0.5) if with_bias else None
        y = FL.filtered_lrelu(x, fu, fd, b, impl=impl, **kw)
        dy = _inputs(y.shape, dtype, 'contig', seed=1)
        grads = torch.autograd.grad(y, [x] + ([b] if with_bias else []), dy)
        results[impl] = (y, *grads)
    names = ('forward', 'grad x', 'grad b')
    for name, a, e in zip(names, *results.values()):
        _close(a, e, ('forward' if name == 'forward' else 'grad', dtype), name, close_report)


@pytest.mark.parametrize('dtype', DTYPES, ids=['fp32', 'fp16'])
@pytest.mark.parametrize('case', BIAS_ACT_CASES, ids=[f'case{i}' for i in range(len(BIAS_ACT_CASES))])
def test_bias_act_triton_matches_ref(case, dtype, close_report):
    """Forward, first-order gradients of x and b, second-order gradients (double backward) of x and b."""
    shape, dim, act, alpha, gain, clamp, layout = case
    results = {}
    for impl in ('triton', 'ref'):
        x = _inputs(shape, dtype, layout, scale=1.5)
        b = _inputs([shape[dim]], dtype, 'contig', seed=3, scale=0.5)
        y = BA.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)
        dy = _inputs(y.shape, dtype, 'contig', seed=1)
        dx, db = torch.autograd.grad(y, [x, b], dy, create_graph=True)
        v = _inputs(x.shape, dtype, 'contig', seed=2)
        gg = torch.autograd.grad((dx * v).sum(), [x, b, dy], allow_unused=True)
        gg = [torch.zeros_like(t) if g is None else g for g, t in zip(gg, (x, b, dy))]
        results[impl] = (y, dx, db, *gg)
    names = ('forward', 'grad x', 'grad b', 'grad2 x', 'grad2 b', 'grad2 dy')
    for name, a, e in zip(names, *results.values()):
        key = 'forward' if name == 'forward' else ('grad2' if name.startswith('grad2') else 'grad')
        _close(a, e, (key, dtype), name, close_report)


def test_directional_derivatives_float32():
    """Gradients checked without the reference: <grad, v> equals the central difference of the forward along v
    (a cheap stand-in for gradcheck, whose per-element evaluations are too slow in the interpreter)."""
    f = _filter('sep4')
    ops = {
        'upfirdn2d': lambda x: U.upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 2, 1], impl='triton'),
        'filtered_lrelu': lambda x: FL.filtered_lrelu(x, f, f, up=2, down=2, padding=3, clamp=0.7, impl='triton'),
        'bias_act': lambda x: BA.bias_act(x, act='lrelu', clamp=0.7, impl='triton'),
    }
    for name, fn in ops.items():
        x = _inputs([1, 2, 5, 4], torch.float32, 'contig')
        v = _inputs([1, 2, 5, 4], torch.float32, 'contig', seed=5).detach()
        y = fn(x)
        dy = _inputs(y.shape, torch.float32, 'contig', seed=6).detach()
        (dx,) = torch.autograd.grad(y, x, dy)
        eps = 1e-3
        with torch.no_grad():
            fd = ((fn(x + eps * v) - fn(x - eps * v)) * dy).sum() / (2 * eps)
        assert abs(float((dx * v).sum()) - float(fd)) <= 1e-3 * max(1.0, abs(float(fd))), name


def test_auto_picks_triton_on_cuda_and_falls_back_once(monkeypatch, caplog):
    """'auto' tries Triton for CUDA tensors; a kernel that fails on its first launch warns once, the call returns
    the reference result and the op reports 'ref' from then on."""
    from torch_utils import ops

    fake = torch.empty(0)
    monkeypatch.setattr(_triton_support, '_failed', {})
    monkeypatch.setattr(_triton_support, '_verified', set())
    cuda_like = type('T', (), {'device': torch.device('cuda', 0), 'dtype': torch.float16})()
    assert _triton_support.auto_applies('upfirdn2d', cuda_like)
    assert not _triton_support.auto_applies('upfirdn2d', fake)  # CPU: never automatically
    assert ops.impl_report('cuda', torch.float16)['upfirdn2d'] == 'triton'
    assert ops.impl_report('cuda', torch.float64)['upfirdn2d'] == 'ref'

    def broken():
        raise RuntimeError('PTX compilation failed')

    generation = ops.impl_generation()
    with caplog.at_level('WARNING'):
        assert _triton_support.run_auto('upfirdn2d', broken, lambda: fake) is fake
    assert ops.impl_generation() != generation  # the renderer refreshes its cached report
    assert sum('PTX compilation failed' in r.getMessage() for r in caplog.records) == 1
    assert not _triton_support.auto_applies('upfirdn2d', cuda_like)
    assert ops.impl_report('cuda')['upfirdn2d'] == 'ref' and ops.impl_report('cuda')['bias_act'] == 'triton'
    assert _triton_support.run_auto('bias_act', lambda: fake, lambda: None) is fake  # verified from now on
    with pytest.raises(RuntimeError, match='later'):  # after a successful launch errors propagate
        _triton_support.run_auto('bias_act', lambda: (_ for _ in ()).throw(RuntimeError('later')), lambda: None)


def test_explicit_triton_errors(monkeypatch):
    x = torch.zeros(1, 1, 4, 4)
    f = U.setup_filter([1, 1])
    with pytest.raises(ValueError, match='float16, bfloat16 and float32'):
        U.upfirdn2d(x.double().to(DEVICE), f, impl='triton')
    with pytest.raises(ValueError, match='filters'):
        FL.filtered_lrelu(x.to(DEVICE), f.clone().requires_grad_(), f, padding=1, impl='triton')
    if DEVICE == 'cpu':
        monkeypatch.setattr(_triton_support, 'interpreted', lambda: False)
        with pytest.raises(ValueError, match='CUDA tensors'):
            BA.bias_act(x, impl='triton')
    monkeypatch.setattr(_triton_support, '_state', {'error': "ModuleNotFoundError: No module named 'triton'"})
    with pytest.raises(ImportError, match='pip install triton'):
        BA.bias_act(x, impl='triton')
    assert not _triton_support.installed()


@pytest.mark.parametrize('op', ['upfirdn2d', 'filtered_lrelu', 'bias_act'])
def test_gpu_tiling_in_the_interpreter(op, kernels, monkeypatch, close_report):
    """The interpreter normally gives each program a whole plane; here the tiles are small (as on a GPU, where they
    are 16 x 32 and 1024 elements) so that the tile and block index maths of the compiled path is checked too."""
    monkeypatch.setattr(kernels, '_tile', lambda h, w: (4, 8))
    monkeypatch.setattr(kernels, '_elementwise_block', lambda numel: 64)
    x = _inputs([1, 2, 9, 13], torch.float32, 'contig')
    f = _filter('sep4')
    b = torch.tensor([0.3, 9.0, -0.2, 9.0], device=DEVICE)[::2]  # a strided bias view
    calls = {
        'upfirdn2d': lambda impl: U.upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 3, 0], impl=impl),
        'filtered_lrelu': lambda impl: FL.filtered_lrelu(x, f, f, b, up=2, down=2, padding=[3, 2, 1, 4], impl=impl),
        'bias_act': lambda impl: BA.bias_act(x, b, act='lrelu', impl=impl),
    }
    y_t, y_r = calls[op]('triton'), calls[op]('ref')
    _close(y_t, y_r, ('forward', torch.float32), op, close_report)
    dy = _inputs(y_r.shape, torch.float32, 'contig', seed=1)
    (g_t,), (g_r,) = torch.autograd.grad(y_t, x, dy), torch.autograd.grad(y_r, x, dy)
    _close(g_t, g_r, ('grad', torch.float32), op + ' grad', close_report)


# Kernel variants compiled ahead of time for a GPU the machine does not have: (kernel, pointer dtype, constexprs).
AOT_VARIANTS = [
    ('_resample_kernel', 'fp16', dict(TAPS_Y=6, TAPS_X=6, SEPARABLE=True, HAS_BIAS=True, EPILOGUE=1)),  # SG3 up
    ('_resample_kernel', 'fp32', dict(TAPS_Y=12, TAPS_X=12, SEPARABLE=False, HAS_BIAS=False, EPILOGUE=0)),  # radial
    ('_resample_kernel', 'fp16', dict(TAPS_Y=3, TAPS_X=3, SEPARABLE=True, HAS_BIAS=True, EPILOGUE=2)),  # backward
    ('_bias_act_kernel', 'fp16', dict(ACT=2, HAS_BIAS=True, BACKWARD=True)),
    ('_bias_act_kernel', 'fp32', dict(ACT=7, HAS_BIAS=True, BACKWARD=False)),
]


@pytest.mark.slow
@pytest.mark.parametrize('variant', AOT_VARIANTS, ids=[f'{v[0]}-{v[1]}-{i}' for i, v in enumerate(AOT_VARIANTS)])
def test_kernels_compile_for_sm90_without_a_gpu(variant, kernels):
    """The interpreter does not run Triton's compiler; this does: each variant goes through Triton's whole pipeline
    (TTIR, TTGIR, LLVM IR, PTX, and a cubin from the ptxas that ships with Triton) for an sm_90 (H100/H200) target.
    It catches what only the compiled path rejects (types that differ between branches, non-constexpr shapes)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    name, ptr, consts = variant
    if kernels.INTERPRETED:  # the fixture's module holds interpreted functions: compile a fresh import of the source
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv('TRITON_INTERPRET', '0')
            spec = importlib.util.spec_from_file_location('_aot_triton_kernels', kernels.__file__)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    else:
        module = kernels
    fn = getattr(module, name)
    consts = dict(consts)
    if name == '_resample_kernel':
        consts.update(BLOCK_H=16, BLOCK_W=32, WIDE=False)
    else:
        consts.update(BLOCK=1024)
    pointers = ['x_ptr', 'b_ptr', 'aux_ptr', 'y_ptr', 'dy_ptr']
    floats = ['gain', 'slope', 'clamp', 'alpha']
    signature = {}
    for arg in fn.arg_names:
        if arg in consts:
            signature[arg] = 'constexpr'
        elif arg in ('gy_ptr', 'gx_ptr'):
            signature[arg] = '*fp32'
        elif arg in pointers:
            signature[arg] = f'*{ptr}'
        else:
            signature[arg] = 'fp32' if arg in floats else 'i32'
    constexprs = {(fn.arg_names.index(k),): v for k, v in consts.items()}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    options = dict(num_warps=4, enable_fp_fusion=True)  # as the launchers pass them
    compiled = triton.compile(source, target=GPUTarget('cuda', 90, 32), options=options)
    assert compiled.asm['cubin'] and 'ld.global' in compiled.asm['ptx']
