"""Loading network pickles from a path, a `file://` or `http(s)://` URL, or a training-run directory.

Safe mode is the default: nothing from the file is executed (see `engine.safe_pickle`); known StyleGAN2/StyleGAN3
networks are rebuilt with our code. `trust=True` loads the way the reference tools do, executing the source code
embedded in the file. URLs are downloaded once into a cache (`$XDG_CACHE_HOME/sg3viz/downloads`, default
`~/.cache/sg3viz/downloads`); downloads go to a temporary file that is renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import pickle
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import torch

from engine import legacy_tf, sources
from engine.safe_pickle import LoadError, ResourceLimitError, UnsafePickleError, safe_load, scan_pickle, trusted_load
from engine.sources import default_network_path

__all__ = [
    'LoadError',
    'ResourceLimitError',
    'UnsafePickleError',
    'cache_dir',
    'default_network_path',
    'download',
    'load_generator',
    'load_generator_and_path',
    'load_network_pkl',
    'resolve_source',
    'verify_download',
]

logger = logging.getLogger(__name__)


def cache_dir() -> pathlib.Path:
    """Download cache: `$XDG_CACHE_HOME/sg3viz/downloads`, or `~/.cache/sg3viz/downloads`."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return pathlib.Path(base) / 'sg3viz' / 'downloads'


# ----------------------------------------------------------------------------
# Sources.


class _NotAFile(Exception):
    pass


def _cache_name(url: str) -> str:
    basename = os.path.basename(urllib.parse.urlparse(url).path) or 'download'
    basename = re.sub(r'[^A-Za-z0-9._-]', '_', basename)[:80]
    return f'{hashlib.sha256(url.encode()).hexdigest()[:16]}_{basename}'


def download(
    url: str,
    *,
    cache: str | os.PathLike | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    progress: bool = True,
) -> pathlib.Path:
    """Downloads `url` into the cache once and returns the cached file.

    The file is written to a temporary name in the cache folder and renamed into place (`os.replace`) only after
    it is complete: its length matches `Content-Length` when the server sends one, and it parses (`verify_download`),
    so the cache never holds a partial file even when a server cuts the transfer without saying how long it was.

    Args:
        url: http(s) URL.
        cache: Cache folder (default `cache_dir()`).
        retries: Attempts on network errors and 5xx responses (>= 1); 4xx responses fail at once.
        timeout: Socket timeout per attempt in seconds.
        progress: Show a tqdm progress bar on stderr.

    Raises:
        LoadError: When every attempt failed (the message names the URL and the last error).
    """
    folder = pathlib.Path(cache) if cache is not None else cache_dir()
    path = folder / _cache_name(url)
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)

    last_error: Exception | None = None
    for attempt in range(max(int(retries), 1)):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
        tmp_name = None
        try:
            tmp_name = _fetch_to_temp(url, folder, path.name, timeout=timeout, progress=progress)
            verify_download(pathlib.Path(tmp_name))
            os.replace(tmp_name, path)
            tmp_name = None
            return path
        except _NotAFile as e:
            raise LoadError(f'{e}; use a direct download link to the .pkl file') from None
        except urllib.error.HTTPError as e:
            last_error = e
            if 400 <= e.code < 500:
                break
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last_error = e
        finally:
            if tmp_name is not None and os.path.exists(tmp_name):
                os.remove(tmp_name)
        logger.info('Download attempt %d of %s failed: %s', attempt + 1, url, last_error)
    raise LoadError(
        f'could not download {url}: {last_error}; check the URL and your network connection, or download the file '
        'yourself and pass its path'
    )


def _fetch_to_temp(url: str, folder: pathlib.Path, name: str, *, timeout: float, progress: bool) -> str:
    """One download attempt: streams ``url`` into a new temporary file ``.<name>.*.part`` in ``folder`` (fsynced) and
    returns its path once complete (its length is the ``Content-Length`` when the server sent one).

    Raises:
        _NotAFile: the server answered with an HTML page.
        OSError: a short transfer or a local write error; urllib.error.URLError / TimeoutError: network errors.
        The temporary file is removed on every error.
    """
    from tqdm import tqdm

    tmp_name = None
    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'sg3viz'})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            with (
                tempfile.NamedTemporaryFile(dir=folder, prefix=f'.{name}.', suffix='.part', delete=False) as f,
                tqdm(total=total, unit='B', unit_scale=True, desc=name[17:], disable=not progress, leave=False) as bar,
            ):
                tmp_name = f.name
                num_bytes = 0
                while chunk := response.read(1 << 20):
                    if num_bytes == 0 and chunk.lstrip()[:1] == b'<':
                        raise _NotAFile(f'{url} returned an HTML page, not a file (a login, quota or error page?)')
                    f.write(chunk)
                    num_bytes += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
            if total is not None and num_bytes != total:
                raise OSError(f'incomplete download: got {num_bytes} of {total} bytes')
        return tmp_name
    except BaseException:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


def verify_download(path: pathlib.Path) -> None:
    """Checks that a downloaded file is complete before it enters the cache: a pickle must parse to its STOP opcode
    (`engine.pickle_scan`, nothing is unpickled) and a zip must pass its CRC checks. Other files pass.

    Raises:
        OSError: The file ends early or is corrupt (an interrupted transfer: worth retrying).
        LoadError: The pickle exceeds a safety limit (not worth retrying).
    """
    import zipfile

    with open(path, 'rb') as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith(b'\x80'):
            try:
                scan_pickle(f)
            except (EOFError, pickle.UnpicklingError) as e:
                raise OSError(f'incomplete download: the pickle does not parse ({e})') from None
    if head.startswith(b'PK'):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, EOFError) as e:
            raise OSError(f'incomplete download: the zip does not parse ({e})') from None
        if bad is not None:
            raise OSError(f'incomplete download: zip member {bad} fails its CRC check')


def resolve_source(source: str | os.PathLike | None, **download_kwargs: Any) -> pathlib.Path:
    """Turns a network source into a local pickle path (what a source is: ``engine.sources``).

    Args:
        source: A file path; a `file://` URL; an `http(s)://` URL (downloaded once into the cache); a training
            run directory (its newest `network-snapshot-*.pkl`); or None for the bundled default network.
        **download_kwargs: Passed to `download()` (cache, retries, timeout, progress).

    Raises:
        LoadError: If the file or directory does not exist, the directory has no snapshot, the URL scheme is not
            supported, or the download failed.
    """
    try:
        src = sources.parse_source(source)
        if src.is_download:
            assert src.text is not None
            return download(src.text, **download_kwargs)
        path = sources.local_path(source)
    except sources.SourceError as e:
        raise LoadError(str(e)) from None
    assert path is not None
    return path


# ----------------------------------------------------------------------------
# Loading.


_IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')
_MAGIC = (
    (b'\x89PNG', 'a PNG image'),
    (b'\xff\xd8\xff', 'a JPEG image'),
    (b'GIF8', 'a GIF image'),
    (b'\x1f\x8b', 'a gzip file (unpack it first if it holds a .pkl)'),
    (b'\x93NUMPY', 'a NumPy .npy array'),
    (b'7z\xbc\xaf', 'a 7-Zip archive'),
)
_FIX = 'pass a network pickle (.pkl) written by train.py or the StyleGAN2-ADA/StyleGAN3 tools'


def _foreign_file(path: pathlib.Path) -> LoadError | None:
    """A LoadError saying what the file is when it is clearly not a pickle stream (checked before unpickling)."""
    import zipfile

    with open(path, 'rb') as f:
        head = f.read(16)
    if not head:
        return LoadError(f'{path} is empty; re-download or re-export the network pickle')
    if head.startswith(b'PK'):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            names = []
        if any(n.lower().endswith(_IMAGE_SUFFIXES) for n in names):
            what = 'a zip of images (a dataset? use it with --data, not as the network)'
        elif any(n.endswith(('data.pkl', 'constants.pkl')) for n in names):
            what = 'a zip archive written by torch.save or torch.jit.save (a checkpoint or TorchScript file)'
        else:
            what = 'a zip archive'
        return LoadError(f'{path} is {what}, not a network pickle; {_FIX}')
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return LoadError(f'{path} is {what}, not a network pickle; {_FIX}')
    if not head.startswith(b'\x80'):
        return LoadError(
            f'{path} is not a network pickle (it does not start like a pickle stream; an HTML page or a text file?); '
            f'{_FIX}'
        )
    return None


def _describe_bad_stream(path: pathlib.Path, e: Exception) -> LoadError:
    foreign = _foreign_file(path)
    if foreign is not None:
        return foreign
    if isinstance(e, EOFError) or 'truncated' in str(e) or 'ran out of input' in str(e).lower():
        return LoadError(f'{path} is truncated (incomplete download or copy?): {e}; download or copy it again')
    return LoadError(f'{path} is a corrupt or unsupported pickle ({type(e).__name__}: {e}); check the file')


def load_network_pkl(source: str | os.PathLike, *, trust: bool = False, **download_kwargs: Any) -> dict:
    """Loads a network pickle (docs/compatibility.md §1), or a legacy TensorFlow StyleGAN2(-ADA) pickle.

    TensorFlow pickles (a `(G, D, Gs)` tuple) are always read in safe mode and converted to our StyleGAN2 networks
    (`engine.legacy_tf`); they come back as `G`, `D`, `G_ema` (from Gs) with `training_set_kwargs` and
    `augment_pipe` None.

    Args:
        source: Path, `file://` / `http(s)://` URL, or training-run directory; see `resolve_source()`.
        trust: False (default): safe mode, never executes anything from the file and rebuilds known networks with
            our code. True: load like the reference tools, EXECUTING the code embedded in the file.
        **download_kwargs: Passed to `download()` for URLs.

    Returns:
        dict with at least `G_ema` (an nn.Module) and the keys `G`, `D`, `augment_pipe`, `training_set_kwargs`
        (None when the file lacks them).

    Raises:
        LoadError: Missing file, not a pickle, truncated file, no `G_ema`, failed download, or a network our code
            cannot rebuild; the message names the problem and the fix.
        UnsafePickleError: In safe mode, if the file references anything not allowed (`.names` lists it).
    """
    path = resolve_source(source, **download_kwargs)
    foreign = _foreign_file(path)
    if foreign is not None:
        if _is_download(source):
            path.unlink(missing_ok=True)
            foreign = LoadError(f'{foreign} (downloaded from {os.fspath(source)}; removed from the cache)')
        raise foreign
    try:
        with open(path, 'rb') as f:
            if legacy_tf.is_tf_pickle(f):  # StyleGAN2(-ADA) TensorFlow: always read safely, never executed
                scan_pickle(f)  # nesting / expansion limits first, as safe_load does
                f.seek(0)
                data = legacy_tf.load_tf_network_pkl(f)
            else:
                data = trusted_load(f) if trust else safe_load(f)
    except LoadError as e:
        raise _with_path(e, path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        error = _describe_bad_stream(path, e)
        if _is_download(source):
            # A bad download must not stay in the cache, or the next run would load the same bad file again.
            path.unlink(missing_ok=True)
            error = LoadError(f'{error} (downloaded from {os.fspath(source)}; removed from the cache)')
        raise error from e
    except (ImportError, SyntaxError, NameError) as e:
        raise LoadError(
            f'{path}: executing its embedded code failed ({type(e).__name__}: {e}); the file needs code this '
            'installation lacks'
        ) from e
    except RecursionError as e:
        raise ResourceLimitError(
            f'{path}: the pickle nests objects too deeply to read ({e}); a damaged or hostile file?'
        ) from None
    except RuntimeError as e:
        raise LoadError(f'{path}: could not read tensors ({e}); the file may be corrupt') from e
    except Exception as e:  # anything else from a foreign file (e.g. its embedded code in trusted mode)
        raise LoadError(f'{path}: loading failed ({type(e).__name__}: {e})') from e

    if not isinstance(data, dict) or 'G_ema' not in data:
        keys = sorted(map(str, data.keys())) if isinstance(data, dict) else type(data).__name__
        raise LoadError(
            f'{path} has no G_ema network (found {keys}); pass a network pickle (e.g. network-snapshot-*.pkl) '
            'that contains G_ema'
        )
    if not isinstance(data['G_ema'], torch.nn.Module):
        raise LoadError(
            f'{path}: G_ema must be a network (torch.nn.Module), got {type(data["G_ema"]).__name__}; pass a network '
            'pickle written by train.py or the StyleGAN2-ADA/StyleGAN3 tools'
        )
    for key in ('G', 'D', 'augment_pipe', 'training_set_kwargs'):
        data.setdefault(key, None)
    return data


def _is_download(source: Any) -> bool:
    """Whether `source` is an http(s) URL (its file lives in the download cache)."""
    return isinstance(source, str) and source.split('://', 1)[0].lower() in ('http', 'https') and '://' in source


def _with_path(e: LoadError, path: pathlib.Path) -> LoadError:
    """The same error with the file path in front of its message."""
    if isinstance(e, UnsafePickleError):
        new: LoadError = UnsafePickleError(e.names)
        new.args = (f'{path}: {e}',)
        return new
    return type(e)(f'{path}: {e}')  # LoadError or a subclass (ResourceLimitError, ...): keep the class


def load_generator_and_path(
    source: str | os.PathLike | None = None, *, trust: bool = False, **download_kwargs: Any
) -> tuple[torch.nn.Module, pathlib.Path]:
    """The one generator loader of every tool and the visualizer: `G_ema` on the CPU, eval mode, no gradients.

    Args:
        source: As for `load_network_pkl()`; None means the bundled default network (`default_network_path()`).
        trust: See `load_network_pkl()`.
        **download_kwargs: Passed to `download()` for URLs.

    Returns:
        (G_ema, the local pickle it came from).

    Raises:
        LoadError / UnsafePickleError: See `load_network_pkl()`; also when `G_ema` is not a generator (it needs
            `mapping` and `synthesis`).
    """
    path = resolve_source(source, **download_kwargs)
    data = load_network_pkl(path, trust=trust)
    G = data['G_ema']
    if not (hasattr(G, 'mapping') and hasattr(G, 'synthesis')):
        raise LoadError(
            f'{path}: G_ema must be a generator with mapping and synthesis networks, got {type(G).__name__}; pass a '
            'StyleGAN2/StyleGAN3 network pickle'
        )
    return G.eval().requires_grad_(False), path


def load_generator(
    source: str | os.PathLike | None = None,
    *,
    trust: bool = False,
    device: str | torch.device = 'cpu',
    **download_kwargs: Any,
) -> torch.nn.Module:
    """Loads `G_ema` from a network pickle, in eval mode without gradients, on `device`.

    Args:
        source: As for `load_network_pkl()`; None means the bundled default network (`default_network_path()`).
        trust: See `load_network_pkl()`.
        device: 'auto', 'cpu', 'cuda', 'mps' or a torch.device.

    Raises:
        LoadError / UnsafePickleError: See `load_generator_and_path()`.
        ValueError: On an unavailable device.
    """
    from engine.devices import pick_device

    dev = pick_device(device)
    G, _ = load_generator_and_path(source, trust=trust, **download_kwargs)
    return G.to(dev)
