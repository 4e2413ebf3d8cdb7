"""What a network source is and how it is shown: the one place that decides (standard library only, no torch).

A *network source* is what a user types, drops or passes on the command line to name a generator pickle:

============  =======================================  ===================================================
kind          example                                  local file
============  =======================================  ===================================================
``default``   ``None`` (or ``''``)                     ``models/default.pkl`` of the checkout
``path``      ``runs/00001/network-snapshot-000040.pkl``  the file itself (``~`` expanded)
``file_url``  ``file:///data/net.pkl``                 the file the URL names
``url``       ``https://example.org/net.pkl``          downloaded once into a cache by ``engine.loading``
``run_dir``   ``training-runs/00003-stylegan3-t-...``  its newest ``network-snapshot-*.pkl``
============  =======================================  ===================================================

Every tool (gen_images, gen_video, avg_spectra, calc_metrics, the visualizer's Network pane, the renderer's loader)
classifies and displays sources through this module, so they agree on what "newest snapshot" means and on how a
source appears in a title bar or an error message. Downloading (``engine.loading.download``) and unpickling
(``engine.loading.load_network_pkl``) live elsewhere; this module never touches the network or torch, so the GUI
process may import it.

Newest first, everywhere: snapshots are ordered by the kimg number in ``network-snapshot-<kimg>.pkl`` (then by
modification time, then by name); other ``.pkl`` files by modification time (then by name).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import urllib.parse
import urllib.request

__all__ = [
    'SNAPSHOT_GLOB',
    'NetworkSource',
    'SourceError',
    'default_network_path',
    'display_name',
    'file_state',
    'is_network_source',
    'list_runs',
    'list_snapshots',
    'local_path',
    'newest_snapshot',
    'parse_source',
    'same_source',
    'snapshot_nimg',
]

SNAPSHOT_GLOB = 'network-snapshot-*.pkl'
SOURCE_KINDS = ('default', 'path', 'file_url', 'url', 'run_dir')
DEFAULT_DISPLAY_NAME = 'bundled default network'

_REPO = pathlib.Path(__file__).resolve().parents[1]
_URL_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')
# kimg, with thousandths (`000000.500`) when train.py ticks are shorter than 1 kimg.
_SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)(?:\.(\d{3}))?\.pkl$')
_DOWNLOAD_SCHEMES = ('http', 'https')


class SourceError(ValueError):
    """A network source that names nothing loadable (missing file, empty run directory, unsupported scheme)."""


@dataclasses.dataclass(frozen=True)
class NetworkSource:
    """A classified network source.

    Attributes:
        text: the source as given (stripped); None for the bundled default network.
        kind: one of ``SOURCE_KINDS``: 'default', 'path', 'file_url', 'url' (http/https) or 'run_dir'.
    """

    text: str | None
    kind: str

    @property
    def is_download(self) -> bool:
        """True for http(s) URLs (their file lives in the download cache)."""
        return self.kind == 'url'

    @property
    def display(self) -> str:
        """How the source is shown to users (see :func:`display_name`)."""
        return display_name(self.text)


def default_network_path() -> pathlib.Path:
    """Path of the bundled default network, ``models/default.pkl`` in the checkout."""
    return _REPO / 'models' / 'default.pkl'


def parse_source(source: str | os.PathLike | None) -> NetworkSource:
    """Classifies a network source.

    Args:
        source: a path, ``file://`` or ``http(s)://`` URL, training-run directory, or None / '' for the bundled
            default network.

    Returns:
        The :class:`NetworkSource` (a path that is an existing directory is a 'run_dir').

    Raises:
        SourceError: for a URL scheme other than file, http and https, or a value that is not a str / PathLike.
    """
    if source is None:
        return NetworkSource(None, 'default')
    if not isinstance(source, str | os.PathLike):
        raise SourceError(f'network source must be a path or URL, got {type(source).__name__}')
    text = os.fspath(source).strip()
    if not text:
        return NetworkSource(None, 'default')
    if _URL_RE.match(text):
        scheme = text.split('://', 1)[0].lower()
        if scheme in _DOWNLOAD_SCHEMES:
            return NetworkSource(text, 'url')
        if scheme != 'file':
            raise SourceError(f'unsupported URL scheme {scheme!r} in {text}; use a path, file://, http:// or https://')
        return NetworkSource(text, 'file_url')
    if pathlib.Path(text).expanduser().is_dir():
        return NetworkSource(text, 'run_dir')
    return NetworkSource(text, 'path')


def display_name(source: str | None) -> str:
    """How a source is shown in titles, status lines and errors: 'bundled default network' for None, else as given."""
    return DEFAULT_DISPLAY_NAME if source is None or not str(source).strip() else str(source).strip()


def is_network_source(text: str) -> bool:
    """True for what may be dropped on the visualizer: a ``.pkl`` file, a URL, or a directory (a training run)."""
    if not isinstance(text, str) or not text.strip():
        return False
    try:
        src = parse_source(text)
    except SourceError:
        return False
    return src.kind in ('url', 'file_url', 'run_dir') or text.strip().lower().endswith('.pkl')


def snapshot_nimg(name: str | os.PathLike) -> int | None:
    """The training progress a snapshot file name encodes, in images: ``network-snapshot-000040.pkl`` -> 40000,
    ``network-snapshot-000000.500.pkl`` -> 500 (kimg with thousandths); None for other names (directories ignored)."""
    m = _SNAPSHOT_RE.match(pathlib.PurePath(os.fspath(name)).name)
    return int(m.group(1)) * 1000 + int(m.group(2) or 0) if m else None


def _snapshot_sort_key(path: pathlib.Path) -> tuple:
    m = _SNAPSHOT_RE.match(path.name)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    nimg = int(m.group(1)) * 1000 + int(m.group(2) or 0) if m else -1
    return (1 if m else 0, nimg, mtime, path.name)


def list_snapshots(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The ``.pkl`` files directly in ``folder``, newest first.

    ``network-snapshot-<kimg>.pkl`` files come first, by kimg (highest first); other ``.pkl`` files follow by
    modification time (newest first). A missing folder gives [].
    """
    d = pathlib.Path(folder).expanduser()
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob('*.pkl') if p.is_file()), key=_snapshot_sort_key, reverse=True)


def newest_snapshot(run_dir: str | os.PathLike) -> pathlib.Path:
    """The newest ``network-snapshot-*.pkl`` of a training-run directory (highest kimg).

    Raises:
        SourceError: when the directory holds no snapshot.
    """
    d = pathlib.Path(run_dir).expanduser()
    snaps = [p for p in list_snapshots(d) if _SNAPSHOT_RE.match(p.name)]
    if not snaps:
        raise SourceError(
            f'no {SNAPSHOT_GLOB} in directory {d}; pass a training run directory that has snapshots, '
            'or the .pkl file itself'
        )
    return snaps[0]


def list_runs(browse_dir: str | os.PathLike | None) -> list[tuple[str, list[str]]]:
    """Folders with network pickles under ``browse_dir`` (the visualizer's Browse menu), newest first.

    Returns:
        [(folder, [pickle paths, newest first]), ...]: the loose pickles of ``browse_dir`` itself first (when it
        has any), then every subdirectory holding pickles, newest run first (run folders are named
        ``NNNNN-<desc>``, so by name, highest first). [] when ``browse_dir`` is None or not a directory.
    """
    if browse_dir is None:
        return []
    d = pathlib.Path(browse_dir).expanduser()
    if not d.is_dir():
        return []
    out = []
    loose = list_snapshots(d)
    if loose:
        out.append((str(d), [str(p) for p in loose]))
    for run in sorted((p for p in d.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        snaps = list_snapshots(run)
        if snaps:
            out.append((str(run), [str(p) for p in snaps]))
    return out


def local_path(source: str | os.PathLike | None) -> pathlib.Path | None:
    """The local pickle a source names without downloading anything: None for http(s) URLs.

    Raises:
        SourceError: a missing file, a run directory without snapshots or an unsupported scheme.
    """
    src = parse_source(source)
    if src.kind == 'default':
        return default_network_path()
    if src.kind == 'url':
        return None
    assert src.text is not None
    if src.kind == 'file_url':
        path = pathlib.Path(urllib.request.url2pathname(urllib.parse.urlparse(src.text).path))
    else:
        path = pathlib.Path(src.text).expanduser()
    if path.is_dir():
        return newest_snapshot(path)
    if not path.is_file():
        raise SourceError(f'network file not found: {path}; check the path (or pass a URL or a training run directory)')
    return path


def file_state(source: str | None) -> tuple | None:
    """What a remembered load failure is tied to: (path, mtime_ns, size) of the local file, ('missing',) when it
    does not exist, None for URLs and the bundled default (their failures are not retried automatically)."""
    try:
        src = parse_source(source)
    except SourceError:
        return None
    if src.kind in ('default', 'url'):
        return None
    try:
        path = local_path(source)
    except SourceError:
        return ('missing',)
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return ('missing',)
    return (str(path), st.st_mtime_ns, st.st_size)


def same_source(a: str | None, b: str | None) -> bool:
    """Whether two sources name the same network (equal text, or local paths that resolve to the same file)."""
    a = a.strip() or None if isinstance(a, str) else None
    b = b.strip() or None if isinstance(b, str) else None
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:
        pa, pb = local_path(a), local_path(b)
    except SourceError:
        return False
    return pa is not None and pb is not None and pa.resolve() == pb.resolve()
