"""grid_sample_gradfix: explicit bilinear reference vs F.grid_sample, double backward (input and grid)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import grid_sample_gradfix as GS

# Case table: (input shape, output size (Ho, Wo), grid spread (1 = exactly the image), layout).
CASES = [
    ([1, 2, 5, 4], (3, 6), 1.3, 'contig'),  # samples outside -> zeros
    ([2, 3, 6, 7], (6, 7), 0.9, 'channels_last'),
    ([2, 1, 4, 4], (5, 2), 1.0, 'noncontig'),
]


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _inputs(case, dtype=torch.float64):
    shape, (Ho, Wo), spread, layout = case
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype)
    grid = (torch.rand([shape[0], Ho, Wo, 2], generator=g, dtype=dtype) * 2 - 1) * spread
    if layout == 'noncontig':
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    elif layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x, grid


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_ref_matches_torch(case, close_report):
    x, grid = _inputs(case)
    expected = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    for impl in ('ref', 'auto'):
        close_report(GS.grid_sample(x, grid, impl=impl), expected, atol=1e-12, rtol=1e-12, name=impl)


@pytest.mark.parametrize('impl', ['ref', 'auto'])
def test_gradcheck_and_gradgradcheck(impl, monkeypatch):
    monkeypatch.setattr(GS, 'enabled', True)
    x, grid = _inputs(([1, 1, 3, 3], (2, 2), 0.8, 'contig'))
    x.requires_grad_()
    grid.requires_grad_()
    fn = lambda x, grid: GS.grid_sample(x, grid, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, grid))
    assert torch.autograd.gradgradcheck(fn, (x, grid))


def test_errors():
    with pytest.raises(ValueError, match='grid must'):
        GS.grid_sample(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match='impl'):
        GS.grid_sample(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), impl='cuda')
