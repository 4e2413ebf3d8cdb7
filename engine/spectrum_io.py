"""The numpy-only half of the spectrum engine: the avg_spectra npz format, dB maps, slices and radial profiles.

`engine.spectrum` (torch) computes power spectra; this module turns a spectrum into the curves that
`avg_spectra.py slices` draws and that the visualizer's spectral lab plots, and reads/writes the npz files. It imports
only numpy (scipy lazily, for smoothing), so the GUI process -- which never imports torch -- uses it directly and the
numbers in the window are the CLI's numbers.

Source: Karras et al. 2021, "Alias-Free Generative Adversarial Networks", arXiv 2106.12423, Appendix (spectral
analysis) and Fig. 15 (average power spectra as heatmaps and as 0/45-degree slices).

Conventions (shared with `engine.spectrum`):
- An *unshifted* spectrum has the DC term at index [0, 0]; a *centred* one at [S // 2, S // 2] (fftshift).
- Frequencies are in cycles per pixel of the original image; Nyquist is 0.5. Zero padding to `res * interp` samples
  the same spectrum more finely (bin width 1 / (res * interp) cycles/pixel).
- Powers are linear unless the name says `_db` (10 * log10 of the power, floored at DB_FLOOR).

Spectrum npz format (`avg_spectra.py calc`): `spectrum` float64 [S, S] unshifted linear power (1 = the level of
unit-variance white noise after normalising pixels by (x - mean) / std), `image_size` int64, and metadata scalars
`beta`, `interp`, `num`, `mean`, `std`, `source`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile

import numpy as np

from engine.atomic_files import atomic_write_bytes

DB_FLOOR = 1e-10  # Powers below this are clamped before 10*log10 (i.e. -100 dB).
NYQUIST = 0.5  # cycles/pixel
SPECTRUM_META_KEYS = ('beta', 'interp', 'num', 'mean', 'std', 'source')
CSV_HEADER = ('file', 'angle_deg', 'freq_cycles_per_px', 'power_db')


def to_db(power, floor: float = DB_FLOOR) -> np.ndarray:
    """10 * log10(max(power, floor)) of a numpy array (any shape), float64. Units: dB."""
    return 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), floor))


def center_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """fftshift over the last two axes: DC moves from [0, 0] to [S // 2, S // 2]. Any shape [..., S, S]."""
    return np.fft.fftshift(np.asarray(spectrum), axes=(-2, -1))


def centered_freqs(size: int) -> np.ndarray:
    """Frequencies of the centred spectrum axis of length S: (i - S // 2) / S cycles/pixel, float64 [S]."""
    return (np.arange(size, dtype=np.float64) - size // 2) / size


def smooth_db(hmap_db: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a (centred) dB map; `sigma` in bins of the padded spectrum (0 = none).

    Smoothing happens in the dB domain so that a few strong peaks do not dominate their neighbourhood.

    Args:
        hmap_db: float [S, S] in dB.
        sigma: standard deviation in spectrum bins (1 bin = 1 / S cycles/pixel), >= 0.

    Returns:
        np.ndarray float64 [S, S] in dB.

    Raises:
        ValueError: negative sigma.
    """
    if not sigma >= 0:
        raise ValueError(f'smooth_db(): sigma must be >= 0, got {sigma}')
    hmap_db = np.asarray(hmap_db, dtype=np.float64)
    if sigma == 0:
        return hmap_db
    import scipy.ndimage  # lazy: only smoothing needs it

    return scipy.ndimage.gaussian_filter(hmap_db, sigma=float(sigma), mode='nearest')


def _check_square(func: str, name: str, a: np.ndarray) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f'{func}(): {name} must be a square 2-D array of size >= 2, got shape {list(a.shape)}')


def radial_slices(hmap_db: np.ndarray) -> dict[str, np.ndarray]:
    """0-degree and 45-degree slices of a centred spectrum, from DC outwards (Alias-Free GAN, Fig. 15 right).

    The 0-degree slice is the horizontal-frequency axis (row S // 2, columns S // 2 .. S - 1); the 45-degree slice
    is the main diagonal from the centre to the corner. Radial frequency r = sqrt(fx^2 + fy^2).

    Args:
        hmap_db: centred spectrum [S, S] (dB or linear; values are passed through).

    Returns:
        dict(freq_0 [S - S//2] cycles/pixel (0 .. 0.5), slice_0 [S - S//2], freq_45 [S - S//2] cycles/pixel
        (0 .. ~0.707), slice_45 [S - S//2]); float64 numpy arrays.

    Raises:
        ValueError: not a square 2-D array.
    """
    hmap_db = np.asarray(hmap_db, dtype=np.float64)
    if hmap_db.ndim != 2 or hmap_db.shape[0] != hmap_db.shape[1]:
        raise ValueError(f'radial_slices(): hmap_db must be a square 2-D array, got shape {list(hmap_db.shape)}')
    s = hmap_db.shape[0]
    c = s // 2
    k = np.arange(s - c, dtype=np.float64)
    return dict(
        freq_0=k / s,
        slice_0=hmap_db[c, c:].copy(),
        freq_45=k * math.sqrt(2) / s,
        slice_45=np.diagonal(hmap_db)[c:].copy(),
    )


def radial_average(hmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power of a centred *linear* spectrum: the mean over rings of width one bin.

    Ring k holds the bins whose radial frequency r = sqrt(fx^2 + fy^2) rounds to k / S (k = 0 .. the corner,
    floor(S / sqrt(2)) + 1 rings); beyond Nyquist (0.5) the rings are partial (only the corners of the square).
    Averaging happens on linear power (the mean energy per ring), so that a ring's level does not depend on how
    its power is spread.

    Args:
        hmap: centred spectrum [S, S], linear power (>= 0).

    Returns:
        (freq_r float64 [K] cycles/pixel, power float64 [K] linear mean power per ring).

    Raises:
        ValueError: not a square 2-D array.
    """
    hmap = np.asarray(hmap, dtype=np.float64)
    _check_square('radial_average', 'hmap', hmap)
    s = hmap.shape[0]
    f = centered_freqs(s)
    ring = np.rint(np.hypot(f[None, :], f[:, None]) * s).astype(np.int64)  # [S, S] ring index
    total = np.bincount(ring.ravel(), weights=hmap.ravel())
    count = np.bincount(ring.ravel())
    keep = count > 0
    k = np.arange(len(count), dtype=np.float64)[keep]
    return k / s, total[keep] / count[keep]


def spectrum_profiles(spectrum: np.ndarray, *, smooth: float = 0.0) -> dict[str, np.ndarray]:
    """Every curve of the radial plot from one unshifted linear spectrum, in dB.

    The slices are exactly `avg_spectra.py slices`' (centre, 10 log10, optional Gaussian smoothing of the dB map,
    `radial_slices`); the radial average is the ring mean of the linear power (`radial_average`) in dB.

    Args:
        spectrum: unshifted linear power [S, S] (e.g. `load_spectrum(path)['spectrum']`).
        smooth: Gaussian sigma in spectrum bins applied to the dB map before slicing (0 = none; the radial
            average is never smoothed).

    Returns:
        dict(freq_0, slice_0, freq_45, slice_45, freq_r, radial) of float64 arrays; frequencies in cycles/pixel,
        levels in dB.

    Raises:
        ValueError: not a square 2-D array, or negative smooth.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    _check_square('spectrum_profiles', 'spectrum', spectrum)
    centred = center_spectrum(spectrum)
    out = radial_slices(smooth_db(to_db(centred), smooth))
    freq_r, power_r = radial_average(centred)
    out.update(freq_r=freq_r, radial=to_db(power_r))
    return out


def profile_rows(label: str, profiles: dict[str, np.ndarray], *, radial: bool = False) -> list[tuple]:
    """CSV rows (label, angle_deg, freq cycles/pixel, power dB) of the 0- then 45-degree slices, then (with
    `radial`) the radial average with angle 'avg'. The columns are `CSV_HEADER`."""
    rows: list[tuple] = [(label, 0, float(f), float(v)) for f, v in zip(profiles['freq_0'], profiles['slice_0'])]
    rows += [(label, 45, float(f), float(v)) for f, v in zip(profiles['freq_45'], profiles['slice_45'])]
    if radial:
        rows += [(label, 'avg', float(f), float(v)) for f, v in zip(profiles['freq_r'], profiles['radial'])]
    return rows


# ----------------------------------------------------------------------------
# Files (written atomically: a temporary file in the same folder, then os.replace).


def save_spectrum(path: str, result: dict) -> None:
    """Writes a spectrum npz atomically: spectrum [S, S] float64 + image_size + metadata arrays.

    Args:
        path: destination file (folders are created).
        result: dict with `spectrum` [S, S], `image_size` and the metadata keys `SPECTRUM_META_KEYS`.

    Raises:
        KeyError: a key is missing. OSError: the file cannot be written.
    """
    buf = io.BytesIO()
    np.savez(
        buf, spectrum=np.asarray(result['spectrum'], dtype=np.float64), image_size=np.int64(result['image_size']),
        beta=np.float64(result['beta']), interp=np.int64(result['interp']), num=np.int64(result['num']),
        mean=np.float64(result['mean']), std=np.float64(result['std']), source=np.str_(result['source']),
    )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue())


def save_rows_csv(path: str, rows: list[tuple]) -> None:
    """Writes `CSV_HEADER` and `rows` to a CSV file atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def load_spectrum(path: str) -> dict:
    """Reads a spectrum npz (ours or the reference tools'), never unpickling.

    Returns:
        dict(spectrum float64 [S, S], image_size int, and whichever of `SPECTRUM_META_KEYS` the file has).

    Raises:
        ValueError: one clear line for a missing, unreadable or malformed file.
    """
    hint = 'make one with `avg_spectra.py calc`'
    if not os.path.isfile(path):
        raise ValueError(f'avg_spectra: spectrum file does not exist: {path!r}')
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f'avg_spectra: {path!r} is not an .npz spectrum file ({e}); {hint}') from e
    if not isinstance(data, np.lib.npyio.NpzFile):  # a plain .npy array
        raise ValueError(f'avg_spectra: {path!r} is a single .npy array, not an .npz spectrum file; {hint}')
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f'avg_spectra: {path!r} is not an .npz spectrum file ({e}); {hint}') from e
    spec = arrays.get('spectrum')
    if spec is None or 'image_size' not in arrays:
        raise ValueError(
            f'avg_spectra: {path!r} is not a spectrum file: needs arrays "spectrum" and "image_size", '
            f'found {sorted(arrays)}; {hint}'
        )
    if spec.ndim != 2 or spec.shape[0] != spec.shape[1] or not np.issubdtype(spec.dtype, np.floating):
        raise ValueError(
            f'avg_spectra: "spectrum" in {path!r} must be a square float [S, S] array, got {spec.dtype} '
            f'{list(spec.shape)}; {hint}'
        )
    image_size = arrays['image_size']
    if image_size.size != 1 or not np.issubdtype(image_size.dtype, np.number) or not 0 < image_size.item() <= 1 << 16:
        raise ValueError(
            f'avg_spectra: "image_size" in {path!r} must be one positive number, got {image_size.dtype} '
            f'{image_size.tolist()}; {hint}'
        )
    out = dict(spectrum=spec.astype(np.float64), image_size=int(image_size.item()))
    for k in SPECTRUM_META_KEYS:
        if k in arrays and arrays[k].size == 1:
            out[k] = arrays[k].item()
    return out
