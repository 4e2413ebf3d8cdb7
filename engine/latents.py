"""Seeds, latents and user transforms, exactly as the reference tools derive them (docs/compatibility.md §3, §6)."""

from __future__ import annotations

import math
import re

import numpy as np


def _check_seed(func: str, seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f'{func}(): seed must be an integer in [0, 2**32), got {seed!r}')
    return int(seed)


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The latent of a seed: `np.random.RandomState(seed).randn(1, z_dim)` as float32 (same seed, same image).

    Returns:
        z: [1, z_dim] float32, standard normal.

    Raises:
        ValueError: On a seed outside [0, 2**32) or a negative z_dim.
    """
    seed = _check_seed('z_from_seed', seed)
    if int(z_dim) < 0:
        raise ValueError(f'z_from_seed(): z_dim must be >= 0, got {z_dim}')
    return np.random.RandomState(seed).randn(1, int(z_dim)).astype(np.float32)


def class_from_seed(seed: int, c_dim: int, z_dim: int = 512) -> int:
    """The class a conditional network draws for a seed: `rnd.randint(c_dim)` from the seed's RandomState, drawn
    right after `rnd.randn(1, z_dim)` (as the reference visualizer does).

    Raises:
        ValueError: On a bad seed or c_dim < 1.
    """
    seed = _check_seed('class_from_seed', seed)
    if int(c_dim) < 1:
        raise ValueError(f'class_from_seed(): c_dim must be >= 1 (a conditional network), got {c_dim}')
    rnd = np.random.RandomState(seed)
    rnd.randn(1, int(z_dim))
    return int(rnd.randint(int(c_dim)))


MAX_RANGE_COUNT = 1_000_000  # parse_range(): most values one range string may expand to


def parse_range(s: str | int | list[int], max_count: int = MAX_RANGE_COUNT) -> list[int]:
    """Parses a list of integers and inclusive ranges, e.g. `'0,3,5-9'` -> `[0, 3, 5, 6, 7, 8, 9]`.

    Args:
        s: The text (or an int / list of ints).
        max_count: Most values the result may hold (checked before a range is expanded, so `0-99999999999` fails
            at once instead of exhausting memory).

    Raises:
        ValueError: On anything else (the message shows the expected form), or more than `max_count` values.
    """
    if isinstance(s, (list, tuple)):
        return [int(x) for x in s]
    if isinstance(s, (int, np.integer)):
        return [int(s)]
    values: list[int] = []
    for part in str(s).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)\s*-\s*(\d+)', part)
        if m and int(m.group(1)) <= int(m.group(2)):
            lo, hi = int(m.group(1)), int(m.group(2))
            if len(values) + hi - lo + 1 > max_count:
                raise ValueError(
                    f'parse_range(): {s!r} has more than {max_count:,} values (limit); ask for fewer, e.g. {lo}-'
                    f'{lo + min(max_count, 1000) - 1}'
                )
            values.extend(range(lo, hi + 1))
        elif re.fullmatch(r'-?\d+', part):
            if len(values) >= max_count:
                raise ValueError(f'parse_range(): {str(s)[:60]!r} has more than {max_count:,} values (limit)')
            values.append(int(part))
        else:
            raise ValueError(
                f"parse_range(): value must be integers and ranges like '0,3,5-9', got {s!r} (bad part {part!r})"
            )
    return values


def parse_vec2(s: str | tuple[float, float]) -> tuple[float, float]:
    """Parses a 2-vector `'0.1,0.2'` -> `(0.1, 0.2)`.

    Raises:
        ValueError: If it is not two comma-separated finite numbers (NaN and infinities are refused).
    """
    try:
        parts = list(s) if isinstance(s, (tuple, list)) else str(s).split(',')
        if len(parts) != 2:
            raise ValueError(s)
        x, y = float(parts[0]), float(parts[1])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"parse_vec2(): value must be two numbers like '0.1,0.2', got {s!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f'parse_vec2(): value must be two finite numbers, got {s!r}')
    return (x, y)


def make_transform(
    translate: tuple[float, float] = (0.0, 0.0),
    angle_deg: float = 0.0,
    *,
    scale: float = 1.0,
    shear: float = 0.0,
    mirror: bool = False,
) -> np.ndarray:
    """The user's input transform as a 3x3 matrix (docs/compatibility.md §3), extended by scale, shear and mirror.

    `T = [[L, t], [0, 0, 1]]` with linear part `L = R @ Sh @ S @ F`, applied to the content right to left: mirror
    `F = diag(-1, 1)` (when `mirror`; left and right swap), isotropic scale `S = diag(s, s)` (s > 1 enlarges),
    horizontal shear `Sh = [[1, k], [0, 1]]`, rotation `R = [[cos a, sin a], [-sin a, cos a]]`, then the
    translation t in units where the image spans 1. With the defaults this is the reference's rotation +
    translation. An SG3 generator takes its *inverse*:
    `G.synthesis.input.transform.copy_(torch.from_numpy(np.linalg.inv(m)))`, so its output is `out(T^-1 p)`.

    Args:
        translate: (tx, ty) in image widths.
        angle_deg: Rotation in degrees.
        scale: Isotropic scale factor (finite, > 0).
        shear: Horizontal shear k (finite): x += k * y.
        mirror: Mirror left-right first.

    Returns:
        [3, 3] float64 matrix.

    Raises:
        ValueError: scale not finite and > 0, or shear not finite.
    """
    if not (math.isfinite(float(scale)) and float(scale) > 0):
        raise ValueError(f'make_transform(): scale must be a finite number > 0, got {scale!r}')
    if not math.isfinite(float(shear)):
        raise ValueError(f'make_transform(): shear must be a finite number, got {shear!r}')
    a = math.radians(float(angle_deg))
    tx, ty = (float(t) for t in translate)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    lin = rot @ np.array([[1.0, float(shear)], [0.0, 1.0]]) * float(scale)
    if mirror:
        lin = lin @ np.diag([-1.0, 1.0])
    m = np.eye(3)
    m[:2, :2] = lin
    m[0][2] = tx
    m[1][2] = ty
    return m


def zc_from_seeds(seeds, z_dim: int, c_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Latents and one-hot classes of a batch of seeds: row i is `z_from_seed(seeds[i], z_dim)` and, for a
    conditional network (c_dim > 0), a one-hot of `class_from_seed(seeds[i], c_dim, z_dim)` (zeros otherwise).

    Returns:
        z: [n, z_dim] float32; c: [n, c_dim] float32.

    Raises:
        ValueError: On a bad seed or a negative z_dim.
    """
    seeds = list(seeds)
    z = np.zeros([0, int(z_dim)], np.float32)
    if seeds:
        z = np.concatenate([z_from_seed(s, z_dim) for s in seeds])
    c = np.zeros([len(seeds), int(c_dim)], np.float32)
    if c_dim > 0:
        for i, s in enumerate(seeds):
            c[i, class_from_seed(s, c_dim, z_dim)] = 1
    return z, c


SLERP_PARALLEL_SIN = 1e-7  # sin(angle) below this: the vectors are (anti)parallel and slerp falls back to lerp


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation of two latent vectors (Shoemake, "Animating rotation with quaternion curves",
    SIGGRAPH 1985; for GAN latents White, "Sampling Generative Networks", 2016, Sec. 2.1)::

        omega = arccos(a . b / (|a| |b|))
        slerp(a, b, t) = sin((1 - t) * omega) / sin(omega) * a + sin(t * omega) / sin(omega) * b

    It follows the great circle through the two directions at constant angular speed, so a path between two
    Gaussian z keeps their typical norm (a straight line passes closer to the origin, where z is rare). t = 0 and
    t = 1 give ``a`` and ``b`` exactly. When the vectors are (anti)parallel (``sin(omega)`` < 1e-7; e.g. z_dim 1) the
    great circle is not unique and the result is the lerp ``(1 - t) * a + t * b``.

    Args:
        a, b: latents of equal shape [..., D] (usually [z_dim]), any float dtype; not all zero.
        t: fraction in [0, 1] (values outside extrapolate along the circle).

    Returns:
        float64 array of the shape of ``a``.

    Raises:
        ValueError: different shapes, a zero vector, or a non-finite ``t``.
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f'slerp(): a and b must have the same shape, got {a64.shape} and {b64.shape}')
    if not math.isfinite(float(t)):
        raise ValueError(f'slerp(): t must be finite, got {t!r}')
    t = float(t)
    if t == 0.0:
        return a64.copy()
    if t == 1.0:
        return b64.copy()
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        raise ValueError('slerp(): a and b must be non-zero vectors (the angle between them is undefined)')
    cos = float(np.clip(np.dot(a64.ravel(), b64.ravel()) / (na * nb), -1.0, 1.0))
    omega = math.acos(cos)
    s = math.sin(omega)
    if s < SLERP_PARALLEL_SIN:
        return (1.0 - t) * a64 + t * b64
    return (math.sin((1.0 - t) * omega) / s) * a64 + (math.sin(t * omega) / s) * b64
