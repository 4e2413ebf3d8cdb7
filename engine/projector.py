"""Projection of a real image into the latent space W or W+ of a generator (shared by `projector.py` and the GUI).

The method is the one of the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", appendix D, "Projection of images to latent space"):

- start from the average latent `w_avg` (the mean of `G.mapping(z)` over 10,000 random z; `w_std` is the root mean
  squared distance of those samples from it), or from a given seed or latent;
- optimise w with Adam (betas 0.9, 0.999); the learning rate ramps up linearly over the first 5% of the steps and
  down with a cosine over the last 25% (`learning_rate()`);
- add Gaussian noise of standard deviation `w_std * 0.05 * max(0, 1 - t / 0.75)**2` to w at step fraction t
  (`w_noise_scale()`), which explores widely at first and not at all in the last quarter;
- StyleGAN2 networks also optimise their per-layer noise maps (`noise_const` buffers), kept from carrying signal by
  the multi-scale autocorrelation regulariser of the paper's eq. in appendix D (`noise_regularizer()`, weight 1e5)
  and renormalised to zero mean and unit variance after every step (`normalize_noise_()`). StyleGAN3 networks have
  no noise inputs.

The distance between the synthesised and the target image is either the LPIPS-style perceptual distance of the
VGG16 feature file the reference tools publish (`vgg16.pt`, see `load_vgg16()`), or, without that file, a built-in
loss that needs no downloaded weights (`builtin_distance()`: multi-scale pixel L2 plus a structural SSIM term;
it finds colours and layout well but fine texture less well than the perceptual loss).

`iter_project()` yields a `ProjectionStep` after each optimisation step (the GUI shows the reconstruction and can
stop at any step: just stop iterating); `project()` runs to the end and returns a `ProjectionResult`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Generator, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.image_files import to_u8_hwc
from engine.projector_losses import (
    builtin_distance,
    default_vgg16_path,
    load_target,
    load_vgg16,
    vgg16_distance,
    vgg16_features,
)

__all__ = [
    'LOSSES',
    'SPACES',
    'ProjectionResult',
    'ProjectionStep',
    'ProjectorConfig',
    'builtin_distance',
    'default_vgg16_path',
    'estimate_w_stats',
    'iter_project',
    'learning_rate',
    'load_target',
    'load_vgg16',
    'noise_buffers',
    'noise_regularizer',
    'normalize_noise_',
    'project',
    'vgg16_distance',
    'w_noise_scale',
]


logger = logging.getLogger(__name__)

SPACES = ('w', 'w+')
LOSSES = ('auto', 'vgg16', 'builtin')


@dataclasses.dataclass(frozen=True)
class ProjectorConfig:
    """Options of one projection (defaults: the StyleGAN2 paper's appendix D schedule).

    Attributes:
        num_steps: Optimisation steps, >= 1.
        space: 'w' (one w repeated over all num_ws layers, the reference method) or 'w+' (one w per layer).
        seed: Seed of every random draw (w_avg samples, initial noise maps, w noise), so CPU runs repeat exactly.
        initial_learning_rate: Peak Adam learning rate.
        lr_rampup_length: Fraction of the steps of the linear learning-rate ramp-up, in (0, 1].
        lr_rampdown_length: Fraction of the steps of the cosine ramp-down at the end, in (0, 1].
        initial_noise_factor: w noise at step 0, as a multiple of w_std.
        noise_ramp_length: Fraction of the steps over which the w noise decays to zero, in (0, 1].
        regularize_noise_weight: Weight of the noise-map regulariser (StyleGAN2 networks only).
        w_avg_samples: Number of z mapped to estimate w_avg and w_std.
        loss: 'vgg16' (needs the feature file), 'builtin', or 'auto' (vgg16 when a file was given or found).
        ssim_weight: Weight of the structural term of the built-in loss against its pixel L2 term.
    """

    num_steps: int = 1000
    space: str = 'w'
    seed: int = 303
    initial_learning_rate: float = 0.1
    lr_rampup_length: float = 0.05
    lr_rampdown_length: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    w_avg_samples: int = 10000
    loss: str = 'auto'
    ssim_weight: float = 0.5

    def __post_init__(self) -> None:
        def bad(name: str, req: str) -> ValueError:
            return ValueError(f'ProjectorConfig(): {name} must be {req}, got {getattr(self, name)!r}')

        if not isinstance(self.num_steps, int) or not 1 <= self.num_steps <= 1_000_000:
            raise bad('num_steps', 'an integer in [1, 1000000]')
        if self.space not in SPACES:
            raise bad('space', "'w' or 'w+'")
        if self.loss not in LOSSES:
            raise bad('loss', "'auto', 'vgg16' or 'builtin'")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise bad('seed', 'an integer in [0, 2**32)')
        if not isinstance(self.w_avg_samples, int) or not 1 <= self.w_avg_samples <= 1_000_000:
            raise bad('w_avg_samples', 'an integer in [1, 1000000]')
        for name in ('lr_rampup_length', 'lr_rampdown_length', 'noise_ramp_length'):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 < v <= 1):
                raise bad(name, 'a number in (0, 1]')
        for name in ('initial_learning_rate', 'initial_noise_factor', 'regularize_noise_weight', 'ssim_weight'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise bad(name, 'a finite number >= 0')


@dataclasses.dataclass
class ProjectionStep:
    """State after one optimisation step.

    Attributes:
        step: 1-based step number; `num_steps` steps in all.
        num_steps: Total number of steps.
        ws: Current latent without the exploration noise, [1, num_ws, w_dim] float32 on the CPU.
        dist: Image distance of this step (the chosen loss), a float.
        loss: dist + weighted noise regulariser, a float.
        synth: The image this step optimised, [1, C, H, W] float32 in [-1, 1] on the CPU, or None when the caller
            asked for previews only every `preview_every` steps and this is not one of them.
    """

    step: int
    num_steps: int
    ws: torch.Tensor
    dist: float
    loss: float
    synth: torch.Tensor | None


@dataclasses.dataclass
class ProjectionResult:
    """Outcome of `project()`.

    Attributes:
        ws: Final latent [1, num_ws, w_dim] float32 (CPU); for space 'w' all rows are equal.
        image: `G.synthesis(ws, noise_mode='const')` with the optimised noise maps, [1, C, H, W] in [-1, 1] (CPU).
        target: The prepared target, [C, H, W] uint8 (CPU).
        losses: Loss after each step (len = steps run).
        steps_run: Number of steps run (< num_steps when stopped early).
        ws_history: The latent after each step [steps_run, num_ws, w_dim] when `keep_history`, else None.
        loss_name: 'vgg16' or 'builtin'.
    """

    ws: torch.Tensor
    image: torch.Tensor
    target: torch.Tensor
    losses: list[float]
    steps_run: int
    ws_history: torch.Tensor | None
    loss_name: str


# ----------------------------------------------------------------------------
# Schedules (StyleGAN2 paper, appendix D).


def learning_rate(t: float, cfg: ProjectorConfig) -> float:
    """Learning rate at step fraction t in [0, 1): linear ramp-up, then constant, then cosine ramp-down to 0.

    lr(t) = lr0 * min(1, t / rampup) * (0.5 - 0.5 cos(pi * min(1, (1 - t) / rampdown))).
    """
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / cfg.lr_rampup_length)
    return cfg.initial_learning_rate * ramp


def w_noise_scale(t: float, w_std: float, cfg: ProjectorConfig) -> float:
    """Standard deviation of the noise added to w at step fraction t: w_std * f0 * max(0, 1 - t / ramp)^2."""
    return w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp_length) ** 2


# ----------------------------------------------------------------------------
# Noise maps (StyleGAN2 networks).


def noise_buffers(G: Any) -> dict[str, torch.Tensor]:
    """The per-layer constant noise maps of a StyleGAN2 synthesis network, {name: [H, W] float32}; {} for StyleGAN3."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith('noise_const')}


def noise_regularizer(noise_bufs: list[torch.Tensor]) -> torch.Tensor:
    """Multi-scale autocorrelation penalty that keeps noise maps from carrying image content (StyleGAN2 app. D).

    For each map, at every scale down to 8x8 (halving by 2x2 average pooling): the squared mean of the product of
    the map with itself shifted by one pixel horizontally, plus the same vertically (shifts wrap around).

    Args:
        noise_bufs: Noise maps, each [H, W] (H = W, a power of two >= 4), float32.

    Returns:
        Scalar tensor >= 0 (0 for an empty list).
    """
    reg = torch.zeros([])
    for v in noise_bufs:
        noise = v[None, None, :, :]  # [1, 1, H, W]
        reg = reg.to(noise.device)
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


@torch.no_grad()
def normalize_noise_(noise_bufs: list[torch.Tensor]) -> None:
    """Renormalises each noise map in place to zero mean and unit variance (StyleGAN2 app. D)."""
    for buf in noise_bufs:
        buf -= buf.mean()
        buf *= buf.square().mean().rsqrt()


# ----------------------------------------------------------------------------
# The optimisation.


@torch.no_grad()
def estimate_w_stats(
    G: Any, num_samples: int = 10000, seed: int = 303, c: torch.Tensor | None = None
) -> tuple[torch.Tensor, float]:
    """Average latent and spread of the mapping network's output.

    Args:
        G: Generator with `.mapping`, `.z_dim`, `.c_dim`.
        num_samples: Number of z ~ N(0, I) to map (batches of 1000).
        seed: Seed of the z draws (numpy RandomState, like the seed grid of the reference tools).
        c: Class label [1, c_dim] for conditional networks (None: zeros).

    Returns:
        (w_avg [1, 1, w_dim] float32 on G's device, w_std = sqrt(mean ||w - w_avg||^2) as a float).
    """
    dev = next(G.parameters()).device
    z_all = np.random.RandomState(seed).randn(num_samples, G.z_dim).astype(np.float32)
    ws = []
    for i in range(0, num_samples, 1000):
        z = torch.from_numpy(z_all[i : i + 1000]).to(dev)
        cc = (c if c is not None else torch.zeros([1, G.c_dim], device=dev)).expand(z.shape[0], -1)
        ws.append(G.mapping(z, cc)[:, :1, :].to(torch.float32))  # [n, 1, D]
    w = torch.cat(ws)
    w_avg = w.mean(dim=0, keepdim=True)  # [1, 1, D]
    w_std = float((((w - w_avg) ** 2).sum() / num_samples) ** 0.5)
    return w_avg, w_std


def iter_project(
    G: Any,
    target: torch.Tensor,
    *,
    cfg: ProjectorConfig = ProjectorConfig(),  # noqa: B008 (frozen dataclass)
    vgg16: Callable | None = None,
    w_start: torch.Tensor | None = None,
    c: torch.Tensor | None = None,
    preview_every: int = 1,
    keep_noise_maps: dict | None = None,
) -> Iterator[ProjectionStep]:
    """Projects `target` into W / W+ of `G`, yielding a `ProjectionStep` after every step (stop iterating to cancel).

    Args:
        G: Generator (StyleGAN2 or StyleGAN3); not modified (a copy is optimised).
        target: [C, H, W] uint8 with C = G.img_channels and H = W = G.img_resolution (see `load_target()`).
        cfg: Options.
        vgg16: The VGG16 feature network for cfg.loss 'vgg16'/'auto'; None with 'auto' selects the built-in loss.
        w_start: Initial latent: [1, 1, w_dim] or [1, num_ws, w_dim] float32 (None: w_avg). For space 'w' a
            [1, num_ws, w_dim] start is reduced to the mean of its rows.
        c: Class label [1, c_dim] of a conditional network (None: zeros).
        preview_every: Attach the synthesised image to every n-th step (and the last one).
        keep_noise_maps: When a dict is given, it receives the optimised noise maps {name: [H, W]} at the end.

    Yields:
        ProjectionStep, `cfg.num_steps` of them unless the caller stops.

    Raises:
        ValueError: On a target of the wrong shape/dtype, a bad w_start, or cfg.loss 'vgg16' without `vgg16`.
    """
    func = 'iter_project()'
    use_vgg = _check_project_args(func, G, target, cfg, vgg16, preview_every)
    G = copy.deepcopy(G).eval().requires_grad_(False)
    dev = next(G.parameters()).device
    num_ws, w_dim = int(G.num_ws), int(G.w_dim)
    gen = torch.Generator().manual_seed(cfg.seed)

    w_avg, w_std = estimate_w_stats(G, cfg.w_avg_samples, cfg.seed, c)
    w0 = _start_latent(func, w_start, w_avg, num_ws, w_dim, cfg.space).to(dev)
    w_opt = w0.clone().requires_grad_(True)  # [1, 1 or L, D]
    noise_bufs = noise_buffers(G)
    bufs = _randomize_noise_buffers(noise_bufs, gen, dev)
    optimizer = torch.optim.Adam([w_opt, *bufs], betas=(0.9, 0.999), lr=cfg.initial_learning_rate)
    distance = _target_distance(target, dev, vgg16 if use_vgg else None, cfg.ssim_weight)

    for step in range(cfg.num_steps):
        t = step / cfg.num_steps
        lr = learning_rate(t, cfg)
        for group in optimizer.param_groups:
            group['lr'] = lr
        noise = torch.randn(w_opt.shape, generator=gen).to(dev) * w_noise_scale(t, w_std, cfg)
        ws = (w_opt + noise).expand(-1, num_ws, -1) if cfg.space == 'w' else w_opt + noise
        synth = G.synthesis(ws, noise_mode='const')  # [1, C, H, W] in about [-1, 1]
        dist = distance(synth)
        reg = noise_regularizer(bufs) if bufs else torch.zeros([], device=dev)
        loss = dist + cfg.regularize_noise_weight * reg

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        normalize_noise_(bufs)

        last = step + 1 == cfg.num_steps
        show = last or (step + 1) % preview_every == 0
        if last and keep_noise_maps is not None:
            keep_noise_maps.update({k: v.detach().clone().cpu() for k, v in noise_bufs.items()})
        yield ProjectionStep(
            step=step + 1,
            num_steps=cfg.num_steps,
            ws=w_opt.detach().expand(-1, num_ws, -1).clone().cpu().to(torch.float32),
            dist=float(dist.detach()),
            loss=float(loss.detach()),
            synth=synth.detach().clamp(-1, 1).cpu() if show else None,
        )


def _check_project_args(
    func: str, G: Any, target: torch.Tensor, cfg: ProjectorConfig, vgg16: Callable | None, preview_every: int
) -> bool:
    """Validates :func:`iter_project`'s target, loss and preview_every; returns whether the VGG16 distance is used.

    Raises:
        ValueError: as :func:`iter_project`.
    """
    res, C = int(G.img_resolution), int(G.img_channels)
    if target.dtype != torch.uint8 or tuple(target.shape) != (C, res, res):
        raise ValueError(
            f'{func}: target must be uint8 [{C}, {res}, {res}] for this network, got {target.dtype} '
            f'{list(target.shape)}; prepare it with load_target()'
        )
    if cfg.loss == 'vgg16' and vgg16 is None:
        raise ValueError(f'{func}: loss "vgg16" needs the VGG16 feature file (--vgg16 PATH); or use --loss builtin')
    if preview_every < 1:
        raise ValueError(f'{func}: preview_every must be >= 1, got {preview_every}')
    return vgg16 is not None and cfg.loss in ('vgg16', 'auto')


def _randomize_noise_buffers(
    noise_bufs: dict[str, torch.Tensor], gen: torch.Generator, dev: torch.device
) -> list[torch.Tensor]:
    """Fills the (copied) generator's noise buffers with N(0, 1) draws from ``gen`` (in order) and makes them
    optimisable (StyleGAN2 paper, appendix D: the noise maps are optimised too). Returns them as a list."""
    for buf in noise_bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen).to(dev))
        buf.requires_grad_(True)
    return list(noise_bufs.values())


def _target_distance(
    target: torch.Tensor, dev: torch.device, vgg16: Callable | None, ssim_weight: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The distance to ``target`` (uint8 [C, H, W]) of a synthesised [1, C, H, W] image in [-1, 1]: the VGG16
    feature distance when ``vgg16`` is given (target features computed once here), else the built-in loss."""
    target_f = target.to(dev).unsqueeze(0).to(torch.float32)  # [1, C, H, W] in [0, 255]
    if vgg16 is not None:
        with torch.no_grad():
            target_features = vgg16_features(vgg16, target_f).detach()
        return lambda synth: vgg16_distance(vgg16, synth, target_features)
    target_m11 = target_f / 127.5 - 1
    return lambda synth: builtin_distance(synth, target_m11, ssim_weight)


def _start_latent(
    func: str, w_start: torch.Tensor | None, w_avg: torch.Tensor, num_ws: int, w_dim: int, space: str
) -> torch.Tensor:
    """Initial w_opt: [1, 1, D] for space 'w', [1, L, D] for 'w+'."""
    if w_start is None:
        w = w_avg.detach().cpu()
    else:
        w = torch.as_tensor(w_start, dtype=torch.float32).detach().cpu()
        if w.ndim == 1:
            w = w[None, None]
        elif w.ndim == 2:
            w = w[None]
        if w.ndim != 3 or w.shape[0] != 1 or w.shape[2] != w_dim or w.shape[1] not in (1, num_ws):
            raise ValueError(
                f'{func}: the start latent must be [w_dim], [num_ws, w_dim] or [1, num_ws, w_dim] with num_ws={num_ws} '
                f'and w_dim={w_dim} for this network, got {list(w_start.shape)}'
            )
        if not torch.isfinite(w).all():
            raise ValueError(f'{func}: the start latent contains NaN or infinite values')
    if space == 'w':
        return w.mean(dim=1, keepdim=True)
    return w.expand(1, num_ws, w_dim).clone()


def project(
    G: Any,
    target: torch.Tensor,
    *,
    cfg: ProjectorConfig = ProjectorConfig(),  # noqa: B008 (frozen dataclass)
    vgg16: Callable | None = None,
    w_start: torch.Tensor | None = None,
    c: torch.Tensor | None = None,
    keep_history: bool = False,
    callback: Callable[[ProjectionStep], bool | None] | None = None,
    preview_every: int = 10,
) -> ProjectionResult:
    """Runs `iter_project()` to the end (or until `callback` returns False) and renders the result.

    Args:
        G, target, cfg, vgg16, w_start, c, preview_every: See `iter_project()`.
        keep_history: Keep the latent of every step in `ws_history` (for a progress video).
        callback: Called with each ProjectionStep; returning False stops the projection (cancel).

    Returns:
        ProjectionResult.

    Raises:
        ValueError: See `iter_project()`.
    """
    losses: list[float] = []
    history: list[torch.Tensor] = []
    last: ProjectionStep | None = None
    noise_maps: dict[str, torch.Tensor] = {}
    for st in iter_project(
        G, target, cfg=cfg, vgg16=vgg16, w_start=w_start, c=c, preview_every=preview_every, keep_noise_maps=noise_maps
    ):
        last = st
        losses.append(st.loss)
        if keep_history:
            history.append(st.ws[0])
        if callback is not None and callback(st) is False:
            break
    assert last is not None  # num_steps >= 1
    image = render_ws(G, last.ws, noise_maps)
    return ProjectionResult(
        ws=last.ws,
        image=image,
        target=target.cpu(),
        losses=losses,
        steps_run=last.step,
        ws_history=torch.stack(history) if keep_history else None,
        loss_name='vgg16' if (vgg16 is not None and cfg.loss in ('vgg16', 'auto')) else 'builtin',
    )


@torch.no_grad()
def render_ws(G: Any, ws: torch.Tensor, noise_maps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """`G.synthesis(ws, noise_mode='const')` with optional noise maps swapped in; [1, C, H, W] in [-1, 1] (CPU)."""
    dev = next(G.parameters()).device
    if noise_maps:
        G = copy.deepcopy(G)
        bufs = noise_buffers(G)
        for name, v in noise_maps.items():
            bufs[name].copy_(v.to(dev))
    img = G.synthesis(ws.to(dev), noise_mode='const')
    return img.clamp(-1, 1).cpu()


# ----------------------------------------------------------------------------
# The visualizer's projection job (engine.jobs): runs in the render process between renders.

MAX_PREVIEW_PX = 256
MAX_TARGET_BYTES = 64 * 1024 * 1024


def projection_job(
    ctx: Any,
    *,
    request: Any,
    target_png: bytes,
    space: str = 'w',
    num_steps: int = 300,
    seed: int = 303,
    loss: str = 'auto',
    vgg16: str | None = None,
    trust_vgg16: bool = False,
    preview_every: int = 10,
    w_avg_samples: int = 10000,
) -> Generator[Any, None, dict]:
    """Job 'project': projects an encoded image into the request's network, with previews for the GUI.

    Args:
        ctx: The renderer's job context (`prepare(request) -> (G, NetInfo, device)`).
        request: The RenderRequest whose network (and class, for conditional networks) is used.
        target_png: The target image file's bytes (PNG, JPEG, WebP, ... as PIL reads them), at most 64 MB.
        space, num_steps, seed, loss: As `ProjectorConfig`.
        vgg16: Path/URL of the VGG16 feature file (None: `default_vgg16_path()` when loss is 'auto'/'vgg16').
        trust_vgg16: Run a VGG16 TorchScript file whose hash is not a published one.
        preview_every: Steps between previews (>= 1).
        w_avg_samples: Mapped z for w_avg / w_std.

    Yields:
        engine.jobs.Progress per step; every `preview_every` steps its `data` holds 'preview': target | current
        reconstruction side by side, [H, 2W, 3] uint8 (at most 256 px high) and 'ws' [num_ws, w_dim] float32.

    Returns:
        {'ws': [num_ws, w_dim] float32, 'image': [H, W, C] uint8 reconstruction, 'target': [H, W, C] uint8,
        'losses': list of floats, 'steps_run': int, 'space', 'loss', 'num_steps', 'seed'}.

    Raises:
        engine.jobs.JobError: Bad options, an unreadable image or VGG16 file, a network that does not load.
    """
    from engine.jobs import JobError, Progress

    if not isinstance(target_png, bytes | bytearray) or not 0 < len(target_png) <= MAX_TARGET_BYTES:
        raise JobError('projection: the target must be an image file of at most 64 MB')
    if not isinstance(preview_every, int) or preview_every < 1:
        raise JobError(f'projection: preview_every must be an integer >= 1, got {preview_every!r}')
    try:
        cfg = ProjectorConfig(num_steps=num_steps, space=space, seed=seed, loss=loss, w_avg_samples=w_avg_samples)
    except ValueError as e:
        raise JobError(f'projection: {e}') from e
    G, _info, device = ctx.prepare(request)
    target = _job_target(G, target_png)
    vgg = _job_vgg16(loss, vgg16, trust_vgg16, device)
    c = _class_of(G, request, device)
    target_hwc = target.permute(1, 2, 0).numpy()
    last = None
    losses: list[float] = []
    with torch.enable_grad():
        for st in iter_project(G, target, cfg=cfg, vgg16=vgg, c=c, preview_every=preview_every):
            last = st
            losses.append(st.loss)
            data = None
            if st.synth is not None:
                data = {'preview': _side_by_side(target_hwc, st.synth), 'ws': st.ws[0].numpy()}
            yield Progress(st.step, st.num_steps, f'step {st.step}/{st.num_steps}, loss {st.loss:.4g}', data=data)
    assert last is not None
    image = render_ws(G, last.ws)
    return {
        'ws': last.ws[0].numpy(),
        'image': to_u8_hwc(image),
        'target': target_hwc,
        'losses': losses,
        'steps_run': last.step,
        'space': cfg.space,
        'loss': 'vgg16' if vgg is not None else 'builtin',
        'num_steps': cfg.num_steps,
        'seed': cfg.seed,
    }


def _job_target(G: Any, target_png: bytes) -> torch.Tensor:
    """The 'project' job's target: the image file's bytes read by PIL and prepared by :func:`load_target`
    (uint8 [C, H, W] for ``G``). Raises JobError for a file that is not an image or cannot be prepared."""
    import io

    import PIL.Image

    from engine.jobs import JobError

    try:
        with PIL.Image.open(io.BytesIO(bytes(target_png))) as img:
            return load_target(img, int(G.img_resolution), int(G.img_channels))
    except ValueError as e:
        raise JobError(f'projection: {e}') from e
    except (PIL.UnidentifiedImageError, OSError) as e:
        raise JobError(f'projection: the dropped file is not an image PIL can read ({e})') from e


def _job_vgg16(loss: str, vgg16: str | None, trust_vgg16: bool, device: Any) -> Callable | None:
    """The 'project' job's VGG16 feature network: None for the built-in loss, or with 'auto' when no file is
    given nor cached. Raises JobError when 'vgg16' has no file or the file does not load."""
    from engine.jobs import JobError
    from engine.loading import LoadError

    if loss == 'builtin':
        return None
    source = vgg16 or default_vgg16_path()
    if source is None and loss == 'vgg16':
        raise JobError('projection: the VGG16 loss needs the feature file: give its path, or choose "builtin"')
    if source is None:
        return None
    try:
        return load_vgg16(source, trust=trust_vgg16, device=device)
    except LoadError as e:
        raise JobError(f'projection: {e}') from e


def _class_of(G: Any, request: Any, device: Any) -> torch.Tensor | None:
    """One-hot class [1, c_dim] of the request (`class_idx`) for conditional networks, else None."""
    if int(getattr(G, 'c_dim', 0)) == 0:
        return None
    c = torch.zeros([1, G.c_dim], device=device)
    idx = getattr(request, 'class_idx', None)
    if idx is not None and 0 <= int(idx) < G.c_dim:
        c[0, int(idx)] = 1
    return c


def _side_by_side(target_hwc: np.ndarray, synth: torch.Tensor) -> np.ndarray:
    """Target | reconstruction as RGB [H, 2W, 3] uint8, area-downsampled to at most MAX_PREVIEW_PX high."""
    both = np.concatenate([target_hwc, to_u8_hwc(synth)], axis=1)
    if both.shape[2] == 1:
        both = np.repeat(both, 3, axis=2)
    h = both.shape[0]
    if h > MAX_PREVIEW_PX:
        f = -(-h // MAX_PREVIEW_PX)
        t = torch.from_numpy(both).permute(2, 0, 1)[None].float()
        both = F.avg_pool2d(t, f, ceil_mode=True)[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(both)
