"""Style-mixing grid (StyleGAN, Karras et al. 2019, Sec. 3.1 and Fig. 3; StyleGAN2 tools).

The first row holds the column seeds' images, the first column the row seeds' images (the top-left cell is empty),
and each other cell the row seed's ws with the listed style layers (indices into ws, 0..num_ws-1) taken from the
column seed. Coarse layers (e.g. 0-3) carry pose and shape, middle ones (4-7) features, fine ones colour.

Examples:
    python style_mixing.py --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --outdir out
    python style_mixing.py --network net.pkl --rows 1-3 --cols 10-12 --styles 8-15 --trunc 0.7 --outdir out
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys

import click
import numpy as np

_REPO = pathlib.Path(__file__).resolve().parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from engine import latents  # noqa: E402
from engine.cli_types import SeedList  # noqa: E402
from engine.image_files import save_png, tile_grid, to_u8_hwc  # noqa: E402

logger = logging.getLogger(__name__)


def style_mixing_images(
    G,
    *,
    row_seeds: list[int],
    col_seeds: list[int],
    styles: list[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = 'const',
    class_idx: int | None = None,
) -> tuple[np.ndarray, dict[tuple[int | None, int | None], np.ndarray]]:
    """Renders the style-mixing grid.

    Seeds give z as in every tool (`RandomState(seed).randn(1, z_dim)`); a conditional network uses `class_idx`
    for every seed, or a class drawn per seed like the reference GUI when it is None.

    Args:
        G: Generator on its device (docs/compatibility.md §3 interface).
        row_seeds, col_seeds: Seeds in [0, 2**32), at least one each.
        styles: Indices of ws taken from the column seed, each in [0, G.num_ws).
        truncation_psi, truncation_cutoff: Truncation of every seed's ws.
        noise_mode: 'const', 'random' or 'none'.
        class_idx: Class for conditional networks (None: per seed).

    Returns:
        grid: uint8 [(R + 1) * H, (C + 1) * W, img_channels]; cells: {(row_seed, col_seed): uint8 [H, W, C]} with
        (row_seed, None) / (None, col_seed) for the plain images.

    Raises:
        ValueError: Empty seed lists, style indices outside [0, num_ws) (the message names num_ws), bad class.
    """
    import torch

    _check_mixing_args(G, row_seeds, col_seeds, styles, class_idx)
    seeds = list(dict.fromkeys(row_seeds + col_seeds))
    with torch.no_grad():
        ws = _seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)  # [S, L, D]
        w_of = {s: ws[i] for i, s in enumerate(seeds)}

        def render(w):
            return to_u8_hwc(G.synthesis(w[None], noise_mode=noise_mode))

        cells: dict[tuple[int | None, int | None], np.ndarray] = {}
        for s in row_seeds:
            cells[(s, None)] = render(w_of[s])
        for s in col_seeds:
            cells[(None, s)] = render(w_of[s])
        for r in row_seeds:
            for col in col_seeds:
                w = w_of[r].clone()
                w[styles] = w_of[col][styles]
                cells[(r, col)] = render(w)
    rows, cols = [None, *row_seeds], [None, *col_seeds]
    grid = tile_grid({(rows.index(r), cols.index(col)): img for (r, col), img in cells.items()})
    return grid, cells


def _check_mixing_args(G, row_seeds: list[int], col_seeds: list[int], styles: list[int], class_idx: int | None):
    """Raises ValueError for empty seed lists, style indices outside [0, num_ws) or a class outside [0, c_dim)."""
    if not row_seeds or not col_seeds:
        raise ValueError('style_mixing_images(): pass at least one row seed and one column seed')
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad or not styles:
        raise ValueError(
            f'--styles must be indices in [0, {G.num_ws}) for this network (num_ws={G.num_ws}), got {styles}; '
            f'e.g. 0-{min(6, G.num_ws - 1)}'
        )
    if class_idx is not None and not 0 <= class_idx < max(G.c_dim, 1):
        raise ValueError(f'--class must be in [0, {G.c_dim}) for this network, got {class_idx}')


def _seed_ws(G, seeds: list[int], truncation_psi: float, truncation_cutoff: int | None, class_idx: int | None):
    """Truncated ws [S, num_ws, w_dim] of the seeds (z and per-seed classes as every tool draws them; ``class_idx``
    for every seed when given), on G's device."""
    import torch

    device = G.mapping.w_avg.device
    z, c = latents.zc_from_seeds(seeds, G.z_dim, G.c_dim)
    if class_idx is not None and G.c_dim > 0:
        c[:] = 0
        c[:, class_idx] = 1
    return G.mapping(
        torch.from_numpy(z).to(device), torch.from_numpy(c).to(device), truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
    )  # fmt: skip


def style_mixing(
    *,
    network: str | os.PathLike | None,
    row_seeds: list[int],
    col_seeds: list[int],
    styles: list[int],
    outdir: str | os.PathLike,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = 'const',
    class_idx: int | None = None,
    device: str = 'auto',
    trust: bool = False,
) -> list[pathlib.Path]:
    """Loads the network, renders the grid and writes `grid.png` plus one `<row>-<col>.png` per cell (and
    `<seed>-<seed>.png` for the plain images) into `outdir`.

    Raises:
        engine.loading.LoadError, ValueError: As `load_generator()` and `style_mixing_images()`.
    """
    from engine.loading import load_generator

    G = load_generator(network, trust=trust, device=device)
    grid, cells = style_mixing_images(
        G, row_seeds=row_seeds, col_seeds=col_seeds, styles=styles, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, class_idx=class_idx,
    )  # fmt: skip
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (r, col), img in cells.items():
        name = f'{r if r is not None else col}-{col if col is not None else r}.png'
        paths.append(save_png(outdir / name, img))
    paths.append(save_png(outdir / 'grid.png', grid))
    return paths


@click.command()
@click.option('--network', default=None, metavar='PATH|URL|DIR', help='Network pickle  [default: bundled network]')
@click.option('--rows', 'row_seeds', type=SeedList(), required=True, metavar='LIST', help="Row seeds, e.g. '85,100,75'")
@click.option('--cols', 'col_seeds', type=SeedList(), required=True, metavar='LIST', help="Column seeds, e.g. '55,821'")
@click.option(
    '--styles',
    type=SeedList('style indices'),
    default='0-6',
    show_default=True,
    metavar='LIST',
    help='Style layers (ws indices) taken from the column seed',
)
@click.option(
    '--trunc', 'truncation_psi', type=float, default=1.0, show_default=True, metavar='PSI', help='Truncation psi'
)
@click.option(
    '--trunc-cutoff',
    'truncation_cutoff',
    type=click.IntRange(min=0),
    default=None,
    metavar='NUM_WS',
    help='Truncate only the first NUM_WS ws  [default: all]',
)
@click.option(
    '--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True, help='Noise'
)
@click.option('--class', 'class_idx', type=int, default=None, metavar='INT', help='Class (conditional networks)')
@click.option(
    '--outdir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    required=True,
    metavar='DIR',
    help='Output folder (grid.png and one PNG per cell)',
)
@click.option(
    '--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto', show_default=True, help='Device'
)
@click.option(
    '--trust', is_flag=True, default=False, help='Load the pickle executing its embedded code (trusted files)'
)
def main(network, row_seeds, col_seeds, styles, truncation_psi, truncation_cutoff, noise_mode, class_idx, outdir,
         device, trust):  # fmt: skip
    """Write a style-mixing grid: rows x columns of seeds, styles from the column seed.

    \b
    Examples:
      python style_mixing.py --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --outdir out
      python style_mixing.py --network net.pkl --rows 1-3 --cols 10-12 --styles 8-15 --outdir out
    """
    from engine.loading import LoadError

    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    try:
        paths = style_mixing(
            network=network, row_seeds=row_seeds, col_seeds=col_seeds, styles=styles, outdir=outdir,
            truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
            class_idx=class_idx, device=device, trust=trust,
        )  # fmt: skip
    except (LoadError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'Wrote {outdir / "grid.png"} and {len(paths) - 1} cell image(s)')


if __name__ == '__main__':
    main()
