"""2-D FIR resampling: upsample by zero insertion, pad, FIR-filter, downsample (``upfirdn2d``).

The maths is the classical polyphase up-FIR-down chain (``scipy.signal.upfirdn`` per axis); StyleGAN2
(arXiv 1912.04958, Sec. 2 and App. B) uses it for its blurred up/downsampling and Alias-Free GAN (arXiv 2106.12423,
Sec. 3.2 and App. D) for its windowed-sinc filters. Same names, keywords and semantics as the ``upfirdn2d`` module
that StyleGAN2/3 network pickles call (``docs/ops.md``).

Implementations (``impl``):
  * ``'ref'``  -- plain PyTorch, the specification: zero insertion, ``F.pad`` and depthwise ``conv2d``.
  * ``'fast'`` -- plain PyTorch polyphase decomposition (``_fast_resample.py``): no zero-stuffed tensors, only the
    kept samples are computed when downsampling, separable filters as two 1-D passes. Works on every device.
  * ``'triton'`` -- Triton kernel (``_triton_kernels.py``): polyphase, nothing zero-stuffed; CUDA tensors of
    float16/bfloat16/float32 (CPU tensors under ``TRITON_INTERPRET=1``); gradients of every order for ``x`` (the
    gradient is another upfirdn2d), none for ``f``.
  * ``'auto'`` -- ``'triton'`` for CUDA tensors when Triton imports and the kernel compiled (else ``'ref'``, with
    one warning), ``'fast'`` for CPU/MPS tensors, ``'ref'`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import _fast_resample, _impl_context, _op_utils, _triton_support

__all__ = ['setup_filter', 'upfirdn2d', 'filter2d', 'upsample2d', 'downsample2d']

_IMPLS = ('auto', 'ref', 'fast', 'triton')

# ----------------------------------------------------------------------------


def setup_filter(
    f: object,
    device: torch.device | str = torch.device('cpu'),
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Converts FIR taps into a float32 filter tensor for :func:`upfirdn2d`.

    Args:
        f: Taps as anything ``torch.as_tensor`` accepts: None (identity), a scalar, a 1-D list/array [K] or a 2-D
            array [fh, fw].
        device: Device of the returned tensor.
        normalize: Divide by the sum of the taps (DC gain 1).
        flip_filter: Flip the taps (correlation instead of convolution later on).
        gain: Overall gain; a separable 1-D filter gets ``sqrt(gain)`` so that the two passes multiply to ``gain``.
        separable: Keep a 1-D filter 1-D (applied as two passes). None: True for 1-D filters of >= 8 taps.

    Returns:
        float32 tensor [K] (separable) or [fh, fw] on ``device``.

    Raises:
        ValueError: ``f`` has more than 2 dimensions or ``separable=True`` with a 2-D filter.
    """
    t = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if t.ndim == 0:
        t = t[None]
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(f'setup_filter(): f must be a scalar, 1-D or 2-D, got shape {list(t.shape)}')
    if separable is None:
        separable = t.ndim == 1 and t.numel() >= 8
    if t.ndim == 1 and not separable:
        t = t.outer(t)  # [K, K]
    if separable and t.ndim != 1:
        raise ValueError(f'setup_filter(): separable=True needs a 1-D filter, got shape {list(t.shape)}')
    if normalize:
        t = t / t.sum()
    if flip_filter:
        t = t.flip(list(range(t.ndim)))
    t = t * (gain ** (t.ndim / 2))
    return t.to(device=device)


# ----------------------------------------------------------------------------


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = 'auto',
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample a batch of images.

    Per axis: insert ``up - 1`` zeros after every sample, pad by ``padding`` (negative crops), convolve with ``f``
    (true convolution unless ``flip_filter``; "valid" part only), keep every ``down``-th sample starting at 0.
    Output size per axis: ``(in * up + pad0 + pad1 - taps) // down + 1``.

    Args:
        x: Input [N, C, H, W], any floating dtype and device, any memory layout.
        f: Filter from :func:`setup_filter`: float32 [K] (separable, applied along W then H), [fh, fw], or None.
        up: Upsampling factor, int or [upx, upy].
        down: Downsampling factor, int or [downx, downy].
        padding: int, [px, py] or [px0, px1, py0, py1] in upsampled pixels; negative values crop.
        flip_filter: Correlate instead of convolve.
        gain: Overall gain applied to the filter.
        impl: 'auto', 'ref', 'fast' or 'triton' (see module docstring).

    Returns:
        Tensor [N, C, out_h, out_w] with the dtype and device of ``x``.

    Raises:
        ValueError: Bad shapes, factors, padding, impl, or an empty output; ``impl='triton'`` outside its domain.
        TypeError: Non-floating ``x``.
        ImportError: ``impl='triton'`` without the triton package.
    """
    _op_utils.check_x(x, 'upfirdn2d')
    upx, upy = _op_utils.parse_scaling(up, 'up')
    downx, downy = _op_utils.parse_scaling(down, 'down')
    px0, px1, py0, py1 = _op_utils.parse_padding(padding)
    fw, fh = _op_utils.get_filter_size(f)
    out_w = (x.shape[3] * upx + px0 + px1 - fw) // downx + 1
    out_h = (x.shape[2] * upy + py0 + py1 - fh) // downy + 1
    if out_w < 1 or out_h < 1:
        raise ValueError(
            f'upfirdn2d(): output would be empty ({out_h}x{out_w}) for input {list(x.shape)}, filter {fh}x{fw}, '
            f'up {[upx, upy]}, down {[downx, downy]}, padding {[px0, px1, py0, py1]}; increase the padding'
        )
    args = (x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1), bool(flip_filter), float(gain))
    if impl == 'triton':
        return _triton_support.check_explicit('upfirdn2d', x, f).Upfirdn2d.apply(*args)
    if impl == 'auto' and _impl_context.current() in ('auto', 'triton'):
        if _triton_support.auto_applies('upfirdn2d', x, f):
            kernels = _triton_support.loaded()
            return _triton_support.run_auto(
                'upfirdn2d', lambda: kernels.Upfirdn2d.apply(*args), lambda: _upfirdn2d_ref(*args)
            )
    resolved = _op_utils.resolve_resample_impl(impl, x, 'upfirdn2d', _IMPLS)
    if resolved == 'ref':
        return _upfirdn2d_ref(*args)
    if impl == 'auto':
        return _op_utils.run_with_fallback(
            'upfirdn2d', x, lambda: _fast_resample.upfirdn2d_fast(*args), lambda: _upfirdn2d_ref(*args)
        )
    return _fast_resample.upfirdn2d_fast(*args)


def _upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Plain-PyTorch specification of :func:`upfirdn2d` (arguments already parsed)."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    N, C, H, W = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)

    # Zero insertion: [N, C, H, 1, W, 1] padded to [N, C, H, upy, W, upx].
    if upx > 1 or upy > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(N, C, H * upy, W * upx)

    # Pad (positive) and crop (negative).
    x = F.pad(x, [px0, px1, py0, py1])

    # FIR filter as a depthwise convolution (conv2d correlates, hence the flip for a true convolution).
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(C, 1, *f.shape), groups=C)
    else:
        x = F.conv2d(x, f[None, None, None, :].expand(C, 1, 1, f.shape[0]), groups=C)  # along W
        x = F.conv2d(x, f[None, None, :, None].expand(C, 1, f.shape[0], 1), groups=C)  # along H

    # Keep every down-th sample.
    return x[:, :, ::downy, ::downx]


# ----------------------------------------------------------------------------


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = 'auto',
) -> torch.Tensor:
    """FIR-filters ``x`` keeping its size (plus ``padding``); see :func:`upfirdn2d` for the arguments.

    Returns:
        Tensor [N, C, H + py0 + py1, W + px0 + px1].
    """
    px0, px1, py0, py1 = _op_utils.parse_padding(padding, 'filter2d')
    fw, fh = _op_utils.get_filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 2,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = 'auto',
) -> torch.Tensor:
    """Upsamples by ``up`` with ``f`` and gain ``gain * upx * upy`` (DC preserved); see :func:`upfirdn2d`.

    Returns:
        Tensor [N, C, H * upy + py0 + py1, W * upx + px0 + px1].
    """
    upx, upy = _op_utils.parse_scaling(up, 'up', 'upsample2d')
    px0, px1, py0, py1 = _op_utils.parse_padding(padding, 'upsample2d')
    fw, fh = _op_utils.get_filter_size(f)
    p = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=[upx, upy], padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: int | Sequence[int] = 2,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = 'auto',
) -> torch.Tensor:
    """Filters with ``f`` and keeps every ``down``-th sample; see :func:`upfirdn2d`.

    Returns:
        Tensor [N, C, (H + py0 + py1) // downy, (W + px0 + px1) // downx] (for even sizes).
    """
    downx, downy = _op_utils.parse_scaling(down, 'down', 'downsample2d')
    px0, px1, py0, py1 = _op_utils.parse_padding(padding, 'downsample2d')
    fw, fh = _op_utils.get_filter_size(f)
    p = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=[downx, downy], padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
