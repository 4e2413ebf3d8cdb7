"""Which network files a render server may load and list (``python -m engine.serve --root DIR``).

With a root, a request's source must resolve (links followed, for training-run directories down to the snapshot
that would load) to a file under the root; http(s) URLs are allowed, other URL schemes are not. Browse lists .pkl
files directly in the root and in its subdirectories, leaving out links that lead outside.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
import urllib.request
from typing import Any

from engine.sources import SourceError, list_runs, newest_snapshot
from engine.wire import WireError

MAX_LISTED_DIRS = 500
MAX_LISTED_FILES_PER_DIR = 200


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confine_source(source: str | None, root: str | None) -> str | None:
    """Where the server loads ``source`` from, enforcing ``root``.

    Args:
        source: the request's network source: None (the bundled default), an http(s) URL, a ``file://`` URL or a
            path (relative paths are relative to ``root``, or to the working directory without one).
        root: the server's root directory, or None (no confinement).

    Returns:
        The source to load: unchanged without a root (and for None and http(s) URLs); with a root, the resolved
        absolute path (links resolved; for a training-run directory its newest snapshot, resolved too).

    Raises:
        WireError: 'path' when the resolved file is outside ``root`` or the URL scheme is not http(s)/file.
    """
    if source is None or re.match(r'^https?://', source, re.IGNORECASE) or root is None:
        return source
    if re.match(r'^[A-Za-z][A-Za-z0-9+.-]*://', source):
        if not source.lower().startswith('file://'):
            raise WireError('path', f'unsupported URL scheme in {source!r}; use a path, file://, http:// or https://')
        source_path = urllib.request.url2pathname(urllib.parse.urlparse(source).path)
    else:
        source_path = source
    root_real = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root_real, source_path))
    if _under(real, root_real) and os.path.isdir(real):
        with contextlib.suppress(SourceError):
            real = os.path.realpath(newest_snapshot(real))  # The file that would load, links resolved.
    if not _under(real, root_real):
        raise WireError(
            'path',
            f'{source!r} is outside the server root {root}; this server only loads files under its --root '
            '(after resolving links) and http(s) URLs',
        )
    return real


def list_server_files(root: str | None) -> tuple[str, list[list[Any]]]:
    """What Browse shows: ``engine.sources.list_runs`` of the root (or the working directory), confined to it.

    Args:
        root: the server's --root, or None (the working directory).

    Returns:
        (the listed directory, [[directory, [pkl paths, newest first]], ...]): loose files first, then run
        directories newest first; absolute paths; entries whose links lead outside the root are left out; at most
        ``MAX_LISTED_DIRS`` directories and ``MAX_LISTED_FILES_PER_DIR`` files each.
    """
    base = os.path.realpath(root if root is not None else os.getcwd())
    out: list[list[Any]] = []
    try:
        runs = list_runs(base)
    except OSError:
        return base, out
    for folder, files in runs:
        if not _under(os.path.realpath(folder), base):
            continue
        inside = [f for f in files if _under(os.path.realpath(f), base)][:MAX_LISTED_FILES_PER_DIR]
        if inside:
            out.append([folder, inside])
        if len(out) >= MAX_LISTED_DIRS:
            break
    return base, out


__all__ = ['MAX_LISTED_DIRS', 'MAX_LISTED_FILES_PER_DIR', 'confine_source', 'list_server_files']
