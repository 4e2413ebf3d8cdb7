"""Files that appear whole or not at all: write to a temporary name in the target folder, rename over the target.

Every writer of user-visible output (state and latent files, spectra, ONNX exports, converted pickles) goes through
:func:`atomic_path`, so a crash, a full disk or an exception mid-write never leaves a half-written file under the
real name and never leaves the temporary behind. No torch, no GUI.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator

__all__ = ['atomic_path', 'atomic_write_bytes', 'default_mode']


def default_mode(is_dir: bool = False) -> int:
    """The permissions a plain ``open()`` / ``mkdir()`` would give (0o666 / 0o777 less the umask, read from
    /proc/self/status where there is one, else a umask of 0o022). ``tempfile`` creates files 0o600 and folders
    0o700; files renamed into place get these modes instead."""
    umask = 0o022
    try:
        with open('/proc/self/status') as f:
            umask = next((int(line.split()[1], 8) for line in f if line.startswith('Umask:')), umask)
    except (OSError, ValueError, IndexError):
        pass
    return (0o777 if is_dir else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = '.tmp', mode: int | None = None) -> Iterator[pathlib.Path]:
    """Yields a new, empty temporary file next to ``path`` (parents created); when the block ends without an
    exception, the file gets ``mode`` (default :func:`default_mode`) and is renamed over ``path`` (``os.replace``:
    atomic on one file system). On any exception the temporary file is removed and the exception propagates.

    Args:
        path: the final file.
        suffix: the temporary name's suffix (some writers pick the format from it).
        mode: permission bits of the final file.
    """
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=p.parent, prefix=f'.{p.name}.', suffix=suffix)
    os.close(fd)
    tmp = pathlib.Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_mode() if mode is None else mode)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes ``data`` to ``path`` through :func:`atomic_path`. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return pathlib.Path(path)
