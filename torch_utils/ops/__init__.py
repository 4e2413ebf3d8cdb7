"""Custom ops of the StyleGAN family with the module and function names network pickles call (docs/ops.md).

Submodules: ``bias_act``, ``upfirdn2d``, ``filtered_lrelu``, ``conv2d_gradfix``, ``conv2d_resample``, ``fma``,
``grid_sample_gradfix``. Each op takes ``impl='auto'|'ref'|...``; ``'ref'`` is plain PyTorch and the specification.
Nothing is imported or built at package import time (the fused CPU kernel of ``filtered_lrelu`` is compiled on its
first use, see ``_cpu_kernels.py``).

``with ops.default_impl('ref'): ...`` makes every ``impl='auto'`` call inside the block (this thread / task only)
run the given implementation where the op has it -- e.g. to time a whole network with the reference ops.
"""

from __future__ import annotations

import torch

from ._impl_context import current as current_default_impl
from ._impl_context import default_impl

__all__ = ['impl_report', 'impl_generation', 'default_impl', 'current_default_impl']


def impl_generation() -> int:
    """A number that changes whenever :func:`impl_report` may have changed because an automatic choice fell back
    (Triton failed to import, or an op's Triton kernel failed to compile): callers that cache the report (the
    renderer) key the cache on it. Cheap; imports nothing."""
    from . import _triton_support

    return _triton_support.generation()


def impl_report(device: torch.device | str, dtype: torch.dtype = torch.float32) -> dict[str, str]:
    """Names the implementation ``impl='auto'`` runs for each op on ``device`` (for the renderer/visualizer).

    Args:
        device: A torch device or its name ('cpu', 'cuda', 'cuda:0', 'mps').
        dtype: Floating dtype of the activations (all current paths support every floating dtype).

    Returns:
        {'bias_act': 'ref', 'upfirdn2d': 'fast'|'ref', 'filtered_lrelu': 'cpp'|'fast'|'ref',
        'conv2d_resample': 'auto/fast'|'auto/ref' (its own path / the upfirdn2d path inside),
        'conv2d_gradfix': 'torch', 'fma': 'torch', 'grid_sample_gradfix': 'native'}; on CUDA 'triton' for
        bias_act/upfirdn2d/filtered_lrelu when Triton is installed and the op's kernel has not failed (float16,
        bfloat16, float32). 'cpp' (the fused CPU
        kernel for float32 inference; gradients use 'fast') is reported when the kernel is built or buildable: a
        compiler and ninja are present and no build has failed (the build itself waits for the first call).
        Inside ``default_impl(...)`` the scoped choice is reported.

    Raises:
        ValueError: ``device`` is not a valid device name or ``dtype`` is not floating point.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"impl_report(): device must be a torch device or name like 'cpu', got {device!r}") from e
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f'impl_report(): dtype must be a floating torch dtype, got {dtype!r}')
    scoped = current_default_impl()
    resample = 'fast' if dev.type in ('cpu', 'mps') else 'ref'
    if scoped in ('ref', 'fast'):
        resample = scoped
    flrelu = resample
    if dev.type == 'cpu' and dtype == torch.float32 and scoped in ('auto', 'cpp'):
        from . import _cpu_kernels

        flrelu = 'cpp' if _cpu_kernels.available() else 'fast'
    bias = 'ref'
    if dev.type == 'cuda' and scoped in ('auto', 'triton'):
        from . import _triton_support

        if dtype in _triton_support.DTYPES:
            bias, resample, flrelu = (
                'triton' if _triton_support.report(op) else 'ref' for op in ('bias_act', 'upfirdn2d', 'filtered_lrelu')
            )
    return {
        'bias_act': bias,
        'upfirdn2d': resample,
        'filtered_lrelu': flrelu,
        'conv2d_resample': f'auto/{resample}',
        'conv2d_gradfix': 'torch',
        'fma': 'torch',
        'grid_sample_gradfix': 'native',
    }
