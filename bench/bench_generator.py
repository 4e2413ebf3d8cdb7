"""Per-frame generator time of StyleGAN3-T, -R and StyleGAN2 at 64 and 256 px (docs/compatibility.md §5 configs).

Random weights, batch 1, `noise_mode='const'`, full `G(z, c)` (mapping + synthesis) under `torch.no_grad()`; one
warm-up frame, then the median of `--repeats` frames. One line per config.

Examples:
    python bench/bench_generator.py                              # the 64 px configs on the best device
    python bench/bench_generator.py --configs all --repeats 1    # all six (256 px: minutes per frame on 2 cores)
    python bench/bench_generator.py --configs sg3t-64,sg2-64 --repeats 3 --device cpu
    python bench/bench_generator.py --impl ref                   # force the plain-PyTorch reference ops
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# name -> (module, Generator kwargs). Channel counts from docs/compatibility.md §5 (stylegan3-r doubles them itself in
# the reference train.py; here the doubled values are given directly). sg3r-64 is not in the table: the sg3t-64
# channels doubled, as the stylegan3-r preset does.
_COMMON = dict(z_dim=512, c_dim=0, w_dim=512, img_channels=3)
CONFIGS = {
    'sg3t-64': (
        'stylegan3',
        dict(img_resolution=64, channel_base=8192, channel_max=256, mapping_kwargs=dict(num_layers=2)),
    ),
    'sg3r-64': (
        'stylegan3',
        dict(
            img_resolution=64,
            channel_base=16384,
            channel_max=512,
            conv_kernel=1,
            use_radial_filters=True,
            mapping_kwargs=dict(num_layers=2),
        ),
    ),
    'sg2-64': (
        'stylegan2',
        dict(img_resolution=64, channel_base=8192, channel_max=256, mapping_kwargs=dict(num_layers=8)),
    ),
    'sg3t-256': (
        'stylegan3',
        dict(img_resolution=256, channel_base=32768, channel_max=512, mapping_kwargs=dict(num_layers=2)),
    ),
    'sg3r-256': (
        'stylegan3',
        dict(
            img_resolution=256,
            channel_base=32768,
            channel_max=1024,
            conv_kernel=1,
            use_radial_filters=True,
            mapping_kwargs=dict(num_layers=2),
        ),
    ),
    'sg2-256': (
        'stylegan2',
        dict(img_resolution=256, channel_base=16384, channel_max=512, mapping_kwargs=dict(num_layers=8)),
    ),
}


def bench_config(name: str, device, repeats: int, impl: str) -> dict:
    """Builds config `name` on `device` and times `repeats` frames; returns a dict of results."""
    import importlib

    import torch

    module_name, kwargs = CONFIGS[name]
    networks = importlib.import_module(f'training.networks_{module_name}')
    torch.manual_seed(0)
    t0 = time.perf_counter()
    G = networks.Generator(**_COMMON, **kwargs).eval().requires_grad_(False).to(device)
    build_sec = time.perf_counter() - t0
    z = torch.randn([1, G.z_dim], device=device)
    c = torch.zeros([1, G.c_dim], device=device)

    def frame() -> float:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        img = G(z, c, noise_mode='const')
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        elif device.type == 'mps':
            torch.mps.synchronize()
        assert img.shape[-1] == G.img_resolution
        return time.perf_counter() - start

    from torch_utils import ops

    with torch.no_grad(), ops.default_impl(impl):
        warmup_sec = frame()
        times = [frame() for _ in range(repeats)]
    return dict(
        name=name,
        num_params=sum(p.numel() for p in G.parameters()),
        build_sec=build_sec,
        warmup_ms=warmup_sec * 1e3,
        median_ms=statistics.median(times) * 1e3,
        min_ms=min(times) * 1e3,
    )


@click.command()
@click.option(
    '--configs',
    default='sg3t-64,sg3r-64,sg2-64',
    show_default=True,
    metavar='LIST',
    help=f'Comma-separated configs out of {", ".join(CONFIGS)}, or all (the 256 px ones take minutes per frame on a small CPU)',
)
@click.option(
    '--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto', show_default=True, help='Device'
)
@click.option(
    '--repeats',
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar='N',
    help='Timed frames per config (after one warm-up frame)',
)
@click.option(
    '--impl',
    type=click.Choice(['auto', 'ref', 'fast', 'cpp']),
    default='auto',
    show_default=True,
    help="Op implementation for every impl='auto' call (torch_utils.ops.default_impl): 'auto' (fastest available), "
    "'ref' (plain-PyTorch specification), 'fast' (PyTorch polyphase), 'cpp' (fused CPU filtered_lrelu kernel)",
)
def main(configs: str, device: str, repeats: int, impl: str) -> None:
    """Time one generator frame (batch 1) per config; prints one line per config."""
    import torch

    from engine.devices import pick_device

    names = list(CONFIGS) if configs == 'all' else [n.strip() for n in configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise click.BadParameter(f'unknown config(s) {unknown}; choose from {list(CONFIGS)}', param_hint='--configs')
    try:
        dev = pick_device(device)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    from torch_utils import ops
    from torch_utils.ops import _cpu_kernels

    if dev.type == 'cpu' and impl in ('auto', 'cpp'):
        _cpu_kernels.plugin()  # build/load the fused kernel now (impl='auto' would use 'fast' while it builds)
    with ops.default_impl(impl):
        picks = ops.impl_report(dev)
    gpu = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''
    click.echo(
        f'# device={dev} {gpu} torch={torch.__version__} threads={torch.get_num_threads()} impl={impl} picks={picks}'
    )
    for name in names:
        r = bench_config(name, dev, repeats, impl)
        click.echo(
            f'{name:9s} params={r["num_params"] / 1e6:6.2f}M  median={r["median_ms"]:9.1f} ms/frame  '
            f'min={r["min_ms"]:9.1f} ms  warmup={r["warmup_ms"]:9.1f} ms  build={r["build_sec"]:5.1f} s  n={repeats}'
        )


if __name__ == '__main__':
    main()
