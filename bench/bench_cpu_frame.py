"""One generator frame on the CPU: impl='ref' vs impl='auto' at 1 and 2 threads, against the issue-12 targets.

For each thread count (`--threads`, default 1,2) a fresh Python process sets `torch.set_num_threads(n)` before any
op runs (NNPACK's and OpenMP's thread pools are sized on first use, so counts cannot be switched inside one
process) and times every config: docs/compatibility.md §5 sizes, random weights, batch 1, `noise_mode='const'`,
`torch.no_grad()`. The two implementations run alternately (one warm-up frame each, then `--repeats` frames each)
inside `torch_utils.ops.default_impl(...)` blocks, so both see the same machine load; the medians of wall time and
of process CPU time are printed with the ratio ref/auto. The `--repeats` timed 'auto' frames also run under
`torch.profiler` (a separate pass) to measure the share of the frame spent outside `modulated_conv2d` (the dense
modulated convolutions): filtered_lrelu, upfirdn2d, bias_act, mapping, affine layers and the rest.

Targets (issue 12), checked at every thread count: ratio ref/auto (wall) >= 3 for sg3t-64, 8 for sg3r-64, 1.5 for
sg2-64, 5 for sg3t-256, 9 for sg3r-256; outside-modconv share <= 25% for every StyleGAN3 config. On a shared
machine wall times are noisy: compare the ratios (same run), repeat, and read the CPU-time ratio beside them.

Examples:
    python bench/bench_cpu_frame.py                                  # sg3t-64, sg3r-64, sg2-64 at 1 and 2 threads
    python bench/bench_cpu_frame.py --configs all --repeats 1        # adds the 256 px configs (minutes)
    python bench/bench_cpu_frame.py --threads 4 --configs sg3t-64    # one thread count
"""

from __future__ import annotations

import importlib
import json
import pathlib
import statistics
import subprocess
import sys
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
for p in (REPO, REPO / 'bench'):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_generator import _COMMON, CONFIGS  # noqa: E402

RATIO_TARGETS = {'sg3t-64': 3.0, 'sg3r-64': 8.0, 'sg2-64': 1.5, 'sg3t-256': 5.0, 'sg3r-256': 9.0}
MAX_SHARE_OUTSIDE_MODCONV = 0.25  # StyleGAN3 configs only


def _frame(G, z, c) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one G(z, c)."""
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    G(z, c, noise_mode='const')
    return time.process_time() - t_cpu, time.perf_counter() - t_wall


def _share_outside_modconv(G, z, c, frames: int) -> float:
    """Fraction of `frames` profiled frames' wall time spent outside `modulated_conv2d` (record_function ranges)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(frames):
            G(z, c, noise_mode='const')
        total_us = (time.perf_counter() - t0) * 1e6
    conv_us = sum(e.cpu_time_total for e in prof.key_averages() if e.key == 'modulated_conv2d')
    return max(0.0, 1 - conv_us / total_us)


def bench_config(name: str, repeats: int, impls: tuple[str, str]) -> dict:
    """Times `impls` alternately on config `name`; returns medians (ms), ratios and the outside-modconv shares."""
    import torch

    from torch_utils import ops

    module_name, kwargs = CONFIGS[name]
    networks = importlib.import_module(f'training.networks_{module_name}')
    torch.manual_seed(0)
    G = networks.Generator(**_COMMON, **kwargs).eval().requires_grad_(False)
    z = torch.randn([1, G.z_dim])
    c = torch.zeros([1, G.c_dim])
    times: dict[str, list[tuple[float, float]]] = {impl: [] for impl in impls}
    out: dict = dict(name=name)
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
                out[f'{impl}_share'] = _share_outside_modconv(G, z, c, frames=1 if impl == 'ref' else repeats)
    for impl in impls:
        out[f'{impl}_cpu_ms'] = statistics.median(t[0] for t in times[impl]) * 1e3
        out[f'{impl}_wall_ms'] = statistics.median(t[1] for t in times[impl]) * 1e3
    return out


def _worker(names: list[str], repeats: int, threads: int, baseline: str) -> None:
    """Runs in the per-thread-count process: one JSON line per config on stdout."""
    import torch

    torch.set_num_threads(threads)
    from torch_utils import ops
    from torch_utils.ops import _cpu_conv, _cpu_kernels

    _cpu_kernels.plugin()  # build/load the fused kernel now (impl='auto' would use 'fast' while it builds)
    header = dict(
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        auto_picks=ops.impl_report('cpu'),
        winograd=_cpu_conv.available(),
    )
    print(json.dumps(dict(header=header)), flush=True)
    for name in names:
        print(json.dumps(bench_config(name, repeats, (baseline, 'auto'))), flush=True)


def _report(r: dict, baseline: str) -> tuple[str, list[str]]:
    """One table line for a config result and the targets it misses."""
    name = r['name']
    b_cpu, a_cpu, b_wall, a_wall = (
        r[f'{baseline}_cpu_ms'],
        r['auto_cpu_ms'],
        r[f'{baseline}_wall_ms'],
        r['auto_wall_ms'],
    )
    ratio = b_wall / a_wall
    misses = []
    target = RATIO_TARGETS.get(name) if baseline == 'ref' else None
    if target is not None and ratio < target:
        misses.append(f'ratio {ratio:.2f}x < {target:g}x')
    share_limit = MAX_SHARE_OUTSIDE_MODCONV if name.startswith('sg3') else None
    if share_limit is not None and r['auto_share'] > share_limit:
        misses.append(f'outside-modconv {r["auto_share"]:.0%} > {share_limit:.0%}')
    verdict = 'ok' if not misses else 'MISS'
    tgt = f'>={target:g}x' if target is not None else '-'
    line = (
        f'{name:9s} {b_wall:9.1f} {a_wall:9.1f} {ratio:6.2f}x {tgt:>6s} | {b_cpu:9.1f} {a_cpu:9.1f} {b_cpu / a_cpu:6.2f}x'
        f' | {r[f"{baseline}_share"]:6.1%} {r["auto_share"]:6.1%} | {verdict}'
    )
    return line, misses


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
    default='1,2',
    show_default=True,
    metavar='LIST',
    help='Comma-separated torch intra-op thread counts, one fresh process each',
)
@click.option(
    '--baseline',
    type=click.Choice(['ref', 'fast']),
    default='ref',
    show_default=True,
    help='Implementation compared against impl=auto (targets apply to ref)',
)
@click.option('--worker', is_flag=True, hidden=True, help='Internal: run one thread count, print JSON lines')
def main(configs: str, repeats: int, threads: str, baseline: str, worker: bool) -> None:
    """Prints, per thread count, one line per config: wall and CPU medians, ratios, outside-modconv shares, verdict."""
    names = list(CONFIGS) if configs == 'all' else [n.strip() for n in configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise click.BadParameter(f'unknown config(s) {unknown}; choose from {list(CONFIGS)}', param_hint='--configs')
    try:
        counts = [int(t) for t in threads.split(',') if t.strip()]
    except ValueError:
        raise click.BadParameter(f'must be comma-separated integers, got {threads!r}', param_hint='--threads') from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f'must list thread counts >= 1, got {threads!r}', param_hint='--threads')
    if worker:
        _worker(names, repeats, counts[0], baseline)
        return
    all_misses = []
    for n in counts:
        cmd = [sys.executable, __file__, '--worker', '--threads', str(n), '--configs', ','.join(names)]
        cmd += ['--repeats', str(repeats), '--baseline', baseline]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert proc.stdout is not None
        for raw in proc.stdout:
            if not raw.startswith('{'):
                continue
            r = json.loads(raw)
            if 'header' in r:
                h = r['header']
                click.echo(
                    f'\n# threads={h["threads"]} torch={h["torch"]} repeats={repeats} winograd={h["winograd"]} '
                    f'auto_picks={h["auto_picks"]}'
                )
                click.echo(
                    f'# {"config":7s} {baseline + " wall":>9s} {"auto wall":>9s} {"ratio":>7s} {"target":>6s} | '
                    f'{baseline + " cpu":>9s} {"auto cpu":>9s} {"ratio":>7s} | outside modconv: {baseline} / auto'
                )
                continue
            line, misses = _report(r, baseline)
            click.echo(line)
            all_misses += [f'{r["name"]} @ {n} thread(s): {m}' for m in misses]
        if proc.wait() != 0:
            raise click.ClickException(f'the {n}-thread benchmark process failed (exit code {proc.returncode})')
    if baseline == 'ref':
        click.echo('\n# targets: ' + ('all held' if not all_misses else 'MISSED: ' + '; '.join(all_misses)))


if __name__ == '__main__':
    main()
