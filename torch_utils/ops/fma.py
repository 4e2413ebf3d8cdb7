"""Fused multiply-add ``a * b + c`` with broadcasting-aware gradients (reference-compatible ``fma.fma``).

Used by the StyleGAN2 modulated convolution (arXiv 1912.04958, Sec. 2.2, Eq. 1-3: ``x * dcoefs + noise``).
Autograd reduces each gradient over the broadcast dimensions back to its operand's shape, to any order.
"""

from __future__ import annotations

import torch

__all__ = ['fma']

_IMPLS = ('auto', 'ref')


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, impl: str = 'auto') -> torch.Tensor:
    """Returns ``a * b + c`` (``torch.addcmul``; ``impl='ref'`` computes it literally).

    Args:
        a, b, c: Tensors broadcastable to a common shape, same floating dtype and device.
        impl: 'auto' or 'ref'.

    Returns:
        Tensor of the broadcast shape.

    Raises:
        ValueError: Unknown ``impl`` or shapes that do not broadcast.
    """
    if impl not in _IMPLS:
        raise ValueError(f'fma(): impl must be one of {list(_IMPLS)}, got {impl!r}')
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape, c.shape)
    except RuntimeError as e:
        raise ValueError(f'fma(): a, b, c must broadcast, got {list(a.shape)}, {list(b.shape)}, {list(c.shape)}') from e
    if impl == 'ref':
        return _fma_ref(a, b, c)
    out = torch.addcmul(c, a, b)
    return out if out.shape == shape else out.expand(shape)


def _fma_ref(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Plain-PyTorch specification of :func:`fma`."""
    return a * b + c
