"""conv2d_resample: numpy/scipy oracle, auto-vs-ref case table, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import _op_utils
from torch_utils.ops import conv2d_resample as CR
from torch_utils.ops import upfirdn2d as U

# Case table: (shape [N, C, H, W], out_channels, k, up, down, padding, groups, flip_weight, flip_filter, filter, layout).
CASES = [
    ([2, 4, 7, 5], 6, 3, 2, 1, 1, 1, False, False, [1, 3, 3, 1], 'contig'),  # SG2 upsampling conv
    ([1, 4, 8, 6], 6, 3, 1, 2, 1, 1, True, False, [1, 3, 3, 1], 'channels_last'),  # SG2 D downsampling conv
    ([2, 4, 5, 5], 4, 3, 2, 1, 1, 2, False, True, [1, 3, 3, 1], 'noncontig'),  # grouped (modulated, fused)
    ([1, 4, 6, 5], 2, 1, 1, 2, 0, 1, True, False, [1, 3, 3, 1], 'contig'),  # 1x1 skip (D resnet)
    ([2, 2, 5, 4], 3, 1, 2, 1, 0, 1, False, False, [1, 3, 3, 1], 'contig'),  # 1x1 up (SG2 skip)
    ([1, 3, 7, 6], 3, 3, 1, 1, 1, 1, True, False, None, 'contig'),  # plain conv
    ([1, 2, 7, 6], 3, 3, 1, 1, [0, 2, 1, -1], 1, False, False, None, 'contig'),  # asymmetric padding
    ([1, 2, 5, 6], 2, 3, 2, 2, [1, 0, 2, 1], 1, True, True, [1, 2, 1], 'contig'),  # up and down
    ([1, 2, 4, 5], 2, 3, 4, 1, [1, 0, 0, 1], 2, False, False, [1, 2, 3, 2], 'noncontig'),
    ([2, 2, 9, 7], 4, 4, 1, 4, [2, 1, 1, 2], 1, True, False, [1, 1, 1, 1], 'contig'),
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


def _layout(x, layout):
    if layout == 'noncontig':
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    elif layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x


def _np_oracle(x, w, f2, up, down, padding, groups, flip_weight, flip_filter):
    """Zero-stuff, pad (conv padding + filter padding), filter (gain up^2), conv (valid), filter + decimate."""
    N, C, H, W = x.shape
    O, Ig, kh, kw = w.shape
    f2 = np.ones([1, 1]) if f2 is None else f2
    if flip_filter:
        f2 = f2[::-1, ::-1]
    fh, fw = f2.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        px0, px1, py0, py1 = (
            px0 + (fw + up - 1) // 2,
            px1 + (fw - up) // 2,
            py0 + (fh + up - 1) // 2,
            py1 + (fh - up) // 2,
        )
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    z = np.zeros([N, C, H * up, W * up])
    z[:, :, ::up, ::up] = x
    z = np.pad(z, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    if up > 1:
        z = np.stack(
            [[scipy.signal.convolve2d(z[n, c], f2 * up * up, mode='valid') for c in range(C)] for n in range(N)]
        )
    wk = w if flip_weight else w[:, :, ::-1, ::-1]
    Og = O // groups
    y = np.stack(
        [
            [
                sum(scipy.signal.correlate2d(z[n, (o // Og) * Ig + i], wk[o, i], mode='valid') for i in range(Ig))
                for o in range(O)
            ]
            for n in range(N)
        ]
    )
    if down > 1:
        y = np.stack([[scipy.signal.convolve2d(y[n, o], f2, mode='valid') for o in range(O)] for n in range(N)])
        y = y[:, :, ::down, ::down]
    return y


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_oracle_and_auto_matches_ref(case, close_report):
    shape, O, k, up, down, padding, groups, flip_weight, flip_filter, taps, layout = case
    rnd = np.random.RandomState(0)
    x = rnd.randn(*shape)
    w = rnd.randn(O, shape[1] // groups, k, k)
    f = None if taps is None else U.setup_filter(taps)
    f2 = None if f is None else (f.double().numpy() if f.ndim == 2 else np.outer(f.numpy(), f.numpy()))
    expected = _np_oracle(x, w, f2, up, down, _op_utils.parse_padding(padding), groups, flip_weight, flip_filter)
    kw = dict(f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
    for impl in ('ref', 'auto'):
        y = CR.conv2d_resample(_layout(torch.tensor(x), layout), torch.tensor(w), impl=impl, **kw)
        close_report(y, expected, atol=1e-10, rtol=1e-10, name=f'impl={impl}')
    # float32 auto vs ref (different evaluation orders).
    y32 = [CR.conv2d_resample(torch.tensor(x).float(), torch.tensor(w).float(), impl=i, **kw) for i in ('ref', 'auto')]
    close_report(y32[1], y32[0], atol=1e-5 * float(y32[0].abs().max()), rtol=1e-5, name='float32 auto vs ref')


@pytest.mark.parametrize('case', [CASES[0], CASES[1], CASES[2]], ids=['up', 'down', 'grouped'])
def test_gradcheck_and_gradgradcheck(case):
    shape, O, k, up, down, padding, groups, flip_weight, flip_filter, taps, _ = case
    torch.manual_seed(0)
    x = torch.randn([1, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    w = torch.randn([2, 2 // groups, k, k], dtype=torch.float64, requires_grad=True)
    f = U.setup_filter(taps)
    fn = lambda x, w: CR.conv2d_resample(  # noqa: E731
        x, w, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter
    )
    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w))


def test_errors():
    x = torch.zeros(1, 2, 4, 4)
    w = torch.zeros(3, 2, 3, 3)
    with pytest.raises(ValueError, match='w must'):
        CR.conv2d_resample(x, w[0])
    with pytest.raises(ValueError, match='up must'):
        CR.conv2d_resample(x, w, up=0)
    with pytest.raises(ValueError, match='impl'):
        CR.conv2d_resample(x, w, impl='cuda')
    with pytest.raises(ValueError, match='f must'):
        CR.conv2d_resample(x, w, f=torch.ones(2, 2, 2))
