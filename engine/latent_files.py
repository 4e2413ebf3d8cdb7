"""Latent files in and out: W / W+ latents as `.npy` / `.npz`, in the projector format of the reference tools.

Written files are `.npz` with `w` = ws [1, num_ws, w_dim] float32 (what the reference projector saves and the
reference `generate.py --projected-w` reads) plus `state_json`, a JSON text of the state that produced them
(network, seeds, truncation, ...). Read files may be `.npy` or `.npz` (key `w` or `ws`, or the only array) of
shape [num_ws, w_dim] (one W+ latent), [1, num_ws, w_dim], [w_dim] (one W, broadcast to every layer) or
[N, num_ws, w_dim] (several latents: projector batches, video frames). Files are read with `allow_pickle=False`:
nothing in them is executed. Writes are atomic (temporary file renamed into place).

Example::

    from engine.latent_files import read_ws, write_ws
    write_ws('me.npz', ws, state={'pkl': 'ffhq.pkl', 'w0_seeds': [[42, 1.0]]})
    ws = read_ws('me.npz', num_ws=G.num_ws, w_dim=G.w_dim)  # [num_ws, w_dim] float32
"""

from __future__ import annotations

import json
import os
import pathlib
import zipfile
from typing import Any

import numpy as np

from engine.atomic_files import atomic_path

__all__ = ['LatentFileError', 'read_latent_state', 'read_latents', 'read_ws', 'write_ws']

LATENT_KEYS = ('w', 'ws')
STATE_KEY = 'state_json'
MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any latent sequence a tool renders.


class LatentFileError(ValueError):
    """A latent file cannot be read or does not fit the network; the message names the file, shapes and fix."""


def _load_array(path: pathlib.Path) -> np.ndarray:
    try:
        is_file = path.is_file()
        size = path.stat().st_size if is_file else 0
    except OSError as e:  # e.g. a name too long for the file system
        raise LatentFileError(f'latent file {str(path)[:200]!r} cannot be opened ({e.strerror})') from e
    if not is_file:
        raise LatentFileError(f'latent file not found: {path}; pass a .npy or .npz file')
    if size > MAX_FILE_BYTES:
        raise LatentFileError(f'latent file {path} is larger than {MAX_FILE_BYTES >> 20} MiB; not a latent file?')
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise LatentFileError(
            f'cannot read latent file {path} as .npy/.npz ({e}); save latents with numpy.save/savez (no pickles)'
        ) from e
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = [k for k in data.keys() if k != STATE_KEY]
            key = next((k for k in LATENT_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise LatentFileError(
                    f"latent file {path} must hold an array 'w' or 'ws' (or only one array), got {keys}"
                )
            try:
                arr = data[key]
            except ValueError as e:  # object arrays need pickles: refused
                raise LatentFileError(f'latent file {path}: array {key!r} is not numeric ({e})') from e
    else:
        arr = data
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise LatentFileError(f'latent file {path}: the latent must be a float array, got dtype {arr.dtype}')
    return arr


def read_latents(path: str | os.PathLike, *, num_ws: int, w_dim: int, allow_frames: bool = False) -> np.ndarray:
    """Reads one or several latents for a network with `num_ws` layers of `w_dim` features.

    Args:
        path: `.npy` or `.npz` file (key `w` / `ws` or the only array).
        num_ws: The network's number of ws (G.num_ws).
        w_dim: The network's W dimensionality (G.w_dim).
        allow_frames: Also accept [T, w_dim] with T != num_ws as T single-W latents (a video sequence).

    Returns:
        ws [N, num_ws, w_dim] float32 (N = 1 for [w_dim], [num_ws, w_dim] and [1, num_ws, w_dim]).

    Raises:
        LatentFileError: Unreadable file, non-float or non-finite values, or a shape that does not fit the network
            (the message names num_ws and w_dim and the accepted shapes).
    """
    path = pathlib.Path(path)
    arr = _load_array(path)
    shape = tuple(int(s) for s in arr.shape)
    if arr.ndim == 1 and shape == (w_dim,):
        arr = np.broadcast_to(arr[None, None, :], (1, num_ws, w_dim))
    elif arr.ndim == 2 and shape == (num_ws, w_dim):
        arr = arr[None]
    elif arr.ndim == 2 and allow_frames and shape[1] == w_dim and shape[0] >= 1:
        arr = np.broadcast_to(arr[:, None, :], (shape[0], num_ws, w_dim))
    elif not (arr.ndim == 3 and shape[1:] == (num_ws, w_dim) and shape[0] >= 1):
        frames = f', [T, {w_dim}]' if allow_frames else ''
        raise LatentFileError(
            f'latent file {path} holds shape {list(shape)}, which does not fit this network (num_ws={num_ws}, '
            f'w_dim={w_dim}); expected [{num_ws}, {w_dim}], [1, {num_ws}, {w_dim}], [{w_dim}] or '
            f'[N, {num_ws}, {w_dim}]{frames}. Was it made for another network?'
        )
    arr = np.array(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise LatentFileError(f'latent file {path} holds NaN or infinite values; it cannot be rendered')
    return arr


def read_ws(path: str | os.PathLike, *, num_ws: int, w_dim: int) -> np.ndarray:
    """Reads exactly one latent: ws [num_ws, w_dim] float32 (see `read_latents()` for the accepted shapes).

    Raises:
        LatentFileError: As `read_latents()`, or the file holds several latents.
    """
    ws = read_latents(path, num_ws=num_ws, w_dim=w_dim)
    if ws.shape[0] != 1:
        raise LatentFileError(
            f'latent file {path} holds {ws.shape[0]} latents; expected one ([{num_ws}, {w_dim}] or '
            f'[1, {num_ws}, {w_dim}]). Render several with gen_images.py --projected-w'
        )
    return ws[0]


def read_latent_state(path: str | os.PathLike) -> dict | None:
    """The producing state saved with a latent by `write_ws()`, or None when the file has none."""
    path = pathlib.Path(path)
    if path.suffix.lower() != '.npz':
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if STATE_KEY not in data:
                return None
            state = json.loads(str(data[STATE_KEY]))
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return state if isinstance(state, dict) else None


def write_ws(path: str | os.PathLike, ws: Any, *, state: dict | None = None) -> pathlib.Path:
    """Writes a latent as `.npz` in the projector format: `w` [1, num_ws, w_dim] float32, plus `state_json`.

    Args:
        path: Output file; `.npz` is appended when it has another suffix.
        ws: [num_ws, w_dim] or [1, num_ws, w_dim] array-like (float, finite).
        state: JSON-serialisable description of what produced it (network, seeds, truncation, ...).

    Returns:
        The written path.

    Raises:
        ValueError: On a wrong shape, non-finite values or a state that is not JSON-serialisable.
        OSError: If the file cannot be written (nothing partial is left behind).
    """
    arr = np.asarray(ws, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != 1 or 0 in arr.shape:
        raise ValueError(f'write_ws(): ws must have shape [num_ws, w_dim] or [1, num_ws, w_dim], got {list(arr.shape)}')
    if not np.isfinite(arr).all():
        raise ValueError('write_ws(): ws holds NaN or infinite values')
    path = pathlib.Path(path)
    if path.suffix.lower() != '.npz':
        path = path.with_name(path.name + '.npz')
    state_text = json.dumps(state or {}, default=str)
    with atomic_path(path, suffix='.part', mode=0o644) as tmp, open(tmp, 'wb') as f:
        np.savez(f, w=arr, state_json=np.array(state_text))  # key STATE_KEY
        f.flush()
        os.fsync(f.fileno())
    return path
