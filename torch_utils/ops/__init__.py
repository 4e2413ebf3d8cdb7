"""Custom ops of the StyleGAN family with the reference module and function names (REFERENCE.md section 2).

Submodules: ``bias_act``, ``upfirdn2d``, ``filtered_lrelu``, ``conv2d_gradfix``, ``conv2d_resample``, ``fma``,
``grid_sample_gradfix``. Each op takes ``impl='auto'|'ref'|...``; ``'ref'`` is plain PyTorch and the specification.
Nothing is imported or built at package import time.
"""

from __future__ import annotations

import torch

__all__ = ['impl_report']


def impl_report(device: torch.device | str, dtype: torch.dtype = torch.float32) -> dict[str, str]:
    """Names the implementation ``impl='auto'`` runs for each op on ``device`` (for the renderer/visualizer).

    Args:
        device: A torch device or its name ('cpu', 'cuda', 'cuda:0', 'mps').
        dtype: Floating dtype of the activations (all current paths support every floating dtype).

    Returns:
        {'bias_act': 'ref', 'upfirdn2d': 'fast'|'ref', 'filtered_lrelu': 'fast'|'ref',
        'conv2d_resample': 'auto/fast'|'auto/ref' (its own path / the upfirdn2d path inside),
        'conv2d_gradfix': 'torch', 'fma': 'torch', 'grid_sample_gradfix': 'native'}.

    Raises:
        ValueError: ``device`` is not a valid device name or ``dtype`` is not floating point.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"impl_report(): device must be a torch device or name like 'cpu', got {device!r}") from e
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f'impl_report(): dtype must be a floating torch dtype, got {dtype!r}')
    resample = 'fast' if dev.type in ('cpu', 'mps') else 'ref'
    return {
        'bias_act': 'ref',
        'upfirdn2d': resample,
        'filtered_lrelu': resample,
        'conv2d_resample': f'auto/{resample}',
        'conv2d_gradfix': 'torch',
        'fma': 'torch',
        'grid_sample_gradfix': 'native',
    }
