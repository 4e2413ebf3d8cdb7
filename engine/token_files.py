"""Access-token files of the remote renderer: the server writes one (``python -m engine.serve --token-file``), the
visualizer reads it (``visualizer.py --connect HOST:PORT --token-file``). One token on the first line, owner-only.
Torch-free (the GUI side imports it)."""

from __future__ import annotations

import os
import pathlib

from engine.atomic_files import atomic_path

__all__ = ['read_token_file', 'write_token_file']


def write_token_file(path: str | os.PathLike, token: str) -> None:
    """Writes ``token`` to ``path`` (``~`` expanded, parents created) atomically, readable by the owner only (0600)."""
    p = pathlib.Path(path).expanduser()
    with atomic_path(p, mode=0o600) as tmp:  # mkstemp creates it 0600: the token is never readable by others
        tmp.write_text(token + '\n')


def read_token_file(path: str | os.PathLike) -> str:
    """The token in ``path`` (``~`` expanded; first line, stripped).

    Raises:
        ValueError: unreadable or empty file (the message names ``--token-file`` and the path).
    """
    try:
        text = pathlib.Path(path).expanduser().read_text(encoding='utf-8', errors='replace')
    except OSError as e:
        raise ValueError(f'--token-file {os.fspath(path)!r} cannot be read: {e}') from e
    token = text.strip().splitlines()[0].strip() if text.strip() else ''
    if not token:
        raise ValueError(f'--token-file {os.fspath(path)!r} is empty; it must hold the token the server printed')
    return token
