"""Projector speed: optimisation steps per second, against the bare forward+backward of the synthesis network.

For each network, one run of `engine.projector.iter_project()` (built-in loss; the VGG16 file is not bundled) after
two warm-up steps, and in the same run the time of a bare `G.synthesis(ws)` forward + backward with respect to ws
(the least any step can cost). The ratio step / bare is the projector's own overhead (loss, Adam, noise maps).

Networks: the bundled default (StyleGAN3-T, 64 px) and a random 256 px StyleGAN3-T (cbase 32768, cmax 512) unless
--configs says otherwise.

Examples:
    python bench/bench_projector.py
    python bench/bench_projector.py --configs bundled --steps 20 --threads 2
"""

from __future__ import annotations

import pathlib
import sys
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _network(name: str):
    import torch

    from engine.loading import load_generator

    if name == 'bundled':
        return load_generator(None)
    if name == 'sg3t-256':
        from training.networks_stylegan3 import Generator

        torch.manual_seed(0)
        return Generator(
            z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, channel_base=32768, channel_max=512,
            mapping_kwargs=dict(num_layers=2),
        ).eval().requires_grad_(False)  # fmt: skip
    raise click.BadParameter(f'unknown config {name!r}: use bundled, sg3t-256')


def _bare_step_sec(G, repeats: int) -> float:
    import torch

    ws = G.mapping.w_avg[None, None].expand(1, G.num_ws, -1).clone().requires_grad_(True)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        img = G.synthesis(ws, noise_mode='const')
        (grad,) = torch.autograd.grad(img.square().mean(), [ws])
        if i > 0:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _projector_step_sec(G, steps: int) -> float:
    import torch

    from engine import projector as P

    target = torch.full([G.img_channels, G.img_resolution, G.img_resolution], 128, dtype=torch.uint8)
    cfg = P.ProjectorConfig(num_steps=steps + 2, w_avg_samples=1000)
    it = P.iter_project(G, target, cfg=cfg, preview_every=10**9)
    next(it), next(it)  # warm-up (includes the w_avg estimate)
    t0 = time.perf_counter()
    n = sum(1 for _ in it)
    return (time.perf_counter() - t0) / n


@click.command()
@click.option('--configs', default='bundled,sg3t-256', show_default=True, help='Comma-separated: bundled, sg3t-256')
@click.option('--steps', type=click.IntRange(1, 10000), default=10, show_default=True, help='Timed projector steps')
@click.option('--threads', type=click.IntRange(1, 256), default=None, help='torch.set_num_threads (default: as is)')
def main(configs: str, steps: int, threads: int | None) -> None:
    """Steps/s of the projector on the CPU and its ratio to a bare synthesis forward+backward."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    print(f'threads {torch.get_num_threads()}, CPU, built-in loss')
    print(f'{"config":<10} {"steps/s":>8} {"ms/step":>9} {"bare ms":>9} {"step/bare":>10}')
    for name in configs.split(','):
        G = _network(name.strip())
        with torch.enable_grad():
            step = _projector_step_sec(G, steps)
            bare = _bare_step_sec(G, max(3, steps // 3))
        print(f'{name:<10} {1 / step:8.2f} {step * 1e3:9.1f} {bare * 1e3:9.1f} {step / bare:10.2f}x')


if __name__ == '__main__':
    main()
