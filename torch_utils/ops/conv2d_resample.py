"""2-D convolution with optional FIR up/downsampling (``conv2d_resample``), reference-compatible.

StyleGAN2 (arXiv 1912.04958, Sec. 2 and App. B) convolves at the upsampled resolution and blurs with an FIR filter
to avoid checkerboard artefacts: ``up``: zero-insert, filter with ``f`` (gain up^2), convolve with ``w``;
``down``: filter with ``f``, convolve with ``w``, keep every ``down``-th sample. ``padding`` pads the input of the
convolution (in input pixels), and the filter padding is added so that a 3x3 conv with ``padding=1`` maps
H x W to (H*up/down) x (W*up/down). The up path runs the convolution as a strided transposed convolution (no
zero-stuffed tensor, Sec. 2 of the paper's official design), the down path as a strided convolution; all paths are
exactly the composition in :func:`_conv2d_resample_ref` up to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import _impl_context, _op_utils, conv2d_gradfix, upfirdn2d

__all__ = ['conv2d_resample']

_IMPLS = ('auto', 'ref')


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: int = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
) -> torch.Tensor:
    """conv2d (flip_weight=True: correlation; False: true convolution) or conv_transpose2d through conv2d_gradfix."""
    kh, kw = w.shape[2], w.shape[3]
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    op = conv2d_gradfix.conv_transpose2d if transpose else conv2d_gradfix.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def _filter_padding(
    f: torch.Tensor | None, up: int, down: int, padding: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """Adds the FIR filter's own padding to the conv padding (same split as upsample2d / downsample2d)."""
    fw, fh = _op_utils.get_filter_size(f, 'conv2d_resample')
    px0, px1, py0, py1 = padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1


def _check_args(x, w, f, up, down, groups) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'conv2d_resample(): x must be a 4-D tensor [N, C, H, W], got {_op_utils.describe(x)}')
    if not isinstance(w, torch.Tensor) or w.ndim != 4 or w.dtype != x.dtype:
        raise ValueError(
            f'conv2d_resample(): w must be a 4-D tensor [O, I/groups, kh, kw] with dtype {x.dtype}, '
            f'got {_op_utils.describe(w)}'
        )
    if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.dtype != torch.float32):
        raise ValueError(f'conv2d_resample(): f must be None or a float32 1-D/2-D filter, got {_op_utils.describe(f)}')
    for name, v in (('up', up), ('down', down), ('groups', groups)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f'conv2d_resample(): {name} must be an int >= 1, got {v!r}')


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = 'auto',
) -> torch.Tensor:
    """Convolution with FIR-filtered up/downsampling (StyleGAN2 App. B).

    Args:
        x: Input [N, C, H, W], floating dtype, any device.
        w: Weight [O, C / groups, kh, kw], dtype of ``x``.
        f: FIR filter from ``upfirdn2d.setup_filter`` (float32 [K] or [fh, fw]) or None (box of 1 tap).
        up: Integer upsampling factor.
        down: Integer downsampling factor.
        padding: Conv padding in input pixels: int, [px, py] or [px0, px1, py0, py1].
        groups: Convolution groups (the modulated conv uses groups = N).
        flip_weight: True: cross-correlation with ``w`` (like ``F.conv2d``); False: true convolution.
        flip_filter: Correlate with ``f`` instead of convolving.
        impl: 'auto' (fastest exact composition) or 'ref' (the literal composition).

    Returns:
        Tensor [N, O, H', W'] in the dtype of ``x``.

    Raises:
        ValueError: Bad shapes, factors, filter or impl.
    """
    _check_args(x, w, f, up, down, groups)
    if impl not in _IMPLS:
        raise ValueError(f'conv2d_resample(): impl must be one of {list(_IMPLS)}, got {impl!r}')
    padding = _op_utils.parse_padding(padding, 'conv2d_resample')
    up, down, groups = int(up), int(down), int(groups)
    if impl == 'ref' or (impl == 'auto' and _impl_context.current() == 'ref'):
        return _conv2d_resample_ref(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
    return _conv2d_resample_auto(x, w, f, up, down, padding, groups, flip_weight, flip_filter)


def _conv2d_resample_ref(x, w, f, up, down, padding, groups, flip_weight, flip_filter) -> torch.Tensor:
    """Specification: upsample with f (gain up^2) + pad, convolve (valid), downsample with f."""
    px0, px1, py0, py1 = _filter_padding(f, up, down, padding)
    x = upfirdn2d.upfirdn2d(
        x, (f if up > 1 else None), up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter
    )
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def _conv2d_resample_auto(x, w, f, up, down, padding, groups, flip_weight, flip_filter) -> torch.Tensor:
    """Cheaper but equivalent evaluation orders of :func:`_conv2d_resample_ref`."""
    out_channels, in_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = _filter_padding(f, up, down, padding)

    # 1x1 kernel: filter on the side with fewer channels/pixels.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution computes just the kept samples.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: the transposed strided convolution does zero insertion + true convolution with w in one op.
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)  # [I, O, kh, kw]
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
            w = w.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=(not flip_weight))
        x = upfirdn2d.upfirdn2d(
            x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter
        )
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # Plain convolution with symmetric non-negative padding.
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    return _conv2d_resample_ref(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
