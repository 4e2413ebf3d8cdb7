"""Equivariance metrics EQ-T (integer and fractional translation) and EQ-R (rotation) of StyleGAN3 generators.

Karras et al. 2021, "Alias-Free Generative Adversarial Networks" (arXiv 2106.12423), sec. 3 and Appendix E:
transform the generator's input (its Fourier-feature grid, `G.synthesis.input.transform`), transform the
untransformed output by the same amount in image space, and compare the two on the region where both are defined:

    EQ = 10 log10(I_max^2 / MSE) = 20 log10(2) - 10 log10(MSE)    (images in [-1, 1], so I_max = 2),

the MSE averaged over all samples, channels and valid pixels (the expectation sits inside the log). Translations
are uniform in [-1/8, 1/8] of the image per axis (rounded to whole pixels for `_int`), rotations uniform over the
full circle.

Conventions (REFERENCE section 3): coordinates are image-centred, in units where the image spans 1, pixel (i, j)
at x = (i + 0.5) / W - 0.5, y = (j + 0.5) / H - 0.5. The input layer stores the *inverse* M of the user's
transform and samples its features at M x, so the transformed output is `img'(x) = img(M x)` and the reference
image is resampled at M x too: exactly by rolling for whole pixels; otherwise with a separable Kaiser-windowed
sinc interpolator (radius 8 pixels, i.e. 16 taps per axis, beta 8; radius res/8 below 64 px), which reproduces content below ~0.35 cycles/pixel to ~-80 dB and marks
pixels whose footprint leaves the image as invalid.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import metric_utils

PSNR_MAX_DB = 200.0  # Reported when the images match to rounding (keeps the JSON finite).


def psnr_db(mse: float) -> float:
    """PSNR in dB of images in [-1, 1]: 20 log10(2) - 10 log10(mse), capped at PSNR_MAX_DB for mse ~ 0."""
    floor = 4.0 * 10 ** (-PSNR_MAX_DB / 10)
    return float(20 * math.log10(2) - 10 * math.log10(max(float(mse), floor)))


def masked_squared_error(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum of squared differences, number of compared elements) over the valid region.

    Args:
        a, b: Images [N, C, H, W] float.
        mask: [H, W] or [N, 1, H, W] bool, True where both images are defined.
    """
    mask = mask.expand_as(a)
    diff = (a.detach().to(torch.float64) - b.detach().to(torch.float64)) * mask
    return float(diff.square().sum()), float(mask.sum())


def integer_translate(img: torch.Tensor, tx: int, ty: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves the content by (tx, ty) whole pixels: `out[..., y, x] = img[..., y - ty, x - tx]`.

    Args:
        img: [N, C, H, W].
        tx, ty: Shift in pixels (right, down).

    Returns:
        (shifted [N, C, H, W], valid mask [H, W] bool -- False where the source lies outside the image).
    """
    _, _, h, w = img.shape
    out = torch.roll(img, shifts=(int(ty), int(tx)), dims=(2, 3))
    ys = torch.arange(h, device=img.device) - int(ty)
    xs = torch.arange(w, device=img.device) - int(tx)
    mask = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    return out, mask


def _kaiser_sinc(d: torch.Tensor, radius: int, beta: float) -> torch.Tensor:
    """Interpolation kernel sinc(d) * Kaiser(d / radius) (zero outside |d| < radius)."""
    t = (d / radius).clamp(-1, 1)
    window = torch.special.i0(beta * torch.sqrt((1 - t * t).clamp(min=0))) / torch.special.i0(torch.tensor(beta))
    return torch.sinc(d) * window * (d.abs() < radius)


def resample(
    img: torch.Tensor, matrix: np.ndarray | torch.Tensor, radius: int = 8, beta: float = 8.0, chunk: int = 1 << 24
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resamples `img` at the affinely mapped coordinates: `out(x) = img(matrix @ x)` (image-centred units).

    Windowed-sinc interpolation over a 2*radius x 2*radius footprint (weights normalised to sum 1 per axis).

    Args:
        img: [N, C, H, W] float, square (H == W).
        matrix: [3, 3] or [2, 3] affine map from output to source coordinates.
        radius: Kernel radius in pixels.
        beta: Kaiser window parameter.
        chunk: Upper bound on elements gathered at once (memory knob).

    Returns:
        (resampled [N, C, H, W], valid mask [H, W] bool -- True where the whole footprint lies in the image).

    Raises:
        ValueError: Non-square image.
    """
    n, c, h, w = img.shape
    if h != w:
        raise ValueError(f'resample(): img must be square, got {h}x{w}')
    m = torch.as_tensor(np.asarray(matrix, dtype=np.float64)[:2], dtype=torch.float64, device=img.device)
    coords = (torch.arange(w, dtype=torch.float64, device=img.device) + 0.5) / w - 0.5
    gy, gx = torch.meshgrid(coords, coords, indexing='ij')
    u = ((m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) + 0.5) * w - 0.5  # Source column [H, W] in pixels.
    v = ((m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) + 0.5) * h - 0.5  # Source row.
    u0, v0 = torch.floor(u), torch.floor(v)
    valid = (u0 - radius + 1 >= 0) & (u0 + radius <= w - 1) & (v0 - radius + 1 >= 0) & (v0 + radius <= h - 1)
    taps = torch.arange(-radius + 1, radius + 1, dtype=torch.float64, device=img.device)  # [K]
    cols = u0.flatten()[:, None] + taps  # [P, K]
    rows = v0.flatten()[:, None] + taps
    wx = _kaiser_sinc(u.flatten()[:, None] - cols, radius, beta)
    wy = _kaiser_sinc(v.flatten()[:, None] - rows, radius, beta)
    wx = (wx / wx.sum(dim=1, keepdim=True)).to(img.dtype)
    wy = (wy / wy.sum(dim=1, keepdim=True)).to(img.dtype)
    cols = cols.clamp(0, w - 1).long()
    rows = rows.clamp(0, h - 1).long()
    out = torch.empty([n, c, h * w], dtype=img.dtype, device=img.device)
    step = max(1, chunk // max(1, n * c * taps.numel() ** 2))
    for start in range(0, h * w, step):
        sl = slice(start, start + step)
        patch = img[:, :, rows[sl][:, :, None], cols[sl][:, None, :]]  # [N, C, P, K, K]
        out[:, :, sl] = torch.einsum('ncpij,pi,pj->ncp', patch, wy[sl], wx[sl])
    return out.reshape(n, c, h, w), valid


def translation_matrix(tx: float, ty: float) -> np.ndarray:
    """Input transform (the inverse of the user's translation by (tx, ty) image widths): content moves by +t."""
    m = np.eye(3)
    m[0, 2], m[1, 2] = -tx, -ty
    return m


def rotation_matrix(angle: float) -> np.ndarray:
    """Input transform: the inverse of the user's rotation `[[cos a, sin a], [-sin a, cos a]]` (a in radians)."""
    user = np.eye(3)
    user[0, 0] = user[1, 1] = math.cos(angle)
    user[0, 1], user[1, 0] = math.sin(angle), -math.sin(angle)
    return np.linalg.inv(user)


def has_input_transform(G) -> bool:
    """True for generators with a StyleGAN3 input transform buffer `G.synthesis.input.transform` [3, 3]."""
    transform = getattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform', None)
    return isinstance(transform, torch.Tensor) and tuple(transform.shape) == (3, 3)


def _render(G, ws: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    G.synthesis.input.transform.copy_(torch.as_tensor(matrix, dtype=G.synthesis.input.transform.dtype))
    return G.synthesis(ws, noise_mode='const').to(torch.float32)


def compute_equivariance_metrics(
    opts: metric_utils.MetricOptions,
    num_samples: int,
    batch_size: int = 4,
    translate_max: float = 0.125,
    rotate_max: float = 1.0,
    compute_eqt_int: bool = False,
    compute_eqt_frac: bool = False,
    compute_eqr: bool = False,
    seed: int = 0,
) -> tuple[float, ...]:
    """EQ-T_int, EQ-T_frac and/or EQ-R in dB (those requested, in that order).

    Each batch shares one random transform; batch b draws from `RandomState([seed, b])` and batches are dealt
    round-robin to ranks, so the result does not depend on the number of GPUs.

    Args:
        opts: Metric options (G must be a StyleGAN3 generator).
        num_samples: Number of generated samples.
        batch_size: Samples per batch (one transform per batch).
        translate_max: Largest translation per axis, in image widths.
        rotate_max: Largest rotation, in half turns (1 = the full circle).

    Returns:
        The PSNRs in dB (NaN on ranks other than 0).

    Raises:
        metric_utils.MetricError: G has no input transform (not a StyleGAN3 generator).
    """
    if not has_input_transform(opts.G):
        raise metric_utils.MetricError(
            'equivariance metrics need a generator with an input transform (G.synthesis.input.transform, '
            'StyleGAN3 -T/-R); this network has none (StyleGAN2?)'
        )
    flags = [compute_eqt_int, compute_eqt_frac, compute_eqr]
    radius = int(np.clip(opts.G.img_resolution // 8, 2, 8))  # Interpolation footprint; 8 from 64 px up.
    sums = torch.zeros([3, 2], dtype=torch.float64)  # [metric, (sum se, count)]
    num_batches = -(-num_samples // batch_size)
    with metric_utils.private_generator(opts.G, opts.device) as G:
        res = G.img_resolution
        with metric_utils.progress_bar(opts, num_samples, 'equivariance') as bar:
            for b in range(opts.rank, num_batches, opts.num_gpus):
                n = min(batch_size, num_samples - b * batch_size)
                rng = np.random.RandomState([seed, b])
                z = torch.from_numpy(rng.randn(n, G.z_dim).astype(np.float32)).to(opts.device)
                c = metric_utils.random_labels(G, None, n, rng).to(opts.device)
                t = rng.uniform(-translate_max, translate_max, size=2)
                angle = rng.uniform(-1, 1) * math.pi * rotate_max
                with torch.no_grad():
                    ws = G.mapping(z, c, truncation_psi=1)
                    orig = _render(G, ws, np.eye(3))
                    if compute_eqt_int:
                        t_px = np.round(t * res)
                        img = _render(G, ws, translation_matrix(*(t_px / res)))
                        ref, mask = integer_translate(orig, int(t_px[0]), int(t_px[1]))
                        sums[0] += torch.tensor(masked_squared_error(img, ref, mask), dtype=torch.float64)
                    if compute_eqt_frac:
                        m = translation_matrix(*t)
                        ref, mask = resample(orig, m, radius=radius)
                        sums[1] += torch.tensor(masked_squared_error(_render(G, ws, m), ref, mask), dtype=torch.float64)
                    if compute_eqr:
                        m = rotation_matrix(angle)
                        ref, mask = resample(orig, m, radius=radius)
                        sums[2] += torch.tensor(masked_squared_error(_render(G, ws, m), ref, mask), dtype=torch.float64)
                bar.update(n * opts.num_gpus)
    sums = metric_utils.all_reduce_sum(sums.to(opts.device), opts.num_gpus).cpu()
    if opts.rank != 0:
        return tuple(float('nan') for f in flags if f)
    if any(f and sums[i, 1] == 0 for i, f in enumerate(flags)):
        raise metric_utils.MetricError(
            f'equivariance metrics: no valid pixels to compare (image {res} px is too small for the transforms)'
        )
    return tuple(psnr_db(float(sums[i, 0] / sums[i, 1])) for i, f in enumerate(flags) if f)
