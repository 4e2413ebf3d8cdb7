"""Build-on-first-use C++/CUDA extensions for the fast op paths.

:func:`get_plugin` compiles with ``torch.utils.cpp_extension.load`` (ninja) the first time an op asks for it --
never at import time -- and returns the loaded module. Builds are cached in
``<root>/<module_name>-<key>/`` where ``<root>`` is ``$TORCH_EXTENSIONS_DIR`` or torch's default
(``~/.cache/torch_extensions/...``) and ``<key>`` hashes the sources, the build arguments, the torch version, the
host CPU flags and, for CUDA builds, the target architectures (``$TORCH_CUDA_ARCH_LIST`` when set, else the
visible GPUs). Robustness:

* a per-folder build lock (``sg3.lock``, holding pid/host/time) that is taken over when its owner is dead or it
  is older than ``stale_after`` seconds, and waited on for at most ``lock_timeout`` seconds (then a clear error);
  torch's own ``lock`` file is removed while we hold ours, so a killed build can never hang later ones;
* a cached build that fails to import (truncated/corrupted ``.so``) is deleted and rebuilt once;
* a missing compiler or ninja raises :class:`PluginBuildError` up front; every failure message names the build
  log (``build.log`` in the build folder) and failures are remembered so callers can warn once and fall back;
* ``os.environ`` is never written (``TORCH_CUDA_ARCH_LIST`` is only read).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import platform
import re
import shutil
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Memo of loaded plugins and of failed builds (so a broken build is not retried on every call).
_plugins: dict[str, types.ModuleType] = {}
_failures: dict[str, PluginBuildError] = {}
_lock = threading.Lock()

LOCK_NAME = 'sg3.lock'
LOG_NAME = 'build.log'


class PluginBuildError(RuntimeError):
    """A custom op extension could not be built or loaded; ``.log_path`` is the build log (or None)."""

    def __init__(self, message: str, log_path: pathlib.Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


def cache_root() -> pathlib.Path:
    """Folder holding the compiled extensions: ``$TORCH_EXTENSIONS_DIR`` or torch's default build root."""
    env = os.environ.get('TORCH_EXTENSIONS_DIR')
    if env:
        return pathlib.Path(env)
    import torch.utils.cpp_extension

    return pathlib.Path(torch.utils.cpp_extension.get_default_build_root())


def _cpu_flags() -> str:
    """Host CPU identity (builds may use -march=native): machine + the /proc/cpuinfo flags line, if any."""
    flags = ''
    with contextlib.suppress(OSError):
        for line in pathlib.Path('/proc/cpuinfo').read_text(errors='replace').splitlines():
            if line.startswith('flags'):
                flags = line
                break
    return f'{platform.machine()} {flags}'


def _cuda_arch_key(cuda: bool) -> str:
    """The CUDA architectures a build targets: $TORCH_CUDA_ARCH_LIST (read only) or the visible GPUs."""
    if not cuda:
        return ''
    env = os.environ.get('TORCH_CUDA_ARCH_LIST')
    if env:
        return f'env:{env}'
    import torch

    if not torch.cuda.is_available():
        return 'none'
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    return 'dev:' + ';'.join(f'{a}.{b}' for a, b in caps)


def build_key(paths: Sequence[pathlib.Path], build_kwargs: dict[str, Any], cuda: bool = False) -> str:
    """16-hex-digit cache key of the sources, build arguments, torch/python version, CPU flags and CUDA arch."""
    import torch

    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(repr(sorted((k, repr(v)) for k, v in build_kwargs.items())).encode())
    h.update(f'torch={torch.__version__} py={sys.version_info[:2]} cpu={_cpu_flags()}'.encode())
    h.update(f'cuda={_cuda_arch_key(cuda)}'.encode())
    # Environment that changes torch's compile command (compilers, flags): separate folders instead of rebuilds.
    env = {k: os.environ.get(k, '') for k in ('CXX', 'CC', 'CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS', 'CUDA_HOME')}
    h.update(repr(sorted(env.items())).encode())
    h.update(repr([str(p) for p in paths]).encode())
    return h.hexdigest()[:16]


def find_compiler() -> str | None:
    """Path of the C++ compiler torch would use ($CXX or c++/g++/clang++), or None."""
    cxx = os.environ.get('CXX')
    if cxx:
        return shutil.which(cxx)
    for name in ('c++', 'g++', 'clang++'):
        path = shutil.which(name)
        if path:
            return path
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _lock_is_stale(path: pathlib.Path, stale_after: float) -> bool:
    """True when the lock's owner (same host) is dead, the lock is older than ``stale_after`` s, or unreadable."""
    try:
        text = path.read_text()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if age > stale_after:
        return True
    m = re.fullmatch(r'(\d+) (\S+) [\d.]+\s*', text)
    if m is None:
        return age > 5  # being written right now, or garbage
    pid, host = int(m.group(1)), m.group(2)
    return host == socket.gethostname() and not _pid_alive(pid)


@contextlib.contextmanager
def build_lock(
    folder: pathlib.Path, timeout: float = 600, stale_after: float = 1800, poll: float = 0.1
) -> Iterator[None]:
    """Exclusive inter-process lock on a build folder (see the module docstring).

    Raises:
        TimeoutError: Another live process held the lock for more than ``timeout`` seconds.
    """
    path = folder / LOCK_NAME
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_is_stale(path, stale_after):
                logger.warning('Removing stale build lock %s', path)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f'get_plugin(): build lock {path} is held by another process ({_read(path)!r}) for more than '
                    f'{timeout:.0f} s; wait for that build or delete the lock file if no build is running'
                ) from None
            time.sleep(poll)
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(f'{os.getpid()} {socket.gethostname()} {time.time():.3f}\n')
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return


def _read(path: pathlib.Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return '?'


def get_plugin(
    module_name: str,
    sources: Sequence[str | os.PathLike],
    headers: Sequence[str | os.PathLike] | None = None,
    source_dir: str | os.PathLike | None = None,
    *,
    lock_timeout: float = 600,
    **build_kwargs: Any,
) -> types.ModuleType:
    """Compiles (once per distinct source/toolchain, see :func:`build_key`) and loads a C++/CUDA extension.

    Args:
        module_name: Python identifier naming the extension, e.g. 'filtered_lrelu_cpu'.
        sources: .cpp/.cu files, relative to ``source_dir`` when given.
        headers: Extra files whose content affects the build (hashed, not compiled).
        source_dir: Folder of ``sources`` and ``headers``.
        lock_timeout: Seconds to wait for another process building the same extension.
        **build_kwargs: Passed to ``torch.utils.cpp_extension.load`` (e.g. extra_cflags, extra_ldflags).

    Returns:
        The loaded extension module.

    Raises:
        ValueError: On a bad module name or missing source files.
        PluginBuildError: No compiler or ninja, a failed build or import, or a lock timeout; the message names the
            build log.
    """
    if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', module_name or ''):
        raise ValueError(f'get_plugin(): module_name must be a Python identifier, got {module_name!r}')
    base = pathlib.Path(source_dir) if source_dir is not None else pathlib.Path('.')
    # Canonical absolute paths: ninja records the command line (source paths included) and rebuilds when it
    # changes, so two processes naming the same file differently would otherwise rebuild the cache in turns.
    source_paths = [(base / s).resolve() for s in sources]
    header_paths = [(base / h).resolve() for h in (headers or [])]
    missing = [str(p) for p in source_paths + header_paths if not p.is_file()]
    if missing or not source_paths:
        raise ValueError(f'get_plugin(): source files must exist, missing {missing or "(no sources given)"}')
    cuda = any(p.suffix == '.cu' for p in source_paths)
    key = build_key(source_paths + header_paths, build_kwargs, cuda)
    memo = f'{module_name}-{key}'

    with _lock:
        if memo in _plugins:
            return _plugins[memo]
        if memo in _failures:
            raise _failures[memo]
        try:
            module = _build(module_name, key, source_paths, build_kwargs, lock_timeout)
        except PluginBuildError as e:
            _failures[memo] = e
            raise
        _plugins[memo] = module
        return module


def _build(
    module_name: str,
    key: str,
    source_paths: list[pathlib.Path],
    build_kwargs: dict[str, Any],
    lock_timeout: float,
) -> types.ModuleType:
    import torch.utils.cpp_extension

    build_dir = cache_root() / f'{module_name}-{key}'
    log_path = build_dir / LOG_NAME
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PluginBuildError(f'get_plugin(): cannot create the build folder {build_dir}: {e}', None) from e

    def fail(message: str, exc: BaseException | None = None) -> PluginBuildError:
        detail = f'{type(exc).__name__}: {exc}\n' if exc is not None else ''
        with contextlib.suppress(OSError):
            log_path.write_text(f'{message}\n{detail}', encoding='utf-8')
        return PluginBuildError(f'{message}; see the build log {log_path}', log_path)

    if find_compiler() is None:
        raise fail(
            f'get_plugin(): cannot build {module_name}: no C++ compiler found ($CXX, c++, g++ or clang++); '
            'install one (e.g. apt install g++) or use the plain-PyTorch implementation'
        )
    try:
        torch.utils.cpp_extension.verify_ninja_availability()
    except RuntimeError as e:
        raise fail(f'get_plugin(): cannot build {module_name}: ninja is not installed (pip install ninja)', e) from e

    name = f'{module_name}_{key}'  # unique per build: the .so's init symbol and the Python module name
    try:
        with build_lock(build_dir, timeout=lock_timeout):
            with contextlib.suppress(FileNotFoundError):
                (build_dir / 'lock').unlink()  # torch's FileBaton: stale if present (we hold the folder lock)
            for attempt in range(2):
                t0 = time.monotonic()
                try:
                    module = torch.utils.cpp_extension.load(
                        name=name,
                        sources=[str(p) for p in source_paths],
                        build_directory=str(build_dir),
                        verbose=False,
                        **build_kwargs,
                    )
                except ImportError as e:  # built files present but unloadable: corrupted cache -> rebuild once
                    if attempt == 0:
                        logger.warning(
                            'Cached build of %s in %s is unloadable (%s); rebuilding', module_name, build_dir, e
                        )
                        _clear_build_dir(build_dir)
                        sys.modules.pop(name, None)
                        continue
                    raise fail(f'get_plugin(): loading {module_name} failed after a rebuild', e) from e
                except Exception as e:  # compiler errors (RuntimeError with the ninja output), OSError, ...
                    raise fail(f'get_plugin(): building {module_name} failed ({type(e).__name__})', e) from e
                with contextlib.suppress(OSError):
                    log_path.write_text(f'build/load of {name} succeeded in {time.monotonic() - t0:.1f} s\n')
                return module
    except TimeoutError as e:
        raise fail(str(e), None) from e
    raise AssertionError('unreachable')


def _clear_build_dir(build_dir: pathlib.Path) -> None:
    """Deletes everything in a build folder but our lock and the log."""
    for child in build_dir.iterdir():
        if child.name in (LOCK_NAME, LOG_NAME):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
