"""Render looping latent-interpolation videos (or PNG sequences) of a generator.

Keyframes: one W per grid cell and keyframe (from seeds); between keyframes W follows a cubic spline
(`scipy.interpolate.interp1d(kind='cubic')`) over a keyframe axis wrapped around, so the video loops: the frame
after the last equals the first. `--ws` renders a given latent sequence frame by frame instead, and `--layer`
shows three channels of one synthesis layer's output instead of the image.

Examples:

\b
    python gen_video.py --seeds 0-3 --grid 2x2 --output out/lerp.mp4
    python gen_video.py --network run/network-snapshot-000100.pkl --seeds 0-31 --grid 4x2 --w-frames 60
    python gen_video.py --ws path.npy --output out/frames/              # PNG sequence out/frames/0000.png ...
    python gen_video.py --seeds 0-2 --layer L2_36_256 --output out/layer.mp4
    python gen_video.py --timeline states.json --output out/timeline.mp4  # recorded visualizer states
    python gen_video.py --timeline captures/00000-record.mp4 --output out/again.mp4  # the states inside a recording
    python gen_video.py --scrub training-runs/00000-run --seeds 0 --fps 8 --output out/scrub.mp4  # one seed over training
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable, Iterator

import click
import numpy as np
import torch

from engine.cli_types import FINITE_FLOAT

VIDEO_SUFFIXES = ('.mp4', '.mov', '.mkv')


# ----------------------------------------------------------------------------
# Latents.


def keyframe_ws(
    G,
    *,
    seeds: list[int],
    grid: tuple[int, int] = (1, 1),
    num_keyframes: int | None = None,
    shuffle_seed: int | None = None,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    device: torch.device | str = 'cpu',
) -> np.ndarray:
    """The W keyframes of a grid video.

    Seed `idx` of the `grid_w * grid_h * num_keyframes` cells (reused cyclically; optionally shuffled with
    `shuffle_seed`) gives z = RandomState(seed).randn(1, z_dim) (and a class from the same RandomState for
    conditional networks), mapped with truncation.

    Returns:
        ws [grid_h, grid_w, num_keyframes, num_ws, w_dim] float32.

    Raises:
        ValueError: Empty seeds, bad grid, or len(seeds) not a multiple of the grid size without num_keyframes.
    """
    from engine.latents import zc_from_seeds

    gw, gh = grid
    if gw < 1 or gh < 1:
        raise ValueError(f'keyframe_ws(): grid must be at least 1x1, got {gw}x{gh}')
    if not seeds:
        raise ValueError('keyframe_ws(): seeds must not be empty; pass e.g. --seeds 0-3')
    if num_keyframes is None:
        if len(seeds) % (gw * gh) != 0:
            raise ValueError(
                f'keyframe_ws(): the number of seeds must be a multiple of the grid size {gw}x{gh} = {gw * gh}, '
                f'got {len(seeds)} seeds; pass more seeds or --num-keyframes'
            )
        num_keyframes = len(seeds) // (gw * gh)
    if num_keyframes < 1:
        raise ValueError(f'keyframe_ws(): num_keyframes must be >= 1, got {num_keyframes}')
    all_seeds = [seeds[i % len(seeds)] for i in range(num_keyframes * gw * gh)]
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(all_seeds)
    z, c = zc_from_seeds(all_seeds, G.z_dim, G.c_dim)
    z, c = torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return ws.cpu().numpy().reshape(gh, gw, num_keyframes, *ws.shape[1:]).astype(np.float32)


def looping_interpolator(kf_ws: np.ndarray) -> Callable[[float], np.ndarray]:
    """Cubic interpolation over keyframes that wraps around (period = num_keyframes).

    Args:
        kf_ws: [grid_h, grid_w, K, num_ws, w_dim] keyframes.

    Returns:
        f(t) -> ws [grid_h * grid_w, num_ws, w_dim] float32 for t in keyframe units; f(t + K) == f(t) and
        f(k) equals keyframe k.
    """
    import scipy.interpolate

    gh, gw, k = kf_ws.shape[:3]
    cells = kf_ws.reshape(gh * gw, k, -1)
    x = np.arange(-2 * k, 3 * k)  # Five periods: the spline around [0, K) sees the wrapped neighbours.
    y = np.tile(cells, [1, 5, 1])
    spline = scipy.interpolate.interp1d(x, y, kind='cubic', axis=1)
    shape = kf_ws.shape[3:]

    def interp(t: float) -> np.ndarray:
        return spline(float(t) % k).reshape(gh * gw, *shape).astype(np.float32)

    return interp


def load_ws_file(path: str | os.PathLike, num_ws: int, w_dim: int) -> np.ndarray:
    """A latent sequence from .npy / .npz (key 'w' or 'ws', or the only array); see `engine.latent_files`.

    Args:
        path: File of shape [T, num_ws, w_dim] (per-layer W), [T, w_dim] (one W per frame, broadcast; T != num_ws),
            or a single latent [num_ws, w_dim], [1, num_ws, w_dim], [w_dim] (e.g. a projector `.npz`: one frame).

    Returns:
        ws [T, num_ws, w_dim] float32.

    Raises:
        ValueError: Unreadable file or wrong shape (the message names num_ws, w_dim and the accepted shapes).
    """
    from engine.latent_files import read_latents

    return read_latents(path, num_ws=num_ws, w_dim=w_dim, allow_frames=True)


def truncate_ws(ws: np.ndarray, w_avg: np.ndarray, psi: float, cutoff: int | None) -> np.ndarray:
    """Lerps the first `cutoff` ws (all when None) of [T, num_ws, w_dim] toward w_avg [w_dim] by psi."""
    ws = ws.copy()
    ws[:, :cutoff] = w_avg + psi * (ws[:, :cutoff] - w_avg)
    return ws


# ----------------------------------------------------------------------------
# Rendering.


class _StopForward(Exception):
    pass


def layer_names(G) -> list[str]:
    """Names of the children of G.synthesis whose outputs `--layer` can show."""
    return [name for name, _ in G.synthesis.named_children()]


class LayerCapture:
    """Context manager capturing the output of `G.synthesis.<name>` with a forward hook.

    The forward pass stops right after the layer (nothing later is computed). Use `capture.run(ws)` to get the
    layer's first 4-D output [N, C, H, W].

    Raises:
        ValueError: Unknown layer name (the message lists the valid ones).
    """

    def __init__(self, G, name: str):
        modules = dict(G.synthesis.named_children())
        if name not in modules:
            raise ValueError(f'LayerCapture(): layer must be one of {", ".join(modules)}; got {name!r}')
        self.G, self.module, self.name = G, modules[name], name
        self.output: torch.Tensor | None = None

    def _hook(self, _module, _inputs, output):
        outputs = output if isinstance(output, (tuple, list)) else [output]
        self.output = next((o for o in outputs if isinstance(o, torch.Tensor) and o.ndim == 4), None)
        raise _StopForward

    def __enter__(self) -> LayerCapture:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def run(self, ws: torch.Tensor) -> torch.Tensor:
        self.output = None
        try:
            self.G.synthesis(ws, noise_mode='const')
        except _StopForward:
            pass
        if self.output is None:
            raise ValueError(f'LayerCapture.run(): layer {self.name!r} has no 4-D tensor output to show')
        return self.output.to(torch.float32)


def layer_to_rgb(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """Channels 0..2 of a layer output [N, C, H, W] as RGB in [-1, 1].

    Each channel is centred and scaled by 3 standard deviations; the mean/std come from the first call (kept in
    `stats`) so the brightness does not flicker from frame to frame.
    """
    x = x[:, :3] if x.shape[1] >= 3 else x[:, :1].repeat(1, 3, 1, 1)
    if not stats:
        stats['mean'] = x.mean(dim=[0, 2, 3], keepdim=True)
        stats['std'] = x.std(dim=[0, 2, 3], keepdim=True).clamp(min=1e-8)
    return ((x - stats['mean']) / (3 * stats['std'])).clamp(-1, 1)


def to_grid_u8(img: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """[gw*gh, C, H, W] in [-1, 1] (C = 1 or 3) -> uint8 [gh*H, gw*W, 3] (row-major cells), even-sized (pads)."""
    gw, gh = grid
    n, c, h, w = img.shape
    img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()
    img = img.repeat(1, 3, 1, 1) if c == 1 else img[:, :3]
    frame = img.reshape(gh, gw, 3, h, w).permute(0, 3, 1, 4, 2).reshape(gh * h, gw * w, 3).numpy()
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    return np.pad(frame, [(0, pad_h), (0, pad_w), (0, 0)]) if pad_h or pad_w else frame


def render_frames(
    G,
    ws_of_frame: Callable[[int], np.ndarray],
    num_frames: int,
    grid: tuple[int, int],
    layer: str | None = None,
    max_batch: int = 4,
) -> Iterator[np.ndarray]:
    """Yields uint8 frames [H, W, 3]: frame f shows `ws_of_frame(f)` [grid_w*grid_h, num_ws, w_dim] (or its layer).

    Consecutive frames are rendered together, about `max_batch` images per synthesis call.
    """
    device = G.mapping.w_avg.device if hasattr(G.mapping, 'w_avg') else torch.device('cpu')
    cells = grid[0] * grid[1]
    frames_per_call = max(1, max_batch // cells)
    stats: dict = {}
    capture = LayerCapture(G, layer) if layer is not None else None
    with torch.no_grad():
        for start in range(0, num_frames, frames_per_call):
            count = min(frames_per_call, num_frames - start)
            ws = torch.from_numpy(np.concatenate([ws_of_frame(start + i) for i in range(count)])).to(device)
            if capture is not None:
                with capture:
                    img = layer_to_rgb(capture.run(ws), stats)
            else:
                img = G.synthesis(ws, noise_mode='const').to(torch.float32)
            for i in range(count):
                yield to_grid_u8(img[i * cells : (i + 1) * cells], grid)


# ----------------------------------------------------------------------------
# Output.


def _output_kind(output: str) -> tuple[str, str]:
    """('video', path) | ('png', pattern with %d); ``engine.recording.output_kind``."""
    from engine.recording import output_kind

    return output_kind(output)


def write_frames(frames: Iterator[np.ndarray], output: str, *, fps: int = 60, num_frames: int | None = None,
                 progress: bool = True) -> int:  # fmt: skip
    """Writes frames to an mp4 (libx264, yuv420p, 16 Mbit/s, via imageio-ffmpeg) or a PNG sequence.

    Returns:
        Number of frames written.

    Raises:
        ValueError: Unsupported output name.
    """
    import PIL.Image
    from tqdm import tqdm

    kind, target = _output_kind(output)
    parent = os.path.dirname(target % 0 if kind == 'png' else target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    bar = tqdm(frames, total=num_frames, unit='frame', disable=not progress)
    count = 0
    if kind == 'png':
        for frame in bar:
            PIL.Image.fromarray(frame, 'RGB').save(target % count)
            count += 1
        return count
    import imageio.v2 as imageio

    writer = imageio.get_writer(
        target, format='FFMPEG', mode='I', fps=fps, codec='libx264', pixelformat='yuv420p', bitrate='16M',
        macro_block_size=1,
    )  # fmt: skip
    try:
        for frame in bar:
            writer.append_data(frame)
            count += 1
    finally:
        writer.close()
    return count


def generate_video(
    G,
    *,
    output: str,
    seeds: list[int] | None = None,
    grid: tuple[int, int] = (1, 1),
    num_keyframes: int | None = None,
    shuffle_seed: int | None = None,
    w_frames: int = 120,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    fps: int = 60,
    ws_file: str | None = None,
    layer: str | None = None,
    progress: bool = True,
) -> int:
    """Renders a looping interpolation video over a grid (or a latent file's frames) and writes it.

    Args:
        G: Generator (docs/compatibility.md §3), on its device.
        output: .mp4/.mov/.mkv file, directory, or '%04d.png' pattern.
        seeds: Keyframe seeds (ignored with ws_file).
        grid: (columns, rows).
        num_keyframes: Keyframes per cell (None: len(seeds) / cells).
        w_frames: Frames between consecutive keyframes.
        ws_file: .npy/.npz of [T, num_ws, w_dim] or [T, w_dim]; renders T frames, grid must be 1x1.
        layer: Name of a child of G.synthesis to show instead of the image.

    Returns:
        Number of frames written (num_keyframes * w_frames, or T).

    Raises:
        ValueError: Bad arguments (seeds/grid mismatch, ws shape, layer name, output name).
    """
    if w_frames < 1 or fps < 1:
        raise ValueError(f'generate_video(): w_frames and fps must be >= 1, got {w_frames}, {fps}')
    if layer is not None:
        LayerCapture(G, layer)  # Validate the name before doing any work.
    _output_kind(output)
    if ws_file is not None:
        if tuple(grid) != (1, 1):
            raise ValueError(
                f'generate_video(): --ws renders one image per frame; grid must be 1x1, got {grid[0]}x{grid[1]}'
            )
        ws = load_ws_file(ws_file, G.num_ws, G.w_dim)
        if truncation_psi != 1:
            ws = truncate_ws(ws, G.mapping.w_avg.cpu().numpy(), truncation_psi, truncation_cutoff)
        num_frames = ws.shape[0]
        frames = render_frames(G, lambda f: ws[f : f + 1], num_frames, (1, 1), layer)
    else:
        device = G.mapping.w_avg.device
        kf = keyframe_ws(
            G, seeds=seeds or [], grid=grid, num_keyframes=num_keyframes, shuffle_seed=shuffle_seed,
            truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, device=device,
        )  # fmt: skip
        interp = looping_interpolator(kf)
        num_frames = kf.shape[2] * w_frames
        frames = render_frames(G, lambda f: interp(f / w_frames), num_frames, grid, layer)
    return write_frames(frames, output, fps=fps, num_frames=num_frames, progress=progress)


# ----------------------------------------------------------------------------
# CLI.


def timeline_json_path(output: str) -> pathlib.Path:
    """Where the states JSON goes next to ``output`` (``engine.recording.timeline_json_path``): ``out.mp4`` ->
    ``out.json``; a PNG sequence (directory or ``%04d.png`` pattern) -> ``states.json`` in its folder."""
    from engine.recording import timeline_json_path as path_of

    return path_of(output)


def render_timeline(
    timeline: str | os.PathLike,
    output: str,
    *,
    fps: float | None = None,
    device: str | None = None,
    height_px: int | None = None,
    trust: bool = False,
    progress: bool = True,
    renderer=None,
) -> int:
    """Renders a timeline (``engine.states``: an ``sg3viz-timeline`` JSON, a recorded mp4 carrying one, or a
    capture/session as one frame) through ``engine.recording.render_video_job``, the job the visualizer's Record
    pane runs, so the output equals the GUI's recording frame for frame (same states, fps, view and size, same
    device). Writes an mp4 (H.264 yuv420p, the timeline inside) or a PNG sequence plus the states JSON beside it
    (:func:`timeline_json_path`).

    Args:
        timeline: the JSON file (or recorded .mp4 / capture PNG).
        output: .mp4/.mov/.mkv, a directory or a ``%04d.png`` pattern.
        fps: overrides the timeline's fps.
        device: overrides every state's device (None keeps them).
        height_px: overrides the timeline's frame height (None: the file's ``height_px``, else native).
        trust: load pickles executing their embedded code (a state file never grants this itself).
        progress: tqdm bar.
        renderer: an ``engine.renderer.Renderer`` to reuse (its loaded networks stay cached); None: a new one.

    Returns:
        Number of frames written.

    Raises:
        ValueError: unreadable timeline, bad output name, a frame that fails to render.
    """
    from tqdm import tqdm

    from engine.recording import run_video_job
    from engine.renderer import Renderer
    from engine.states import load_timeline, read_state_doc

    states, file_fps, view = load_timeline(timeline)
    doc = read_state_doc(timeline)
    states = [s.replace(trust=bool(trust), **({'device': device} if device is not None else {})) for s in states]
    fps = float(fps if fps is not None else file_fps)
    if height_px is None and isinstance(doc.get('height_px'), int) and not isinstance(doc.get('height_px'), bool):
        height_px = doc['height_px']
    widgets = doc.get('widgets') if isinstance(doc.get('widgets'), dict) else None
    network = doc.get('network') if isinstance(doc.get('network'), dict) else None
    renderer = renderer if renderer is not None else Renderer(states[0].device)
    with tqdm(total=len(states), unit='frame', disable=not progress) as bar:
        result = run_video_job(
            renderer, states, output, fps=fps, view=view, height_px=height_px, widgets=widgets, network=network,
            on_progress=lambda p: bar.update(p.done - bar.n),
        )  # fmt: skip
    return int(result['frames'])


def scrub_json_path(output: str) -> pathlib.Path:
    """Where ``--scrub`` writes its keyframe timeline next to ``output``: ``out.mp4`` -> ``out.keyframes.json``; a PNG
    sequence -> ``keyframes.json`` in its folder."""
    kind, target = _output_kind(output)
    if kind == 'video':
        return pathlib.Path(target).with_suffix('.keyframes.json')
    return pathlib.Path(os.path.dirname(target) or '.') / 'keyframes.json'


def render_scrub(
    run_dir: str | os.PathLike,
    output: str,
    *,
    seed: int = 0,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    layer: str | None = None,
    seconds_per_snapshot: float = 0.5,
    fps: float = 8.0,
    device: str = 'auto',
    trust: bool = False,
    progress: bool = True,
    renderer=None,
) -> tuple[int, pathlib.Path]:
    """Checkpoint scrub video: one latent (``seed``) rendered by every ``network-snapshot-*.pkl`` of a training run,
    oldest first, each for ``seconds_per_snapshot``. Builds the keyframe timeline
    (``engine.checkpoints.make_scrub_timeline``: the snapshot is the keyframed setting), writes it beside the output
    (:func:`scrub_json_path`) and renders it with :func:`render_timeline`, so ``gen_video.py --timeline`` on that
    file reproduces the video.

    Args:
        run_dir: the training-run directory.
        output: .mp4/.mov/.mkv, a directory or a ``%04d.png`` pattern.
        seed: the latent's seed (0 .. 2**32 - 1).
        truncation_psi, truncation_cutoff: truncation of every frame.
        layer: show three channels of this synthesis layer instead of the image (None: the image).
        seconds_per_snapshot: how long each snapshot is shown (0.05 .. 600 s; at least one frame).
        fps: frames per second.
        device: 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.
        trust: load the snapshots executing their embedded code.
        progress: tqdm bar.
        renderer: an ``engine.renderer.Renderer`` to reuse.

    Returns:
        (frames written, path of the keyframe timeline JSON).

    Raises:
        ValueError: no snapshots in ``run_dir``, a value out of range, a snapshot that fails to render.
    """
    from engine.checkpoints import load_run, make_scrub_timeline
    from engine.protocol import RenderRequest, clamp_value
    from engine.states import write_json

    if not 0 <= int(seed) <= 2**32 - 1:
        raise ValueError(f'render_scrub(): seed must be in 0..4294967295, got {seed}')
    run = load_run(run_dir, with_metrics=False)
    if not run.snapshots:
        raise ValueError(
            f'render_scrub(): run_dir must hold network-snapshot-*.pkl files, got {str(run_dir)!r} ({"; ".join(run.notes)})'
        )
    psi, note = clamp_value('trunc_psi', truncation_psi)
    if note:
        raise ValueError(f'render_scrub(): {note.replace("clamped to", "use at most")}')
    base = RenderRequest(
        w0_seeds=((int(seed), 1.0),), trunc_psi=float(psi), trunc_cutoff=truncation_cutoff, layer_name=layer,
        device=device,
    )  # fmt: skip
    doc = make_scrub_timeline(run.snapshots, base, seconds_per_snapshot=seconds_per_snapshot, fps=fps)
    side = write_json(scrub_json_path(output), doc)
    count = render_timeline(side, output, device=device, trust=trust, progress=progress, renderer=renderer)
    return count, side


def _parse_grid(_ctx, _param, value: str) -> tuple[int, int]:
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', value or '')
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise click.BadParameter(f"must be WxH with W, H >= 1, like '2x2', got {value!r}")
    return int(m.group(1)), int(m.group(2))


def _parse_seeds(_ctx, _param, value: str) -> list[int]:
    from engine.latents import parse_range

    try:
        return parse_range(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command(help=__doc__)
@click.option(
    '--network', 'network', metavar='PATH|URL', default=None, help='Network pickle (default: bundled network)'
)
@click.option(
    '--seeds',
    metavar='LIST',
    default='0-3',
    show_default=True,
    callback=_parse_seeds,
    help="Keyframe seeds, e.g. '0-31' or '1,5,9'",
)
@click.option('--shuffle-seed', metavar='INT', type=int, default=None, help='Shuffle the keyframe seeds with this seed')
@click.option(
    '--grid',
    metavar='WxH',
    default='1x1',
    show_default=True,
    callback=_parse_grid,
    help='Grid of videos (columns x rows)',
)
@click.option(
    '--num-keyframes',
    metavar='INT',
    type=click.IntRange(min=1),
    default=None,
    help='Keyframes per cell (default: seeds / cells)',
)
@click.option(
    '--w-frames',
    metavar='FRAMES',
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    help='Frames between keyframes',
)
@click.option(
    '--trunc', 'truncation_psi', metavar='PSI', type=FINITE_FLOAT, default=1.0, show_default=True, help='Truncation psi'
)
@click.option(
    '--trunc-cutoff',
    'truncation_cutoff',
    metavar='LAYERS',
    type=click.IntRange(min=0),
    default=None,
    help='Truncate only the first LAYERS ws (default: all)',
)
@click.option(
    '--fps',
    metavar='FPS',
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help='Frames per second of the video',
)
@click.option(
    '--output',
    metavar='FILE|DIR',
    default='out/video.mp4',
    show_default=True,
    help='.mp4/.mov/.mkv, a directory, or a %04d.png pattern',
)
@click.option(
    '--ws',
    'ws_file',
    metavar='FILE',
    default=None,
    help='Render this latent file frame by frame (.npy/.npz [T, num_ws, w_dim], [T, w_dim], or one latent such as a projector .npz)',
)
@click.option(
    '--layer', metavar='NAME', default=None, help='Show 3 channels of this G.synthesis layer instead of the image'
)
@click.option(
    '--timeline',
    metavar='FILE',
    default=None,
    help='Render a recorded/keyframed timeline JSON (list of visualizer render states) frame for frame; '
    'writes the states JSON beside the output',
)
@click.option(
    '--height',
    'height_px',
    metavar='PX',
    type=click.IntRange(min=16, max=4320),
    default=None,
    help="With --timeline: frame height in pixels, the width keeps the aspect (default: the timeline's, else native)",
)
@click.option(
    '--scrub',
    metavar='RUN_DIR',
    default=None,
    help='Checkpoint scrub: one seed (--seeds N) over every network-snapshot-*.pkl of this training run, oldest '
    'first; writes the keyframe timeline beside the output (OUTPUT.keyframes.json)',
)
@click.option(
    '--seconds-per-snapshot',
    metavar='SEC',
    type=click.FloatRange(0.05, 600.0),
    default=0.5,
    show_default=True,
    help='With --scrub: how long each snapshot is shown',
)
@click.option('--device', metavar='NAME', default='auto', show_default=True, help='auto, cpu, cuda, cuda:N or mps')
@click.option(
    '--trust',
    is_flag=True,
    default=False,
    help='Run code embedded in the pickle (reference loader); only for files you trust',
)
@click.pass_context
def main(ctx, network, seeds, shuffle_seed, grid, num_keyframes, w_frames, truncation_psi, truncation_cutoff, fps,
         output, ws_file, layer, timeline, height_px, scrub, seconds_per_snapshot, device, trust):  # fmt: skip
    from engine.loading import LoadError, load_generator

    src = click.core.ParameterSource
    explicit = {p.name for p in ctx.command.params if ctx.get_parameter_source(p.name) not in (src.DEFAULT, None)}
    if 'seconds_per_snapshot' in explicit and scrub is None:
        raise click.UsageError('--seconds-per-snapshot needs --scrub RUN_DIR')
    if scrub is not None:
        allowed = {'scrub', 'seconds_per_snapshot', 'seeds', 'truncation_psi', 'truncation_cutoff', 'layer', 'fps',
                   'output', 'device', 'trust'}  # fmt: skip
        clash = [p.opts[0] for p in ctx.command.params if p.name in explicit - allowed]
        if clash:
            raise click.UsageError(f"--scrub renders one seed over the run's snapshots; drop {', '.join(clash)}")
        seeds = seeds if 'seeds' in explicit else [0]
        if len(seeds) != 1:
            raise click.UsageError(f'--scrub renders one seed; pass --seeds N, got {len(seeds)} seeds')
        try:
            count, side = render_scrub(
                scrub, output, seed=seeds[0], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                layer=layer, seconds_per_snapshot=seconds_per_snapshot, fps=fps, device=device, trust=trust,
            )  # fmt: skip
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f'Wrote {count} frames to {output}; the scrub timeline to {side} (gen_video.py --timeline {side})')
        return

    if timeline is not None:
        src = click.core.ParameterSource
        given = [p for p in ctx.command.params if ctx.get_parameter_source(p.name) not in (src.DEFAULT, None)]
        explicit = {p.name for p in given}
        allowed = ('timeline', 'output', 'fps', 'height_px', 'device', 'trust')
        clash = [p.opts[0] for p in given if p.name not in allowed]
        if clash:
            raise click.UsageError(f'--timeline renders the saved states as they are; drop {", ".join(clash)}')
        try:
            count = render_timeline(
                timeline,
                output,
                fps=fps if 'fps' in explicit else None,
                device=device if 'device' in explicit else None,
                height_px=height_px,
                trust=trust,
            )
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f'Wrote {count} frames to {output} and the states to {timeline_json_path(output)}')
        return

    if height_px is not None:
        raise click.UsageError('--height applies to --timeline only')
    try:
        G = load_generator(network, trust=trust, device=device)
        count = generate_video(
            G, output=output, seeds=seeds, grid=grid, num_keyframes=num_keyframes, shuffle_seed=shuffle_seed,
            w_frames=w_frames, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, fps=fps,
            ws_file=ws_file, layer=layer,
        )  # fmt: skip
    except (LoadError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f'Wrote {count} frames to {output}')


if __name__ == '__main__':
    main()
