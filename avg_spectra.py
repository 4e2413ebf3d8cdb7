"""Average power spectra of datasets and generators, as in the Alias-Free GAN paper (arXiv 2106.12423, Fig. 15).

Workflow (docs/compatibility.md §7):

\b
  python avg_spectra.py stats --source=/tmp/twemoji-64.zip
  python avg_spectra.py calc  --source=/tmp/twemoji-64.zip --dest=/tmp/twemoji.npz --mean=M --std=S
  python avg_spectra.py calc  --source=models/default.pkl --dest=/tmp/net.npz --mean=M --std=S --num=1000
  python avg_spectra.py heatmap /tmp/twemoji.npz --save=/tmp/heatmap.png
  python avg_spectra.py slices /tmp/twemoji.npz /tmp/net.npz --save=/tmp/slices.png

Use the dataset's --mean/--std for the network too, so both spectra are on the same scale.
Datasets should be made with dataset_tool.py (which composites transparent images onto white). Raw folders or
zips whose images have alpha or a palette (such as Twemoji) are composited onto white here as well.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import click
import numpy as np
import torch
from tqdm import tqdm

from engine import spectrum as sp
from engine import spectrum_io as spio
from engine.cli_types import FINITE_FLOAT, FiniteFloatRange
from training.dataset import ImageFolderDataset

MAX_AUTO_BATCH = 64
AUTO_BATCH_BYTES = 256 << 20  # Rough FFT working-set budget for --batch 0 (auto).
DEFAULT_NETWORK_NUM = 1000

# ----------------------------------------------------------------------------
# Image sources.


def is_network_source(source: str) -> bool:
    """True for a network pickle (path/URL), a run dir with snapshots; False for a dataset (zip or folder)."""
    from engine import sources

    try:
        src = sources.parse_source(source)
    except sources.SourceError:
        return True  # An unsupported URL scheme: the loader reports it.
    if src.kind == 'run_dir':
        return any(p.name.startswith('network-snapshot-') for p in sources.list_snapshots(source))
    return sources.is_network_source(source)


class ImageSource:
    """Uniform access to `num` images of a dataset or a generator as uint8 [N, C, H, W] batches.

    Dataset: a deterministic random subset of `num` images (seeded by `seed`; all when num is None), alpha
    composited onto white. Network: images of seeds seed .. seed+num-1 (z from `engine.latents.z_from_seed`,
    class from `class_from_seed` for conditional nets), `truncation_psi=trunc`, `noise_mode='const'`,
    quantised like saved images: uint8(clamp(img * 127.5 + 128)).
    """

    def __init__(self, source: str, *, num: int | None, seed: int = 0, device: torch.device, trunc: float = 1.0,
                 trust: bool = False):  # fmt: skip
        self.source = source
        self.seed = int(seed)
        self.device = device
        self.trunc = float(trunc)
        self.is_network = is_network_source(source)
        if num is not None and num < 1:
            raise ValueError(f'avg_spectra: --num must be >= 1, got {num}')
        if self.is_network:
            from engine.loading import load_generator  # lazy: pulls in the pickle machinery

            G: Any = load_generator(source, trust=trust, device=device)
            self.G = G
            self.num = DEFAULT_NETWORK_NUM if num is None else int(num)
            self.resolution = int(G.img_resolution)
            self.channels = int(G.img_channels)
        else:
            full = ImageFolderDataset(source)
            if num is not None and num > len(full):
                raise ValueError(
                    f'avg_spectra: --num must be at most the number of images in {source!r} ({len(full)}), got {num}; '
                    'omit --num to use them all'
                )
            self.dataset = full if num is None else ImageFolderDataset(source, max_size=num, random_seed=self.seed)
            self.num = len(self.dataset)
            c, h, w = self.dataset.image_shape
            if h != w:
                raise ValueError(f'avg_spectra: images must be square, got {w}x{h} in {source!r}; use dataset_tool.py')
            self.resolution, self.channels = h, c

    def auto_batch(self, interp: int) -> int:
        per_image = self.channels * (self.resolution * interp) ** 2 * 8 * 3  # complex64 spectrum + temporaries
        return int(max(1, min(MAX_AUTO_BATCH, AUTO_BATCH_BYTES // per_image)))

    def batches(self, batch: int, progress: bool = True, desc: str = 'Images') -> Iterator[torch.Tensor]:
        """Yields uint8 [n, C, H, W] tensors on `self.device` (n <= batch), `self.num` images in total."""
        bar = tqdm(total=self.num, desc=desc, unit='img', disable=not progress)
        try:
            for start in range(0, self.num, batch):
                n = min(batch, self.num - start)
                imgs = self._network_batch(start, n) if self.is_network else self._dataset_batch(start, n)
                bar.update(n)
                yield imgs
        finally:
            bar.close()

    def _dataset_batch(self, start: int, n: int) -> torch.Tensor:
        arr = np.stack([self.dataset[i][0] for i in range(start, start + n)])  # [n, C, H, W] uint8
        return torch.from_numpy(arr).to(self.device)

    @torch.no_grad()
    def _network_batch(self, start: int, n: int) -> torch.Tensor:
        from engine.latents import zc_from_seeds

        G: Any = self.G
        z, c = zc_from_seeds(range(self.seed + start, self.seed + start + n), G.z_dim, G.c_dim)
        z, c = torch.from_numpy(z).to(self.device), torch.from_numpy(c).to(self.device)
        img = G(z, c, truncation_psi=self.trunc, noise_mode='const')  # [n, C, H, W] roughly [-1, 1]
        return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def pick_device(name: str) -> torch.device:
    from engine.devices import pick_device as _pick

    return _pick(name)


# ----------------------------------------------------------------------------
# stats / calc.


def compute_stats(src: ImageSource, *, batch: int = 64, progress: bool = True) -> tuple[float, float]:
    """Mean and standard deviation over all pixels of all channels of the source images (0..255 scale).

    Returns:
        (mean, std) as floats; std is the population standard deviation.
    """
    total = total_sq = count = 0.0
    for imgs in src.batches(batch, progress=progress, desc='Stats'):
        x = imgs.to(torch.float64) if imgs.device.type != 'mps' else imgs.to(torch.float32)
        total += float(x.sum())
        total_sq += float(x.square().sum())
        count += x.numel()
    mean = total / count
    std = max(total_sq / count - mean * mean, 0.0) ** 0.5
    return mean, std


def compute_spectrum(
    src: ImageSource,
    *,
    mean: float,
    std: float,
    beta: float = 8.0,
    interp: int = 4,
    batch: int = 0,
    progress: bool = True,
) -> dict:
    """Average windowed power spectrum of the source images (docs/compatibility.md §7; `engine.spectrum`).

    Args:
        src: image source (dataset or network).
        mean, std: normalisation on the 0..255 scale.
        beta: Kaiser window beta.
        interp: zero-padding factor; spectrum size S = resolution * interp.
        batch: images per batch; 0 = automatic (memory-bounded, at most 64).
        progress: tqdm bar.

    Returns:
        dict(spectrum float64 [S, S] unshifted linear power, image_size, beta, interp, num, mean, std, source).

    Raises:
        ValueError: bad std/interp (from power_spectra), unreadable or inconsistent dataset images.
    """
    batch = batch or src.auto_batch(interp)
    acc = None
    for imgs in src.batches(batch, progress=progress, desc='Spectrum'):
        part = sp.power_spectrum_sum(imgs, mean=mean, std=std, beta=beta, interp=interp)  # [S, S] float64 CPU
        acc = part if acc is None else acc + part
    assert acc is not None
    return dict(
        spectrum=(acc / src.num).numpy(), image_size=src.resolution, beta=float(beta), interp=int(interp),
        num=int(src.num), mean=float(mean), std=float(std), source=str(src.source),
    )  # fmt: skip


save_spectrum = spio.save_spectrum  # The npz format lives in engine.spectrum_io (shared with the visualizer).
load_spectrum = spio.load_spectrum


# ----------------------------------------------------------------------------
# Figures.


def _new_figure(save: bool, figsize):
    if save:  # Agg canvas, no GUI backend and no global pyplot state
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)


def heatmap_figure(spec: dict, *, smooth: float = 1.25, save: bool = True, title: str | None = None):
    """Filled-contour heatmap of the centred spectrum, -40..20 dB (Alias-Free GAN Fig. 15, left).

    Args:
        spec: dict from `load_spectrum` / `compute_spectrum`.
        smooth: Gaussian sigma in spectrum bins (dB domain), 0 = none.
        save: build an Agg figure (True) or a pyplot window figure (False).
        title: figure title (default: the source name).

    Returns:
        matplotlib Figure.
    """
    hmap = sp.smooth_db(sp.to_db(sp.center_spectrum(spec['spectrum'])), smooth)  # [S, S] dB
    freqs = sp.centered_freqs(hmap.shape[0])
    levels = np.linspace(-40, 20, 13)
    fig = _new_figure(save, (6.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    cs = ax.contourf(freqs, freqs, np.clip(hmap, -40, 20), levels=levels, cmap='viridis')
    cbar = fig.colorbar(cs, ax=ax, ticks=np.linspace(-40, 20, 7))
    cbar.set_label('power (dB)')
    ax.set_aspect('equal')
    ax.set_xlabel('horizontal frequency (cycles/pixel)')
    ax.set_ylabel('vertical frequency (cycles/pixel)')
    ticks = np.linspace(-0.5, 0.5, 5)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_title(title if title is not None else _label_of(spec, 'spectrum'))
    fig.tight_layout()
    return fig


def _label_of(spec: dict, fallback: str) -> str:
    src = spec.get('source')
    name = os.path.basename(str(src).rstrip('/')) if src else fallback
    return f'{name} ({spec["num"]} images)' if 'num' in spec else name


def slices_figure(specs: list[tuple[str, dict]], *, smooth: float = 0.0, save: bool = True):
    """0- and 45-degree radial slices of several spectra in one plot, -50..30 dB (Alias-Free GAN Fig. 15, right).

    Args:
        specs: list of (legend label, spectrum dict), all of the same size.
        smooth: Gaussian sigma in spectrum bins applied to the dB map before slicing.
        save: Agg figure (True) or pyplot figure (False).

    Returns:
        (matplotlib Figure, rows) with rows = [(label, angle_deg, freq cycles/pixel, power dB), ...] for CSV.
    """
    fig = _new_figure(save, (7.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    rows = []
    colors = [f'C{i % 10}' for i in range(len(specs))]
    for (label, spec), color in zip(specs, colors):
        sl = spio.spectrum_profiles(spec['spectrum'], smooth=smooth)
        ax.plot(sl['freq_0'], sl['slice_0'], color=color, linestyle='-', label=f'{label}, 0°')
        ax.plot(sl['freq_45'], sl['slice_45'], color=color, linestyle='--', label=f'{label}, 45°')
        rows += spio.profile_rows(label, sl)
    ax.axvline(0.5, color='0.5', linestyle=':', linewidth=1, label='Nyquist (0.5)')
    ax.set_xlim(0, 0.5 * np.sqrt(2))
    ax.set_ylim(-50, 30)
    ax.set_xlabel('radial frequency (cycles/pixel)')
    ax.set_ylabel('power (dB)')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc='upper right')
    fig.tight_layout()
    return fig, rows


def _finish_figure(fig, save: str | None, dpi: int) -> None:
    if save:
        ext = os.path.splitext(save)[1].lower()
        if ext not in ('.png', '.pdf', '.svg'):
            raise ValueError(f'avg_spectra: --save must end in .png, .pdf or .svg, got {save!r}')
        os.makedirs(os.path.dirname(os.path.abspath(save)), exist_ok=True)
        fig.savefig(save, dpi=dpi)
        click.echo(f'Saved {save}')
    else:
        import matplotlib.pyplot as plt

        plt.show()


# ----------------------------------------------------------------------------
# CLI.


def _user_errors(fn: Callable) -> Callable:
    """Turns user-facing exceptions into one-line click errors (no traceback)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        except Exception as e:
            if any(cls.__name__ == 'LoadError' for cls in type(e).__mro__):  # engine.loading's user-facing errors
                raise click.ClickException(str(e)) from None
            raise

    return wrapper


def _source_options(fn: Callable) -> Callable:
    opts = [
        click.option('--source', metavar='PATH|URL', required=True, help='Dataset (zip or folder; alpha composited onto white) or network pickle / URL / run dir'),
        click.option('--num', metavar='INT', type=click.IntRange(min=1), default=None, show_default=True, help=f'Number of images [default: all dataset images; {DEFAULT_NETWORK_NUM} for a network]'),
        click.option('--seed', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True, help='Dataset: seed of the random subset; network: first seed'),
        click.option('--batch', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True, help='Images per batch (0 = automatic, memory-bounded)'),
        click.option('--device', metavar='NAME', type=str, default='auto', show_default=True, help='auto, cpu, cuda, cuda:1, mps'),
        click.option('--trunc', metavar='PSI', type=FINITE_FLOAT, default=1.0, show_default=True, help='Network only: truncation psi'),
        click.option('--trust', is_flag=True, default=False, show_default=True, help='Network only: allow pickles that need arbitrary code (unsafe)'),
    ]  # fmt: skip
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _figure_options(fn: Callable) -> Callable:
    """``--save FILE`` and ``--dpi INT`` of the plotting commands (see :func:`_finish_figure`)."""
    opts = [
        click.option('--save', metavar='FILE', type=str, default=None, show_default=True, help='Save to .png/.pdf/.svg instead of opening a window'),
        click.option('--dpi', metavar='INT', type=click.IntRange(min=10), default=100, show_default=True, help='Resolution of saved PNGs'),
    ]  # fmt: skip
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@click.group(help=__doc__)
def main():
    pass


@main.command()
@_source_options
@_user_errors
def stats(source, num, seed, batch, device, trunc, trust):
    """Print --mean=<m> --std=<s> over all pixels (0..255 scale), to pass to `calc`.

    \b
    Example: python avg_spectra.py stats --source=/tmp/twemoji-64.zip
    """
    src = ImageSource(source, num=num, seed=seed, device=pick_device(device), trunc=trunc, trust=trust)
    mean, std = compute_stats(src, batch=batch or 64)
    click.echo(f'--mean={mean:.7g} --std={std:.7g}')


@main.command()
@_source_options
@click.option(
    '--dest',
    metavar='NPZ',
    required=True,
    help='Output .npz (spectrum [S, S] float64 unshifted + image_size + metadata)',
)
@click.option(
    '--mean',
    metavar='FLOAT',
    type=FINITE_FLOAT,
    default=None,
    show_default=True,
    help='Pixel mean on the 0..255 scale (from `stats`); computed first when omitted',
)
@click.option(
    '--std',
    metavar='FLOAT',
    type=FINITE_FLOAT,
    default=None,
    show_default=True,
    help='Pixel std on the 0..255 scale (from `stats`); computed first when omitted',
)
@click.option(
    '--beta', metavar='FLOAT', type=FiniteFloatRange(min=0), default=8.0, show_default=True, help='Kaiser window beta'
)
@click.option(
    '--interp',
    metavar='INT',
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help='Zero-padding factor: spectrum size = resolution * interp',
)
@_user_errors
def calc(source, num, seed, batch, device, trunc, trust, dest, mean, std, beta, interp):  # fmt: skip
    """Average power spectrum of a dataset or a network, saved as NPZ.

    \b
    Example: python avg_spectra.py calc --source=/tmp/twemoji-64.zip --dest=/tmp/twemoji.npz --mean=M --std=S
    """
    if (mean is None) != (std is None):
        raise click.ClickException('avg_spectra calc: give both --mean and --std, or neither (to compute them)')
    if std is not None and not std > 0:
        raise click.ClickException(f'avg_spectra calc: --std must be > 0, got {std}')
    src = ImageSource(source, num=num, seed=seed, device=pick_device(device), trunc=trunc, trust=trust)
    if mean is None:
        click.echo('--mean/--std not given: computing them from the same images first')
        mean, std = compute_stats(src, batch=batch or src.auto_batch(1))
        click.echo(f'--mean={mean:.7g} --std={std:.7g}')
        if not std > 0:
            raise click.ClickException(f'avg_spectra calc: the images are constant (std = {std}); nothing to analyse')
    result = compute_spectrum(src, mean=mean, std=std, beta=beta, interp=interp, batch=batch)
    save_spectrum(dest, result)
    s = result['spectrum'].shape[0]
    click.echo(f'Saved {dest}: {result["num"]} images of {result["image_size"]}px, spectrum {s}x{s}')


@main.command()
@click.argument('npz', metavar='NPZ', type=str)
@_figure_options
@click.option(
    '--smooth',
    metavar='BINS',
    type=FiniteFloatRange(min=0),
    default=1.25,
    show_default=True,
    help='Gaussian smoothing sigma in spectrum bins (0 = none)',
)
@_user_errors
def heatmap(npz, save, dpi, smooth):
    """Filled-contour heatmap of a spectrum, -40..20 dB, axes in cycles/pixel.

    \b
    Example: python avg_spectra.py heatmap /tmp/twemoji.npz --save=/tmp/heatmap.png
    """
    fig = heatmap_figure(load_spectrum(npz), smooth=smooth, save=bool(save))
    _finish_figure(fig, save, dpi)


@main.command()
@click.argument('npz', metavar='NPZ...', nargs=-1, required=True, type=str)
@_figure_options
@click.option(
    '--smooth',
    metavar='BINS',
    type=FiniteFloatRange(min=0),
    default=0.0,
    show_default=True,
    help='Gaussian smoothing sigma in spectrum bins before slicing (0 = none)',
)
@click.option(
    '--csv',
    'csv_path',
    metavar='FILE',
    type=str,
    default=None,
    show_default=True,
    help='Also write the slices as CSV (file, angle_deg, freq_cycles_per_px, power_db)',
)
@_user_errors
def slices(npz, save, dpi, smooth, csv_path):
    """0- and 45-degree slices of one or more spectra in one plot, -50..30 dB.

    \b
    Example: python avg_spectra.py slices /tmp/twemoji.npz /tmp/net.npz --save=/tmp/slices.png
    """
    specs = [(pathlib.Path(p).stem, load_spectrum(p)) for p in npz]
    first_label, first = specs[0]
    for label, spec in specs[1:]:
        if spec['spectrum'].shape != first['spectrum'].shape or spec['image_size'] != first['image_size']:
            raise click.ClickException(
                f'avg_spectra slices: all spectra must have the same size, got {first_label} '
                f'{first["image_size"]}px/{first["spectrum"].shape[0]} bins and {label} '
                f'{spec["image_size"]}px/{spec["spectrum"].shape[0]} bins; recompute with the same resolution and --interp'
            )
    fig, rows = slices_figure(specs, smooth=smooth, save=bool(save))
    if csv_path:
        spio.save_rows_csv(csv_path, rows)
        click.echo(f'Saved {csv_path}')
    _finish_figure(fig, save, dpi)


if __name__ == '__main__':
    main()
