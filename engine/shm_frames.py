"""Result frames between the render process and the GUI: the image and FFT arrays of a ``RenderResult`` travel
through one ``multiprocessing.shared_memory`` block per result, the rest of the result is pickled through the pipe.

The child creates each block under a name the parent can predict (``<prefix>_<counter>``); the parent copies the
arrays out and unlinks the block, and after a crash unlinks what the dead child left (:func:`unlink_leftovers`), so no
segment outlives the renderer. ``bench/bench_visualizer.py --transport`` measures this against pickling the arrays
through the pipe (1024^2 image + FFT view: about half the time, and far less at 256^2), which is why it stays.
Messages: ``('result', RenderResult without arrays, block index or None, {field: (shape, dtype, offset)})``.
"""

from __future__ import annotations

import dataclasses
import uuid
from multiprocessing import shared_memory

import numpy as np

from engine.protocol import RenderResult

__all__ = ['ARRAY_FIELDS', 'DEFAULT_SHM_MIN_BYTES', 'ShmNames', 'pack', 'unlink_leftovers', 'unpack']

ARRAY_FIELDS = ('image', 'fft')  # RenderResult fields that go through shared memory.
DEFAULT_SHM_MIN_BYTES = 64 * 1024  # Arrays smaller than this in total are simply pickled.


class ShmNames:
    """Names of the shared-memory blocks one child creates: ``<prefix>_<k>``, k = 0, 1, 2, ... in order."""

    def __init__(self):
        self.prefix = 'sgv_' + uuid.uuid4().hex[:12]  # Short: macOS allows 31 characters.
        self.num_freed = 0  # Blocks 0..num_freed-1 are unlinked.

    def name(self, k: int) -> str:
        return f'{self.prefix}_{k}'


def unpack(msg: tuple, names: ShmNames) -> RenderResult:
    """('result', RenderResult without arrays, shm index or None, {field: (shape, dtype, offset)}) -> result."""
    _, res, index, layout = msg
    if index is None:
        return res
    arrays = {}
    name = names.name(index)
    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return dataclasses.replace(res, error=res.error or 'render process: shared memory block is gone')
    try:
        buf = shm.buf
        assert buf is not None
        for field, (shape, dtype, offset) in layout.items():
            count = int(np.prod(shape))
            arrays[field] = np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        del buf
    finally:
        shm.close()
        shm.unlink()
    names.num_freed = max(names.num_freed, index + 1)
    return dataclasses.replace(res, **arrays)


def unlink_leftovers(names: ShmNames, extra: int = 4) -> None:
    """Unlinks blocks a dead/stopped child created but the parent never read (at most a few)."""
    for k in range(names.num_freed, names.num_freed + extra):
        try:
            shm = shared_memory.SharedMemory(name=names.name(k))
        except (FileNotFoundError, OSError):
            continue
        shm.close()
        shm.unlink()


def pack(res: RenderResult, shm_prefix: str, counter: int, shm_min_bytes: int) -> tuple[tuple, int]:
    """Moves the arrays of ``res`` into a new shared-memory block (unless small); returns the message."""
    arrays = {f: getattr(res, f) for f in ARRAY_FIELDS if getattr(res, f) is not None}
    total = sum(a.nbytes for a in arrays.values())
    if not arrays or total < shm_min_bytes:
        return ('result', res, None, None), counter
    shm = shared_memory.SharedMemory(name=f'{shm_prefix}_{counter}', create=True, size=max(total, 1))
    layout = {}
    offset = 0
    buf = shm.buf
    assert buf is not None
    try:
        for field, a in arrays.items():
            a = np.ascontiguousarray(a)
            np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=offset).reshape(a.shape)[...] = a
            layout[field] = (a.shape, a.dtype.str, offset)
            offset += a.nbytes
    finally:
        del buf
        shm.close()  # The parent unlinks it after reading.
    light = dataclasses.replace(res, image=None, fft=None)
    return ('result', light, counter, layout), counter + 1
