"""Triton kernels of ``upfirdn2d``, ``filtered_lrelu`` and ``bias_act`` (the ``impl='triton'`` path; private).

Imported only through ``_triton_support.kernels()`` -- never at package import -- because importing this module
imports Triton. Triton compiles each kernel on its first launch with its own bundled compiler (no C++ toolchain,
no build step); with ``TRITON_INTERPRET=1`` set while this module is first imported, the same kernels run on CPU
tensors in Triton's interpreter (how the test suite checks them without a GPU). The kernels call only Triton
builtins, never Triton's own ``@jit`` library functions (``tl.cdiv``, ``tl.zeros``), which are bound to the mode
Triton was imported in.

One resampling kernel does all the FIR work. Per axis it evaluates the polyphase form of upfirdn
(Vaidyanathan, "Multirate Systems and Filter Banks", ch. 4)::

    y[o] = sum_k g[k] * z[o * down + k],   z[u] = x[(u - pad0) / up] when up divides (u - pad0), else 0

where ``g`` are the correlation taps (the flipped filter for a true convolution). Only the taps
``k = k0(o) + up * t`` meet a non-zero sample, so each output reads ``ceil(K / up)`` taps per axis and nothing is
zero-stuffed. Optional stages fused into the same pass: a per-channel bias added to every input sample that is
read (before the zero padding, as in the specification), and an epilogue on the accumulated value: the leaky
ReLU with gain and clamp of Alias-Free GAN (arXiv 2106.12423, Sec. 3.2), or the gradient of that activation times
an incoming gradient (for the backward pass). Accumulation is float32 whatever the storage dtype.

``filtered_lrelu`` = one pass "bias + up-FIR (2-D polyphase, separable taps as an outer product) + activation"
into the intermediate at the up-sampled rate, then the down-FIR pass(es). Its backward pass is the transposed
chain: down-FIR transposed (another upfirdn2d), times the activation's derivative (recomputed, fused), up-FIR
transposed.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

INTERPRETED = bool(triton.knobs.runtime.interpret)  # decided when this module was imported (see the docstring)

# Epilogue codes of _resample_kernel.
EPI_NONE, EPI_LRELU, EPI_LRELU_GRAD = 0, 1, 2
# Activation codes of _bias_act_kernel (same order as bias_act.activation_funcs).
ACT_CODES = {
    'linear': 0,
    'relu': 1,
    'lrelu': 2,
    'tanh': 3,
    'sigmoid': 4,
    'elu': 5,
    'selu': 6,
    'softplus': 7,
    'swish': 8,
}
_BLOCK_H, _BLOCK_W = 16, 32  # output tile of one program on a GPU
# Sizes and strides change with every layer; Triton would compile one variant per pattern of "== 1" and
# "divisible by 16" among them. Only the factors, paddings and tap counts (few distinct values) stay specialised.
_SIZE_ARGS = ['C', 'H', 'W', 'OH', 'OW', 'tiles_w', 'sxn', 'sxc', 'sxh', 'sxw']


def _tile(out_h: int, out_w: int) -> tuple[int, int]:
    """Output tile per program: fixed on a GPU; in the interpreter the whole (small) plane, since its cost is per
    program and per operation, not per element."""
    if not INTERPRETED:
        return _BLOCK_H, _BLOCK_W
    return min(triton.next_power_of_2(out_h), 64), min(triton.next_power_of_2(out_w), 64)


def _elementwise_block(numel: int) -> int:
    """Elements per program of the elementwise kernel (the whole small tensor in the interpreter)."""
    return min(triton.next_power_of_2(numel), 1 << 14) if INTERPRETED else 1024


@triton.jit(do_not_specialize=_SIZE_ARGS)
def _resample_kernel(
    x_ptr,  # input [N, C, H, W], any strides
    gy_ptr,  # separable: taps along H [KH]; else 2-D taps [KH, KW] (float32, correlation order)
    gx_ptr,  # separable: taps along W [KW]; else unused
    b_ptr,  # bias [C] or unused
    aux_ptr,  # EPI_LRELU_GRAD: incoming gradient, contiguous [N, C, OH, OW]
    y_ptr,  # output, contiguous [N, C, OH, OW]
    C,
    H,
    W,
    OH,
    OW,
    tiles_w,  # ceil(OW / BLOCK_W)
    sxn,
    sxc,
    sxh,
    sxw,
    UPX,
    UPY,
    DOWNX,
    DOWNY,
    PX0,
    PY0,
    KH,
    KW,
    gain,
    slope,
    clamp,
    TAPS_Y: tl.constexpr,  # ceil(KH / UPY)
    TAPS_X: tl.constexpr,  # ceil(KW / UPX)
    SEPARABLE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    EPILOGUE: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
    WIDE: tl.constexpr,  # int64 index maths (the interpreter checks every int32 operation for overflow: slow)
):
    plane = tl.program_id(0).to(tl.int64)  # n * C + c
    tile = tl.program_id(1)
    oy = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    ox = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    if WIDE:
        oy = oy.to(tl.int64)
        ox = ox.to(tl.int64)
    n = plane // C
    c = plane % C
    x_base = x_ptr + n * sxn + c * sxc
    # Position of output o in the zero-stuffed, unpadded input: s = o * down - pad0; first live tap k0 = (-s) mod up.
    sy = oy * DOWNY - PY0
    sx = ox * DOWNX - PX0
    ky0 = ((-sy) % UPY + UPY) % UPY
    kx0 = ((-sx) % UPX + UPX) % UPX
    if HAS_BIAS:
        bias = tl.load(b_ptr + c).to(tl.float32)
    acc = tl.full([BLOCK_H, BLOCK_W], 0.0, tl.float32)
    for ty in tl.static_range(TAPS_Y):
        ky = ky0 + UPY * ty
        iy = (sy + ky) // UPY  # exact: up divides sy + ky
        vy = (ky < KH) & (iy >= 0) & (iy < H)
        if SEPARABLE:
            wy = tl.load(gy_ptr + ky, mask=ky < KH, other=0.0)
        for tx in tl.static_range(TAPS_X):
            kx = kx0 + UPX * tx
            ix = (sx + kx) // UPX
            vx = (kx < KW) & (ix >= 0) & (ix < W)
            m = vy[:, None] & vx[None, :]
            v = tl.load(x_base + iy[:, None] * sxh + ix[None, :] * sxw, mask=m, other=0.0).to(tl.float32)
            if HAS_BIAS:
                v = tl.where(m, v + bias, 0.0)
            if SEPARABLE:
                wx = tl.load(gx_ptr + kx, mask=kx < KW, other=0.0)
                acc += v * (wy[:, None] * wx[None, :])
            else:
                kyx = ky[:, None] * KW + kx[None, :]
                w = tl.load(gy_ptr + kyx, mask=(ky[:, None] < KH) & (kx[None, :] < KW), other=0.0)
                acc += v * w
    out_mask = (oy[:, None] < OH) & (ox[None, :] < OW)
    out_off = plane * OH * OW + oy[:, None] * OW + ox[None, :]
    if EPILOGUE == 1:  # leaky ReLU, gain, clamp
        acc = tl.where(acc > 0, acc, acc * slope) * gain
        if clamp >= 0:
            acc = tl.minimum(tl.maximum(acc, -clamp), clamp)
    elif EPILOGUE == 2:  # incoming gradient times d/dacc of the above (clamp passes where |value| <= clamp)
        d = tl.where(acc > 0, 1.0, slope) * gain
        if clamp >= 0:
            val = tl.where(acc > 0, acc, acc * slope) * gain
            d = tl.where(tl.abs(val) <= clamp, d, 0.0)
        acc = tl.load(aux_ptr + out_off, mask=out_mask, other=0.0).to(tl.float32) * d
    tl.store(y_ptr + out_off, acc.to(y_ptr.dtype.element_ty), mask=out_mask)


@triton.jit
def _activate(v, ACT: tl.constexpr, alpha):
    if ACT == 1:
        v = tl.maximum(v, 0.0)
    elif ACT == 2:
        v = tl.where(v > 0, v, v * alpha)
    elif ACT == 3:
        e = tl.exp(-2.0 * tl.abs(v))
        t = (1.0 - e) / (1.0 + e)
        v = tl.where(v >= 0, t, -t)
    elif ACT == 4:
        v = 1.0 / (1.0 + tl.exp(-v))
    elif ACT == 5:
        v = tl.where(v > 0, v, tl.exp(tl.minimum(v, 0.0)) - 1.0)
    elif ACT == 6:
        v = 1.0507009873554805 * tl.where(v > 0, v, 1.6732632423543772 * (tl.exp(tl.minimum(v, 0.0)) - 1.0))
    elif ACT == 7:
        v = tl.maximum(v, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(v)))  # stable log(1 + e^v)
    elif ACT == 8:
        v = v / (1.0 + tl.exp(-v))
    return v


@triton.jit(do_not_specialize=['numel', 'C', 'inner'])
def _bias_act_kernel(
    x_ptr, b_ptr, dy_ptr, y_ptr, numel, C, inner, alpha, gain, clamp,
    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, BACKWARD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Forward: y = clamp(act(x + b) * gain). Backward (ACT linear/relu/lrelu): y = dy * d/dx of the forward."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(b_ptr + (offs // inner) % C, mask=mask, other=0.0).to(tl.float32)
    out = _activate(v, ACT, alpha) * gain
    if BACKWARD:
        if ACT == 0:
            d = tl.full([BLOCK], 1.0, tl.float32) * gain
        elif ACT == 1:
            d = tl.where(v > 0, 1.0, 0.0) * gain
        else:
            d = tl.where(v > 0, 1.0, alpha) * gain
        if clamp >= 0:
            d = tl.where(tl.abs(out) <= clamp, d, 0.0)
        out = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(tl.float32) * d
    elif clamp >= 0:
        out = tl.minimum(tl.maximum(out, -clamp), clamp)
    tl.store(y_ptr + offs, out.to(y_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------
# Launchers.


def _taps(f: torch.Tensor | None, flip_filter: bool, gain: float, device: torch.device) -> torch.Tensor:
    """Filter -> float32 correlation taps with the gain folded in ([K] gets sqrt(gain) per axis, [fh, fw] gain)."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=device)
    g = f.detach().to(device=device, dtype=torch.float32) * (gain ** (f.ndim / 2))
    if not flip_filter:
        g = g.flip(list(range(g.ndim)))
    return g.contiguous()


def resample(
    x: torch.Tensor,
    gy: torch.Tensor,
    gx: torch.Tensor | None,
    up: tuple[int, int],
    down: tuple[int, int],
    pad0: tuple[int, int],
    out_size: tuple[int, int],
    bias: torch.Tensor | None = None,
    epilogue: int = EPI_NONE,
    aux: torch.Tensor | None = None,
    act_args: tuple[float, float, float] = (1.0, 0.2, -1.0),
) -> torch.Tensor:
    """One pass of :func:`_resample_kernel`.

    Args:
        x: [N, C, H, W], any strides, float16/bfloat16/float32/float64 (accumulated in float32).
        gy: Correlation taps: [KH] when ``gx`` is given (separable, tap = gy[ky] * gx[kx]) else [KH, KW].
        gx: [KW] or None.
        up, down, pad0: (x, y) factors and leading paddings; ``out_size``: (OH, OW).
        bias: [C] added to every input sample read, or None.
        epilogue: EPI_NONE, EPI_LRELU (activation) or EPI_LRELU_GRAD (``aux`` times the activation's derivative).
        aux: Contiguous [N, C, OH, OW] incoming gradient for EPI_LRELU_GRAD.
        act_args: (gain, slope, clamp); clamp < 0 = none.

    Returns:
        Contiguous [N, C, OH, OW] in the dtype of ``x``.
    """
    N, C, H, W = x.shape
    (upx, upy), (downx, downy), (px0, py0), (OH, OW) = up, down, pad0, out_size
    KH = gy.shape[0]
    KW = gx.shape[0] if gx is not None else gy.shape[1]
    y = torch.empty([N, C, OH, OW], dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    block_h, block_w = _tile(OH, OW)
    grid = (N * C, triton.cdiv(OH, block_h) * triton.cdiv(OW, block_w))
    gain, slope, clamp = act_args
    _resample_kernel[grid](
        x, gy, gy if gx is None else gx, x if bias is None else bias.contiguous(), y if aux is None else aux, y,
        C, H, W, OH, OW, triton.cdiv(OW, block_w), *x.stride(), upx, upy, downx, downy, px0, py0, KH, KW,
        float(gain), float(slope), float(clamp),
        TAPS_Y=-(-KH // upy), TAPS_X=-(-KW // upx), SEPARABLE=gx is not None, HAS_BIAS=bias is not None,
        EPILOGUE=epilogue, BLOCK_H=block_h, BLOCK_W=block_w, WIDE=INTERPRETED, num_warps=4, enable_fp_fusion=True,
    )  # fmt: skip
    return y


def upfirdn2d_forward(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """upfirdn2d without autograd (arguments parsed as in ``upfirdn2d._upfirdn2d_ref``)."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    H, W = x.shape[2], x.shape[3]
    g = _taps(f, flip_filter, gain, x.device)
    KW, KH = g.shape[-1], g.shape[0]
    OW = (W * upx + px0 + px1 - KW) // downx + 1
    OH = (H * upy + py0 + py1 - KH) // downy + 1
    if g.ndim == 2:
        return resample(x, g, None, up, down, (px0, py0), (OH, OW))
    taps_2d = -(-KH // upy) * -(-KW // upx)
    if taps_2d <= 64:  # one pass with outer-product taps
        return resample(x, g, g, up, down, (px0, py0), (OH, OW))
    one = torch.ones([1], dtype=torch.float32, device=x.device)
    if upx * downy > upy * downx:  # H first when it shrinks more
        t = resample(x, g, one, (1, upy), (1, downy), (0, py0), (OH, W))
        return resample(t, one, g, (upx, 1), (downx, 1), (px0, 0), (OH, OW))
    t = resample(x, one, g, (upx, 1), (downx, 1), (px0, 0), (H, OW))
    return resample(t, g, one, (1, upy), (1, downy), (0, py0), (OH, OW))


def _transposed_padding(
    in_size: tuple[int, int], out_size: tuple[int, int], up, down, padding, ksize: tuple[int, int]
) -> list[int]:
    """Padding of the upfirdn2d that computes the input gradient (up and down swapped, filter flipped).

    Per axis, with K taps: pad0' = K - 1 - pad0, pad1' = in * up - out * down + pad0 - up + 1 (the transposed
    operator of the polyphase sum in the module docstring)."""
    (H, W), (OH, OW), (upx, upy), (downx, downy), (px0, _, py0, _), (KW, KH) = (
        in_size,
        out_size,
        up,
        down,
        padding,
        ksize,
    )
    return [
        KW - 1 - px0,
        W * upx - OW * downx + px0 - upx + 1,
        KH - 1 - py0,
        H * upy - OH * downy + py0 - upy + 1,
    ]


class Upfirdn2d(torch.autograd.Function):
    """Differentiable upfirdn2d; the gradient is again an upfirdn2d (so every order is available)."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):  # type: ignore[override]
        y = upfirdn2d_forward(x, f, up, down, padding, flip_filter, gain)
        if f is not None:
            ctx.save_for_backward(f)
        ctx.args = (x.shape[2:], y.shape[2:], up, down, padding, flip_filter, gain, f is None)
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        (H, W), (OH, OW), up, down, padding, flip_filter, gain, no_f = ctx.args
        f = None if no_f else ctx.saved_tensors[0]
        KW = 1 if f is None else f.shape[-1]
        KH = 1 if f is None else f.shape[0]
        p = _transposed_padding((H, W), (OH, OW), up, down, padding, (KW, KH))
        dx = Upfirdn2d.apply(dy, f, down, up, tuple(p), not flip_filter, gain)
        return dx, None, None, None, None, None, None


def filtered_lrelu_forward(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter) -> torch.Tensor:
    """filtered_lrelu without autograd (arguments parsed as in ``filtered_lrelu._filtered_lrelu_ref``)."""
    px0, px1, py0, py1 = padding
    gu = _taps(fu, flip_filter, float(up * up), x.device)
    Ku_w, Ku_h = gu.shape[-1], gu.shape[0]
    mid_w = x.shape[3] * up + px0 + px1 - Ku_w + 1
    mid_h = x.shape[2] * up + py0 + py1 - Ku_h + 1
    act = (gain, slope, -1.0 if clamp is None else clamp)
    gx = gu if gu.ndim == 1 else None
    mid = resample(x, gu, gx, (up, up), (1, 1), (px0, py0), (mid_h, mid_w), bias=b, epilogue=EPI_LRELU, act_args=act)
    return upfirdn2d_forward(mid, fd, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1.0)


class FilteredLrelu(torch.autograd.Function):
    """Differentiable filtered_lrelu: Triton first-order gradient; under ``create_graph`` the gradient is the
    reference chain's autograd gradient (so higher orders still work, at reference speed)."""

    @staticmethod
    def forward(ctx, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):  # type: ignore[override]
        y = filtered_lrelu_forward(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
        ctx.save_for_backward(x, fu, fd, b)
        ctx.args = (up, down, padding, gain, slope, clamp, flip_filter)
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, fu, fd, b = ctx.saved_tensors
        up, down, padding, gain, slope, clamp, flip_filter = ctx.args
        if torch.is_grad_enabled():  # double backward requested: differentiate the specification
            from .filtered_lrelu import _filtered_lrelu_ref

            inputs = [t for t, need in zip((x, b), (ctx.needs_input_grad[0], ctx.needs_input_grad[3])) if need]
            y = _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
            grads = iter(torch.autograd.grad(y, inputs, dy, create_graph=True))
            dx = next(grads) if ctx.needs_input_grad[0] else None
            db = next(grads) if ctx.needs_input_grad[3] else None
            return dx, None, None, db, None, None, None, None, None, None, None
        px0, px1, py0, py1 = padding
        gu = _taps(fu, flip_filter, float(up * up), x.device)
        Ku_w, Ku_h = gu.shape[-1], gu.shape[0]
        mid_w = x.shape[3] * up + px0 + px1 - Ku_w + 1
        mid_h = x.shape[2] * up + py0 + py1 - Ku_h + 1
        # 1. Through the down-FIR: transposed upfirdn2d back to the intermediate's size.
        Kd_w, Kd_h = (1, 1) if fd is None else (fd.shape[-1], fd.shape[0])
        p = _transposed_padding((mid_h, mid_w), dy.shape[2:], (1, 1), (down, down), (0, 0, 0, 0), (Kd_w, Kd_h))
        dmid = upfirdn2d_forward(dy.contiguous(), fd, (down, down), (1, 1), tuple(p), not flip_filter, 1.0)
        # 2. Times the activation's derivative at the recomputed pre-activation (fused with its up-FIR pass).
        act = (gain, slope, -1.0 if clamp is None else clamp)
        gx = gu if gu.ndim == 1 else None
        dmid = resample(
            x, gu, gx, (up, up), (1, 1), (px0, py0), (mid_h, mid_w), bias=b, epilogue=EPI_LRELU_GRAD,
            aux=dmid.contiguous(), act_args=act,
        )  # fmt: skip
        # 3. Through the up-FIR: transposed upfirdn2d back to the input's size.
        p = _transposed_padding(x.shape[2:], (mid_h, mid_w), (up, up), (1, 1), padding, (Ku_w, Ku_h))
        dx = upfirdn2d_forward(dmid, fu, (1, 1), (up, up), tuple(p), not flip_filter, float(up * up))
        db = dx.sum([0, 2, 3]).to(b.dtype) if (b is not None and ctx.needs_input_grad[3]) else None
        return dx, None, None, db, None, None, None, None, None, None, None


def bias_act_launch(x, b, dim, act, alpha, gain, clamp, dy=None) -> torch.Tensor:
    """Forward (``dy`` None) or input gradient (ACT linear/relu/lrelu) of bias_act; x and dy share the layout."""
    if x.is_contiguous():
        inner = math.prod(x.shape[dim + 1 :])
    elif x.ndim == 4 and dim == 1 and x.is_contiguous(memory_format=torch.channels_last):
        inner = 1  # channel is the fastest storage axis
    else:
        x = x.contiguous()
        inner = math.prod(x.shape[dim + 1 :])
    if dy is not None:
        dy = dy.contiguous(memory_format=torch.channels_last) if inner == 1 and x.ndim == 4 else dy.contiguous()
    y = torch.empty_like(x)
    numel = x.numel()
    if numel == 0:
        return y
    block = _elementwise_block(numel)
    _bias_act_kernel[(triton.cdiv(numel, block),)](
        x, x if b is None else b.contiguous(), x if dy is None else dy, y, numel, x.shape[dim] if x.ndim else 1, inner,
        float(alpha), float(gain), float(clamp),
        ACT=ACT_CODES[act], HAS_BIAS=b is not None, BACKWARD=dy is not None, BLOCK=block, num_warps=4,
        enable_fp_fusion=True,
    )  # fmt: skip
    return y


class BiasAct(torch.autograd.Function):
    """Differentiable bias_act: Triton forward, Triton first-order gradient for linear/relu/lrelu; other
    activations and double backward differentiate the specification (``bias_act._bias_act_ref``)."""

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # type: ignore[override]
        ctx.save_for_backward(x, b)
        ctx.args = (dim, act, alpha, gain, clamp)
        return bias_act_launch(x, b, dim, act, alpha, gain, clamp)

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, b = ctx.saved_tensors
        dim, act, alpha, gain, clamp = ctx.args
        need_x, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled() or act not in ('linear', 'relu', 'lrelu'):
            from .bias_act import _bias_act_ref

            with torch.enable_grad():
                xs = x if x.requires_grad else x.detach().requires_grad_(need_x)
                bs = None if b is None else (b if b.requires_grad else b.detach().requires_grad_(need_b))
                y = _bias_act_ref(xs, bs, dim, act, alpha, gain, clamp)
                inputs = [t for t, need in ((xs, need_x), (bs, need_b)) if need]
                grads = iter(torch.autograd.grad(y, inputs, dy, create_graph=torch.is_grad_enabled()))
            dx = next(grads) if need_x else None
            db = next(grads) if need_b else None
            return dx, db, None, None, None, None, None
        dx = bias_act_launch(x, b, dim, act, alpha, gain, clamp, dy=dy)
        db = None
        if need_b and b is not None:
            db = dx.sum([i for i in range(dx.ndim) if i != dim]).to(b.dtype)
        return (dx if need_x or need_b else None), db, None, None, None, None, None
