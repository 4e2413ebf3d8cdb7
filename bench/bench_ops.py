"""Benchmark: 'ref' vs polyphase 'fast' (and the fused CPU kernel 'cpp' for filtered_lrelu) on StyleGAN layer shapes.

All implementations are timed in the same run (interleaved, best of ``--repeats``); the ratios ref/fast and ref/cpp
are printed ('cpp' only for float32 filtered_lrelu on the CPU without --grad: it is an inference kernel).

Examples:
    python bench/bench_ops.py
    python bench/bench_ops.py --device cuda --repeats 20
    python bench/bench_ops.py --threads 1 --grad
"""

from __future__ import annotations

import functools
import pathlib
import sys
import time

import click
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from torch_utils.ops import _cpu_kernels, filtered_lrelu, upfirdn2d  # noqa: E402


def _taps(n: int, radial: bool) -> torch.Tensor:
    t = np.kaiser(n, 6) * np.sinc((np.arange(n) - (n - 1) / 2) / 2)
    return upfirdn2d.setup_filter(np.outer(t, t) if radial else t, separable=not radial)


# (name, op, x shape, kwargs): SG3-T/R 64-px layers (36-px critically sampled, 12-tap filters) and the output layers.
def _cases() -> list[tuple[str, str, list[int], dict]]:
    sep12, rad12 = _taps(12, False), _taps(12, True)
    sep6 = _taps(6, False)
    lrelu = dict(gain=np.sqrt(2), slope=0.2, clamp=256)
    return [
        (
            'flrelu T 256ch 36px up2 down2',
            'flrelu',
            [1, 256, 36, 36],
            dict(fu=sep12, fd=sep12, up=2, down=2, padding=[11, 10, 11, 10], **lrelu),
        ),
        (
            'flrelu T 256ch 36px up2 down2 N=4',
            'flrelu',
            [4, 256, 36, 36],
            dict(fu=sep12, fd=sep12, up=2, down=2, padding=[11, 10, 11, 10], **lrelu),
        ),
        (
            'flrelu T 128ch 64px up2 down1',
            'flrelu',
            [1, 128, 64, 64],
            dict(fu=sep12, fd=sep6, up=2, down=1, padding=[6, 5, 6, 5], **lrelu),
        ),
        (
            'flrelu R 256ch 36px up2 down2 radial fd',
            'flrelu',
            [1, 256, 36, 36],
            dict(fu=sep12, fd=rad12, up=2, down=2, padding=[11, 10, 11, 10], **lrelu),
        ),
        (
            'flrelu R 512ch 84px up2 down2 radial fd',
            'flrelu',
            [1, 512, 84, 84],
            dict(fu=sep12, fd=rad12, up=2, down=2, padding=[11, 10, 11, 10], **lrelu),
        ),
        (
            'flrelu 128ch 52px up4 down4',
            'flrelu',
            [1, 128, 52, 52],
            dict(fu=_taps(24, False), fd=_taps(24, False), up=4, down=4, padding=[23, 22, 23, 22], **lrelu),
        ),
        (
            'upfirdn2d 256ch 36px up2 sep12',
            'upfirdn2d',
            [1, 256, 36, 36],
            dict(f=sep12, up=2, padding=[6, 5, 6, 5], gain=4),
        ),
        (
            'upfirdn2d 256ch 72px down2 sep12',
            'upfirdn2d',
            [1, 256, 72, 72],
            dict(f=sep12, down=2, padding=[5, 5, 5, 5]),
        ),
        (
            'upsample2d SG2 512ch 32px [1,3,3,1]',
            'upsample2d',
            [1, 512, 32, 32],
            dict(f=upfirdn2d.setup_filter([1, 3, 3, 1])),
        ),
    ]


def _run(op: str, x: torch.Tensor, kwargs: dict, impl: str, grad: bool) -> None:
    y = _out(op, x, kwargs, impl)
    if grad:
        y.backward(torch.ones_like(y))


def _time(fn, device: torch.device, clock) -> float:
    if device.type == 'cuda':
        torch.cuda.synchronize()
    t0 = clock()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    elif device.type == 'mps':
        torch.mps.synchronize()
    return clock() - t0


@click.command()
@click.option(
    '--device', 'device_name', default='cpu', show_default=True, metavar='NAME', help='torch device: cpu, cuda, mps.'
)
@click.option(
    '--repeats',
    default=7,
    show_default=True,
    type=click.IntRange(1, 1000),
    metavar='N',
    help='Timed runs per impl (best taken).',
)
@click.option(
    '--threads',
    default=0,
    show_default=True,
    type=click.IntRange(0, 256),
    metavar='N',
    help='torch intra-op threads (0 = leave as is).',
)
@click.option('--grad', is_flag=True, help='Time forward + backward instead of forward only.')
@click.option(
    '--clock',
    default='wall',
    show_default=True,
    type=click.Choice(['wall', 'cpu']),
    help='wall = perf_counter; cpu = process CPU time (robust on a shared machine, CPU device only).',
)
@click.option(
    '--dtype',
    'dtype_name',
    default='float32',
    show_default=True,
    type=click.Choice(['float32', 'float16']),
    help='Activation dtype.',
)
def main(device_name: str, repeats: int, threads: int, grad: bool, clock: str, dtype_name: str) -> None:
    """Prints per-case ref/fast times (ms, best of N) and the speed-up ratio ref/fast."""
    device = torch.device(device_name)
    dtype = getattr(torch, dtype_name)
    if threads:
        torch.set_num_threads(threads)
    if clock == 'cpu' and device.type != 'cpu':
        raise click.ClickException('--clock cpu only measures CPU work; use --clock wall for GPU devices')
    clock_fn = time.process_time if clock == 'cpu' else time.perf_counter
    print(
        f'device={device} dtype={dtype_name} threads={torch.get_num_threads()} grad={grad} clock={clock} '
        f'torch={torch.__version__}'
    )
    print(
        f'{"case":44s} {"ref ms":>9s} {"fast ms":>9s} {"cpp ms":>9s} {"ref/fast":>9s} {"ref/cpp":>8s} {"max|diff|":>10s}'
    )
    ratios = []
    for name, op, shape, kwargs in _cases():
        kwargs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        x = torch.randn(shape, device=device, dtype=dtype, requires_grad=grad)
        impls = ['ref', 'fast']
        if op == 'flrelu' and not grad and device.type == 'cpu' and dtype == torch.float32:
            fu, fd = kwargs.get('fu'), kwargs.get('fd')
            if _cpu_kernels.supported(x, fu, fd, None) and _cpu_kernels.plugin() is not None:
                impls.append('cpp')
        with torch.no_grad():
            outs = {impl: _out(op, x, kwargs, impl).float() for impl in impls}
        diff = max(float((outs['ref'] - outs[impl]).abs().max()) for impl in impls)
        ctx = torch.enable_grad() if grad else torch.no_grad()
        best = {impl: float('inf') for impl in impls}
        with ctx:
            for impl in best:  # warm-up
                _run(op, x, kwargs, impl, grad)
            for _ in range(repeats):
                for impl in best:
                    best[impl] = min(
                        best[impl], _time(functools.partial(_run, op, x, kwargs, impl, grad), device, clock_fn)
                    )
        ratio = best['ref'] / best['fast']
        ratios.append(ratio)
        cpp_ms = f'{best["cpp"] * 1e3:9.2f}' if 'cpp' in best else f'{"-":>9s}'
        cpp_ratio = f'{best["ref"] / best["cpp"]:7.2f}x' if 'cpp' in best else f'{"-":>8s}'
        print(
            f'{name:44s} {best["ref"] * 1e3:9.2f} {best["fast"] * 1e3:9.2f} {cpp_ms} {ratio:8.2f}x {cpp_ratio} '
            f'{diff:10.2e}'
        )
    print(f'geometric-mean speed-up ref/fast: {float(np.exp(np.mean(np.log(ratios)))):.2f}x')


def _out(op: str, x: torch.Tensor, kwargs: dict, impl: str) -> torch.Tensor:
    if op == 'flrelu':
        return filtered_lrelu.filtered_lrelu(x, impl=impl, **kwargs)
    if op == 'upsample2d':
        return upfirdn2d.upsample2d(x, impl=impl, **kwargs)
    return upfirdn2d.upfirdn2d(x, impl=impl, **kwargs)


if __name__ == '__main__':
    main()
