"""Band-limited resampling of images and layer outputs: Lanczos shifts and anti-aliased affine warps.

Used by the visualizer's "untransform" view (``engine.renderer``) and by the equivariance metrics
(``metrics.equivariance``), so the picture a user inspects and the number the metric reports come from one
implementation.

Signals are treated as in Alias-Free GAN (Karras et al. 2021, arXiv 2106.12423, Sec. 2 and Appendix E): a discrete
image is the sampled form of a continuous signal band-limited to the sampling grid's Nyquist square
``|f_x|, |f_y| < 1/2`` cycles/pixel. The ideal low-pass of a grid is a separable sinc; we window it with the Lanczos
window of a = 3, ``L(x) = sinc(x) sinc(x / 3)`` for ``|x| < 3`` and 0 elsewhere (``sinc(x) = sin(pi x) / (pi x)``).

Two operations:

- :func:`lanczos_translate`: shift by a fractional number of pixels with a separable six-tap Lanczos filter
  (weights normalised to unit sum), masking pixels whose six-tap support reaches outside the image.
- :func:`bandlimited_affine`: resample at affinely mapped positions ``out(p) = x(A p + b)`` without aliasing. After
  a rotation (or scaling, shear) the source grid's Nyquist square no longer matches the output grid's, so the
  result must be limited to the frequencies *both* grids represent. The image is upsampled 4x (zero insertion),
  filtered on the fine grid with the product -- in the frequency domain, i.e. the cascade -- of the input-grid
  low-pass (separable Lanczos sinc in source axes) and the transformed output-grid low-pass (separable Lanczos
  sinc along the output axes, ``L(e_x) L(e_y)`` with ``e = A^-1 d`` for a source-pixel offset ``d``), and then
  sampled at the mapped positions with a Lanczos interpolator on the fine grid (where the signal occupies only
  the lowest eighth of the band, so the final interpolation is nearly exact).

Coordinates: pixel-index units, pixel (i, j) = column i, row j at position (i, j); ``matrix_px`` maps output
positions to source positions. :func:`centred_to_pixels` converts the image-centred convention of the StyleGAN3
input transform (the image spans 1, pixel i at ``(i + 0.5) / W - 0.5``) to pixel units.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LANCZOS_A = 3  # Lanczos window size a: the kernel spans 2a = 6 pixels.
UPSAMPLE = 4  # Fine-grid factor of bandlimited_affine().

__all__ = [
    'LANCZOS_A',
    'UPSAMPLE',
    'bandlimited_affine',
    'centred_to_pixels',
    'lanczos',
    'lanczos_shift_weights',
    'lanczos_translate',
]


def lanczos(x: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """Lanczos kernel ``sinc(x) sinc(x / a)`` for ``|x| < a``, else 0 (x in pixels, any shape/dtype)."""
    return torch.sinc(x) * torch.sinc(x / a) * (x.abs() < a)


def lanczos_shift_weights(shift_px: float, a: int = LANCZOS_A) -> tuple[int, np.ndarray]:
    """Taps of a 1-D fractional shift by ``shift_px`` (content moves towards +index).

    ``out[i] = sum_k w[k] * x[i + first + k]`` for k in 0..2a-1, with ``w[k] = L(i - shift - (i + first + k))``
    normalised to unit sum.

    Returns:
        (first, w): offset of the first tap relative to the output index, weights [2a] float64 summing to 1.
    """
    s = -float(shift_px)  # Source position of output pixel 0.
    base = math.floor(s)
    first = base - a + 1
    d = (s - (first + np.arange(2 * a))).astype(np.float64)  # Distance from the source position to each tap.
    w = np.sinc(d) * np.sinc(d / a) * (np.abs(d) < a)
    w[(d == np.round(d)) & (d != 0)] = 0.0  # Exact zeros at whole-pixel distances (np.sinc leaves ~1e-17).
    return first, w / w.sum()


def _shift_zero(x: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """``out[..., i, ...] = x[..., i + offset, ...]`` along ``dim``, zero where ``i + offset`` is outside."""
    n = x.shape[dim]
    out = torch.zeros_like(x)
    if abs(offset) >= n:
        return out
    if offset >= 0:
        out.narrow(dim, 0, n - offset).copy_(x.narrow(dim, offset, n - offset))
    else:
        out.narrow(dim, -offset, n + offset).copy_(x.narrow(dim, 0, n + offset))
    return out


def _lanczos_shift_1d(x: torch.Tensor, shift_px: float, dim: int, a: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[dim]
    first, w = lanczos_shift_weights(shift_px, a)
    out = torch.zeros_like(x)
    valid = torch.ones(n, dtype=torch.bool, device=x.device)
    idx = torch.arange(n, device=x.device)
    for k in range(2 * a):
        if w[k] == 0:  # Whole-pixel shifts: only the centre tap carries content.
            continue
        out += float(w[k]) * _shift_zero(x, first + k, dim)
        valid &= (idx + first + k >= 0) & (idx + first + k < n)
    return out, valid


def lanczos_translate(
    img: torch.Tensor, tx_px: float, ty_px: float, a: int = LANCZOS_A
) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves the content of ``img`` by (tx_px, ty_px) pixels with a separable Lanczos filter (Alias-Free GAN App. E).

    Each axis: six taps ``L(d) = sinc(d) sinc(d / 3)`` at the pixels around the source position, normalised to unit
    sum; ``out[..., y, x] ~= img(x - tx_px, y - ty_px)``. Whole-pixel shifts reduce to exact copies.

    Args:
        img: [N, C, H, W] float tensor (any device).
        tx_px, ty_px: Shift in pixels (right, down); any real value.
        a: Lanczos window size (taps per axis = 2a).

    Returns:
        (shifted [N, C, H, W] same dtype, valid mask [H, W] bool -- False where a tap with non-zero weight lies
        outside the image, i.e. where content would be carried in from outside).

    Raises:
        ValueError: ``img`` is not 4-D or a shift is not finite.
    """
    if img.ndim != 4:
        raise ValueError(f'lanczos_translate(): img must be [N, C, H, W], got shape {list(img.shape)}')
    if not (math.isfinite(tx_px) and math.isfinite(ty_px)):
        raise ValueError(f'lanczos_translate(): shifts must be finite, got ({tx_px}, {ty_px})')
    out, valid_x = _lanczos_shift_1d(img, tx_px, dim=3, a=a)
    out, valid_y = _lanczos_shift_1d(out, ty_px, dim=2, a=a)
    return out, valid_y[:, None] & valid_x[None, :]


def centred_to_pixels(matrix, width: int, height: int, extent: float = 1.0) -> np.ndarray:
    """Converts an affine map in image-centred units to pixel-index units.

    In centred units the image spans ``extent`` (1 for the final image; layers with margins span more, see
    Alias-Free GAN Sec. 3.1), pixel i sits at ``((i + 0.5) / W - 0.5) * extent``. Only square pixels are supported
    (the same scale on both axes: ``extent / width`` per pixel).

    Args:
        matrix: [2, 3] or [3, 3] array-like, output position -> source position in centred units.
        width, height: Image size in pixels.
        extent: Width of the image in centred units.

    Returns:
        [2, 3] float64 array mapping output pixel positions (x, y) to source pixel positions.
    """
    m = np.asarray(matrix, dtype=np.float64)[:2]
    lin, t = m[:, :2], m[:, 2]
    c = np.array([width / 2 - 0.5, height / 2 - 0.5])
    t_px = t * width / extent + c - lin @ c
    return np.concatenate([lin, t_px[:, None]], axis=1)


def _input_lowpass(up: int, a: int, dtype: torch.dtype) -> torch.Tensor:
    """1-D fine-grid taps of the input-grid low-pass (interpolation by ``up``), each polyphase summing to 1."""
    d = torch.arange(-a * up + 1, a * up, dtype=torch.float64)
    f = lanczos(d / up, a)
    for phase in range(up):
        sel = (d.long() % up) == phase
        f[sel] /= f[sel].sum()
    return f.to(dtype)


def _output_lowpass(band_lin: np.ndarray, up: int, a: int, dtype: torch.dtype) -> torch.Tensor:
    """2-D fine-grid kernel [K, K] of the output-grid low-pass: ``L(e_x) L(e_y)``, ``e = B^-1 (d / up)``.

    B ([2, 2], columns = source offset of one output pixel step in x and y) gives the output grid in source pixels;
    ``d`` is the fine-grid offset. Normalised to unit sum.
    """
    inv = torch.as_tensor(np.linalg.inv(band_lin), dtype=torch.float64)
    radius = int(math.ceil(up * a * float(np.abs(band_lin).sum(axis=1).max()) - 1e-9))
    r = torch.arange(-radius, radius + 1, dtype=torch.float64) / up
    dy, dx = torch.meshgrid(r, r, indexing='ij')
    ex = inv[0, 0] * dx + inv[0, 1] * dy
    ey = inv[1, 0] * dx + inv[1, 1] * dy
    g = lanczos(ex, a) * lanczos(ey, a)
    if float(g.sum()) <= 0:  # Output pixels far smaller than a fine sample: no extra filtering.
        g = torch.zeros_like(g)
        g[radius, radius] = 1
    return (g / g.sum()).to(dtype)


def _fft_conv2d_full(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Full 2-D linear convolution of x [N, C, H, W] with k [Kh, Kw] (same for all channels) via the FFT."""
    h, w = x.shape[-2:]
    kh, kw = k.shape
    size = (h + kh - 1, w + kw - 1)
    xf = torch.fft.rfft2(x, s=size)
    kf = torch.fft.rfft2(k.to(x.dtype), s=size)
    return torch.fft.irfft2(xf * kf, s=size)


def bandlimited_affine(
    x: torch.Tensor,
    matrix_px,
    band_px=None,
    up: int = UPSAMPLE,
    a: int = LANCZOS_A,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resamples ``x`` at affinely mapped positions without aliasing: ``out(p) ~= x(A p + b)`` band-limited.

    Upsample ``up``x, filter with the cascade of the input-grid and the output-grid Lanczos sinc low-passes, sample
    at the mapped positions (module docstring; Alias-Free GAN, Sec. 2 and Appendix E). The output keeps only the
    frequencies inside both the source grid's Nyquist square and the output grid's (the band-limit of ``band_px``).

    Args:
        x: [N, C, H, W] float tensor (any device); values outside the image count as 0.
        matrix_px: [2, 3] or [3, 3] array-like ``[A | b]``: output pixel position -> source pixel position.
        band_px: [2, 2+] array-like whose linear part B defines the output grid of the low-pass (columns = source
            offset of one output pixel step); default A. ``matrix_px = identity`` with ``band_px = A^-1`` filters an
            image on the output grid to the band a transform by A leaves (to compare like with like).
        up: Fine-grid factor (>= 1).
        a: Lanczos window size.

    Returns:
        (out [N, C, H, W] same dtype as ``x``, valid mask [H, W] bool -- True where the whole filter support lies
        inside the source image).

    Raises:
        ValueError: bad shapes, a singular or non-finite matrix, ``up`` < 1.
    """
    if x.ndim != 4:
        raise ValueError(f'bandlimited_affine(): x must be [N, C, H, W], got shape {list(x.shape)}')
    m = np.asarray(matrix_px, dtype=np.float64)
    if m.shape not in ((2, 3), (3, 3)) or not np.isfinite(m).all():
        raise ValueError(f'bandlimited_affine(): matrix_px must be a finite [2, 3] or [3, 3] array, got {m.tolist()}')
    lin, t = m[:2, :2], m[:2, 2]
    band = lin if band_px is None else np.asarray(band_px, dtype=np.float64)[:2, :2]
    for name, mat in (('matrix_px', lin), ('band_px', band)):
        if not np.isfinite(mat).all() or abs(np.linalg.det(mat)) < 1e-9:
            raise ValueError(f'bandlimited_affine(): {name} must be invertible, got {mat.tolist()}')
    if int(up) < 1:
        raise ValueError(f'bandlimited_affine(): up must be >= 1, got {up}')
    n, c, h, w = x.shape
    work = torch.float64 if x.dtype == torch.float64 else torch.float32

    # Combined fine-grid kernel: input low-pass (separable) cascaded with the output low-pass.
    f_in = _input_lowpass(up, a, torch.float64)
    g = _output_lowpass(band, up, a, torch.float64)
    k_in = f_in[:, None] * f_in[None, :]  # [Ki, Ki]
    pad = k_in.shape[0] - 1
    kernel = torch.nn.functional.conv2d(
        torch.nn.functional.pad(g, [pad, pad, pad, pad])[None, None], k_in.flip([0, 1])[None, None]
    )[0, 0]  # [K, K], K = Kg + Ki - 1 (both kernels point-symmetric)
    r_k = (kernel.shape[0] - 1) // 2  # Kernel radius in fine samples.

    # Zero-insertion upsampling: source pixel (i, j) -> fine sample (up*i, up*j); then the full convolution.
    fine = torch.zeros([n, c, (h - 1) * up + 1, (w - 1) * up + 1], dtype=work, device=x.device)
    fine[:, :, ::up, ::up] = x.to(work)
    fine = _fft_conv2d_full(fine, kernel.to(device=x.device, dtype=work))  # fine sample 0 at source -r_k/up
    margin = a + 1  # Zero border for the final interpolation: clamped taps read zeros.
    fine = torch.nn.functional.pad(fine, [margin] * 4)
    origin = r_k + margin  # Fine index of source position 0.

    # Sample at the mapped positions with a Lanczos interpolator on the fine grid.
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=x.device),
        torch.arange(w, dtype=torch.float64, device=x.device),
        indexing='ij',
    )
    sx = lin[0, 0] * xs + lin[0, 1] * ys + t[0]  # Source positions [H, W] in pixels.
    sy = lin[1, 0] * xs + lin[1, 1] * ys + t[1]
    out = _lanczos_sample(fine, sx * up + origin, sy * up + origin, a).to(x.dtype)

    # Valid where no source pixel outside the image reaches the output: the support of the kernel plus the
    # interpolator, |up * (s - i)| < r_k + a, must stay inside 0..W-1.
    reach = (r_k + a) / up - 1
    valid = (sx >= reach) & (sx <= w - 1 - reach) & (sy >= reach) & (sy <= h - 1 - reach)
    return out, valid


def _lanczos_sample(img: torch.Tensor, u: torch.Tensor, v: torch.Tensor, a: int, chunk: int = 1 << 24) -> torch.Tensor:
    """Separable Lanczos interpolation of img [N, C, Hf, Wf] at column u / row v [H, W] (float64, fine pixels)."""
    n, c, hf, wf = img.shape
    u0, v0 = torch.floor(u).flatten(), torch.floor(v).flatten()
    taps = torch.arange(-a + 1, a + 1, dtype=torch.float64, device=img.device)  # [2a]
    cols = u0[:, None] + taps  # [P, 2a]
    rows = v0[:, None] + taps
    wx = lanczos(u.flatten()[:, None] - cols, a)
    wy = lanczos(v.flatten()[:, None] - rows, a)
    wx = (wx / wx.sum(dim=1, keepdim=True)).to(img.dtype)
    wy = (wy / wy.sum(dim=1, keepdim=True)).to(img.dtype)
    cols = cols.clamp(0, wf - 1).long()
    rows = rows.clamp(0, hf - 1).long()
    num_px = u.numel()
    out = torch.empty([n, c, num_px], dtype=img.dtype, device=img.device)
    step = max(1, chunk // max(1, n * c * taps.numel() ** 2))
    for start in range(0, num_px, step):
        sl = slice(start, start + step)
        patch = img[:, :, rows[sl][:, :, None], cols[sl][:, None, :]]  # [N, C, P, 2a, 2a]
        out[:, :, sl] = torch.einsum('ncpij,pi,pj->ncp', patch, wy[sl], wx[sl])
    return out.reshape(n, c, *u.shape)
