"""Compute quality and equivariance metrics of a network pickle.

Each result is printed as a JSON line and appended to `metric-<name>.jsonl` beside the snapshot (as the reference
tools do; `--run-dir` chooses another folder; nothing is written for the bundled network or a URL unless
`--run-dir` is given). Metrics: fid50k_full, kid50k_full (need --data, or the dataset named in the pickle, and
the Inception detector file: --detector or $SG3VIZ_DETECTOR), eqt50k_int, eqt50k_frac, eqr50k (StyleGAN3 only).
`--num` overrides the number of generated samples for a quick estimate.

Examples:

\b
    python calc_metrics.py --metrics eqt50k_int,eqr50k --num 1000
    python calc_metrics.py --network runs/00000-stylegan3-t-data-gpus1-batch32-gamma2/network-snapshot-000400.pkl \\
        --metrics fid50k_full,kid50k_full --data data.zip --mirror 1 --detector inception-2015-12-05.pkl
    python calc_metrics.py --network snapshot.pkl --metrics fid50k_full --gpus 2
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import click


def _dataset_kwargs(training_set_kwargs, data: str | None, mirror: bool | None) -> dict | None:
    """--data replaces the pickle's dataset; --mirror overrides xflip."""
    if data is not None:
        kwargs = dict(path=data, resolution=None, use_labels=False, xflip=False, max_size=None)
    elif training_set_kwargs:
        kwargs = dict(training_set_kwargs)
        kwargs.pop('class_name', None)
        kwargs['max_size'] = None  # The metrics use the whole dataset ("_full").
    else:
        return None
    if mirror is not None:
        kwargs['xflip'] = bool(mirror)
    return kwargs


def run_metrics(
    *,
    network: str | None,
    metrics: list[str],
    data: str | None = None,
    mirror: bool | None = None,
    num_gpus: int = 1,
    rank: int = 0,
    device: str = 'auto',
    trust: bool = False,
    num: int | None = None,
    detector: str | None = None,
    run_dir: str | None = None,
    progress: bool = True,
    echo=print,
) -> list[dict]:
    """Loads the network and computes each metric on this rank (torch.distributed set up when num_gpus > 1).

    Returns:
        The result dicts (rank 0 also reports them: printed via `echo` and appended to the jsonl).

    Raises:
        LoadError, MetricError, ValueError: User-facing problems.
    """
    import torch

    from engine import sources
    from engine.devices import pick_device
    from engine.loading import load_network_pkl, resolve_source
    from metrics import metric_main

    if run_dir is not None:  # before any work: a metric computed for nothing is an hour lost
        _check_run_dir(run_dir)
    dev = pick_device(device)
    if num_gpus > 1 and dev.type == 'cuda':
        dev = torch.device('cuda', rank)
    is_bundled = network is None
    path = resolve_source(network)
    pkl = load_network_pkl(path, trust=trust)
    G = pkl['G_ema'].eval().requires_grad_(False).to(dev)
    is_remote = sources.parse_source(network).is_download
    if run_dir is None and not is_bundled and not is_remote:
        run_dir = os.path.dirname(os.path.abspath(path))
    dataset_kwargs = _dataset_kwargs(pkl.get('training_set_kwargs'), data, mirror)

    results = []
    for metric in metrics:
        result = metric_main.calc_metric(
            metric, G=G, dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank, device=dev, num=num,
            detector=detector, trust=trust, progress=progress and rank == 0,
        )  # fmt: skip
        if rank == 0:
            line = metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=str(path))
            echo(line)
            if run_dir is not None:
                echo(f'Appended to {os.path.join(run_dir, f"metric-{metric}.jsonl")}')
        results.append(result)
    return results


def _check_run_dir(run_dir: str) -> None:
    """Raises ValueError unless `run_dir` is (or can be made) a writable directory."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f'--run-dir {run_dir!r} is an existing file, not a directory; pass a directory')
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise ValueError(f'--run-dir {run_dir!r} cannot be created ({e}); pass a writable directory') from None
    if not os.access(run_dir, os.W_OK):
        raise ValueError(f'--run-dir {run_dir!r} is not writable; pass a writable directory')


def _subprocess(rank: int, kwargs: dict, temp_dir: str) -> None:
    import torch

    backend = 'nccl' if torch.cuda.is_available() and kwargs['device'] in ('auto', 'cuda') else 'gloo'
    init_file = pathlib.Path(temp_dir) / '.torch_distributed_init'
    torch.distributed.init_process_group(
        backend=backend, init_method=f'file://{init_file}', rank=rank, world_size=kwargs['num_gpus']
    )
    try:
        run_metrics(rank=rank, **kwargs)
    finally:
        torch.distributed.destroy_process_group()


@click.command(help=__doc__)
@click.option(
    '--network', metavar='PATH|URL', default=None, help='Network pickle, URL or run dir (default: bundled network)'
)
@click.option(
    '--metrics', metavar='LIST', default='fid50k_full', show_default=True, help='Comma-separated metric names'
)
@click.option('--data', metavar='PATH', default=None, help='Dataset zip/folder (default: the one named in the pickle)')
@click.option(
    '--mirror', metavar='BOOL', type=bool, default=None, help='Add x-flipped dataset images (default: as in the pickle)'
)
@click.option(
    '--gpus',
    'num_gpus',
    metavar='INT',
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help='Number of processes (GPUs)',
)
@click.option('--device', metavar='NAME', default='auto', show_default=True, help='auto, cpu, cuda or mps')
@click.option(
    '--trust',
    is_flag=True,
    default=False,
    show_default=True,
    help='Run code embedded in the pickles; only for files you trust',
)
@click.option(
    '--num',
    metavar='SAMPLES',
    type=click.IntRange(min=1),
    default=None,
    help='Generated samples instead of 50k (quick estimate)',
)
@click.option(
    '--detector',
    metavar='PATH|URL',
    default=None,
    help='Inception detector pickle (default: $SG3VIZ_DETECTOR or the cache)',
)
@click.option(
    '--run-dir', metavar='DIR', default=None, help='Where metric-<name>.jsonl goes (default: beside the snapshot)'
)
@click.option('--progress/--no-progress', default=True, show_default=True, help='Show progress bars')
def main(network, metrics, data, mirror, num_gpus, device, trust, num, detector, run_dir, progress):
    import torch

    from engine.loading import LoadError, resolve_source
    from metrics import metric_main

    names = [m.strip() for m in metrics.split(',') if m.strip()]
    bad = [m for m in names if not metric_main.is_valid_metric(m)]
    if not names or bad:
        raise click.ClickException(
            f'--metrics must be names from: {", ".join(metric_main.list_valid_metrics())}; got {metrics!r}'
        )
    kwargs = dict(
        network=network, metrics=names, data=data, mirror=mirror, num_gpus=num_gpus, device=device, trust=trust,
        num=num, detector=detector, run_dir=run_dir, progress=progress,
    )  # fmt: skip
    try:
        if run_dir is not None:
            _check_run_dir(run_dir)
        if num_gpus == 1:
            run_metrics(**kwargs, echo=click.echo)
        else:
            if device in ('auto', 'cuda') and torch.cuda.is_available() and torch.cuda.device_count() < num_gpus:
                raise ValueError(f'--gpus must be at most {torch.cuda.device_count()} (the GPUs here), got {num_gpus}')
            if network is not None:
                resolve_source(network)  # a missing file fails here, and a URL is downloaded once, not per process
            with tempfile.TemporaryDirectory() as temp_dir:
                torch.multiprocessing.spawn(_subprocess, args=(kwargs, temp_dir), nprocs=num_gpus)
    except (LoadError, metric_main.MetricError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    except torch.multiprocessing.ProcessRaisedException as e:
        lines = [s for s in str(e).strip().splitlines() if s.strip()]
        raise click.ClickException(f'a metric process failed: {lines[-1] if lines else e}') from e


if __name__ == '__main__':
    main()
