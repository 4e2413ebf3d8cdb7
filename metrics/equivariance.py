"""Equivariance metrics EQ-T (integer and fractional translation) and EQ-R (rotation) of StyleGAN3 generators.

Karras et al. 2021, "Alias-Free Generative Adversarial Networks" (arXiv 2106.12423), sec. 3 and Appendix E:
transform the generator's input (its Fourier-feature grid, `G.synthesis.input.transform`), transform the
untransformed output by the same amount in image space, and compare the two on the region where both are defined:

    EQ = 10 log10(I_max^2 / MSE) = 20 log10(2) - 10 log10(MSE)    (images in [-1, 1], so I_max = 2),

the MSE averaged over all samples, channels and valid pixels (the expectation sits inside the log). Translations
are uniform in [-1/8, 1/8] of the image per axis (rounded to whole pixels for `_int`), rotations uniform over the
full circle.

Conventions (docs/compatibility.md, "Network interface"): coordinates are image-centred, in units where the
image spans 1, pixel (i, j) at x = (i + 0.5) / W - 0.5, y = (j + 0.5) / H - 0.5. The input layer stores the
*inverse* M of the user's transform and samples its features at M x, so the transformed output is
`img'(x) = img(M x)`, and the reference image is the untransformed output resampled at M x:

- EQ-T_int: exactly, by rolling whole pixels; pixels rolled in from outside are excluded.
- EQ-T_frac: with a separable Lanczos filter, a = 3 (six taps of sinc(x) sinc(x/3) around the source position per
  axis, normalised to unit sum); pixels whose six-tap support reaches outside the image are excluded. The filter's
  own passband error at high frequencies counts against the generator, as in the paper's definition; a sharper
  interpolator would report a higher (more optimistic) EQ-T_frac than the published numbers.
- EQ-R: band-limited rotation (`engine.resample.bandlimited_affine`: 4x upsampling, the cascade of the input-grid
  and the rotated output-grid Lanczos sinc low-passes, sampling); the generator's rotated output is limited to the
  same band so both hold the same frequencies; pixels whose filter support leaves the image are excluded.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine import resample

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


def fractional_translate(img: torch.Tensor, tx: float, ty: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves the content by (tx, ty) image widths with the separable six-tap Lanczos filter of EQ-T_frac.

    Alias-Free GAN, Appendix E: the reference image of EQ-T is the untransformed output shifted by the same
    sub-pixel offset with a Lanczos filter (a = 3, weights normalised to unit sum); pixels whose filter support
    reaches outside the image are excluded (see :func:`engine.resample.lanczos_translate`).

    Args:
        img: [N, C, H, W] float.
        tx, ty: Shift in image widths / heights (right, down).

    Returns:
        (shifted [N, C, H, W], valid mask [H, W] bool).
    """
    _, _, h, w = img.shape
    return resample.lanczos_translate(img, float(tx) * w, float(ty) * h)


def affine_reference(
    orig: torch.Tensor, img: torch.Tensor, matrix: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference and comparison images of an affine equivariance test (EQ-R; also scalings, shears, mirrors).

    The reference is ``orig`` resampled at ``matrix @ x`` with :func:`engine.resample.bandlimited_affine`: upsampled
    4x, limited to the band both the source and the transformed output grid represent (Lanczos-windowed sinc
    low-passes, a = 3), sampled. The generator's transformed output ``img`` has the full band of its own grid, so it
    goes through the same band-limit (the source grid's low-pass expressed on the output grid) without moving;
    otherwise frequencies the reference cannot hold would count as errors (Alias-Free GAN, Appendix E).

    Args:
        orig: Untransformed output [N, C, H, W] float, square.
        img: Output rendered with the input transform ``matrix`` [N, C, H, W].
        matrix: [3, 3] input transform (image-centred units): ``img(x) = orig(matrix @ x)`` for an equivariant G.

    Returns:
        (reference [N, C, H, W], filtered img [N, C, H, W], valid mask [H, W] bool).
    """
    _, _, h, w = orig.shape
    m_px = resample.centred_to_pixels(matrix, w, h)
    ref, ref_mask = resample.bandlimited_affine(orig, m_px)
    band_inv = np.linalg.inv(m_px[:, :2])
    cmp, cmp_mask = resample.bandlimited_affine(img, np.eye(3), band_px=band_inv)
    return ref, cmp, ref_mask & cmp_mask


EQ_KINDS = ('int', 'frac', 'affine')


def sample_squared_error(orig: torch.Tensor, img: torch.Tensor, matrix: np.ndarray, kind: str) -> tuple[float, float]:
    """(sum of squared differences, number of compared values) of one equivariance test: the per-sample step of
    :func:`compute_equivariance_metrics` (EQ = psnr_db(sum / count) over one sample; the metric pools the sums).

    Args:
        orig: Untransformed output [N, C, H, W] float in [-1, 1].
        img: Output rendered with the input transform ``matrix``.
        matrix: [3, 3] input transform (the inverse of the user's transform, image-centred units).
        kind: 'int' (whole-pixel translation: exact roll), 'frac' (sub-pixel translation: six-tap Lanczos shift) or
            'affine' (any affine map: band-limited resampling, :func:`affine_reference`).

    Raises:
        ValueError: Unknown kind, or a translation kind with a matrix that is not a pure translation.
    """
    m = np.asarray(matrix, dtype=np.float64)
    _, _, h, w = orig.shape
    if kind in ('int', 'frac') and not np.allclose(m[:2, :2], np.eye(2)):
        raise ValueError(f'sample_squared_error(): kind {kind!r} needs a pure translation matrix, got {m.tolist()}')
    if kind == 'int':
        ref, mask = integer_translate(orig, int(round(-m[0, 2] * w)), int(round(-m[1, 2] * h)))
    elif kind == 'frac':
        ref, mask = fractional_translate(orig, -m[0, 2], -m[1, 2])
    elif kind == 'affine':
        ref, img, mask = affine_reference(orig, img, m)
    else:
        raise ValueError(f'sample_squared_error(): kind must be one of {EQ_KINDS}, got {kind!r}')
    return masked_squared_error(img, ref, mask)


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


def batch_squared_errors(
    G,
    batch_index: int,
    n: int,
    *,
    seed: int,
    flags,
    device,
    translate_max: float = 0.125,
    rotate_max: float = 1.0,
) -> torch.Tensor:
    """Sums of one batch of :func:`compute_equivariance_metrics` (also the visualizer's "Measure" job, one batch per
    step): batch ``batch_index`` draws z, labels, a translation and a rotation from
    ``RandomState([seed, batch_index])``, renders the untransformed and transformed outputs (noise 'const') and adds
    up :func:`sample_squared_error` per requested test.

    Args:
        G: StyleGAN3 generator (its ``synthesis.input.transform`` is overwritten; callers restore it).
        batch_index: index b of the batch.
        n: samples in this batch.
        seed: the metric's seed.
        flags: (eqt_int, eqt_frac, eqr) booleans.
        device: device of G.
        translate_max: largest translation per axis, in image widths.
        rotate_max: largest rotation, in half turns.

    Returns:
        float64 [3, 2] CPU tensor: (sum of squared errors, count) for EQ-T_int, EQ-T_frac, EQ-R (zeros if off).
    """
    res = G.img_resolution
    sums = torch.zeros([3, 2], dtype=torch.float64)
    rng = np.random.RandomState([seed, batch_index])
    z = torch.from_numpy(rng.randn(n, G.z_dim).astype(np.float32)).to(device)
    c = metric_utils.random_labels(G, None, n, rng).to(device)
    t = rng.uniform(-translate_max, translate_max, size=2)
    angle = rng.uniform(-1, 1) * math.pi * rotate_max
    ws = G.mapping(z, c, truncation_psi=1)
    orig = _render(G, ws, np.eye(3))
    tests = [
        (translation_matrix(*(np.round(t * res) / res)), 'int'),
        (translation_matrix(*t), 'frac'),
        (rotation_matrix(angle), 'affine'),
    ]
    for i, (m, kind) in enumerate(tests):
        if flags[i]:
            sums[i] += torch.tensor(sample_squared_error(orig, _render(G, ws, m), m, kind), dtype=torch.float64)
    return sums


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
    sums = torch.zeros([3, 2], dtype=torch.float64)  # [metric, (sum se, count)]
    num_batches = -(-num_samples // batch_size)
    with metric_utils.private_generator(opts.G, opts.device) as G:
        res = G.img_resolution
        with metric_utils.progress_bar(opts, num_samples, 'equivariance') as bar:
            for b in range(opts.rank, num_batches, opts.num_gpus):
                n = min(batch_size, num_samples - b * batch_size)
                with torch.no_grad():
                    sums += batch_squared_errors(
                        G, b, n, seed=seed, flags=flags, device=opts.device, translate_max=translate_max,
                        rotate_max=rotate_max,
                    )  # fmt: skip
                bar.update(n * opts.num_gpus)
    sums = metric_utils.all_reduce_sum(sums.to(opts.device), opts.num_gpus).cpu()
    if opts.rank != 0:
        return tuple(float('nan') for f in flags if f)
    if any(f and sums[i, 1] == 0 for i, f in enumerate(flags)):
        raise metric_utils.MetricError(
            f'equivariance metrics: no valid pixels to compare (image {res} px is too small for the transforms)'
        )
    return tuple(psnr_db(float(sums[i, 0] / sums[i, 1])) for i, f in enumerate(flags) if f)
