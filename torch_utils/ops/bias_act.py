"""Fused bias + activation + gain + clamp (``bias_act``), with the names and keywords pickles call (docs/ops.md).

Order of operations (StyleGAN2, arXiv 1912.04958, App. B; the clamp is the fp16 "conv_clamp" of StyleGAN2-ADA,
arXiv 2006.06676, App. D): ``x + b`` (broadcast along ``dim``), activation, times ``gain``, clamp to
``[-clamp, clamp]``.

Implementations: ``'ref'`` (plain PyTorch, the specification; what ``'auto'`` runs on CPU and MPS, where the op is
cheap next to the convolutions) and ``'triton'`` (one fused elementwise Triton kernel, ``_triton_kernels.py``; CUDA
float16/bfloat16/float32, CPU tensors under ``TRITON_INTERPRET=1``; Triton first-order gradient for linear/relu/
lrelu, the specification's autograd gradient otherwise and for higher orders). ``'auto'`` picks ``'triton'`` for
CUDA tensors when Triton imports and the kernel compiled, else ``'ref'`` (warning once).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import _impl_context, _triton_support

__all__ = ['bias_act', 'activation_funcs', 'ActivationSpec']

_IMPLS = ('auto', 'ref', 'triton')


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    """One activation: ``func(x, alpha)`` and its defaults. Readable as attributes or items (``spec['def_gain']``),
    like the reference's EasyDict entries that embedded network sources read (``.def_gain``, ``.def_alpha``)."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_idx: int
    ref: str
    has_2nd_grad: bool

    def __getitem__(self, key: str) -> object:
        return getattr(self, key)

    def get(self, key: str, default: object = None) -> object:
        return getattr(self, key, default)


_SQRT2 = math.sqrt(2)

activation_funcs: dict[str, ActivationSpec] = {
    'linear': ActivationSpec(lambda x, alpha: x, 0, 1, 1, '', False),
    'relu': ActivationSpec(lambda x, alpha: F.relu(x), 0, _SQRT2, 2, 'y', False),
    'lrelu': ActivationSpec(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, _SQRT2, 3, 'y', False),
    'tanh': ActivationSpec(lambda x, alpha: torch.tanh(x), 0, 1, 4, 'y', True),
    'sigmoid': ActivationSpec(lambda x, alpha: torch.sigmoid(x), 0, 1, 5, 'y', True),
    'elu': ActivationSpec(lambda x, alpha: F.elu(x), 0, 1, 6, 'y', True),
    'selu': ActivationSpec(lambda x, alpha: F.selu(x), 0, 1, 7, 'y', True),
    'softplus': ActivationSpec(lambda x, alpha: F.softplus(x), 0, 1, 8, 'x', True),
    'swish': ActivationSpec(lambda x, alpha: torch.sigmoid(x) * x, 0, _SQRT2, 9, 'x', True),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = 'linear',
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = 'auto',
) -> torch.Tensor:
    """Adds a bias, applies an activation, scales by ``gain`` and clamps.

    Args:
        x: Input tensor of any shape, floating dtype, any device and layout.
        b: Bias [x.shape[dim]] with the dtype/device of ``x``, or None.
        dim: Dimension of ``x`` that ``b`` runs along.
        act: One of ``activation_funcs``: linear relu lrelu tanh sigmoid elu selu softplus swish.
        alpha: Activation parameter (lrelu slope); None = the activation's ``def_alpha`` (0.2 for lrelu).
        gain: Output scale; None = the activation's ``def_gain`` (sqrt(2) for relu/lrelu/swish, else 1).
        clamp: Clamp the output to ``[-clamp, clamp]``; None (or a negative value) = no clamp.
        impl: 'auto', 'ref' or 'triton'.

    Returns:
        Tensor with the shape, dtype and device of ``x``.

    Raises:
        ValueError: Unknown ``act`` or ``impl``, ``b`` of the wrong shape, ``impl='triton'`` outside its domain.
        TypeError: Non-floating ``x``.
        ImportError: ``impl='triton'`` without the triton package.
    """
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(
            f'bias_act(): x must be a floating-point tensor, got {type(x).__name__} {getattr(x, "dtype", "")}'
        )
    if act not in activation_funcs:
        raise ValueError(f'bias_act(): act must be one of {sorted(activation_funcs)}, got {act!r}')
    if impl not in _IMPLS:
        raise ValueError(
            f'bias_act(): impl must be one of {list(_IMPLS)}, got {impl!r} (no compiled kernels are built)'
        )
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or not (-x.ndim <= dim < x.ndim):
            raise ValueError(f'bias_act(): b must be a 1-D tensor and dim a valid axis of x, got b={b!r}, dim={dim}')
        if b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act(): b must have x.shape[dim] = {x.shape[dim]} entries, got {b.shape[0]}')
    if impl == 'triton' or (impl == 'auto' and _impl_context.current() in ('auto', 'triton')):
        if impl == 'triton':
            kernels = _triton_support.check_explicit('bias_act', x)
        elif not _triton_support.auto_applies('bias_act', x):
            return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)
        else:
            kernels = _triton_support.loaded()
        spec = activation_funcs[act]
        args = (
            x,
            b,
            dim % x.ndim,
            act,
            float(alpha if alpha is not None else spec.def_alpha),
            float(gain if gain is not None else spec.def_gain),
            float(clamp if clamp is not None else -1),
        )
        if impl == 'triton':
            return kernels.BiasAct.apply(*args)
        return _triton_support.run_auto(
            'bias_act', lambda: kernels.BiasAct.apply(*args), lambda: _bias_act_ref(x, b, dim, act, alpha, gain, clamp)
        )
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def _bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = 'linear',
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Plain-PyTorch specification of :func:`bias_act`."""
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    if b is not None:
        dim = dim % x.ndim
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
