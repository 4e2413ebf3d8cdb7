"""Training throughput on the CPU: sec/kimg of the stylegan2 and stylegan3-t presets at 32 px (small networks).

Runs the real phases (Gmain, Greg, Dmain, Dreg with their intervals, G_ema update) of `training.training_loop`
on random reals for a few iterations after a warm-up, and prints one line per preset::

    python bench/bench_training.py [--iters 4] [--batch 8] [--cbase 1024] [--cmax 64] [--threads 1]
"""

from __future__ import annotations

import pathlib
import sys
import time

import click
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


class _FakeSet:
    """Stands in for a 32 px RGB dataset (the loop only needs these attributes to build the networks)."""

    def __init__(self, res):
        self.resolution, self.num_channels, self.label_dim = res, 3, 0


def bench_preset(cfg: str, res: int, batch: int, cbase: int, cmax: int, iters: int, device: str = 'cpu') -> float:
    """Returns sec/kimg of `iters` training iterations (after one warm-up iteration)."""
    import train
    from training.loss import StyleGAN2Loss
    from training.training_loop import _build_networks, _make_phases, _update_ema, ema_beta, run_phase

    c = train.build_training_options(cfg=cfg, data='-', gpus=1, batch=batch, gamma=1, cbase=cbase, cmax=cmax,
                                     aug='noaug', workers=0, device_type=device, dataset_resolution=res)  # fmt: skip
    G, D, G_ema = _build_networks(c['G_kwargs'], c['D_kwargs'], _FakeSet(res), device)
    loss = StyleGAN2Loss(device, G, D, **c['loss_kwargs'])
    phases = _make_phases(G, D, c['G_opt_kwargs'], c['D_opt_kwargs'], c['G_reg_interval'], c['D_reg_interval'])
    real = [torch.rand([batch, 3, res, res], device=device) * 2 - 1]
    cond = [torch.zeros([batch, 0], device=device)]
    elapsed = 0.0
    for it in range(iters + 1):
        start = time.perf_counter()
        for phase in phases:
            if it % phase.interval == 0:
                z = [torch.randn([batch, G.z_dim], device=device)]
                run_phase(phase, loss, real, cond, z, cond, cur_nimg=it * batch, num_gpus=1)
        _update_ema(G_ema, G, ema_beta(batch, it * batch, c['ema_kimg'], c['ema_rampup']))
        if it > 0:  # The first iteration pays for one-time set-up.
            elapsed += time.perf_counter() - start
    return elapsed / (iters * batch) * 1000


@click.command()
@click.option('--iters', help='Timed iterations per preset', metavar='INT', type=click.IntRange(min=1), default=4,
              show_default=True)  # fmt: skip
@click.option('--batch', help='Batch size', metavar='INT', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--res', help='Resolution', metavar='PX', type=int, default=32, show_default=True)
@click.option('--cbase', help='Capacity multiplier', metavar='INT', type=int, default=1024, show_default=True)
@click.option('--cmax', help='Max. feature maps', metavar='INT', type=int, default=64, show_default=True)
@click.option('--threads', help='torch CPU threads', metavar='INT', type=click.IntRange(min=1), default=1,
              show_default=True)  # fmt: skip
def main(iters, batch, res, cbase, cmax, threads):
    """Print sec/kimg of stylegan2 and stylegan3-t training on the CPU, one line each."""
    torch.set_num_threads(threads)
    for cfg in ('stylegan2', 'stylegan3-t'):
        sec_per_kimg = bench_preset(cfg, res, batch, cbase, cmax, iters)
        print(f'{cfg:<12s} {res}px cbase {cbase} cmax {cmax} batch {batch} cpu x{threads}: '
              f'{sec_per_kimg:8.1f} sec/kimg', flush=True)  # fmt: skip


if __name__ == '__main__':
    main()
