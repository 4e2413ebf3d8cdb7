"""Build-on-first-use C++/CUDA extensions for the fast op paths.

`get_plugin()` compiles with `torch.utils.cpp_extension.load` (ninja) the first time an op asks for it -- never at
import time -- into a per-source-hash folder of the user cache, and returns the loaded module. A failed build
raises `PluginBuildError` naming the build log, so callers (`impl='auto'`) can warn once and fall back to the
reference path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import threading
import types
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Memo of loaded plugins and of failed builds (so a broken build is not retried on every call).
_plugins: dict[str, types.ModuleType] = {}
_failures: dict[str, PluginBuildError] = {}
_lock = threading.Lock()


class PluginBuildError(RuntimeError):
    """A custom op extension could not be built or loaded; `.log_path` is the build log (or None)."""

    def __init__(self, message: str, log_path: pathlib.Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


def cache_root() -> pathlib.Path:
    """Folder holding the compiled extensions: `$XDG_CACHE_HOME/sg3viz/torch_extensions` (or ~/.cache/...)."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return pathlib.Path(base) / 'sg3viz' / 'torch_extensions'


def _source_digest(paths: Sequence[pathlib.Path], build_kwargs: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(repr(sorted((k, repr(v)) for k, v in build_kwargs.items())).encode())
    return h.hexdigest()[:16]


def get_plugin(
    module_name: str,
    sources: Sequence[str | os.PathLike],
    headers: Sequence[str | os.PathLike] | None = None,
    source_dir: str | os.PathLike | None = None,
    **build_kwargs: Any,
) -> types.ModuleType:
    """Compiles (once per distinct source) and loads a C++/CUDA extension.

    Args:
        module_name: Python name of the extension module, e.g. 'upfirdn2d_plugin'.
        sources: .cpp/.cu files, relative to `source_dir` when given.
        headers: Extra files whose content affects the build (hashed, not compiled).
        source_dir: Folder of `sources` and `headers`.
        **build_kwargs: Passed to `torch.utils.cpp_extension.load` (e.g. extra_cuda_cflags).

    Returns:
        The loaded extension module.

    Raises:
        ValueError: On a bad module name or missing source files.
        PluginBuildError: If ninja is missing or the build fails; the message names the build log.
    """
    if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', module_name or ''):
        raise ValueError(f'get_plugin(): module_name must be a Python identifier, got {module_name!r}')
    base = pathlib.Path(source_dir) if source_dir is not None else pathlib.Path('.')
    source_paths = [base / s for s in sources]
    header_paths = [base / h for h in (headers or [])]
    missing = [str(p) for p in source_paths + header_paths if not p.is_file()]
    if missing:
        raise ValueError(f'get_plugin(): source files must exist, missing {missing}')

    with _lock:
        if module_name in _plugins:
            return _plugins[module_name]
        if module_name in _failures:
            raise _failures[module_name]
        try:
            module = _build(module_name, source_paths, header_paths, build_kwargs)
        except PluginBuildError as e:
            _failures[module_name] = e
            raise
        _plugins[module_name] = module
        return module


def _build(
    module_name: str,
    source_paths: list[pathlib.Path],
    header_paths: list[pathlib.Path],
    build_kwargs: dict[str, Any],
) -> types.ModuleType:
    import torch.utils.cpp_extension

    try:
        torch.utils.cpp_extension.verify_ninja_availability()
    except RuntimeError as e:
        raise PluginBuildError(
            f'get_plugin(): cannot build {module_name}: ninja is not installed (pip install ninja); '
            'using the reference implementation instead'
        ) from e

    digest = _source_digest(source_paths + header_paths, build_kwargs)
    build_dir = cache_root() / f'{module_name}-{digest}'
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / 'build.log'
    logger.info('Building custom op %s in %s', module_name, build_dir)
    try:
        module = torch.utils.cpp_extension.load(
            name=module_name,
            sources=[str(p) for p in source_paths],
            build_directory=str(build_dir),
            verbose=False,
            **build_kwargs,
        )
    except Exception as e:
        log_path.write_text(f'{type(e).__name__}: {e}\n', encoding='utf-8')
        raise PluginBuildError(
            f'get_plugin(): building {module_name} failed ({type(e).__name__}); see the build log {log_path}',
            log_path,
        ) from e
    log_path.write_text('build succeeded\n', encoding='utf-8')
    return module
