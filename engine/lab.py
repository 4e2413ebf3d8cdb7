"""The spectral and equivariance lab: the maths behind the visualizer's radial plot, seed averages and EQ readout.

Everything here reuses the code of the command-line tools, so the window's numbers are the CLIs' numbers:

- Spectra are `avg_spectra.py`'s (`engine.spectrum.power_spectrum_sum`: pixels normalised by (x - mean) / std,
  unit-energy Kaiser window, zero padding by `interp`, |FFT|^2 averaged over channels), turned into the 0/45-degree
  slices and the radial average by `engine.spectrum_io.spectrum_profiles`. The final image is quantised exactly as
  saved images are (`quantize_u8`), like `avg_spectra.py calc --source=<network>`; other layers use their raw
  values. Karras et al. 2021, "Alias-Free Generative Adversarial Networks" (arXiv 2106.12423), Appendix and Fig. 15.
- The equivariance readout and "Measure" call `metrics.equivariance` (Alias-Free GAN, sec. 3 and Appendix E).

The two long computations (averaging a layer's spectrum over N seeds, a short EQ measurement) are jobs of the
render process (`engine.jobs`): generator functions that yield progress after each batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch

from engine import spectrum as sp
from engine import spectrum_io
from engine.jobs import JobError, Progress

OUTPUT_LAYER = 'output'
MAX_LIVE_SPECTRUM_SIZE = 1024  # The live radial plot lowers interp so that S = size * interp stays at most this.
MAX_CACHED_IMAGE_BYTES = 256 << 20  # Average job: keep pass-1 outputs for pass 2 below this, else render again.
MAX_AVERAGE_NUM = 100_000
MAX_MEASURE_NUM = 100_000


def quantize_u8(img: torch.Tensor) -> torch.Tensor:
    """Final image in [-1, 1] -> uint8 0..255 as saved images are: uint8(clamp(img * 127.5 + 128, 0, 255)).

    Args:
        img: [..., H, W] float tensor, any device.

    Returns:
        torch.Tensor uint8, same shape and device.
    """
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def live_interp(size: int, interp: int) -> int:
    """The zero-padding factor the live plot uses: `interp`, lowered until size * interp <= MAX_LIVE_SPECTRUM_SIZE
    (at least 1)."""
    interp = max(int(interp), 1)
    while interp > 1 and size * interp > MAX_LIVE_SPECTRUM_SIZE:
        interp -= 1
    return interp


def _stats(x: torch.Tensor) -> tuple[float, float]:
    """(mean, population std) over all elements, float64 like `avg_spectra.compute_stats`."""
    x64 = x.to(torch.float64)
    n = x64.numel()
    mean = float(x64.sum()) / n
    std = max(float(x64.square().sum()) / n - mean * mean, 0.0) ** 0.5
    return mean, std


def view_spectrum(
    x: torch.Tensor,
    *,
    is_image: bool,
    mean: float | None = None,
    std: float | None = None,
    beta: float = 8.0,
    interp: int = 4,
    source: str = '',
) -> dict:
    """avg_spectra's spectrum of one displayed layer output (N = 1), as a dict in the npz format.

    Args:
        x: [C, H, W] float tensor, any device (the final image in [-1, 1] when `is_image`).
        is_image: quantise like a saved image first (`quantize_u8`), so that the levels match `avg_spectra.py calc`.
        mean, std: normalisation on the scale of the values (0..255 for images); None: the view's own statistics
            (std 0 -> 1, the spectrum is then -100 dB everywhere but DC).
        beta: Kaiser window beta (>= 0).
        interp: zero-padding factor (>= 1).
        source: text stored in the `source` field.

    Returns:
        dict(spectrum float64 [S, S] unshifted linear power, image_size, beta, interp, num=1, mean, std, source),
        S = W * interp; `engine.spectrum_io.save_spectrum` writes it.

    Raises:
        ValueError: x is not [C, H, W] or not square, or std <= 0 given.
    """
    if x.ndim != 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f'view_spectrum(): x must be a square [C, H, W] tensor, got shape {list(x.shape)}')
    v = quantize_u8(x).to(torch.float32) if is_image else x.to(torch.float32)
    if mean is None or std is None:
        mean, std = _stats(v)
        std = std if std > 0 else 1.0
    total = sp.power_spectrum_sum_chunked(v.unsqueeze(0), mean=mean, std=std, beta=beta, interp=interp)  # [S, S]
    return dict(
        spectrum=total.numpy(), image_size=int(x.shape[-1]), beta=float(beta), interp=int(interp), num=1,
        mean=float(mean), std=float(std), source=source,
    )  # fmt: skip


PROFILE_KEYS = ('freq_0', 'slice_0', 'freq_45', 'slice_45', 'freq_r', 'radial')
EQ_KEYS = ('eq_psnr_db', 'eq_kind', 'eq_valid_frac')


def live_profiles(spec: dict) -> dict:
    """The small part of a spectrum the GUI plots every frame, as plain JSON values (it also crosses the remote
    render protocol): the profiles and the npz metadata, no [S, S] array.

    Returns:
        flat dict(freq_0, slice_0, freq_45, slice_45, freq_r, radial: lists of float (cycles/pixel, dB; at most
        S / sqrt(2) + 2 <= 727 values for S <= MAX_LIVE_SPECTRUM_SIZE), image_size, beta, interp, num, mean, std,
        source).
    """
    prof = spectrum_io.spectrum_profiles(spec['spectrum'])
    out = {k: v for k, v in spec.items() if k != 'spectrum'}
    out.update({k: [float(x) for x in prof[k]] for k in PROFILE_KEYS})
    return out


# ----------------------------------------------------------------------------------------------------------------
# Average over seeds (a job).


def seed_latents(G: Any, seeds: list[int], request: Any, device: torch.device) -> torch.Tensor:
    """ws [n, num_ws, w_dim] of `seeds` the way `avg_spectra.py calc` and `gen_images.py` make them.

    z and the class come from `engine.latents.zc_from_seeds` (the request's `class_idx` wins when set), mapped with
    the request's truncation (`truncation_psi`, `truncation_cutoff`), so `G.synthesis(ws)` equals `G(z, c, psi)`.
    """
    from engine.latents import zc_from_seeds

    z, c = zc_from_seeds(seeds, int(G.z_dim), int(G.c_dim))
    if int(G.c_dim) > 0 and request is not None and request.class_idx is not None:
        c[:] = 0
        c[:, int(request.class_idx)] = 1
    psi = float(request.trunc_psi) if request is not None else 1.0
    cutoff = request.trunc_cutoff if request is not None else None
    zt, ct = torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)
    if cutoff is None or float(cutoff) == int(cutoff):
        return G.mapping(zt, ct, truncation_psi=psi, truncation_cutoff=None if cutoff is None else int(cutoff))
    from engine.renderer import truncate_ws  # a fractional cutoff (a keyframe blend): the renderer's truncation

    ws = G.mapping(zt, ct, truncation_psi=1)
    return truncate_ws(ws, G.mapping.w_avg.to(ws), psi, float(cutoff))


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= int(value) <= hi:
        raise JobError(f'{name} must be an integer in {lo}..{hi}, got {value!r}')
    return int(value)


def average_spectrum_job(
    ctx: Any,
    *,
    request: Any,
    num: int = 100,
    first_seed: int | None = None,
    beta: float = 8.0,
    interp: int = 4,
    mean: float | None = None,
    std: float | None = None,
    batch: int = 4,
) -> Generator[Progress, None, dict]:
    """Job: mean avg_spectra spectrum of the request's layer over seeds first_seed .. first_seed + num - 1.

    For the final image this is `avg_spectra.py calc --source=<network> --seed=<first_seed> --num=<num>
    --trunc=<psi>` (with --mean/--std when given; otherwise both are measured on the same images first, as calc
    does without them). Other layers use their raw values and, without mean/std, the layer's own statistics.

    Args:
        ctx: the renderer's job context (`prepare`, `synthesize`).
        request: the RenderRequest (network, truncation, class, layer_name, noise_mode); its input transform is
            ignored: the seeds render at the identity transform, as `avg_spectra.py calc` renders them.
        num: number of seeds (1 .. MAX_AVERAGE_NUM).
        first_seed: first seed (default: the request's first seed).
        beta, interp: as `avg_spectra.py calc`.
        mean, std: normalisation (both or neither; std > 0).
        batch: seeds per step (1 .. 64).

    Yields:
        Progress per batch (two passes when mean/std are measured).

    Returns:
        dict in the npz format (spectrum float64 [S, S], image_size, beta, interp, num, mean, std, source) plus
        `layer` and `first_seed`.

    Raises:
        JobError: bad parameters or a network that fails to load.
    """
    num, batch, interp = _check_average_params(num, batch, interp, beta, mean, std)
    request = request.replace(input_transform=None, untransform=False)  # as calc renders them: identity transform
    G, info, device = ctx.prepare(request)
    seed0 = _average_first_seed(request, first_seed, num)
    layer = request.layer_name or OUTPUT_LAYER
    is_image = layer == OUTPUT_LAYER
    chunks = [list(range(s, min(s + batch, seed0 + num))) for s in range(seed0, seed0 + num, batch)]
    two_pass = mean is None
    steps = len(chunks) * (2 if two_pass else 1)

    def outputs(seeds: list[int]) -> torch.Tensor:
        with torch.no_grad():
            ws = seed_latents(G, seeds, request, device)
            x = ctx.synthesize(G, ws, request, info, layer).to(torch.float32)  # [n, C, H, W]
        return quantize_u8(x) if is_image else x

    def progress_text(what: str, seeds: list[int]) -> str:
        return f'{what} {min(seeds[-1] - seed0 + 1, num)}/{num}'

    cache: list[torch.Tensor] | None = None
    if two_pass:
        mean, std, cache = yield from _measure_statistics(outputs, chunks, steps, layer, progress_text)
    assert mean is not None and std is not None
    acc = None
    for i, seeds in enumerate(chunks):
        x = cache[i].to(device) if cache is not None else outputs(seeds)
        part = sp.power_spectrum_sum_chunked(x, mean=mean, std=std, beta=beta, interp=interp)  # [S, S] float64
        acc = part if acc is None else acc + part
        yield Progress(steps - len(chunks) + i + 1, steps, progress_text('spectrum', seeds))
    assert acc is not None
    pkl = info.pkl or 'default network'
    return dict(
        spectrum=(acc / num).numpy(), image_size=int(x.shape[-1]), beta=float(beta), interp=int(interp), num=num,
        mean=float(mean), std=float(std), source=f'{pkl} seeds {seed0}..{seed0 + num - 1} {layer}', layer=layer,
        first_seed=seed0,
    )  # fmt: skip


def _check_average_params(num: Any, batch: Any, interp: Any, beta: Any, mean: Any, std: Any) -> tuple[int, int, int]:
    """``average_spectrum_job``'s parameters -> (num, batch, interp) as ints; JobError naming a bad one."""
    num = _check_int('average: num', num, 1, MAX_AVERAGE_NUM)
    batch = _check_int('average: batch', batch, 1, 64)
    interp = _check_int('average: interp', interp, 1, 16)
    if not (isinstance(beta, int | float) and math.isfinite(beta) and beta >= 0):
        raise JobError(f'average: beta must be a finite number >= 0, got {beta!r}')
    if (mean is None) != (std is None) or (std is not None and not (math.isfinite(std) and std > 0)):
        raise JobError(f'average: give both mean and std (std > 0) or neither, got mean={mean!r} std={std!r}')
    return num, batch, interp


def _average_first_seed(request: Any, first_seed: Any, num: int) -> int:
    """The first seed of an average (default: the request's first seed); JobError when the seeds pass 2**32 - 1."""
    if first_seed is None:
        seed0 = int(request.w0_seeds[0][0])
    else:
        seed0 = _check_int('average: first_seed', first_seed, 0, 2**32 - 1)
    if seed0 + num - 1 > 2**32 - 1:
        raise JobError(f'average: seeds {seed0}..{seed0 + num - 1} exceed 2**32 - 1; lower first_seed or num')
    return seed0


def _measure_statistics(
    outputs: Callable[[list[int]], torch.Tensor],
    chunks: list[list[int]],
    steps: int,
    layer: str,
    progress_text: Callable[[str, list[int]], str],
) -> Generator[Progress, None, tuple[float, float, list[torch.Tensor] | None]]:
    """First pass of an average without given mean/std (as `avg_spectra.py calc` without them): the mean and std of
    every output value over all seeds, yielding Progress 1 .. len(chunks) of ``steps``.

    Returns:
        (mean, std, the outputs kept on the CPU for the second pass, or None when they exceed
        MAX_CACHED_IMAGE_BYTES and must be rendered again).

    Raises:
        JobError: constant outputs (std = 0).
    """
    total = total_sq = count = 0.0
    cache: list[torch.Tensor] | None = []
    cached_bytes = 0
    for done, seeds in enumerate(chunks, start=1):
        x = outputs(seeds)
        x64 = x.to(torch.float64)
        total += float(x64.sum())
        total_sq += float(x64.square().sum())
        count += x.numel()
        if cache is not None:
            cached_bytes += x.numel() * x.element_size()
            cache = cache + [x.cpu()] if cached_bytes <= MAX_CACHED_IMAGE_BYTES else None
        yield Progress(done, steps, progress_text('statistics', seeds))
    mean = total / count
    std = max(total_sq / count - mean * mean, 0.0) ** 0.5
    if not std > 0:
        raise JobError(f'average: the {layer} outputs are constant (std = {std}); nothing to analyse')
    return mean, std, cache


def view_spectrum_job(
    ctx: Any, *, request: Any, beta: float = 8.0, interp: int = 4, norm: Any = None
) -> Generator[Progress, None, dict]:
    """Job: the full avg_spectra spectrum of exactly what the request displays (for "Export npz").

    Args:
        ctx: the renderer's job context (`view_tensor`).
        request: the RenderRequest on screen.
        beta, interp: as `avg_spectra.py calc`.
        norm: (mean, std) for the final image (None: its own statistics); layers use their own.

    Returns:
        dict in the npz format (num = 1) plus `layer`.

    Raises:
        JobError: bad parameters or a network that fails to load.
    """
    interp = _check_int('export: interp', interp, 1, 16)
    if not (isinstance(beta, int | float) and math.isfinite(beta) and beta >= 0):
        raise JobError(f'export: beta must be a finite number >= 0, got {beta!r}')
    x, layer = ctx.view_tensor(request)
    is_image = layer == OUTPUT_LAYER
    mean, std = (float(norm[0]), float(norm[1])) if norm is not None and is_image else (None, None)
    yield Progress(0, 1, 'spectrum')
    spec = view_spectrum(
        x, is_image=is_image, mean=mean, std=std, beta=float(beta), interp=interp,
        source=f'{request.pkl or "default network"} seed {request.w0_seeds[0][0]} {layer}',
    )  # fmt: skip
    yield Progress(1, 1, 'spectrum')
    return dict(spec, layer=layer)


# ----------------------------------------------------------------------------------------------------------------
# Equivariance readout and "Measure" (a job).


def eq_input_matrix(user_transform, extent: float = 1.0) -> np.ndarray:
    """The input transform M = T^-1 of the user's transform T, in the units of a layer that spans `extent` image
    widths (1 for the final image): the translation is divided by `extent`, the linear part is unchanged.

    Args:
        user_transform: [3, 3] user transform (``RenderRequest.input_transform``).
        extent: the layer's width in image units (> 0).

    Returns:
        float64 [3, 3].
    """
    m = np.linalg.inv(np.asarray(user_transform, dtype=np.float64).reshape(3, 3))
    m[:2, 2] /= float(extent)
    return m


def eq_kind(matrix: np.ndarray, size: int, tol: float = 1e-6) -> str:
    """Which test of `metrics.equivariance` applies to an input transform: 'int' (a translation by whole pixels of
    a `size`-pixel image, EQ-T), 'frac' (any other translation, EQ-T frac) or 'affine' (rotation, scale, shear,
    mirror: EQ-R's band-limited resampling)."""
    m = np.asarray(matrix, dtype=np.float64)
    if not np.allclose(m[:2, :2], np.eye(2), rtol=0, atol=tol):
        return 'affine'
    shift_px = m[:2, 2] * size
    return 'int' if np.allclose(shift_px, np.round(shift_px), rtol=0, atol=tol * size) else 'frac'


def eq_readout(orig: torch.Tensor, img: torch.Tensor, matrix: np.ndarray) -> dict:
    """The live equivariance readout: `metrics.equivariance`'s per-sample computation for one sample.

    Alias-Free GAN (arXiv 2106.12423), sec. 3 and Appendix E: PSNR (peak 2, i.e. values in [-1, 1]) between the
    output rendered with input transform `matrix` and the identity output moved by the same transform, over the
    pixels where both are defined. This is the difference between the untransformed current output and the
    identity output, measured the way EQ-T / EQ-T frac / EQ-R measure it.

    Args:
        orig: identity-transform output [C, H, W] or [1, C, H, W] float (final image in [-1, 1], or a layer).
        img: output rendered with the transform, same shape.
        matrix: [3, 3] input transform in the output's own units (`eq_input_matrix`).

    Returns:
        dict(eq_psnr_db float dB, eq_kind 'int' | 'frac' | 'affine', eq_valid_frac float in [0, 1] -- the share of
        values compared; eq_psnr_db is NaN when no pixel is valid).
    """
    from metrics import equivariance as eq  # The metric is the definition (imported lazily: only the lab needs it).

    orig = orig.unsqueeze(0) if orig.ndim == 3 else orig
    img = img.unsqueeze(0) if img.ndim == 3 else img
    kind = eq_kind(matrix, int(orig.shape[-1]))
    se, count = eq.sample_squared_error(orig.to(torch.float32), img.to(torch.float32), matrix, kind)
    psnr = eq.psnr_db(se / count) if count > 0 else float('nan')
    return dict(eq_psnr_db=float(psnr), eq_kind=kind, eq_valid_frac=float(count) / float(img.numel()))


MEASURE_METRIC_FLAGS = {'eqt50k_int': 0, 'eqt50k_frac': 1, 'eqr50k': 2}  # calc_metrics.py's names -> test index


def measure_equivariance_job(
    ctx: Any,
    *,
    request: Any,
    num: int = 100,
    metrics: Any = tuple(MEASURE_METRIC_FLAGS),
    seed: int = 0,
    batch: int = 4,
) -> Generator[Progress, None, dict]:
    """Job: a short EQ-T / EQ-T frac / EQ-R run on the request's network, one batch per step.

    The batches are exactly `metrics.equivariance.compute_equivariance_metrics`' (same random draws per batch
    index, same tests), so the values equal `calc_metrics.py --metrics=eqt50k_int,eqt50k_frac,eqr50k --num=<num>`
    on the same network. The renderer's copy of G is used; its input transform is restored after every batch.

    Args:
        ctx: the renderer's job context.
        request: RenderRequest naming the network (pkl, trust, device).
        num: number of samples (1 .. MAX_MEASURE_NUM).
        metrics: names among 'eqt50k_int', 'eqt50k_frac', 'eqr50k'.
        seed: seed of the metric's random draws (0 as calc_metrics.py).
        batch: samples per batch (4 as calc_metrics.py; one transform per batch).

    Returns:
        dict(results {name: dB}, num_samples, total_time seconds, total_time_str, snapshot_pkl, timestamp).

    Raises:
        JobError: bad parameters, a network without input transform (StyleGAN2), no valid pixels.
    """
    import time

    from metrics import equivariance as eq
    from metrics.metric_main import format_time

    num = _check_int('measure: num', num, 1, MAX_MEASURE_NUM)
    batch = _check_int('measure: batch', batch, 1, 64)
    seed = _check_int('measure: seed', seed, 0, 2**32 - 1)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names or any(m not in MEASURE_METRIC_FLAGS for m in names):
        raise JobError(f'measure: metrics must be among {list(MEASURE_METRIC_FLAGS)}, got {metrics!r}')
    G, info, device = ctx.prepare(request)
    if not eq.has_input_transform(G):
        raise JobError('measure: equivariance needs an input transform (StyleGAN3 -T/-R); this network has none')
    flags = [any(MEASURE_METRIC_FLAGS[m] == i for m in names) for i in range(3)]
    t0 = time.time()
    transform = G.synthesis.input.transform
    saved = transform.clone()
    sums = torch.zeros([3, 2], dtype=torch.float64)
    num_batches = -(-num // batch)
    for b in range(num_batches):
        n = min(batch, num - b * batch)
        try:
            with torch.no_grad():
                sums += eq.batch_squared_errors(G, b, n, seed=seed, flags=flags, device=device)
        finally:
            transform.copy_(saved)
        yield Progress(b + 1, num_batches, f'{b * batch + n}/{num} samples')
    if any(f and sums[i, 1] == 0 for i, f in enumerate(flags)):
        raise JobError(f'measure: no valid pixels to compare (image {G.img_resolution} px is too small)')
    results = {m: eq.psnr_db(float(sums[MEASURE_METRIC_FLAGS[m], 0] / sums[MEASURE_METRIC_FLAGS[m], 1])) for m in names}
    total = time.time() - t0
    return dict(
        results=results, num_samples=num, total_time=total, total_time_str=format_time(total),
        snapshot_pkl=info.resolved_path, timestamp=time.time(),
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Per-render lab outputs (called by engine.renderer).

LAB_REQUEST_DEFAULTS = dict(lab_spectrum=False, lab_beta=8.0, lab_interp=4, lab_norm=None, lab_eq=False)


def _identity_key(net_key: Any, req: Any, layer: str) -> tuple:
    """Everything but the input transform that decides a layer's output."""
    return (
        net_key, tuple(req.w0_seeds), getattr(req, 'seed_blend', 'w'), req.class_idx, tuple(req.stylemix_idx),
        req.stylemix_seed, getattr(req, 'stylemix_weight', 1.0), req.trunc_psi, req.trunc_cutoff, req.noise_mode,
        req.noise_seed, bool(req.force_fp32), layer, getattr(req, 'ws', None),
    )  # fmt: skip


class LabView:
    """The lab's part of one render: the live spectrum profiles and the EQ readout (``RenderResult.lab``).

    Keeps the identity-transform output of the last latent/layer, so that moving the translate/rotate sliders costs
    one extra synthesis only when the latent or layer changes.
    """

    def __init__(self) -> None:
        self._identity_key: tuple | None = None
        self._identity: torch.Tensor | None = None

    def compute(
        self,
        req: Any,
        *,
        net_key: Any,
        has_input_transform: bool,
        layer: str,
        x_raw: torch.Tensor,
        x_view: torch.Tensor,
        extent: float,
        render_identity: Any,
    ) -> dict | None:
        """The lab dict of a render, or None when the request asks for nothing.

        Args:
            req: the RenderRequest (fields `lab_spectrum`, `lab_beta`, `lab_interp`, `lab_norm`, `lab_eq`).
            net_key: identifies the loaded network (cache key).
            has_input_transform: the network is a StyleGAN3 (the readout needs the input transform).
            layer: shown layer ('output' = final image).
            x_raw: the layer's output [C, H, W] float32 rendered with the request's transform (sample 0).
            x_view: what is displayed: x_raw, untransformed when `req.untransform`.
            extent: the layer's width in image units (1 for the final image).
            render_identity: `() -> [C, H, W]` the same layer rendered with the identity transform.

        Returns:
            None, or one flat dict of plain values (``RenderResult.lab``): ``layer``; with ``lab_spectrum`` the keys
            of `live_profiles`; with ``lab_eq`` and a non-identity transform on a StyleGAN3 ``eq_psnr_db`` (dB, None
            when no pixel is valid), ``eq_kind``, ``eq_valid_frac``.
        """
        if not (req.lab_spectrum or req.lab_eq):
            return None
        out: dict = {'layer': layer}
        is_image = layer == OUTPUT_LAYER
        if req.lab_spectrum and x_view.shape[-1] == x_view.shape[-2]:
            norm = req.lab_norm if is_image and req.lab_norm is not None else (None, None)
            spec = view_spectrum(
                x_view, is_image=is_image, mean=norm[0], std=norm[1], beta=float(req.lab_beta),
                interp=live_interp(int(x_view.shape[-1]), int(req.lab_interp)), source=layer,
            )  # fmt: skip
            out.update(live_profiles(spec))
        if req.lab_eq and has_input_transform and req.input_transform is not None:
            key = _identity_key(net_key, req, layer)
            if key != self._identity_key or self._identity is None:
                self._identity = render_identity()
                self._identity_key = key
            matrix = eq_input_matrix(req.input_transform, extent)
            eq = eq_readout(self._identity, x_raw, matrix)
            eq['eq_psnr_db'] = eq['eq_psnr_db'] if math.isfinite(eq['eq_psnr_db']) else None
            out.update(eq)
        return out
