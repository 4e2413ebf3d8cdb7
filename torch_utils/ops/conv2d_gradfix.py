"""``conv2d`` / ``conv_transpose2d`` wrappers with switchable weight gradients (reference-compatible API).

The reference wraps cuDNN in a custom autograd op because old PyTorch versions could not differentiate the
convolution backward twice (needed by the R1 and path-length regularisers, StyleGAN2 arXiv 1912.04958 Sec. 4 and
StyleGAN2-ADA arXiv 2006.06676) and because the path-length term wants no weight gradients. Current PyTorch
differentiates convolutions to any order, so here both wrappers are the plain ``torch.nn.functional`` ops
(``impl='ref'``, on every device); when the module flag :data:`enabled` is True, the weight passes through a gate
whose backward drops the weight gradient while :func:`no_weight_gradients` is active, read at *backward* time like
the reference (``with no_weight_gradients(): torch.autograd.grad(...)``). Gradients through the gate are plain
autograd, so double backward works.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from . import _cpu_conv

__all__ = ['enabled', 'weight_gradients_disabled', 'no_weight_gradients', 'conv2d', 'conv_transpose2d']

#: Reference-compatible switch (the reference training loop sets it to True). When False, the wrappers are exactly
#: ``F.conv2d`` / ``F.conv_transpose2d`` and :func:`no_weight_gradients` has no effect, as in the reference.
enabled = False

#: True while a :func:`no_weight_gradients` block is active (read-only for callers; the reference exposes it too).
weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True) -> Iterator[None]:
    """Context manager: backward passes run inside it give no gradient for conv weights (when :data:`enabled`).

    Args:
        disable: False makes the block a no-op (handy for ``with no_weight_gradients(flag):``).
    """
    global weight_gradients_disabled
    old = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = old


class _WeightGate(torch.autograd.Function):
    """Identity whose backward returns no gradient while :data:`weight_gradients_disabled`."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor | None:  # type: ignore[override]
        if weight_gradients_disabled:
            return None
        return grad


def _gate(weight: torch.Tensor) -> torch.Tensor:
    if enabled and weight.requires_grad and torch.is_grad_enabled():
        return _WeightGate.apply(weight)
    return weight


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` (same arguments, shapes and errors) honouring :func:`no_weight_gradients`.

    Args:
        input: [N, I, H, W] floating tensor.
        weight: [O, I / groups, kh, kw], dtype/device of ``input``.
        bias: [O] or None.

    Returns:
        [N, O, H', W'] (cross-correlation, as in PyTorch). Float32 CPU inference 3x3 convolutions of large enough
        images run by Winograd F(6x6, 3x3) (``_cpu_conv.py``; about 1e-5 relative difference), except inside
        ``torch_utils.ops.default_impl('ref')``.
    """
    if _cpu_conv.applies(input, weight, bias, stride, padding, dilation, groups):
        return _cpu_conv.conv2d(input, weight, bias, padding, groups)
    return F.conv2d(input, _gate(weight), bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_transpose2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv_transpose2d`` (same arguments) honouring :func:`no_weight_gradients`.

    Args:
        input: [N, I, H, W] floating tensor.
        weight: [I, O / groups, kh, kw], dtype/device of ``input``.
        bias: [O] or None.

    Returns:
        [N, O, H', W'].
    """
    return F.conv_transpose2d(
        input,
        _gate(weight),
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
