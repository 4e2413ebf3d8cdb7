"""Winograd 3x3 convolutions for CPU inference (private; used by ``conv2d_gradfix.conv2d``).

The StyleGAN3-T and StyleGAN2 generators spend most of a CPU frame in dense 3x3 convolutions, which oneDNN runs as
direct/implicit-GEMM kernels at close to the machine's FMA peak. Winograd's minimal filtering algorithm F(6x6, 3x3)
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", arXiv 1509.09308, Sec. 4) computes a 6x6 output
tile from an 8x8 input tile with 64 multiplications per channel pair instead of 324, at the price of input, kernel
and output transforms. PyTorch's CPU builds ship NNPACK, which implements it for AVX2 and NEON
(``torch._nnpack_spatial_convolution``); PyTorch itself only picks it for batches of 16 or more, so batch-1 frames
never get it. Measured on a 2-core AVX2 machine (``bench/bench_cpu_frame.py``): 2.2x faster than oneDNN for
256 -> 256 channels at 84x84 px, 1.45x at 36x36 px, but slower for small images or few channels (the kernel
transform, I * O * 64 values per call, dominates) -- hence the size gate in :func:`applies`.

Numerics: float32 Winograd F(6x6, 3x3) differs from the direct convolution by about 1e-5 of the output's largest
magnitude (tested in ``tests/torch_utils/test_ops_conv2d_gradfix.py``). Only inference uses it (no autograd); the
``impl='ref'`` scope (``torch_utils.ops.default_impl('ref')``) and every other case run ``F.conv2d``.
"""

from __future__ import annotations

import torch

from . import _impl_context

# Gate, from measurements of single-image 3x3 convolutions (see the module docstring): Winograd wins when the
# output has at least this many pixels and both channel counts per group are at least this large.
MIN_OUT_PIXELS = 30 * 30
MIN_CHANNELS = 96

_available: list[bool] = []  # memo of torch._nnpack_available() (it initialises NNPACK; first use only)


def available() -> bool:
    """Whether PyTorch's NNPACK Winograd convolution can run here (initialises NNPACK on the first call)."""
    if not _available:
        try:
            _available.append(bool(torch._nnpack_available()))
        except (AttributeError, RuntimeError):
            _available.append(False)
    return _available[0]


def _pair(v: object) -> tuple[int, int] | None:
    """int or a pair of ints -> (a, b); anything else (e.g. padding="same") -> None."""
    if isinstance(v, int):
        return v, v
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(e, int) for e in v):
        return int(v[0]), int(v[1])
    return None


def applies(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None,
    stride: object,
    padding: object,
    dilation: object,
    groups: int,
) -> bool:
    """True for float32 CPU inference 3x3 convolutions, stride 1, no dilation, large enough (see the gate)."""
    if x.device.type != 'cpu' or x.dtype != torch.float32 or w.dtype != torch.float32 or x.ndim != 4:
        return False
    if w.ndim != 4 or w.shape[2] != 3 or w.shape[3] != 3 or not isinstance(groups, int) or groups < 1:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (bias is not None and bias.requires_grad)):
        return False
    if bias is not None and (bias.dtype != torch.float32 or bias.device.type != 'cpu'):
        return False
    pad = _pair(padding)
    if _pair(stride) != (1, 1) or _pair(dilation) != (1, 1) or pad is None or not (0 <= min(pad) and max(pad) <= 2):
        return False
    out_h, out_w = x.shape[2] + 2 * pad[0] - 2, x.shape[3] + 2 * pad[1] - 2
    if out_h * out_w < MIN_OUT_PIXELS or x.shape[1] % groups != 0 or w.shape[0] % groups != 0:
        return False
    if min(x.shape[1] // groups, w.shape[0] // groups) < MIN_CHANNELS or w.shape[1] != x.shape[1] // groups:
        return False
    if _impl_context.current() == 'ref':
        return False
    return available()


def conv2d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, padding: object, groups: int) -> torch.Tensor:
    """``F.conv2d(x, w, bias, padding=padding, groups=groups)`` by Winograd F(6x6, 3x3), for :func:`applies` args.

    Groups (the modulated convolution's batch trick: groups = N) run one after another, each on all threads.
    """
    pad = _pair(padding)
    assert pad is not None
    x, w = x.detach(), w.detach()
    bias = None if bias is None else bias.detach()
    if groups == 1:
        return torch._nnpack_spatial_convolution(x, w, bias, list(pad))
    I, O = x.shape[1] // groups, w.shape[0] // groups  # noqa: E741 (shape letters as in the docs)
    outs = []
    for g in range(groups):
        bg = None if bias is None else bias[g * O : (g + 1) * O]
        outs.append(torch._nnpack_spatial_convolution(x[:, g * I : (g + 1) * I], w[g * O : (g + 1) * O], bg, list(pad)))
    return torch.cat(outs, 1)
