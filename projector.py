"""Project real images into the latent space W (or W+) of a network: find the w whose image matches a photo.

Writes into --outdir (one sub-folder per target when several are given): `target.png` (the prepared target),
`proj.png` (the reconstruction), `projected_w.npz` (key `w`, shape [1, num_ws, w_dim], float32: the format of the
reference tools, read by `gen_images.py --projected-w`, `visualizer.py --w` and the reference `generate.py`), and
with --save-video `proj.mp4` (target and reconstruction side by side as the optimisation proceeds).

Examples:
    # The bundled network, the built-in loss (no downloads), 300 steps:
    python projector.py --target docs/projector/target.png --num-steps 300 --outdir out/proj

    # The reference perceptual loss with the published VGG16 feature file, W+ and a progress video:
    python projector.py --network ffhq.pkl --target me.jpg --vgg16 vgg16.pt --trust --space w+ --save-video \\
        --outdir out/me

    # Every image of a folder:
    python projector.py --network ffhq.pkl --target photos/ --outdir out/all
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import sys
import time
from typing import Any

import click
import numpy as np

_REPO = pathlib.Path(__file__).resolve().parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')


def expand_targets(targets: list[str]) -> list[pathlib.Path]:
    """Files as given; a folder contributes its images (sorted by name).

    Raises:
        ValueError: A target that does not exist or a folder without images.
    """
    out: list[pathlib.Path] = []
    for t in targets:
        p = pathlib.Path(t)
        if p.is_dir():
            imgs = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                raise ValueError(f'--target {t}: the folder holds no images ({", ".join(IMAGE_SUFFIXES)})')
            out.extend(imgs)
        elif p.is_file():
            out.append(p)
        else:
            raise ValueError(f'--target {t}: no such file or folder')
    return out


def parse_start(value: str) -> tuple[str, Any]:
    """--start: 'w_avg', 'seed:N' or a latent file path -> ('w_avg', None) | ('seed', N) | ('file', path)."""
    if value == 'w_avg':
        return 'w_avg', None
    if value.startswith('seed:'):
        try:
            seed = int(value[5:])
        except ValueError:
            raise ValueError(f'--start seed:N needs an integer seed, got {value!r}') from None
        if not 0 <= seed < 2**32:
            raise ValueError(f'--start seed must be in [0, 2**32), got {seed}')
        return 'seed', seed
    if not os.path.isfile(value):
        raise ValueError(f"--start must be 'w_avg', 'seed:N' or an existing .npy/.npz latent file, got {value!r}")
    return 'file', value


def _to_u8(img) -> np.ndarray:
    """[1, C, H, W] in [-1, 1] -> [H, W, C] uint8 (`x * 127.5 + 128`, clamped, as the reference tools)."""
    from engine.image_files import to_u8_hwc

    return to_u8_hwc(img)


def project_images(
    *,
    network: str | os.PathLike | None,
    targets: list[str | os.PathLike],
    outdir: str | os.PathLike,
    space: str = 'w',
    num_steps: int = 1000,
    seed: int = 303,
    loss: str = 'auto',
    vgg16: str | None = None,
    start: str = 'w_avg',
    class_idx: int | None = None,
    save_video: bool = False,
    video_every: int = 5,
    trust: bool = False,
    device: str = 'auto',
    progress: bool = True,
) -> list[pathlib.Path]:
    """Projects each target and writes its outputs (see the module docstring).

    Args:
        network: Path, URL or run directory (None: the bundled default network).
        targets: Image files or folders of images.
        outdir: Output folder; with several targets, one sub-folder per target named after its file.
        space: 'w' or 'w+'.
        num_steps: Optimisation steps per target.
        seed: Seed of every random draw (results repeat exactly on the CPU).
        loss: 'auto' (VGG16 when a feature file is given or found), 'vgg16' or 'builtin'.
        vgg16: Path or URL of the VGG16 feature file (default: $SG3VIZ_VGG16 or the cache's vgg16.pt).
        start: 'w_avg', 'seed:N' or a .npy/.npz latent file.
        class_idx: Class of a conditional network.
        save_video: Also write proj.mp4 (target | reconstruction every `video_every` steps).
        video_every: Steps between video frames, >= 1.
        trust: Load the network pickle executing its code, and run an unknown VGG16 TorchScript file.
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        progress: Show tqdm progress bars.

    Returns:
        The folders written (one per target).

    Raises:
        engine.loading.LoadError: Network or VGG16 file unreadable or refused.
        ValueError: Bad targets, options or start latent.
    """

    from engine import projector as P
    from engine.devices import pick_device
    from engine.loading import load_generator
    from gen_images import _class_vector

    cfg = P.ProjectorConfig(num_steps=num_steps, space=space, seed=seed, loss=loss)
    if video_every < 1:
        raise ValueError(f'--video-every must be >= 1, got {video_every}')
    paths = expand_targets([str(t) for t in targets])
    start_kind, start_value = parse_start(start)
    outdir = pathlib.Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f'--outdir {outdir} exists and is not a folder; choose another path')

    dev = pick_device(device)
    G = load_generator(network, trust=trust, device=dev)
    c = _class_vector(G, class_idx, dev)
    vgg = _vgg16_for(loss, vgg16, trust, dev)
    if vgg is None:
        logger.warning('Using the built-in loss (pixel L2 + SSIM): lower quality than the VGG16 perceptual loss; '
                       'pass --vgg16 PATH for the reference loss')  # fmt: skip
    w_start = _start_ws(G, start_kind, start_value, c)
    written = []
    for path, name in zip(paths, _unique_names(paths)):
        out = outdir / name if len(paths) > 1 else outdir
        res, seconds = _project_one(G, path, cfg=cfg, vgg=vgg, w_start=w_start, c=c, keep_history=save_video,
                                    progress=progress)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        _write_outputs(out, res, cfg, network, path, seconds)
        if save_video:
            _write_video(G, res, out / 'proj.mp4', video_every, progress)
        written.append(out)
    return written


def _project_one(G, path: pathlib.Path, *, cfg, vgg, w_start, c, keep_history: bool, progress: bool):
    """Loads one target image for ``G`` and projects it (``engine.projector.project``) with a tqdm bar of the steps.

    Returns:
        (the ProjectionResult, seconds taken).
    """
    import torch
    from tqdm import tqdm

    from engine import projector as P

    target = P.load_target(path, int(G.img_resolution), int(G.img_channels))
    t0 = time.perf_counter()
    with tqdm(total=cfg.num_steps, desc=f'Projecting {path.name}', unit='step', disable=not progress) as bar:

        def cb(st: P.ProjectionStep) -> None:
            bar.update(1)
            bar.set_postfix(dist=f'{st.dist:.4g}', loss=f'{st.loss:.4g}')

        with torch.enable_grad():
            res = P.project(G, target, cfg=cfg, vgg16=vgg, w_start=w_start, c=c, keep_history=keep_history,
                            callback=cb)  # fmt: skip
    return res, time.perf_counter() - t0


def _unique_names(paths: list[pathlib.Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        name, k = p.stem, 1
        while name in names:
            k += 1
            name = f'{p.stem}-{k}'
        names.append(name)
    return names


def _vgg16_for(loss: str, vgg16: str | None, trust: bool, dev):
    from engine import projector as P

    if loss == 'builtin':
        return None
    source = vgg16 or P.default_vgg16_path()
    if source is None:
        if loss == 'vgg16':
            raise ValueError(
                '--loss vgg16 needs the VGG16 feature file: pass --vgg16 PATH|URL or set $SG3VIZ_VGG16 '
                '(it is never downloaded implicitly); or use --loss builtin'
            )
        return None
    return P.load_vgg16(source, trust=trust, device=dev)


def _start_ws(G, kind: str, value: Any, c):
    import torch

    from engine.latents import z_from_seed

    if kind == 'w_avg':
        return None
    if kind == 'seed':
        z = torch.from_numpy(z_from_seed(value, G.z_dim)).to(c.device)
        with torch.no_grad():
            return G.mapping(z, c).cpu()
    from engine.latent_files import read_ws

    return torch.from_numpy(read_ws(value, num_ws=int(G.num_ws), w_dim=int(G.w_dim)))[None]


def _write_outputs(out: pathlib.Path, res, cfg, network, target_path: pathlib.Path, seconds: float) -> None:
    from engine.image_files import save_png
    from engine.latent_files import write_ws

    meta = {
        'network': str(network) if network is not None else 'bundled default',
        'target': str(target_path),
        'space': cfg.space,
        'num_steps': cfg.num_steps,
        'steps_run': res.steps_run,
        'seed': cfg.seed,
        'loss': res.loss_name,
        'final_loss': res.losses[-1],
        'seconds': round(seconds, 3),
        'config': dataclasses.asdict(cfg),
    }
    save_png(out / 'target.png', res.target.permute(1, 2, 0).numpy())
    save_png(out / 'proj.png', _to_u8(res.image))
    write_ws(out / 'projected_w.npz', res.ws.numpy(), state={'projection': meta})
    logger.info('Wrote %s (final loss %.4g, %d steps, %.1f s)', out, res.losses[-1], res.steps_run, seconds)


def _write_video(G, res, path: pathlib.Path, every: int, progress: bool) -> None:
    import torch

    from engine import projector as P
    from gen_video import write_frames

    assert res.ws_history is not None
    steps = list(range(every - 1, res.steps_run, every))
    if not steps or steps[-1] != res.steps_run - 1:
        steps.append(res.steps_run - 1)
    target = res.target.permute(1, 2, 0).numpy()
    if target.shape[2] == 1:
        target = np.repeat(target, 3, axis=2)

    def frames():
        for i in steps:
            synth = _to_u8(P.render_ws(G, res.ws_history[i : i + 1]))
            if synth.shape[2] == 1:
                synth = np.repeat(synth, 3, axis=2)
            frame = np.concatenate([target, synth], axis=1)
            h, w = frame.shape[:2]
            yield np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))  # H.264 yuv420p needs even sizes

    tmp = path.with_name(path.stem + '.tmp' + path.suffix)
    with torch.no_grad():
        write_frames(frames(), str(tmp), fps=30, num_frames=len(steps), progress=progress)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------


@click.command(epilog=__doc__.split('Examples:')[1] if __doc__ else None)
@click.option(
    '--network', 'network', metavar='PKL|URL|DIR', default=None, help='Network pickle (default: the bundled network)'
)
@click.option(
    '--target',
    'targets',
    metavar='IMAGE|DIR',
    multiple=True,
    required=True,
    help='Target image or folder of images (repeatable)',
)
@click.option('--outdir', metavar='DIR', type=click.Path(file_okay=False), required=True, help='Output folder')
@click.option(
    '--space',
    type=click.Choice(['w', 'w+']),
    default='w',
    show_default=True,
    help="'w': one w for all layers (reference method); 'w+': one w per layer",
)
@click.option(
    '--num-steps',
    metavar='INT',
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help='Optimisation steps',
)
@click.option(
    '--seed', metavar='INT', type=click.IntRange(0, 2**32 - 1), default=303, show_default=True, help='Random seed'
)
@click.option(
    '--loss',
    type=click.Choice(['auto', 'vgg16', 'builtin']),
    default='auto',
    show_default=True,
    help='auto: vgg16 when a feature file is given or found, else builtin',
)
@click.option(
    '--vgg16', metavar='PATH|URL', default=None, help='VGG16 feature file of the reference tools (or $SG3VIZ_VGG16)'
)
@click.option('--start', metavar='w_avg|seed:N|FILE', default='w_avg', show_default=True, help='Initial latent')
@click.option(
    '--class',
    'class_idx',
    metavar='INT',
    type=click.IntRange(0, None),
    default=None,
    help='Class of a conditional network',
)
@click.option('--save-video', is_flag=True, help='Also write proj.mp4 (target | reconstruction over the steps)')
@click.option(
    '--video-every',
    metavar='STEPS',
    type=click.IntRange(1, None),
    default=5,
    show_default=True,
    help='Steps between video frames',
)
@click.option('--trust', is_flag=True, help='Execute code from the network pickle / an unknown VGG16 TorchScript file')
@click.option('--device', metavar='DEVICE', default='auto', show_default=True, help="'auto', 'cpu', 'cuda' or 'mps'")
def main(network, targets, outdir, space, num_steps, seed, loss, vgg16, start, class_idx, save_video, video_every, trust, device):  # fmt: skip
    """Project images into W / W+ of a network (StyleGAN2 paper, appendix D)."""
    from engine.loading import LoadError

    logging.basicConfig(level=logging.INFO, format='%(message)s')
    try:
        project_images(
            network=network, targets=list(targets), outdir=outdir, space=space, num_steps=num_steps, seed=seed,
            loss=loss, vgg16=vgg16, start=start, class_idx=class_idx, save_video=save_video, video_every=video_every,
            trust=trust, device=device,
        )  # fmt: skip
    except (LoadError, ValueError) as e:  # LatentFileError is a ValueError
        raise click.ClickException(str(e)) from e


if __name__ == '__main__':
    main()
