"""Metric registry and the API used by `calc_metrics.py` and the training loop.

    result = calc_metric('fid50k_full', G=G_ema, dataset_kwargs=training_set_kwargs, num_gpus=1, rank=0,
                         device=device, detector='inception-2015-12-05.pkl')
    report_metric(result, run_dir=run_dir, snapshot_pkl=snapshot_pkl)   # appends metric-fid50k_full.jsonl

The result dict (an EasyDict) and the jsonl line follow the reference tools: `{"results": {name: value},
"metric": name, "total_time": s, "total_time_str": "1m 02s", "num_gpus": n, "snapshot_pkl": file,
"timestamp": unix_time}` (plus `"num_samples"` when `num` overrode the sample count).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable

import torch

import dnnlib

from . import equivariance, frechet_inception_distance, kernel_inception_distance, metric_utils
from .metric_utils import MetricError, MetricOptions

logger = logging.getLogger(__name__)

_metric_dict: dict[str, Callable[[MetricOptions], dict]] = {}  # Filled once at import by @register_metric.


def register_metric(fn: Callable[[MetricOptions], dict]) -> Callable[[MetricOptions], dict]:
    """Decorator: registers `fn(opts) -> {name: value}` under its function name."""
    _metric_dict[fn.__name__] = fn
    return fn


def is_valid_metric(metric: str) -> bool:
    """True if `metric` names a registered metric."""
    return metric in _metric_dict


def list_valid_metrics() -> list[str]:
    """Names of all registered metrics."""
    return list(_metric_dict.keys())


def format_time(seconds: float) -> str:
    """'12s', '3m 04s', '2h 05m 09s', '1d 02h 03m' (as the reference logs)."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 3600:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 86400:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'


def calc_metric(
    metric: str,
    G=None,
    dataset_kwargs: dict | None = None,
    num_gpus: int = 1,
    rank: int = 0,
    device: torch.device | str | None = None,
    num: int | None = None,
    detector: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    trust: bool = False,
    progress: bool = False,
    batch_size: int | None = None,
) -> dnnlib.EasyDict:
    """Computes one metric of a generator.

    Args:
        metric: A name from `list_valid_metrics()`.
        G: The generator (G_ema); it is copied, never modified.
        dataset_kwargs: `ImageFolderDataset` kwargs (`path`, `resolution`, `xflip`, ...) for FID/KID.
        num_gpus: Processes taking part (torch.distributed initialised when > 1); every rank must call this.
        rank: This process's rank.
        device: Device to compute on; None = the device of G's parameters.
        num: Number of generated samples instead of the metric's (e.g. 1000 for a quick estimate).
        detector: Feature detector path/URL for FID/KID (None: `$SG3VIZ_DETECTOR` or the cached copy).
        cache_dir: Cache directory for downloads and dataset statistics.
        trust: Allow detector pickles with arbitrary globals.
        progress: tqdm progress bars on rank 0.
        batch_size: Images per forward pass (default per metric).

    Returns:
        EasyDict(results=EasyDict({name: value}), metric, total_time, total_time_str, num_gpus[, num_samples]).
        Values are floats (NaN on ranks other than 0).

    Raises:
        ValueError: Unknown metric, bad num/num_gpus/rank.
        MetricError: The metric cannot run (no dataset/detector, no input transform); the message says why.
    """
    if not is_valid_metric(metric):
        raise ValueError(f'calc_metric(): metric must be one of {", ".join(list_valid_metrics())}, got {metric!r}')
    if num is not None and (isinstance(num, bool) or int(num) < 1):
        raise ValueError(f'calc_metric(): num must be a positive integer or None, got {num!r}')
    if not (int(num_gpus) >= 1 and 0 <= int(rank) < int(num_gpus)):
        raise ValueError(f'calc_metric(): need num_gpus >= 1 and 0 <= rank < num_gpus, got {num_gpus}, {rank}')
    if device is None:
        device = next(iter(G.parameters())).device if any(True for _ in G.parameters()) else torch.device('cpu')
    opts = MetricOptions(
        G=G, dataset_kwargs=dict(dataset_kwargs) if dataset_kwargs else None, num_gpus=int(num_gpus),
        rank=int(rank), device=torch.device(device), num=None if num is None else int(num), detector=detector,
        cache_dir=cache_dir, trust=trust, progress=progress, batch_size=batch_size or 32,
    )  # fmt: skip

    start = time.time()
    results = _metric_dict[metric](opts)
    total_time = time.time() - start
    if opts.num_gpus > 1:  # Make sure every rank agrees before anyone moves on.
        torch.distributed.barrier()
    result = dnnlib.EasyDict(
        results=dnnlib.EasyDict(results), metric=metric, total_time=total_time,
        total_time_str=format_time(total_time), num_gpus=opts.num_gpus,
    )  # fmt: skip
    if opts.num is not None:
        result.num_samples = opts.num
    return result


def report_metric(result_dict: dict, run_dir: str | os.PathLike | None = None, snapshot_pkl: str | None = None) -> str:
    """Formats a result and appends it as one JSON line to `<run_dir>/metric-<metric>.jsonl` (when run_dir given).

    `snapshot_pkl` is stored relative to run_dir when it lies inside it (as the reference does).

    Returns:
        The JSON line written (also when no file is written).
    """
    metric = result_dict['metric']
    if snapshot_pkl is not None and run_dir is not None:
        rel = os.path.relpath(os.path.abspath(snapshot_pkl), os.path.abspath(run_dir))
        snapshot_pkl = rel if not rel.startswith('..') else str(snapshot_pkl)
    line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    if run_dir is not None:
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'a', encoding='utf-8') as f:
            f.write(line + '\n')
    return line


# ----------------------------------------------------------------------------
# Metrics. Names follow the reference: <what><num>k_<data>; `opts.num` overrides the generated count.


def _num(opts: MetricOptions, default: int) -> int:
    return opts.num if opts.num is not None else default


@register_metric
def fid50k_full(opts: MetricOptions) -> dict:
    """FID of 50k generated images against the whole dataset (mirrored if xflip)."""
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=_num(opts, 50000))
    return {'fid50k_full': fid}


@register_metric
def kid50k_full(opts: MetricOptions) -> dict:
    """KID of 50k generated images against up to 1M dataset images (100 subsets of 1000)."""
    kid = kernel_inception_distance.compute_kid(
        opts, max_real=1000000, num_gen=_num(opts, 50000), num_subsets=100, max_subset_size=1000
    )
    return {'kid50k_full': kid}


def _eq(opts: MetricOptions, **flags) -> tuple[float, ...]:
    return equivariance.compute_equivariance_metrics(
        opts, num_samples=_num(opts, 50000), batch_size=min(opts.batch_size, 4), **flags
    )


@register_metric
def eqt50k_int(opts: MetricOptions) -> dict:
    """EQ-T with whole-pixel translations, 50k samples (Alias-Free GAN, sec. 3)."""
    (psnr,) = _eq(opts, compute_eqt_int=True)
    return {'eqt50k_int': psnr}


@register_metric
def eqt50k_frac(opts: MetricOptions) -> dict:
    """EQ-T with fractional translations, 50k samples."""
    (psnr,) = _eq(opts, compute_eqt_frac=True)
    return {'eqt50k_frac': psnr}


@register_metric
def eqr50k(opts: MetricOptions) -> dict:
    """EQ-R with rotations over the full circle, 50k samples."""
    (psnr,) = _eq(opts, compute_eqr=True)
    return {'eqr50k': psnr}


__all__ = ['MetricError', 'calc_metric', 'is_valid_metric', 'list_valid_metrics', 'report_metric', 'metric_utils']
