"""One generator frame on the CPU: impl='ref' vs impl='auto' in the same run, and where the 'auto' time goes.

For each config (docs/compatibility.md §5 sizes, random weights, batch 1, `noise_mode='const'`, `torch.no_grad()`) the
two implementations run alternately (one warm-up frame each, then `--repeats` frames each) inside
`torch_utils.ops.default_impl(...)` blocks; the medians of process CPU time and of wall time are printed with the
ratio ref/auto. One extra frame per impl runs under `torch.profiler` to measure the share of the frame spent
outside `modulated_conv2d` (the dense modulated convolutions): filtered_lrelu / upfirdn2d / bias_act / the rest.

Examples:
    python bench/bench_cpu_frame.py                                  # sg3t-64, sg3r-64, sg2-64
    python bench/bench_cpu_frame.py --configs sg3t-256,sg3r-256 --repeats 1
    OMP_NUM_THREADS=1 python bench/bench_cpu_frame.py --threads 1    # steadier numbers on a shared machine
"""

from __future__ import annotations

import importlib
import pathlib
import statistics
import sys
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
for p in (REPO, REPO / 'bench'):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_generator import _COMMON, CONFIGS  # noqa: E402


def _frame(G, z, c) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one G(z, c)."""
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    G(z, c, noise_mode='const')
    return time.process_time() - t_cpu, time.perf_counter() - t_wall


def _share_outside_modconv(G, z, c) -> float:
    """Fraction of one profiled frame's wall time spent outside `modulated_conv2d` (record_function ranges)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        G(z, c, noise_mode='const')
        total_us = (time.perf_counter() - t0) * 1e6
    conv_us = sum(e.cpu_time_total for e in prof.key_averages() if e.key == 'modulated_conv2d')
    return max(0.0, 1 - conv_us / total_us)


def bench_config(name: str, repeats: int, impls: tuple[str, str]) -> dict:
    import torch

    from torch_utils import ops

    module_name, kwargs = CONFIGS[name]
    networks = importlib.import_module(f'training.networks_{module_name}')
    torch.manual_seed(0)
    G = networks.Generator(**_COMMON, **kwargs).eval().requires_grad_(False)
    z = torch.randn([1, G.z_dim])
    c = torch.zeros([1, G.c_dim])
    times: dict[str, list[tuple[float, float]]] = {impl: [] for impl in impls}
    share: dict[str, float] = {}
    with torch.no_grad():
        for impl in impls:  # warm-up (and the one-time kernel build, if any)
            with ops.default_impl(impl):
                _frame(G, z, c)
        for _ in range(repeats):
            for impl in impls:
                with ops.default_impl(impl):
                    times[impl].append(_frame(G, z, c))
        for impl in impls:
            with ops.default_impl(impl):
                share[impl] = _share_outside_modconv(G, z, c)
    out: dict = dict(name=name)
    for impl in impls:
        out[f'{impl}_cpu_ms'] = statistics.median(t[0] for t in times[impl]) * 1e3
        out[f'{impl}_wall_ms'] = statistics.median(t[1] for t in times[impl]) * 1e3
        out[f'{impl}_share'] = share[impl]
    return out


@click.command()
@click.option(
    '--configs',
    default='sg3t-64,sg3r-64,sg2-64',
    show_default=True,
    metavar='LIST',
    help=f'Comma-separated configs out of {", ".join(CONFIGS)}, or all (256 px: tens of seconds per ref frame)',
)
@click.option(
    '--repeats', type=click.IntRange(min=1), default=3, show_default=True, metavar='N', help='Timed frames per impl'
)
@click.option(
    '--threads',
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar='N',
    help='torch intra-op threads (0 = leave the default)',
)
@click.option(
    '--baseline',
    type=click.Choice(['ref', 'fast']),
    default='ref',
    show_default=True,
    help='Implementation compared against impl=auto',
)
def main(configs: str, repeats: int, threads: int, baseline: str) -> None:
    """Prints one line per config: ref and auto frame times (median CPU / wall ms), ratio, share outside modconv."""
    import torch

    from torch_utils import ops

    names = list(CONFIGS) if configs == 'all' else [n.strip() for n in configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise click.BadParameter(f'unknown config(s) {unknown}; choose from {list(CONFIGS)}', param_hint='--configs')
    if threads:
        torch.set_num_threads(threads)
    from torch_utils.ops import _cpu_kernels

    _cpu_kernels.plugin()  # build/load the fused kernel now (impl='auto' would use 'fast' while it builds)
    click.echo(
        f'# cpu torch={torch.__version__} threads={torch.get_num_threads()} repeats={repeats} '
        f'auto_picks={ops.impl_report("cpu")}'
    )
    click.echo(
        f'# {"config":9s} {baseline + " cpu":>10s} {"auto cpu":>9s} {"ratio":>6s} | {baseline + " wall":>10s} '
        f'{"auto wall":>9s} {"ratio":>6s} | outside-modconv share: {baseline} / auto'
    )
    for name in names:
        r = bench_config(name, repeats, (baseline, 'auto'))
        b_cpu, a_cpu = r[f'{baseline}_cpu_ms'], r['auto_cpu_ms']
        b_wall, a_wall = r[f'{baseline}_wall_ms'], r['auto_wall_ms']
        click.echo(
            f'{name:11s} {b_cpu:10.1f} {a_cpu:9.1f} {b_cpu / a_cpu:5.2f}x | {b_wall:10.1f} {a_wall:9.1f} '
            f'{b_wall / a_wall:5.2f}x | {r[f"{baseline}_share"]:6.1%} / {r["auto_share"]:6.1%}'
        )


if __name__ == '__main__':
    main()
