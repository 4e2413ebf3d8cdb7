"""ONNX Runtime (CPU) vs our PyTorch CPU path: ms per frame for StyleGAN3-T/R and StyleGAN2 at 64 and 256 px.

Each config (random weights, as `bench_generator.py`) is exported with `engine.onnx_export` (inputs z +
truncation_psi, noise_mode='const', batch 1, verified against PyTorch), then both run the same computation:
mapping + truncation + synthesis. PyTorch runs with `impl='auto'` (the fastest ops we have on the CPU: the fused
filtered_lrelu kernel when it builds), ONNX Runtime with its default CPU session options. One warm-up frame, then
the median of `--repeats` frames each; the ratio (PyTorch / ORT, > 1 means ONNX Runtime is faster) comes from the
same run and the same thread count.

Examples:
    python bench/bench_onnx.py                               # the 64 px configs
    python bench/bench_onnx.py --configs all --repeats 3     # 64 and 256 px (256 px exports take minutes)
"""

from __future__ import annotations

import importlib
import pathlib
import statistics
import sys
import tempfile
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_generator import _COMMON, CONFIGS  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_config(name: str, repeats: int, threads: int) -> dict:
    """Exports config `name` and times PyTorch and ONNX Runtime on the CPU; returns a dict of results."""
    import onnxruntime as ort
    import torch

    from engine.onnx_export import export_generator_onnx, make_export_module, onnx_inputs

    module_name, kwargs = CONFIGS[name]
    networks = importlib.import_module(f'training.networks_{module_name}')
    torch.manual_seed(0)
    G = networks.Generator(**_COMMON, **kwargs).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f'{name}.onnx'
        report = export_generator_onnx(G, path, inputs='z', batch=1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        feeds = onnx_inputs(G, 'z', 1)
        ort_ms = _median_ms(lambda: session.run(['img'], feeds), repeats)
    module = make_export_module(G, 'z')
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    with torch.no_grad():
        torch_ms = _median_ms(lambda: module(*args), repeats)
    return dict(
        name=name, torch_ms=torch_ms, ort_ms=ort_ms, max_abs_diff=report['max_abs_diff'],
        export_sec=report['export_sec'], onnx_mb=report['file_bytes'] / 1e6,
    )  # fmt: skip


@click.command()
@click.option(
    '--configs',
    default='sg3t-64,sg3r-64,sg2-64',
    show_default=True,
    metavar='LIST',
    help=f'Comma-separated configs out of {", ".join(CONFIGS)}, or all',
)
@click.option('--repeats', type=click.IntRange(min=1), default=5, show_default=True, metavar='N', help='Timed frames')
@click.option(
    '--threads',
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar='N',
    help='CPU threads for both (0: torch.get_num_threads())',
)
def main(configs: str, repeats: int, threads: int) -> None:
    """Print ms/frame of ONNX Runtime and PyTorch on the CPU, one line per config, with their ratio."""
    import onnxruntime as ort
    import torch

    from torch_utils import ops
    from torch_utils.ops import _cpu_kernels

    names = list(CONFIGS) if configs == 'all' else [n.strip() for n in configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise click.BadParameter(f'unknown config(s) {unknown}; choose from {list(CONFIGS)}', param_hint='--configs')
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    _cpu_kernels.plugin()  # build/load the fused CPU kernel now, so impl='auto' uses it from the first frame
    click.echo(
        f'# cpu threads={threads} torch={torch.__version__} onnxruntime={ort.__version__} '
        f'torch picks={ops.impl_report(torch.device("cpu"))}'
    )
    for name in names:
        r = bench_config(name, repeats, threads)
        click.echo(
            f'{name:9s} pytorch={r["torch_ms"]:9.1f} ms/frame  onnxruntime={r["ort_ms"]:9.1f} ms/frame  '
            f'ratio pytorch/ort={r["torch_ms"] / r["ort_ms"]:5.2f}  max|diff|={r["max_abs_diff"]:.1e}  '
            f'export={r["export_sec"]:5.0f} s  onnx={r["onnx_mb"]:6.1f} MB  n={repeats}'
        )


if __name__ == '__main__':
    main()
