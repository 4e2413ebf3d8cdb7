"""Helpers shared by the ops (private): argument parsing, error text, and the choice of implementation.

Every op module (``upfirdn2d``, ``filtered_lrelu``, ``conv2d_resample``, ``bias_act``) imports these from here
instead of from each other's privates. The implementation names are documented in ``docs/ops.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from . import _impl_context

_log = logging.getLogger(__name__)
_warned_fallbacks: set[tuple[str, str]] = set()  # (func, device type) already logged; affects logging only


def describe(v: object) -> str:
    """Short description of an argument for error messages (shape and dtype of tensors, repr otherwise)."""
    if isinstance(v, torch.Tensor):
        return f'tensor of shape {list(v.shape)} and dtype {v.dtype}'
    return repr(v)


def parse_scaling(scaling: int | Sequence[int], name: str = 'up', func: str = 'upfirdn2d') -> tuple[int, int]:
    """int or [sx, sy] -> (sx, sy), each an int >= 1.

    Raises:
        ValueError: Not an int or pair of ints >= 1.
    """
    if isinstance(scaling, (int, np.integer)):
        scaling = [int(scaling), int(scaling)]
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2:
        raise ValueError(f'{func}(): {name} must be an int or a pair [x, y], got {scaling!r}')
    sx, sy = scaling
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (sx, sy)):
        raise ValueError(f'{func}(): {name} must be integers >= 1, got {scaling!r}')
    return int(sx), int(sy)


def parse_padding(padding: int | Sequence[int], func: str = 'upfirdn2d') -> tuple[int, int, int, int]:
    """int, [px, py] or [px0, px1, py0, py1] -> (px0, px1, py0, py1); negative values crop.

    Raises:
        ValueError: Any other form, or non-integer entries.
    """
    if isinstance(padding, (int, np.integer)):
        padding = [int(padding), int(padding)]
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4):
        raise ValueError(f'{func}(): padding must be an int, [px, py] or [px0, px1, py0, py1], got {padding!r}')
    if not all(isinstance(p, (int, np.integer)) for p in padding):
        raise ValueError(f'{func}(): padding must contain integers, got {padding!r}')
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    px0, px1, py0, py1 = (int(p) for p in padding)
    return px0, px1, py0, py1


def get_filter_size(f: torch.Tensor | None, func: str = 'upfirdn2d') -> tuple[int, int]:
    """(fw, fh) of a 1-D (separable) or 2-D [fh, fw] filter; (1, 1) for None.

    Raises:
        ValueError: ``f`` is neither None nor a 1-D/2-D tensor.
    """
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f'{func}(): f must be None or a 1-D/2-D tensor from setup_filter(), got {describe(f)}')
    return int(f.shape[-1]), int(f.shape[0])


def check_x(x: torch.Tensor, func: str) -> None:
    """Checks that ``x`` is a floating-point [N, C, H, W] tensor.

    Raises:
        ValueError: Not a 4-D tensor.
        TypeError: Not floating point.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'{func}(): x must be a 4-D tensor [N, C, H, W], got {describe(x)}')
    if not x.dtype.is_floating_point:
        raise TypeError(f'{func}(): x must have a floating-point dtype, got {x.dtype}; cast it with x.float()')


def resolve_resample_impl(impl: str, x: torch.Tensor, func: str, impls: Sequence[str], fast_ok: bool = True) -> str:
    """Maps ``impl`` to 'ref' or 'fast' for the plain-PyTorch resampling paths.

    'auto' (or a scoped ``ops.default_impl``) becomes 'fast' for CPU/MPS tensors (when ``fast_ok``) and 'ref'
    otherwise; a scoped implementation the caller cannot run here ('cpp', 'triton') counts as 'auto'.

    Raises:
        ValueError: ``impl`` not in ``impls``, or an explicit 'fast' with ``fast_ok=False``.
    """
    if impl not in impls:
        raise ValueError(f"{func}(): impl must be one of {list(impls)}, got {impl!r}; 'auto' picks the fastest path")
    if impl == 'auto':
        scoped = _impl_context.current()  # ops.default_impl(...) block, if any
        if scoped == 'ref' or (scoped == 'fast' and not fast_ok):
            return 'ref'
        if scoped == 'fast':
            return 'fast'
        return 'fast' if (fast_ok and x.device.type in ('cpu', 'mps')) else 'ref'
    if impl == 'fast' and not fast_ok:
        raise ValueError(f"{func}(): impl='fast' cannot run these arguments; use impl='ref' or 'auto'")
    return impl


def run_with_fallback(func: str, x: torch.Tensor, fast: Callable[[], torch.Tensor], ref: Callable[[], torch.Tensor]):
    """Runs the fast path that impl='auto' picked; on MPS a backend without some conv variant (RuntimeError /
    NotImplementedError) falls back to the reference path, logging the reason once per op and device type."""
    if x.device.type != 'mps':
        return fast()
    try:
        return fast()
    except (RuntimeError, NotImplementedError) as e:
        warn_once(func, x.device.type, "%s(): impl='fast' failed on %s (%s); using impl='ref'", func, x.device.type, e)
        return ref()


def warn_once(func: str, key: str, msg: str, *args: object) -> None:
    """Logs a warning once per (func, key) and process."""
    if (func, key) not in _warned_fallbacks:
        _warned_fallbacks.add((func, key))
        _log.warning(msg, *args)
