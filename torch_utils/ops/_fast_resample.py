"""Fast upfirdn2d in plain PyTorch (the ``impl='fast'`` path; private).

Per axis, upfirdn computes ``y[j] = sum_k g[k] * z[down*j + k]`` where ``z`` is the input with ``up - 1`` zeros
inserted after every sample, padded by ``pad0`` in front, and ``g`` the correlation taps (the flipped filter for a
true convolution). The reference evaluates this literally: it materialises the zero-stuffed image, filters every
sample of it and throws away all but every ``down``-th output. Here:

* upsampling (``up > 1``) is one strided *transposed* depthwise convolution, ``out[up*i + k] += x[i] * flip(g)[k]``,
  which never touches the inserted zeros (each output phase only gathers the taps that meet real samples: the
  polyphase decomposition, Vaidyanathan, "Multirate Systems and Filter Banks", ch. 4); then
  ``y[n] = out[n + K - 1 - pad0]`` (a crop, or zero padding where the padding exceeds the filter support);
* downsampling (``up == 1``) is a strided depthwise convolution, which computes only the kept samples;
* separable (1-D) filters run as two 1-D passes ([1, K] then [K, 1] kernels), the shrinking pass first.

Only ``F.conv2d`` / ``F.conv_transpose2d`` / ``F.pad`` with ``groups=C`` are used (CPU, MPS and CUDA alike), so
autograd provides gradients of every order for ``x`` and ``f``. The multiplier-1 depthwise kernels are the fast ones
on CPU backends; the interleaving of phases is left to the transposed convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pad_axis(x: torch.Tensor, axis: int, left: int, right: int) -> torch.Tensor:
    """Pads (positive) or crops (negative) one spatial axis of [N, C, H, W]; pure crops are views."""
    if left <= 0 and right <= 0:
        return x.narrow(axis, -left, x.shape[axis] + left + right)
    return F.pad(x, [left, right, 0, 0] if axis == 3 else [0, 0, left, right])


def _depthwise_weight(taps: torch.Tensor, channels: int, axis: int | None) -> torch.Tensor:
    """[K] (axis 3: along W, axis 2: along H) or [fh, fw] (axis None) -> contiguous weight [C, 1, kh, kw]."""
    if axis == 3:
        taps = taps[None, :]
    elif axis == 2:
        taps = taps[:, None]
    return taps[None, None].expand(channels, 1, *taps.shape).contiguous()


def _resample(
    x: torch.Tensor,
    g: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    pad0: tuple[int, int],
    out_size: tuple[int, int],
) -> torch.Tensor:
    """One pass with 2-D correlation taps ``g`` [kh, kw]; ``up``, ``down``, ``pad0`` are (x, y), ``out_size`` (h, w)."""
    (upx, upy), (downx, downy), (px0, py0), (out_h, out_w) = up, down, pad0, out_size
    C, (kh, kw) = x.shape[1], g.shape
    if upx == 1 and upy == 1:
        # y[j] = sum_k g[k] * x_padded[down*j + k]: strided correlation over the kept samples only.
        x = _pad_axis(x, 3, px0, downx * (out_w - 1) + kw - x.shape[3] - px0)
        x = _pad_axis(x, 2, py0, downy * (out_h - 1) + kh - x.shape[2] - py0)
        return F.conv2d(x, _depthwise_weight(g, C, None), stride=(downy, downx), groups=C)
    # Zero insertion + true convolution in one op, then y[n] = out[n + K - 1 - pad0] (zeros outside).
    out = F.conv_transpose2d(x, _depthwise_weight(g.flip([0, 1]), C, None), stride=(upy, upx), groups=C)
    sx, sy = kw - 1 - px0, kh - 1 - py0
    out = _pad_axis(out, 3, -sx, sx + downx * (out_w - 1) + 1 - out.shape[3])
    out = _pad_axis(out, 2, -sy, sy + downy * (out_h - 1) + 1 - out.shape[2])
    if downx > 1 or downy > 1:
        out = out[:, :, ::downy, ::downx]
    return out


def upfirdn2d_fast(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Same contract as ``upfirdn2d._upfirdn2d_ref`` (arguments already parsed and validated)."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    H, W = x.shape[2], x.shape[3]
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    g = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        g = g.flip(list(range(g.ndim)))  # correlation taps
    fw, fh = g.shape[-1], g.shape[0]
    out_w = (W * upx + px0 + px1 - fw) // downx + 1
    out_h = (H * upy + py0 + py1 - fh) // downy + 1
    if g.ndim == 2:
        return _resample(x, g, up, down, (px0, py0), (out_h, out_w))
    # Separable: along W ([1, K] taps) and along H ([K, 1] taps); the pass that shrinks the image first.
    if upx * downy > upy * downx:
        x = _resample(x, g[:, None], (1, upy), (1, downy), (0, py0), (out_h, W))
        return _resample(x, g[None, :], (upx, 1), (downx, 1), (px0, 0), (out_h, out_w))
    x = _resample(x, g[None, :], (upx, 1), (downx, 1), (px0, 0), (H, out_w))
    return _resample(x, g[:, None], (1, upy), (1, downy), (0, py0), (out_h, out_w))
