"""Alias-free leaky ReLU: bias, upsample, leaky ReLU, clamp, downsample (``filtered_lrelu``).

Alias-Free GAN (arXiv 2106.12423), Sec. 3.2 and Fig. 3 (and App. D): a pointwise nonlinearity creates arbitrarily
high frequencies, so it is applied at ``up`` times the sampling rate between an interpolation filter ``fu`` and a
low-pass filter ``fd``. Same names, keywords and semantics as the ``filtered_lrelu`` module that StyleGAN3 network
pickles call (``docs/ops.md``).

Implementations (``impl``):
  * ``'ref'``  -- the specification: ``bias_act`` (bias), ``upfirdn2d`` (up, ``impl='ref'``), ``bias_act`` (lrelu,
    gain, clamp), ``upfirdn2d`` (down, ``impl='ref'``).
  * ``'fast'`` -- the same chain with the polyphase ``upfirdn2d`` (``impl='fast'``) and a fused elementwise stage;
    differentiable (any order), any device.
  * ``'cpp'``  -- a fused C++ CPU kernel (``filtered_lrelu_cpu.cpp``, built on first use by
    ``torch_utils.custom_ops``): float32, forward only (no autograd), 1-D ``fu``, 1-D or square 2-D ``fd`` -- the
    StyleGAN3-T/R layers. One image plane at a time through polyphase passes that stay in the caches; the mirror
    symmetry of radial ``fd`` halves its taps. About 10x faster than 'fast' on SG3 layer shapes.
  * ``'triton'`` -- Triton kernels (``_triton_kernels.py``): one pass bias + up-FIR + activation, then the down-FIR;
    CUDA float16/bfloat16/float32 (CPU tensors under ``TRITON_INTERPRET=1``); Triton first-order gradient for ``x``
    and ``b`` (higher orders through the reference chain), no gradient for the filters. Chosen by ``'auto'`` for
    CUDA tensors when Triton imports and the kernel compiled.
  * ``'auto'`` -- on the CPU: ``'cpp'`` when it applies and is built (the build starts in a background thread on
    the first such call; ``'fast'`` is used meanwhile, or for good when it cannot be built, with one warning naming
    the build log), else ``'fast'``; ``'fast'`` on MPS, ``'ref'`` elsewhere. Inside
    ``torch_utils.ops.default_impl(...)`` the scoped implementation is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import _cpu_kernels, _fast_resample, _impl_context, _op_utils, _triton_support, bias_act, upfirdn2d

__all__ = ['filtered_lrelu']

_IMPLS = ('auto', 'ref', 'fast', 'cpp', 'triton')


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = 'auto',
) -> torch.Tensor:
    """Filtered leaky ReLU (Alias-Free GAN, Sec. 3.2).

    Computes ``upfirdn2d(clamp(gain * lrelu(upfirdn2d(x + b, fu, up, padding, gain=up**2), slope)), fd, down)``.
    Output size per axis: ``((in * up + pad0 + pad1 - fu_taps + 1) - fd_taps) // down + 1``.

    Args:
        x: Input [N, C, H, W], floating dtype, any device and layout.
        fu: Upsampling filter from ``upfirdn2d.setup_filter``: float32 [K] (separable) or [fh, fw] (radial), or None.
        fd: Downsampling filter, same forms as ``fu``.
        b: Bias [C] (dtype of ``x``) or None.
        up: Integer upsampling factor >= 1.
        down: Integer downsampling factor >= 1.
        padding: int, [px, py] or [px0, px1, py0, py1], applied in the upsampled domain; negative crops.
        gain: Scale after the leaky ReLU (default sqrt(2)).
        slope: Leaky ReLU slope for negative inputs (1 = linear).
        clamp: Clamp after the gain to ``[-clamp, clamp]``; None = no clamp.
        flip_filter: Correlate with ``fu``/``fd`` instead of convolving.
        impl: 'auto', 'ref', 'fast', 'cpp' or 'triton'.

    Returns:
        Tensor [N, C, out_h, out_w] with the dtype and device of ``x``.

    Raises:
        ValueError: Bad shapes, factors, padding, impl, an empty output, or ``impl='cpp'``/``'triton'`` outside
            its domain.
        TypeError: Non-floating ``x``.
        torch_utils.custom_ops.PluginBuildError: ``impl='cpp'`` and the kernel cannot be built.
        ImportError: ``impl='triton'`` without the triton package.
    """
    _op_utils.check_x(x, 'filtered_lrelu')
    for name, v in (('up', up), ('down', down)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f'filtered_lrelu(): {name} must be an int >= 1, got {v!r}')
    px0, px1, py0, py1 = _op_utils.parse_padding(padding, 'filtered_lrelu')
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (x.shape[1],)):
        raise ValueError(f'filtered_lrelu(): b must be None or a tensor [C={x.shape[1]}], got {_op_utils.describe(b)}')
    fu_w, fu_h = _op_utils.get_filter_size(fu, 'filtered_lrelu')
    fd_w, fd_h = _op_utils.get_filter_size(fd, 'filtered_lrelu')
    mid_w = x.shape[3] * up + px0 + px1 - fu_w + 1
    mid_h = x.shape[2] * up + py0 + py1 - fu_h + 1
    if min(mid_w - fd_w, mid_h - fd_h) < 0:
        raise ValueError(
            f'filtered_lrelu(): output would be empty for input {list(x.shape)}, filters {fu_h}x{fu_w} / '
            f'{fd_h}x{fd_w}, up {up}, down {down}, padding {[px0, px1, py0, py1]}; increase the padding'
        )
    clamp = None if clamp is None else float(clamp)
    args = (x, fu, fd, b, int(up), int(down), (px0, px1, py0, py1), float(gain), float(slope), clamp, bool(flip_filter))
    chosen, picked_by_auto = _select_impl(impl, x, fu, fd, b)
    if chosen == 'triton':
        kernels = _triton_support.loaded()
        if not picked_by_auto:
            return kernels.FilteredLrelu.apply(*args)
        return _triton_support.run_auto(
            'filtered_lrelu', lambda: kernels.FilteredLrelu.apply(*args), lambda: _filtered_lrelu_ref(*args)
        )
    if chosen == 'cpp':
        module = _cpu_kernels.plugin(raise_errors=True)  # loaded: _select_impl checked it
        assert module is not None
        return _cpu_kernels.filtered_lrelu_cpp(module, *args)
    if chosen == 'ref':
        return _filtered_lrelu_ref(*args)
    if picked_by_auto:
        return _op_utils.run_with_fallback(
            'filtered_lrelu', x, lambda: _filtered_lrelu_fast(*args), lambda: _filtered_lrelu_ref(*args)
        )
    return _filtered_lrelu_fast(*args)


def _select_impl(
    impl: str, x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None
) -> tuple[str, bool]:
    """The one place that decides which implementation of :func:`filtered_lrelu` runs.

    Order for ``'auto'`` (after a scoped ``ops.default_impl``, which replaces ``'auto'``): the fused CPU kernel
    when the arguments are in its domain and it is loaded (its build is started in the background otherwise);
    Triton for CUDA tensors when it imports and the kernel has not failed; then ``'fast'`` on CPU/MPS, ``'ref'``
    elsewhere. An explicit ``'triton'`` raises when it cannot run. An explicit ``'cpp'`` blocks on the build and raises when it
    cannot run; a scoped ``'cpp'`` falls back to ``'fast'``.

    Returns:
        (name, picked_by_auto): name is 'cpp', 'triton', 'fast' or 'ref'; picked_by_auto is True when the caller did not
        name the implementation (a failing MPS 'fast' then falls back to 'ref').

    Raises:
        ValueError: Unknown ``impl``, or an explicit ``'cpp'``/``'triton'`` outside the kernel's domain.
        torch_utils.custom_ops.PluginBuildError: Explicit ``'cpp'`` and the kernel cannot be built.
        ImportError: Explicit ``'triton'`` without the triton package.
    """
    if impl not in _IMPLS:
        raise ValueError(
            f'filtered_lrelu(): impl must be one of {list(_IMPLS)}, got {impl!r}; '
            "'auto' picks the fastest available path"
        )
    explicit = impl
    if impl == 'triton':
        _triton_support.check_explicit('filtered_lrelu', x, fu, fd)
        return 'triton', False
    if impl == 'auto':
        impl = _impl_context.current()  # ops.default_impl(...) block, if any ('auto' otherwise)
    if impl in ('cpp', 'auto'):
        if _cpu_kernels.supported(x, fu, fd, b):
            # None while it builds in the background (non-explicit) or when it cannot be built.
            if _cpu_kernels.plugin(raise_errors=explicit == 'cpp', block=explicit == 'cpp') is not None:
                return 'cpp', explicit == 'auto'
        elif explicit == 'cpp':
            raise ValueError(
                "filtered_lrelu(): impl='cpp' needs float32 CPU tensors without autograd (outside torch.compile), "
                "a 1-D fu and a 1-D or square 2-D fd; use impl='fast' or 'auto'"
            )
        if impl == 'cpp':
            impl = 'fast'
    if impl in ('auto', 'triton') and _triton_support.auto_applies('filtered_lrelu', x, fu, fd):
        return 'triton', explicit == 'auto'
    if impl in ('auto', 'triton'):
        return ('fast' if x.device.type in ('cpu', 'mps') else 'ref'), explicit == 'auto'
    return impl, explicit == 'auto'


def _filtered_lrelu_ref(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
) -> torch.Tensor:
    """Plain-PyTorch specification of :func:`filtered_lrelu` (arguments already parsed)."""
    x = bias_act.bias_act(x, b, impl='ref')
    x = upfirdn2d.upfirdn2d(x, fu, up=up, padding=padding, flip_filter=flip_filter, gain=up**2, impl='ref')
    x = bias_act.bias_act(x, act='lrelu', alpha=slope, gain=gain, clamp=clamp, impl='ref')
    x = upfirdn2d.upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl='ref')
    return x


def _filtered_lrelu_fast(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
) -> torch.Tensor:
    """Polyphase :func:`filtered_lrelu`; matches ``_filtered_lrelu_ref`` to float rounding."""
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = _fast_resample.upfirdn2d_fast(x, fu, (up, up), (1, 1), padding, flip_filter, float(up * up))
    in_place = not (torch.is_grad_enabled() and x.requires_grad)
    if in_place and slope > 0:
        x = F.leaky_relu_(x, slope) if slope != 1 else x
        if gain != 1:
            x.mul_(gain)
        if clamp is not None and clamp >= 0:
            x.clamp_(-clamp, clamp)
    else:
        x = bias_act._bias_act_ref(x, act='lrelu', alpha=slope, gain=gain, clamp=clamp)
    x = _fast_resample.upfirdn2d_fast(x, fd, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1.0)
    return x
