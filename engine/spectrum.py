"""Power spectra of images: the maths of `avg_spectra.py` and the visualizer's FFT view.

Source: Karras et al. 2021, "Alias-Free Generative Adversarial Networks", arXiv 2106.12423, Appendix (spectral
analysis of the training data and generators) and Fig. 15 (average power spectra as heatmaps and as 0/45-degree
slices). docs/compatibility.md §6 (FFT view) and §7 (avg_spectra).

Conventions used everywhere in this module:
- Images are [N, C, H, W] (or [C, H, W]) tensors on any device; any real dtype (uint8 included) is converted to
  float32 for the FFT.
- An *unshifted* spectrum has the DC term at index [0, 0] (torch/numpy FFT order); a *centred* one has DC at
  [S // 2, S // 2] (fftshift).
- Frequencies are in cycles per pixel of the original image, in [-0.5, 0.5); zero padding to `res * interp` only
  samples the same spectrum more finely (bin width 1 / (res * interp) cycles/pixel).
- Powers are linear unless the name says `_db` (10 * log10 of the power).

No GUI imports here (engine/ never imports imgui/glfw/OpenGL). The numpy-only parts (npz files, dB maps, slices,
radial profiles) live in `engine.spectrum_io` and are re-exported here.
"""

from __future__ import annotations

import torch

from engine import spectrum_io as _io
from engine.spectrum_io import (  # noqa: F401 -- re-exported: the numpy half of this module's API
    DB_FLOOR,
    center_spectrum,
    centered_freqs,
    radial_average,
    radial_slices,
    smooth_db,
    spectrum_profiles,
)

# ----------------------------------------------------------------------------
# Windows.


def kaiser_window_2d(
    height: int, width: int, beta: float = 8.0, *, unit_energy: bool = True, device: torch.device | str = 'cpu'
) -> torch.Tensor:
    """Separable 2-D Kaiser window (outer product of two symmetric 1-D Kaiser windows).

    With `unit_energy`, each 1-D window is scaled so that sum(w^2) = 1, hence the 2-D window also has unit
    energy and the windowed power spectrum of unit-variance white noise is 1 (0 dB) at every frequency
    (Alias-Free GAN, Appendix: spectra are computed with a Kaiser window, beta = 8).

    Args:
        height: H in pixels (>= 1).
        width: W in pixels (>= 1).
        beta: Kaiser shape parameter (>= 0); 0 is a rectangular window.
        unit_energy: scale to sum(w^2) = 1.
        device: device of the result.

    Returns:
        torch.Tensor float32 [H, W] on `device`.

    Raises:
        ValueError: non-positive size or negative beta.
    """
    if height < 1 or width < 1:
        raise ValueError(f'kaiser_window_2d(): height and width must be >= 1, got {height}x{width}')
    if not beta >= 0:
        raise ValueError(f'kaiser_window_2d(): beta must be >= 0, got {beta}')
    wins = []
    for n in (height, width):
        w = torch.kaiser_window(n, periodic=False, beta=float(beta), dtype=torch.float64)  # built on CPU
        if unit_energy:
            w = w / w.square().sum().sqrt()
        wins.append(w)
    return torch.outer(wins[0], wins[1]).to(device=device, dtype=torch.float32)


# ----------------------------------------------------------------------------
# avg_spectra maths (docs/compatibility.md §7).


def _check_power_args(func: str, images: torch.Tensor, std: float, interp: int) -> None:
    if images.ndim != 4:
        raise ValueError(f'{func}(): images must be [N, C, H, W], got shape {list(images.shape)}')
    if not std > 0:
        raise ValueError(f'{func}(): std must be > 0, got {std}; run `avg_spectra.py stats` to measure it')
    if int(interp) != interp or interp < 1:
        raise ValueError(f'{func}(): interp must be an integer >= 1, got {interp}')


def power_spectra(images: torch.Tensor, *, mean: float, std: float, beta: float = 8.0, interp: int = 4) -> torch.Tensor:
    """Per-image windowed, zero-padded power spectra averaged over channels (unshifted).

    For each image: x = (img - mean) / std; x *= Kaiser window (unit energy); zero-pad to
    [H * interp, W * interp]; P = |FFT2(x)|^2 averaged over channels (Alias-Free GAN, Appendix / Fig. 15).

    Args:
        images: [N, C, H, W] on any device, any real dtype, pixel values on the 0..255 scale.
        mean: dataset mean on the 0..255 scale (`avg_spectra.py stats`).
        std: dataset standard deviation on the 0..255 scale (> 0).
        beta: Kaiser window beta (>= 0).
        interp: zero-padding factor (>= 1); spectrum size S = H * interp.

    Returns:
        torch.Tensor float32 [N, H * interp, W * interp] on the images' device, linear power (unitless; 1 is the
        level of unit-variance white noise), DC at [0, 0].

    Raises:
        ValueError: wrong rank, std <= 0 or interp < 1.
    """
    _check_power_args('power_spectra', images, std, interp)
    return _expand_half_spectrum(_half_power_spectra(images, mean, std, beta, interp), w=images.shape[3] * int(interp))


def _half_power_spectra(images: torch.Tensor, mean: float, std: float, beta: float, interp: int) -> torch.Tensor:
    # [N, C, H, W] -> [N, Sh, Sw // 2 + 1]: the non-negative horizontal frequencies of the channel-mean power.
    # Same numbers as |fft2(x, s=(Sh, Sw))|^2, computed as a real FFT along W over the H non-zero rows only and then
    # a complex FFT along H: about 3x less work than transforming the zero-padded array.
    _n, _c, h, w = images.shape
    x = (images.to(torch.float32) - float(mean)) / float(std)  # [N, C, H, W]
    x = x * kaiser_window_2d(h, w, beta, device=images.device)  # [N, C, H, W]
    spec = torch.fft.rfft(x, n=w * int(interp), dim=3)  # [N, C, H, Sw // 2 + 1] complex64
    spec = torch.fft.fft(spec, n=h * int(interp), dim=2)  # [N, C, Sh, Sw // 2 + 1]
    return spec.real.square().add_(spec.imag.square()).mean(dim=1)  # [N, Sh, Sw // 2 + 1]


def _expand_half_spectrum(half: torch.Tensor, w: int) -> torch.Tensor:
    # The power spectrum of a real signal is point-symmetric: P[i, j] = P[-i mod Sh, -j mod Sw].
    sh = half.shape[-2]
    rows = (-torch.arange(sh, device=half.device)) % sh  # [Sh]
    cols = w - torch.arange(half.shape[-1], w, device=half.device)  # [Sw - (Sw // 2 + 1)]
    right = half[..., rows, :][..., cols]  # [..., Sh, Sw - Sw // 2 - 1]
    return torch.cat([half, right], dim=-1)  # [..., Sh, Sw]


def power_spectrum_sum(
    images: torch.Tensor, *, mean: float, std: float, beta: float = 8.0, interp: int = 4
) -> torch.Tensor:
    """Sum over the batch of `power_spectra(...)`, for accumulating averages over many batches.

    Returns:
        torch.Tensor float64 [H * interp, W * interp] on the CPU (unshifted, linear power).

    Raises:
        ValueError: as `power_spectra`.
    """
    _check_power_args('power_spectrum_sum', images, std, interp)
    half = _half_power_spectra(images, mean, std, beta, interp).sum(dim=0)  # [Sh, Sw // 2 + 1]
    return _expand_half_spectrum(half.to('cpu', torch.float64), w=images.shape[3] * int(interp))


def to_db(power, floor: float = DB_FLOOR):
    """10 * log10(max(power, floor)) for numpy arrays or torch tensors (same type out). Units: dB."""
    if isinstance(power, torch.Tensor):
        return 10.0 * torch.log10(power.clamp_min(floor))
    return _io.to_db(power, floor)


def power_spectrum_sum_chunked(
    x: torch.Tensor, *, mean: float, std: float, beta: float = 8.0, interp: int = 4, max_elems: int = 1 << 24
) -> torch.Tensor:
    """`power_spectrum_sum` of wide layer outputs, channels processed in chunks to bound memory.

    The channel mean of the power is the same as `power_spectrum_sum` (the chunks' channel sums divided by C); with
    C * S * S <= max_elems per image it *is* `power_spectrum_sum`, so the final image gets avg_spectra's numbers
    bit for bit.

    Args:
        x: [N, C, H, W] real tensor on any device (pixels on the 0..255 scale for images; any scale for layers,
            given a matching mean and std).
        mean, std: normalisation (x - mean) / std; std > 0.
        beta: Kaiser window beta (>= 0).
        interp: zero-padding factor (>= 1).
        max_elems: upper bound on complex spectrum elements per chunk (memory knob).

    Returns:
        torch.Tensor float64 [H * interp, W * interp] on the CPU (unshifted, linear power, summed over N).

    Raises:
        ValueError: as `power_spectra`.
    """
    _check_power_args('power_spectrum_sum_chunked', x, std, interp)
    n, c, h, w = x.shape
    per_channel = n * (h * int(interp)) * (w * int(interp) // 2 + 1)
    step = max(1, int(max_elems) // max(per_channel, 1))
    if step >= c:
        return power_spectrum_sum(x, mean=mean, std=std, beta=beta, interp=interp)
    half = None
    for start in range(0, c, step):
        part = x[:, start : start + step]  # [N, c', H, W]
        p = _half_power_spectra(part, mean, std, beta, interp).sum(dim=0).to('cpu', torch.float64) * part.shape[1]
        half = p if half is None else half + p
    assert half is not None
    return _expand_half_spectrum(half / c, w=w * int(interp))


# ----------------------------------------------------------------------------
# Visualizer FFT view (docs/compatibility.md §6).


def layer_spectrum_db(x: torch.Tensor, beta: float = 8.0) -> torch.Tensor:
    """Relative power spectrum of a layer output for the visualizer's FFT view, in dB.

    Per-channel (and per-image) mean removed, separable Kaiser window (`beta`), |FFT2|^2 summed over channels
    (and images), centred (fftshift: DC at [H // 2, W // 2]), divided by its mean, 10 * log10. 0 dB is the mean
    power; the view shows +-range dB around it. Values are floored at -100 dB (an all-constant input gives
    -100 dB everywhere). Source: Alias-Free GAN (arXiv 2106.12423), Appendix, spectral analysis of features.

    Args:
        x: [C, H, W] or [N, C, H, W] real tensor on any device (float16/bfloat16 are computed in float32).
        beta: Kaiser window beta (>= 0; 0 = no window).

    Returns:
        torch.Tensor float32 [H, W] in dB on the device of `x`; frequency of pixel (i, j) is
        ((i - H // 2) / H, (j - W // 2) / W) cycles/pixel.

    Raises:
        ValueError: x is not 3-D or 4-D, or beta < 0.
    """
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f'layer_spectrum_db(): x must be [C, H, W] or [N, C, H, W], got shape {list(x.shape)}')
    h, w = x.shape[-2:]
    x = x.detach().to(torch.float32)
    x = x - x.mean(dim=(2, 3), keepdim=True)  # [N, C, H, W]
    x = x * kaiser_window_2d(h, w, beta, unit_energy=False, device=x.device)
    spec = torch.fft.fft2(x)  # [N, C, H, W] complex64
    power = spec.real.square().add_(spec.imag.square()).sum(dim=(0, 1))  # [H, W]
    power = torch.fft.fftshift(power, dim=(0, 1))
    power = power / power.mean().clamp_min(torch.finfo(torch.float32).tiny)
    return to_db(power)
