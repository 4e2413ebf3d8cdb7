"""A figure of seeds evolving over training: one row per seed, one column per network snapshot of a training run
(oldest left), each column labelled with its kimg (and the run's first metric when the snapshot has one).

Every cell is rendered through ``engine.renderer.Renderer``, the visualizer's render path, so a cell equals what the
Checkpoints pane shows for that snapshot and seed. Written atomically.

Example:
    python scripts/scrub_strip.py training-runs/00000-stylegan3-t-twemoji-32-gpus1-batch8-gamma0.5 --seeds 0-3 \
        --output out/scrub_strip.png
"""

from __future__ import annotations

import pathlib
import sys

import click
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MAX_CELLS = 4096


def pick_columns(num: int, max_columns: int) -> list[int]:
    """``max_columns`` indices spread evenly over ``num`` snapshots, first and last included."""
    if num <= max_columns:
        return list(range(num))
    return sorted({round(i * (num - 1) / (max_columns - 1)) for i in range(max_columns)})


def render_strip(
    run_dir: str, seeds: list[int], *, max_columns: int, scale: int, psi: float, device: str
) -> np.ndarray:
    """The figure, uint8 [H, W, 3].

    Raises:
        ValueError: no snapshots, too many cells, a snapshot that fails to render.
    """
    from PIL import Image, ImageDraw

    from engine.checkpoints import format_metric, load_run
    from engine.protocol import RenderRequest
    from engine.renderer import Renderer

    run = load_run(run_dir)
    if not run.snapshots:
        raise ValueError(f'{run_dir}: no network-snapshot-*.pkl ({"; ".join(run.notes)})')
    cols = [run.snapshots[i] for i in pick_columns(len(run.snapshots), max_columns)]
    if len(cols) * len(seeds) > MAX_CELLS:
        raise ValueError(f'{len(cols)} x {len(seeds)} cells; at most {MAX_CELLS}')
    renderer = Renderer(device)
    cells = []
    for seed in seeds:
        row = []
        for snap in cols:
            res = renderer.render(RenderRequest(pkl=snap.path, w0_seeds=((seed, 1.0),), trunc_psi=psi, device=device))
            if res.error or res.image is None:
                raise ValueError(f'{snap.name}, seed {seed}: {res.error}')
            img = Image.fromarray(res.image).resize((res.image.shape[1] * scale, res.image.shape[0] * scale), 0)
            row.append(np.asarray(img))
        cells.append(row)
    h, w = cells[0][0].shape[:2]
    gap, header = 2, 30
    canvas = Image.new('RGB', (len(cols) * (w + gap) - gap, header + len(seeds) * (h + gap) - gap), 'white')
    draw = ImageDraw.Draw(canvas)
    metric = run.metric_names[0] if run.metric_names else None
    for j, snap in enumerate(cols):
        x = j * (w + gap)
        draw.text((x + 2, 2), f'kimg {snap.kimg_text}', fill='black')
        if metric is not None and metric in snap.metrics:
            draw.text((x + 2, 15), f'{metric.split("50k")[0]} {format_metric(snap.metrics[metric])}', fill='gray')
        for i in range(len(seeds)):
            canvas.paste(Image.fromarray(cells[i][j]), (x, header + i * (h + gap)))
    return np.asarray(canvas)


@click.command()
@click.argument('run_dir', metavar='RUN_DIR')
@click.option('--seeds', metavar='LIST', default='0-3', show_default=True, help="Rows, e.g. '0-3' or '1,5,9'")
@click.option('--output', metavar='PNG', required=True, help='The figure (.png)')
@click.option(
    '--max-columns', metavar='N', type=click.IntRange(2, 64), default=12, show_default=True,
    help='At most N snapshots, spread evenly (first and last included)',
)  # fmt: skip
@click.option('--scale', metavar='X', type=click.IntRange(1, 16), default=2, show_default=True, help='Pixel zoom')
@click.option('--trunc', 'psi', metavar='PSI', type=click.FloatRange(-1, 2), default=1.0, show_default=True)
@click.option('--device', metavar='NAME', default='cpu', show_default=True, help='auto, cpu, cuda, cuda:N or mps')
def main(run_dir, seeds, output, max_columns, scale, psi, device):
    """Seeds (rows) over the snapshots of a training run (columns)."""
    from engine.latents import parse_range
    from engine.states import save_png_with_state

    try:
        seed_list = parse_range(seeds)
        img = render_strip(run_dir, seed_list, max_columns=max_columns, scale=scale, psi=psi, device=device)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    save_png_with_state(output, img, None)
    click.echo(f'Wrote {output} ({img.shape[1]}x{img.shape[0]})')


if __name__ == '__main__':
    main()
