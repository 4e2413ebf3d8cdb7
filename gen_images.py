"""Generate images from a network pickle, one PNG per seed (same seed, same image as the reference tools).

Examples:
    # The bundled default network, seeds 0-3:
    python gen_images.py --seeds 0-3 --outdir out

    # A downloaded network with truncation and a translated/rotated input (StyleGAN3):
    python gen_images.py --network https://example.org/stylegan3-t-ffhq-1024x1024.pkl \\
        --seeds 0,3,5-9 --trunc 0.7 --translate 0.1,0 --rotate 10 --outdir out

    # A conditional network (class required):
    python gen_images.py --network run-dir/ --seeds 0-7 --class 3 --outdir out

    # Exactly the view a visualizer capture or saved session shows (layer view, FFT panel, transforms):
    python gen_images.py --session captures/00000-image.png --outdir out
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import sys
from collections.abc import Sequence
from typing import Any

import click
import numpy as np

_REPO = pathlib.Path(__file__).resolve().parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from engine import latents  # noqa: E402
from engine.cli_types import FiniteFloatRange, SeedList  # noqa: E402
from engine.image_files import save_png, tile_grid, to_u8_hwc  # noqa: E402

logger = logging.getLogger(__name__)


def generate_images(
    *,
    network: str | os.PathLike | None,
    seeds: list[int] | None,
    outdir: str | os.PathLike,
    truncation_psi: float | Sequence[float] = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = 'const',
    translate: tuple[float, float] = (0.0, 0.0),
    rotate: float = 0.0,
    device: str = 'auto',
    trust: bool = False,
    progress: bool = True,
    projected_w: str | os.PathLike | None = None,
    grid: tuple[int, int] | None = None,
    show_avg: bool = False,
    grid_only: bool = False,
) -> list[pathlib.Path]:
    """Renders `seed%04d.png` for each seed (or `proj%02d.png` for each latent of `projected_w`) into `outdir`, and
    optionally one grid image `grid.png`.

    A seed gives `z = np.random.RandomState(seed).randn(1, z_dim)` (compatibility.md §3); images are converted from
    [-1, 1] to uint8 by `x * 127.5 + 128`, clamped. Truncation (StyleGAN, Karras et al. 2019, Sec. 3) lerps the first
    `truncation_cutoff` ws toward `w_avg`; it applies to projected latents too (psi = 1 renders them as saved).

    Grids: with one psi, the images fill `grid` = (rows, cols) row by row; with several psi values, each psi is one
    row and each seed/latent one column. `show_avg` puts the image of `w_avg` (psi-independent) in front of every
    row.

    Args:
        network: Path, URL or run directory (None: the bundled default network).
        seeds: Seeds in [0, 2**32) (ignored with `projected_w`).
        outdir: Output folder (created).
        truncation_psi: Truncation psi (1 = none), or several values to sweep (file names get `-psi<value>`).
        truncation_cutoff: Number of leading ws truncated (None = all).
        class_idx: Class of a conditional network, in [0, c_dim).
        noise_mode: 'const', 'random' or 'none'.
        translate: Input translation (x, y) in image widths (StyleGAN3 only).
        rotate: Input rotation in degrees (StyleGAN3 only).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        trust: Load the pickle like the reference tools, executing its embedded code.
        progress: Show a tqdm progress bar.
        projected_w: A latent file (`.npz` from a projector or the visualizer, or `.npy`; see
            `engine.latent_files`): render its latent(s) instead of seeds.
        grid: (rows, cols) of `grid.png`; None writes no grid unless several psi values are given.
        show_avg: Add a first grid column with the `w_avg` image.
        grid_only: Write only `grid.png`, not the single images.

    Returns:
        The written PNG paths (single images first, then the grid).

    Raises:
        engine.loading.LoadError: If the network cannot be loaded.
        ValueError: On a missing/out-of-range class, an unknown noise mode, a transform on a StyleGAN2 network, an
            unavailable device, a latent file that does not fit the network (names num_ws and w_dim) or a grid
            too small for the images.
    """
    import torch
    from tqdm import tqdm

    from engine.devices import pick_device
    from engine.loading import load_generator

    psis = _check_psis_and_noise(truncation_psi, noise_mode)
    dev = pick_device(device)
    G = load_generator(network, trust=trust, device=dev)
    _apply_transform(G, translate, rotate)
    items = _latent_items(G, seeds, projected_w, class_idx, dev)  # [(name, z, c) or (name, ws, None)]
    if grid_only and grid is None and len(psis) == 1:
        raise ValueError('--grid-only needs --grid RxC (or several --trunc values)')
    layout = _grid_layout(grid, len(items), psis, show_avg) if grid is not None or len(psis) > 1 else None

    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[pathlib.Path] = []
    cells: dict[tuple[int, int], np.ndarray] = {}
    with torch.no_grad():
        todo = [(p, i) for p in range(len(psis)) for i in range(len(items))]
        for p, i in tqdm(todo, desc='Generating', unit='img', disable=not progress):
            name, latent, c = items[i]
            ws = _truncated_ws(G, latent, c, psis[p], truncation_cutoff)
            img_u8 = to_u8_hwc(G.synthesis(ws, noise_mode=noise_mode))
            if not grid_only:
                suffix = f'-psi{psis[p]:g}' if len(psis) > 1 else ''
                paths.append(save_png(outdir / f'{name}{suffix}.png', img_u8))
            if layout is not None:
                cells[layout(p, i)] = img_u8
        if layout is not None:
            if show_avg:
                rows = len(psis) if len(psis) > 1 else grid[0]  # type: ignore[index]
                cells.update(dict.fromkeys([(r, 0) for r in range(rows)], _w_avg_image(G, noise_mode)))
            paths.append(save_png(outdir / 'grid.png', tile_grid(cells)))
    return paths


def _check_psis_and_noise(truncation_psi: float | Sequence[float], noise_mode: str) -> list[float]:
    """``generate_images``' psi value(s) as a list of floats, after checking them and the noise mode.

    Raises:
        ValueError: an unknown noise mode or an empty psi list.
    """
    if noise_mode not in ('const', 'random', 'none'):
        raise ValueError(f"generate_images(): noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
    psis = [float(truncation_psi)] if np.isscalar(truncation_psi) else [float(p) for p in truncation_psi]  # type: ignore[arg-type]
    if not psis:
        raise ValueError('generate_images(): truncation_psi must hold at least one value')
    return psis


def _w_avg_image(G, noise_mode: str) -> np.ndarray:
    """The image of ``w_avg`` (the grid's ``show_avg`` column; psi-independent), uint8 [H, W, C]."""
    w_avg = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)  # [1, L, D]
    return to_u8_hwc(G.synthesis(w_avg, noise_mode=noise_mode))


def render_session(
    session: str | os.PathLike, outdir: str | os.PathLike, *, device: str | None = None, trust: bool = False
) -> list[pathlib.Path]:
    """Renders the view a visualizer capture (PNG with its state chunk, or the .json sidecar) or saved session
    shows, through the same engine path as the GUI (``engine.renderer.Renderer``), so on the same device the image
    is pixel-identical to the GUI's image capture of that state.

    Writes ``<stem>.png`` (the displayed image: final image or layer view, uint8 [H, W, 3]) and, when the state shows
    the FFT panel, ``<stem>-fft.png``; both carry the state in a PNG text chunk (they reopen in the visualizer).
    ``<stem>`` is the session file's name without suffix.

    Args:
        session: the capture/session file.
        outdir: output folder (created).
        device: overrides the state's device ('auto', 'cpu', 'cuda', 'mps'); None keeps it.
        trust: load the pickle executing its embedded code. A state file never grants this by itself (a capture
            from elsewhere could name any pickle), so it is off unless the caller passes True.

    Returns:
        The written paths.

    Raises:
        ValueError: not a capture/session, a state without a request, or the render failed (message names why).
    """
    from engine.renderer import Renderer
    from engine.states import CAPTURE_FORMAT, SESSION_FORMAT, read_state_doc, request_from_doc, save_png_with_state

    path = pathlib.Path(session)
    doc = read_state_doc(path, (CAPTURE_FORMAT, SESSION_FORMAT))
    req = request_from_doc(doc, path.name)
    if device is not None:
        req = req.replace(device=device)
    req = req.replace(trust=bool(trust))
    res = Renderer(req.device).render(req)
    if res.error or res.image is None:
        raise ValueError(f'{path.name}: render failed: {res.error or "no image"}')
    out = pathlib.Path(outdir)
    stem = path.stem
    written = [save_png_with_state(out / f'{stem}.png', res.image, doc)]
    if res.fft is not None:
        written.append(save_png_with_state(out / f'{stem}-fft.png', res.fft, doc))
    return written


def _latent_items(G, seeds, projected_w, class_idx, device) -> list[tuple[str, Any, Any]]:
    """What to render: `(file stem, z [1, z_dim], c [1, c_dim])` per seed, or `(stem, ws [1, L, D], None)` per
    latent of a projected-w file."""
    import torch

    if projected_w is not None:
        from engine.latent_files import read_latents

        ws = read_latents(projected_w, num_ws=G.num_ws, w_dim=G.w_dim)  # [N, L, D]
        if class_idx is not None:
            logger.warning('--class is ignored with --projected-w (the latent already holds everything)')
        return [(f'proj{i:02d}', torch.from_numpy(ws[i : i + 1]).to(device), None) for i in range(ws.shape[0])]
    if not seeds:
        raise ValueError('pass --seeds (e.g. 0-3) or --projected-w FILE')
    c = _class_vector(G, class_idx, device)
    return [(f'seed{s:04d}', torch.from_numpy(latents.z_from_seed(s, G.z_dim)).to(device), c) for s in seeds]


def _truncated_ws(G, latent, c, psi: float, cutoff: int | None):
    """ws [1, num_ws, w_dim]: mapped with truncation (seeds) or the given ws lerped toward w_avg (latent files)."""
    if c is not None:
        return G.mapping(latent, c, truncation_psi=psi, truncation_cutoff=cutoff)
    if psi == 1:
        return latent
    ws = latent.clone()
    n = G.num_ws if cutoff is None else cutoff
    ws[:, :n] = G.mapping.w_avg.lerp(ws[:, :n], psi)
    return ws


def _grid_layout(grid, num_items: int, psis: list[float], show_avg: bool):
    """A function (psi index, item index) -> (row, col) of the grid; validates that everything fits."""
    first = 1 if show_avg else 0
    if len(psis) > 1:
        if grid is not None and tuple(grid) != (len(psis), num_items):
            raise ValueError(
                f'--grid {grid[0]}x{grid[1]} does not fit a truncation sweep: it has one row per psi and one column '
                f'per image, i.e. {len(psis)}x{num_items}; drop --grid or match it'
            )
        return lambda p, i: (p, first + i)
    rows, cols = grid
    if rows < 1 or cols < 1 or rows * cols < num_items:
        raise ValueError(f'--grid {rows}x{cols} has {rows * cols} cells for {num_items} images; make it larger')
    return lambda p, i: (i // cols, first + i % cols)


def _class_vector(G, class_idx: int | None, device):
    """One-hot class label [1, c_dim] for a conditional network (all zeros, c_dim = 0, for an unconditional one)."""
    import torch

    c = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim > 0:
        if class_idx is None:
            raise ValueError(f'a conditional network (c_dim={G.c_dim}) needs a class: pass --class in [0, {G.c_dim})')
        if not 0 <= class_idx < G.c_dim:
            raise ValueError(f'--class must be in [0, {G.c_dim}) for this network, got {class_idx}')
        c[:, class_idx] = 1
    elif class_idx is not None:
        logger.warning('The network is unconditional; ignoring class %d', class_idx)
    return c


def _apply_transform(G, translate: tuple[float, float], rotate: float) -> None:
    """Sets the user transform on a StyleGAN3 input layer, which takes its inverse (docs/compatibility.md §3)."""
    import torch

    if hasattr(G.synthesis, 'input') and hasattr(G.synthesis.input, 'transform'):
        m = np.linalg.inv(latents.make_transform(translate, rotate))
        G.synthesis.input.transform.copy_(torch.from_numpy(m))
    elif tuple(translate) != (0.0, 0.0) or rotate != 0.0:
        raise ValueError('--translate/--rotate need a StyleGAN3 network; this one has no synthesis.input.transform')


class _Vec2Type(click.ParamType):
    name = 'vec2'

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            x, y = latents.parse_vec2(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if max(abs(x), abs(y)) > 1e6:
            self.fail(f'translation must be within +-1e6 image widths, got {value!r}', param, ctx)
        return x, y


class _FloatListType(click.ParamType):
    name = 'floats'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            values = [float(v) for v in str(value).split(',')]
        except ValueError:
            self.fail(f"expected numbers like '1,0.7,0.5', got {value!r}", param, ctx)
        if not values or not all(np.isfinite(values)) or max(abs(v) for v in values) > 1e4:
            self.fail(f'expected finite numbers within +-1e4, got {value!r}', param, ctx)
        return values


class _GridType(click.ParamType):
    name = 'grid'

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(value))
        if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            self.fail(f"expected ROWSxCOLS like '2x4' (both >= 1), got {value!r}", param, ctx)
        return (int(m.group(1)), int(m.group(2)))


@click.command()
@click.option(
    '--network',
    'network',
    default=None,
    metavar='PATH|URL|DIR',
    help='Network pickle: path, file:// or http(s):// URL, or training run directory  [default: bundled network]',
)
@click.option(
    '--seeds',
    type=SeedList(),
    default=None,
    metavar='LIST',
    help="Seeds, e.g. '0,3,5-9'  [default: 0-3; ignored with --projected-w]",
)
@click.option(
    '--projected-w',
    'projected_w',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    metavar='FILE',
    help='Render the latent(s) of this .npz/.npy (projector or visualizer output) instead of seeds: proj00.png, ...',
)
@click.option(
    '--session',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    metavar='FILE',
    help='Render exactly the view of a visualizer capture (.png or .json) or saved session (other latent/transform '
    'options are not allowed with it)',
)
@click.option(
    '--trunc',
    'truncation_psi',
    type=_FloatListType(),
    default='1',
    show_default=True,
    metavar='PSI[,PSI...]',
    help='Truncation psi; several values sweep into grid rows',
)
@click.option(
    '--trunc-cutoff',
    'truncation_cutoff',
    type=click.IntRange(min=0),
    default=None,
    show_default=True,
    metavar='NUM_WS',
    help='Truncate only the first NUM_WS ws (default: all)',
)
@click.option(
    '--class',
    'class_idx',
    type=int,
    default=None,
    show_default=True,
    metavar='INT',
    help='Class label (required for conditional networks)',
)
@click.option(
    '--noise-mode',
    type=click.Choice(['const', 'random', 'none']),
    default='const',
    show_default=True,
    help='Noise mode',
)
@click.option(
    '--translate',
    type=_Vec2Type(),
    default='0,0',
    show_default=True,
    metavar='X,Y',
    help='Input translation in image widths (StyleGAN3)',
)
@click.option(
    '--rotate',
    type=FiniteFloatRange(-1e6, 1e6),
    default=0.0,
    show_default=True,
    metavar='DEG',
    help='Input rotation in degrees (StyleGAN3)',
)
@click.option(
    '--outdir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default='out',
    show_default=True,
    metavar='DIR',
    help='Output folder',
)
@click.option(
    '--grid',
    type=_GridType(),
    default=None,
    metavar='ROWSxCOLS',
    help='Also write grid.png with the images in ROWS x COLS cells (a --trunc sweep: one row per psi)',
)
@click.option('--show-avg', is_flag=True, default=False, help='Grid: first column shows the w_avg image')
@click.option('--grid-only', is_flag=True, default=False, help='Write only grid.png, not the single images')
@click.option(
    '--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto', show_default=True, help='Device'
)
@click.option(
    '--trust',
    is_flag=True,
    default=False,
    help='Load the pickle like the reference tools: EXECUTES code embedded in the file; only for files you trust',
)
@click.pass_context
def main(
    ctx, network, seeds, projected_w, session, truncation_psi, truncation_cutoff, class_idx, noise_mode, translate, rotate, outdir,
    grid, show_avg, grid_only, device, trust,
):  # fmt: skip
    """Generate images (seed%04d.png, or proj%02d.png from a latent file) and grids from a network pickle.

    \b
    Examples:
      python gen_images.py --seeds 0-3 --outdir out
      python gen_images.py --network net.pkl --seeds 0,3,5-9 --trunc 0.7 --outdir out
      python gen_images.py --network net.pkl --seeds 0-7 --class 3 --translate 0.1,0 --rotate 10 --outdir out
      python gen_images.py --seeds 0-7 --grid 2x4 --outdir out
      python gen_images.py --seeds 0-5 --trunc 1,0.7,0.5 --show-avg --grid-only --outdir out
      python gen_images.py --network net.pkl --projected-w projected_w.npz --outdir out
      python gen_images.py --session captures/00000-image.png --outdir out
    """
    from engine.loading import LoadError

    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    if session is not None:
        src = click.core.ParameterSource
        clash = [
            p.opts[0]
            for p in ctx.command.params
            if p.name not in ('session', 'outdir', 'device', 'trust')
            and ctx.get_parameter_source(p.name) not in (src.DEFAULT, src.DEFAULT_MAP)
        ]
        if clash:
            raise click.UsageError(f'--session renders the saved state as is; drop {", ".join(clash)}')
        explicit_device = ctx.get_parameter_source('device') not in (src.DEFAULT, src.DEFAULT_MAP)
        try:
            paths = render_session(session, outdir, device=device if explicit_device else None, trust=trust)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f'Wrote {", ".join(str(p) for p in paths)}')
        return
    try:
        paths = generate_images(
            network=network,
            seeds=seeds if seeds is not None or projected_w is not None else [0, 1, 2, 3],
            outdir=outdir,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            translate=translate,
            rotate=rotate,
            device=device,
            trust=trust,
            projected_w=projected_w,
            grid=grid,
            show_avg=show_avg,
            grid_only=grid_only,
        )
    except (LoadError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'Wrote {len(paths)} image(s) to {outdir}')


if __name__ == '__main__':
    main()
