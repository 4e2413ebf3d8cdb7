"""Shared machinery of the metrics: options, the feature detector, feature statistics and their caches.

The feature detector is the one of the reference tools: `inception-2015-12-05.pkl`, a pickle holding a TorchScript
module `detector(img_u8, return_features=True) -> [N, 2048]` that takes images [N, 3, H, W] on the 0..255 scale
(any size; it resizes internally). We never download it behind the user's back: it comes from `--detector`
(a path or an http(s) URL, downloaded once into the cache), the `SG3VIZ_DETECTOR` environment variable, or a copy
already in the cache directory. The file is a TorchScript program (code that can read and write files), so it is
run only with `--trust` or when its SHA-256 is pinned (`$SG3VIZ_TRUSTED_SHA256`) or published
(`engine.torchscript_guard`); that check comes before anything in the file is deserialised.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import logging
import os
import pathlib
import pickle
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

DETECTOR_URL = (
    'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl'
)
DETECTOR_URL_ALT = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pkl'
DETECTOR_FILENAME = 'inception-2015-12-05.pkl'
DETECTOR_ENV = 'SG3VIZ_DETECTOR'
CACHE_ENV = 'SG3VIZ_CACHE_DIR'


class MetricError(Exception):
    """A user-facing metric failure (missing detector or dataset, unsuitable network); the message says the fix."""


@dataclasses.dataclass
class MetricOptions:
    """Everything a metric function needs.

    Attributes:
        G: The generator (G_ema); metrics work on a private copy and never modify it.
        dataset_kwargs: Keyword arguments of `training.dataset.ImageFolderDataset` (`path`, `resolution`,
            `use_labels`, `xflip`, `max_size`, `random_seed`; `class_name` is ignored), or None.
        num_gpus: Number of processes taking part (torch.distributed must be initialised when > 1).
        rank: This process's rank in [0, num_gpus).
        device: Device the work runs on.
        num: Override of the number of generated samples (e.g. 1000 for a quick estimate), or None.
        detector: Path or URL of the feature detector, or None (environment variable, then cache).
        cache_dir: Cache directory (downloads, dataset statistics); None = `default_cache_dir()`.
        trust: Run the detector's TorchScript even when its SHA-256 is neither pinned nor published (see
            `engine.torchscript_guard`), and allow pickles referencing other globals.
        progress: Show tqdm progress bars (rank 0 only).
        batch_size: Images per forward pass.
    """

    G: Any = None
    dataset_kwargs: dict | None = None
    num_gpus: int = 1
    rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device('cpu'))
    num: int | None = None
    detector: str | None = None
    cache_dir: str | os.PathLike | None = None
    trust: bool = False
    progress: bool = False
    batch_size: int = 32


def default_cache_dir() -> pathlib.Path:
    """`$SG3VIZ_CACHE_DIR`, else `$XDG_CACHE_HOME/sg3viz`, else `~/.cache/sg3viz` (not created here)."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return pathlib.Path(base) / 'sg3viz'


def _cache_dir(opts_cache_dir: str | os.PathLike | None) -> pathlib.Path:
    return pathlib.Path(opts_cache_dir) if opts_cache_dir is not None else default_cache_dir()


def _is_url(s: str) -> bool:
    return urllib.parse.urlparse(str(s)).scheme in ('http', 'https')


def _missing_detector_message(what: str) -> str:
    return (
        f'{what}. FID/KID need the Inception feature detector {DETECTOR_FILENAME} of the reference tools. '
        f'Download it once (e.g. from {DETECTOR_URL} or {DETECTOR_URL_ALT}) and pass --detector PATH '
        f'(or set {DETECTOR_ENV}=PATH), or pass --detector URL on a machine that is online; '
        f'a copy placed at <cache>/{DETECTOR_FILENAME} is found automatically (cache: $SG3VIZ_CACHE_DIR or '
        '~/.cache/sg3viz).'
    )


def resolve_detector_source(
    detector: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None
) -> pathlib.Path:
    """Finds the detector file: the argument, else `$SG3VIZ_DETECTOR`, else `<cache>/inception-2015-12-05.pkl`.

    An http(s) URL is downloaded once to `<cache>/downloads/` (`engine.loading.download`: complete files only);
    `file://` URLs are paths.

    Returns:
        Path of an existing local file.

    Raises:
        MetricError: When no detector is given and none is cached, the file is missing, or the download fails
            (offline); the message says where to get it.
    """
    cache = _cache_dir(cache_dir)
    source = detector if detector is not None else os.environ.get(DETECTOR_ENV) or None
    if source is None:
        cached = cache / DETECTOR_FILENAME
        if cached.is_file():
            return cached
        raise MetricError(_missing_detector_message('resolve_detector_source(): no feature detector was given'))
    source = str(source)
    if source.startswith('file://'):
        source = urllib.parse.unquote(urllib.parse.urlparse(source).path)
    if not _is_url(source):
        path = pathlib.Path(source).expanduser()
        if not path.is_file():
            raise MetricError(_missing_detector_message(f'resolve_detector_source(): detector file not found: {path}'))
        return path
    from engine.loading import LoadError, download

    try:  # complete files only: length and parse checked before the file enters the cache
        return download(source, cache=cache / 'downloads', progress=False)
    except LoadError as e:
        raise MetricError(_missing_detector_message(f'resolve_detector_source(): {e}')) from e


def file_digest(path: str | os.PathLike) -> str:
    """First 16 hex digits of the file's sha256 (keys the dataset-statistics cache)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------
# Detector pickles: a TorchScript archive wrapped in a plain pickle, loadable with `pickle.load` anywhere.

_SAFE_DETECTOR_GLOBALS = {
    ('collections', 'OrderedDict'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch.storage', '_load_from_bytes'),
}


def _load_bytes_safely(b: bytes) -> Any:
    """`torch.storage._load_from_bytes` without arbitrary code: TorchScript archives via torch.jit.load, anything
    else via `torch.load(weights_only=True)`."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if b[:4] == b'PK\x03\x04':
            with zipfile.ZipFile(io.BytesIO(b)) as z:
                if any(n.endswith('constants.pkl') or '/code/' in n for n in z.namelist()):
                    return torch.jit.load(io.BytesIO(b), map_location='cpu')
        return torch.load(io.BytesIO(b), map_location='cpu', weights_only=True)


class _DetectorUnpickler(pickle.Unpickler):
    def __init__(self, f, trust: bool):
        super().__init__(f)
        self.trust = trust
        self.refused: list[str] = []

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('torch.storage', '_load_from_bytes') and not self.trust:
            return _load_bytes_safely
        if self.trust or (module, name) in _SAFE_DETECTOR_GLOBALS:
            return super().find_class(module, name)
        self.refused.append(f'{module}.{name}')
        raise pickle.UnpicklingError(f'refused global {module}.{name}')


def save_detector_pkl(detector: torch.jit.ScriptModule, path: str | os.PathLike) -> None:
    """Writes a TorchScript detector as a plain pickle (the format `load_detector` and `pickle.load` read).

    Raises:
        TypeError: If `detector` is not a `torch.jit.ScriptModule`.
    """
    if not isinstance(detector, torch.jit.ScriptModule):
        raise TypeError(
            f'save_detector_pkl(): detector must be a torch.jit.ScriptModule, got {type(detector).__name__}'
        )
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.jit.save deprecation notice.
        torch.jit.save(detector, buf)

    class _Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if obj is detector:
                return (torch.storage._load_from_bytes, (buf.getvalue(),))
            return NotImplemented

    with open(path, 'wb') as f:
        _Pickler(f, protocol=4).dump(detector)


def _read_detector(path: pathlib.Path, trust: bool) -> torch.nn.Module:
    """Reads a detector file; its TorchScript runs only if `engine.torchscript_guard` allows it (checked first)."""
    from engine.load_errors import LoadError
    from engine.torchscript_guard import check_torchscript_allowed

    try:
        check_torchscript_allowed(path, trust=trust, what='FID/KID detector')
    except LoadError as e:
        raise MetricError(f'load_detector(): {e}') from None
    data = path.read_bytes()
    if data[:4] == b'PK\x03\x04':  # A bare TorchScript archive (torch.jit.save) is accepted too.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                return torch.jit.load(io.BytesIO(data), map_location='cpu')
        except Exception as e:
            raise MetricError(f'load_detector(): {path} is not a TorchScript detector ({type(e).__name__}: {e})') from e
    unpickler = _DetectorUnpickler(io.BytesIO(data), trust=trust)
    try:
        obj = unpickler.load()
    except pickle.UnpicklingError as e:
        if unpickler.refused:
            raise MetricError(
                f'load_detector(): {path} references {", ".join(unpickler.refused)}, which a TorchScript detector '
                'does not need; pass --trust (trust=True) only if you trust this file'
            ) from e
        raise MetricError(f'load_detector(): {path} is not a detector pickle ({e})') from e
    except Exception as e:
        raise MetricError(f'load_detector(): could not read {path} ({type(e).__name__}: {e})') from e
    if isinstance(obj, dict) and len(obj) == 1:
        obj = next(iter(obj.values()))
    if not isinstance(obj, torch.nn.Module):
        raise MetricError(f'load_detector(): {path} must hold a torch module, got {type(obj).__name__}')
    return obj


# Memoisation only (same file + device -> same module); it cannot change results.
_detector_cache: dict[tuple, torch.nn.Module] = {}


def load_detector(
    detector: str | os.PathLike | None,
    device: torch.device | str = 'cpu',
    *,
    cache_dir: str | os.PathLike | None = None,
    trust: bool = False,
) -> tuple[torch.nn.Module, str]:
    """Loads (once per file and device) the feature detector.

    Args:
        detector: Path, http(s) URL or None (see `resolve_detector_source`).
        device: Device to move it to.
        cache_dir: Cache directory; None = `default_cache_dir()`.
        trust: Run the detector even when its SHA-256 is neither pinned (`$SG3VIZ_TRUSTED_SHA256`) nor published
            (`engine.torchscript_guard`); allow arbitrary globals in the pickle.

    Returns:
        (module in eval mode, digest of the file) -- call it as `module(img_u8 [N, 3, H, W], return_features=True)`.

    Raises:
        MetricError: Missing/offline/unreadable detector (the message says where to get it), or a detector that may
            not run (not trusted, pinned or published; the message gives its SHA-256 and the fixes).
    """
    from engine.load_errors import LoadError
    from engine.torchscript_guard import check_torchscript_allowed

    path = resolve_detector_source(detector, cache_dir)
    try:
        check_torchscript_allowed(path, trust=trust, what='FID/KID detector')  # also before a memoised copy is reused
    except LoadError as e:
        raise MetricError(f'load_detector(): {e}') from None
    digest = file_digest(path)
    key = (digest, str(torch.device(device)), trust)
    if key not in _detector_cache:
        module = _read_detector(path, trust).to(device)
        module.eval()
        _detector_cache[key] = module
    return _detector_cache[key], digest


def images_to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output [N, C, H, W] float in [-1, 1] (C = 1 or 3) -> uint8 [N, 3, H, W] in 0..255 for the detector."""
    img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return img.repeat(1, 3, 1, 1) if img.shape[1] == 1 else img


def run_detector(detector: torch.nn.Module, img_u8: torch.Tensor) -> torch.Tensor:
    """Features [N, F] float32 of uint8-range images [N, 3, H, W] (1-channel input is repeated to 3)."""
    if img_u8.shape[1] == 1:
        img_u8 = img_u8.repeat(1, 3, 1, 1)
    with torch.no_grad():
        return detector(img_u8, return_features=True).to(torch.float32)


# ----------------------------------------------------------------------------
# Distributed helpers (no-ops for a single process).


def all_gather_rows(x: torch.Tensor, num_gpus: int, interleave: bool = True) -> torch.Tensor:
    """Rows [n, ...] from every rank (all ranks pass the same n) -> [num_gpus * n, ...].

    interleave=True: row j of rank r lands at j * num_gpus + r (items split as i % num_gpus);
    interleave=False: rank 0's rows, then rank 1's, ... (items split in contiguous slices)."""
    if num_gpus <= 1:
        return x
    parts = [torch.empty_like(x) for _ in range(num_gpus)]
    torch.distributed.all_gather(parts, x)
    return torch.stack(parts, dim=1).flatten(0, 1) if interleave else torch.cat(parts)


def all_reduce_sum(values: torch.Tensor, num_gpus: int) -> torch.Tensor:
    """Sum of a tensor over ranks (float64 on the caller's device)."""
    if num_gpus > 1:
        torch.distributed.all_reduce(values)
    return values


# ----------------------------------------------------------------------------
# Feature statistics.


class FeatureStats:
    """Accumulates feature vectors: running mean/covariance sums (float64) and/or all rows.

    Args:
        capture_all: Keep every feature row (KID needs them).
        capture_mean_cov: Keep sums for the mean and covariance (FID needs them).
        max_items: Stop accepting rows after this many (None = no limit).
    """

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features: int | None = None
        self.all_features: list[np.ndarray] = []
        self.raw_mean: np.ndarray | None = None
        self.raw_cov: np.ndarray | None = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        """Adds rows [n, F] (float32); rows beyond max_items are dropped."""
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2
        if self.max_items is not None:
            x = x[: max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self.raw_mean = np.zeros([x.shape[1]], dtype=np.float64)
                self.raw_cov = np.zeros([x.shape[1], x.shape[1]], dtype=np.float64)
        assert x.shape[1] == self.num_features
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def append_torch(self, x: torch.Tensor, num_gpus: int = 1) -> None:
        """Gathers rows [n, F] from all ranks (same n everywhere) and adds them."""
        self.append(all_gather_rows(x, num_gpus).cpu().numpy())

    def get_all(self) -> np.ndarray:
        """All rows [num_items, F] float32."""
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu [F], sigma [F, F]) float64; sigma is the maximum-likelihood covariance (divides by n)."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {'num_items': np.int64(self.num_items)}
        if self.capture_all:
            out['features'] = self.get_all()
        if self.capture_mean_cov:
            out['mu'], out['sigma'] = self.get_mean_cov()
        return out


def make_dataset(dataset_kwargs: dict | None, metric: str, check_only: bool = False):
    """Builds the `ImageFolderDataset` named by `dataset_kwargs` (only checks that one is named if check_only).

    Raises:
        MetricError: No dataset given, or it cannot be opened.
    """
    if not dataset_kwargs or not dataset_kwargs.get('path'):
        raise MetricError(
            f'{metric} needs the training images: pass --data PATH (a dataset zip or folder); network pickles '
            'without training_set_kwargs do not name one'
        )
    if check_only:
        return None
    from training.dataset import ImageFolderDataset

    allowed = ('resolution', 'max_size', 'use_labels', 'xflip', 'random_seed')
    kwargs = {k: dataset_kwargs[k] for k in allowed if dataset_kwargs.get(k) is not None}
    try:
        return ImageFolderDataset(dataset_kwargs['path'], **kwargs)
    except ValueError as e:
        raise MetricError(f'{metric}: cannot open the dataset {dataset_kwargs["path"]!r}: {e}') from e


def random_labels(G, dataset, n: int, rng: np.random.RandomState) -> torch.Tensor:
    """Labels [n, c_dim] float32 for G: drawn from the dataset's labels when it has them, else random one-hot
    classes; empty [n, 0] for unconditional networks."""
    if G.c_dim == 0:
        return torch.zeros([n, 0])
    if dataset is not None and getattr(dataset, 'has_labels', False) and dataset.label_dim == G.c_dim:
        return torch.from_numpy(np.stack([dataset.get_label(int(i)) for i in rng.randint(len(dataset), size=n)]))
    c = torch.zeros([n, G.c_dim])
    c[torch.arange(n), torch.from_numpy(rng.randint(G.c_dim, size=n))] = 1
    return c


def progress_bar(opts: MetricOptions, total: int, desc: str):
    """A tqdm bar on rank 0 when progress is on, else a silent stand-in with `update()`/`close()`."""
    if opts.progress and opts.rank == 0:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit='img', leave=False)
    return _NullBar()


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _dataset_cache_file(
    opts: MetricOptions, dataset, detector_digest: str, mode: str, max_items: int | None
) -> pathlib.Path:
    path = os.path.abspath(opts.dataset_kwargs['path'])
    key = repr(
        (
            path,
            dataset.resolution,
            len(dataset),
            bool(opts.dataset_kwargs.get('xflip')),
            max_items,
            detector_digest,
            mode,
        )
    )
    digest = hashlib.md5(key.encode()).hexdigest()
    return _cache_dir(opts.cache_dir) / 'gan-metrics' / f'{dataset.name}-{mode}-{digest}.npz'


def compute_feature_stats_for_dataset(
    opts: MetricOptions, *, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None
) -> FeatureStats:
    """Detector features of the dataset's images (all of them, or the first `max_items`), cached on disk.

    The cache file is keyed by the dataset's absolute path, resolution, length, mirroring, max_items and the
    detector's digest; rank 0 writes it, every rank reads it.

    Raises:
        MetricError: Missing dataset or detector.
    """
    make_dataset(opts.dataset_kwargs, 'FID/KID', check_only=True)  # Cheap checks first, then the detector.
    detector, digest = load_detector(opts.detector, opts.device, cache_dir=opts.cache_dir, trust=opts.trust)
    dataset = make_dataset(opts.dataset_kwargs, 'FID/KID')
    mode = ('all' if capture_all else '') + ('meancov' if capture_mean_cov else '')
    cache_file = _dataset_cache_file(opts, dataset, digest, mode, max_items)
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=max_items)
    if cache_file.is_file():
        with np.load(cache_file) as data:
            _restore_stats(stats, data)
        return stats

    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    batch_size = opts.batch_size
    # Item i is handled by rank i % num_gpus; each batch covers num_gpus * batch_size consecutive items.
    with progress_bar(opts, num_items, 'dataset features') as bar:
        for start in range(0, num_items, batch_size * opts.num_gpus):
            idx = np.arange(start, min(start + batch_size * opts.num_gpus, num_items))
            n = len(idx)
            mine = idx[opts.rank :: opts.num_gpus]
            per_rank = -(-n // opts.num_gpus)
            mine = np.concatenate([mine, np.full(per_rank - len(mine), idx[0])])  # Pad to equal size.
            img = torch.from_numpy(np.stack([dataset[int(i)][0] for i in mine])).to(opts.device)
            feats = all_gather_rows(run_detector(detector, img), opts.num_gpus)[:n]
            stats.append(feats.cpu().numpy())
            bar.update(n)
    dataset.close()
    if opts.rank == 0:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.stem + f'.tmp{os.getpid()}.npz')
        np.savez(tmp, **stats.state())
        os.replace(tmp, cache_file)
    return stats


def _restore_stats(stats: FeatureStats, data) -> None:
    stats.num_items = int(data['num_items'])
    if stats.capture_all:
        stats.all_features = [data['features']]
        stats.num_features = data['features'].shape[1]
    if stats.capture_mean_cov:
        mu, sigma = data['mu'], data['sigma']
        stats.num_features = mu.shape[0]
        stats.raw_mean = mu * stats.num_items
        stats.raw_cov = (sigma + np.outer(mu, mu)) * stats.num_items


@contextlib.contextmanager
def private_generator(G, device: torch.device) -> Iterator[Any]:
    """A frozen eval-mode copy of G on `device` (the caller's G is never touched)."""
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    try:
        yield G
    finally:
        del G


def compute_feature_stats_for_generator(
    opts: MetricOptions, *, num_items: int, capture_all: bool = False, capture_mean_cov: bool = False, seed: int = 0
) -> FeatureStats:
    """Detector features of `num_items` generated images (z ~ N(0, I), psi = 1, noise 'const').

    Item i draws its latent from `RandomState([seed, i])`, so results do not depend on the number of GPUs.

    Raises:
        MetricError: Missing detector.
    """
    detector, _ = load_detector(opts.detector, opts.device, cache_dir=opts.cache_dir, trust=opts.trust)
    dataset = None
    if opts.G.c_dim > 0 and opts.dataset_kwargs and opts.dataset_kwargs.get('path'):
        dataset = make_dataset(dict(opts.dataset_kwargs, use_labels=True), 'labels')
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num_items)
    per_step = opts.batch_size * opts.num_gpus
    with private_generator(opts.G, opts.device) as G, progress_bar(opts, num_items, 'generator features') as bar:
        for step in range(-(-num_items // per_step)):
            # Item i draws z (and its label) from RandomState([seed, i]); rank r renders a contiguous slice.
            first = step * per_step + opts.rank * opts.batch_size
            rngs = [np.random.RandomState([seed, i]) for i in range(first, first + opts.batch_size)]
            z = torch.from_numpy(np.stack([r.randn(G.z_dim) for r in rngs]).astype(np.float32)).to(opts.device)
            c = torch.cat([random_labels(G, dataset, 1, r) for r in rngs]).to(opts.device)
            with torch.no_grad():
                img = G(z, c, truncation_psi=1, noise_mode='const')
            feats = all_gather_rows(run_detector(detector, images_to_uint8(img)), opts.num_gpus, interleave=False)
            stats.append(feats.cpu().numpy())
            bar.update(min(per_step, num_items - step * per_step))
    return stats
