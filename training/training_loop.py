"""The StyleGAN2/StyleGAN3 training loop: phases with lazy regularisation, G_ema, ADA, ticks, snapshots, resume.

Maths and schedule (sources):
- Lazy regularisation (StyleGAN2, arXiv 1912.04958, Sec. 3.1): the regularisers run every `G_reg_interval` /
  `D_reg_interval` minibatches with their weight multiplied by the interval; Adam's lr and betas are adjusted by
  `mb_ratio = interval / (interval + 1)` (lr * mb_ratio, beta ** mb_ratio) to keep the optimiser dynamics.
- G_ema (Karras et al. 2018, progressive GAN): G_ema <- lerp(G, G_ema, beta) with half-life `ema_kimg`, ramped up
  as `ema_kimg = min(ema_kimg, cur_nimg * ema_rampup / 1000)` early in training.
- ADA (Karras et al. 2020, arXiv 2006.06676, Sec. 3): every `ada_interval` minibatches, r_t = E[sign(D(real))];
  p <- max(p + sign(r_t - target) * batch * ada_interval / (ada_kimg * 1000), 0).
- Gradients are averaged over processes (torch.distributed all-reduce); only rank 0 writes files.

Outputs in `run_dir` (docs/compatibility.md §4): log.txt, training_options.json, reals.png, fakes_init.png,
fakes<kimg:06d>.png, network-snapshot-<kimg:06d>.pkl (with thousandths, `<kimg:06d>.<images:03d>`, when ticks are
shorter than 1 kimg; an existing file is never overwritten), stats.jsonl, metric-<name>.jsonl, TensorBoard events (only
when tensorboard is importable).

(Longer than 600 lines: the loop, its helpers and the process launcher stay in the one module the reference layout
names, since the training helper owns no other module in `training/`.)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
import logging
import math
import os
import pathlib
import pickle
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
import PIL.Image
import torch

from torch_utils import misc, training_stats
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix

logger = logging.getLogger(__name__)

# `network-snapshot-<kimg:06d>.pkl`, or `network-snapshot-<kimg:06d>.<images:03d>.pkl` (kimg with thousandths) when
# ticks are shorter than 1 kimg, so that every tick's snapshot has its own name.
SNAPSHOT_RE = re.compile(r'network-snapshot-(\d+)(?:\.(\d{3}))?\.pkl$')
_STALE_TMP_RE = re.compile(r'^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$')  # write_atomic's temporaries: .<name>.<pid>.<hex>.tmp


class TrainingError(ValueError):
    """A problem with the user's inputs found while training (dataset, resume file); the message is for the user."""


# ----------------------------------------------------------------------------
# Small helpers.


def construct_class_by_name(class_name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiates `module.path.ClassName(*args, **kwargs)` from its dotted name.

    Raises:
        ValueError: if the module or the class cannot be found.
    """
    module_name, _, attr = class_name.rpartition('.')
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(
            f'construct_class_by_name(): class_name must name an importable class, got {class_name!r}'
        ) from e
    return obj(*args, **kwargs)


def ada_adjust(
    p: float, sign_mean: float, ada_target: float, batch_size: int, ada_interval: int, ada_kimg: float
) -> float:
    """One ADA update of the augmentation probability (ADA paper, Sec. 3).

    Args:
        p: current probability (>= 0).
        sign_mean: r_t = E[sign(D(real))] over the last interval, in [-1, 1] (NaN: no change).
        ada_target: target value of r_t (0.6 in the paper).
        batch_size: images per minibatch (all processes).
        ada_interval: minibatches between updates.
        ada_kimg: kimg needed for p to move by 1.

    Returns:
        The new p, >= 0: raised when D overfits (r_t > target), lowered otherwise.
    """
    if not np.isfinite(sign_mean):
        return float(p)
    adjust = np.sign(sign_mean - ada_target) * (batch_size * ada_interval) / (ada_kimg * 1000)
    return float(max(p + adjust, 0.0))


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """Per-step G_ema decay for a half-life of `ema_kimg` (ramped up to `cur_nimg * ema_rampup` images)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


def lazy_reg_opt_kwargs(opt_kwargs: dict, reg_interval: int | None) -> dict:
    """Adam kwargs adjusted for lazy regularisation (StyleGAN2 Sec. 3.1): lr * r, betas ** r, r = k / (k + 1)."""
    kwargs = dict(opt_kwargs)
    if reg_interval is None:
        return kwargs
    mb_ratio = reg_interval / (reg_interval + 1)
    kwargs['lr'] = kwargs['lr'] * mb_ratio
    kwargs['betas'] = [beta**mb_ratio for beta in kwargs['betas']]
    return kwargs


def snapshot_kimg_from_name(path: str | os.PathLike) -> float | None:
    """kimg encoded in a `network-snapshot-<kimg:06d>[.<images:03d>].pkl` file name, or None."""
    m = SNAPSHOT_RE.search(os.path.basename(os.fspath(path)))
    return float(m.group(1)) + (int(m.group(2)) / 1000 if m.group(2) else 0.0) if m else None


def progress_tag(cur_nimg: int, kimg_per_tick: float) -> str:
    """The `<kimg>` part of snapshot names: `000012`, or `000000.500` (kimg with thousandths) when ticks are shorter
    than 1 kimg, so that consecutive ticks never share a name."""
    if kimg_per_tick >= 1:
        return f'{cur_nimg // 1000:06d}'
    return f'{cur_nimg // 1000:06d}.{cur_nimg % 1000:03d}'


def unused_path(path: pathlib.Path) -> pathlib.Path:
    """`path` when no file has that name, else `<stem>-2<suffix>`, `-3`, ... (outputs are never overwritten)."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f'{path.stem}-{n}{path.suffix}')
        n += 1
    return candidate


def remove_stale_temporaries(folder: str | os.PathLike) -> list[pathlib.Path]:
    """Removes temporaries `write_atomic` left in `folder` when a run was killed (`.<name>.<pid>.<hex>.tmp` whose
    process no longer exists); returns what was removed. Files of live processes and all other files are kept."""
    removed: list[pathlib.Path] = []
    d = pathlib.Path(folder)
    if not d.is_dir():
        return removed
    for p in d.iterdir():
        m = _STALE_TMP_RE.match(p.name)
        if m is None or not p.is_file():
            continue
        pid = int(m.group(1))
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # a live process (maybe another run writing here): not stale
            except ProcessLookupError:
                pass
            except (PermissionError, OverflowError):
                continue
        if pid == os.getpid():
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def write_atomic(path: str | os.PathLike, write_fn) -> None:
    """Writes a file atomically: `write_fn(fileobj)` into a temporary file beside it, fsync, then os.replace."""
    path = pathlib.Path(path)
    tmp = path.parent / f'.{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp'  # open() keeps the umask's mode.
    try:
        with open(tmp, 'xb') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def allreduce_grads(module: torch.nn.Module, num_gpus: int) -> None:
    """Averages the gradients of `module` over `num_gpus` processes (in place) and replaces NaN/inf by finite values."""
    params = [param for param in module.parameters() if param.grad is not None]
    if len(params) == 0:
        return
    flat = torch.cat([param.grad.flatten() for param in params if param.grad is not None])
    if num_gpus > 1:
        torch.distributed.all_reduce(flat)
        flat /= num_gpus
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    grads = flat.split([param.numel() for param in params])
    for param, grad in zip(params, grads):
        param.grad = grad.reshape(param.shape)


# ----------------------------------------------------------------------------
# Image grids.


def setup_snapshot_image_grid(training_set, random_seed: int = 0, grid_size: tuple[int, int] | None = None):
    """Picks a (gw, gh) grid of training images. Returns (grid_size, images uint8 [N, C, H, W], labels [N, c_dim])."""
    rnd = np.random.RandomState(random_seed)
    H, W = training_set.image_shape[1], training_set.image_shape[2]
    if grid_size is None:
        grid_size = (int(np.clip(512 // W, 4, 12)), int(np.clip(384 // H, 4, 8)))  # Small: CPU-friendly.
    gw, gh = grid_size
    order = np.arange(len(training_set))
    rnd.shuffle(order)
    if training_set.has_labels:
        # One row per label where possible: sort the chosen images by label.
        order = order[np.argsort([np.argmax(training_set.get_label(i)) for i in order], kind='stable')]
    indices = np.resize(order, gw * gh)
    images, labels = zip(*[training_set[int(i)] for i in indices])
    return (gw, gh), np.stack(images), np.stack(labels)


def save_image_grid(img: np.ndarray, fname: str | os.PathLike, drange, grid_size: tuple[int, int]) -> None:
    """Saves images [N, C, H, W] (values in `drange`) as one PNG tiled `grid_size` = (gw, gh), atomically."""
    lo, hi = drange
    img = np.asarray(img, dtype=np.float32)
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    gw, gh = grid_size
    _N, C, H, W = img.shape
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    pil = PIL.Image.fromarray(img[:, :, 0], 'L') if C == 1 else PIL.Image.fromarray(img, 'RGB')
    write_atomic(fname, lambda f: pil.save(f, format='PNG'))


@torch.no_grad()
def generate_grid(G_ema, grid_z, grid_c) -> np.ndarray:
    """Runs G_ema on the grid latents (lists of [n, z_dim] / [n, c_dim] chunks). Returns float32 [N, C, H, W]."""
    return torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)]).numpy()


# ----------------------------------------------------------------------------
# Resume.


def load_resume(resume_pkl: str, img_resolution: int | None = None) -> tuple[dict, float | None]:
    """Loads a snapshot for resuming (safe mode, via engine.loading) and returns (data, kimg or None).

    kimg comes from the stored progress counter if present, else from the `network-snapshot-<kimg>.pkl` name.

    Raises:
        TrainingError: if the networks' resolution differs from `img_resolution` or keys are missing.
        engine.loading.LoadError: if the file cannot be found or loaded.
    """
    from engine import loading  # Lazy: engine depends on training, not the other way round at import time.

    path = loading.resolve_source(resume_pkl)
    data = loading.load_network_pkl(path)
    for key in ('G', 'D', 'G_ema'):
        if data.get(key) is None:
            raise TrainingError(f'load_resume(): resume_pkl must contain G, D and G_ema, got no {key!r} in {path}')
    res = int(data['G'].img_resolution)
    if img_resolution is not None and res != int(img_resolution):
        raise TrainingError(
            f'load_resume(): resume_pkl must match the dataset resolution {img_resolution}, got {res} px networks '
            f'in {path}; resume from a snapshot trained at {img_resolution} px or resize the dataset'
        )
    progress = data.get('progress')
    kimg: float | None
    if isinstance(progress, dict) and 'cur_nimg' in progress:
        kimg = _checked_nimg(progress['cur_nimg'], path) / 1000
    else:
        kimg = snapshot_kimg_from_name(path)
    return data, kimg


def _remove_stale(run_dir: pathlib.Path, resume_pkl: str | None) -> None:
    """Start/resume: removes temporaries a killed run left in the run directory and beside the resume file."""
    folders = [run_dir]
    if resume_pkl is not None and '://' not in str(resume_pkl):
        resume = pathlib.Path(resume_pkl).expanduser()
        folders.append(resume if resume.is_dir() else resume.parent)
    for folder in dict.fromkeys(folders):
        for p in remove_stale_temporaries(folder):
            logger.info('Removed a temporary file a killed run left behind: %s', p)


_MAX_NIMG = 10**12  # 1e9 kimg: far beyond any real run


def _checked_nimg(value: Any, path: pathlib.Path) -> int:
    """`progress.cur_nimg` of a resume file as a whole number of images in [0, 1e12], else a TrainingError naming
    the file."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and float(value) == int(value) and 0 <= int(value) <= _MAX_NIMG
    if not ok:
        raise TrainingError(
            f'load_resume(): progress.cur_nimg in {path} must be a whole number of images in [0, {_MAX_NIMG:.0e}], got '
            f'{str(value)[:60]!r}; the file is damaged or was not written by train.py. Resume from another snapshot, '
            'or pass resume_kimg to training_loop() to say where training stands'
        )
    return int(value)


# ----------------------------------------------------------------------------
# The loop.


class _Phase:
    def __init__(self, name, module, opt, interval):
        self.name = name
        self.module = module
        self.opt = opt
        self.interval = interval


def _build_networks(G_kwargs, D_kwargs, training_set, device):
    common_kwargs = dict(
        c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels
    )
    G_kwargs = dict(G_kwargs)
    D_kwargs = dict(D_kwargs)
    G = construct_class_by_name(G_kwargs.pop('class_name'), **G_kwargs, **common_kwargs)
    D = construct_class_by_name(D_kwargs.pop('class_name'), **D_kwargs, **common_kwargs)
    G = G.train().requires_grad_(False).to(device)
    D = D.train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    return G, D, G_ema


def _make_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval):
    phases = []
    for name, module, opt_kwargs, reg_interval in [
        ('G', G, G_opt_kwargs, G_reg_interval),
        ('D', D, D_opt_kwargs, D_reg_interval),
    ]:
        opt_kwargs = dict(opt_kwargs)
        class_name = opt_kwargs.pop('class_name', 'torch.optim.Adam')
        if reg_interval is None:
            opt = construct_class_by_name(class_name, module.parameters(), **opt_kwargs)
            phases.append(_Phase(name + 'both', module, opt, 1))
        else:
            opt = construct_class_by_name(
                class_name, module.parameters(), **lazy_reg_opt_kwargs(opt_kwargs, reg_interval)
            )
            phases.append(_Phase(name + 'main', module, opt, 1))
            phases.append(_Phase(name + 'reg', module, opt, reg_interval))
    return phases


def run_phase(phase, loss, real_img, real_c, gen_z, gen_c, cur_nimg, num_gpus):
    """Runs one optimiser step of `phase`: gradient accumulation over the chunks, all-reduce, Adam step.

    real_img/real_c/gen_z/gen_c are lists of per-round chunks for this process; the gain divides by the number
    of rounds so that the step uses the mean gradient over the whole batch (all processes and rounds).
    """
    phase.opt.zero_grad(set_to_none=True)
    phase.module.requires_grad_(True)
    num_rounds = len(gen_z)
    for r_img, r_c, g_z, g_c in zip(real_img, real_c, gen_z, gen_c):
        loss.accumulate_gradients(
            phase=phase.name, real_img=r_img, real_c=r_c, gen_z=g_z, gen_c=g_c,
            gain=phase.interval / num_rounds, cur_nimg=cur_nimg,
        )  # fmt: skip
    phase.module.requires_grad_(False)
    with torch.autograd.profiler.record_function(phase.name + '_opt'):
        allreduce_grads(phase.module, num_gpus)
        phase.opt.step()


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The arguments of :func:`training_loop` after validation (run_dir a Path, device a torch.device).

    One field per keyword argument; see :func:`training_loop` for their meaning.
    """

    run_dir: pathlib.Path
    training_set_kwargs: dict
    data_loader_kwargs: dict | None
    G_kwargs: dict | None
    D_kwargs: dict | None
    G_opt_kwargs: dict | None
    D_opt_kwargs: dict | None
    augment_kwargs: dict | None
    loss_kwargs: dict | None
    metrics: list[str]
    metrics_num: int | None
    random_seed: int
    num_gpus: int
    rank: int
    batch_size: int
    batch_gpu: int
    ema_kimg: float
    ema_rampup: float | None
    G_reg_interval: int | None
    D_reg_interval: int | None
    augment_p: float
    ada_target: float | None
    ada_interval: int
    ada_kimg: float
    total_kimg: float
    kimg_per_tick: float
    image_snapshot_ticks: int | None
    network_snapshot_ticks: int | None
    resume_pkl: str | None
    resume_kimg: float | None
    device: torch.device
    grid_size: tuple[int, int] | None
    abort_fn: Callable[[], bool] | None
    progress_fn: Callable[[int, int], Any] | None


@dataclasses.dataclass
class _TrainState:
    """What the loop prepares before the first iteration (networks, data, logs) and updates while it runs."""

    start_time: float
    training_set: Any
    training_set_iterator: Iterator
    G: Any  # Networks and AugmentPipe are persistent classes built by name: their attributes are dynamic.
    D: Any
    G_ema: Any
    augment_pipe: Any  # AugmentPipe or None.
    cur_nimg: int
    ema_rampup: float | None  # None after a resume without a known kimg (no ramp-up).
    loss: Any
    phases: list[_Phase]
    ada_stats: training_stats.Collector | None
    grid_size: tuple[int, int] | None
    grid_z: list[torch.Tensor] | None
    grid_c: list[torch.Tensor] | None
    stats_collector: training_stats.Collector
    stats_metrics: dict[str, float]
    stats_jsonl: IO[str] | None
    stats_tfevents: Any


def training_loop(
    run_dir: str | os.PathLike = '.',  # Output directory.
    training_set_kwargs: dict | None = None,  # Options for the training set (class_name, path, ...).
    data_loader_kwargs: dict | None = None,  # Options for torch.utils.data.DataLoader.
    G_kwargs: dict | None = None,  # Options for the generator network (class_name, ...).
    D_kwargs: dict | None = None,  # Options for the discriminator network (class_name, ...).
    G_opt_kwargs: dict | None = None,  # Options for the generator optimiser.
    D_opt_kwargs: dict | None = None,  # Options for the discriminator optimiser.
    augment_kwargs: dict | None = None,  # Options for the augmentation pipeline, None = no augmentation.
    loss_kwargs: dict | None = None,  # Options for StyleGAN2Loss.
    metrics: list | None = None,  # Metrics to evaluate at each network snapshot.
    metrics_num: int | None = None,  # Samples per metric instead of each metric's own count, None = its own.
    random_seed: int = 0,  # Global random seed.
    num_gpus: int = 1,  # Number of processes taking part.
    rank: int = 0,  # Rank of this process, in [0, num_gpus).
    batch_size: int = 4,  # Total batch size for one training iteration (all processes).
    batch_gpu: int = 4,  # Batch per process and accumulation round.
    ema_kimg: float = 10,  # Half-life of the G_ema weights, kimg.
    ema_rampup: float | None = 0.05,  # EMA ramp-up coefficient, None = no ramp-up.
    G_reg_interval: int | None = None,  # How often to run the G regulariser (lazy), None = with the main loss.
    D_reg_interval: int | None = 16,  # How often to run the D regulariser (lazy), None = with the main loss.
    augment_p: float = 0,  # Initial augmentation probability.
    ada_target: float | None = None,  # ADA target for E[sign(D(real))], None = fixed p.
    ada_interval: int = 4,  # How often to adjust p, in minibatches.
    ada_kimg: float = 500,  # kimg for p to move by 1.
    total_kimg: float = 25000,  # Training length, kimg (absolute, including resumed progress).
    kimg_per_tick: float = 4,  # Progress reporting interval, kimg.
    image_snapshot_ticks: int | None = 50,  # How often to save image snapshots, None = never.
    network_snapshot_ticks: int | None = 50,  # How often to save network snapshots, None = never.
    resume_pkl: str | None = None,  # Network pickle, URL or run dir to resume from.
    resume_kimg: float | None = None,  # kimg to continue from, None = from the snapshot.
    cudnn_benchmark: bool = True,  # Enable torch.backends.cudnn.benchmark (CUDA only).
    device: str | torch.device = 'cpu',  # Device of this process.
    grid_size: tuple[int, int] | None = None,  # Image-snapshot grid (columns, rows), None = automatic.
    abort_fn=None,  # Callable that returns True to stop early.
    progress_fn=None,  # Callable(cur_nimg, total_nimg) called at each tick.
) -> dict:
    """Trains a GAN; see the module docstring. Returns a summary dict (cur_nimg, last snapshot path, ...).

    Raises:
        ValueError: on inconsistent batch sizes, a non-positive metrics_num or a resume file that does not match the
            dataset.
        TrainingError: if the dataset cannot be read, is empty, or the resume file does not fit (user-facing).
    """
    device = torch.device(device)
    _check_loop_args(batch_size, batch_gpu, num_gpus, metrics_num, training_set_kwargs, G_kwargs, D_kwargs)
    run_dir = pathlib.Path(run_dir)
    with _run_log(run_dir, rank, resume_pkl), _loop_global_state(device, cudnn_benchmark):
        opts = TrainingOptions(
            run_dir=run_dir, training_set_kwargs=dict(training_set_kwargs or {}), data_loader_kwargs=data_loader_kwargs,
            G_kwargs=G_kwargs, D_kwargs=D_kwargs, G_opt_kwargs=G_opt_kwargs, D_opt_kwargs=D_opt_kwargs,
            augment_kwargs=augment_kwargs, loss_kwargs=loss_kwargs, metrics=list(metrics or []),
            metrics_num=metrics_num, random_seed=random_seed, num_gpus=num_gpus, rank=rank, batch_size=batch_size,
            batch_gpu=batch_gpu, ema_kimg=ema_kimg, ema_rampup=ema_rampup, G_reg_interval=G_reg_interval,
            D_reg_interval=D_reg_interval, augment_p=augment_p, ada_target=ada_target, ada_interval=ada_interval,
            ada_kimg=ada_kimg, total_kimg=total_kimg, kimg_per_tick=kimg_per_tick,
            image_snapshot_ticks=image_snapshot_ticks, network_snapshot_ticks=network_snapshot_ticks,
            resume_pkl=resume_pkl, resume_kimg=resume_kimg, device=device, grid_size=grid_size, abort_fn=abort_fn,
            progress_fn=progress_fn,
        )  # fmt: skip
        return _training_loop(opts)


def _check_loop_args(
    batch_size: int,
    batch_gpu: int,
    num_gpus: int,
    metrics_num: int | None,
    training_set_kwargs: Any,
    G_kwargs: Any,
    D_kwargs: Any,
) -> None:
    """Raises ValueError (naming the argument) for :func:`training_loop`'s inconsistent batch sizes, missing network
    or dataset options, or a non-positive metrics_num."""
    if batch_gpu < 1 or batch_size % (batch_gpu * num_gpus) != 0:
        raise ValueError(
            f'training_loop(): batch_size must be a multiple of batch_gpu * num_gpus = {batch_gpu} * {num_gpus}, '
            f'got {batch_size}'
        )
    for name, value in (('training_set_kwargs', training_set_kwargs), ('G_kwargs', G_kwargs), ('D_kwargs', D_kwargs)):
        if not isinstance(value, dict):
            raise ValueError(f'training_loop(): {name} must be a dict (class_name and options), got {value!r}')
    if metrics_num is not None and (isinstance(metrics_num, bool) or int(metrics_num) < 1):
        raise ValueError(f'training_loop(): metrics_num must be a positive integer or None, got {metrics_num!r}')


@contextlib.contextmanager
def _run_log(run_dir: pathlib.Path, rank: int, resume_pkl: str | None) -> Iterator[None]:
    """On rank 0: creates ``run_dir`` (removing stale files of an earlier run there) and copies this module's log
    to ``run_dir/log.txt`` while the loop runs (at least INFO). Other ranks: nothing."""
    handler: logging.Handler | None = None
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(run_dir, resume_pkl)
        handler = logging.FileHandler(run_dir / 'log.txt', encoding='utf-8')
        handler.setFormatter(logging.Formatter('%(message)s'))
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()


@contextlib.contextmanager
def _loop_global_state(device: torch.device, cudnn_benchmark: bool) -> Iterator[None]:
    """The global state the loop changes, restored afterwards: the numpy and torch RNG states (the loop seeds both),
    the gradfix switches and, on CUDA, cudnn.benchmark and TF32 off (exact fp32 matmuls, the reference's choice) with
    the gradfix ops on (faster double-backward of convolutions for R1 and path length)."""
    saved_rng = (np.random.get_state(), torch.random.get_rng_state())
    saved_flags = (conv2d_gradfix.enabled, grid_sample_gradfix.enabled)
    saved_cuda = (
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    try:
        if device.type == 'cuda':
            torch.backends.cudnn.benchmark = cudnn_benchmark
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            conv2d_gradfix.enabled = True
            grid_sample_gradfix.enabled = True
        yield
    finally:
        np.random.set_state(saved_rng[0])
        torch.random.set_rng_state(saved_rng[1])
        conv2d_gradfix.enabled, grid_sample_gradfix.enabled = saved_flags
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = (
            saved_cuda
        )


def _info(rank, msg, *args):
    if rank == 0:
        logger.info(msg, *args)


def _load_training_set(training_set_kwargs, data_loader_kwargs, rank, num_gpus, random_seed, batch_size):
    kwargs = dict(training_set_kwargs)
    training_set = construct_class_by_name(kwargs.pop('class_name', 'training.dataset.ImageFolderDataset'), **kwargs)
    if len(training_set) == 0:
        raise TrainingError(
            f'training_loop(): the training set must not be empty, got 0 images in {kwargs.get("path")}'
        )
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed)
    loader = torch.utils.data.DataLoader(
        dataset=training_set, sampler=sampler, batch_size=batch_size // num_gpus, **(data_loader_kwargs or {})
    )
    return training_set, iter(loader)


def _next_batch(iterator, path):
    try:
        return next(iterator)
    except (StopIteration, KeyboardInterrupt):
        raise
    except Exception as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        detail = lines[-1] if lines else type(e).__name__  # DataLoader workers prepend a traceback.
        raise TrainingError(f'training_loop(): could not read a batch from the training set {path!r}: {detail}') from e


def _resume_into(resume_pkl, G, D, G_ema, augment_pipe, resolution, rank):
    _info(rank, 'Resuming from "%s"', resume_pkl)
    data, kimg = load_resume(resume_pkl, resolution)
    for name, module in [('G', G), ('D', D), ('G_ema', G_ema)]:
        src_names = {n for n, _ in misc.named_params_and_buffers(data[name])}
        dst_names = [n for n, _ in module.named_parameters()]
        missing = [n for n in dst_names if n not in src_names]
        if len(missing) == len(dst_names):
            raise TrainingError(
                f'training_loop(): resume_pkl must hold a {type(module).__name__} like the one --cfg builds, got a '
                f'{type(data[name]).__name__} with none of its parameters (e.g. {dst_names[0]!r}); check --cfg'
            )
        if missing:
            logger.warning('Resume: %d of %d %s parameters are not in the snapshot and keep their initial values, '
                           'e.g. %s', len(missing), len(dst_names), name, missing[0])  # fmt: skip
        try:
            misc.copy_params_and_buffers(data[name], module, require_all=False)
        except RuntimeError as e:
            raise TrainingError(
                f'training_loop(): resume_pkl must hold networks of the same architecture as --cfg/--cbase/--cmax, '
                f'got a mismatch in {name}: {e}'
            ) from e
    if augment_pipe is not None and getattr(data.get('augment_pipe'), 'p', None) is not None:
        augment_pipe.p.copy_(data['augment_pipe'].p.detach().to(augment_pipe.p.device))
    return kimg


def _save_snapshot(
    run_dir, cur_nimg, cur_tick, batch_idx, modules, training_set_kwargs, num_gpus, rank, kimg_per_tick=4.0
):
    snapshot_data: dict[str, Any] = dict(training_set_kwargs=dict(training_set_kwargs))
    for name, module in modules:
        if module is not None:
            if num_gpus > 1:
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        snapshot_data[name] = module
    snapshot_data['progress'] = dict(cur_nimg=int(cur_nimg), cur_tick=int(cur_tick), batch_idx=int(batch_idx))
    path = unused_path(run_dir / f'network-snapshot-{progress_tag(cur_nimg, kimg_per_tick)}.pkl')
    if rank == 0:
        write_atomic(path, lambda f: pickle.dump(snapshot_data, f))
    return path, snapshot_data


def _eval_metrics(
    metrics, snapshot_data, snapshot_pkl, training_set_kwargs, run_dir, num_gpus, rank, device, num=None
):  # fmt: skip
    """Evaluates `metrics` on the snapshot's G_ema; rank 0 appends metric-<name>.jsonl. Returns {name: value}.

    `num` overrides each metric's sample count (None = the metric's own, e.g. 50k).
    """
    from metrics import metric_main  # Lazy and optional: the metrics package is not needed to train.

    values: dict[str, float] = {}
    for metric in metrics:
        result_dict = metric_main.calc_metric(
            metric=metric, G=snapshot_data['G_ema'], dataset_kwargs=training_set_kwargs,
            num_gpus=num_gpus, rank=rank, device=device, num=num,
        )  # fmt: skip
        results = result_dict.get('results', {}) if isinstance(result_dict, dict) else {}
        values.update({k: float(v) for k, v in results.items() if isinstance(v, (int, float))})
        if rank == 0:
            if hasattr(metric_main, 'report_metric'):
                metric_main.report_metric(result_dict, run_dir=str(run_dir), snapshot_pkl=str(snapshot_pkl))
            else:
                line = dict(result_dict) if isinstance(result_dict, dict) else dict(results=result_dict)
                line.setdefault('snapshot_pkl', os.path.basename(snapshot_pkl))
                line.setdefault('timestamp', time.time())
                with open(run_dir / f'metric-{metric}.jsonl', 'a') as f:
                    f.write(json.dumps(line, default=float) + '\n')
    return values


def _cpu_mem_gb() -> float:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**30
    except (OSError, ValueError, AttributeError):
        return float('nan')


def _open_tensorboard(run_dir):
    try:
        import torch.utils.tensorboard as tensorboard
    except ImportError:
        return None
    return tensorboard.SummaryWriter(str(run_dir))


def _write_stats(stats_jsonl, stats_tfevents, stats_dict, stats_metrics, cur_nimg, start_time, timestamp):
    if stats_jsonl is not None:
        fields = dict(stats_dict, timestamp=timestamp)
        stats_jsonl.write(json.dumps(fields) + '\n')
        stats_jsonl.flush()
    if stats_tfevents is not None:
        global_step = int(cur_nimg / 1e3)
        walltime = timestamp - start_time
        for name, value in stats_dict.items():
            stats_tfevents.add_scalar(name, value['mean'], global_step=global_step, walltime=walltime)
        for name, value in stats_metrics.items():
            stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
        stats_tfevents.flush()


def _training_loop(o: TrainingOptions) -> dict:
    """Prepares the state (data, networks, resume, phases, grids, logs), then runs :func:`_train`."""
    from training.augment import AugmentPipe
    from training.loss import StyleGAN2Loss

    start_time = time.time()
    np.random.seed(o.random_seed * o.num_gpus + o.rank)
    torch.manual_seed(o.random_seed * o.num_gpus + o.rank)

    # Training set.
    _info(o.rank, 'Loading training set...')
    training_set, training_set_iterator = _load_training_set(
        o.training_set_kwargs, o.data_loader_kwargs, o.rank, o.num_gpus, o.random_seed, o.batch_size
    )
    _info(o.rank, 'Num images: %d, image shape: %s, label shape: %s', len(training_set), training_set.image_shape,
          training_set.label_shape)  # fmt: skip

    # Networks, augmentation, resume.
    _info(o.rank, 'Constructing networks...')
    G, D, G_ema = _build_networks(o.G_kwargs, o.D_kwargs, training_set, o.device)
    augment_pipe: Any = None
    if o.augment_kwargs is not None and (o.augment_p > 0 or o.ada_target is not None):
        augment_pipe = AugmentPipe(**o.augment_kwargs).train().requires_grad_(False).to(o.device)
        augment_pipe.p.copy_(torch.as_tensor(o.augment_p))
    cur_nimg = _resume_and_distribute(o, [G, D, G_ema, augment_pipe], training_set.resolution)

    # Resuming without a known kimg (a foreign or renamed pickle: transfer learning): no G_ema / blur ramp-ups.
    loss_kwargs = dict(o.loss_kwargs or {})
    ema_rampup = o.ema_rampup
    if o.resume_pkl is not None and cur_nimg == 0:
        ema_rampup = None
        loss_kwargs['blur_init_sigma'] = 0

    # Phases.
    loss = StyleGAN2Loss(device=o.device, G=G, D=D, augment_pipe=augment_pipe, **loss_kwargs)
    phases = _make_phases(G, D, o.G_opt_kwargs, o.D_opt_kwargs, o.G_reg_interval, o.D_reg_interval)
    ada_stats = training_stats.Collector(regex='Loss/signs/real') if o.ada_target is not None else None

    grid_size, grid_z, grid_c = _snapshot_grids(o, training_set, G_ema)

    # Logs.
    stats_jsonl = stats_tfevents = None
    if o.rank == 0:
        stats_jsonl = open(o.run_dir / 'stats.jsonl', 'a')  # noqa: SIM115 (closed in finally)
        stats_tfevents = _open_tensorboard(o.run_dir)
    state = _TrainState(
        start_time=start_time, training_set=training_set, training_set_iterator=training_set_iterator, G=G, D=D,
        G_ema=G_ema, augment_pipe=augment_pipe, cur_nimg=cur_nimg, ema_rampup=ema_rampup, loss=loss, phases=phases,
        ada_stats=ada_stats, grid_size=grid_size, grid_z=grid_z, grid_c=grid_c,
        stats_collector=training_stats.Collector(regex='.*'), stats_metrics={}, stats_jsonl=stats_jsonl,
        stats_tfevents=stats_tfevents,
    )  # fmt: skip
    try:
        return _train(o, state)
    finally:
        if stats_jsonl is not None:
            stats_jsonl.close()
        if stats_tfevents is not None:
            stats_tfevents.close()


def _resume_and_distribute(o: TrainingOptions, modules: list, resolution: int) -> int:
    """Loads the resume snapshot into ``modules`` ([G, D, G_ema, augment_pipe or None]) on rank 0, logs the
    parameter counts and, with several processes, broadcasts rank 0's weights and progress. Returns cur_nimg (the
    snapshot's kimg or ``resume_kimg``, in images; 0 when unknown)."""
    G, D, G_ema, augment_pipe = modules
    cur_nimg = 0
    if o.resume_pkl is not None and o.rank == 0:
        snap_kimg = _resume_into(o.resume_pkl, G, D, G_ema, augment_pipe, resolution, o.rank)
        kimg = o.resume_kimg if o.resume_kimg is not None else (snap_kimg or 0)
        cur_nimg = int(round(kimg * 1000))
    elif o.resume_kimg is not None:
        cur_nimg = int(round(o.resume_kimg * 1000))
    for name, module in [('G', G), ('D', D)]:
        num_params = sum(p.numel() for p in module.parameters())
        _info(o.rank, '%s: %s, %d parameters', name, type(module).__name__, num_params)
    if o.num_gpus > 1:  # Rank 0's weights (including resumed ones) and progress.
        _info(o.rank, 'Distributing across %d processes...', o.num_gpus)
        for dist_module in modules:
            if dist_module is not None:
                for tensor in misc.params_and_buffers(dist_module):
                    torch.distributed.broadcast(tensor, src=0)
        nimg = torch.tensor([cur_nimg], dtype=torch.int64, device=o.device)
        torch.distributed.broadcast(nimg, src=0)
        cur_nimg = int(nimg.item())
    return cur_nimg


def _snapshot_grids(o: TrainingOptions, training_set: Any, G_ema: Any):
    """On rank 0 with image snapshots: writes reals.png and fakes_init.png and returns (grid_size, grid_z, grid_c)
    (the fixed latents [N, z_dim] / labels of every fakes*.png, split into batch_gpu chunks); else
    (``o.grid_size``, None, None)."""
    if o.rank != 0 or o.image_snapshot_ticks is None:
        return o.grid_size, None, None
    _info(o.rank, 'Exporting sample images...')
    grid_size, images, labels = setup_snapshot_image_grid(training_set, o.random_seed, o.grid_size)
    save_image_grid(images, o.run_dir / 'reals.png', drange=[0, 255], grid_size=grid_size)
    grid_z = list(torch.randn([labels.shape[0], G_ema.z_dim], device=o.device).split(o.batch_gpu))
    grid_c = list(torch.from_numpy(labels).to(o.device).split(o.batch_gpu))
    save_image_grid(generate_grid(G_ema, grid_z, grid_c), o.run_dir / 'fakes_init.png', [-1, 1], grid_size)
    return grid_size, grid_z, grid_c


def _fetch_iteration_inputs(o: TrainingOptions, s: _TrainState, num_phases: int):
    """Reals (shared by all phases) and per-phase latents/labels of one iteration, split into per-round chunks."""
    path = o.training_set_kwargs.get('path')
    img_u8, labels = _next_batch(s.training_set_iterator, path)
    real_img = (img_u8.to(o.device).to(torch.float32) / 127.5 - 1).split(o.batch_gpu)
    real_c = labels.to(o.device).to(torch.float32).split(o.batch_gpu)
    local_batch = o.batch_size // o.num_gpus
    gen_z = torch.randn([num_phases * local_batch, s.G.z_dim], device=o.device)
    all_gen_z = [z.split(o.batch_gpu) for z in gen_z.split(local_batch)]
    n = len(s.training_set)
    gen_labels = [s.training_set.get_label(np.random.randint(n)) for _ in range(num_phases * local_batch)]
    gen_c = torch.from_numpy(np.stack(gen_labels).astype(np.float32)).to(o.device)
    all_gen_c = [c.split(o.batch_gpu) for c in gen_c.split(local_batch)]
    return real_img, real_c, all_gen_z, all_gen_c


@torch.no_grad()
def _update_ema(G_ema, G, beta):
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def _report_tick(
    o: TrainingOptions,
    s: _TrainState,
    cur_tick,
    cur_nimg,
    tick_start_nimg,
    tick_start_time,
    tick_end_time,
    maintenance_time,
):
    """Reports the progress/timing stats of a tick and logs its one-line summary."""
    total_sec = tick_end_time - s.start_time
    sec_per_tick = tick_end_time - tick_start_time
    sec_per_kimg = sec_per_tick / max(cur_nimg - tick_start_nimg, 1) * 1e3
    cpu_mem_gb = _cpu_mem_gb()
    gpu_mem_gb = torch.cuda.max_memory_allocated(o.device) / 2**30 if o.device.type == 'cuda' else 0.0
    p = float(s.augment_pipe.p.cpu()) if s.augment_pipe is not None else 0.0
    training_stats.report0('Progress/tick', cur_tick)
    training_stats.report0('Progress/kimg', cur_nimg / 1e3)
    training_stats.report0('Timing/total_sec', total_sec)
    training_stats.report0('Timing/sec_per_tick', sec_per_tick)
    training_stats.report0('Timing/sec_per_kimg', sec_per_kimg)
    training_stats.report0('Timing/maintenance_sec', maintenance_time)
    training_stats.report0('Resources/cpu_mem_gb', cpu_mem_gb)
    training_stats.report0('Resources/peak_gpu_mem_gb', gpu_mem_gb)
    training_stats.report0('Progress/augment', p)
    training_stats.report0('Timing/total_hours', total_sec / 3600)
    training_stats.report0('Timing/total_days', total_sec / 86400)
    if o.device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(o.device)
    _info(
        o.rank,
        f'tick {cur_tick:<5d} kimg {cur_nimg / 1e3:<8.3f} time {total_sec:<9.1f}s sec/tick {sec_per_tick:<7.1f} '
        f'sec/kimg {sec_per_kimg:<8.2f} maintenance {maintenance_time:<6.1f} cpumem {cpu_mem_gb:<6.2f} '
        f'gpumem {gpu_mem_gb:<6.2f} augment {p:.3f}',
    )


def _run_iteration(o: TrainingOptions, s: _TrainState, batch_idx: int, cur_nimg: int) -> None:
    """One training iteration: every phase whose interval divides ``batch_idx`` (lazy regularisation, StyleGAN2
    paper Sec. 3.1), then the G_ema update."""
    with torch.autograd.profiler.record_function('data_fetch'):
        real_img, real_c, all_gen_z, all_gen_c = _fetch_iteration_inputs(o, s, len(s.phases))
    for phase, gen_z, gen_c in zip(s.phases, all_gen_z, all_gen_c):
        if batch_idx % phase.interval != 0:
            continue
        run_phase(phase, s.loss, real_img, real_c, gen_z, gen_c, cur_nimg, o.num_gpus)
    with torch.autograd.profiler.record_function('Gema'):
        _update_ema(s.G_ema, s.G, ema_beta(o.batch_size, cur_nimg, o.ema_kimg, s.ema_rampup))


def _tick_snapshots(
    o: TrainingOptions, s: _TrainState, cur_tick: int, cur_nimg: int, batch_idx: int, done: bool
) -> pathlib.Path | None:
    """At the end of a tick: the image snapshot (fakes*.png, rank 0) and the network snapshot with its metrics, when
    their intervals say so (always on the last tick). Returns the network snapshot's path when one was written."""
    is_image_tick = o.image_snapshot_ticks is not None and (done or cur_tick % o.image_snapshot_ticks == 0)
    if o.rank == 0 and is_image_tick and s.grid_size is not None:
        images = generate_grid(s.G_ema, s.grid_z, s.grid_c)
        fakes = unused_path(o.run_dir / f'fakes{progress_tag(cur_nimg, o.kimg_per_tick)}.png')
        save_image_grid(images, fakes, [-1, 1], s.grid_size)
    if o.network_snapshot_ticks is None or not (done or cur_tick % o.network_snapshot_ticks == 0):
        return None
    modules = [('G', s.G), ('D', s.D), ('G_ema', s.G_ema), ('augment_pipe', s.augment_pipe)]
    snapshot_pkl, snapshot_data = _save_snapshot(
        o.run_dir, cur_nimg, cur_tick, batch_idx, modules, o.training_set_kwargs, o.num_gpus, o.rank,
        kimg_per_tick=o.kimg_per_tick,
    )  # fmt: skip
    if o.metrics:
        _info(o.rank, 'Evaluating metrics...')
        s.stats_metrics.update(_eval_metrics(o.metrics, snapshot_data, snapshot_pkl, o.training_set_kwargs,
                                             o.run_dir, o.num_gpus, o.rank, o.device, num=o.metrics_num))  # fmt: skip
    del snapshot_data
    return snapshot_pkl


def _train(o: TrainingOptions, s: _TrainState) -> dict:
    """The iteration loop proper (options `o`, state `s` prepared by `_training_loop`)."""
    total_nimg = int(round(o.total_kimg * 1000))
    cur_nimg = s.cur_nimg
    cur_tick = 0
    batch_idx = 0
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - s.start_time
    snapshot_pkl = None
    if o.progress_fn is not None:
        o.progress_fn(cur_nimg, total_nimg)
    _info(o.rank, 'Training for %g kimg (from %g kimg)...', o.total_kimg, cur_nimg / 1e3)

    while True:
        _run_iteration(o, s, batch_idx, cur_nimg)
        cur_nimg += o.batch_size
        batch_idx += 1
        if s.ada_stats is not None and o.ada_target is not None and batch_idx % o.ada_interval == 0:
            s.ada_stats.update()
            p = ada_adjust(float(s.augment_pipe.p.cpu()), s.ada_stats['Loss/signs/real'], o.ada_target,
                           o.batch_size, o.ada_interval, o.ada_kimg)  # fmt: skip
            s.augment_pipe.p.copy_(torch.as_tensor(p))

        # Tick?
        done = cur_nimg >= total_nimg
        if not done and cur_tick != 0 and cur_nimg < tick_start_nimg + o.kimg_per_tick * 1000:
            continue
        tick_end_time = time.time()
        _report_tick(o, s, cur_tick, cur_nimg, tick_start_nimg, tick_start_time, tick_end_time, maintenance_time)
        if o.abort_fn is not None and o.abort_fn():
            done = True
            _info(o.rank, 'Aborting...')

        snapshot_pkl = _tick_snapshots(o, s, cur_tick, cur_nimg, batch_idx, done) or snapshot_pkl

        # Collect statistics.
        s.stats_collector.update()
        _write_stats(s.stats_jsonl, s.stats_tfevents, s.stats_collector.as_dict(), s.stats_metrics, cur_nimg,
                     s.start_time, time.time())  # fmt: skip
        if o.progress_fn is not None:
            o.progress_fn(cur_nimg, total_nimg)

        # Next tick.
        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
            break

    _info(o.rank, 'Exiting...')
    return dict(cur_nimg=cur_nimg, cur_tick=cur_tick, batch_idx=batch_idx,
                snapshot_pkl=None if snapshot_pkl is None else str(snapshot_pkl),
                augment_p=float(s.augment_pipe.p.cpu()) if s.augment_pipe is not None else 0.0)  # fmt: skip


# ----------------------------------------------------------------------------
# Launching: run directory, options file, one process or several (torchrun / spawn).


def next_run_dir(outdir: str | os.PathLike, desc: str) -> pathlib.Path:
    """`<outdir>/<NNNNN>-<desc>` with NNNNN one more than the largest run id already in `outdir`."""
    outdir = pathlib.Path(outdir)
    prev_ids = []
    if outdir.is_dir():
        for entry in outdir.iterdir():
            m = re.match(r'^(\d+)', entry.name)
            if m and entry.is_dir():
                prev_ids.append(int(m.group(1)))
    cur_id = max(prev_ids, default=-1) + 1
    return outdir / f'{cur_id:05d}-{desc}'


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, local_rank, world_size) when started by torchrun (its environment variables), else None."""
    if 'WORLD_SIZE' not in os.environ or 'RANK' not in os.environ:
        return None
    world_size = int(os.environ['WORLD_SIZE'])
    rank = int(os.environ['RANK'])
    return rank, int(os.environ.get('LOCAL_RANK', rank)), world_size


def _process_device(device_type: str, local_rank: int) -> torch.device:
    if device_type == 'cuda':
        return torch.device('cuda', local_rank % max(torch.cuda.device_count(), 1))
    return torch.device(device_type)


def _subprocess_fn(rank, c, device_type, init_method, world_size, local_rank=None, log_stdout=False):
    """Entry of each training process: joins the process group, then runs `training_loop(**c)`."""
    local_rank = rank if local_rank is None else local_rank
    if log_stdout and rank == 0 and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='%(message)s')  # Spawned child: show progress like rank 0.
    device = _process_device(device_type, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if world_size > 1:
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world_size)
        training_stats.init_multiprocessing(rank=rank, sync_device=device)
    try:
        return training_loop(**dict(c, rank=rank, num_gpus=world_size, device=device))
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()


def launch_training(c: dict, run_dir: str | os.PathLike, device: str = 'cpu', dry_run: bool = False) -> dict | None:
    """Writes `training_options.json` into `run_dir` and trains with `c['num_gpus']` processes.

    Started by torchrun (WORLD_SIZE/RANK set), this process is one rank of the group (env:// rendezvous);
    otherwise `num_gpus > 1` spawns that many local processes (torch.multiprocessing, file:// rendezvous); NCCL on
    CUDA, gloo on CPU.

    Args:
        c: keyword arguments of `training_loop` (JSON-serialisable; `num_gpus` included, `rank`/`device` are set
            per process).
        run_dir: output directory (created).
        device: device type for all processes: 'cpu', 'cuda' or 'mps' (single process only).
        dry_run: write the options and return None without training.

    Returns:
        The summary dict of rank 0 (single process / torchrun rank 0), else None.

    Raises:
        ValueError: MPS with several processes, or torchrun's world size differing from `num_gpus`.
    """
    num_gpus = int(c.get('num_gpus', 1))
    env = torchrun_env()
    if env is not None and env[2] != num_gpus:
        raise ValueError(f'launch_training(): num_gpus must equal torchrun WORLD_SIZE {env[2]}, got {num_gpus}')
    device_type = torch.device(device).type
    if device_type == 'mps' and num_gpus > 1:
        raise ValueError(f'launch_training(): num_gpus must be 1 on MPS, got {num_gpus}')
    run_dir = pathlib.Path(run_dir)
    c = dict(c, run_dir=str(run_dir))
    if env is None or env[0] == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / 'training_options.json', lambda f: f.write(json.dumps(c, indent=2).encode()))
    if dry_run:
        return None
    if env is not None:
        rank, local_rank, world_size = env
        return _subprocess_fn(rank, c, device_type, 'env://', world_size, local_rank)
    if num_gpus == 1:
        return _subprocess_fn(0, c, device_type, None, 1)
    with tempfile.TemporaryDirectory() as temp_dir:
        init_method = 'file://' + os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        torch.multiprocessing.spawn(
            fn=_subprocess_fn, args=(c, device_type, init_method, num_gpus, None, True), nprocs=num_gpus, join=True
        )
    return None
