"""Bilinear ``grid_sample`` with double-backward support (reference-compatible ``grid_sample_gradfix``).

The ADA augmentation pipeline (arXiv 2006.06676, App. B.2) resamples images geometrically and the R1 penalty
differentiates D's gradient through it, so the sampler must be twice differentiable. Current PyTorch's
``F.grid_sample`` is (w.r.t. input and grid), so ``impl='auto'`` uses it ('native'); ``impl='ref'`` is an
explicit gather-based bilinear sampler in plain PyTorch (the specification, differentiable to any order).
The module flag :data:`enabled` exists for compatibility (the reference training loop sets it); both paths give
double backward regardless.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['enabled', 'grid_sample']

#: Reference-compatible switch; kept for API compatibility (both implementations support double backward).
enabled = False

_IMPLS = ('auto', 'ref', 'native')


def grid_sample(input: torch.Tensor, grid: torch.Tensor, impl: str = 'auto') -> torch.Tensor:
    """Bilinear sampling with zero padding and ``align_corners=False``.

    Args:
        input: Images [N, C, H, W], floating dtype, any device.
        grid: Sample positions [N, Ho, Wo, 2] as (x, y) in [-1, 1] (-1 = left/top edge of the first pixel),
            dtype/device of ``input``. Points outside read zeros.
        impl: 'auto' (= 'native', ``F.grid_sample``) or 'ref'.

    Returns:
        Tensor [N, C, Ho, Wo].

    Raises:
        ValueError: Bad shapes or impl.
    """
    if not isinstance(input, torch.Tensor) or input.ndim != 4:
        raise ValueError(
            f'grid_sample(): input must be a 4-D tensor [N, C, H, W], got {getattr(input, "shape", input)}'
        )
    if not isinstance(grid, torch.Tensor) or grid.ndim != 4 or grid.shape[3] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(
            f'grid_sample(): grid must be [N={input.shape[0]}, Ho, Wo, 2], got {getattr(grid, "shape", grid)}'
        )
    if impl not in _IMPLS:
        raise ValueError(f'grid_sample(): impl must be one of {list(_IMPLS)}, got {impl!r}')
    if impl == 'ref':
        return _grid_sample_ref(input, grid)
    return F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


def _grid_sample_ref(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Plain-PyTorch specification: pixel centres at ((i + 0.5) / size) * 2 - 1, bilinear weights, zeros outside."""
    N, C, H, W = input.shape
    _, Ho, Wo, _ = grid.shape
    ix = ((grid[..., 0] + 1) * W - 1) / 2  # [N, Ho, Wo] in pixel units
    iy = ((grid[..., 1] + 1) * H - 1) / 2
    x0 = torch.floor(ix).detach()
    y0 = torch.floor(iy).detach()
    tx, ty = ix - x0, iy - y0
    flat = input.reshape(N, C, H * W)
    out = input.new_zeros([N, C, Ho * Wo])
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            xi, yi = x0 + dx, y0 + dy
            valid = ((xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)).to(input.dtype)
            idx = (yi.clamp(0, H - 1) * W + xi.clamp(0, W - 1)).long().reshape(N, 1, Ho * Wo).expand(N, C, Ho * Wo)
            weight = (wx * wy * valid).reshape(N, 1, Ho * Wo)
            out = out + flat.gather(2, idx) * weight
    return out.reshape(N, C, Ho, Wo)
