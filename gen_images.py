"""Generate images from a network pickle, one PNG per seed (same seed, same image as the reference tools).

Examples:
    # The bundled default network, seeds 0-3:
    python gen_images.py --seeds 0-3 --outdir out

    # A downloaded network with truncation and a translated/rotated input (StyleGAN3):
    python gen_images.py --network https://example.org/stylegan3-t-ffhq-1024x1024.pkl \\
        --seeds 0,3,5-9 --trunc 0.7 --translate 0.1,0 --rotate 10 --outdir out

    # A conditional network (class required):
    python gen_images.py --network run-dir/ --seeds 0-7 --class 3 --outdir out
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

logger = logging.getLogger(__name__)


def generate_images(
    *,
    network: str | os.PathLike | None,
    seeds: list[int],
    outdir: str | os.PathLike,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = 'const',
    translate: tuple[float, float] = (0.0, 0.0),
    rotate: float = 0.0,
    device: str = 'auto',
    trust: bool = False,
    progress: bool = True,
) -> list[pathlib.Path]:
    """Renders `seed%04d.png` for each seed into `outdir`.

    A seed gives `z = np.random.RandomState(seed).randn(1, z_dim)` (REFERENCE section 3); images are converted from
    [-1, 1] to uint8 by `x * 127.5 + 128`, clamped.

    Args:
        network: Path, URL or run directory (None: the bundled default network).
        seeds: Seeds in [0, 2**32).
        outdir: Output folder (created).
        truncation_psi: Truncation psi (1 = none).
        truncation_cutoff: Number of leading ws truncated (None = all).
        class_idx: Class of a conditional network, in [0, c_dim).
        noise_mode: 'const', 'random' or 'none'.
        translate: Input translation (x, y) in image widths (StyleGAN3 only).
        rotate: Input rotation in degrees (StyleGAN3 only).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        trust: Load the pickle like the reference tools, executing its embedded code.
        progress: Show a tqdm progress bar.

    Returns:
        The written PNG paths.

    Raises:
        engine.loading.LoadError: If the network cannot be loaded.
        ValueError: On a missing/out-of-range class, an unknown noise mode, a transform on a StyleGAN2 network or
            an unavailable device.
    """
    import torch
    from tqdm import tqdm

    from engine.devices import pick_device
    from engine.loading import load_generator

    if noise_mode not in ('const', 'random', 'none'):
        raise ValueError(f"generate_images(): noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
    dev = pick_device(device)
    G = load_generator(network, trust=trust, device=dev)
    c = _class_vector(G, class_idx, dev)
    _apply_transform(G, translate, rotate)

    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    with torch.no_grad():
        for seed in tqdm(seeds, desc='Generating', unit='img', disable=not progress):
            z = torch.from_numpy(latents.z_from_seed(seed, G.z_dim)).to(dev)
            img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
            path = outdir / f'seed{seed:04d}.png'
            _save_png(img, path)
            paths.append(path)
    return paths


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
    """Sets the user transform on a StyleGAN3 input layer, which takes its inverse (REFERENCE section 3)."""
    import torch

    if hasattr(G.synthesis, 'input') and hasattr(G.synthesis.input, 'transform'):
        m = np.linalg.inv(latents.make_transform(translate, rotate))
        G.synthesis.input.transform.copy_(torch.from_numpy(m))
    elif tuple(translate) != (0.0, 0.0) or rotate != 0.0:
        raise ValueError('--translate/--rotate need a StyleGAN3 network; this one has no synthesis.input.transform')


def _save_png(img, path: pathlib.Path) -> None:
    """Saves generator output [1, C, H, W] in [-1, 1] (C = 1 or 3) as an 8-bit PNG: `x * 127.5 + 128`, clamped."""
    import PIL.Image
    import torch

    img_u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
    if img_u8.shape[2] == 1:
        PIL.Image.fromarray(img_u8[:, :, 0], 'L').save(path)
    else:
        PIL.Image.fromarray(img_u8, 'RGB').save(path)


class _RangeType(click.ParamType):
    name = 'range'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            seeds = latents.parse_range(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        bad = [s for s in seeds if not 0 <= s < 2**32]
        if bad:
            self.fail(f'seeds must be in [0, 2**32), got {bad[0]}', param, ctx)
        return seeds


class _Vec2Type(click.ParamType):
    name = 'vec2'

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return latents.parse_vec2(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


@click.command()
@click.option(
    '--network',
    'network',
    default=None,
    metavar='PATH|URL|DIR',
    help='Network pickle: path, file:// or http(s):// URL, or training run directory  [default: bundled network]',
)
@click.option(
    '--seeds', type=_RangeType(), default='0-3', show_default=True, metavar='LIST', help="Seeds, e.g. '0,3,5-9'"
)
@click.option(
    '--trunc', 'truncation_psi', type=float, default=1.0, show_default=True, metavar='PSI', help='Truncation psi'
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
    '--rotate', type=float, default=0.0, show_default=True, metavar='DEG', help='Input rotation in degrees (StyleGAN3)'
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
    '--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto', show_default=True, help='Device'
)
@click.option(
    '--trust',
    is_flag=True,
    default=False,
    help='Load the pickle like the reference tools: EXECUTES code embedded in the file; only for files you trust',
)
def main(
    network, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, translate, rotate, outdir, device, trust
):
    """Generate images (seed%04d.png) from a network pickle.

    \b
    Examples:
      python gen_images.py --seeds 0-3 --outdir out
      python gen_images.py --network net.pkl --seeds 0,3,5-9 --trunc 0.7 --outdir out
      python gen_images.py --network net.pkl --seeds 0-7 --class 3 --translate 0.1,0 --rotate 10 --outdir out
    """
    from engine.loading import LoadError

    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    try:
        paths = generate_images(
            network=network,
            seeds=seeds,
            outdir=outdir,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            translate=translate,
            rotate=rotate,
            device=device,
            trust=trust,
        )
    except (LoadError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'Wrote {len(paths)} image(s) to {outdir}')


if __name__ == '__main__':
    main()
