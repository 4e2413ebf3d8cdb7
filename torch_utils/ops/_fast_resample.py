"""Fast upfirdn2d in plain PyTorch (the ``impl='fast'`` path; private).

Per axis, upfirdn computes ``y[j] = sum_k g[k] * z[down*j + k]`` where ``z`` is the input with ``up - 1`` zeros
inserted after every sample, padded by ``pad0`` in front, and ``g`` the correlation taps (the flipped filter for a
true convolution). The reference evaluates this literally: it materialises the zero-stuffed image, filters every
sample of it and throws away all but every ``down``-th output. Here nothing is zero-stuffed:

* upsampling rows (H): polyphase decomposition (Vaidyanathan, "Multirate Systems and Filter Banks", ch. 4): output
  row ``up*q + r`` only meets the taps ``k = k0(r) + up*t``, so each of the ``up`` phases is a short correlation
  of the input, and the phases are interleaved by stacking whole rows;
* upsampling columns (W): a strided *transposed* depthwise convolution, ``out[up*i + k] += x[i] * flip(g)[k]``,
  which interleaves the column phases itself; then ``y[n] = out[n + K - 1 - pad0]`` (crop, or zeros where the
  padding exceeds the filter support);
* downsampling (``up == 1``): a strided depthwise convolution computes only the kept samples;
* separable (1-D) filters run as two 1-D passes ([1, K] and [K, 1] kernels), the shrinking pass first; 2-D
  (radial) filters run the row phases with a [E, kw] transposed convolution each.

Only multiplier-1 depthwise ``F.conv2d`` / ``F.conv_transpose2d`` (the fast kernels on CPU backends) plus
``F.pad`` / ``torch.stack`` are used, on any device, so autograd provides gradients of every order for ``x`` and
``f``. Rare mixes (up and down on the same axis) use the generic transposed-convolution path.
"""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=1024)
def _plan_rows(taps: int, up: int, pad0: int, in_len: int, out_len: int):
    """Polyphase plan for upsampling one axis by ``up`` (no downsampling).

    Output ``n = up*q + r`` uses the taps ``k = k0(r) + up*t`` on the inputs ``q + c(r) + t``. All phases are
    aligned to a common window of ``extent`` inputs starting at ``q + c_min``.

    Returns:
        (table, per_phase, pad_left, pad_right): ``table[r][s]`` is the tap applied to padded input ``q + s`` for
        output ``up*q + r`` (-1 = none); padding the input by ``pad_left``/``pad_right`` (negative = crop) makes a
        "valid" correlation produce ``per_phase`` outputs per phase.
    """
    firsts, offsets, counts = [], [], []
    for r in range(up):
        k0 = (pad0 - r) % up
        firsts.append(k0)
        offsets.append((r + k0 - pad0) // up)  # exact division
        counts.append(max(0, -(-(taps - k0) // up)))
    c_min = min((c for c, n in zip(offsets, counts) if n > 0), default=0)
    extent = max((c + n for c, n in zip(offsets, counts) if n > 0), default=1) - c_min
    table = []
    for k0, c, n in zip(firsts, offsets, counts):
        row = [-1] * extent
        for t in range(n):
            row[c - c_min + t] = k0 + up * t
        table.append(tuple(row))
    per_phase = -(-out_len // up)
    return tuple(table), per_phase, -c_min, per_phase - 1 + c_min + extent - in_len


@functools.lru_cache(maxsize=1024)
def _phase_index(table: tuple[tuple[int, ...], ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``table`` of :func:`_plan_rows` as (tap index clamped to >= 0, tap present) [P, E] tensors on ``device``;
    cached so per-frame calls skip the host-to-device copy. Built outside inference mode so the cached tensors
    may be saved for backward by later autograd calls. Read-only."""
    with torch.inference_mode(False):
        idx = torch.tensor(table, dtype=torch.long, device=device)
        return idx.clamp(min=0), idx >= 0


def _upsample_rows(
    x: torch.Tensor, g: torch.Tensor, up: tuple[int, int], pad0: tuple[int, int], out_size: tuple[int, int]
) -> torch.Tensor:
    """Upsampling without downsampling, rows by polyphase: one correlation per output row phase (multiplier-1
    depthwise kernels, the fast ones), phases interleaved by stacking whole rows; columns (if ``up[0] > 1``) by a
    strided transposed convolution inside each phase. ``g``: correlation taps [kh, kw]."""
    (upx, upy), (px0, py0), (out_h, out_w) = up, pad0, out_size
    C, (kh, kw) = x.shape[1], g.shape
    table, _, left, right = _plan_rows(kh, upy, py0, x.shape[2], out_h)
    x = _pad_axis(x, 2, left, right)
    idx, valid = _phase_index(table, g.device)
    taps = g[idx] * valid.to(g.dtype)[:, :, None]  # [P, E, kw]
    phases = []
    for phase_taps in taps:
        if upx == 1:
            y = _pad_axis(x, 3, px0, out_w + kw - 1 - x.shape[3] - px0)
            phases.append(F.conv2d(y, _depthwise_weight(phase_taps, C, None), groups=C))
        else:  # rows: valid correlation (= transposed conv of the flipped taps, cropped by E - 1); columns: as below
            w = _depthwise_weight(phase_taps.flip([0, 1]), C, None)
            y = F.conv_transpose2d(x, w, stride=(1, upx), padding=(w.shape[2] - 1, 0), groups=C)
            sx = kw - 1 - px0
            phases.append(_pad_axis(y, 3, -sx, sx + out_w - y.shape[3]))
    y = torch.stack(phases, 3)  # [N, C, Q, P, W]
    return y.flatten(2, 3)[:, :, :out_h]


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
        if upy > 1 and downx == 1 and downy == 1:
            return _upsample_rows(x, g, up, (px0, py0), (out_h, out_w))
        return _resample(x, g, up, down, (px0, py0), (out_h, out_w))

    # Separable: along W ([1, K] taps: transposed conv) and along H ([K, 1] taps: row polyphase), shrinking first.
    def pass_w(x: torch.Tensor, rows: int) -> torch.Tensor:
        return _resample(x, g[None, :], (upx, 1), (downx, 1), (px0, 0), (rows, out_w))

    def pass_h(x: torch.Tensor, cols: int) -> torch.Tensor:
        if upy > 1 and downy == 1:
            return _upsample_rows(x, g[:, None], (1, upy), (0, py0), (out_h, cols))
        return _resample(x, g[:, None], (1, upy), (1, downy), (0, py0), (out_h, cols))

    if upx * downy > upy * downx:
        return pass_w(pass_h(x, W), out_h)
    return pass_h(pass_w(x, H), out_w)
