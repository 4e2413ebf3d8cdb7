"""Export a generator to ONNX (StyleGAN2, StyleGAN3-T/R, conditional too), verified in ONNX Runtime.

The graph uses our pure-PyTorch op paths; synthesis runs with noise_mode='const'. With `--inputs z` it takes
`z` [N, z_dim], `c` [N, c_dim] (conditional networks only) and `truncation_psi` [1]; with `--inputs ws` it takes
`ws` [N, num_ws, w_dim]. Output `img` [N, C, H, W] float32 in about [-1, 1]. Before the file is written, ONNX
Runtime (CPU) runs it and its images are compared with PyTorch's (max abs diff reported, at most 1e-3).
Needs `pip install '.[onnx]'`.

Examples:
    python export_onnx.py --output G.onnx
    python export_onnx.py --network net.pkl --output out/G-ws.onnx --inputs ws --batch 4
"""

from __future__ import annotations

import logging
import pathlib
import sys

import click

_REPO = pathlib.Path(__file__).resolve().parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def export_onnx(
    *,
    network: str | None,
    output: str | pathlib.Path,
    opset: int = 18,
    batch: int = 1,
    inputs: str = 'z',
    trust: bool = False,
) -> dict:
    """Loads `network` (None: the bundled one) and exports its G_ema; see `engine.onnx_export`.

    Raises:
        engine.loading.LoadError: The network cannot be loaded.
        ValueError, engine.onnx_export.OnnxExportError: Bad arguments, missing packages, failed export/verification.
    """
    from engine.loading import load_generator
    from engine.onnx_export import export_generator_onnx

    G = load_generator(network, trust=trust, device='cpu')
    return export_generator_onnx(G, output, opset=opset, batch=batch, inputs=inputs)


@click.command()
@click.option('--network', default=None, metavar='PATH|URL|DIR', help='Network pickle  [default: bundled network]')
@click.option(
    '--output',
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    metavar='FILE.onnx',
    help='Output ONNX file',
)
@click.option('--opset', type=click.IntRange(min=18), default=18, show_default=True, metavar='N', help='ONNX opset')
@click.option(
    '--batch', type=click.IntRange(min=1, max=1024), default=1, show_default=True, metavar='N', help='Batch size'
)
@click.option(
    '--inputs',
    type=click.Choice(['z', 'ws']),
    default='z',
    show_default=True,
    help='Graph inputs: z (+ c, truncation_psi) or ws',
)
@click.option(
    '--trust', is_flag=True, default=False, help='Load the pickle executing its embedded code (trusted files)'
)
def main(network, output, opset, batch, inputs, trust):
    """Export a generator to ONNX and verify it in ONNX Runtime.

    \b
    Examples:
      python export_onnx.py --output G.onnx
      python export_onnx.py --network net.pkl --output G-ws.onnx --inputs ws --batch 4
    """
    from engine.loading import LoadError
    from engine.onnx_export import OnnxExportError

    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    for name in ('torch.onnx', 'onnxscript'):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        report = export_onnx(network=network, output=output, opset=opset, batch=batch, inputs=inputs, trust=trust)
    except (LoadError, ValueError, OnnxExportError) as e:
        raise click.ClickException(str(e)) from None
    shapes = ', '.join(f'{k} {v}' for k, v in report['inputs'].items())
    click.echo(
        f'Wrote {report["output"]} ({report["file_bytes"] / 1e6:.1f} MB, opset {report["opset"]}): {shapes} -> img '
        f'{report["output_shape"]}; verified in ONNX Runtime: max abs diff {report["max_abs_diff"]:.2e} vs PyTorch'
    )


if __name__ == '__main__':
    main()
