"""fma: a*b + c with broadcasting, gradients reduced to each operand's shape, double backward."""

from __future__ import annotations

import pytest
import torch

from torch_utils.ops import fma as FMA

# Case table: (a shape, b shape, c shape) -- batch 1 and > 1, broadcasting on every operand.
CASES = [
    ([2, 3, 2, 2], [2, 3, 1, 1], [2, 3, 2, 2]),  # SG2: x * dcoefs + noise-free x
    ([1, 3, 2, 3], [1, 3, 1, 1], [1, 1, 2, 3]),
    ([3, 1], [1, 4], [4]),
    ([5], [5], [1]),
]


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_gradcheck_and_gradgradcheck(case):
    """Values, gradient shapes (reduced over broadcast dims), gradcheck and gradgradcheck in float64."""
    torch.manual_seed(0)
    a, b, c = (torch.randn(s, dtype=torch.float64, requires_grad=True) for s in case)
    for impl in ('auto', 'ref'):
        y = FMA.fma(a, b, c, impl=impl)
        torch.testing.assert_close(y, a * b + c)
        grads = torch.autograd.grad(y.sum(), [a, b, c])
        for g, t in zip(grads, (a, b, c)):
            assert g.shape == t.shape
    assert torch.autograd.gradcheck(lambda a, b, c: FMA.fma(a, b, c), (a, b, c))
    assert torch.autograd.gradgradcheck(lambda a, b, c: FMA.fma(a, b, c), (a, b, c))


def test_noncontiguous_and_channels_last():
    a = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    b = torch.randn(2, 5, 4, 3).transpose(1, 3)
    c = torch.randn(1, 3, 1, 1)
    torch.testing.assert_close(FMA.fma(a, b, c), a * b + c)


def test_errors():
    with pytest.raises(ValueError, match='broadcast'):
        FMA.fma(torch.zeros(2), torch.zeros(3), torch.zeros(1))
    with pytest.raises(ValueError, match='impl'):
        FMA.fma(torch.zeros(2), torch.zeros(2), torch.zeros(2), impl='cuda')
