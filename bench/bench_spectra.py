"""Benchmark of `avg_spectra.py calc`: images/s batched vs one image at a time, on a 64 px dataset and network.

Examples:

\b
  python bench/bench_spectra.py                       # CPU, Twemoji subset + bundled network
  python bench/bench_spectra.py --device cuda --num-net 64
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import click
import numpy as np
import PIL.Image
import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import avg_spectra  # noqa: E402
import dataset_tool  # noqa: E402


def _make_dataset(tmp: pathlib.Path, num: int) -> str:
    twemoji = REPO.parent / 'shared' / 'data' / 'twemoji-64'
    dest = tmp / 'ds64.zip'
    if twemoji.is_dir():
        dataset_tool.convert_dataset(str(twemoji), str(dest), max_images=num, progress=False)
        return str(dest)
    src = tmp / 'raw'  # fallback: random 64 px images
    src.mkdir()
    rnd = np.random.RandomState(0)
    for i in range(num):
        PIL.Image.fromarray(rnd.randint(0, 256, (64, 64, 3)).astype(np.uint8)).save(src / f'{i:05d}.png')
    return str(src)


def _rate(source: str, num: int, batch: int, device: torch.device, repeats: int) -> float:
    src = avg_spectra.ImageSource(source, num=num, seed=0, device=device)
    best = float('inf')
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        avg_spectra.compute_spectrum(src, mean=128.0, std=64.0, batch=batch, progress=False)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return num / best


@click.command(help=__doc__)
@click.option('--device', metavar='NAME', default='cpu', show_default=True, help='Device (cpu, cuda, mps)')
@click.option(
    '--num-data',
    metavar='INT',
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help='Dataset images per run',
)
@click.option(
    '--num-net',
    metavar='INT',
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help='Network images per run (0 = skip)',
)
@click.option(
    '--batch', metavar='INT', type=click.IntRange(min=1), default=32, show_default=True, help='Batched run batch size'
)
@click.option(
    '--repeats', metavar='INT', type=click.IntRange(min=1), default=2, show_default=True, help='Best of N runs'
)
def main(device, num_data, num_net, batch, repeats):  # noqa: D103
    dev = torch.device(device)
    click.echo(f'device={dev} torch={torch.__version__} threads={torch.get_num_threads()}')
    with tempfile.TemporaryDirectory() as tmp:
        ds = _make_dataset(pathlib.Path(tmp), num_data)
        b = _rate(ds, num_data, batch, dev, repeats)
        s = _rate(ds, num_data, 1, dev, repeats)
        click.echo(
            f'dataset 64px  calc: batched({batch}) {b:8.1f} img/s | one at a time {s:8.1f} img/s | ratio {b / s:.2f}x'
        )
    pkl = REPO / 'models' / 'default.pkl'
    if num_net and pkl.is_file():
        nb = min(batch, num_net)
        b = _rate(str(pkl), num_net, nb, dev, 1)
        s = _rate(str(pkl), num_net, 1, dev, 1)
        click.echo(
            f'network 64px  calc: batched({nb}) {b:8.2f} img/s | one at a time {s:8.2f} img/s | ratio {b / s:.2f}x'
        )
    elif num_net:
        click.echo('network: models/default.pkl not found, skipped')


if __name__ == '__main__':
    main()
